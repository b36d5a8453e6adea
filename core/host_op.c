/*
 * The generic host op entry of ABI 2.0 (lam_host_api.op): one call shape for every op, mapped
 * onto core's front ends, which check operands, pick the backend and record autograd.
 */
#include "host_op.h"
#include "error.h"
#include "ops.h"
#include "ops_index.h"
#include "ops_nn.h"
#include "op_run.h"
#include "shape.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static lam_status arity(const lam_host_op *c, uint32_t lo, uint32_t hi, uint32_t outs) {
    if (c->n_inputs < lo || c->n_inputs > hi || c->n_outputs != outs) {
        char range[32]; /* "2", or "2-3" */
        snprintf(range, sizeof range, lo == hi ? "%u" : "%u-%u", (unsigned)lo, (unsigned)hi);
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "op %s: Invalid argument, %u inputs and %u outputs given, it takes %s "
                          "inputs and %u output%s",
                          lam_op_name(c->op), (unsigned)c->n_inputs, (unsigned)c->n_outputs, range,
                          (unsigned)outs, outs == 1 ? "" : "s");
    }
    for (uint32_t i = 0; i < c->n_inputs; i++) {
        if (c->inputs == NULL || c->inputs[i] == NULL) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT, "op %s: Invalid argument, input %u is NULL",
                              lam_op_name(c->op), (unsigned)i);
        }
    }
    return LAM_OK;
}

/* The params struct as `size` bytes at least, or an error naming the expected type. */
static const void *params_of(const lam_host_op *c, size_t size, const char *type, lam_status *st) {
    if (c->params == NULL || *(const uint32_t *)c->params < size) {
        *st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                         "op %s: Invalid argument, params must point to a %s (struct_size %zu)",
                         lam_op_name(c->op), type, size);
        return NULL;
    }
    *st = LAM_OK;
    return c->params;
}

#define PARAMS(c, T, st) ((const T *)params_of((c), sizeof(T), #T, (st)))

static lam_status fill(const lam_host_op *c, lam_tensor **out) {
    lam_status st = arity(c, 0, 0, 1);
    const lam_scalar_params *p = st == LAM_OK ? PARAMS(c, lam_scalar_params, &st) : NULL;
    if (st != LAM_OK) {
        return st;
    }
    if (c->out_shape == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "op fill: Invalid argument, out_shape is NULL");
    }
    if (c->out_dtype != LAM_DTYPE_F32) {
        return lam__error(LAM_ERR_DTYPE, "op fill: Unsupported dtype %s, fill makes float32",
                          lam__dtype_name(c->out_dtype));
    }
    return lam_tensor_full(c->ctx, c->out_shape, (float)p->a, out);
}

static lam_status binary(const lam_host_op *c, lam_tensor **out) {
    lam_status st = arity(c, 2, 2, 1);
    if (st != LAM_OK) {
        return st;
    }
    const lam_tensor *a = c->inputs[0], *b = c->inputs[1];
    switch (c->op) {
    case LAM_OP_ADD:
        return lam_op_add(a, b, out);
    case LAM_OP_SUB:
        return lam_op_sub(a, b, out);
    case LAM_OP_MUL:
        return lam_op_mul(a, b, out);
    case LAM_OP_DIV:
        return lam_op_div(a, b, out);
    case LAM_OP_MAXIMUM:
        return lam_op_maximum(a, b, out);
    case LAM_OP_MINIMUM:
        return lam_op_minimum(a, b, out);
    case LAM_OP_GREATER_EQUAL:
        return lam_op_greater_equal(a, b, out);
    default:
        return lam__error(LAM_ERR_UNSUPPORTED,
                          "op %s: Unsupported op %d, this host does not have it yet",
                          lam_op_name(c->op), (int)c->op);
    }
}

static lam_status axpby(const lam_host_op *c, lam_tensor **out) {
    lam_status st = arity(c, 2, 2, 1);
    const lam_scalar_params *p = st == LAM_OK ? PARAMS(c, lam_scalar_params, &st) : NULL;
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *ax = NULL, *by = NULL;
    st = lam_op_mul_scalar(c->inputs[0], (float)p->a, &ax);
    if (st == LAM_OK) {
        st = lam_op_mul_scalar(c->inputs[1], (float)p->b, &by);
    }
    if (st == LAM_OK) {
        st = lam_op_add(ax, by, out);
    }
    lam_tensor_release(ax);
    lam_tensor_release(by);
    return st;
}

/* GEMM and GEMM_BATCHED: the product, times alpha; beta must be 0 (a host op makes a new tensor).
 */
static lam_status gemm(const lam_host_op *c, lam_tensor **out) {
    lam_status st = arity(c, 2, 2, 1);
    const lam_gemm_params *p = st == LAM_OK ? PARAMS(c, lam_gemm_params, &st) : NULL;
    if (st != LAM_OK) {
        return st;
    }
    if (p->beta != 0.0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "op %s: Invalid argument, beta %g, a host op makes a new tensor (beta "
                          "must be 0; add the old value with op add)",
                          lam_op_name(c->op), p->beta);
    }
    int32_t ta = (p->flags & LAM_GEMM_TRANS_A) != 0, tb = (p->flags & LAM_GEMM_TRANS_B) != 0;
    lam_tensor *m = NULL;
    st = c->op == LAM_OP_GEMM_BATCHED
             ? lam_op_matmul_batched(c->inputs[0], c->inputs[1], ta, tb, &m)
             : lam_op_matmul(c->inputs[0], c->inputs[1], ta, tb, &m);
    if (st != LAM_OK || p->alpha == 1.0) {
        *out = m;
        return st;
    }
    st = lam_op_mul_scalar(m, (float)p->alpha, out);
    lam_tensor_release(m);
    return st;
}

static lam_status linear(const lam_host_op *c, lam_tensor **out) {
    lam_status st = arity(c, 2, 3, 1);
    const lam_gemm_params *p = st == LAM_OK ? PARAMS(c, lam_gemm_params, &st) : NULL;
    if (st != LAM_OK) {
        return st;
    }
    if (p->flags != LAM_GEMM_TRANS_B) {
        return lam__error(LAM_ERR_UNSUPPORTED,
                          "op linear: Unsupported flags %u, the host op computes act(x . w^T + "
                          "bias) (flags LAM_GEMM_TRANS_B)",
                          (unsigned)p->flags);
    }
    return lam_op_linear(c->inputs[0], c->inputs[1], c->n_inputs == 3 ? c->inputs[2] : NULL, p->act,
                         out);
}

static lam_status reduce(const lam_host_op *c, lam_tensor **out) {
    lam_status st = arity(c, 1, 1, 1);
    const lam_reduce_params *p = st == LAM_OK ? PARAMS(c, lam_reduce_params, &st) : NULL;
    if (st != LAM_OK) {
        return st;
    }
    if (p->n_axes > LAM_MAX_DIMS) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "op %s: Invalid argument, %u axes",
                          lam_op_name(c->op), (unsigned)p->n_axes);
    }
    if (c->op == LAM_OP_ARGMAX) {
        if (p->n_axes != 1) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "op argmax: Invalid argument, %u axes, argmax takes one",
                              (unsigned)p->n_axes);
        }
        return lam_op_argmax(c->inputs[0], p->axes[0], out);
    }
    return lam__op_reduce(c->op, c->inputs[0], p->axes, p->n_axes, p->keepdims, out);
}

static lam_status softmax(const lam_host_op *c, lam_tensor **out) {
    lam_status st = arity(c, 1, 1, 1);
    const lam_reduce_params *p = st == LAM_OK ? PARAMS(c, lam_reduce_params, &st) : NULL;
    if (st != LAM_OK) {
        return st;
    }
    if (p->n_axes != 1) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "op %s: Invalid argument, %u axes, it takes one", lam_op_name(c->op),
                          (unsigned)p->n_axes);
    }
    return lam__op_softmax(c->inputs[0], p->axes[0], c->op == LAM_OP_LOG_SOFTMAX, out);
}

/* ---- 2.0: index, random, selection, conversion ---- */

static lam_status random_op(const lam_host_op *c, lam_tensor **out) {
    lam_status st = arity(c, 0, 0, 1);
    const lam_random_params *p = st == LAM_OK ? PARAMS(c, lam_random_params, &st) : NULL;
    if (st != LAM_OK) {
        return st;
    }
    if (c->out_shape == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "op random: Invalid argument, out_shape is NULL");
    }
    return lam__random(c->ctx, c->out_shape, c->out_dtype, p, out);
}

static lam_status index_ops(const lam_host_op *c, lam_tensor **out) {
    lam_status st;
    switch (c->op) {
    case LAM_OP_GATHER_ROWS:
        st = arity(c, 2, 2, 1);
        return st != LAM_OK ? st : lam_op_gather_rows(c->inputs[0], c->inputs[1], out);
    case LAM_OP_SCATTER_ADD_ROWS:
        st = arity(c, 3, 3, 1);
        return st != LAM_OK
                   ? st
                   : lam_op_scatter_add_rows(c->inputs[2], c->inputs[0], c->inputs[1], out);
    case LAM_OP_RANDOM:
        return random_op(c, out);
    case LAM_OP_WHERE:
        st = arity(c, 3, 3, 1);
        return st != LAM_OK ? st : lam_op_where(c->inputs[0], c->inputs[1], c->inputs[2], out);
    case LAM_OP_GREATER:
    case LAM_OP_LESS:
    case LAM_OP_EQUAL:
        st = arity(c, 2, 2, 1);
        return st != LAM_OK              ? st
               : c->op == LAM_OP_GREATER ? lam_op_greater(c->inputs[0], c->inputs[1], out)
               : c->op == LAM_OP_LESS    ? lam_op_less(c->inputs[0], c->inputs[1], out)
                                         : lam_op_equal(c->inputs[0], c->inputs[1], out);
    case LAM_OP_CLAMP: {
        st = arity(c, 1, 1, 1);
        const lam_scalar_params *p = st == LAM_OK ? PARAMS(c, lam_scalar_params, &st) : NULL;
        return st != LAM_OK ? st : lam_op_clamp(c->inputs[0], (float)p->a, (float)p->b, out);
    }
    case LAM_OP_CAST:
        st = arity(c, 1, 1, 1);
        return st != LAM_OK ? st : lam_op_cast(c->inputs[0], c->out_dtype, out);
    default:
        return LAM_ERR_NOT_FOUND; /* not one of these: the caller goes on */
    }
}

/* ---- the neural-network ops of 2.0 (GEMM_BATCHED, windows, PAD, MOMENTS) ---- */

/* The image shape (N, C, H, W) an adjoint window op makes: the call's out_shape. */
static lam_status image_shape(const lam_host_op *c) {
    if (c->out_shape == NULL || c->out_shape->ndim != 4) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "op %s: Invalid argument, out_shape must give the image's 4-D shape "
                          "(N, C, H, W)",
                          lam_op_name(c->op));
    }
    return LAM_OK;
}

static lam_status window(const lam_host_op *c, lam_tensor **out) {
    int grad = c->op == LAM_OP_COL2IM || c->op == LAM_OP_MAX_POOL_BACKWARD ||
               c->op == LAM_OP_AVG_POOL_BACKWARD;
    uint32_t n_in = c->op == LAM_OP_MAX_POOL_BACKWARD ? 2 : 1;
    lam_status st = arity(c, n_in, n_in, c->op == LAM_OP_MAX_POOL ? 2 : 1);
    const lam_window_params *w = st == LAM_OK ? PARAMS(c, lam_window_params, &st) : NULL;
    if (st == LAM_OK && grad) {
        st = image_shape(c);
    }
    if (st != LAM_OK) {
        return st;
    }
    switch (c->op) {
    case LAM_OP_IM2COL:
        return lam__op_im2col(c->inputs[0], w, out);
    case LAM_OP_COL2IM:
        return lam__op_col2im(c->inputs[0], w, c->out_shape, out);
    case LAM_OP_MAX_POOL:
        return lam__op_max_pool(c->inputs[0], w, &out[0], &out[1]);
    case LAM_OP_MAX_POOL_BACKWARD:
        return lam__op_max_pool_backward(c->inputs[0], c->inputs[1], w, c->out_shape, out);
    case LAM_OP_AVG_POOL:
        return lam__op_avg_pool(c->inputs[0], w, out);
    default:
        return lam__op_avg_pool_backward(c->inputs[0], w, c->out_shape, out);
    }
}

static lam_status pad_op(const lam_host_op *c, lam_tensor **out) {
    lam_status st = arity(c, 1, 1, 1);
    const lam_pad_params *p = st == LAM_OK ? PARAMS(c, lam_pad_params, &st) : NULL;
    return st != LAM_OK ? st : lam__op_pad(c->inputs[0], p, out);
}

static lam_status moments(const lam_host_op *c, lam_tensor **out) {
    lam_status st = arity(c, 1, 1, 2);
    const lam_reduce_params *p = st == LAM_OK ? PARAMS(c, lam_reduce_params, &st) : NULL;
    if (st != LAM_OK) {
        return st;
    }
    if (p->n_axes > LAM_MAX_DIMS) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "op moments: Invalid argument, %u axes",
                          (unsigned)p->n_axes);
    }
    return lam__moments("op moments", c->inputs[0], p->axes, p->n_axes, p->keepdims, &out[0],
                        &out[1]);
}

/* LAYER_NORM (x, gamma, beta; y, or y, mean, rstd) and LAYER_NORM_BACKWARD (dy, x, mean,
 * rstd, gamma; dx, or dx, dgamma, dbeta), ABI 2.2. */
static lam_status layer_norm(const lam_host_op *c, lam_tensor **out) {
    const bool fwd = c->op == LAM_OP_LAYER_NORM;
    const uint32_t n_in = fwd ? 3 : 5;
    if (c->n_outputs != 1 && c->n_outputs != 3) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "op %s: Invalid argument, %u outputs given, it writes 1 (%s) or 3 (%s)",
                          lam_op_name(c->op), (unsigned)c->n_outputs, fwd ? "y" : "dx",
                          fwd ? "y, mean, rstd" : "dx, dgamma, dbeta");
    }
    lam_status st = arity(c, n_in, n_in, c->n_outputs);
    const lam_scalar_params *p = st == LAM_OK ? PARAMS(c, lam_scalar_params, &st) : NULL;
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *const *in = c->inputs;
    const bool all = c->n_outputs == 3;
    if (fwd) {
        return lam__layer_norm("op layer_norm", in[0], in[1], in[2], p->a, &out[0],
                               all ? &out[1] : NULL, all ? &out[2] : NULL);
    }
    return lam__layer_norm_backward("op layer_norm_backward", in[0], in[1], in[2], in[3], in[4],
                                    &out[0], all ? &out[1] : NULL, all ? &out[2] : NULL);
}

/* ---- the convolution ops of 2.2 ---- */

/* CONV: lam_op_conv2d (differentiated), whose direct path or fallback the host chooses. */
static lam_status conv_op(const lam_host_op *c, lam_tensor **out) {
    lam_status st = arity(c, 2, 3, 1);
    const lam_conv_params *p = st == LAM_OK ? PARAMS(c, lam_conv_params, &st) : NULL;
    if (st != LAM_OK) {
        return st;
    }
    const lam_window_params *w = &p->window;
    const lam_shape *ws = lam_tensor_shape(c->inputs[1]);
    if (w->n_spatial != 2 || w->flags != 0 || w->pad_before[0] != w->pad_after[0] ||
        w->pad_before[1] != w->pad_after[1] || ws == NULL || ws->ndim != 4 ||
        w->kernel[0] != ws->dims[2] || w->kernel[1] != ws->dims[3]) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "op conv: Invalid argument, the host takes 2 spatial dims, no window "
                          "flags, equal padding before and after, and a kernel equal to the "
                          "weight's (O, C/groups, KH, KW) last two dims");
    }
    lam_conv2d_params q = LAM_CONV2D_PARAMS_INIT;
    q.groups = p->groups;
    for (int a = 0; a < 2; a++) {
        q.stride[a] = w->stride[a];
        q.pad[a] = w->pad_before[a];
        q.dilation[a] = w->dilation[a];
    }
    return lam_op_conv2d(c->inputs[0], c->inputs[1], c->n_inputs > 2 ? c->inputs[2] : NULL, &q,
                         out);
}

/* CONV_BACKWARD_DATA (out_shape: the image's) and CONV_BACKWARD_WEIGHT (1 or 2 outputs): the
 * backend's ops, staged on the CPU backend where the tensors' one says no; not recorded. */
static lam_status conv_grad_op(const lam_host_op *c, lam_tensor **out) {
    const bool data = c->op == LAM_OP_CONV_BACKWARD_DATA;
    const uint32_t n_out = !data && c->n_outputs == 2 ? 2 : 1;
    lam_status st = arity(c, 2, 2, n_out);
    const lam_conv_params *p = st == LAM_OK ? PARAMS(c, lam_conv_params, &st) : NULL;
    if (st == LAM_OK && data) {
        st = image_shape(c);
    }
    if (st != LAM_OK) {
        return st;
    }
    const lam_shape *xs = lam_tensor_shape(c->inputs[0]), *ys = lam_tensor_shape(c->inputs[1]);
    if (!data && (xs->ndim != 4 || ys->ndim != 4 || p->groups == 0)) {
        return lam__error(LAM_ERR_SHAPE,
                          "op conv_backward_weight: Shape mismatch, the input and the output's "
                          "gradient must be 4-D and groups at least 1");
    }
    lam_shape s[2];
    if (data) {
        s[0] = *c->out_shape;
    } else {
        s[0] = (lam_shape){.ndim = 4,
                           .dims = {ys->dims[1], xs->dims[1] / p->groups, p->window.kernel[0],
                                    p->window.kernel[1]}};
        s[1] = (lam_shape){.ndim = 1, .dims = {ys->dims[1]}};
    }
    lam_ctx *ctx = lam_tensor_ctx(c->inputs[0]);
    for (uint32_t i = 0; i < n_out && st == LAM_OK; i++) {
        st = lam_tensor_create(ctx, &s[i], &out[i]);
    }
    if (st == LAM_OK) {
        st = lam__run_op(c->op, ctx, c->inputs, 2, out, n_out, p);
    }
    if (st != LAM_OK) {
        for (uint32_t i = 0; i < n_out; i++) {
            lam_tensor_release(out[i]);
            out[i] = NULL;
        }
    }
    return st;
}

/* The 2.0 NN ops: false for any other op. */
static bool dispatch_nn(const lam_host_op *c, lam_tensor **out, lam_status *st) {
    switch (c->op) {
    case LAM_OP_GEMM_BATCHED:
        *st = gemm(c, out);
        return true;
    case LAM_OP_IM2COL:
    case LAM_OP_COL2IM:
    case LAM_OP_MAX_POOL:
    case LAM_OP_MAX_POOL_BACKWARD:
    case LAM_OP_AVG_POOL:
    case LAM_OP_AVG_POOL_BACKWARD:
        *st = window(c, out);
        return true;
    case LAM_OP_PAD:
        *st = pad_op(c, out);
        return true;
    case LAM_OP_MOMENTS:
        *st = moments(c, out);
        return true;
    case LAM_OP_LAYER_NORM:
    case LAM_OP_LAYER_NORM_BACKWARD:
        *st = layer_norm(c, out);
        return true;
    case LAM_OP_CONV:
        *st = conv_op(c, out);
        return true;
    case LAM_OP_CONV_BACKWARD_DATA:
    case LAM_OP_CONV_BACKWARD_WEIGHT:
        *st = conv_grad_op(c, out);
        return true;
    default:
        return false;
    }
}

/* The ops of ABI 1.0, then the 2.0 groups. */
static lam_status dispatch(const lam_host_op *c, lam_tensor **out) {
    lam_status st;
    if (dispatch_nn(c, out, &st)) {
        return st;
    }
    st = index_ops(c, out);
    if (st != LAM_ERR_NOT_FOUND) {
        return st;
    }
    switch (lam_op_form_of(c->op)) {
    case LAM_OP_FORM_FILL:
        return fill(c, out);
    case LAM_OP_FORM_BINARY:
        return c->op == LAM_OP_AXPBY ? axpby(c, out) : binary(c, out);
    case LAM_OP_FORM_GEMM:
        return gemm(c, out);
    case LAM_OP_FORM_LINEAR:
        return linear(c, out);
    case LAM_OP_FORM_REDUCE:
        return reduce(c, out);
    case LAM_OP_FORM_SOFTMAX:
        return softmax(c, out);
    case LAM_OP_FORM_UNARY:
        st = arity(c, 1, 1, 1);
        if (st != LAM_OK) {
            return st;
        }
        if (c->op == LAM_OP_COPY) {
            return lam_op_copy(c->inputs[0], out);
        }
        switch (c->op) {
        case LAM_OP_ADD_SCALAR:
        case LAM_OP_MUL_SCALAR:
        case LAM_OP_RSUB_SCALAR:
        case LAM_OP_DIV_SCALAR:
        case LAM_OP_RDIV_SCALAR:
        case LAM_OP_POW_SCALAR: {
            const lam_scalar_params *p = PARAMS(c, lam_scalar_params, &st);
            return st != LAM_OK ? st : lam__op_scalar(c->op, c->inputs[0], (float)p->a, out);
        }
        case LAM_OP_CLAMP:
            return lam__error(LAM_ERR_UNSUPPORTED,
                              "op clamp: Unsupported op %d, this host does not have it yet",
                              (int)c->op);
        default:
            return lam__op_unary(c->op, c->inputs[0], out);
        }
    default:
        return lam__error(LAM_ERR_UNSUPPORTED,
                          "op %s: Unsupported op %d, this host does not have it yet",
                          lam_op_name(c->op), (int)c->op);
    }
}

lam_status lam__host_op(const lam_host_op *c) {
    if (c == NULL || c->struct_size < offsetof(lam_host_op, ctx) || c->outputs == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "op: Invalid argument, %s",
                          c == NULL            ? "call is NULL"
                          : c->outputs == NULL ? "outputs is NULL"
                                               : "call's struct_size is too small "
                                                 "(use LAM_HOST_OP_INIT)");
    }
    for (uint32_t i = 0; i < c->n_outputs; i++) {
        c->outputs[i] = NULL;
    }
    lam_host_op call;
    memset(&call, 0, sizeof call);
    memcpy(&call, c, c->struct_size < sizeof call ? c->struct_size : sizeof call);
    if (call.struct_size < sizeof call) { /* fields past an older plugin's struct: defaults */
        call.out_dtype = LAM_DTYPE_F32;
    }
    if (call.n_outputs == 0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "op %s: Invalid argument, n_outputs is 0",
                          lam_op_name(call.op));
    }
    return dispatch(&call, c->outputs);
}
