/*
 * Gradient rules: for each kind of recorded op, the gradients of its inputs given the gradient
 * of its output, written with front-end ops so they run on every backend.
 */
#include "grad_rules.h"
#include "error.h"
#include "op_name.h"
#include "ops.h"
#include "tensor.h"

#include <stdlib.h>

/* Sums g down to `shape` (undoing broadcasting). Returns a new reference. */
static lam_status unbroadcast(lam_tensor *g, const lam_shape *shape, lam_tensor **out) {
    if (lam_shape_equal(&g->shape, shape)) {
        *out = lam_tensor_retain(g);
        return LAM_OK;
    }
    uint32_t nd = g->shape.ndim, off = nd - shape->ndim;
    int32_t axes[LAM_MAX_DIMS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < nd; i++) {
        if (i < off || (shape->dims[i - off] == 1 && g->shape.dims[i] != 1)) {
            axes[n++] = (int32_t)i;
        }
    }
    lam_tensor *s;
    lam_status st = n ? lam_op_sum(g, axes, n, 1, &s) : (s = lam_tensor_retain(g), LAM_OK);
    if (st != LAM_OK) {
        return st;
    }
    st = lam_tensor_reshape(s, shape, out);
    lam_tensor_release(s);
    return st;
}

/* A tensor of `shape` holding g broadcast (g has the reduced shape with keepdims). */
static lam_status broadcast_to(lam_tensor *g, const lam_shape *shape, lam_tensor **out) {
    lam_status st = lam__tensor_alloc(lam_tensor_ctx(g), shape, out);
    if (st != LAM_OK) {
        return st;
    }
    st = lam_op_assign(*out, g);
    if (st != LAM_OK) {
        lam_tensor_release(*out);
        *out = NULL;
    }
    return st;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((st = (call)) != LAM_OK) {                                                             \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* Gradient of a reduced output back to the input: g reshaped with keepdims, broadcast. */
static lam_status reduce_grad(lam__node *n, lam_tensor *g, lam_tensor **gx) {
    lam_tensor *x = n->in[0], *gk = NULL, *gb = NULL, *mask = NULL, *outk = NULL, *outb = NULL;
    lam_status st = LAM_OK;
    lam_shape ks = x->shape;
    int64_t count = 1;
    for (uint32_t i = 0; i < ks.ndim; i++) {
        if (n->mask[i]) {
            count *= ks.dims[i];
            ks.dims[i] = 1;
        }
    }
    TRY(lam_tensor_reshape(g, &ks, &gk));
    TRY(broadcast_to(gk, &x->shape, &gb));
    if (n->op == LAM_OP_REDUCE_SUM) {
        *gx = lam_tensor_retain(gb);
    } else if (n->op == LAM_OP_REDUCE_MEAN) {
        TRY(lam_op_mul_scalar(gb, count > 0 ? 1.0f / (float)count : 0.0f, gx));
    } else {
        /* max/min: the gradient goes to every element equal to the extreme. */
        TRY(lam_tensor_reshape(n->out, &ks, &outk));
        TRY(broadcast_to(outk, &x->shape, &outb));
        TRY(n->op == LAM_OP_REDUCE_MAX ? lam_op_greater_equal(x, outb, &mask)
                                       : lam_op_greater_equal(outb, x, &mask));
        TRY(lam_op_mul(gb, mask, gx));
    }
done:
    lam_tensor_release(gk);
    lam_tensor_release(gb);
    lam_tensor_release(mask);
    lam_tensor_release(outk);
    lam_tensor_release(outb);
    return st;
}

static lam_status unary_grad(lam__node *n, lam_tensor *g, lam_tensor **gx) {
    lam_tensor *x = n->in[0], *y = n->out, *a = NULL, *b = NULL;
    lam_status st = LAM_OK;
    switch (n->op) {
    case LAM_OP_COPY:
        *gx = lam_tensor_retain(g);
        break;
    case LAM_OP_NEG:
        TRY(lam_op_neg(g, gx));
        break;
    case LAM_OP_ABS: /* sign(x) = step(x) - step(-x) */
        TRY(lam_op_neg(x, &a));
        TRY(lam_op_step(a, &b));
        lam_tensor_release(a);
        a = NULL;
        TRY(lam_op_step(x, &a));
        {
            lam_tensor *sign;
            TRY(lam_op_sub(a, b, &sign));
            st = lam_op_mul(g, sign, gx);
            lam_tensor_release(sign);
        }
        break;
    case LAM_OP_SQUARE:
        TRY(lam_op_mul_scalar(x, 2.0f, &a));
        TRY(lam_op_mul(g, a, gx));
        break;
    case LAM_OP_SQRT: /* g / (2 y) */
        TRY(lam_op_mul_scalar(y, 2.0f, &a));
        TRY(lam_op_div(g, a, gx));
        break;
    case LAM_OP_EXP:
        TRY(lam_op_mul(g, y, gx));
        break;
    case LAM_OP_LOG:
        TRY(lam_op_div(g, x, gx));
        break;
    case LAM_OP_RELU:
        TRY(lam_op_step(x, &a));
        TRY(lam_op_mul(g, a, gx));
        break;
    case LAM_OP_SIGMOID: /* g y (1 - y) */
        TRY(lam_op_rsub_scalar(y, 1.0f, &a));
        TRY(lam_op_mul(y, a, &b));
        TRY(lam_op_mul(g, b, gx));
        break;
    case LAM_OP_TANH: /* g (1 - y^2) */
        TRY(lam_op_square(y, &a));
        TRY(lam_op_rsub_scalar(a, 1.0f, &b));
        TRY(lam_op_mul(g, b, gx));
        break;
    case LAM_OP_SOFTRELU: /* g sigmoid(x) */
        TRY(lam_op_sigmoid(x, &a));
        TRY(lam_op_mul(g, a, gx));
        break;
    default:
        st = lam__error(LAM_ERR_INTERNAL, "backward: No gradient rule for %s", lam__op_name(n->op));
    }
done:
    lam_tensor_release(a);
    lam_tensor_release(b);
    return st;
}

static lam_status scalar_grad(lam__node *n, lam_tensor *g, lam_tensor **gx) {
    lam_tensor *x = n->in[0], *a = NULL, *b = NULL;
    float s = n->scalar;
    lam_status st = LAM_OK;
    switch (n->op) {
    case LAM_OP_ADD_SCALAR:
        *gx = lam_tensor_retain(g);
        break;
    case LAM_OP_MUL_SCALAR:
        TRY(lam_op_mul_scalar(g, s, gx));
        break;
    case LAM_OP_RSUB_SCALAR:
        TRY(lam_op_neg(g, gx));
        break;
    case LAM_OP_DIV_SCALAR:
        TRY(lam_op_div_scalar(g, s, gx));
        break;
    case LAM_OP_RDIV_SCALAR: /* d(s/x) = -s/x^2 */
        TRY(lam_op_square(x, &a));
        TRY(lam_op_rdiv_scalar(a, -s, &b));
        TRY(lam_op_mul(g, b, gx));
        break;
    case LAM_OP_POW_SCALAR: /* s x^(s-1) */
        TRY(lam_op_pow_scalar(x, s - 1.0f, &a));
        TRY(lam_op_mul_scalar(a, s, &b));
        TRY(lam_op_mul(g, b, gx));
        break;
    default:
        st = lam__error(LAM_ERR_INTERNAL, "backward: No gradient rule for %s", lam__op_name(n->op));
    }
done:
    lam_tensor_release(a);
    lam_tensor_release(b);
    return st;
}

static lam_status binary_grad(lam__node *n, lam_tensor *g, lam_tensor **ga, lam_tensor **gb) {
    lam_tensor *x = n->in[0], *y = n->in[1], *fa = NULL, *fb = NULL, *t = NULL, *u = NULL;
    lam_status st = LAM_OK;
    switch (n->op) {
    case LAM_OP_ADD:
        fa = lam_tensor_retain(g);
        fb = lam_tensor_retain(g);
        break;
    case LAM_OP_SUB:
        fa = lam_tensor_retain(g);
        TRY(lam_op_neg(g, &fb));
        break;
    case LAM_OP_MUL:
        TRY(lam_op_mul(g, y, &fa));
        TRY(lam_op_mul(g, x, &fb));
        break;
    case LAM_OP_DIV: /* d(x/y) = g/y, -g x / y^2 */
        TRY(lam_op_div(g, y, &fa));
        TRY(lam_op_div(fa, y, &t));
        TRY(lam_op_mul(t, x, &u));
        TRY(lam_op_neg(u, &fb));
        break;
    case LAM_OP_MAXIMUM:
    case LAM_OP_MINIMUM: /* ties go to x */
        TRY(n->op == LAM_OP_MAXIMUM ? lam_op_greater_equal(x, y, &t)
                                    : lam_op_greater_equal(y, x, &t));
        TRY(lam_op_mul(g, t, &fa));
        TRY(lam_op_rsub_scalar(t, 1.0f, &u));
        TRY(lam_op_mul(g, u, &fb));
        break;
    default:
        st = lam__error(LAM_ERR_INTERNAL, "backward: No gradient rule for %s", lam__op_name(n->op));
        goto done;
    }
    TRY(unbroadcast(fa, &x->shape, ga));
    TRY(unbroadcast(fb, &y->shape, gb));
done:
    lam_tensor_release(fa);
    lam_tensor_release(fb);
    lam_tensor_release(t);
    lam_tensor_release(u);
    return st;
}

static lam_status softmax_grad(lam__node *n, lam_tensor *g, lam_tensor **gx) {
    lam_tensor *y = n->out, *a = NULL, *s = NULL, *b = NULL;
    int32_t axis = n->axis;
    lam_status st = LAM_OK;
    if (n->ta) { /* log_softmax: g - softmax(x) * sum(g) */
        TRY(lam_op_exp(y, &a));
        TRY(lam_op_sum(g, &axis, 1, 1, &s));
        TRY(lam_op_mul(a, s, &b));
        TRY(lam_op_sub(g, b, gx));
    } else { /* softmax: y * (g - sum(g y)) */
        TRY(lam_op_mul(g, y, &a));
        TRY(lam_op_sum(a, &axis, 1, 1, &s));
        TRY(lam_op_sub(g, s, &b));
        TRY(lam_op_mul(y, b, gx));
    }
done:
    lam_tensor_release(a);
    lam_tensor_release(s);
    lam_tensor_release(b);
    return st;
}

lam_status lam__grad_rule(lam__node *n, lam_tensor *g, lam_tensor *grads[2]) {
    grads[0] = grads[1] = NULL;
    lam_status st = LAM_OK;
    switch (n->kind) {
    case LAM__G_BINARY:
        st = binary_grad(n, g, &grads[0], &grads[1]);
        break;
    case LAM__G_SCALAR:
        st = scalar_grad(n, g, &grads[0]);
        break;
    case LAM__G_UNARY:
        st = unary_grad(n, g, &grads[0]);
        break;
    case LAM__G_MATMUL: {
        /* Each product costs as much as the forward: skip the one nobody needs (the input
         * batch of a first layer has no gradient). */
        lam_tensor *a = n->in[0], *b = n->in[1];
        if (lam__needs_grad(a)) {
            st = n->ta ? lam_op_matmul(b, g, n->tb, 1, &grads[0])
                       : lam_op_matmul(g, b, 0, !n->tb, &grads[0]);
        }
        if (st == LAM_OK && lam__needs_grad(b)) {
            st = n->tb ? lam_op_matmul(g, a, 1, n->ta, &grads[1])
                       : lam_op_matmul(a, g, !n->ta, 0, &grads[1]);
        }
        break;
    }
    case LAM__G_RESHAPE:
        st = lam_tensor_reshape(g, &n->in[0]->shape, &grads[0]);
        break;
    case LAM__G_TRANSPOSE:
        st = lam_op_transpose(g, &grads[0]);
        break;
    case LAM__G_REDUCE:
        st = reduce_grad(n, g, &grads[0]);
        break;
    case LAM__G_SOFTMAX:
        st = softmax_grad(n, g, &grads[0]);
        break;
    case LAM__G_CLOSURE:
        st = lam__error(LAM_ERR_INTERNAL, "backward: No gradient rule for a closure node");
        break;
    }
    if (st != LAM_OK) {
        lam_tensor_release(grads[0]);
        lam_tensor_release(grads[1]);
        grads[0] = grads[1] = NULL;
    }
    return st;
}
