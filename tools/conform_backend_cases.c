/*
 * conform_backend_cases.c - the op cases of the backend checks (conform_backend.c): the
 * reviewed tolerance table, the calls made for each op (operand shapes, strides, parameter
 * structs, NaN/inf inputs), and the kit's own double-precision reference, used when the backend
 * under test is the CPU backend itself (comparing it with itself would prove nothing).
 */
#include "conform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The reviewed tolerance table: one row per op. nmse = sum((x - ref)^2) / sum(ref^2) over the
 * finite reference elements; max_err bounds |x - ref| / max(1, |ref|) element-wise. Zero means
 * bit-exact: the op involves no rounding (copies, comparisons, sign changes, max/min, argmax,
 * gathers, padding, the integer parts of RANDOM). Element-wise arithmetic may differ by the
 * last bit (a GPU's division and transcendental functions are not correctly rounded), GEMM and
 * reductions by the summation order, NORMAL random numbers by a few ulp of logf/cosf/sinf.
 */
static const cf_oprow op_table[] = {
    {LAM_OP_FILL, "fill", CF_K_FILL, 0, 0, 0, 0, 2.5, 0, 0},
    {LAM_OP_COPY, "copy", CF_K_UNARY, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_ADD, "add", CF_K_BINARY, -2, 2, -2, 2, 0, 1e-12, 1e-6},
    {LAM_OP_SUB, "sub", CF_K_BINARY, -2, 2, -2, 2, 0, 1e-12, 1e-6},
    {LAM_OP_MUL, "mul", CF_K_BINARY, -2, 2, -2, 2, 0, 1e-12, 1e-6},
    {LAM_OP_DIV, "div", CF_K_BINARY, -2, 2, 0.5f, 2, 0, 1e-10, 1e-5},
    {LAM_OP_ADD_SCALAR, "add_scalar", CF_K_SCALAR, -2, 2, 0, 0, 0.75, 1e-12, 1e-6},
    {LAM_OP_MUL_SCALAR, "mul_scalar", CF_K_SCALAR, -2, 2, 0, 0, -1.25, 1e-12, 1e-6},
    {LAM_OP_RSUB_SCALAR, "rsub_scalar", CF_K_SCALAR, -2, 2, 0, 0, 1.0, 1e-12, 1e-6},
    {LAM_OP_DIV_SCALAR, "div_scalar", CF_K_SCALAR, -2, 2, 0, 0, 1.7, 1e-10, 1e-5},
    {LAM_OP_RDIV_SCALAR, "rdiv_scalar", CF_K_SCALAR, 0.5f, 2, 0, 0, 1.5, 1e-10, 1e-5},
    {LAM_OP_POW_SCALAR, "pow_scalar", CF_K_SCALAR, 0.1f, 2, 0, 0, 1.5, 1e-10, 1e-5},
    {LAM_OP_NEG, "neg", CF_K_UNARY, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_ABS, "abs", CF_K_UNARY, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_SQUARE, "square", CF_K_UNARY, -2, 2, 0, 0, 0, 1e-12, 1e-6},
    {LAM_OP_SQRT, "sqrt", CF_K_UNARY, 0.01f, 4, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_EXP, "exp", CF_K_UNARY, -3, 3, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_LOG, "log", CF_K_UNARY, 0.05f, 4, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_RELU, "relu", CF_K_UNARY, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_SIGMOID, "sigmoid", CF_K_UNARY, -6, 6, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_TANH, "tanh", CF_K_UNARY, -4, 4, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_SOFTRELU, "softrelu", CF_K_UNARY, -6, 6, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_GEMM, "gemm", CF_K_GEMM, -1, 1, -1, 1, 0, 1e-10, 1e-4},
    {LAM_OP_REDUCE_SUM, "reduce_sum", CF_K_REDUCE, -2, 2, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_REDUCE_MEAN, "reduce_mean", CF_K_REDUCE, -2, 2, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_REDUCE_MAX, "reduce_max", CF_K_REDUCE, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_REDUCE_MIN, "reduce_min", CF_K_REDUCE, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_ARGMAX, "argmax", CF_K_REDUCE, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_SOFTMAX, "softmax", CF_K_SOFTMAX, -3, 3, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_LOG_SOFTMAX, "log_softmax", CF_K_SOFTMAX, -3, 3, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_MAXIMUM, "maximum", CF_K_BINARY, -2, 2, -2, 2, 0, 0, 0},
    {LAM_OP_MINIMUM, "minimum", CF_K_BINARY, -2, 2, -2, 2, 0, 0, 0},
    {LAM_OP_STEP, "step", CF_K_UNARY, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_GREATER_EQUAL, "greater_equal", CF_K_COMPARE, -2, 2, -2, 2, 0, 0, 0},
    /* s0 = scalar, s1 = CF_AXPBY_S1 */
    {LAM_OP_AXPBY, "axpby", CF_K_BINARY, -2, 2, -2, 2, 0.75, 1e-12, 1e-6},
    {LAM_OP_LINEAR, "linear", CF_K_LINEAR, -1, 1, -1, 1, 0, 1e-10, 1e-4},
    /* ---- new in 2.0 ---- */
    {LAM_OP_GEMM_BATCHED, "gemm_batched", CF_K_GEMM_BATCHED, -1, 1, -1, 1, 0, 1e-10, 1e-4},
    {LAM_OP_IM2COL, "im2col", CF_K_IM2COL, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_COL2IM, "col2im", CF_K_COL2IM, -2, 2, 0, 0, 0, 1e-12, 1e-6},
    {LAM_OP_MAX_POOL, "max_pool", CF_K_MAX_POOL, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_MAX_POOL_BACKWARD, "max_pool_backward", CF_K_MAX_POOL_BACKWARD, -2, 2, 0, 0, 0, 1e-12,
     1e-6},
    {LAM_OP_AVG_POOL, "avg_pool", CF_K_AVG_POOL, -2, 2, 0, 0, 0, 1e-12, 1e-6},
    {LAM_OP_AVG_POOL_BACKWARD, "avg_pool_backward", CF_K_AVG_POOL_BACKWARD, -2, 2, 0, 0, 0, 1e-12,
     1e-6},
    {LAM_OP_GATHER_ROWS, "gather_rows", CF_K_GATHER, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_SCATTER_ADD_ROWS, "scatter_add_rows", CF_K_SCATTER, -2, 2, -2, 2, 0, 1e-12, 1e-6},
    {LAM_OP_RANDOM, "random", CF_K_RANDOM, 0, 0, 0, 0, 0, 1e-12, 1e-5},
    {LAM_OP_WHERE, "where", CF_K_WHERE, -2, 2, -2, 2, 0, 0, 0},
    {LAM_OP_GREATER, "greater", CF_K_COMPARE, -2, 2, -2, 2, 0, 0, 0},
    {LAM_OP_LESS, "less", CF_K_COMPARE, -2, 2, -2, 2, 0, 0, 0},
    {LAM_OP_EQUAL, "equal", CF_K_COMPARE, -2, 2, -2, 2, 0, 0, 0},
    {LAM_OP_PAD, "pad", CF_K_PAD, -2, 2, 0, 0, 1.5, 0, 0},
    /* low = scalar, high = CF_CLAMP_HIGH */
    {LAM_OP_CLAMP, "clamp", CF_K_SCALAR, -2, 2, 0, 0, -0.5, 0, 0},
    {LAM_OP_CAST, "cast", CF_K_CAST, -1000, 1000, 0, 0, 0, 0, 0},
    {LAM_OP_MOMENTS, "moments", CF_K_MOMENTS, -2, 2, 0, 0, 0, 1e-10, 1e-5},
    /* ---- new in 2.2 ---- */
    /* scalar = eps; inputs: x in [xlo, xhi], gamma and beta in [ylo, yhi] (the backward: dy
     * and x in [xlo, xhi], mean in [-1, 1], rstd in [0.5, 2], gamma in [ylo, yhi]). The
     * backward's dx cancels terms of a row's sums: a looser bound. */
    {LAM_OP_LAYER_NORM, "layer_norm", CF_K_LAYER_NORM, -2, 2, -1.5, 1.5, 1e-5, 1e-10, 1e-5},
    {LAM_OP_LAYER_NORM_BACKWARD, "layer_norm_backward", CF_K_LAYER_NORM, -2, 2, -1.5, 1.5, 0, 1e-9,
     1e-4},
};
#define N_OPS (sizeof op_table / sizeof op_table[0])

size_t cf_op_count(void) {
    return N_OPS;
}

const cf_oprow *cf_op_row(size_t i) {
    return i < N_OPS ? &op_table[i] : NULL;
}

/* ---- building the cases ---- */

static size_t elsize(lam_dtype dt) {
    return lam_dtype_size(dt);
}

/* A contiguous view of `dtype` (strides in bytes). */
static void contiguous(lam_tensor_view *v, lam_dtype dtype, uint32_t ndim, const int64_t *dims) {
    memset(v, 0, sizeof *v);
    v->struct_size = (uint32_t)sizeof *v;
    v->dtype = dtype;
    v->ndim = ndim;
    int64_t s = (int64_t)elsize(dtype);
    for (int i = (int)ndim - 1; i >= 0; i--) {
        v->dims[i] = dims[i];
        v->strides[i] = s;
        s *= dims[i];
    }
}

static size_t numel(const lam_tensor_view *v) {
    size_t n = 1;
    for (uint32_t i = 0; i < v->ndim; i++) {
        n *= (size_t)v->dims[i];
    }
    return n;
}

/* Input i: storage of `count` elements of its view's dtype, values from U(lo, hi) (integers
 * for integer dtypes, or `quant` nonzero: whole numbers, so comparisons see ties). */
static int fill_input(cf_opcase *t, uint32_t i, size_t count, cf_rng *r, float lo, float hi,
                      int quant) {
    size_t es = elsize(t->in[i].dtype);
    t->in_bytes[i] = count * es;
    t->in_data[i] = malloc(t->in_bytes[i] + 8);
    if (t->in_data[i] == NULL) {
        return -1;
    }
    for (size_t k = 0; k < count; k++) {
        float v = cf_rng_uniform(r, lo, hi);
        if (quant) {
            v = floorf(v);
        }
        switch (t->in[i].dtype) {
        case LAM_DTYPE_I32: {
            int32_t x = (int32_t)floorf(v);
            memcpy(t->in_data[i] + k * es, &x, es);
            break;
        }
        case LAM_DTYPE_I64: {
            int64_t x = (int64_t)floorf(v);
            memcpy(t->in_data[i] + k * es, &x, es);
            break;
        }
        default:
            memcpy(t->in_data[i] + k * es, &v, es);
        }
    }
    return 0;
}

/* Element k of input i as a double (any dtype the cases use). */
double cf_op_in_value(const cf_opcase *t, uint32_t i, size_t k) {
    size_t es = elsize(t->in[i].dtype);
    const unsigned char *p = t->in_data[i] + k * es;
    switch (t->in[i].dtype) {
    case LAM_DTYPE_I32: {
        int32_t x;
        memcpy(&x, p, sizeof x);
        return (double)x;
    }
    case LAM_DTYPE_I64: {
        int64_t x;
        memcpy(&x, p, sizeof x);
        return (double)x;
    }
    default: {
        float x;
        memcpy(&x, p, sizeof x);
        return (double)x;
    }
    }
}

static void set_in_f32(cf_opcase *t, uint32_t i, size_t k, float v) {
    memcpy(t->in_data[i] + k * 4, &v, 4);
}

void cf_op_case_free(cf_opcase *t) {
    for (int i = 0; i < CF_OP_MAX_IN; i++) {
        free(t->in_data[i]);
    }
    for (int i = 0; i < CF_OP_MAX_OUT; i++) {
        free(t->out_init[i]);
    }
    memset(t, 0, sizeof *t);
}

/* Output size of a window op along one axis (plugin.h: floor, or CEIL_MODE's rule). */
static int64_t win_out(int64_t n, int64_t k, int64_t s, int64_t pb, int64_t pa, int64_t d,
                       int ceil_mode) {
    int64_t span = n + pb + pa - d * (k - 1) - 1;
    if (span < 0) {
        return 0;
    }
    int64_t o = ceil_mode ? (span + s - 1) / s + 1 : span / s + 1;
    if (ceil_mode && (o - 1) * s >= n + pb) {
        o--;
    }
    return o;
}

static void window(cf_opcase *t, int64_t k, int64_t s, int64_t p, int64_t d, uint32_t flags) {
    lam_window_params *w = &t->p.w;
    memset(w, 0, sizeof *w);
    w->struct_size = (uint32_t)sizeof *w;
    w->n_spatial = 2;
    for (int i = 0; i < 2; i++) {
        w->kernel[i] = k;
        w->stride[i] = s;
        w->pad_before[i] = p;
        w->pad_after[i] = p;
        w->dilation[i] = d;
    }
    w->kernel[1] = k == 3 ? 2 : k; /* a non-square window when it can */
    w->flags = flags;
    t->params = w;
}

static void window_dims(const cf_opcase *t, int64_t h, int64_t w, int64_t *oh, int64_t *ow) {
    const lam_window_params *p = &t->p.w;
    int ceil_mode = (p->flags & LAM_WINDOW_CEIL_MODE) != 0;
    *oh = win_out(h, p->kernel[0], p->stride[0], p->pad_before[0], p->pad_after[0], p->dilation[0],
                  ceil_mode);
    *ow = win_out(w, p->kernel[1], p->stride[1], p->pad_before[1], p->pad_after[1], p->dilation[1],
                  ceil_mode);
}

/* The window variants: 0 = 3x2, stride 1, pad 1; 1 = 3x2, stride 2, dilation 2; 2 = 2x2 stride
 * 2 with CEIL_MODE (pooling) or COUNT_INCLUDE_PAD (averages). */
static int window_variant(cf_opcase *t, int variant, uint32_t extra_flag) {
    switch (variant) {
    case 0:
        window(t, 3, 1, 1, 1, 0);
        return 1;
    case 1:
        window(t, 3, 2, 0, 2, 0);
        return 1;
    case 2:
        window(t, 2, 2, 1, 1, extra_flag);
        return extra_flag != 0;
    default:
        return 0;
    }
}

/* MAX_POOL's reference on input 0 of `t` (N, C, H, W) into values and I32-valued indices. */
static void ref_max_pool(const cf_opcase *t, const lam_tensor_view *xv, const double *x,
                         double *vals, double *idx);

static int make_window_case(const cf_oprow *row, int variant, cf_rng *r, cf_opcase *t) {
    const int64_t n = 2, ch = 3, h = 7, w = 6;
    uint32_t extra = 0;
    if (row->kind == CF_K_MAX_POOL || row->kind == CF_K_MAX_POOL_BACKWARD) {
        extra = LAM_WINDOW_CEIL_MODE;
    } else if (row->kind == CF_K_AVG_POOL || row->kind == CF_K_AVG_POOL_BACKWARD) {
        extra = LAM_WINDOW_COUNT_INCLUDE_PAD;
    }
    if (!window_variant(t, variant, extra)) {
        return 0;
    }
    const lam_window_params *p = &t->p.w;
    int64_t oh, ow;
    window_dims(t, h, w, &oh, &ow);
    const int64_t xd[4] = {n, ch, h, w};
    const int64_t pd[4] = {n, ch, oh, ow};
    const int64_t kk = p->kernel[0] * p->kernel[1];
    const int64_t cd[3] = {n, ch * kk, oh * ow};
    switch (row->kind) {
    case CF_K_IM2COL:
        t->n_in = 1;
        contiguous(&t->in[0], LAM_DTYPE_F32, 4, xd);
        contiguous(&t->out[0], LAM_DTYPE_F32, 3, cd);
        break;
    case CF_K_COL2IM:
        t->n_in = 1;
        contiguous(&t->in[0], LAM_DTYPE_F32, 3, cd);
        contiguous(&t->out[0], LAM_DTYPE_F32, 4, xd);
        break;
    case CF_K_MAX_POOL:
        t->n_in = 1;
        t->n_out = 2;
        contiguous(&t->in[0], LAM_DTYPE_F32, 4, xd);
        contiguous(&t->out[0], LAM_DTYPE_F32, 4, pd);
        contiguous(&t->out[1], LAM_DTYPE_I32, 4, pd);
        break;
    case CF_K_AVG_POOL:
        t->n_in = 1;
        contiguous(&t->in[0], LAM_DTYPE_F32, 4, xd);
        contiguous(&t->out[0], LAM_DTYPE_F32, 4, pd);
        break;
    case CF_K_AVG_POOL_BACKWARD:
        t->n_in = 1;
        contiguous(&t->in[0], LAM_DTYPE_F32, 4, pd);
        contiguous(&t->out[0], LAM_DTYPE_F32, 4, xd);
        break;
    case CF_K_MAX_POOL_BACKWARD:
        t->n_in = 2;
        contiguous(&t->in[0], LAM_DTYPE_F32, 4, pd);
        contiguous(&t->in[1], LAM_DTYPE_I32, 4, pd);
        contiguous(&t->out[0], LAM_DTYPE_F32, 4, xd);
        break;
    default:
        return 0;
    }
    if (fill_input(t, 0, numel(&t->in[0]), r, row->xlo, row->xhi, 0) != 0) {
        return -1;
    }
    if (row->kind == CF_K_MAX_POOL_BACKWARD) {
        /* Indices as MAX_POOL would write them: the max of a random (N, C, H, W) input. */
        lam_tensor_view xv;
        contiguous(&xv, LAM_DTYPE_F32, 4, xd);
        size_t nx = numel(&xv), np = numel(&t->in[1]);
        double *x = malloc(nx * sizeof *x), *vals = malloc(np * sizeof *vals),
               *idx = malloc(np * sizeof *idx);
        t->in_bytes[1] = np * 4;
        t->in_data[1] = malloc(np * 4 + 8);
        if (x == NULL || vals == NULL || idx == NULL || t->in_data[1] == NULL) {
            free(x), free(vals), free(idx);
            return -1;
        }
        for (size_t k = 0; k < nx; k++) {
            x[k] = (double)cf_rng_uniform(r, -2, 2);
        }
        ref_max_pool(t, &xv, x, vals, idx);
        for (size_t k = 0; k < np; k++) {
            int32_t v = (int32_t)idx[k];
            memcpy(t->in_data[1] + 4 * k, &v, 4);
        }
        free(x), free(vals), free(idx);
    }
    snprintf(t->label, sizeof t->label,
             "%s (2, 3, 7, 6), window %lldx%lld, stride %lld, pad %lld, dilation %lld%s%s",
             row->name, (long long)p->kernel[0], (long long)p->kernel[1], (long long)p->stride[0],
             (long long)p->pad_before[0], (long long)p->dilation[0],
             p->flags & LAM_WINDOW_CEIL_MODE ? ", ceil mode" : "",
             p->flags & LAM_WINDOW_COUNT_INCLUDE_PAD ? ", count_include_pad" : "");
    return 1;
}

/*
 * LAYER_NORM and its backward on (m, n) rows: 0 = (5, 37), every output; 1 = (3, 40) read
 * through row stride 85 and element stride 2 (the output dense), the first output only;
 * 2 = (1, 1) forward (a zero variance: rstd = 1/sqrt(eps)) or (70, 9) backward (more rows than
 * one partial-sum block); 3 = (2, 2100), rows longer than the CPU's summation chunks.
 */
static int make_layer_norm_case(const cf_oprow *row, int variant, cf_rng *r, cf_opcase *t) {
    static const int64_t ms[4] = {5, 3, 1, 2}, ns[4] = {37, 40, 1, 2100};
    const int fwd = row->op == LAM_OP_LAYER_NORM;
    if (variant > 3) {
        return 0;
    }
    const int64_t m = !fwd && variant == 2 ? 70 : ms[variant];
    const int64_t n = !fwd && variant == 2 ? 9 : ns[variant];
    const int strided = variant == 1;
    const int64_t md[2] = {m, n}, rd[1] = {m}, nd[1] = {n};
    /* The (m, n) inputs: x for the forward; dy and x for the backward. */
    const uint32_t n_mat = fwd ? 1 : 2;
    t->n_in = fwd ? 3 : 5;
    t->n_out = strided ? 1 : 3;
    t->params = &t->p.s;
    for (uint32_t i = 0; i < n_mat; i++) {
        contiguous(&t->in[i], LAM_DTYPE_F32, 2, md);
        size_t count = (size_t)(m * n);
        if (strided) {
            t->in[i].strides[0] = 85 * 4;
            t->in[i].strides[1] = 2 * 4;
            count = (size_t)((m - 1) * 85 + (n - 1) * 2 + 1);
        }
        if (fill_input(t, i, count, r, row->xlo, row->xhi, 0) != 0) {
            return -1;
        }
    }
    if (fwd) {
        contiguous(&t->in[1], LAM_DTYPE_F32, 1, nd);
        contiguous(&t->in[2], LAM_DTYPE_F32, 1, nd);
        if (fill_input(t, 1, (size_t)n, r, row->ylo, row->yhi, 0) != 0 ||
            fill_input(t, 2, (size_t)n, r, row->ylo, row->yhi, 0) != 0) {
            return -1;
        }
        contiguous(&t->out[0], LAM_DTYPE_F32, 2, md);
        contiguous(&t->out[1], LAM_DTYPE_F32, 1, rd);
        contiguous(&t->out[2], LAM_DTYPE_F32, 1, rd);
    } else {
        contiguous(&t->in[2], LAM_DTYPE_F32, 1, rd);
        contiguous(&t->in[3], LAM_DTYPE_F32, 1, rd);
        contiguous(&t->in[4], LAM_DTYPE_F32, 1, nd);
        if (fill_input(t, 2, (size_t)m, r, -1, 1, 0) != 0 ||
            fill_input(t, 3, (size_t)m, r, 0.5f, 2, 0) != 0 ||
            fill_input(t, 4, (size_t)n, r, row->ylo, row->yhi, 0) != 0) {
            return -1;
        }
        contiguous(&t->out[0], LAM_DTYPE_F32, 2, md);
        contiguous(&t->out[1], LAM_DTYPE_F32, 1, nd);
        contiguous(&t->out[2], LAM_DTYPE_F32, 1, nd);
    }
    snprintf(t->label, sizeof t->label, "%s (%lld, %lld)%s%s", row->name, (long long)m,
             (long long)n, strided ? " read through strides (85, 2)" : "",
             t->n_out == 1 ? ", first output only" : ", every output");
    return 1;
}

int cf_op_case(const cf_oprow *row, int variant, int special, uint64_t seed, cf_opcase *t) {
    memset(t, 0, sizeof *t);
    t->op = row->op;
    t->n_out = 1;
    t->p.s.struct_size = (uint32_t)sizeof t->p.s;
    t->p.s.a = row->scalar;
    t->p.s.b = row->op == LAM_OP_CLAMP ? CF_CLAMP_HIGH : CF_AXPBY_S1;
    cf_rng r;
    cf_rng_init(&r, seed, 100 + (uint64_t)row->op * 16 + (uint64_t)variant);
    const int64_t ew[3] = {4, 33, 5};
    int rc = 1;
    switch (row->kind) {
    case CF_K_FILL:
        if (variant > 0) {
            return 0;
        }
        contiguous(&t->out[0], LAM_DTYPE_F32, 3, ew);
        if (special) {
            t->p.s.a = NAN;
        }
        t->params = &t->p.s;
        snprintf(t->label, sizeof t->label, "fill (4, 33, 5) with %g", t->p.s.a);
        break;
    case CF_K_UNARY:
    case CF_K_SCALAR:
    case CF_K_BINARY:
    case CF_K_COMPARE:
    case CF_K_WHERE: {
        /* AXPBY may update x in place: variant 2 makes the output x's very view. */
        int inplace = row->op == LAM_OP_AXPBY && variant == 2;
        if (variant > 1 && !inplace) {
            return 0;
        }
        t->n_in = row->kind == CF_K_WHERE                                 ? 3
                  : row->kind == CF_K_BINARY || row->kind == CF_K_COMPARE ? 2
                                                                          : 1;
        t->alias = inplace;
        t->flags = inplace ? LAM_CALL_IN_PLACE : 0;
        if (row->kind == CF_K_SCALAR || row->op == LAM_OP_AXPBY) {
            t->params = &t->p.s;
        }
        contiguous(&t->out[0], LAM_DTYPE_F32, 3, ew);
        for (uint32_t i = 0; i < t->n_in && rc == 1; i++) {
            /* Variant 1 broadcasts the last input along the first axis (stride 0). */
            int bcast = variant == 1 && i == t->n_in - 1;
            contiguous(&t->in[i], LAM_DTYPE_F32, 3, ew);
            if (bcast) {
                t->in[i].strides[0] = 0;
            }
            size_t count = bcast ? (size_t)(ew[1] * ew[2]) : (size_t)(ew[0] * ew[1] * ew[2]);
            int cond = row->kind == CF_K_WHERE && i == 0;
            float lo = cond ? 0 : i ? row->ylo : row->xlo, hi = cond ? 2 : i ? row->yhi : row->xhi;
            if (fill_input(t, i, count, &r, lo, hi, row->kind == CF_K_COMPARE || cond) != 0) {
                rc = -1;
            }
        }
        snprintf(t->label, sizeof t->label, "%s (4, 33, 5)%s", row->name,
                 inplace   ? ", in place (output is input 0's view)"
                 : variant ? ", last input broadcast along axis 0 (stride 0)"
                           : ", contiguous");
        break;
    }
    case CF_K_GEMM:
    case CF_K_LINEAR: {
        if (variant > 4 || (row->kind == CF_K_LINEAR && variant > 3)) {
            return 0;
        }
        const int64_t m = 7, k = 13, n = 5;
        int ta = variant == 1 || variant == 3, tb = variant == 2 || variant == 3;
        t->p.g.struct_size = (uint32_t)sizeof t->p.g;
        t->p.g.flags = (ta ? LAM_GEMM_TRANS_A : 0u) | (tb ? LAM_GEMM_TRANS_B : 0u);
        t->p.g.alpha = variant == 4 ? 0.5 : 1.0;
        t->p.g.beta = variant == 4 ? 2.0 : 0.0;
        t->p.g.act = row->kind == CF_K_LINEAR && variant & 1 ? LAM_OP_RELU : LAM_OP_INVALID;
        t->params = &t->p.g;
        t->n_in = row->kind == CF_K_LINEAR && variant < 2 ? 3 : 2;
        int64_t ad[2] = {ta ? k : m, ta ? m : k}, bd[2] = {tb ? n : k, tb ? k : n};
        int64_t od[2] = {m, n}, biasd[1] = {n};
        contiguous(&t->in[0], LAM_DTYPE_F32, 2, ad);
        contiguous(&t->in[1], LAM_DTYPE_F32, 2, bd);
        contiguous(&t->out[0], LAM_DTYPE_F32, 2, od);
        if (fill_input(t, 0, (size_t)(m * k), &r, row->xlo, row->xhi, 0) != 0 ||
            fill_input(t, 1, (size_t)(k * n), &r, row->ylo, row->yhi, 0) != 0) {
            return -1;
        }
        if (t->n_in == 3) {
            contiguous(&t->in[2], LAM_DTYPE_F32, 1, biasd);
            if (fill_input(t, 2, (size_t)n, &r, -1, 1, 0) != 0) {
                return -1;
            }
        }
        if (row->kind == CF_K_GEMM) {
            t->out_init[0] = malloc((size_t)(m * n) * sizeof(float));
            for (int64_t i = 0; t->out_init[0] && i < m * n; i++) {
                /* beta == 0: out must not be read, so NaN there must not show */
                float v = variant == 4 ? cf_rng_uniform(&r, -1, 1) : NAN;
                memcpy(t->out_init[0] + 4 * i, &v, 4);
            }
            snprintf(t->label, sizeof t->label, "gemm (7x13)%s x (13x5)%s, alpha %g, beta %g",
                     ta ? "^T" : "", tb ? "^T" : "", t->p.g.alpha, t->p.g.beta);
        } else {
            snprintf(t->label, sizeof t->label, "linear (7x13)%s x (13x5)%s%s, act %s",
                     ta ? "^T" : "", tb ? "^T" : "", t->n_in == 3 ? " + bias" : "",
                     lam_op_name(t->p.g.act));
        }
        break;
    }
    case CF_K_GEMM_BATCHED: {
        if (variant > 3) {
            return 0;
        }
        const int64_t bt = 3, m = 5, k = 9, n = 4;
        int ta = variant == 1, tb = variant == 2, shared = variant == 3;
        t->p.g.struct_size = (uint32_t)sizeof t->p.g;
        t->p.g.flags = (ta ? LAM_GEMM_TRANS_A : 0u) | (tb ? LAM_GEMM_TRANS_B : 0u);
        t->p.g.alpha = 1.0;
        t->p.g.beta = 0.0;
        t->params = &t->p.g;
        t->n_in = 2;
        int64_t ad[3] = {bt, ta ? k : m, ta ? m : k}, bd[3] = {bt, tb ? n : k, tb ? k : n};
        int64_t od[3] = {bt, m, n};
        contiguous(&t->in[0], LAM_DTYPE_F32, 3, ad);
        contiguous(&t->in[1], LAM_DTYPE_F32, 3, bd);
        contiguous(&t->out[0], LAM_DTYPE_F32, 3, od);
        if (shared) {
            t->in[1].strides[0] = 0; /* B shared across the batch */
        }
        if (fill_input(t, 0, (size_t)(bt * m * k), &r, row->xlo, row->xhi, 0) != 0 ||
            fill_input(t, 1, (size_t)((shared ? 1 : bt) * k * n), &r, row->ylo, row->yhi, 0) != 0) {
            return -1;
        }
        snprintf(t->label, sizeof t->label, "gemm_batched 3 x (5x9)%s x (9x4)%s%s", ta ? "^T" : "",
                 tb ? "^T" : "", shared ? ", B shared (batch stride 0)" : "");
        break;
    }
    case CF_K_REDUCE:
    case CF_K_SOFTMAX:
    case CF_K_MOMENTS: {
        if (variant > 1 || (variant == 1 && row->kind == CF_K_SOFTMAX)) {
            return 0;
        }
        const int64_t xd[3] = {3, variant ? 0 : 11, 4};
        const int64_t od[3] = {3, row->kind == CF_K_SOFTMAX ? xd[1] : 1, 4};
        t->n_in = 1;
        contiguous(&t->in[0], LAM_DTYPE_F32, 3, xd);
        contiguous(&t->out[0], LAM_DTYPE_F32, 3, od);
        if (row->kind == CF_K_MOMENTS) {
            t->n_out = 2;
            contiguous(&t->out[1], LAM_DTYPE_F32, 3, od);
        }
        if (fill_input(t, 0, numel(&t->in[0]), &r, row->xlo, row->xhi, 0) != 0) {
            return -1;
        }
        snprintf(t->label, sizeof t->label, "%s over the middle axis of (3, %lld, 4)", row->name,
                 (long long)xd[1]);
        break;
    }
    case CF_K_IM2COL:
    case CF_K_COL2IM:
    case CF_K_MAX_POOL:
    case CF_K_MAX_POOL_BACKWARD:
    case CF_K_AVG_POOL:
    case CF_K_AVG_POOL_BACKWARD:
        rc = make_window_case(row, variant, &r, t);
        break;
    case CF_K_GATHER:
    case CF_K_SCATTER: {
        if (variant > 1) {
            return 0;
        }
        const int64_t v = 10, d = 6, m = 12;
        lam_dtype it = variant ? LAM_DTYPE_I64 : LAM_DTYPE_I32;
        const int64_t td[2] = {v, d}, md[2] = {m, d}, id[1] = {m};
        t->n_in = 2;
        contiguous(&t->in[0], LAM_DTYPE_F32, 2, row->kind == CF_K_GATHER ? td : md);
        contiguous(&t->in[1], it, 1, id);
        contiguous(&t->out[0], LAM_DTYPE_F32, 2, row->kind == CF_K_GATHER ? md : td);
        if (fill_input(t, 0, numel(&t->in[0]), &r, row->xlo, row->xhi, 0) != 0 ||
            fill_input(t, 1, (size_t)m, &r, 0, (float)v, 1) != 0) {
            return -1;
        }
        if (row->kind == CF_K_SCATTER) {
            /* out is read: it starts as random values, repeated indices add up */
            t->out_init[0] = malloc((size_t)(v * d) * 4);
            for (int64_t i = 0; t->out_init[0] && i < v * d; i++) {
                float x = cf_rng_uniform(&r, row->ylo, row->yhi);
                memcpy(t->out_init[0] + 4 * i, &x, 4);
            }
            if (t->out_init[0] == NULL) {
                return -1;
            }
        }
        snprintf(t->label, sizeof t->label, "%s, table (10, 6), %s indices (12,)", row->name,
                 variant ? "I64" : "I32");
        break;
    }
    case CF_K_RANDOM: {
        if (variant > 3 || special) {
            return 0; /* no inputs to make special */
        }
        static const lam_random_kind kinds[4] = {LAM_RANDOM_UNIFORM, LAM_RANDOM_UNIFORM,
                                                 LAM_RANDOM_BERNOULLI, LAM_RANDOM_NORMAL};
        static const double as[4] = {0.0, -2.0, 0.3, 0.5}, bs[4] = {1.0, 3.0, 0.0, 2.0};
        const int64_t od[2] = {7, 37}; /* odd: NORMAL's last element uses its pair's word */
        memset(&t->p.r, 0, sizeof t->p.r);
        t->p.r.struct_size = (uint32_t)sizeof t->p.r;
        t->p.r.kind = kinds[variant];
        t->p.r.seed = seed ^ 0x5eedULL;
        t->p.r.key = 0x0123456789abcdefULL + (uint64_t)(unsigned)variant;
        t->p.r.offset = variant == 1 ? 3ULL : 0x1fffffffdULL; /* unaligned; crossing 2^32 */
        t->p.r.a = as[variant];
        t->p.r.b = bs[variant];
        t->params = &t->p.r;
        contiguous(&t->out[0], LAM_DTYPE_F32, 2, od);
        snprintf(t->label, sizeof t->label, "random %s (%g, %g), (7, 37), offset %llu",
                 t->p.r.kind == LAM_RANDOM_UNIFORM     ? "uniform"
                 : t->p.r.kind == LAM_RANDOM_BERNOULLI ? "bernoulli"
                                                       : "normal",
                 t->p.r.a, t->p.r.b, (unsigned long long)t->p.r.offset);
        break;
    }
    case CF_K_PAD: {
        if (variant > 0) {
            return 0;
        }
        const int64_t xd[3] = {3, 4, 5};
        memset(&t->p.pad, 0, sizeof t->p.pad);
        t->p.pad.struct_size = (uint32_t)sizeof t->p.pad;
        t->p.pad.value = row->scalar;
        const int64_t before[3] = {1, 0, 2}, after[3] = {0, 3, 1};
        int64_t od[3];
        for (int i = 0; i < 3; i++) {
            t->p.pad.before[i] = before[i];
            t->p.pad.after[i] = after[i];
            od[i] = xd[i] + before[i] + after[i];
        }
        t->params = &t->p.pad;
        t->n_in = 1;
        contiguous(&t->in[0], LAM_DTYPE_F32, 3, xd);
        contiguous(&t->out[0], LAM_DTYPE_F32, 3, od);
        if (fill_input(t, 0, numel(&t->in[0]), &r, row->xlo, row->xhi, 0) != 0) {
            return -1;
        }
        snprintf(t->label, sizeof t->label, "pad (3, 4, 5) by (1, 0, 2) before, (0, 3, 1) after");
        break;
    }
    case CF_K_LAYER_NORM:
        rc = make_layer_norm_case(row, variant, &r, t);
        break;
    case CF_K_CAST: {
        if (variant > 1) {
            return 0;
        }
        const int64_t xd[2] = {9, 13};
        t->n_in = 1;
        contiguous(&t->in[0], variant ? LAM_DTYPE_I32 : LAM_DTYPE_F32, 2, xd);
        contiguous(&t->out[0], variant ? LAM_DTYPE_F32 : LAM_DTYPE_I32, 2, xd);
        if (fill_input(t, 0, numel(&t->in[0]), &r, row->xlo, row->xhi, 0) != 0) {
            return -1;
        }
        snprintf(t->label, sizeof t->label, "cast (9, 13) %s",
                 variant ? "i32 -> f32" : "f32 -> i32");
        break;
    }
    }
    if (rc != 1) {
        return rc;
    }
    for (uint32_t o = 0; o < t->n_out; o++) {
        t->out_count[o] = numel(&t->out[o]);
    }
    if (special) {
        /* NaN, +inf and -inf at fixed places of each float input (not WHERE's condition's
         * NaN: that one is "not zero" and picks x, a case the semantics cover too). */
        static const size_t pos[3] = {0, 7, 13};
        const float val[3] = {NAN, INFINITY, -INFINITY};
        int any = 0;
        for (uint32_t i = 0; i < t->n_in; i++) {
            size_t cnt = t->in_bytes[i] / elsize(t->in[i].dtype);
            if (t->in[i].dtype != LAM_DTYPE_F32 || cnt == 0) {
                continue;
            }
            for (int j = 0; j < 3; j++) {
                set_in_f32(t, i, (pos[j] + 5 * i) % cnt, val[j]);
                any = 1;
            }
        }
        if (!any) {
            cf_op_case_free(t);
            return 0;
        }
        size_t n = strlen(t->label);
        snprintf(t->label + n, sizeof t->label - n, ", with NaN/inf inputs");
    }
    return 1;
}

/* ---- the kit's own reference ---- */

/* Input i at a multi-index (its view's byte strides, storage from offset 0). */
static double at_in(const cf_opcase *t, uint32_t i, const int64_t *idx) {
    const lam_tensor_view *v = &t->in[i];
    int64_t off = 0;
    for (uint32_t d = 0; d < v->ndim; d++) {
        off += idx[d] * v->strides[d];
    }
    return cf_op_in_value(t, i, (size_t)off / elsize(v->dtype));
}

static double ref_elementwise(const cf_opcase *t, double x, double y, double z) {
    double s = t->p.s.a, s1 = t->p.s.b;
    switch (t->op) {
    case LAM_OP_FILL:
        return s;
    case LAM_OP_COPY:
        return x;
    case LAM_OP_ADD:
        return x + y;
    case LAM_OP_SUB:
        return x - y;
    case LAM_OP_MUL:
        return x * y;
    case LAM_OP_DIV:
        return x / y;
    case LAM_OP_ADD_SCALAR:
        return x + s;
    case LAM_OP_MUL_SCALAR:
        return x * s;
    case LAM_OP_RSUB_SCALAR:
        return s - x;
    case LAM_OP_DIV_SCALAR:
        return x / s;
    case LAM_OP_RDIV_SCALAR:
        return s / x;
    case LAM_OP_POW_SCALAR:
        return pow(x, s);
    case LAM_OP_NEG:
        return -x;
    case LAM_OP_ABS:
        return fabs(x);
    case LAM_OP_SQUARE:
        return x * x;
    case LAM_OP_SQRT:
        return sqrt(x);
    case LAM_OP_EXP:
        return exp(x);
    case LAM_OP_LOG:
        return log(x);
    case LAM_OP_RELU:
        return isnan(x) ? x : x > 0 ? x : 0.0;
    case LAM_OP_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case LAM_OP_TANH:
        return tanh(x);
    case LAM_OP_SOFTRELU:
        return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case LAM_OP_MAXIMUM:
        return isnan(x) || isnan(y) ? NAN : x > y ? x : y;
    case LAM_OP_MINIMUM:
        return isnan(x) || isnan(y) ? NAN : x < y ? x : y;
    case LAM_OP_STEP:
        return x > 0 ? 1.0 : 0.0;
    case LAM_OP_GREATER_EQUAL:
        return x >= y ? 1.0 : 0.0;
    case LAM_OP_AXPBY:
        return s * x + s1 * y;
    case LAM_OP_GREATER:
        return x > y ? 1.0 : 0.0;
    case LAM_OP_LESS:
        return x < y ? 1.0 : 0.0;
    case LAM_OP_EQUAL:
        return x == y ? 1.0 : 0.0;
    case LAM_OP_WHERE:
        return x != 0 ? y : z; /* x = cond, y = the "then" input, z = the "else" input */
    case LAM_OP_CLAMP:
        return isnan(x) ? x : x < s ? s : x > s1 ? s1 : x;
    default:
        return NAN;
    }
}

static double act(lam_op a, double v) {
    switch (a) {
    case LAM_OP_RELU:
        return isnan(v) ? v : v > 0 ? v : 0.0;
    case LAM_OP_SIGMOID:
        return 1.0 / (1.0 + exp(-v));
    case LAM_OP_TANH:
        return tanh(v);
    case LAM_OP_SOFTRELU:
        return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v));
    default:
        return v;
    }
}

static void ref_gemm(const cf_opcase *t, double *out) {
    const lam_gemm_params *g = &t->p.g;
    int ta = (g->flags & LAM_GEMM_TRANS_A) != 0, tb = (g->flags & LAM_GEMM_TRANS_B) != 0;
    int batched = t->op == LAM_OP_GEMM_BATCHED;
    uint32_t o0 = batched ? 1 : 0;
    int64_t nb = batched ? t->out[0].dims[0] : 1;
    int64_t m = t->out[0].dims[o0], n = t->out[0].dims[o0 + 1];
    int64_t k = ta ? t->in[0].dims[o0] : t->in[0].dims[o0 + 1];
    for (int64_t b = 0; b < nb; b++) {
        for (int64_t i = 0; i < m; i++) {
            for (int64_t j = 0; j < n; j++) {
                double acc = 0.0;
                for (int64_t q = 0; q < k; q++) {
                    int64_t ia[3], ib[3];
                    ia[0] = ib[0] = b;
                    ia[o0] = ta ? q : i;
                    ia[o0 + 1] = ta ? i : q;
                    ib[o0] = tb ? j : q;
                    ib[o0 + 1] = tb ? q : j;
                    acc += at_in(t, 0, ia) * at_in(t, 1, ib);
                }
                size_t oi = (size_t)((b * m + i) * n + j);
                if (t->op == LAM_OP_LINEAR) {
                    int64_t bj[1] = {j};
                    out[oi] = act(g->act, acc + (t->n_in == 3 ? at_in(t, 2, bj) : 0.0));
                    continue;
                }
                double r = g->alpha * acc;
                if (g->beta != 0.0) {
                    float init;
                    memcpy(&init, t->out_init[0] + 4 * oi, 4);
                    r += g->beta * (double)init;
                }
                out[oi] = r;
            }
        }
    }
}

static int ref_middle(const cf_opcase *t, double **outs) {
    const lam_tensor_view *x = &t->in[0];
    int64_t outer = x->dims[0], n = x->dims[1], inner = x->dims[2];
    if (t->op == LAM_OP_ARGMAX && n == 0) {
        return -1;
    }
    for (int64_t a = 0; a < outer; a++) {
        for (int64_t c = 0; c < inner; c++) {
            double sum = 0.0, mx = -INFINITY, mn = INFINITY;
            int nan = 0;
            int64_t arg = -1; /* first maximum; a NaN counts as the maximum (NumPy) */
            for (int64_t b = 0; b < n; b++) {
                double v = at_in(t, 0, (int64_t[3]){a, b, c});
                sum += v;
                if (isnan(v) && !nan) {
                    arg = b;
                } else if (!nan && (arg < 0 || v > mx)) {
                    arg = b;
                }
                nan |= isnan(v) != 0;
                mx = v > mx ? v : mx;
                mn = v < mn ? v : mn;
            }
            double *o = &outs[0][a * inner + c];
            switch (t->op) {
            case LAM_OP_REDUCE_SUM:
                *o = sum;
                break;
            case LAM_OP_REDUCE_MEAN:
                *o = n > 0 ? sum / (double)n : NAN;
                break;
            case LAM_OP_REDUCE_MAX:
                *o = nan ? NAN : mx;
                break;
            case LAM_OP_REDUCE_MIN:
                *o = nan ? NAN : mn;
                break;
            case LAM_OP_ARGMAX:
                *o = (double)arg;
                break;
            case LAM_OP_MOMENTS: {
                double mean = n > 0 ? sum / (double)n : NAN, ss = 0.0;
                for (int64_t b = 0; b < n; b++) {
                    double d = at_in(t, 0, (int64_t[3]){a, b, c}) - mean;
                    ss += d * d;
                }
                *o = mean;
                outs[1][a * inner + c] = n > 0 ? ss / (double)n : NAN;
                break;
            }
            default: { /* softmax, log-softmax: every element of the line */
                double m = nan ? NAN : mx, z = 0.0;
                for (int64_t b = 0; b < n; b++) {
                    z += exp(at_in(t, 0, (int64_t[3]){a, b, c}) - m);
                }
                for (int64_t b = 0; b < n; b++) {
                    double e = at_in(t, 0, (int64_t[3]){a, b, c}) - m;
                    outs[0][(a * n + b) * inner + c] =
                        t->op == LAM_OP_LOG_SOFTMAX ? e - log(z) : exp(e) / z;
                }
            }
            }
        }
    }
    return 0;
}

/* Calls fn for every (n, c, oh, ow, i, j) tap of the window op's geometry with the input
 * coordinate (h, w), inside the padded range or not. */
typedef void (*tap_fn)(void *arg, int64_t plane, int64_t o, int64_t tap, int64_t h, int64_t w);

static void each_tap(const lam_window_params *p, int64_t planes, int64_t hgt, int64_t wid,
                     int64_t oh, int64_t ow, tap_fn fn, void *arg) {
    for (int64_t pl = 0; pl < planes; pl++) {
        for (int64_t y = 0; y < oh; y++) {
            for (int64_t x = 0; x < ow; x++) {
                for (int64_t i = 0; i < p->kernel[0]; i++) {
                    for (int64_t j = 0; j < p->kernel[1]; j++) {
                        int64_t h = y * p->stride[0] - p->pad_before[0] + i * p->dilation[0];
                        int64_t w = x * p->stride[1] - p->pad_before[1] + j * p->dilation[1];
                        fn(arg, pl, y * ow + x, i * p->kernel[1] + j, h, w);
                    }
                }
            }
        }
    }
    (void)hgt, (void)wid;
}

typedef struct win_ref {
    const cf_opcase *t;
    const lam_window_params *p;
    int64_t hgt, wid, oh, ow, ch;
    const double *x; /* MAX_POOL on an explicit input (MAX_POOL_BACKWARD's indices) */
    double *out, *out2;
} win_ref;

static int inside(const win_ref *r, int64_t h, int64_t w) {
    return h >= 0 && h < r->hgt && w >= 0 && w < r->wid;
}

static void tap_im2col(void *arg, int64_t pl, int64_t o, int64_t tap, int64_t h, int64_t w) {
    win_ref *r = arg;
    int64_t n = pl / r->ch, c = pl % r->ch, kk = r->p->kernel[0] * r->p->kernel[1];
    double v =
        inside(r, h, w) ? cf_op_in_value(r->t, 0, (size_t)((pl * r->hgt + h) * r->wid + w)) : 0.0;
    r->out[((n * r->ch + c) * kk + tap) * (r->oh * r->ow) + o] = v;
}

static void tap_col2im(void *arg, int64_t pl, int64_t o, int64_t tap, int64_t h, int64_t w) {
    win_ref *r = arg;
    int64_t n = pl / r->ch, c = pl % r->ch, kk = r->p->kernel[0] * r->p->kernel[1];
    if (inside(r, h, w)) {
        r->out[(pl * r->hgt + h) * r->wid + w] +=
            cf_op_in_value(r->t, 0, (size_t)(((n * r->ch + c) * kk + tap) * (r->oh * r->ow) + o));
    }
}

static void tap_max(void *arg, int64_t pl, int64_t o, int64_t tap, int64_t h, int64_t w) {
    win_ref *r = arg;
    (void)tap;
    if (!inside(r, h, w)) {
        return; /* padding never wins */
    }
    double v = r->x[(pl * r->hgt + h) * r->wid + w];
    double *best = &r->out[pl * r->oh * r->ow + o], *at = &r->out2[pl * r->oh * r->ow + o];
    /* first in window order wins ties; the first NaN wins and stays */
    if (*at < 0 || (!isnan(*best) && (isnan(v) || v > *best))) {
        *best = v;
        *at = (double)(h * r->wid + w);
    }
}

static int64_t avg_count(const win_ref *r, int64_t y, int64_t x) {
    const lam_window_params *p = r->p;
    int incl = (p->flags & LAM_WINDOW_COUNT_INCLUDE_PAD) != 0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < p->kernel[0]; i++) {
        for (int64_t j = 0; j < p->kernel[1]; j++) {
            int64_t h = y * p->stride[0] - p->pad_before[0] + i * p->dilation[0];
            int64_t w = x * p->stride[1] - p->pad_before[1] + j * p->dilation[1];
            if (incl ? h >= -p->pad_before[0] && h < r->hgt + p->pad_after[0] &&
                           w >= -p->pad_before[1] && w < r->wid + p->pad_after[1]
                     : inside(r, h, w)) {
                cnt++;
            }
        }
    }
    return cnt;
}

static void tap_avg(void *arg, int64_t pl, int64_t o, int64_t tap, int64_t h, int64_t w) {
    win_ref *r = arg;
    (void)tap;
    int64_t cnt = avg_count(r, o / r->ow, o % r->ow);
    if (!inside(r, h, w) || cnt == 0) {
        return;
    }
    size_t xi = (size_t)((pl * r->hgt + h) * r->wid + w), oi = (size_t)(pl * r->oh * r->ow + o);
    if (r->t->op == LAM_OP_AVG_POOL) {
        r->out[oi] += cf_op_in_value(r->t, 0, xi) / (double)cnt;
    } else {
        r->out[xi] += cf_op_in_value(r->t, 0, oi) / (double)cnt;
    }
}

static void ref_max_pool(const cf_opcase *t, const lam_tensor_view *xv, const double *x,
                         double *vals, double *idx) {
    win_ref r = {.t = t, .p = &t->p.w, .ch = xv->dims[1], .hgt = xv->dims[2], .wid = xv->dims[3]};
    window_dims(t, r.hgt, r.wid, &r.oh, &r.ow);
    int64_t planes = xv->dims[0] * xv->dims[1];
    for (int64_t k = 0; k < planes * r.oh * r.ow; k++) {
        vals[k] = 0.0;
        idx[k] = -1.0;
    }
    r.x = x;
    r.out = vals;
    r.out2 = idx;
    each_tap(r.p, planes, r.hgt, r.wid, r.oh, r.ow, tap_max, &r);
}

static int ref_window(const cf_opcase *t, double **outs) {
    const lam_tensor_view *img =
        t->op == LAM_OP_IM2COL || t->op == LAM_OP_MAX_POOL || t->op == LAM_OP_AVG_POOL ? &t->in[0]
                                                                                       : &t->out[0];
    win_ref r = {
        .t = t, .p = &t->p.w, .ch = img->dims[1], .hgt = img->dims[2], .wid = img->dims[3]};
    window_dims(t, r.hgt, r.wid, &r.oh, &r.ow);
    int64_t planes = img->dims[0] * img->dims[1];
    for (uint32_t o = 0; o < t->n_out; o++) {
        for (size_t k = 0; k < t->out_count[o]; k++) {
            outs[o][k] = 0.0;
        }
    }
    r.out = outs[0];
    switch (t->op) {
    case LAM_OP_IM2COL:
        each_tap(r.p, planes, r.hgt, r.wid, r.oh, r.ow, tap_im2col, &r);
        return 0;
    case LAM_OP_COL2IM:
        each_tap(r.p, planes, r.hgt, r.wid, r.oh, r.ow, tap_col2im, &r);
        return 0;
    case LAM_OP_AVG_POOL:
    case LAM_OP_AVG_POOL_BACKWARD:
        each_tap(r.p, planes, r.hgt, r.wid, r.oh, r.ow, tap_avg, &r);
        return 0;
    case LAM_OP_MAX_POOL: {
        size_t nx = t->in_bytes[0] / 4;
        double *x = malloc((nx + 1) * sizeof *x);
        if (x == NULL) {
            return -1;
        }
        for (size_t k = 0; k < nx; k++) {
            x[k] = cf_op_in_value(t, 0, k);
        }
        ref_max_pool(t, img, x, outs[0], outs[1]);
        free(x);
        return 0;
    }
    case LAM_OP_MAX_POOL_BACKWARD: {
        size_t np = t->in_bytes[0] / 4;
        for (size_t k = 0; k < np; k++) {
            int64_t pl = (int64_t)k / (r.oh * r.ow);
            int64_t at = (int64_t)cf_op_in_value(t, 1, k);
            outs[0][pl * r.hgt * r.wid + at] += cf_op_in_value(t, 0, k);
        }
        return 0;
    }
    default:
        return 1;
    }
}

/* Philox-4x32-10 (Salmon et al. 2011, Random123's constants), written here independently of
 * core/rng.c so that the CPU backend's RANDOM is checked against a second implementation. */
static void philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]}, k[2] = {key[0], key[1]};
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k[0] += 0x9E3779B9u;
            k[1] += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k[0], n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k[1];
        c[0] = n0;
        c[1] = (uint32_t)p1;
        c[2] = n2;
        c[3] = (uint32_t)p0;
    }
    memcpy(out, c, sizeof c);
}

static uint32_t random_word(const lam_random_params *p, uint64_t i) {
    uint64_t e = p->offset + i, n = e / 4;
    uint32_t ctr[4] = {(uint32_t)n, (uint32_t)(n >> 32), (uint32_t)p->key,
                       (uint32_t)(p->key >> 32)};
    uint32_t key[2] = {(uint32_t)p->seed, (uint32_t)(p->seed >> 32)}, blk[4];
    philox(ctr, key, blk);
    return blk[e % 4];
}

static void ref_random(const cf_opcase *t, double *out) {
    const lam_random_params *p = &t->p.r;
    for (size_t i = 0; i < t->out_count[0]; i++) {
        uint32_t u = random_word(p, i);
        float f = (float)(u >> 8) * 0x1p-24f;
        switch (p->kind) {
        case LAM_RANDOM_UNIFORM:
            out[i] = (double)((float)p->a + ((float)p->b - (float)p->a) * f);
            break;
        case LAM_RANDOM_BERNOULLI:
            out[i] = f < (float)p->a ? 1.0 : 0.0;
            break;
        default: {
            size_t k = i / 2;
            uint32_t u1 = random_word(p, 2 * k), u2 = random_word(p, 2 * k + 1);
            float f1 = (float)((u1 >> 8) + 1) * 0x1p-24f, f2 = (float)(u2 >> 8) * 0x1p-24f;
            float rr = sqrtf(-2.0f * logf(f1));
            float z = i % 2 == 0 ? rr * cosf(6.2831853071795864f * f2)
                                 : rr * sinf(6.2831853071795864f * f2);
            out[i] = (double)((float)p->a + (float)p->b * z);
        }
        }
    }
}

/* LAYER_NORM and LAYER_NORM_BACKWARD in double, as plugin.h states them (two passes). */
static int ref_layer_norm(const cf_opcase *t, double **outs) {
    const int fwd = t->op == LAM_OP_LAYER_NORM;
    const lam_tensor_view *x = &t->in[fwd ? 0 : 1];
    const int64_t m = x->dims[0], n = x->dims[1];
    if (!fwd) {
        for (int64_t k = 0; t->n_out == 3 && k < n; k++) {
            outs[1][k] = 0.0;
            outs[2][k] = 0.0;
        }
    }
    for (int64_t i = 0; i < m; i++) {
        if (fwd) {
            double sum = 0.0, ss = 0.0;
            for (int64_t k = 0; k < n; k++) {
                sum += at_in(t, 0, (int64_t[2]){i, k});
            }
            const double mean = sum / (double)n;
            for (int64_t k = 0; k < n; k++) {
                const double d = at_in(t, 0, (int64_t[2]){i, k}) - mean;
                ss += d * d;
            }
            const double rstd = 1.0 / sqrt(ss / (double)n + t->p.s.a);
            for (int64_t k = 0; k < n; k++) {
                const double xh = (at_in(t, 0, (int64_t[2]){i, k}) - mean) * rstd;
                outs[0][i * n + k] =
                    xh * cf_op_in_value(t, 1, (size_t)k) + cf_op_in_value(t, 2, (size_t)k);
            }
            if (t->n_out == 3) {
                outs[1][i] = mean;
                outs[2][i] = rstd;
            }
            continue;
        }
        const double mean = cf_op_in_value(t, 2, (size_t)i), rstd = cf_op_in_value(t, 3, (size_t)i);
        double sg = 0.0, sgx = 0.0;
        for (int64_t k = 0; k < n; k++) {
            const double g = at_in(t, 0, (int64_t[2]){i, k}) * cf_op_in_value(t, 4, (size_t)k);
            sg += g;
            sgx += g * ((at_in(t, 1, (int64_t[2]){i, k}) - mean) * rstd);
        }
        const double a = sg / (double)n, b = sgx / (double)n;
        for (int64_t k = 0; k < n; k++) {
            const double dy = at_in(t, 0, (int64_t[2]){i, k});
            const double xh = (at_in(t, 1, (int64_t[2]){i, k}) - mean) * rstd;
            outs[0][i * n + k] = rstd * ((dy * cf_op_in_value(t, 4, (size_t)k) - a) - xh * b);
            if (t->n_out == 3) {
                outs[1][k] += dy * xh;
                outs[2][k] += dy;
            }
        }
    }
    return 0;
}

int cf_op_reference(const cf_opcase *t, double **outs) {
    const lam_tensor_view *o = &t->out[0];
    switch (t->op) {
    case LAM_OP_GEMM:
    case LAM_OP_GEMM_BATCHED:
    case LAM_OP_LINEAR:
        ref_gemm(t, outs[0]);
        return 0;
    case LAM_OP_REDUCE_SUM:
    case LAM_OP_REDUCE_MEAN:
    case LAM_OP_REDUCE_MAX:
    case LAM_OP_REDUCE_MIN:
    case LAM_OP_ARGMAX:
    case LAM_OP_SOFTMAX:
    case LAM_OP_LOG_SOFTMAX:
    case LAM_OP_MOMENTS:
        return ref_middle(t, outs);
    case LAM_OP_IM2COL:
    case LAM_OP_COL2IM:
    case LAM_OP_MAX_POOL:
    case LAM_OP_MAX_POOL_BACKWARD:
    case LAM_OP_AVG_POOL:
    case LAM_OP_AVG_POOL_BACKWARD:
        return ref_window(t, outs);
    case LAM_OP_RANDOM:
        ref_random(t, outs[0]);
        return 0;
    case LAM_OP_LAYER_NORM:
    case LAM_OP_LAYER_NORM_BACKWARD:
        return ref_layer_norm(t, outs);
    case LAM_OP_GATHER_ROWS:
    case LAM_OP_SCATTER_ADD_ROWS: {
        int64_t m = t->in[1].dims[0], d = t->in[0].dims[1],
                v = t->op == LAM_OP_GATHER_ROWS ? t->in[0].dims[0] : t->out[0].dims[0];
        if (t->op == LAM_OP_SCATTER_ADD_ROWS) {
            for (size_t k = 0; k < t->out_count[0]; k++) {
                float init;
                memcpy(&init, t->out_init[0] + 4 * k, 4);
                outs[0][k] = (double)init;
            }
        }
        for (int64_t r = 0; r < m; r++) {
            int64_t ix = (int64_t)cf_op_in_value(t, 1, (size_t)r);
            if (ix < 0 || ix >= v) {
                return -1;
            }
            for (int64_t c = 0; c < d; c++) {
                if (t->op == LAM_OP_GATHER_ROWS) {
                    outs[0][r * d + c] = cf_op_in_value(t, 0, (size_t)(ix * d + c));
                } else {
                    outs[0][ix * d + c] += cf_op_in_value(t, 0, (size_t)(r * d + c));
                }
            }
        }
        return 0;
    }
    case LAM_OP_PAD: {
        const lam_tensor_view *x = &t->in[0];
        for (size_t i = 0; i < t->out_count[0]; i++) {
            int64_t idx[LAM_MAX_DIMS];
            size_t rem = i;
            int in = 1;
            for (int d = (int)o->ndim - 1; d >= 0; d--) {
                idx[d] = (int64_t)(rem % (size_t)o->dims[d]) - t->p.pad.before[d];
                rem /= (size_t)o->dims[d];
                in = in && idx[d] >= 0 && idx[d] < x->dims[d];
            }
            outs[0][i] = in ? at_in(t, 0, idx) : t->p.pad.value;
        }
        return 0;
    }
    case LAM_OP_CAST:
        for (size_t i = 0; i < t->out_count[0]; i++) {
            double v = cf_op_in_value(t, 0, i);
            if (o->dtype == LAM_DTYPE_I32) {
                if (isnan(v) || v <= -2147483649.0 || v >= 2147483648.0) {
                    return -1; /* an error, as on every backend */
                }
                v = trunc(v);
            }
            outs[0][i] = v;
        }
        return 0;
    default:
        break;
    }
    for (size_t i = 0; i < t->out_count[0]; i++) {
        int64_t idx[LAM_MAX_DIMS];
        size_t rem = i;
        for (int d = (int)o->ndim - 1; d >= 0; d--) {
            idx[d] = (int64_t)(rem % (size_t)o->dims[d]);
            rem /= (size_t)o->dims[d];
        }
        double x = t->n_in > 0 ? at_in(t, 0, idx) : 0.0;
        double y = t->n_in > 1 ? at_in(t, 1, idx) : 0.0;
        double z = t->n_in > 2 ? at_in(t, 2, idx) : 0.0;
        outs[0][i] = ref_elementwise(t, x, y, z);
    }
    return 0;
}
