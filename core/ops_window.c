/*
 * Sliding-window ops on NCHW images: im2col and col2im, max and average pooling, each run as
 * one backend op (or on the CPU backend, staged) and differentiated by its adjoint op. The
 * parameters are checked here, once, so a backend never sees a window it cannot compute.
 */
#include "ops_nn.h"
#include "backward.h"
#include "error.h"
#include "op_run.h"
#include "shape.h"
#include "tape.h"
#include "tensor.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Parameters above this are refused: sizes stay far from int64 overflow in every product. */
#define WIN_MAX ((int64_t)1 << 30)

static int64_t out_len(int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pa, int64_t d,
                       int ceil_mode) {
    int64_t span = in + pb + pa - d * (k - 1) - 1;
    if (span < 0) {
        return 0;
    }
    int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + pb) {
        o--; /* the last window would start in the trailing padding (PyTorch's rule) */
    }
    return o;
}

lam_status lam__window_out(const char *fn, const lam_window_params *w, int64_t h, int64_t wd,
                           int64_t *oh, int64_t *ow) {
    if (w == NULL || w->struct_size < sizeof *w || w->n_spatial != 2) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, window parameters %s",
                          fn,
                          w == NULL                    ? "are NULL"
                          : w->struct_size < sizeof *w ? "have a struct_size too small"
                                                       : "must have n_spatial 2");
    }
    if ((w->flags & ~(LAM_WINDOW_CEIL_MODE | LAM_WINDOW_COUNT_INCLUDE_PAD)) != 0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, unknown flags 0x%x", fn,
                          (unsigned)w->flags);
    }
    for (int i = 0; i < 2; i++) {
        if (w->kernel[i] < 1 || w->stride[i] < 1 || w->dilation[i] < 1 || w->pad_before[i] < 0 ||
            w->pad_after[i] < 0 || w->kernel[i] > WIN_MAX || w->stride[i] > WIN_MAX ||
            w->dilation[i] > WIN_MAX || w->pad_before[i] > WIN_MAX || w->pad_after[i] > WIN_MAX) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Invalid argument, axis %d: kernel %lld, stride %lld, dilation "
                              "%lld, padding %lld/%lld (kernel, stride and dilation 1..2^30, "
                              "padding 0..2^30)",
                              fn, i, (long long)w->kernel[i], (long long)w->stride[i],
                              (long long)w->dilation[i], (long long)w->pad_before[i],
                              (long long)w->pad_after[i]);
        }
    }
    int c = (w->flags & LAM_WINDOW_CEIL_MODE) != 0;
    *oh = out_len(h, w->kernel[0], w->stride[0], w->pad_before[0], w->pad_after[0], w->dilation[0],
                  c);
    *ow = out_len(wd, w->kernel[1], w->stride[1], w->pad_before[1], w->pad_after[1], w->dilation[1],
                  c);
    if (*oh < 1 || *ow < 1) {
        return lam__error(
            LAM_ERR_SHAPE,
            "%s: Shape mismatch, a %lldx%lld window (dilation %lldx%lld) does not fit "
            "the %lldx%lld input padded by %lld/%lld and %lld/%lld",
            fn, (long long)w->kernel[0], (long long)w->kernel[1], (long long)w->dilation[0],
            (long long)w->dilation[1], (long long)h, (long long)wd, (long long)w->pad_before[0],
            (long long)w->pad_after[0], (long long)w->pad_before[1], (long long)w->pad_after[1]);
    }
    return LAM_OK;
}

/* Axis `ax` has a window (of `o` along it) whose every tap lies in the padding. */
static int64_t empty_window(const lam_window_params *w, int ax, int64_t in, int64_t o) {
    for (int64_t p = 0; p < o; p++) {
        int64_t inside = 0;
        for (int64_t i = 0; i < w->kernel[ax] && !inside; i++) {
            int64_t t = p * w->stride[ax] - w->pad_before[ax] + i * w->dilation[ax];
            inside = t >= 0 && t < in;
        }
        if (!inside) {
            return p;
        }
    }
    return -1;
}

/* x is a live float32 tensor of `ndim` dims; out is reset. */
static lam_status check_x(const char *fn, const lam_tensor *x, uint32_t ndim, const char *what,
                          lam_tensor **out) {
    if (out == NULL || x == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL %s", fn,
                          x == NULL ? what : "output");
    }
    *out = NULL;
    if (lam_tensor_ctx(x) == NULL) {
        return lam__error(LAM_ERR_STATE, "%s: Runtime shut down, the tensor's data was freed", fn);
    }
    if (x->dtype != LAM_DTYPE_F32) {
        return lam__error(LAM_ERR_DTYPE, "%s: Unsupported dtype, %s must be float32", fn, what);
    }
    if (x->shape.ndim != ndim) {
        char b[160];
        return lam__error(LAM_ERR_SHAPE, "%s: Shape mismatch, %s must be %u-D, got %s", fn, what,
                          (unsigned)ndim, lam_shape_format(&x->shape, b, sizeof b));
    }
    return LAM_OK;
}

static lam_shape shape4(int64_t a, int64_t b, int64_t c, int64_t d) {
    lam_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = 4;
    s.dims[0] = a;
    s.dims[1] = b;
    s.dims[2] = c;
    s.dims[3] = d;
    return s;
}

/* Allocates the outputs (F32, and I32 for MAX_POOL's second) and runs the op on x's backend
 * (outputs zero when empty). */
static lam_status run(lam_op op, lam_tensor *const *in, uint32_t n_in, const lam_shape *shape,
                      uint32_t n_out, const lam_window_params *w, lam_tensor **outs) {
    lam_ctx *ctx = lam_tensor_ctx(in[0]);
    lam_status st = LAM_OK;
    for (uint32_t i = 0; i < n_out && st == LAM_OK; i++) {
        st = lam__tensor_alloc_dtype(ctx, i == 1 ? LAM_DTYPE_I32 : LAM_DTYPE_F32, shape, &outs[i]);
    }
    if (st == LAM_OK && lam_shape_numel(shape) > 0) {
        if (lam_tensor_numel(in[0]) > 0) {
            st = lam__run_op(op, ctx, in, n_in, outs, n_out, w);
        } else {
            st = lam_op_fill(outs[0], 0.0f); /* col2im of no columns */
        }
    }
    if (st != LAM_OK) {
        for (uint32_t i = 0; i < n_out; i++) {
            lam_tensor_release(outs[i]);
            outs[i] = NULL;
        }
    }
    return st;
}

/* A window op's record: its parameters and the shape of its input (what the adjoint makes). */
typedef struct win_ctx {
    lam_op op;
    lam_window_params w;
    lam_shape in_shape;
    lam_tensor *indices; /* MAX_POOL: retained */
} win_ctx;

static void win_free(void *p) {
    win_ctx *c = p;
    if (c != NULL) {
        lam_tensor_release(c->indices);
        free(c);
    }
}

static lam_status win_backward(void *p, const lam__node *n, lam_tensor *g) {
    const win_ctx *c = p;
    lam_tensor *gx = NULL;
    lam_status st;
    switch (c->op) {
    case LAM_OP_IM2COL:
        st = lam__op_col2im(g, &c->w, &c->in_shape, &gx);
        break;
    case LAM_OP_COL2IM:
        st = lam__op_im2col(g, &c->w, &gx);
        break;
    case LAM_OP_AVG_POOL:
        st = lam__op_avg_pool_backward(g, &c->w, &c->in_shape, &gx);
        break;
    case LAM_OP_AVG_POOL_BACKWARD:
        st = lam__op_avg_pool(g, &c->w, &gx);
        break;
    default: /* MAX_POOL */
        st = lam__op_max_pool_backward(g, c->indices, &c->w, &c->in_shape, &gx);
        break;
    }
    if (st == LAM_OK) {
        st = lam__grad_accumulate(n->in[0], gx);
    }
    lam_tensor_release(gx);
    return st;
}

/* Records out = op(x) with the adjoint as its gradient; takes the indices reference. */
static lam_status record(lam_op op, const lam_tensor *x, const lam_window_params *w,
                         lam_tensor *indices, lam_tensor **out) {
    if (!lam__recording() || !lam__needs_grad(x)) {
        lam_tensor_release(indices);
        return LAM_OK;
    }
    win_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        lam_tensor_release(indices);
        lam_tensor_release(*out);
        *out = NULL;
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", lam_op_name(op));
    }
    c->op = op;
    c->w = *w;
    c->in_shape = x->shape;
    c->indices = indices;
    lam_tensor *in[1] = {(lam_tensor *)x};
    return lam__record_closure(in, 1, out, (lam__closure){win_backward, c, win_free});
}

lam_status lam__op_im2col(const lam_tensor *x, const lam_window_params *w, lam_tensor **out) {
    const char *fn = "im2col";
    int64_t oh, ow;
    lam_status st = check_x(fn, x, 4, "x", out);
    if (st == LAM_OK) {
        st = lam__window_out(fn, w, x->shape.dims[2], x->shape.dims[3], &oh, &ow);
    }
    if (st != LAM_OK) {
        return st;
    }
    const int64_t *d = x->shape.dims;
    lam_shape s = {.ndim = 3, .dims = {d[0], d[1] * w->kernel[0] * w->kernel[1], oh * ow}};
    if (d[1] > 0 && s.dims[1] / d[1] != w->kernel[0] * w->kernel[1]) {
        return lam__error(LAM_ERR_SHAPE, "%s: Shape too large, %lld channels of %lldx%lld taps", fn,
                          (long long)d[1], (long long)w->kernel[0], (long long)w->kernel[1]);
    }
    lam_tensor *in[1] = {(lam_tensor *)x};
    st = run(LAM_OP_IM2COL, in, 1, &s, 1, w, out);
    return st != LAM_OK ? st : record(LAM_OP_IM2COL, x, w, NULL, out);
}

lam_status lam__op_col2im(const lam_tensor *x, const lam_window_params *w, const lam_shape *shape,
                          lam_tensor **out) {
    const char *fn = "col2im";
    int64_t oh, ow;
    lam_status st = check_x(fn, x, 3, "x", out);
    if (st == LAM_OK && (shape == NULL || shape->ndim != 4)) {
        st = lam__error(LAM_ERR_SHAPE,
                        "%s: Shape mismatch, the image shape must be 4-D (N, C, H, "
                        "W)",
                        fn);
    }
    if (st == LAM_OK) {
        st = lam__window_out(fn, w, shape->dims[2], shape->dims[3], &oh, &ow);
    }
    if (st != LAM_OK) {
        return st;
    }
    const int64_t *d = shape->dims;
    if (x->shape.dims[0] != d[0] || x->shape.dims[1] != d[1] * w->kernel[0] * w->kernel[1] ||
        x->shape.dims[2] != oh * ow) {
        char b1[160], b2[160];
        return lam__error(LAM_ERR_SHAPE,
                          "%s: Shape mismatch, columns %s for image %s (expected (%lld, %lld, "
                          "%lld))",
                          fn, lam_shape_format(&x->shape, b1, sizeof b1),
                          lam_shape_format(shape, b2, sizeof b2), (long long)d[0],
                          (long long)(d[1] * w->kernel[0] * w->kernel[1]), (long long)(oh * ow));
    }
    lam_tensor *in[1] = {(lam_tensor *)x};
    st = run(LAM_OP_COL2IM, in, 1, shape, 1, w, out);
    return st != LAM_OK ? st : record(LAM_OP_COL2IM, x, w, NULL, out);
}

static lam_status max_pool(const char *fn, const lam_tensor *x, const lam_window_params *w,
                           lam_tensor **out, lam_tensor **indices) {
    int64_t oh, ow;
    if (indices != NULL) {
        *indices = NULL;
    }
    lam_status st = check_x(fn, x, 4, "x", out);
    if (st == LAM_OK) {
        st = lam__window_out(fn, w, x->shape.dims[2], x->shape.dims[3], &oh, &ow);
    }
    if (st != LAM_OK) {
        return st;
    }
    for (int ax = 0; ax < 2; ax++) {
        int64_t p = empty_window(w, ax, x->shape.dims[2 + ax], ax == 0 ? oh : ow);
        if (p >= 0) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Invalid argument, window %lld along axis %d lies wholly in the "
                              "padding (kernel %lld, stride %lld, dilation %lld, padding %lld, "
                              "input %lld)",
                              fn, (long long)p, 2 + ax, (long long)w->kernel[ax],
                              (long long)w->stride[ax], (long long)w->dilation[ax],
                              (long long)w->pad_before[ax], (long long)x->shape.dims[2 + ax]);
        }
    }
    lam_shape s = shape4(x->shape.dims[0], x->shape.dims[1], oh, ow);
    lam_tensor *in[1] = {(lam_tensor *)x}, *o[2] = {NULL, NULL};
    st = run(LAM_OP_MAX_POOL, in, 1, &s, 2, w, o);
    if (st != LAM_OK) {
        return st;
    }
    if (indices != NULL) {
        *indices = lam_tensor_retain(o[1]);
    }
    st = record(LAM_OP_MAX_POOL, x, w, o[1], &o[0]);
    if (st != LAM_OK && indices != NULL) {
        lam_tensor_release(*indices);
        *indices = NULL;
    }
    *out = o[0];
    return st;
}

/* The gradient side of a pool: g (N, C, OH, OW) for an image of `shape`. */
static lam_status check_grad(const char *fn, const lam_tensor *g, const lam_window_params *w,
                             const lam_shape *shape, lam_tensor **out) {
    int64_t oh, ow;
    lam_status st = check_x(fn, g, 4, "the gradient", out);
    if (st == LAM_OK && (shape == NULL || shape->ndim != 4)) {
        st = lam__error(LAM_ERR_SHAPE,
                        "%s: Shape mismatch, the image shape must be 4-D (N, C, H, "
                        "W)",
                        fn);
    }
    if (st == LAM_OK) {
        st = lam__window_out(fn, w, shape->dims[2], shape->dims[3], &oh, &ow);
    }
    if (st == LAM_OK) {
        lam_shape want = shape4(shape->dims[0], shape->dims[1], oh, ow);
        if (!lam_shape_equal(&want, &g->shape)) {
            char b1[160], b2[160];
            st = lam__error(LAM_ERR_SHAPE, "%s: Shape mismatch, gradient %s, the pool gives %s", fn,
                            lam_shape_format(&g->shape, b1, sizeof b1),
                            lam_shape_format(&want, b2, sizeof b2));
        }
    }
    return st;
}

lam_status lam__op_max_pool_backward(const lam_tensor *g, const lam_tensor *indices,
                                     const lam_window_params *w, const lam_shape *shape,
                                     lam_tensor **out) {
    const char *fn = "max_pool_backward";
    lam_status st = check_grad(fn, g, w, shape, out);
    if (st == LAM_OK && indices == NULL) {
        st = lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL indices", fn);
    }
    if (st == LAM_OK) {
        st = lam__same_ctx(fn, g, indices);
    }
    if (st == LAM_OK &&
        (indices->dtype != LAM_DTYPE_I32 || !lam_shape_equal(&indices->shape, &g->shape))) {
        char b[160];
        st = lam__error(LAM_ERR_SHAPE,
                        "%s: Shape mismatch, indices must be int32 of the gradient's shape, got "
                        "%s %s",
                        fn, lam__dtype_name(indices->dtype),
                        lam_shape_format(&indices->shape, b, sizeof b));
    }
    if (st == LAM_OK && lam__recording() && lam__needs_grad(g)) {
        st = lam__error(LAM_ERR_UNSUPPORTED,
                        "%s: Unsupported, not differentiable (record the max pool instead)", fn);
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *in[2] = {(lam_tensor *)g, (lam_tensor *)indices};
    return run(LAM_OP_MAX_POOL_BACKWARD, in, 2, shape, 1, w, out);
}

static lam_status avg_pool(const char *fn, const lam_tensor *x, const lam_window_params *w,
                           lam_tensor **out) {
    int64_t oh, ow;
    lam_status st = check_x(fn, x, 4, "x", out);
    if (st == LAM_OK) {
        st = lam__window_out(fn, w, x->shape.dims[2], x->shape.dims[3], &oh, &ow);
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_shape s = shape4(x->shape.dims[0], x->shape.dims[1], oh, ow);
    lam_tensor *in[1] = {(lam_tensor *)x};
    st = run(LAM_OP_AVG_POOL, in, 1, &s, 1, w, out);
    return st != LAM_OK ? st : record(LAM_OP_AVG_POOL, x, w, NULL, out);
}

lam_status lam__op_max_pool(const lam_tensor *x, const lam_window_params *w, lam_tensor **out,
                            lam_tensor **indices) {
    return max_pool("max_pool", x, w, out, indices);
}

lam_status lam__op_avg_pool(const lam_tensor *x, const lam_window_params *w, lam_tensor **out) {
    return avg_pool("avg_pool", x, w, out);
}

lam_status lam__op_avg_pool_backward(const lam_tensor *g, const lam_window_params *w,
                                     const lam_shape *shape, lam_tensor **out) {
    lam_status st = check_grad("avg_pool_backward", g, w, shape, out);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *in[1] = {(lam_tensor *)g};
    st = run(LAM_OP_AVG_POOL_BACKWARD, in, 1, shape, 1, w, out);
    return st != LAM_OK ? st : record(LAM_OP_AVG_POOL_BACKWARD, g, w, NULL, out);
}

/* ---- the public pools ---- */

/* The window parameters of a public pool call, checked as PyTorch checks them. */
static lam_status pool_window(const char *fn, const lam_pool2d_params *p, int avg,
                              lam_window_params *w) {
    if (p == NULL || p->struct_size < sizeof *p) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid argument, params %s (start from LAM_POOL2D_PARAMS_INIT)", fn,
                          p == NULL ? "are NULL" : "have a struct_size too small");
    }
    uint32_t known = LAM_POOL_CEIL_MODE | (avg ? LAM_POOL_COUNT_INCLUDE_PAD : 0u);
    if ((p->flags & ~known) != 0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, unknown flags 0x%x", fn,
                          (unsigned)p->flags);
    }
    memset(w, 0, sizeof *w);
    w->struct_size = (uint32_t)sizeof *w;
    w->n_spatial = 2;
    w->flags = ((p->flags & LAM_POOL_CEIL_MODE) ? LAM_WINDOW_CEIL_MODE : 0u) |
               ((p->flags & LAM_POOL_COUNT_INCLUDE_PAD) ? LAM_WINDOW_COUNT_INCLUDE_PAD : 0u);
    for (int i = 0; i < 2; i++) {
        if (p->pad[i] < 0 || p->kernel[i] < 1 || p->pad[i] > p->kernel[i] / 2) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Invalid argument, axis %d: padding %lld for kernel %lld (the "
                              "padding is at most half the kernel, the kernel at least 1)",
                              fn, i, (long long)p->pad[i], (long long)p->kernel[i]);
        }
        if (avg && p->dilation[i] != 1) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Invalid argument, axis %d: dilation %lld (average pooling "
                              "takes 1)",
                              fn, i, (long long)p->dilation[i]);
        }
        w->kernel[i] = p->kernel[i];
        w->stride[i] = p->stride[i];
        w->pad_before[i] = w->pad_after[i] = p->pad[i];
        w->dilation[i] = p->dilation[i];
    }
    return LAM_OK;
}

lam_status lam_op_max_pool2d(const lam_tensor *x, const lam_pool2d_params *p, lam_tensor **out,
                             lam_tensor **indices) {
    lam_window_params w;
    if (indices != NULL) {
        *indices = NULL;
    }
    lam_status st = check_x("lam_op_max_pool2d", x, 4, "x", out);
    if (st == LAM_OK) {
        st = pool_window("lam_op_max_pool2d", p, 0, &w);
    }
    if (st == LAM_OK) {
        st = max_pool("lam_op_max_pool2d", x, &w, out, indices);
    }
    return st;
}

lam_status lam_op_avg_pool2d(const lam_tensor *x, const lam_pool2d_params *p, lam_tensor **out) {
    lam_window_params w;
    lam_status st = check_x("lam_op_avg_pool2d", x, 4, "x", out);
    if (st == LAM_OK) {
        st = pool_window("lam_op_avg_pool2d", p, 1, &w);
    }
    if (st == LAM_OK) {
        st = avg_pool("lam_op_avg_pool2d", x, &w, out);
    }
    return st;
}
