/* Element-wise front-end ops: checks, broadcasting, dispatch to the tensor's backend. */
#include "ops.h"
#include "execute.h"
#include "tape.h"
#include "context.h"
#include "error.h"
#include "op_name.h"
#include "op_run.h"
#include "shape.h"
#include "tensor.h"

#include <stdio.h>
#include <string.h>

static lam_status null_arg(const char *fn) {
    return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL tensor or output", fn);
}

lam_status lam__need_f32(const char *fn, const lam_tensor *t, const char *which) {
    if (t->dtype != LAM_DTYPE_F32) {
        return lam__error(LAM_ERR_DTYPE, "%s: Dtype mismatch, %s is %s, expected float32", fn,
                          which, lam__dtype_name(t->dtype));
    }
    return LAM_OK;
}

/* Broadcast shapes NumPy's way; fills the output shape and the operand strides. */
static lam_status broadcast(const char *fn, const lam_tensor *a, const lam_tensor *b,
                            lam_shape *out, lam_tensor_view *va, lam_tensor_view *vb) {
    const lam_shape *sa = &a->shape, *sb = &b->shape;
    uint32_t nd = sa->ndim > sb->ndim ? sa->ndim : sb->ndim;
    memset(out, 0, sizeof *out);
    out->ndim = nd;
    for (uint32_t i = 0; i < nd; i++) {
        int64_t da = i < nd - sa->ndim ? 1 : sa->dims[i - (nd - sa->ndim)];
        int64_t db = i < nd - sb->ndim ? 1 : sb->dims[i - (nd - sb->ndim)];
        if (da != db && da != 1 && db != 1) {
            char b1[160], b2[160];
            return lam__error(LAM_ERR_SHAPE,
                              "%s: Shape mismatch, cannot broadcast %s with %s (dim %u: %lld vs "
                              "%lld)",
                              fn, lam_shape_format(sa, b1, sizeof b1),
                              lam_shape_format(sb, b2, sizeof b2), i, (long long)da, (long long)db);
        }
        out->dims[i] = da == 1 ? db : da;
    }
    const lam_tensor *ops[2] = {a, b};
    lam_tensor_view *views[2] = {va, vb};
    for (int k = 0; k < 2; k++) {
        const lam_shape *s = &ops[k]->shape;
        lam_tensor_view *v = views[k];
        memset(v, 0, sizeof *v);
        const int64_t es = (int64_t)lam_dtype_size(ops[k]->dtype);
        v->struct_size = (uint32_t)sizeof *v;
        v->buffer = ops[k]->storage->buf;
        v->offset = ops[k]->offset * (uint64_t)es;
        v->dtype = ops[k]->dtype;
        v->ndim = nd;
        int64_t stride = es; /* bytes, as the ABI has them */
        for (uint32_t i = nd; i-- > 0;) {
            v->dims[i] = out->dims[i];
            if (i < nd - s->ndim) {
                v->strides[i] = 0;
            } else {
                int64_t d = s->dims[i - (nd - s->ndim)];
                v->strides[i] = (d == 1 && out->dims[i] != 1) ? 0 : stride;
                stride *= d;
            }
        }
        if (nd == 0) {
            v->ndim = 1;
            v->dims[0] = 1;
            v->strides[0] = 0;
        }
    }
    return LAM_OK;
}

static lam_status binary(lam_op op, const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    const char *fn = lam__op_name(op);
    if (out == NULL || a == NULL || b == NULL) {
        if (out) {
            *out = NULL;
        }
        return null_arg(fn);
    }
    *out = NULL;
    lam_status st = lam__same_ctx(fn, a, b);
    if (st == LAM_OK) {
        st = lam__need_f32(fn, a, "the first operand");
    }
    if (st == LAM_OK) {
        st = lam__need_f32(fn, b, "the second operand");
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_shape shape;
    lam_tensor_view v[2], vo;
    st = broadcast(fn, a, b, &shape, &v[0], &v[1]);
    if (st != LAM_OK) {
        return st;
    }
    lam_ctx *ctx = a->storage->ctx;
    lam_tensor *o;
    st = lam__tensor_alloc(ctx, &shape, &o);
    if (st != LAM_OK) {
        return st;
    }
    if (o->numel > 0) {
        lam__tensor_view(o, &vo);
        st = lam__execute(ctx, op, v, 2, &vo, NULL, NULL);
        if (st != LAM_OK) {
            lam_tensor_release(o);
            return st;
        }
    }
    if (op != LAM_OP_GREATER_EQUAL) {
        lam_tensor *ins[2] = {(lam_tensor *)a, (lam_tensor *)b};
        st = lam__record_op(LAM__G_BINARY, op, ins, 2, &o, 0.0f, 0, 0);
        if (st != LAM_OK) {
            return st;
        }
    }
    *out = o;
    return LAM_OK;
}

lam_status lam_op_add(const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    return binary(LAM_OP_ADD, a, b, out);
}
lam_status lam_op_sub(const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    return binary(LAM_OP_SUB, a, b, out);
}
lam_status lam_op_mul(const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    return binary(LAM_OP_MUL, a, b, out);
}
lam_status lam_op_div(const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    return binary(LAM_OP_DIV, a, b, out);
}
lam_status lam_op_maximum(const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    return binary(LAM_OP_MAXIMUM, a, b, out);
}
lam_status lam_op_minimum(const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    return binary(LAM_OP_MINIMUM, a, b, out);
}
lam_status lam_op_greater_equal(const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    return binary(LAM_OP_GREATER_EQUAL, a, b, out);
}

/* A copy of a tensor of another dtype than float32: not differentiated, and through the CPU
 * when the tensor's backend copies only float32. */
static lam_status copy_any(const lam_tensor *a, lam_tensor **out) {
    lam_tensor *o = NULL;
    lam_status st = lam__tensor_alloc_dtype(a->storage->ctx, a->dtype, &a->shape, &o);
    if (st == LAM_OK && o->numel > 0) {
        lam_tensor *in[1] = {(lam_tensor *)a}, *res[1] = {o};
        st = lam__run_op(LAM_OP_COPY, a->storage->ctx, in, 1, res, 1, NULL);
    }
    if (st != LAM_OK) {
        lam_tensor_release(o);
        return lam__error_prefix(st, "copy");
    }
    *out = o;
    return LAM_OK;
}

/* One input, output of the same shape. */
static lam_status map(lam_op op, const lam_tensor *a, const double *scalars, lam_tensor **out) {
    const char *fn = lam__op_name(op);
    if (out == NULL || a == NULL) {
        if (out) {
            *out = NULL;
        }
        return null_arg(fn);
    }
    *out = NULL;
    lam_ctx *ctx = a->storage->ctx;
    lam_tensor *o;
    if (op == LAM_OP_COPY && a->dtype != LAM_DTYPE_F32) {
        return copy_any(a, out);
    }
    lam_status st = lam__need_f32(fn, a, "the operand");
    if (st == LAM_OK) {
        st = lam__tensor_alloc(ctx, &a->shape, &o);
    }
    if (st != LAM_OK) {
        return st;
    }
    if (o->numel > 0) {
        lam_tensor_view vi, vo;
        lam__tensor_view(a, &vi);
        lam__tensor_view(o, &vo);
        st = lam__execute(ctx, op, &vi, 1, &vo, scalars, NULL);
        if (st != LAM_OK) {
            lam_tensor_release(o);
            return st;
        }
    }
    if (op != LAM_OP_STEP) {
        lam_tensor *in = (lam_tensor *)a;
        bool scalar_op = op >= LAM_OP_ADD_SCALAR && op <= LAM_OP_POW_SCALAR;
        st = lam__record_op(scalar_op ? LAM__G_SCALAR : LAM__G_UNARY, op, &in, 1, &o,
                            scalars ? (float)scalars[0] : 0.0f, 0, 0);
        if (st != LAM_OK) {
            return st;
        }
    }
    *out = o;
    return LAM_OK;
}

lam_status lam__op_unary(lam_op op, const lam_tensor *a, lam_tensor **out) {
    if (op != LAM_OP_COPY && op != LAM_OP_STEP && (op < LAM_OP_NEG || op > LAM_OP_SOFTRELU)) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "op_unary: Invalid argument, %s (%d) is not an element-wise function",
                          lam__op_name(op), (int)op);
    }
    return map(op, a, NULL, out);
}

lam_status lam__op_scalar(lam_op op, const lam_tensor *a, float s, lam_tensor **out) {
    if (op < LAM_OP_ADD_SCALAR || op > LAM_OP_POW_SCALAR) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "op_scalar: Invalid argument, %s (%d) is not a scalar op",
                          lam__op_name(op), (int)op);
    }
    double sc[4] = {s, 0, 0, 0};
    return map(op, a, sc, out);
}

lam_status lam_op_add_scalar(const lam_tensor *a, float s, lam_tensor **out) {
    return lam__op_scalar(LAM_OP_ADD_SCALAR, a, s, out);
}
lam_status lam_op_sub_scalar(const lam_tensor *a, float s, lam_tensor **out) {
    return lam__op_scalar(LAM_OP_ADD_SCALAR, a, -s, out);
}
lam_status lam_op_rsub_scalar(const lam_tensor *a, float s, lam_tensor **out) {
    return lam__op_scalar(LAM_OP_RSUB_SCALAR, a, s, out);
}
lam_status lam_op_mul_scalar(const lam_tensor *a, float s, lam_tensor **out) {
    return lam__op_scalar(LAM_OP_MUL_SCALAR, a, s, out);
}
lam_status lam_op_div_scalar(const lam_tensor *a, float s, lam_tensor **out) {
    return lam__op_scalar(LAM_OP_DIV_SCALAR, a, s, out);
}
lam_status lam_op_rdiv_scalar(const lam_tensor *a, float s, lam_tensor **out) {
    return lam__op_scalar(LAM_OP_RDIV_SCALAR, a, s, out);
}
lam_status lam_op_pow_scalar(const lam_tensor *a, float s, lam_tensor **out) {
    return lam__op_scalar(LAM_OP_POW_SCALAR, a, s, out);
}

lam_status lam_op_neg(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_NEG, a, NULL, out);
}
lam_status lam_op_abs(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_ABS, a, NULL, out);
}
lam_status lam_op_square(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_SQUARE, a, NULL, out);
}
lam_status lam_op_sqrt(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_SQRT, a, NULL, out);
}
lam_status lam_op_exp(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_EXP, a, NULL, out);
}
lam_status lam_op_log(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_LOG, a, NULL, out);
}
lam_status lam_op_relu(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_RELU, a, NULL, out);
}
lam_status lam_op_sigmoid(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_SIGMOID, a, NULL, out);
}
lam_status lam_op_tanh(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_TANH, a, NULL, out);
}
lam_status lam_op_softrelu(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_SOFTRELU, a, NULL, out);
}
lam_status lam_op_step(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_STEP, a, NULL, out);
}
lam_status lam_op_copy(const lam_tensor *a, lam_tensor **out) {
    return map(LAM_OP_COPY, a, NULL, out);
}

lam_status lam_op_fill(lam_tensor *t, float value) {
    if (t == NULL) {
        return null_arg("fill");
    }
    lam_status st = lam__need_f32("fill", t, "the tensor");
    if (st != LAM_OK) {
        return st;
    }
    if (t->numel == 0) {
        return LAM_OK;
    }
    lam_tensor_view v;
    lam__tensor_view(t, &v);
    double s[4] = {value, 0, 0, 0};
    return lam__execute(t->storage->ctx, LAM_OP_FILL, NULL, 0, &v, s, NULL);
}

lam_status lam_op_assign(lam_tensor *dst, const lam_tensor *src) {
    if (dst == NULL || src == NULL) {
        return null_arg("assign");
    }
    lam_status st = lam__same_ctx("assign", dst, src);
    if (st == LAM_OK && dst->dtype != src->dtype) {
        st = lam__error(LAM_ERR_DTYPE,
                        "assign: Dtype mismatch, the destination is %s and the source %s (convert "
                        "with lam_op_cast)",
                        lam__dtype_name(dst->dtype), lam__dtype_name(src->dtype));
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_shape shape;
    lam_tensor_view vd, vs;
    st = broadcast("assign", dst, src, &shape, &vd, &vs);
    if (st != LAM_OK) {
        return st;
    }
    if (!lam_shape_equal(&shape, &dst->shape)) {
        char b1[160], b2[160];
        return lam__error(LAM_ERR_SHAPE, "assign: Shape mismatch, %s does not broadcast to %s",
                          lam_shape_format(&src->shape, b1, sizeof b1),
                          lam_shape_format(&dst->shape, b2, sizeof b2));
    }
    if (dst->numel == 0) {
        return LAM_OK;
    }
    lam__tensor_view(dst, &vd);
    lam_ctx *ctx = dst->storage->ctx;
    if (dst->dtype != LAM_DTYPE_F32 && !lam__supports(ctx, LAM_OP_COPY, &vs, 1, &vd, NULL, NULL) &&
        lam_shape_equal(&dst->shape, &src->shape)) {
        /* A backend that copies only float32: through the CPU. */
        lam_tensor *in[1] = {(lam_tensor *)src}, *res[1] = {dst};
        return lam__run_op(LAM_OP_COPY, ctx, in, 1, res, 1, NULL);
    }
    return lam__execute(ctx, LAM_OP_COPY, &vs, 1, &vd, NULL, NULL);
}

lam_status lam__axpby_inplace(lam_tensor *x, float a, const lam_tensor *y, float b) {
    if (!lam_shape_equal(&x->shape, &y->shape) || x->storage->ctx != y->storage->ctx) {
        return lam__error(LAM_ERR_INTERNAL, "axpby: Operands differ in shape or context");
    }
    lam_ctx *ctx = x->storage->ctx;
    if (x->numel == 0) {
        return LAM_OK;
    }
    lam_tensor_view v[2], vo;
    lam__tensor_view(x, &v[0]);
    lam__tensor_view(y, &v[1]);
    vo = v[0];
    double sc[4] = {a, b, 0, 0};
    /* Tried directly (no supports() probe on the optimizer's path): a backend without AXPBY
     * answers LAM_ERR_UNSUPPORTED and the basic ops below take over. */
    lam_status st = lam__execute(ctx, LAM_OP_AXPBY, v, 2, &vo, sc, NULL);
    if (st != LAM_ERR_UNSUPPORTED) {
        return st;
    }
    /* A backend without the fused op: the same update from basic ops. */
    lam_tensor *ax = NULL, *by = NULL, *sum = NULL;
    int was = lam_autograd_record_begin(0);
    st = lam_op_mul_scalar(x, a, &ax);
    if (st == LAM_OK) {
        st = lam_op_mul_scalar(y, b, &by);
    }
    if (st == LAM_OK) {
        st = lam_op_add(ax, by, &sum);
    }
    if (st == LAM_OK) {
        st = lam_op_assign(x, sum);
    }
    lam_autograd_record_end(was);
    lam_tensor_release(ax);
    lam_tensor_release(by);
    lam_tensor_release(sum);
    return st;
}
