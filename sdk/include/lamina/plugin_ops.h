/*
 * lamina/plugin_ops.h - convenience wrappers over the host's one op entry (host->op), for layer
 * and kernel plugins.
 *
 * ABI 2.0 reaches every op through `host->op(&call)` with a lam_host_op and the op's parameter
 * struct (plugin.h). That is exact but verbose; these header-only helpers build the call for the
 * common shapes of use, in the style of lamina.h's lam_op_* functions:
 *
 *     lam_tensor *y = NULL;
 *     lam_status st = lam_p_matmul(host, x, w, LAM_GEMM_TRANS_B, &y);   // x . w^T
 *
 * They are built only on host table entries (op, tensor_shape, set_error), so a plugin using
 * them still links nothing and works with every 2.x host. Operand semantics are those of the
 * lam_op comments in plugin.h; reductions, softmax and moments take axes (lam_reduce_params),
 * and the host brings them to the backends' 3-D middle-axis form.
 *
 * Common contract of every lam_p_* function:
 *  - `h` is the host table the plugin's entry received; tensors are the host's.
 *  - Results through `**out` are new references the caller releases; on failure each is NULL.
 *  - Errors: the host's status and message (the op, shape or dtype that failed); the helpers
 *    add their own only for a NULL tensor where they need its shape, with the helper's name
 *    as the subject ("lam_p_pad: Invalid argument, x is NULL").
 *  - Inputs are borrowed (const tensors are passed to the host as inputs; the host only reads
 *    them and, while recording, keeps its own references).
 *  - Thread safety: as the host entries they call (any thread).
 */
#ifndef LAMINA_PLUGIN_OPS_H
#define LAMINA_PLUGIN_OPS_H

#include "lamina/plugin.h"

#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The dtype's name as messages spell it ("float32", "int64"); "unknown" for others. */
static inline const char *lam_p_dtype_name(lam_dtype dtype) {
    switch (dtype) {
    case LAM_DTYPE_F32:
        return "float32";
    case LAM_DTYPE_F16:
        return "float16";
    case LAM_DTYPE_BF16:
        return "bfloat16";
    case LAM_DTYPE_F64:
        return "float64";
    case LAM_DTYPE_I32:
        return "int32";
    case LAM_DTYPE_I64:
        return "int64";
    case LAM_DTYPE_U8:
        return "uint8";
    default:
        return "unknown";
    }
}

/* Reads the INTS attribute `name` of two elements (the host expands one given value to both),
 * each of which must lie in [min, 2^30], into out[2]; `layer` names the layer in errors, e.g.
 * "conv0: Invalid argument, strides must be positive, got (0, 1)". */
static inline lam_status lam_p_attr_pair(const lam_host_api *h, const lam_attrs *attrs,
                                         const char *layer, const char *name, int64_t min,
                                         int64_t out[2]) {
    uint32_t n = 0;
    int64_t v[2] = {0, 0};
    lam_status st = h->attr_ints(attrs, name, v, 2, &n);
    if (st != LAM_OK) {
        return st;
    }
    if (n != 2) { /* the host enforces the count; kept for a host that would not */
        return lam_plugin_error(h, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, %s needs 2 values, got %u", layer, name,
                                (unsigned)n);
    }
    for (int i = 0; i < 2; i++) {
        if (v[i] < min || v[i] > ((int64_t)1 << 30)) {
            return lam_plugin_error(h, LAM_ERR_INVALID_ARGUMENT,
                                    "%s: Invalid argument, %s must be %s, got (%lld, %lld)", layer,
                                    name, min > 0 ? "positive" : "0 or more", (long long)v[0],
                                    (long long)v[1]);
        }
        out[i] = v[i];
    }
    return LAM_OK;
}

/* A borrowed input handed to host->op, which takes `lam_tensor *const *` (it only reads them). */
static inline lam_tensor *lam_p__in(const lam_tensor *t) {
    return (lam_tensor *)(uintptr_t)t;
}

/* Runs `op` on n_inputs inputs with one output and its parameter struct (or NULL). The most
 * general helper; the others below are this with the inputs and parameters filled in. */
static inline lam_status lam_p_op(const lam_host_api *h, lam_op op, uint32_t n_inputs,
                                  lam_tensor *const *inputs, const void *params, lam_tensor **out) {
    lam_host_op call = LAM_HOST_OP_INIT(op);
    if (out != NULL) {
        *out = NULL;
    }
    call.n_inputs = n_inputs;
    call.inputs = inputs;
    call.n_outputs = 1;
    call.outputs = out;
    call.params = params;
    return h->op(&call);
}

/* Element-wise ops of one input (LAM_OP_FORM_UNARY without parameters: NEG, ABS, SQUARE, SQRT,
 * EXP, LOG, RELU, SIGMOID, TANH, SOFTRELU, STEP, COPY). */
static inline lam_status lam_p_unary(const lam_host_api *h, lam_op op, const lam_tensor *x,
                                     lam_tensor **out) {
    lam_tensor *in[1];
    in[0] = lam_p__in(x);
    return lam_p_op(h, op, 1, in, NULL, out);
}

/* Element-wise ops of two inputs, broadcast as lamina.h's ops (ADD, SUB, MUL, DIV, MAXIMUM,
 * MINIMUM, GREATER_EQUAL, GREATER, LESS, EQUAL). */
static inline lam_status lam_p_binary(const lam_host_api *h, lam_op op, const lam_tensor *x,
                                      const lam_tensor *y, lam_tensor **out) {
    lam_tensor *in[2];
    in[0] = lam_p__in(x);
    in[1] = lam_p__in(y);
    return lam_p_op(h, op, 2, in, NULL, out);
}

/* out = x + y, x - y, x * y, x / y (broadcasting). */
static inline lam_status lam_p_add(const lam_host_api *h, const lam_tensor *x, const lam_tensor *y,
                                   lam_tensor **out) {
    return lam_p_binary(h, LAM_OP_ADD, x, y, out);
}
static inline lam_status lam_p_sub(const lam_host_api *h, const lam_tensor *x, const lam_tensor *y,
                                   lam_tensor **out) {
    return lam_p_binary(h, LAM_OP_SUB, x, y, out);
}
static inline lam_status lam_p_mul(const lam_host_api *h, const lam_tensor *x, const lam_tensor *y,
                                   lam_tensor **out) {
    return lam_p_binary(h, LAM_OP_MUL, x, y, out);
}
static inline lam_status lam_p_div(const lam_host_api *h, const lam_tensor *x, const lam_tensor *y,
                                   lam_tensor **out) {
    return lam_p_binary(h, LAM_OP_DIV, x, y, out);
}

/* The ops of one input and one scalar `a` (ADD_SCALAR, MUL_SCALAR, RSUB_SCALAR, DIV_SCALAR,
 * RDIV_SCALAR, POW_SCALAR): e.g. RSUB_SCALAR gives a - x. */
static inline lam_status lam_p_scalar(const lam_host_api *h, lam_op op, const lam_tensor *x,
                                      double a, lam_tensor **out) {
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    lam_tensor *in[1];
    p.a = a;
    in[0] = lam_p__in(x);
    return lam_p_op(h, op, 1, in, &p, out);
}

/* out = min(max(x, low), high). */
static inline lam_status lam_p_clamp(const lam_host_api *h, const lam_tensor *x, double low,
                                     double high, lam_tensor **out) {
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    lam_tensor *in[1];
    p.a = low;
    p.b = high;
    in[0] = lam_p__in(x);
    return lam_p_op(h, LAM_OP_CLAMP, 1, in, &p, out);
}

/* out = a * x + b * y. */
static inline lam_status lam_p_axpby(const lam_host_api *h, double a, const lam_tensor *x, double b,
                                     const lam_tensor *y, lam_tensor **out) {
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    lam_tensor *in[2];
    p.a = a;
    p.b = b;
    in[0] = lam_p__in(x);
    in[1] = lam_p__in(y);
    return lam_p_op(h, LAM_OP_AXPBY, 2, in, &p, out);
}

/* out = cond != 0 ? x : y. */
static inline lam_status lam_p_where(const lam_host_api *h, const lam_tensor *cond,
                                     const lam_tensor *x, const lam_tensor *y, lam_tensor **out) {
    lam_tensor *in[3];
    in[0] = lam_p__in(cond);
    in[1] = lam_p__in(x);
    in[2] = lam_p__in(y);
    return lam_p_op(h, LAM_OP_WHERE, 3, in, NULL, out);
}

/* out = op(a) . op(b) of two 2-D tensors; flags LAM_GEMM_TRANS_A / LAM_GEMM_TRANS_B transpose
 * an operand (lamina.h's lam_op_matmul with trans_a / trans_b). */
static inline lam_status lam_p_matmul(const lam_host_api *h, const lam_tensor *a,
                                      const lam_tensor *b, uint32_t flags, lam_tensor **out) {
    lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
    lam_tensor *in[2];
    p.flags = flags;
    in[0] = lam_p__in(a);
    in[1] = lam_p__in(b);
    return lam_p_op(h, LAM_OP_GEMM, 2, in, &p, out);
}

/* The same per batch element of 3-D tensors (batch, M, K) . (batch, K, N) (GEMM_BATCHED). */
static inline lam_status lam_p_matmul_batched(const lam_host_api *h, const lam_tensor *a,
                                              const lam_tensor *b, uint32_t flags,
                                              lam_tensor **out) {
    lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
    lam_tensor *in[2];
    p.flags = flags;
    in[0] = lam_p__in(a);
    in[1] = lam_p__in(b);
    return lam_p_op(h, LAM_OP_GEMM_BATCHED, 2, in, &p, out);
}

/*
 * out = act(op(x) . op(w) + bias) in one op where the backend can (LINEAR). bias is 1-D of N
 * elements or NULL; act is LAM_OP_INVALID (none), LAM_OP_RELU, LAM_OP_SIGMOID, LAM_OP_TANH or
 * LAM_OP_SOFTRELU. A dense layer with weight (units, in) passes LAM_GEMM_TRANS_B.
 */
static inline lam_status lam_p_linear(const lam_host_api *h, const lam_tensor *x,
                                      const lam_tensor *w, const lam_tensor *bias, uint32_t flags,
                                      lam_op act, lam_tensor **out) {
    lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
    lam_tensor *in[3];
    p.flags = flags;
    p.act = act;
    in[0] = lam_p__in(x);
    in[1] = lam_p__in(w);
    in[2] = lam_p__in(bias);
    return lam_p_op(h, LAM_OP_LINEAR, bias != NULL ? 3u : 2u, in, &p, out);
}

/* The lam_reduce_params of one axis (n_axes 1) or of every axis (n_axes 0). */
static inline lam_reduce_params lam_p__axes(uint32_t n_axes, const int32_t *axes,
                                            int32_t keepdims) {
    lam_reduce_params p;
    uint32_t i;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.n_axes = n_axes < LAM_MAX_DIMS ? n_axes : LAM_MAX_DIMS;
    for (i = 0; i < p.n_axes; i++) {
        p.axes[i] = axes[i];
    }
    p.keepdims = keepdims;
    return p;
}

/*
 * Reduces x over `n_axes` axes (negative count from the end; n_axes 0: every axis, a 0-d
 * result) with REDUCE_SUM, REDUCE_MEAN, REDUCE_MAX or REDUCE_MIN; keepdims nonzero keeps the
 * reduced axes with size 1 (lamina.h's lam_op_reduce).
 */
static inline lam_status lam_p_reduce_axes(const lam_host_api *h, lam_op op, const lam_tensor *x,
                                           const int32_t *axes, uint32_t n_axes, int32_t keepdims,
                                           lam_tensor **out) {
    lam_reduce_params p = lam_p__axes(n_axes, axes, keepdims);
    lam_tensor *in[1];
    in[0] = lam_p__in(x);
    return lam_p_op(h, op, 1, in, &p, out);
}

/* Reduces x along one axis (REDUCE_SUM, REDUCE_MEAN, REDUCE_MAX, REDUCE_MIN or ARGMAX). */
static inline lam_status lam_p_reduce(const lam_host_api *h, lam_op op, const lam_tensor *x,
                                      int32_t axis, int32_t keepdims, lam_tensor **out) {
    return lam_p_reduce_axes(h, op, x, &axis, 1, keepdims, out);
}

/* Reduces over every element: a 0-d result, or every dim 1 with keepdims. */
static inline lam_status lam_p_reduce_all(const lam_host_api *h, lam_op op, const lam_tensor *x,
                                          int32_t keepdims, lam_tensor **out) {
    return lam_p_reduce_axes(h, op, x, NULL, 0, keepdims, out);
}

/* Softmax (or log-softmax with `log` nonzero) along one axis; out has x's shape. */
static inline lam_status lam_p_softmax(const lam_host_api *h, const lam_tensor *x, int32_t axis,
                                       int32_t log, lam_tensor **out) {
    lam_reduce_params p = lam_p__axes(1, &axis, 0);
    lam_tensor *in[1];
    in[0] = lam_p__in(x);
    return lam_p_op(h, log ? LAM_OP_LOG_SOFTMAX : LAM_OP_SOFTMAX, 1, in, &p, out);
}

/* Mean and biased variance over `n_axes` axes (MOMENTS; e.g. (0, 2, 3) for batch norm over
 * NCHW); keepdims as lam_p_reduce_axes. */
static inline lam_status lam_p_moments(const lam_host_api *h, const lam_tensor *x,
                                       const int32_t *axes, uint32_t n_axes, int32_t keepdims,
                                       lam_tensor **mean, lam_tensor **var) {
    lam_host_op call = LAM_HOST_OP_INIT(LAM_OP_MOMENTS);
    lam_reduce_params p = lam_p__axes(n_axes, axes, keepdims);
    lam_tensor *in[1];
    lam_tensor *outs[2] = {NULL, NULL};
    lam_status st;
    in[0] = lam_p__in(x);
    call.n_inputs = 1;
    call.inputs = in;
    call.n_outputs = 2;
    call.outputs = outs;
    call.params = &p;
    st = h->op(&call);
    *mean = outs[0];
    *var = outs[1];
    return st;
}

/* A new tensor of `shape` and `dtype` on ctx, every element `value` (FILL). */
static inline lam_status lam_p_fill(const lam_host_api *h, lam_ctx *ctx, lam_dtype dtype,
                                    const lam_shape *shape, double value, lam_tensor **out) {
    lam_host_op call = LAM_HOST_OP_INIT(LAM_OP_FILL);
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    *out = NULL;
    p.a = value;
    call.n_outputs = 1;
    call.outputs = out;
    call.params = &p;
    call.ctx = ctx;
    call.out_shape = shape;
    call.out_dtype = dtype;
    return h->op(&call);
}

/*
 * Layer normalization over x's last axis (LAYER_NORM, ABI 2.2): y = (x - mean) * rstd * gamma +
 * beta per row, rstd = 1 / sqrtf(var + eps), one autograd node (gradients for x, gamma and
 * beta). gamma and beta are float32 (n) tensors, n = x's last dim, or NULL for none (ones,
 * zeros: made here on x's context). The host runs the backend's fused op, or its composition
 * of basic ops on a backend without it. A host older than 2.2 answers LAM_ERR_UNSUPPORTED.
 */
static inline lam_status lam_p_layer_norm(const lam_host_api *h, const lam_tensor *x,
                                          const lam_tensor *gamma, const lam_tensor *beta,
                                          double eps, lam_tensor **out) {
    lam_host_op call = LAM_HOST_OP_INIT(LAM_OP_LAYER_NORM);
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    lam_tensor *in[3];
    lam_tensor *made[2] = {NULL, NULL};
    lam_status st = LAM_OK;
    *out = NULL;
    if (x == NULL) {
        return lam_plugin_error(h, LAM_ERR_INVALID_ARGUMENT,
                                "lam_p_layer_norm: Invalid argument, x is NULL");
    }
    if (gamma == NULL || beta == NULL) {
        const lam_shape *xs = h->tensor_shape(x);
        lam_shape s;
        memset(&s, 0, sizeof s);
        s.ndim = 1;
        s.dims[0] = xs != NULL && xs->ndim > 0 ? xs->dims[xs->ndim - 1] : 0;
        if (gamma == NULL) {
            st = lam_p_fill(h, h->tensor_ctx(x), LAM_DTYPE_F32, &s, 1.0, &made[0]);
        }
        if (st == LAM_OK && beta == NULL) {
            st = lam_p_fill(h, h->tensor_ctx(x), LAM_DTYPE_F32, &s, 0.0, &made[1]);
        }
    }
    if (st == LAM_OK) {
        in[0] = lam_p__in(x);
        in[1] = gamma != NULL ? lam_p__in(gamma) : made[0];
        in[2] = beta != NULL ? lam_p__in(beta) : made[1];
        p.a = eps;
        call.n_inputs = 3;
        call.inputs = in;
        call.n_outputs = 1;
        call.outputs = out;
        call.params = &p;
        st = h->op(&call);
    }
    h->tensor_release(made[0]);
    h->tensor_release(made[1]);
    return st;
}

/*
 * Random numbers of `shape` on ctx (RANDOM): kind UNIFORM in [a, b), NORMAL with mean a and
 * standard deviation b, BERNOULLI 1 with probability a. The stream is `key` (from
 * host->layer_rng, which reserved the elements; pass count = the element count there).
 */
static inline lam_status lam_p_random(const lam_host_api *h, lam_ctx *ctx, lam_dtype dtype,
                                      const lam_shape *shape, lam_random_kind kind, double a,
                                      double b, const lam_rng_key *key, lam_tensor **out) {
    lam_host_op call = LAM_HOST_OP_INIT(LAM_OP_RANDOM);
    lam_random_params p;
    *out = NULL;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.kind = kind;
    p.seed = key->seed;
    p.key = key->key;
    p.offset = key->offset;
    p.a = a;
    p.b = b;
    call.n_outputs = 1;
    call.outputs = out;
    call.params = &p;
    call.ctx = ctx;
    call.out_shape = shape;
    call.out_dtype = dtype;
    return h->op(&call);
}

/* x converted to `dtype` (CAST; float -> integer truncates, NaN or out of range is an error). */
static inline lam_status lam_p_cast(const lam_host_api *h, const lam_tensor *x, lam_dtype dtype,
                                    lam_tensor **out) {
    lam_host_op call = LAM_HOST_OP_INIT(LAM_OP_CAST);
    lam_cast_params p;
    lam_tensor *in[1];
    *out = NULL;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.dtype = dtype;
    in[0] = lam_p__in(x);
    call.n_inputs = 1;
    call.inputs = in;
    call.n_outputs = 1;
    call.outputs = out;
    call.params = &p;
    call.out_dtype = dtype;
    return h->op(&call);
}

/* x padded with `value`: before[i] / after[i] elements on each side of axis i (x's rank). */
static inline lam_status lam_p_pad(const lam_host_api *h, const lam_tensor *x,
                                   const int64_t *before, const int64_t *after, double value,
                                   lam_tensor **out) {
    lam_pad_params p;
    const lam_shape *s = h->tensor_shape(x);
    lam_tensor *in[1];
    uint32_t i;
    *out = NULL;
    if (s == NULL) {
        return h->set_error(LAM_ERR_INVALID_ARGUMENT, "lam_p_pad: Invalid argument, x is NULL");
    }
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.value = value;
    for (i = 0; i < s->ndim && i < LAM_MAX_DIMS; i++) {
        p.before[i] = before[i];
        p.after[i] = after[i];
    }
    in[0] = lam_p__in(x);
    return lam_p_op(h, LAM_OP_PAD, 1, in, &p, out);
}

/* Rows of `table` (V, D) picked by `indices` (M,) of I32 or I64: out (M, D) (GATHER_ROWS). */
static inline lam_status lam_p_gather_rows(const lam_host_api *h, const lam_tensor *table,
                                           const lam_tensor *indices, lam_tensor **out) {
    lam_tensor *in[2];
    in[0] = lam_p__in(table);
    in[1] = lam_p__in(indices);
    return lam_p_op(h, LAM_OP_GATHER_ROWS, 2, in, NULL, out);
}

/* `target` (V, D) with each row values[m] added at row indices[m] (SCATTER_ADD_ROWS); target
 * itself is not changed, the result is a new tensor. */
static inline lam_status lam_p_scatter_add_rows(const lam_host_api *h, const lam_tensor *values,
                                                const lam_tensor *indices, const lam_tensor *target,
                                                lam_tensor **out) {
    lam_tensor *in[3];
    in[0] = lam_p__in(values);
    in[1] = lam_p__in(indices);
    in[2] = lam_p__in(target);
    return lam_p_op(h, LAM_OP_SCATTER_ADD_ROWS, 3, in, NULL, out);
}

/* Window parameters over 2 spatial axes: kernel (kh, kw), stride (sh, sw), symmetric padding
 * (ph, pw), dilation 1, no flags (set w->flags / dilation / pad_after afterwards if needed). */
static inline void lam_p_window_2d(lam_window_params *w, int64_t kh, int64_t kw, int64_t sh,
                                   int64_t sw, int64_t ph, int64_t pw) {
    const lam_window_params init = LAM_WINDOW_PARAMS_INIT;
    *w = init;
    w->kernel[0] = kh;
    w->kernel[1] = kw;
    w->stride[0] = sh;
    w->stride[1] = sw;
    w->pad_before[0] = ph;
    w->pad_before[1] = pw;
    w->pad_after[0] = ph;
    w->pad_after[1] = pw;
    w->dilation[0] = 1;
    w->dilation[1] = 1;
}

/*
 * Convolution (CONV, since ABI 2.2): x (N, C, H, W), w (O, C/groups, KH, KW), bias (O) or NULL,
 * window `win` (kernel equal to w's KH, KW; equal padding before and after) -> (N, O, OH, OW),
 * differentiated by the host. The host runs the backend's direct convolution where it has one
 * (the CPU backend's is oneDNN) and otherwise im2col and a batched product. Needs a 2.2 host.
 */
static inline lam_status lam_p_conv(const lam_host_api *h, const lam_tensor *x, const lam_tensor *w,
                                    const lam_tensor *bias, const lam_window_params *win,
                                    uint32_t groups, lam_tensor **out) {
    lam_conv_params p = LAM_CONV_PARAMS_INIT;
    lam_tensor *in[3];
    p.groups = groups;
    p.window = *win;
    in[0] = lam_p__in(x);
    in[1] = lam_p__in(w);
    in[2] = lam_p__in(bias);
    return lam_p_op(h, LAM_OP_CONV, bias != NULL ? 3 : 2, in, &p, out);
}

/* x (N, C, H, W) unfolded to (N, C*KH*KW, OH*OW) (IM2COL). */
static inline lam_status lam_p_im2col(const lam_host_api *h, const lam_tensor *x,
                                      const lam_window_params *w, lam_tensor **out) {
    lam_tensor *in[1];
    in[0] = lam_p__in(x);
    return lam_p_op(h, LAM_OP_IM2COL, 1, in, w, out);
}

/* Host op with one input, params and an explicit output shape (the ops whose output dims the
 * input does not determine: COL2IM, AVG_POOL_BACKWARD, and MAX_POOL_BACKWARD's two inputs). */
static inline lam_status lam_p__shaped(const lam_host_api *h, lam_op op, uint32_t n_inputs,
                                       lam_tensor *const *in, const void *params,
                                       const lam_shape *out_shape, lam_tensor **out) {
    lam_host_op call = LAM_HOST_OP_INIT(op);
    *out = NULL;
    call.n_inputs = n_inputs;
    call.inputs = in;
    call.n_outputs = 1;
    call.outputs = out;
    call.params = params;
    call.out_shape = out_shape;
    return h->op(&call);
}

/* x (N, C*KH*KW, OH*OW) folded back to `out_shape` (N, C, H, W), overlaps summed (COL2IM). */
static inline lam_status lam_p_col2im(const lam_host_api *h, const lam_tensor *x,
                                      const lam_window_params *w, const lam_shape *out_shape,
                                      lam_tensor **out) {
    lam_tensor *in[1];
    in[0] = lam_p__in(x);
    return lam_p__shaped(h, LAM_OP_COL2IM, 1, in, w, out_shape, out);
}

/* Max pooling of x (N, C, H, W): values and I32 indices, both (N, C, OH, OW) (MAX_POOL). */
static inline lam_status lam_p_max_pool(const lam_host_api *h, const lam_tensor *x,
                                        const lam_window_params *w, lam_tensor **values,
                                        lam_tensor **indices) {
    lam_host_op call = LAM_HOST_OP_INIT(LAM_OP_MAX_POOL);
    lam_tensor *in[1];
    lam_tensor *outs[2] = {NULL, NULL};
    lam_status st;
    in[0] = lam_p__in(x);
    call.n_inputs = 1;
    call.inputs = in;
    call.n_outputs = 2;
    call.outputs = outs;
    call.params = w;
    st = h->op(&call);
    *values = outs[0];
    *indices = outs[1];
    return st;
}

/* The input's gradient (of `input_shape`) from the values' gradient and the indices
 * lam_p_max_pool returned (MAX_POOL_BACKWARD). */
static inline lam_status lam_p_max_pool_backward(const lam_host_api *h, const lam_tensor *grad,
                                                 const lam_tensor *indices,
                                                 const lam_window_params *w,
                                                 const lam_shape *input_shape, lam_tensor **out) {
    lam_tensor *in[2];
    in[0] = lam_p__in(grad);
    in[1] = lam_p__in(indices);
    return lam_p__shaped(h, LAM_OP_MAX_POOL_BACKWARD, 2, in, w, input_shape, out);
}

/* Average pooling of x (N, C, H, W) to (N, C, OH, OW) (AVG_POOL). */
static inline lam_status lam_p_avg_pool(const lam_host_api *h, const lam_tensor *x,
                                        const lam_window_params *w, lam_tensor **out) {
    lam_tensor *in[1];
    in[0] = lam_p__in(x);
    return lam_p_op(h, LAM_OP_AVG_POOL, 1, in, w, out);
}

/* The input's gradient (of `input_shape`) from the output's (AVG_POOL_BACKWARD). */
static inline lam_status lam_p_avg_pool_backward(const lam_host_api *h, const lam_tensor *grad,
                                                 const lam_window_params *w,
                                                 const lam_shape *input_shape, lam_tensor **out) {
    lam_tensor *in[1];
    in[0] = lam_p__in(grad);
    return lam_p__shaped(h, LAM_OP_AVG_POOL_BACKWARD, 1, in, w, input_shape, out);
}

#ifdef __cplusplus
}
#endif

#endif /* LAMINA_PLUGIN_OPS_H */
