/* Tensors: reference-counted views of backend storage (shape helpers: shape.c). */
#include "tensor.h"
#include "context.h"
#include "error.h"
#include "log.h"
#include "op_name.h"
#include "registry.h"
#include "shape.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lam_status read_bytes(const char *fn, const lam_tensor *t, void *dst, size_t bytes);
static lam_status write_bytes(const char *fn, lam_tensor *t, const void *src, size_t bytes);

/* ---- execution ---- */

static lam_status shut_down(const char *fn) {
    return lam__error(LAM_ERR_STATE,
                      "%s: Runtime shut down, the tensor's data was freed by lam_shutdown()", fn);
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

/* Reference counts: an increment needs no order (the caller already holds a reference); the
 * decrement that reaches zero must see every other thread's writes before freeing. */
/* Drops one reference; true when it was the last. A count of 1 seen with acquire order means
 * the caller holds the only reference: no other thread can retain or release it any more (that
 * needs a reference), and every earlier release on other threads happened before the load, so
 * the common case (a temporary released by the thread that made it) needs no atomic
 * read-modify-write. */
static bool release_last(atomic_long *refcount) {
    if (atomic_load_explicit(refcount, memory_order_acquire) == 1) {
        atomic_store_explicit(refcount, 0, memory_order_relaxed);
        return true;
    }
    return atomic_fetch_sub_explicit(refcount, 1, memory_order_acq_rel) == 1;
}

static void storage_release(lam__storage *s) {
    if (s != NULL && release_last(&s->refcount)) {
        if (s->ctx == NULL) { /* an orphan's: its buffer went with the runtime */
            free(s);
            return;
        }
        if (s->release != NULL) { /* host memory: its buffer is not for reuse */
            s->ctx->backend->desc.buffer_free(s->ctx->dev, s->buf);
            s->release(s->release_arg);
            s->buf = NULL;
            s->release = NULL;
            s->release_arg = NULL;
        }
        lam__heap *h = lam__heap_mine();
        if (h == NULL) {
            if (s->buf != NULL) {
                lam__ctx_cache_give(s->ctx, s->buf, s->bytes);
            }
            free(s);
            return;
        }
        if (s->buf != NULL) {
            lam__heap_buffer_give(h, s->ctx, s->buf, s->bytes);
        }
        lam__heap_storage_put(h, s);
    }
}

lam_status lam__tensor_wrap_host(lam_ctx *ctx, const lam_shape *shape, void *ptr, size_t bytes,
                                 void (*release)(void *arg), void *arg, lam_tensor **out) {
    *out = NULL;
    int64_t numel;
    lam_status st = lam__shape_numel("loading", shape, &numel);
    if (st == LAM_OK && (ctx == NULL || ctx->backend->desc.buffer_from_host_ptr == NULL ||
                         (uint64_t)numel * sizeof(float) != bytes || bytes == 0)) {
        st = LAM_ERR_UNSUPPORTED; /* the caller copies: no message needed */
    }
    lam__heap *h = st == LAM_OK ? lam__heap_mine() : NULL;
    lam_tensor *t = h != NULL ? lam__heap_tensor_get(h) : NULL;
    lam__storage *s = h != NULL ? lam__heap_storage_get(h) : NULL;
    if (st == LAM_OK && (t == NULL || s == NULL)) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "loading: Out of memory");
    }
    if (st == LAM_OK && (st = lam__call_enter("loading")) == LAM_OK) {
        uint64_t mark = lam__error_mark();
        st = ctx->backend->desc.buffer_from_host_ptr(ctx->dev, ptr, bytes, 0, &s->buf);
        lam__call_leave();
        if (st != LAM_OK && st != LAM_ERR_UNSUPPORTED) { /* unsupported: the caller copies */
            st = lam__error_prefix(
                lam__backend_status(st, mark, ctx->backend, "buffer_from_host_ptr"), "%s",
                ctx->name);
        }
    }
    if (st != LAM_OK) {
        free(t);
        free(s);
        release(arg);
        return st;
    }
    atomic_store_explicit(&s->refcount, 1, memory_order_relaxed);
    s->ctx = ctx;
    s->bytes = bytes;
    s->release = release;
    s->release_arg = arg;
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
    lam__heap_link(t);
    *out = t;
    return LAM_OK;
}

lam_status lam__tensor_alloc(lam_ctx *ctx, const lam_shape *shape, lam_tensor **out) {
    return lam__tensor_alloc_dtype(ctx, LAM_DTYPE_F32, shape, out);
}

lam_status lam__tensor_alloc_dtype(lam_ctx *ctx, lam_dtype dtype, const lam_shape *shape,
                                   lam_tensor **out) {
    *out = NULL;
    size_t es = lam_dtype_size(dtype);
    if (es == 0 || dtype == LAM_DTYPE_F64) {
        return lam__error(LAM_ERR_DTYPE,
                          "lam_tensor_create: Unsupported dtype %d, tensors are F32, F16, BF16, "
                          "I32, I64 or U8",
                          (int)dtype);
    }
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
    lam__heap *h = lam__heap_mine();
    if (h == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_tensor_create: Out of memory");
    }
    st = lam__call_enter("lam_tensor_create");
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *t = lam__heap_tensor_get(h);
    lam__storage *s = lam__heap_storage_get(h);
    if (t == NULL || s == NULL) {
        lam__call_leave();
        free(t);
        free(s);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_tensor_create: Out of memory");
    }
    s->bytes = (size_t)numel * es;
    s->buf = lam__heap_buffer_take(h, ctx, s->bytes);
    if (s->buf == NULL) {
        uint64_t mark = lam__error_mark();
        st = ctx->backend->desc.buffer_alloc(ctx->dev, s->bytes, &s->buf);
        st = lam__backend_status(st, mark, ctx->backend, "buffer_alloc");
        if (st != LAM_OK) {
            lam__call_leave();
            free(t);
            free(s);
            return lam__error_prefix(st, "%s", ctx->name);
        }
    }
    lam__call_leave();
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
    t->dtype = dtype;
    t->magic = LAM__TENSOR_LIVE;
    lam__heap_link(t);
    *out = t;
    return LAM_OK;
}

void lam__tensor_view(const lam_tensor *t, lam_tensor_view *v) {
    memset(v, 0, sizeof *v);
    const int64_t es = (int64_t)lam_dtype_size(t->dtype);
    v->struct_size = (uint32_t)sizeof *v;
    v->buffer = t->storage->buf;
    v->offset = t->offset * (uint64_t)es;
    v->dtype = t->dtype;
    v->ndim = t->shape.ndim;
    if (v->ndim == 0) {
        /* A scalar is handed to backends as one element of a 1-D view. */
        v->ndim = 1;
        v->dims[0] = 1;
        v->strides[0] = es;
        return;
    }
    int64_t stride = es;
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
    if (orphan) {
        lam__heap_orphan_unlink(t);
    }
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
        lam__heap_unlink(t);
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
    if (release_last(&t->refcount)) {
        tensor_free(t);
    }
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

static lam_status read_bytes(const char *fn, const lam_tensor *t, void *dst, size_t bytes) {
    if (bytes == 0) {
        return LAM_OK;
    }
    if (dst == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, dst is NULL", fn);
    }
    lam_status st = lam__call_enter(fn);
    if (st != LAM_OK) {
        return st;
    }
    lam_ctx *c = t->storage->ctx;
    uint64_t mark = lam__error_mark();
    st = c->backend->desc.buffer_read(c->dev, t->storage->buf, t->offset * lam_dtype_size(t->dtype),
                                      dst, bytes);
    lam__call_leave();
    st = lam__backend_status(st, mark, c->backend, "buffer_read");
    if (st != LAM_OK) {
        return lam__error_prefix(st, "%s on %s", fn, c->name);
    }
    return LAM_OK;
}

static lam_status write_bytes(const char *fn, lam_tensor *t, const void *src, size_t bytes) {
    if (bytes == 0) {
        return LAM_OK;
    }
    if (src == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, src is NULL", fn);
    }
    lam_status st = lam__call_enter(fn);
    if (st != LAM_OK) {
        return st;
    }
    lam_ctx *c = t->storage->ctx;
    uint64_t mark = lam__error_mark();
    st = c->backend->desc.buffer_write(c->dev, t->storage->buf,
                                       t->offset * lam_dtype_size(t->dtype), src, bytes);
    lam__call_leave();
    st = lam__backend_status(st, mark, c->backend, "buffer_write");
    if (st != LAM_OK) {
        return lam__error_prefix(st, "%s on %s", fn, c->name);
    }
    return LAM_OK;
}

static lam_status need_f32(const char *fn, const lam_tensor *t) {
    if (t->dtype != LAM_DTYPE_F32) {
        return lam__error(LAM_ERR_DTYPE,
                          "%s: Dtype mismatch, the tensor holds %s, this function moves float32 "
                          "(use %s_bytes)",
                          fn, lam__dtype_name(t->dtype), fn);
    }
    return LAM_OK;
}

lam_status lam_tensor_read(const lam_tensor *t, float *dst, size_t count) {
    lam_status st = check_count("lam_tensor_read", t, count);
    if (st == LAM_OK) {
        st = need_f32("lam_tensor_read", t);
    }
    return st != LAM_OK ? st : read_bytes("lam_tensor_read", t, dst, count * sizeof(float));
}

lam_status lam_tensor_write(lam_tensor *t, const float *src, size_t count) {
    lam_status st = check_count("lam_tensor_write", t, count);
    if (st == LAM_OK) {
        st = need_f32("lam_tensor_write", t);
    }
    return st != LAM_OK ? st : write_bytes("lam_tensor_write", t, src, count * sizeof(float));
}

static lam_status check_bytes(const char *fn, const lam_tensor *t, size_t bytes) {
    lam_status st = check_tensor(fn, t);
    if (st != LAM_OK) {
        return st;
    }
    size_t want = (size_t)t->numel * lam_dtype_size(t->dtype);
    if (bytes != want) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Size mismatch, %zu bytes given, the tensor holds %lld %s elements "
                          "(%zu bytes)",
                          fn, bytes, (long long)t->numel, lam__dtype_name(t->dtype), want);
    }
    return LAM_OK;
}

lam_status lam_tensor_read_bytes(const lam_tensor *t, void *dst, size_t bytes) {
    if (t == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_read_bytes: Invalid argument, NULL tensor");
    }
    lam_status st = check_bytes("lam_tensor_read_bytes", t, bytes);
    return st != LAM_OK ? st : read_bytes("lam_tensor_read_bytes", t, dst, bytes);
}

lam_status lam_tensor_write_bytes(lam_tensor *t, const void *src, size_t bytes) {
    if (t == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_write_bytes: Invalid argument, NULL tensor");
    }
    lam_status st = check_bytes("lam_tensor_write_bytes", t, bytes);
    return st != LAM_OK ? st : write_bytes("lam_tensor_write_bytes", t, src, bytes);
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

float *lam__tensor_host_f32(lam_tensor *t) {
    if (t == NULL || t->magic != LAM__TENSOR_LIVE || t->dtype != LAM_DTYPE_F32 ||
        t->storage->ctx == NULL) {
        return NULL;
    }
    lam_ctx *c = t->storage->ctx;
    const lam_backend_desc *b = &c->backend->desc;
    if (b->buffer_host_ptr == NULL || lam_ctx_synchronize(c) != LAM_OK) {
        return NULL;
    }
    char *p = b->buffer_host_ptr(c->dev, t->storage->buf);
    return p != NULL ? (float *)(void *)(p + t->offset * sizeof(float)) : NULL;
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
    st = lam__tensor_alloc_dtype(ctx, t->dtype, &t->shape, &d);
    if (st != LAM_OK) {
        return st;
    }
    size_t es = lam_dtype_size(t->dtype);
    size_t bytes = (size_t)t->numel * es;
    lam_ctx *sc = t->storage->ctx;
    if (bytes == 0) {
        *out = d;
        return LAM_OK;
    }
    if (sc == ctx) {
        st = lam__call_enter("lam_tensor_copyto");
        if (st != LAM_OK) {
            lam_tensor_release(d);
            return st;
        }
        uint64_t mark = lam__error_mark();
        st = ctx->backend->desc.buffer_copy(ctx->dev, d->storage->buf, 0, t->storage->buf,
                                            t->offset * es, bytes);
        lam__call_leave();
        st = lam__backend_status(st, mark, ctx->backend, "buffer_copy");
        if (st != LAM_OK) {
            lam__error_prefix(st, "lam_tensor_copyto %s", ctx->name);
        }
    } else {
        /* Across backends the host is the meeting point. */
        void *tmp = malloc(bytes);
        if (tmp == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_tensor_copyto: Out of memory, %zu bytes",
                            bytes);
        } else {
            st = read_bytes("lam_tensor_copyto", t, tmp, bytes);
            if (st == LAM_OK) {
                st = write_bytes("lam_tensor_copyto", d, tmp, bytes);
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

lam_status lam__tensor_slice_view(lam_tensor *t, size_t first, const lam_shape *shape,
                                  lam_tensor **out) {
    *out = NULL;
    lam_status st = check_tensor("slice view", t);
    if (st != LAM_OK) {
        return st;
    }
    int64_t n = lam_shape_numel(shape);
    if (n < 0 || shape->ndim > LAM_MAX_DIMS || first > (size_t)t->numel ||
        (size_t)n > (size_t)t->numel - first) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "slice view: Out of range, %lld elements from %zu of %lld", (long long)n,
                          first, (long long)t->numel);
    }
    lam__heap *h = lam__heap_mine();
    lam_tensor *r = h != NULL ? lam__heap_tensor_get(h) : NULL;
    if (r == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "slice view: Out of memory");
    }
    r->magic = LAM__TENSOR_LIVE;
    atomic_store_explicit(&r->refcount, 1, memory_order_relaxed);
    r->storage = t->storage;
    atomic_fetch_add_explicit(&r->storage->refcount, 1, memory_order_relaxed);
    r->offset = t->offset + first;
    r->shape = *shape;
    r->shape.reserved = 0;
    for (uint32_t i = r->shape.ndim; i < LAM_MAX_DIMS; i++) {
        r->shape.dims[i] = 0;
    }
    r->numel = n;
    r->dtype = t->dtype;
    lam__heap_link(r);
    *out = r;
    return LAM_OK;
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
    lam__heap *h = lam__heap_mine();
    lam_tensor *r = h != NULL ? lam__heap_tensor_get(h) : NULL;
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
    lam__heap_link(r);
    *out = r;
    return LAM_OK;
}
