/*
 * Tensors and their storage (tensor.c): lifetime, pools, and running one op on a backend. Private
 * to core/.
 */
#ifndef LAMINA_CORE_TENSOR_H
#define LAMINA_CORE_TENSOR_H

#include "lamina/lamina.h"

#include <stdatomic.h>
#include <stdint.h>

/*
 * A tensor's extension slot: data that a higher level attaches to a tensor (the autograd tape
 * keeps its recorded node and gradient buffers there), so tensor.c needs to know nothing about
 * it. destroy(data) runs when the tensor is freed (also for a tensor orphaned by lam_shutdown,
 * when its last holder releases it).
 */
typedef struct lam__tensor_ext {
    void *data;
    void (*destroy)(void *data); /* NULL: empty */
} lam__tensor_ext;

typedef struct lam__storage {
    atomic_long refcount;
    lam_ctx *ctx;
    void *buf;
    size_t bytes;
} lam__storage;

/*
 * A tensor's state, checked where a released or orphaned tensor would otherwise be used
 * (lamina.h documents what is detected). Released structs wait in a pool; the ASan build
 * poisons them there, so any use after release is reported.
 */
#define LAM__TENSOR_LIVE   0x4c54454eu /* in use */
#define LAM__TENSOR_ORPHAN 0x4c544f52u /* held by the user after lam_shutdown(): no data */
#define LAM__TENSOR_DEAD   0x4c544445u /* released */

struct lam_tensor {
    uint32_t magic;
    atomic_long refcount;
    lam__storage *storage;
    uint64_t offset; /* elements */
    lam_shape shape;
    int64_t numel;
    lam_dtype dtype;
    struct lam_tensor *prev, *next; /* live list, so shutdown can reclaim */
    lam__tensor_ext ext;
};

/* A new uninitialized contiguous tensor on ctx. */
lam_status lam__tensor_alloc(lam_ctx *ctx, const lam_shape *shape, lam_tensor **out);
/* A tensor sharing t's storage with another shape of the same size (one -1 dim is inferred);
 * not recorded (lam_tensor_reshape, the ops level, records it). */
lam_status lam__tensor_reshape_view(lam_tensor *t, const lam_shape *shape, lam_tensor **out);
/* Reads or writes count elements of t starting at element `first`, for a save or a load
 * streaming a tensor in pieces. Errors: LAM_ERR_INVALID_ARGUMENT (a released tensor, a range
 * beyond numel), the backend's (prefixed with the function and the context). */
lam_status lam__tensor_read_at(const lam_tensor *t, size_t first, float *dst, size_t count);
lam_status lam__tensor_write_at(lam_tensor *t, size_t first, const float *src, size_t count);
/* Contiguous view of the whole tensor. */
void lam__tensor_view(const lam_tensor *t, lam_tensor_view *view);
/* At shutdown: frees the device memory of every tensor still alive; the handles become
 * orphans that only lam_tensor_release (and the shape getters) accept. */
void lam__tensors_reclaim_all(void);
/* Frees the pooled tensor and storage structs (at shutdown). */
void lam__tensor_pool_flush(void);
/* Runs one op on the backend of ctx. */
lam_status lam__execute(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs, uint32_t n_inputs,
                        lam_tensor_view *output, const double *scalars, const int64_t *ints);
/* Checks that both tensors live on one context; error names both. */
lam_status lam__same_ctx(const char *op, const lam_tensor *a, const lam_tensor *b);

#endif
