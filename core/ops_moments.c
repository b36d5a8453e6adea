/*
 * Constant padding and moments (mean and variance over axes, what LayerNorm and BatchNorm
 * compose): each one backend op (PAD, MOMENTS) or the CPU one staged, differentiated here.
 * Moments over axes that are not adjacent permute them together first (a recorded copy), so
 * the backend always sees the (outer, n, inner) form.
 */
#include "ops_nn.h"
#include "backward.h"
#include "error.h"
#include "execute.h"
#include "op_run.h"
#include "shape.h"
#include "tape.h"
#include "tensor.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static lam_status check_x(const char *fn, const lam_tensor *x, lam_tensor **out) {
    if (out == NULL || x == NULL) {
        if (out != NULL) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL tensor or output",
                          fn);
    }
    *out = NULL;
    if (lam_tensor_ctx(x) == NULL) {
        return lam__error(LAM_ERR_STATE, "%s: Runtime shut down, the tensor's data was freed", fn);
    }
    return LAM_OK;
}

/* Copies `src`'s elements read through element strides `strides` (dims of dst) into dst. */
static lam_status strided_copy(const lam_tensor *src, uint64_t offset, const int64_t *strides,
                               lam_tensor *dst) {
    if (lam_tensor_numel(dst) == 0) {
        return LAM_OK;
    }
    lam_tensor_view vs, vd;
    lam__tensor_view(src, &vs);
    lam__tensor_view(dst, &vd);
    const int64_t es = (int64_t)lam_dtype_size(lam_tensor_dtype(src)); /* views are in bytes */
    vs.offset += offset * (uint64_t)es;
    vs.ndim = vd.ndim;
    memcpy(vs.dims, vd.dims, sizeof vs.dims);
    for (uint32_t i = 0; i < LAM_MAX_DIMS; i++) {
        vs.strides[i] = strides[i] * es;
    }
    return lam__execute(lam_tensor_ctx(dst), LAM_OP_COPY, &vs, 1, &vd, NULL, NULL);
}

/* ---- pad ---- */

typedef struct pad_ctx {
    lam_shape in_shape;
    int64_t before[LAM_MAX_DIMS];
} pad_ctx;

/* The gradient of a pad is the inner block of g. */
static lam_status pad_backward(void *p, const lam__node *n, lam_tensor *g) {
    const pad_ctx *c = p;
    const lam_shape *gs = lam_tensor_shape(g);
    int64_t strides[LAM_MAX_DIMS] = {0}, acc = 1;
    uint64_t offset = 0;
    for (uint32_t i = gs->ndim; i-- > 0;) {
        strides[i] = acc;
        offset += (uint64_t)(c->before[i] * acc);
        acc *= gs->dims[i];
    }
    lam_tensor *gx = NULL;
    lam_status st = lam__tensor_alloc(lam_tensor_ctx(g), &c->in_shape, &gx);
    if (st == LAM_OK) {
        st = strided_copy(g, offset, strides, gx);
    }
    if (st == LAM_OK) {
        st = lam__grad_accumulate(n->in[0], gx);
    }
    lam_tensor_release(gx);
    return st;
}

static lam_status pad(const char *fn, const lam_tensor *x, const lam_pad_params *p,
                      lam_tensor **out) {
    lam_status st = check_x(fn, x, out);
    if (st != LAM_OK) {
        return st;
    }
    const lam_shape *xs = &x->shape;
    lam_shape s = *xs;
    for (uint32_t i = 0; i < xs->ndim; i++) {
        if (p->before[i] < 0 || p->after[i] < 0) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Invalid argument, axis %u: padding %lld before and %lld after "
                              "(each >= 0)",
                              fn, (unsigned)i, (long long)p->before[i], (long long)p->after[i]);
        }
        if (p->before[i] > INT64_MAX / 4 - xs->dims[i] ||
            p->after[i] > INT64_MAX / 4 - xs->dims[i] - p->before[i]) {
            return lam__error(LAM_ERR_SHAPE, "%s: Shape too large, axis %u padded overflows", fn,
                              (unsigned)i);
        }
        s.dims[i] = xs->dims[i] + p->before[i] + p->after[i];
    }
    lam_tensor *o = NULL;
    lam_ctx *ctx = lam_tensor_ctx(x);
    st = lam__tensor_alloc_dtype(ctx, x->dtype, &s, &o);
    if (st == LAM_OK && lam_tensor_numel(o) > 0) {
        if (lam_tensor_numel(x) > 0) {
            lam_tensor *in[1] = {(lam_tensor *)x};
            st = lam__run_op(LAM_OP_PAD, ctx, in, 1, &o, 1, p);
        } else if (x->dtype == LAM_DTYPE_F32) {
            st = lam_op_fill(o, (float)p->value); /* nothing inside: all padding */
        } else {
            st = lam__error(LAM_ERR_DTYPE, "%s: Unsupported dtype %s for an empty input", fn,
                            lam__dtype_name(x->dtype));
        }
    }
    if (st == LAM_OK && lam__recording() && lam__needs_grad(x)) {
        pad_ctx *c = calloc(1, sizeof *c);
        if (c == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", fn);
        } else {
            c->in_shape = *xs;
            memcpy(c->before, p->before, sizeof c->before);
            lam_tensor *in[1] = {(lam_tensor *)x};
            st = lam__record_closure(in, 1, &o, (lam__closure){pad_backward, c, free});
        }
    }
    if (st != LAM_OK) {
        lam_tensor_release(o);
        return st;
    }
    *out = o;
    return LAM_OK;
}

lam_status lam__op_pad(const lam_tensor *x, const lam_pad_params *p, lam_tensor **out) {
    if (p == NULL || p->struct_size < sizeof *p) {
        if (out != NULL) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "pad: Invalid argument, params must point to a lam_pad_params");
    }
    return pad("pad", x, p, out);
}

lam_status lam_op_pad(const lam_tensor *x, const int64_t *before, const int64_t *after, float value,
                      lam_tensor **out) {
    const char *fn = "lam_op_pad";
    lam_status st = check_x(fn, x, out);
    if (st != LAM_OK) {
        return st;
    }
    if (before == NULL || after == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL %s", fn,
                          before == NULL ? "before" : "after");
    }
    lam_pad_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.value = value;
    for (uint32_t i = 0; i < x->shape.ndim; i++) {
        p.before[i] = before[i];
        p.after[i] = after[i];
    }
    return pad(fn, x, &p, out);
}

/* ---- moments ---- */

typedef struct mom_ctx {
    int64_t n;        /* elements reduced per output */
    lam_tensor *mean; /* the variance's: the mean, retained */
} mom_ctx;

static void mom_free(void *p) {
    mom_ctx *c = p;
    if (c != NULL) {
        lam_tensor_release(c->mean);
        free(c);
    }
}

/* d mean / dx = 1/n: g (outer, 1, inner) repeated along the middle axis, scaled. */
static lam_status mean_backward(void *p, const lam__node *n, lam_tensor *g) {
    const mom_ctx *c = p;
    const lam_shape *gs = lam_tensor_shape(g);
    lam_shape s = *lam_tensor_shape(n->in[0]);
    lam_tensor *rep = NULL, *gx = NULL;
    lam_status st = lam__tensor_alloc(lam_tensor_ctx(g), &s, &rep);
    if (st == LAM_OK) {
        int64_t strides[LAM_MAX_DIMS] = {gs->dims[2], 0, 1};
        st = strided_copy(g, 0, strides, rep);
    }
    if (st == LAM_OK) {
        st = lam_op_mul_scalar(rep, 1.0f / (float)c->n, &gx);
    }
    if (st == LAM_OK) {
        st = lam__grad_accumulate(n->in[0], gx);
    }
    lam_tensor_release(rep);
    lam_tensor_release(gx);
    return st;
}

/* d var / dx = 2 (x - mean) / n (the mean's own dependence on x cancels: sum(x - mean) = 0). */
static lam_status var_backward(void *p, const lam__node *n, lam_tensor *g) {
    const mom_ctx *c = p;
    lam_tensor *d = NULL, *gs = NULL, *gx = NULL;
    lam_status st = lam_op_sub(n->in[0], c->mean, &d);
    if (st == LAM_OK) {
        st = lam_op_mul_scalar(g, 2.0f / (float)c->n, &gs);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(d, gs, &gx);
    }
    if (st == LAM_OK) {
        st = lam__grad_accumulate(n->in[0], gx);
    }
    lam_tensor_release(d);
    lam_tensor_release(gs);
    lam_tensor_release(gx);
    return st;
}

/* Which axes are reduced; false with the error set for a bad list. */
static lam_status axes_mask(const char *fn, const lam_shape *s, const int32_t *axes,
                            uint32_t n_axes, bool *mask) {
    memset(mask, 0, LAM_MAX_DIMS * sizeof *mask);
    if (axes == NULL || n_axes == 0) {
        for (uint32_t i = 0; i < s->ndim; i++) {
            mask[i] = true;
        }
        return LAM_OK;
    }
    for (uint32_t i = 0; i < n_axes; i++) {
        int64_t a = axes[i] < 0 ? (int64_t)axes[i] + s->ndim : axes[i];
        if (a < 0 || a >= (int64_t)s->ndim || mask[a]) {
            char b[160];
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Invalid argument, axis %d %s for shape %s", fn, (int)axes[i],
                              (a < 0 || a >= (int64_t)s->ndim) ? "out of range" : "repeated",
                              lam_shape_format(s, b, sizeof b));
        }
        mask[a] = true;
    }
    return LAM_OK;
}

/* Runs MOMENTS on x3 (outer, n, inner) into mean and var (outer, 1, inner), recorded. */
static lam_status moments3(const char *fn, lam_tensor *x3, lam_tensor **mean, lam_tensor **var) {
    const int64_t *d = x3->shape.dims;
    lam_shape s = {.ndim = 3, .dims = {d[0], 1, d[2]}};
    lam_ctx *ctx = lam_tensor_ctx(x3);
    lam_status st = lam__tensor_alloc(ctx, &s, mean);
    if (st == LAM_OK) {
        st = lam__tensor_alloc(ctx, &s, var);
    }
    if (st == LAM_OK && lam_shape_numel(&s) > 0) {
        if (d[1] > 0) {
            lam_tensor *o[2] = {*mean, *var};
            st = lam__run_op(LAM_OP_MOMENTS, ctx, &x3, 1, o, 2, NULL);
        } else {
            st = lam_op_fill(*mean, NAN); /* no elements: NaN, as the op says */
            if (st == LAM_OK) {
                st = lam_op_fill(*var, NAN);
            }
        }
    }
    if (st == LAM_OK && lam__recording() && lam__needs_grad(x3)) {
        mom_ctx *cm = calloc(1, sizeof *cm), *cv = calloc(1, sizeof *cv);
        if (cm == NULL || cv == NULL) {
            free(cm);
            free(cv);
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", fn);
        } else {
            cm->n = cv->n = d[1];
            cv->mean = lam_tensor_retain(*mean);
            st = lam__record_closure(&x3, 1, var, (lam__closure){var_backward, cv, mom_free});
            if (st == LAM_OK) {
                st = lam__record_closure(&x3, 1, mean, (lam__closure){mean_backward, cm, free});
            } else {
                free(cm);
            }
        }
    }
    if (st != LAM_OK) {
        lam_tensor_release(*mean);
        lam_tensor_release(*var);
        *mean = *var = NULL;
    }
    return st;
}

lam_status lam__moments(const char *fn, const lam_tensor *x, const int32_t *axes, uint32_t n_axes,
                        int32_t keepdims, lam_tensor **mean_out, lam_tensor **var_out) {
    if (mean_out != NULL) {
        *mean_out = NULL;
    }
    if (var_out != NULL) {
        *var_out = NULL;
    }
    if (x == NULL || (mean_out == NULL && var_out == NULL)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, %s", fn,
                          x == NULL ? "NULL tensor" : "both outputs NULL");
    }
    if (lam_tensor_ctx(x) == NULL) {
        return lam__error(LAM_ERR_STATE, "%s: Runtime shut down, the tensor's data was freed", fn);
    }
    if (x->dtype != LAM_DTYPE_F32) {
        return lam__error(LAM_ERR_DTYPE, "%s: Unsupported dtype %s, x must be float32", fn,
                          lam__dtype_name(x->dtype));
    }
    const lam_shape *xs = &x->shape;
    bool mask[LAM_MAX_DIMS];
    lam_status st = axes_mask(fn, xs, axes, n_axes, mask);
    if (st != LAM_OK) {
        return st;
    }
    /* Reduced axes adjacent: (outer, n, inner) directly; else kept axes first, reduced last. */
    uint32_t nd = xs->ndim, lo = nd, hi = 0, n_red = 0;
    for (uint32_t i = 0; i < nd; i++) {
        if (mask[i]) {
            lo = i < lo ? i : lo;
            hi = i + 1;
            n_red++;
        }
    }
    lam_tensor *xw = NULL, *x3 = NULL, *m3 = NULL, *v3 = NULL;
    if (n_red > 0 && hi - lo != n_red) {
        uint32_t perm[LAM_MAX_DIMS], k = 0;
        for (uint32_t i = 0; i < nd; i++) {
            if (!mask[i]) {
                perm[k++] = i;
            }
        }
        for (uint32_t i = 0; i < nd; i++) {
            if (mask[i]) {
                perm[k++] = i;
            }
        }
        st = lam_tensor_permute((lam_tensor *)x, perm, nd, &xw);
        lo = nd - n_red;
        hi = nd;
    } else {
        xw = lam_tensor_retain((lam_tensor *)x);
        if (n_red == 0) { /* a 0-D tensor: one element */
            lo = hi = nd;
        }
    }
    int64_t outer = 1, n = 1, inner = 1;
    const lam_shape *ws = st == LAM_OK ? lam_tensor_shape(xw) : xs;
    for (uint32_t i = 0; i < nd; i++) {
        int64_t dim = ws->dims[i];
        if (i < lo) {
            outer *= dim;
        } else if (i < hi) {
            n *= dim;
        } else {
            inner *= dim;
        }
    }
    lam_shape s3 = {.ndim = 3, .dims = {outer, n, inner}};
    if (st == LAM_OK) {
        st = lam_tensor_reshape(xw, &s3, &x3);
    }
    if (st == LAM_OK) {
        st = moments3(fn, x3, &m3, &v3);
    }
    lam_shape rs;
    memset(&rs, 0, sizeof rs);
    for (uint32_t i = 0; i < nd; i++) {
        if (!mask[i] || keepdims) {
            rs.dims[rs.ndim++] = mask[i] ? 1 : xs->dims[i];
        }
    }
    if (st == LAM_OK && mean_out != NULL) {
        st = lam_tensor_reshape(m3, &rs, mean_out);
    }
    if (st == LAM_OK && var_out != NULL) {
        st = lam_tensor_reshape(v3, &rs, var_out);
    }
    if (st != LAM_OK && mean_out != NULL) {
        lam_tensor_release(*mean_out);
        *mean_out = NULL;
    }
    lam_tensor_release(xw);
    lam_tensor_release(x3);
    lam_tensor_release(m3);
    lam_tensor_release(v3);
    return st;
}

lam_status lam_op_moments(const lam_tensor *x, const int32_t *axes, uint32_t n_axes,
                          int32_t keepdims, lam_tensor **mean_out, lam_tensor **var_out) {
    return lam__moments("lam_op_moments", x, axes, n_axes, keepdims, mean_out, var_out);
}
