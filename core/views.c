/*
 * Slices and permutations of a tensor (lam_tensor_slice, lam_tensor_permute): the result is a
 * contiguous tensor computed by one strided COPY on the tensor's backend, differentiated by a
 * closure that copies the gradient back through the same strided view of a zero tensor.
 */
#include "views.h"
#include "execute.h"
#include "backward.h"
#include "error.h"
#include "shape.h"
#include "tape.h"
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

/* Element strides of a contiguous tensor of this shape. */
static void dense_strides(const lam_shape *s, int64_t *st) {
    int64_t acc = 1;
    for (int i = (int)s->ndim - 1; i >= 0; i--) {
        st[i] = acc;
        acc *= s->dims[i];
    }
}

/* How the result reads its source: per result axis, the source's element stride. */
typedef struct strided {
    lam_shape base;  /* the source's shape */
    lam_shape shape; /* the result's shape */
    uint64_t offset; /* first element, relative to the source's start */
    int64_t strides[LAM_MAX_DIMS];
} strided;

/* The view (byte units, as the ABI) through which the result reads t. */
static void view_of(const lam_tensor *t, const strided *s, lam_tensor_view *v) {
    lam__tensor_view(t, v); /* buffer, dtype, offset of t */
    const int64_t es = (int64_t)lam_dtype_size(lam_tensor_dtype(t));
    memset(v->dims, 0, sizeof v->dims);
    memset(v->strides, 0, sizeof v->strides);
    v->offset += s->offset * (uint64_t)es;
    v->ndim = s->shape.ndim;
    for (uint32_t i = 0; i < s->shape.ndim; i++) {
        v->dims[i] = s->shape.dims[i];
        v->strides[i] = s->strides[i] * es;
    }
}

static lam_status strided_backward(void *ctx, const lam__node *n, lam_tensor *g) {
    const strided *s = ctx;
    lam_tensor *z = NULL;
    lam_status st = lam_tensor_create(lam_tensor_ctx(g), &s->base, &z);
    if (st == LAM_OK && lam_tensor_numel(g) > 0) {
        lam_tensor_view dst, src;
        view_of(z, s, &dst);
        lam__tensor_view(g, &src);
        src.ndim = dst.ndim;
        memcpy(src.dims, dst.dims, sizeof src.dims);
        dense_strides(&s->shape, src.strides);
        const int64_t es = (int64_t)lam_dtype_size(lam_tensor_dtype(g));
        for (uint32_t i = 0; i < src.ndim; i++) {
            src.strides[i] *= es; /* views are in bytes */
        }
        st = lam__execute(lam_tensor_ctx(g), LAM_OP_COPY, &src, 1, &dst, NULL, NULL);
    }
    if (st == LAM_OK) {
        st = lam__grad_accumulate(n->in[0], z);
    }
    lam_tensor_release(z);
    return st;
}

/* Runs the strided copy and records it; takes ownership of s. */
static lam_status run(const char *fn, lam_tensor *t, strided *s, lam_tensor **out) {
    lam_tensor *o = NULL;
    lam_status st = lam__tensor_alloc_dtype(lam_tensor_ctx(t), lam_tensor_dtype(t), &s->shape, &o);
    if (st == LAM_OK && lam_tensor_numel(o) > 0) {
        lam_tensor_view src, dst;
        view_of(t, s, &src);
        lam__tensor_view(o, &dst);
        st = lam__execute(lam_tensor_ctx(t), LAM_OP_COPY, &src, 1, &dst, NULL, NULL);
    }
    if (st == LAM_OK && lam__recording() && lam__needs_grad(t)) {
        lam_tensor *in[1] = {t};
        st = lam__record_closure(in, 1, &o, (lam__closure){strided_backward, s, free});
        s = NULL; /* the closure owns it (freed on failure too) */
    }
    free(s);
    if (st != LAM_OK) {
        lam_tensor_release(o);
        return lam__error_prefix(st, "%s", fn);
    }
    *out = o;
    return LAM_OK;
}

static lam_status start(const char *fn, lam_tensor *t, lam_tensor **out, strided **s) {
    if (out == NULL || t == NULL) {
        if (out != NULL) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL %s", fn,
                          t == NULL ? "tensor" : "out");
    }
    *out = NULL;
    if (lam_tensor_ctx(t) == NULL) {
        return lam__error(LAM_ERR_STATE, "%s: Runtime shut down, the tensor's data was freed", fn);
    }
    *s = calloc(1, sizeof **s);
    if (*s == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", fn);
    }
    (*s)->base = *lam_tensor_shape(t);
    (*s)->shape = (*s)->base;
    dense_strides(&(*s)->base, (*s)->strides);
    return LAM_OK;
}

lam_status lam_tensor_slice(lam_tensor *t, uint32_t axis, int64_t begin, int64_t stop, int64_t step,
                            lam_tensor **out) {
    strided *s;
    lam_status st = start("lam_tensor_slice", t, out, &s);
    if (st != LAM_OK) {
        return st;
    }
    int64_t n = axis < s->base.ndim ? s->base.dims[axis] : 0;
    if (axis >= s->base.ndim || step < 1 || begin < 0 || stop < begin || stop > n) {
        char b[160];
        lam_shape_format(&s->base, b, sizeof b);
        free(s);
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_slice: Invalid slice, axis %u [%lld:%lld:%lld] of shape %s "
                          "(0 <= begin <= stop <= dim, step >= 1)",
                          (unsigned)axis, (long long)begin, (long long)stop, (long long)step, b);
    }
    s->shape.dims[axis] = (stop - begin + step - 1) / step;
    s->offset = (uint64_t)(begin * s->strides[axis]);
    s->strides[axis] *= step;
    return run("lam_tensor_slice", t, s, out);
}

lam_status lam_tensor_permute(lam_tensor *t, const uint32_t *perm, uint32_t n, lam_tensor **out) {
    strided *s;
    lam_status st = start("lam_tensor_permute", t, out, &s);
    if (st != LAM_OK) {
        return st;
    }
    bool seen[LAM_MAX_DIMS] = {false};
    bool ok = perm != NULL && n == s->base.ndim;
    for (uint32_t i = 0; ok && i < n; i++) {
        ok = perm[i] < n && !seen[perm[i]];
        if (ok) {
            seen[perm[i]] = true;
        }
    }
    if (!ok) {
        char b[160];
        free(s);
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_tensor_permute: Invalid permutation, it must list each of the %u "
                          "axes of shape %s once",
                          (unsigned)lam_tensor_shape(t)->ndim,
                          lam_shape_format(lam_tensor_shape(t), b, sizeof b));
    }
    int64_t dense[LAM_MAX_DIMS];
    memcpy(dense, s->strides, sizeof dense);
    for (uint32_t i = 0; i < n; i++) {
        s->shape.dims[i] = s->base.dims[perm[i]];
        s->strides[i] = dense[perm[i]];
    }
    return run("lam_tensor_permute", t, s, out);
}
