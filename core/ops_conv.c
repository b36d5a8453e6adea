/*
 * Batched matrix products and 2-D convolution. A batched product is one GEMM_BATCHED op whose
 * shared operand (a batch of 1) is read with a zero batch stride. A convolution is one CONV op
 * (ABI 2.2) where the backend takes it and, when a gradient will be needed, its two gradient
 * ops (one tape node whose backward runs them); elsewhere it is IM2COL and one batched product
 * (groups through the batch), so its gradient comes from theirs: COL2IM and batched products.
 */
#include "ops_nn.h"
#include "backward.h"
#include "context.h"
#include "error.h"
#include "execute.h"
#include "op_run.h"
#include "shape.h"
#include "tape.h"
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

static lam_status null_arg(const char *fn, lam_tensor **out) {
    if (out != NULL) {
        *out = NULL;
    }
    return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL tensor or output", fn);
}

static lam_status check_f32(const char *fn, const lam_tensor *t, const char *what) {
    if (lam_tensor_ctx(t) == NULL) {
        return lam__error(LAM_ERR_STATE, "%s: Runtime shut down, the tensor's data was freed", fn);
    }
    if (t->dtype != LAM_DTYPE_F32) {
        return lam__error(LAM_ERR_DTYPE, "%s: Unsupported dtype %s, %s must be float32", fn,
                          lam__dtype_name(t->dtype), what);
    }
    return LAM_OK;
}

/* A 3-D view of t (byte strides); a batch of 1 shared across `batch` reads with stride 0. */
static void view3(const lam_tensor *t, int64_t batch, lam_tensor_view *v) {
    lam__tensor_view(t, v);
    const int64_t es = (int64_t)lam_dtype_size(t->dtype);
    v->ndim = 3;
    for (int i = 0; i < 3; i++) {
        v->dims[i] = t->shape.dims[i];
    }
    v->strides[2] = es;
    v->strides[1] = v->dims[2] * es;
    v->strides[0] = v->dims[0] == 1 && batch != 1 ? 0 : v->dims[1] * v->dims[2] * es;
    v->dims[0] = batch;
}

/* GEMM_BATCHED on ctx's backend, else on the CPU backend with the operands staged (a copy of
 * lam__run_op's fallback that keeps the zero batch strides). */
static lam_status run_batched(lam_ctx *ctx, lam_tensor *const *in, lam_tensor *o,
                              const lam_gemm_params *p) {
    int64_t batch = o->shape.dims[0];
    lam_tensor_view v[2], vo;
    view3(in[0], batch, &v[0]);
    view3(in[1], batch, &v[1]);
    view3(o, batch, &vo);
    if (lam__supports_ops(ctx, LAM_OP_GEMM_BATCHED, v, 2, &vo, 1, p, 0)) {
        return lam__execute_ops(ctx, LAM_OP_GEMM_BATCHED, v, 2, &vo, 1, p, 0);
    }
    lam_ctx *cpu = NULL;
    lam_status st = lam_ctx_get("cpu", &cpu);
    if (st != LAM_OK || cpu == ctx) {
        return lam__error(LAM_ERR_UNSUPPORTED,
                          "gemm_batched: Unsupported on %s for these operands%s", ctx->name,
                          cpu == ctx ? "" : ", and no CPU backend to fall back on");
    }
    lam_tensor *c[3] = {NULL, NULL, NULL};
    st = lam_tensor_copyto(in[0], cpu, &c[0]);
    if (st == LAM_OK) {
        st = lam_tensor_copyto(in[1], cpu, &c[1]);
    }
    if (st == LAM_OK) {
        st = lam__tensor_alloc(cpu, &o->shape, &c[2]);
    }
    if (st == LAM_OK) {
        view3(c[0], batch, &v[0]);
        view3(c[1], batch, &v[1]);
        view3(c[2], batch, &vo);
        st = lam__supports_ops(cpu, LAM_OP_GEMM_BATCHED, v, 2, &vo, 1, p, 0)
                 ? lam__execute_ops(cpu, LAM_OP_GEMM_BATCHED, v, 2, &vo, 1, p, 0)
                 : lam__error(LAM_ERR_UNSUPPORTED,
                              "gemm_batched: Unsupported on %s and on %s for these operands",
                              ctx->name, cpu->name);
    }
    if (st == LAM_OK) {
        st = lam_op_assign(o, c[2]);
    }
    for (int i = 0; i < 3; i++) {
        lam_tensor_release(c[i]);
    }
    return st;
}

typedef struct mm_ctx {
    int32_t ta, tb;
} mm_ctx;

/* Sums g over the batch when the operand `like` was shared (batch 1). Takes g. */
static lam_status unbatch(lam_tensor *g, const lam_tensor *like, lam_tensor **out) {
    if (like->shape.dims[0] == g->shape.dims[0]) {
        *out = g;
        return LAM_OK;
    }
    int32_t axis = 0;
    lam_status st = lam_op_sum(g, &axis, 1, 1, out);
    lam_tensor_release(g);
    return st;
}

/*
 * C_i = op(A_i) op(B_i): d op(A_i) = G_i op(B_i)^T and d op(B_i) = op(A_i)^T G_i, written so
 * each gradient comes out in its operand's stored layout:
 *   dA = G op(B)^T (A plain) or op(B) G^T (A transposed);
 *   dB = op(A)^T G (B plain) or G^T op(A) (B transposed).
 */
static lam_status mm_backward(void *p, const lam__node *n, lam_tensor *g) {
    const mm_ctx *c = p;
    lam_tensor *a = n->in[0], *b = n->in[1], *t = NULL, *d = NULL;
    lam_status st = LAM_OK;
    if (lam__needs_grad(a)) {
        st = c->ta ? lam_op_matmul_batched(b, g, c->tb, 1, &t)
                   : lam_op_matmul_batched(g, b, 0, !c->tb, &t);
        if (st == LAM_OK) {
            st = unbatch(t, a, &d);
        }
        if (st == LAM_OK) {
            st = lam__grad_accumulate(a, d);
        }
        lam_tensor_release(d);
        t = d = NULL;
    }
    if (st == LAM_OK && lam__needs_grad(b)) {
        st = c->tb ? lam_op_matmul_batched(g, a, 1, c->ta, &t)
                   : lam_op_matmul_batched(a, g, !c->ta, 0, &t);
        if (st == LAM_OK) {
            st = unbatch(t, b, &d);
        }
        if (st == LAM_OK) {
            st = lam__grad_accumulate(b, d);
        }
        lam_tensor_release(d);
    }
    return st;
}

lam_status lam_op_matmul_batched(const lam_tensor *a, const lam_tensor *b, int32_t trans_a,
                                 int32_t trans_b, lam_tensor **out) {
    const char *fn = "lam_op_matmul_batched";
    if (out == NULL || a == NULL || b == NULL) {
        return null_arg(fn, out);
    }
    *out = NULL;
    lam_status st = check_f32(fn, a, "a");
    if (st == LAM_OK) {
        st = check_f32(fn, b, "b");
    }
    if (st == LAM_OK) {
        st = lam__same_ctx(fn, a, b);
    }
    if (st != LAM_OK) {
        return st;
    }
    const int64_t *da = a->shape.dims, *db = b->shape.dims;
    int ta = trans_a != 0, tb = trans_b != 0;
    int64_t m = ta ? da[2] : da[1], k = ta ? da[1] : da[2];
    int64_t kb = tb ? db[2] : db[1], n = tb ? db[1] : db[2];
    int64_t batch = da[0] == 1 ? db[0] : da[0];
    if (a->shape.ndim != 3 || b->shape.ndim != 3 || k != kb ||
        (da[0] != db[0] && da[0] != 1 && db[0] != 1)) {
        char b1[160], b2[160];
        return lam__error(LAM_ERR_SHAPE,
                          "%s: Shape mismatch, %s%s x %s%s (3-D operands, equal inner dims, "
                          "batches equal or 1)",
                          fn, lam_shape_format(&a->shape, b1, sizeof b1), ta ? "^T" : "",
                          lam_shape_format(&b->shape, b2, sizeof b2), tb ? "^T" : "");
    }
    lam_shape s = {.ndim = 3, .dims = {batch, m, n}};
    lam_ctx *ctx = lam_tensor_ctx(a);
    lam_tensor *o = NULL;
    if (k == 0 || lam_shape_numel(&s) == 0) {
        st = lam_tensor_create(ctx, &s, &o); /* empty sums: zeros */
    } else {
        st = lam__tensor_alloc(ctx, &s, &o);
        lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
        p.flags = (ta ? LAM_GEMM_TRANS_A : 0u) | (tb ? LAM_GEMM_TRANS_B : 0u);
        lam_tensor *in[2] = {(lam_tensor *)a, (lam_tensor *)b};
        if (st == LAM_OK) {
            st = run_batched(ctx, in, o, &p);
        }
    }
    if (st == LAM_OK && lam__recording() && (lam__needs_grad(a) || lam__needs_grad(b))) {
        mm_ctx *c = malloc(sizeof *c);
        if (c == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", fn);
        } else {
            c->ta = ta;
            c->tb = tb;
            lam_tensor *in[2] = {(lam_tensor *)a, (lam_tensor *)b};
            st = lam__record_closure(in, 2, &o, (lam__closure){mm_backward, c, free});
        }
    }
    if (st != LAM_OK) {
        lam_tensor_release(o);
        return st;
    }
    *out = o;
    return LAM_OK;
}

/* ---- convolution ---- */

static lam_shape shape_of(uint32_t ndim, const int64_t *dims) {
    lam_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = ndim;
    memcpy(s.dims, dims, ndim * sizeof *dims);
    return s;
}

/* t reshaped (recorded); releases t when `own`. */
static lam_status reshape(lam_tensor *t, int own, uint32_t ndim, const int64_t *dims,
                          lam_tensor **out) {
    lam_shape s = shape_of(ndim, dims);
    lam_status st = lam_tensor_reshape(t, &s, out);
    if (own) {
        lam_tensor_release(t);
    }
    return st;
}

static lam_status permute(lam_tensor *t, const uint32_t *perm, lam_tensor **out) {
    lam_status st = lam_tensor_permute(t, perm, lam_tensor_shape(t)->ndim, out);
    lam_tensor_release(t);
    return st;
}

static lam_status conv_check(const char *fn, const lam_tensor *x, const lam_tensor *w,
                             const lam_tensor *bias, const lam_conv2d_params *p) {
    lam_status st = check_f32(fn, x, "x");
    if (st == LAM_OK) {
        st = check_f32(fn, w, "w");
    }
    if (st == LAM_OK) {
        st = lam__same_ctx(fn, x, w);
    }
    if (st == LAM_OK && bias != NULL) {
        st = check_f32(fn, bias, "bias");
        if (st == LAM_OK) {
            st = lam__same_ctx(fn, x, bias);
        }
    }
    if (st != LAM_OK) {
        return st;
    }
    if (p == NULL || p->struct_size < sizeof *p || p->groups == 0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid argument, params %s (start from LAM_CONV2D_PARAMS_INIT)", fn,
                          p == NULL                    ? "are NULL"
                          : p->struct_size < sizeof *p ? "have a struct_size too small"
                                                       : "have groups 0");
    }
    const int64_t *dx = x->shape.dims, *dw = w->shape.dims;
    int64_t g = p->groups;
    if (x->shape.ndim != 4 || w->shape.ndim != 4 || dw[1] * g != dx[1] || dw[0] % g != 0 ||
        (bias != NULL && (bias->shape.ndim != 1 || bias->shape.dims[0] != dw[0]))) {
        char b1[160], b2[160], b3[160] = "none";
        if (bias != NULL) {
            lam_shape_format(&bias->shape, b3, sizeof b3);
        }
        return lam__error(LAM_ERR_SHAPE,
                          "%s: Shape mismatch, x %s, w %s, bias %s, groups %lld (x (N, C, H, W), "
                          "w (O, C/groups, KH, KW), O a multiple of groups, bias (O))",
                          fn, lam_shape_format(&x->shape, b1, sizeof b1),
                          lam_shape_format(&w->shape, b2, sizeof b2), b3, (long long)g);
    }
    return LAM_OK;
}

/* ---- direct convolution: CONV and its gradient ops on a backend that has them ---- */

typedef struct conv_ctx {
    lam_conv_params p;
} conv_ctx;

/* CONV's backward: the input's gradient by CONV_BACKWARD_DATA, the weight's and bias's by one
 * CONV_BACKWARD_WEIGHT (each only when needed), on the backend or staged on the CPU. */
static lam_status conv_backward(void *arg, const lam__node *n, lam_tensor *g) {
    const conv_ctx *c = arg;
    lam_tensor *x = n->in[0], *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL;
    lam_ctx *ctx = lam_tensor_ctx(x);
    lam_tensor *gd = g, *dx = NULL, *dw = NULL, *db = NULL; /* tensors are dense row-major */
    lam_status st = LAM_OK;
    if (lam__needs_grad(x)) {
        st = lam__tensor_alloc(ctx, &x->shape, &dx);
        if (st == LAM_OK) {
            lam_tensor *in[2] = {gd, w};
            st = lam__run_op(LAM_OP_CONV_BACKWARD_DATA, ctx, in, 2, &dx, 1, &c->p);
        }
        if (st == LAM_OK) {
            st = lam__grad_accumulate(x, dx);
        }
    }
    const bool gw = lam__needs_grad(w), gb = b != NULL && lam__needs_grad(b);
    if (st == LAM_OK && (gw || gb)) {
        st = lam__tensor_alloc(ctx, &w->shape, &dw);
        if (st == LAM_OK && gb) {
            st = lam__tensor_alloc(ctx, &b->shape, &db);
        }
        if (st == LAM_OK) {
            lam_tensor *in[2] = {x, gd}, *o[2] = {dw, db};
            st = lam__run_op(LAM_OP_CONV_BACKWARD_WEIGHT, ctx, in, 2, o, gb ? 2 : 1, &c->p);
        }
        if (st == LAM_OK && gw) {
            st = lam__grad_accumulate(w, dw);
        }
        if (st == LAM_OK && gb) {
            st = lam__grad_accumulate(b, db);
        }
    }
    lam_tensor_release(dx);
    lam_tensor_release(dw);
    lam_tensor_release(db);
    return st;
}

/*
 * y = CONV(x, w, bias) on x's backend when it takes the call and, if a gradient will be
 * needed, its gradient ops for dense operands of these shapes (asked now with the forward's
 * own views standing in: supports() never touches memory). *done false: the caller composes.
 */
static lam_status conv_direct(const char *fn, const lam_tensor *x, const lam_tensor *w,
                              const lam_tensor *bias, const lam_conv_params *cp,
                              const lam_shape *ys, lam_tensor **out, bool *done) {
    *done = false;
    lam_ctx *ctx = lam_tensor_ctx(x);
    lam_tensor_view vi[3], vo[2];
    const uint32_t n_in = bias != NULL ? 3 : 2;
    lam__tensor_view(x, &vi[0]);
    lam__tensor_view(w, &vi[1]);
    if (bias != NULL) {
        lam__tensor_view(bias, &vi[2]);
    }
    lam_tensor *y = NULL;
    lam_status st = lam__tensor_alloc(ctx, ys, &y);
    if (st != LAM_OK) {
        return st;
    }
    lam__tensor_view(y, &vo[0]);
    bool ok = lam__supports_ops(ctx, LAM_OP_CONV, vi, n_in, vo, 1, cp, 0);
    const bool gb = bias != NULL && lam__needs_grad(bias);
    if (ok && lam__recording() && (lam__needs_grad(x) || lam__needs_grad(w) || gb)) {
        lam_tensor_view bd[2] = {vo[0], vi[1]}, bw[2] = {vi[0], vo[0]}, bwo[2] = {vi[1], vi[2]};
        ok = lam__supports_ops(ctx, LAM_OP_CONV_BACKWARD_DATA, bd, 2, &vi[0], 1, cp, 0) &&
             lam__supports_ops(ctx, LAM_OP_CONV_BACKWARD_WEIGHT, bw, 2, bwo, gb ? 2 : 1, cp, 0);
    }
    if (!ok) {
        lam_tensor_release(y);
        return LAM_OK;
    }
    *done = true;
    st = lam__execute_ops(ctx, LAM_OP_CONV, vi, n_in, vo, 1, cp, 0);
    if (st == LAM_OK && lam__recording()) {
        conv_ctx *c = malloc(sizeof *c);
        if (c == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", fn);
        } else {
            c->p = *cp;
            lam_tensor *in[3] = {(lam_tensor *)x, (lam_tensor *)w, (lam_tensor *)bias};
            st = lam__record_closure(in, n_in, &y, (lam__closure){conv_backward, c, free});
        }
    }
    if (st != LAM_OK) {
        lam_tensor_release(y);
        return st;
    }
    *out = y;
    return LAM_OK;
}

lam_status lam_op_conv2d(const lam_tensor *x, const lam_tensor *w, const lam_tensor *bias,
                         const lam_conv2d_params *p, lam_tensor **out) {
    const char *fn = "lam_op_conv2d";
    if (out == NULL || x == NULL || w == NULL) {
        return null_arg(fn, out);
    }
    *out = NULL;
    lam_status st = conv_check(fn, x, w, bias, p);
    if (st != LAM_OK) {
        return st;
    }
    lam_window_params win;
    memset(&win, 0, sizeof win);
    win.struct_size = (uint32_t)sizeof win;
    win.n_spatial = 2;
    for (int i = 0; i < 2; i++) {
        win.kernel[i] = w->shape.dims[2 + i];
        win.stride[i] = p->stride[i];
        win.pad_before[i] = win.pad_after[i] = p->pad[i];
        win.dilation[i] = p->dilation[i];
    }
    int64_t oh, ow;
    st = lam__window_out(fn, &win, x->shape.dims[2], x->shape.dims[3], &oh, &ow);
    if (st != LAM_OK) {
        return st;
    }
    const int64_t n = x->shape.dims[0], o = w->shape.dims[0], g = p->groups;
    lam_conv_params cp = LAM_CONV_PARAMS_INIT;
    cp.groups = p->groups;
    cp.window = win;
    bool done = false;
    lam_shape ys = {.ndim = 4, .dims = {n, o, oh, ow}};
    st = conv_direct(fn, x, w, bias, &cp, &ys, out, &done);
    if (st != LAM_OK || done) {
        return st != LAM_OK ? lam__error_prefix(st, "%s", fn) : LAM_OK;
    }
    const int64_t l = oh * ow, ckk = w->shape.dims[1] * win.kernel[0] * win.kernel[1];
    lam_tensor *cols = NULL, *wm = NULL, *y = NULL, *t = NULL;
    st = lam__op_im2col(x, &win, &cols); /* (N, C*KH*KW, L) */
    if (st == LAM_OK && g == 1) {
        /* (1, O, CKK) shared by every sample's columns: (N, O, L) */
        st = reshape((lam_tensor *)w, 0, 3, (const int64_t[]){1, o, ckk}, &wm);
        if (st == LAM_OK) {
            st = lam_op_matmul_batched(wm, cols, 0, 0, &y);
        }
    } else if (st == LAM_OK) {
        /* Groups through the batch: columns (G, CKK/G... per group, N*L), weights (G, O/G, .). */
        st = reshape(cols, 0, 4, (const int64_t[]){n, g, ckk, l}, &t);
        if (st == LAM_OK) {
            st = permute(t, (const uint32_t[]){1, 2, 0, 3}, &t);
        }
        if (st == LAM_OK) {
            st = reshape(t, 1, 3, (const int64_t[]){g, ckk, n * l}, &t);
        }
        if (st == LAM_OK) {
            st = reshape((lam_tensor *)w, 0, 3, (const int64_t[]){g, o / g, ckk}, &wm);
        }
        if (st == LAM_OK) {
            st = lam_op_matmul_batched(wm, t, 0, 0, &y); /* (G, O/G, N*L) */
        }
        lam_tensor_release(t);
        t = NULL;
        if (st == LAM_OK) {
            st = reshape(y, 1, 4, (const int64_t[]){g, o / g, n, l}, &y);
        }
        if (st == LAM_OK) {
            st = permute(y, (const uint32_t[]){2, 0, 1, 3}, &y); /* (N, G, O/G, L) */
        }
    }
    if (st == LAM_OK) {
        st = reshape(y, 1, 4, (const int64_t[]){n, o, oh, ow}, &y);
    }
    if (st == LAM_OK && bias != NULL) {
        st = reshape((lam_tensor *)bias, 0, 4, (const int64_t[]){1, o, 1, 1}, &t);
        if (st == LAM_OK) {
            lam_tensor *sum = NULL;
            st = lam_op_add(y, t, &sum);
            lam_tensor_release(y);
            y = sum;
        }
    }
    lam_tensor_release(t);
    lam_tensor_release(wm);
    lam_tensor_release(cols);
    if (st != LAM_OK) {
        lam_tensor_release(y);
        return lam__error_prefix(st, "%s", fn);
    }
    *out = y;
    return LAM_OK;
}
