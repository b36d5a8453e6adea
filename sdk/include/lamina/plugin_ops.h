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
 * They are built only on host table entries (op, tensor_shape, tensor_reshape,
 * tensor_contiguous, tensor_release, set_error), so a plugin using them still links nothing
 * and works with every 2.x host. Operand semantics are those of the lam_op comments in
 * plugin.h; where an op works on the middle axis of a 3-D view (reductions, softmax, moments)
 * the helper takes an axis of any-rank tensor and reshapes around the op.
 *
 * Common contract of every lam_p_* function:
 *  - `h` is the host table the plugin's entry received; tensors are the host's.
 *  - Results through `**out` are new references the caller releases; on failure each is NULL.
 *  - Errors: the host's status and message (the op, shape or dtype that failed); the helpers
 *    add their own only for arguments the host never sees (an axis out of range), with the
 *    helper's name as the subject: "lam_p_reduce: Invalid argument, axis 2 out of range for
 *    rank 2".
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

/* Reshapes t (made contiguous first, a view when it already is) to `shape`; used by the
 * helpers that move an axis into the middle of a 3-D view. */
static inline lam_status lam_p_reshape(const lam_host_api *h, const lam_tensor *t,
                                       const lam_shape *shape, lam_tensor **out) {
    lam_tensor *c = NULL;
    lam_status st;
    *out = NULL;
    st = h->tensor_contiguous(lam_p__in(t), &c);
    if (st == LAM_OK) {
        st = h->tensor_reshape(c, shape, out);
    }
    h->tensor_release(c);
    return st;
}

/* Splits `shape` around `axis` (negative counts from the end) into the 3-D (outer, n, inner)
 * the middle-axis ops take; `keep` gets the result shape with that axis 1 (keepdims) and
 * `drop` without it. */
static inline lam_status lam_p__split(const lam_host_api *h, const char *who, const lam_shape *s,
                                      int32_t axis, lam_shape *s3, lam_shape *keep,
                                      lam_shape *drop) {
    int64_t a = axis < 0 ? (int64_t)axis + (int64_t)s->ndim : (int64_t)axis;
    uint32_t i, j = 0;
    char msg[160];
    if (s->ndim > LAM_MAX_DIMS || a < 0 || a >= (int64_t)s->ndim) {
        snprintf(msg, sizeof msg, "%s: Invalid argument, axis %d out of range for rank %u", who,
                 (int)axis, (unsigned)s->ndim);
        return h->set_error(LAM_ERR_INVALID_ARGUMENT, msg);
    }
    memset(s3, 0, sizeof *s3);
    s3->ndim = 3;
    s3->dims[0] = 1;
    s3->dims[1] = s->dims[a];
    s3->dims[2] = 1;
    *keep = *s;
    keep->dims[a] = 1;
    memset(drop, 0, sizeof *drop);
    for (i = 0; i < s->ndim; i++) {
        if ((int64_t)i < a) {
            s3->dims[0] *= s->dims[i];
        } else if ((int64_t)i > a) {
            s3->dims[2] *= s->dims[i];
        }
        if ((int64_t)i != a) {
            drop->dims[j++] = s->dims[i];
        }
    }
    drop->ndim = j;
    return LAM_OK;
}

/* Runs a middle-axis op (n_out outputs, each shaped like `res`) on x reshaped to s3, and
 * reshapes each output to `res`. */
static inline lam_status lam_p__middle(const lam_host_api *h, lam_op op, const lam_tensor *x,
                                       const lam_shape *s3, const lam_shape *res, uint32_t n_out,
                                       lam_tensor **outs) {
    lam_host_op call = LAM_HOST_OP_INIT(op);
    lam_tensor *x3 = NULL;
    lam_tensor *raw[2] = {NULL, NULL};
    lam_status st;
    uint32_t i;
    for (i = 0; i < n_out; i++) {
        outs[i] = NULL;
    }
    st = lam_p_reshape(h, x, s3, &x3);
    if (st == LAM_OK) {
        call.n_inputs = 1;
        call.inputs = &x3;
        call.n_outputs = n_out;
        call.outputs = raw;
        st = h->op(&call);
    }
    for (i = 0; i < n_out && st == LAM_OK; i++) {
        st = h->tensor_reshape(raw[i], res, &outs[i]);
    }
    for (i = 0; i < n_out; i++) {
        h->tensor_release(raw[i]);
        if (st != LAM_OK) {
            h->tensor_release(outs[i]);
            outs[i] = NULL;
        }
    }
    h->tensor_release(x3);
    return st;
}

/*
 * Reduces x along one axis (negative counts from the end) with REDUCE_SUM, REDUCE_MEAN,
 * REDUCE_MAX, REDUCE_MIN or ARGMAX; keepdims nonzero keeps the axis with size 1 (lamina.h's
 * lam_op_reduce with one axis). Reduce several axes by calling it once per axis.
 */
static inline lam_status lam_p_reduce(const lam_host_api *h, lam_op op, const lam_tensor *x,
                                      int32_t axis, int32_t keepdims, lam_tensor **out) {
    lam_shape s3, keep, drop;
    const lam_shape *s = h->tensor_shape(x);
    lam_status st;
    *out = NULL;
    if (s == NULL) {
        return h->set_error(LAM_ERR_INVALID_ARGUMENT, "lam_p_reduce: Invalid argument, x is NULL");
    }
    st = lam_p__split(h, "lam_p_reduce", s, axis, &s3, &keep, &drop);
    if (st != LAM_OK) {
        return st;
    }
    return lam_p__middle(h, op, x, &s3, keepdims ? &keep : &drop, 1, out);
}

/* Reduces over every element: a 0-d result, or all dims 1 with keepdims. */
static inline lam_status lam_p_reduce_all(const lam_host_api *h, lam_op op, const lam_tensor *x,
                                          int32_t keepdims, lam_tensor **out) {
    lam_shape s3, res;
    const lam_shape *s = h->tensor_shape(x);
    uint32_t i;
    *out = NULL;
    if (s == NULL) {
        return h->set_error(LAM_ERR_INVALID_ARGUMENT,
                            "lam_p_reduce_all: Invalid argument, x is NULL");
    }
    memset(&s3, 0, sizeof s3);
    memset(&res, 0, sizeof res);
    s3.ndim = 3;
    s3.dims[0] = 1;
    s3.dims[1] = 1;
    s3.dims[2] = 1;
    for (i = 0; i < s->ndim && i < LAM_MAX_DIMS; i++) {
        s3.dims[1] *= s->dims[i];
        res.dims[i] = 1;
    }
    res.ndim = keepdims ? s->ndim : 0;
    return lam_p__middle(h, op, x, &s3, &res, 1, out);
}

/* Softmax (or log-softmax with `log` nonzero) along one axis; out has x's shape. */
static inline lam_status lam_p_softmax(const lam_host_api *h, const lam_tensor *x, int32_t axis,
                                       int32_t log, lam_tensor **out) {
    lam_shape s3, keep, drop;
    const lam_shape *s = h->tensor_shape(x);
    lam_status st;
    *out = NULL;
    if (s == NULL) {
        return h->set_error(LAM_ERR_INVALID_ARGUMENT, "lam_p_softmax: Invalid argument, x is NULL");
    }
    st = lam_p__split(h, "lam_p_softmax", s, axis, &s3, &keep, &drop);
    if (st != LAM_OK) {
        return st;
    }
    return lam_p__middle(h, log ? LAM_OP_LOG_SOFTMAX : LAM_OP_SOFTMAX, x, &s3, s, 1, out);
}

/* Mean and biased variance along one axis (MOMENTS); keepdims as lam_p_reduce. */
static inline lam_status lam_p_moments(const lam_host_api *h, const lam_tensor *x, int32_t axis,
                                       int32_t keepdims, lam_tensor **mean, lam_tensor **var) {
    lam_shape s3, keep, drop;
    lam_tensor *outs[2] = {NULL, NULL};
    const lam_shape *s = h->tensor_shape(x);
    lam_status st;
    *mean = NULL;
    *var = NULL;
    if (s == NULL) {
        return h->set_error(LAM_ERR_INVALID_ARGUMENT, "lam_p_moments: Invalid argument, x is NULL");
    }
    st = lam_p__split(h, "lam_p_moments", s, axis, &s3, &keep, &drop);
    if (st == LAM_OK) {
        st = lam_p__middle(h, LAM_OP_MOMENTS, x, &s3, keepdims ? &keep : &drop, 2, outs);
    }
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
    memset(w, 0, sizeof *w);
    w->struct_size = (uint32_t)sizeof *w;
    w->n_spatial = 2;
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
