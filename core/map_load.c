/* Zero-copy loading: float32 tensors over a private (copy-on-write) mapping of the file. */
#define _POSIX_C_SOURCE 200809L
#include "map_load.h"
#include "error.h"
#include "tensor.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* One mapping shared by the tensors over it (and the loader while it reads): unmapped when the
 * last reference goes. */
struct lam__file_map {
    atomic_long refs;
    void *base;
    size_t len;
};

void lam__map_release(lam__file_map *m) {
    if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
        munmap(m->base, m->len);
        free(m);
    }
}

static void map_release(void *arg) {
    lam__map_release(arg);
}

const uint8_t *lam__map_base(const lam__file_map *m) {
    return m->base;
}

lam_status lam__map_file(const lam__st_file *f, int fd, lam__file_map **out) {
    *out = NULL;
    if (f->src.size > (uint64_t)SIZE_MAX || f->src.size == 0) {
        return LAM_OK; /* cannot be mapped whole: everything is copied */
    }
    lam__file_map *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory");
    }
    m->len = (size_t)f->src.size;
    /* Private and writable: a tensor written later gets its own copy of the page (the file
     * never changes); pages nobody writes stay the page cache's, shared, never copied. No
     * MAP_POPULATE: on a writable private mapping it would copy every page. */
    m->base = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (m->base == MAP_FAILED) {
        int e = errno;
        free(m);
        return lam__error(LAM_ERR_IO, "Cannot map the file, %s", strerror(e));
    }
    atomic_store_explicit(&m->refs, 1, memory_order_relaxed);
    *out = m;
    return LAM_OK;
}

lam_status lam__map_tensor(const lam__st_file *f, lam__file_map *m, size_t i, lam_ctx *ctx,
                           lam_tensor **out) {
    *out = NULL;
    const lam__st_entry *e = &f->entries[i];
    const uint64_t at = f->data_at + e->begin;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const bool le = true;
#else
    const bool le = false;
#endif
    if (m == NULL || !le || e->dtype != LAM__ST_F32 || e->numel == 0 || at % 8 != 0) {
        return LAM_OK;
    }
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    lam_shape shape = e->shape;
    lam_status st = lam__tensor_wrap_host(ctx, &shape, (char *)m->base + at,
                                          (size_t)(e->end - e->begin), map_release, m, out);
    if (st == LAM_ERR_UNSUPPORTED) {
        *out = NULL;
        return LAM_OK; /* this backend cannot wrap it: copied */
    }
    return st == LAM_OK ? LAM_OK : lam__error_prefix(st, "tensor '%s'", e->name);
}

lam_status lam__map_tensors(const lam__st_file *f, lam__file_map *m, lam_ctx *ctx,
                            lam_tensor **tensors, bool *copy) {
    for (size_t i = 0; i < f->n; i++) {
        tensors[i] = NULL;
        copy[i] = true;
    }
    lam_status st = LAM_OK;
    for (size_t i = 0; st == LAM_OK && i < f->n; i++) {
        st = lam__map_tensor(f, m, i, ctx, &tensors[i]);
        copy[i] = tensors[i] == NULL;
    }
    if (st != LAM_OK) {
        for (size_t i = 0; i < f->n; i++) {
            lam_tensor_release(tensors[i]);
            tensors[i] = NULL;
        }
    }
    return st;
}
