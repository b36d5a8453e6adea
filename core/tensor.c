/* Tensors: reference-counted views of backend storage (shape helpers: shape.c). */
#include "tensor.h"
#include "context.h"
#include "error.h"
#include "log.h"
#include "op_name.h"
#include "registry.h"
#include "shape.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Manual poisoning: released tensor and storage structs wait in pools for reuse, where ASan
 * would not see a use after release; poisoned, it reports it. */
#if defined(__SANITIZE_ADDRESS__)
#define LAM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LAM_ASAN 1
#endif
#endif
#ifdef LAM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Tensors alive in the runtime, and those the user still held at lam_shutdown(). */
typedef struct tensor_list {
    lam_tensor *head;
    size_t n;
} tensor_list;
static tensor_list live, orphans;
/* Tensors are created and freed on any thread (one made on one thread may be released on
 * another), so the lists are locked. */
static pthread_mutex_t lists_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- execution ---- */

static lam_status shut_down(const char *fn) {
    return lam__error(LAM_ERR_STATE,
                      "%s: Runtime shut down, the tensor's data was freed by lam_shutdown()", fn);
}

lam_status lam__execute(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs, uint32_t n_inputs,
                        lam_tensor_view *output, const double *scalars, const int64_t *ints) {
    if (ctx == NULL) {
        return shut_down(lam__op_name(op));
    }
    lam_op_call call;
    memset(&call, 0, sizeof call);
    call.struct_size = (uint32_t)sizeof call;
    call.abi_version = LAM_ABI_VERSION;
    call.op = op;
    call.n_inputs = n_inputs;
    call.inputs = inputs;
    call.output = output;
    if (scalars != NULL) {
        memcpy(call.scalars, scalars, sizeof call.scalars);
    }
    if (ints != NULL) {
        memcpy(call.ints, ints, sizeof call.ints);
    }
    uint64_t mark = lam__error_mark();
    lam_status st = ctx->backend->desc.execute(ctx->dev, &call);
    if (st != LAM_OK) {
        st = lam__backend_status(st, mark, ctx->backend, "execute");
        return lam__error_prefix(st, "%s on %s", lam__op_name(op), ctx->name);
    }
    return LAM_OK;
}

lam_status lam__same_ctx(const char *op, const lam_tensor *a, const lam_tensor *b) {
    if (a->storage->ctx != b->storage->ctx) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Context mismatch, operands live on %s and %s (copy one with "
                          "lam_tensor_copyto or lam_tensor_as_in_context)",
                          op, a->storage->ctx->name, b->storage->ctx->name);
    }
    return LAM_OK;
}

/* ---- tensors ---- */

static void list_link(tensor_list *l, lam_tensor *t) {
    pthread_mutex_lock(&lists_lock);
    t->prev = NULL;
    t->next = l->head;
    if (l->head) {
        l->head->prev = t;
    }
    l->head = t;
    l->n++;
    pthread_mutex_unlock(&lists_lock);
}

static void list_unlink(tensor_list *l, lam_tensor *t) {
    pthread_mutex_lock(&lists_lock);
    if (t->prev) {
        t->prev->next = t->next;
    } else {
        l->head = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    l->n--;
    pthread_mutex_unlock(&lists_lock);
}

/* ---- pools: freed tensor structs and storage structs are reused (buffers: context.c) ---- */

#define POOL_MAX 1024

/* The pools keep pointers beside the objects, not inside them: a released tensor keeps its
 * LAM__TENSOR_DEAD mark (normal builds detect a second release) and can be poisoned whole.
 * They are per thread, so the op hot path takes no lock for them: a struct released on a
 * thread goes to that thread's pools. They hold plain memory only (nothing of the runtime):
 * a thread's pools are freed when it exits (a pthread key destructor), the calling thread's
 * also by lam_shutdown. */
typedef struct pool {
    void *slot[POOL_MAX];
    size_t n;
    size_t size;
} pool;
static _Thread_local pool tensor_pool = {.size = sizeof(lam_tensor)};
static _Thread_local pool storage_pool = {.size = sizeof(lam__storage)};
static _Thread_local bool pools_registered; /* the exit destructor is set for this thread */
static pthread_key_t pools_key;
static pthread_once_t pools_once = PTHREAD_ONCE_INIT;
static bool pools_key_ok;

static void pools_at_thread_exit(void *unused);

static void pools_key_create(void) {
    pools_key_ok = pthread_key_create(&pools_key, pools_at_thread_exit) == 0;
}

/* A dlclose()d liblamina must not leave a destructor pointing into unmapped code. */
__attribute__((destructor)) static void pools_key_delete(void) {
    if (pools_key_ok) {
        pthread_key_delete(pools_key);
        pools_key_ok = false;
    }
}

static void *pool_get(pool *p) {
    if (p->n > 0) {
        void *obj = p->slot[--p->n];
        UNPOISON(obj, p->size);
        memset(obj, 0, p->size);
        return obj;
    }
    return calloc(1, p->size);
}

static void pool_put(pool *p, void *obj) {
    if (!pools_registered) {
        pthread_once(&pools_once, pools_key_create);
        pools_registered = pools_key_ok && pthread_setspecific(pools_key, &tensor_pool) == 0;
    }
    if (p->n >= POOL_MAX || !pools_registered) {
        free(obj);
        return;
    }
    POISON(obj, p->size);
    p->slot[p->n++] = obj;
}

static void pool_flush(pool *p) {
    while (p->n > 0) {
        void *obj = p->slot[--p->n];
        UNPOISON(obj, p->size);
        free(obj);
    }
}

void lam__tensor_pool_flush(void) {
    pool_flush(&tensor_pool);
    pool_flush(&storage_pool);
}

static void pools_at_thread_exit(void *unused) {
    (void)unused;
    lam__tensor_pool_flush();
}

/* Reference counts: an increment needs no order (the caller already holds a reference); the
 * decrement that reaches zero must see every other thread's writes before freeing. */
static void storage_release(lam__storage *s) {
    if (s != NULL && atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) == 1) {
        if (s->ctx == NULL) { /* an orphan's: its buffer went with the runtime */
            free(s);
            return;
        }
        lam__ctx_cache_give(s->ctx, s->buf, s->bytes);
        pool_put(&storage_pool, s);
    }
}

lam_status lam__tensor_alloc(lam_ctx *ctx, const lam_shape *shape, lam_tensor **out) {
    int64_t numel;
    lam_status st = lam__shape_numel("lam_tensor_create", shape, &numel);
    if (st != LAM_OK) {
        return st;
    }
    if (ctx == NULL) {
        return shut_down("lam_tensor_create");
    }
    if (numel > (int64_t)(SIZE_MAX / 8)) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_tensor_create: Out of memory, %lld elements",
                          (long long)numel);
    }
    lam_tensor *t = pool_get(&tensor_pool);
    lam__storage *s = pool_get(&storage_pool);
    if (t == NULL || s == NULL) {
        free(t);
        free(s);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_tensor_create: Out of memory");
    }
    s->bytes = (size_t)numel * sizeof(float);
    s->buf = lam__ctx_cache_take(ctx, s->bytes);
    if (s->buf == NULL) {
        uint64_t mark = lam__error_mark();
        st = ctx->backend->desc.buffer_alloc(ctx->dev, s->bytes, &s->buf);
        st = lam__backend_status(st, mark, ctx->backend, "buffer_alloc");
        if (st != LAM_OK) {
            free(t);
            free(s);
            return lam__error_prefix(st, "%s", ctx->name);
        }
    }
    atomic_store_explicit(&s->refcount, 1, memory_order_relaxed);
    s->ctx = ctx;
    atomic_store_explicit(&t->refcount, 1, memory_order_relaxed);
    t->storage = s;
    t->shape = *shape;
    t->shape.reserved = 0;
    for (uint32_t i = shape->ndim; i < LAM_MAX_DIMS; i++) {
        t->shape.dims[i] = 0;
    }
    t->numel = numel;
    t->dtype = LAM_DTYPE_F32;
    t->magic = LAM__TENSOR_LIVE;
    list_link(&live, t);
    *out = t;
    return LAM_OK;
}

void lam__tensor_view(const lam_tensor *t, lam_tensor_view *v) {
    memset(v, 0, sizeof *v);
    v->buffer = t->storage->buf;
    v->offset = t->offset;
    v->dtype = t->dtype;
    v->ndim = t->shape.ndim;
    if (v->ndim == 0) {
        /* A scalar is handed to backends as one element of a 1-D view. */
        v->ndim = 1;
        v->dims[0] = 1;
        v->strides[0] = 1;
        return;
    }
    int64_t stride = 1;
    for (uint32_t i = t->shape.ndim; i-- > 0;) {
        v->dims[i] = t->shape.dims[i];
        v->strides[i] = stride;
        stride *= t->shape.dims[i];
    }
}

static lam_status resolve_ctx(lam_ctx **ctx) {
    if (*ctx == NULL) {
        return lam_ctx_default(ctx);
    }
    return LAM_OK;
}

lam_status lam_tensor_full(lam_ctx *ctx, const lam_shape *shape, float value, lam_tensor **out) {
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_full: Invalid argument, out is NULL");
    }
    *out = NULL;
    lam_status st = resolve_ctx(&ctx);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *t;
    st = lam__tensor_alloc(ctx, shape, &t);
    if (st != LAM_OK) {
        return st;
    }
    if (t->numel > 0) {
        lam_tensor_view v;
        lam__tensor_view(t, &v);
        double s[4] = {value, 0, 0, 0};
        st = lam__execute(ctx, LAM_OP_FILL, NULL, 0, &v, s, NULL);
        if (st != LAM_OK) {
            lam_tensor_release(t);
            return st;
        }
    }
    *out = t;
    return LAM_OK;
}

lam_status lam_tensor_create(lam_ctx *ctx, const lam_shape *shape, lam_tensor **out) {
    return lam_tensor_full(ctx, shape, 0.0f, out);
}

lam_status lam_tensor_from_data(lam_ctx *ctx, const lam_shape *shape, const float *data,
                                size_t count, lam_tensor **out) {
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_from_data: Invalid argument, out is NULL");
    }
    *out = NULL;
    if (data == NULL && count > 0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_from_data: Invalid argument, data is NULL");
    }
    lam_status st = resolve_ctx(&ctx);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *t;
    st = lam__tensor_alloc(ctx, shape, &t);
    if (st != LAM_OK) {
        return st;
    }
    st = lam_tensor_write(t, data, count);
    if (st != LAM_OK) {
        lam_tensor_release(t);
        return lam__error_prefix(st, "lam_tensor_from_data");
    }
    *out = t;
    return LAM_OK;
}

/* A released tensor (or garbage) is detected here while its struct waits in the pool with
 * its LAM__TENSOR_DEAD mark; the ASan build reports the read itself. */
static bool is_handle(const lam_tensor *t) {
    return t->magic == LAM__TENSOR_LIVE || t->magic == LAM__TENSOR_ORPHAN;
}

/* Entry check of the calls that take a tensor and return a status. */
static lam_status check_tensor(const char *fn, const lam_tensor *t) {
    if (t == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, tensor is NULL", fn);
    }
    if (!is_handle(t)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid argument, the tensor was released (use after "
                          "lam_tensor_release)",
                          fn);
    }
    if (t->magic == LAM__TENSOR_ORPHAN) {
        return shut_down(fn);
    }
    return LAM_OK;
}

lam_tensor *lam_tensor_retain(lam_tensor *t) {
    if (t == NULL) {
        return NULL;
    }
    if (!is_handle(t)) {
        lam__log(LAM_LOG_ERROR,
                 "lam_tensor_retain: Released tensor %p, retained after its last release; "
                 "returned NULL",
                 (void *)t);
        return NULL;
    }
    atomic_fetch_add_explicit(&t->refcount, 1, memory_order_relaxed);
    return t;
}

static void tensor_free(lam_tensor *t) {
    bool orphan = t->magic == LAM__TENSOR_ORPHAN;
    list_unlink(orphan ? &orphans : &live, t);
    t->magic = LAM__TENSOR_DEAD;
    if (t->ext.destroy != NULL) {
        void (*destroy)(void *data) = t->ext.destroy;
        void *data = t->ext.data;
        t->ext = (lam__tensor_ext){0};
        destroy(data);
    }
    storage_release(t->storage);
    if (orphan) {
        free(t);
    } else {
        pool_put(&tensor_pool, t);
    }
}

void lam_tensor_release(lam_tensor *t) {
    if (t == NULL) {
        return;
    }
    if (!is_handle(t) || atomic_load_explicit(&t->refcount, memory_order_relaxed) <= 0) {
        lam__log(LAM_LOG_ERROR,
                 "lam_tensor_release: Released tensor %p, released more often than retained; "
                 "ignored",
                 (void *)t);
        return;
    }
    if (atomic_fetch_sub_explicit(&t->refcount, 1, memory_order_acq_rel) == 1) {
        tensor_free(t);
    }
}

void lam__tensors_reclaim_all(void) {
    if (live.n > 0) {
        lam__log(LAM_LOG_WARN,
                 "lam_shutdown: %zu tensor%s still alive, data freed; the handles only accept "
                 "lam_tensor_release",
                 live.n, live.n == 1 ? "" : "s");
    }
    /* The structs stay for whoever holds them (a user, a block's parameters, a trainer, a
     * dict): releasing them later must not touch the backend, which is about to go. Storage is
     * shared by views: each buffer is freed once. */
    while (live.head != NULL) {
        lam_tensor *t = live.head;
        lam__storage *s = t->storage;
        if (s->ctx != NULL) {
            s->ctx->backend->desc.buffer_free(s->ctx->dev, s->buf);
            s->ctx = NULL;
            s->buf = NULL;
        }
        list_unlink(&live, t);
        t->magic = LAM__TENSOR_ORPHAN;
        list_link(&orphans, t);
    }
}

size_t lam_tensor_live_count(void) {
    pthread_mutex_lock(&lists_lock);
    size_t n = live.n;
    pthread_mutex_unlock(&lists_lock);
    return n;
}

const lam_shape *lam_tensor_shape(const lam_tensor *t) {
    return t ? &t->shape : NULL;
}

lam_dtype lam_tensor_dtype(const lam_tensor *t) {
    return t ? t->dtype : LAM_DTYPE_INVALID;
}

int64_t lam_tensor_numel(const lam_tensor *t) {
    return t ? t->numel : 0;
}

lam_ctx *lam_tensor_ctx(const lam_tensor *t) {
    return t ? t->storage->ctx : NULL;
}

static lam_status check_count(const char *fn, const lam_tensor *t, size_t count) {
    lam_status st = check_tensor(fn, t);
    if (st != LAM_OK) {
        return st;
    }
    if ((int64_t)count != t->numel) {
        char b[160];
        return lam__error(LAM_ERR_SHAPE,
                          "%s: Size mismatch, %zu elements given, tensor of shape %s has %lld", fn,
                          count, lam_shape_format(&t->shape, b, sizeof b), (long long)t->numel);
    }
    return LAM_OK;
}

lam_status lam_tensor_read(const lam_tensor *t, float *dst, size_t count) {
    lam_status st = check_count("lam_tensor_read", t, count);
    if (st != LAM_OK) {
        return st;
    }
    if (count == 0) {
        return LAM_OK;
    }
    if (dst == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_read: Invalid argument, dst is NULL");
    }
    lam_ctx *c = t->storage->ctx;
    uint64_t mark = lam__error_mark();
    st = c->backend->desc.buffer_read(c->dev, t->storage->buf, t->offset * sizeof(float), dst,
                                      count * sizeof(float));
    st = lam__backend_status(st, mark, c->backend, "buffer_read");
    if (st != LAM_OK) {
        return lam__error_prefix(st, "lam_tensor_read on %s", c->name);
    }
    return LAM_OK;
}

lam_status lam_tensor_write(lam_tensor *t, const float *src, size_t count) {
    lam_status st = check_count("lam_tensor_write", t, count);
    if (st != LAM_OK) {
        return st;
    }
    if (count == 0) {
        return LAM_OK;
    }
    if (src == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_write: Invalid argument, src is NULL");
    }
    lam_ctx *c = t->storage->ctx;
    uint64_t mark = lam__error_mark();
    st = c->backend->desc.buffer_write(c->dev, t->storage->buf, t->offset * sizeof(float), src,
                                       count * sizeof(float));
    st = lam__backend_status(st, mark, c->backend, "buffer_write");
    if (st != LAM_OK) {
        return lam__error_prefix(st, "lam_tensor_write on %s", c->name);
    }
    return LAM_OK;
}

lam_status lam__tensor_read_at(const lam_tensor *t, size_t first, float *dst, size_t count) {
    lam_status st = check_tensor("lam_tensor_read", t);
    if (st != LAM_OK) {
        return st;
    }
    if (first > (size_t)t->numel || count > (size_t)t->numel - first) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_read: Out of bounds, %zu elements at %zu of a tensor of %lld",
                          count, first, (long long)t->numel);
    }
    lam_ctx *c = t->storage->ctx;
    uint64_t mark = lam__error_mark();
    st = c->backend->desc.buffer_read(c->dev, t->storage->buf, (t->offset + first) * sizeof(float),
                                      dst, count * sizeof(float));
    st = lam__backend_status(st, mark, c->backend, "buffer_read");
    return st == LAM_OK ? LAM_OK : lam__error_prefix(st, "lam_tensor_read on %s", c->name);
}

lam_status lam__tensor_write_at(lam_tensor *t, size_t first, const float *src, size_t count) {
    lam_status st = check_tensor("lam_tensor_write", t);
    if (st != LAM_OK) {
        return st;
    }
    if (first > (size_t)t->numel || count > (size_t)t->numel - first) {
        return lam__error(
            LAM_ERR_INVALID_ARGUMENT,
            "lam_tensor_write: Out of bounds, %zu elements at %zu of a tensor of %lld", count,
            first, (long long)t->numel);
    }
    lam_ctx *c = t->storage->ctx;
    uint64_t mark = lam__error_mark();
    st = c->backend->desc.buffer_write(c->dev, t->storage->buf, (t->offset + first) * sizeof(float),
                                       src, count * sizeof(float));
    st = lam__backend_status(st, mark, c->backend, "buffer_write");
    return st == LAM_OK ? LAM_OK : lam__error_prefix(st, "lam_tensor_write on %s", c->name);
}

lam_status lam_tensor_scalar(const lam_tensor *t, float *value) {
    if (t == NULL || value == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_tensor_scalar: Invalid argument, NULL %s",
                          t == NULL ? "tensor" : "value");
    }
    lam_status st = check_tensor("lam_tensor_scalar", t);
    if (st != LAM_OK) {
        return st;
    }
    if (t->numel != 1) {
        char b[160];
        return lam__error(LAM_ERR_SHAPE,
                          "lam_tensor_scalar: Not a scalar, shape %s has %lld elements, expected 1",
                          lam_shape_format(&t->shape, b, sizeof b), (long long)t->numel);
    }
    return lam_tensor_read(t, value, 1);
}

lam_status lam_tensor_copyto(const lam_tensor *t, lam_ctx *ctx, lam_tensor **out) {
    if (out == NULL || t == NULL || ctx == NULL) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_tensor_copyto: Invalid argument, NULL %s",
                          t == NULL     ? "tensor"
                          : ctx == NULL ? "ctx"
                                        : "out");
    }
    *out = NULL;
    lam_status st = check_tensor("lam_tensor_copyto", t);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *d;
    st = lam__tensor_alloc(ctx, &t->shape, &d);
    if (st != LAM_OK) {
        return st;
    }
    size_t bytes = (size_t)t->numel * sizeof(float);
    lam_ctx *sc = t->storage->ctx;
    if (bytes == 0) {
        *out = d;
        return LAM_OK;
    }
    if (sc == ctx) {
        uint64_t mark = lam__error_mark();
        st = ctx->backend->desc.buffer_copy(ctx->dev, d->storage->buf, 0, t->storage->buf,
                                            t->offset * sizeof(float), bytes);
        st = lam__backend_status(st, mark, ctx->backend, "buffer_copy");
        if (st != LAM_OK) {
            lam__error_prefix(st, "lam_tensor_copyto %s", ctx->name);
        }
    } else {
        /* Across backends the host is the meeting point. */
        float *tmp = malloc(bytes);
        if (tmp == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_tensor_copyto: Out of memory, %zu bytes",
                            bytes);
        } else {
            st = lam_tensor_read(t, tmp, (size_t)t->numel);
            if (st == LAM_OK) {
                st = lam_tensor_write(d, tmp, (size_t)t->numel);
            }
            free(tmp);
        }
        if (st != LAM_OK) {
            lam__error_prefix(st, "lam_tensor_copyto %s -> %s", sc->name, ctx->name);
        }
    }
    if (st != LAM_OK) {
        lam_tensor_release(d);
        return st;
    }
    *out = d;
    return LAM_OK;
}

lam_status lam_tensor_as_in_context(lam_tensor *t, lam_ctx *ctx, lam_tensor **out) {
    if (t != NULL && ctx != NULL && out != NULL && is_handle(t) && t->storage->ctx == ctx) {
        *out = lam_tensor_retain(t);
        return LAM_OK;
    }
    return lam_tensor_copyto(t, ctx, out);
}

lam_status lam__tensor_reshape_view(lam_tensor *t, const lam_shape *shape, lam_tensor **out) {
    if (out == NULL || t == NULL || shape == NULL) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "reshape: Invalid argument, NULL %s",
                          t == NULL       ? "tensor"
                          : shape == NULL ? "shape"
                                          : "out");
    }
    *out = NULL;
    lam_status st = check_tensor("reshape", t);
    if (st != LAM_OK) {
        return st;
    }
    if (shape->ndim > LAM_MAX_DIMS) {
        return lam__error(LAM_ERR_SHAPE, "reshape: Too many dims, %u given, at most %d",
                          shape->ndim, LAM_MAX_DIMS);
    }
    lam_shape s = *shape;
    s.reserved = 0;
    int infer = -1;
    int64_t known = 1, bound = 1;
    char b1[160], b2[160];
    for (uint32_t i = 0; i < s.ndim; i++) {
        if (s.dims[i] == -1 && infer < 0) {
            infer = (int)i;
        } else if (s.dims[i] < 0) {
            return lam__error(LAM_ERR_SHAPE, "reshape: Invalid shape, %s (at most one -1 dim)",
                              lam_shape_format(shape, b1, sizeof b1));
        } else if (!lam__shape_bound_mul(&bound, s.dims[i])) {
            return lam__error(LAM_ERR_SHAPE,
                              "reshape: Shape too large, %s has more than 2^60 "
                              "elements",
                              lam_shape_format(shape, b1, sizeof b1));
        } else {
            known *= s.dims[i]; /* |known| <= bound: cannot overflow */
        }
    }
    if (infer >= 0) {
        if (known == 0 || t->numel % known != 0) {
            return lam__error(LAM_ERR_SHAPE,
                              "reshape: Size mismatch, cannot reshape %s (%lld elements) to %s",
                              lam_shape_format(&t->shape, b1, sizeof b1), (long long)t->numel,
                              lam_shape_format(shape, b2, sizeof b2));
        }
        s.dims[infer] = t->numel / known;
        known = t->numel;
    }
    if (known != t->numel) {
        return lam__error(LAM_ERR_SHAPE,
                          "reshape: Size mismatch, cannot reshape %s (%lld elements) to %s (%lld "
                          "elements)",
                          lam_shape_format(&t->shape, b1, sizeof b1), (long long)t->numel,
                          lam_shape_format(&s, b2, sizeof b2), (long long)known);
    }
    for (uint32_t i = s.ndim; i < LAM_MAX_DIMS; i++) {
        s.dims[i] = 0;
    }
    lam_tensor *r = pool_get(&tensor_pool);
    if (r == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "reshape: Out of memory");
    }
    r->magic = LAM__TENSOR_LIVE;
    atomic_store_explicit(&r->refcount, 1, memory_order_relaxed);
    r->storage = t->storage;
    atomic_fetch_add_explicit(&r->storage->refcount, 1, memory_order_relaxed);
    r->offset = t->offset;
    r->shape = s;
    r->numel = t->numel;
    r->dtype = t->dtype;
    list_link(&live, r);
    *out = r;
    return LAM_OK;
}
