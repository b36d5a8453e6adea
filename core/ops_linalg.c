/* Matrix products, reductions, argmax, softmax and transpose. */
#include "tape.h"
#include "execute.h"
#include "context.h"
#include "error.h"
#include "op_name.h"
#include "ops.h"
#include "tensor.h"

#include <stdio.h>
#include <string.h>

static lam_status null_arg(const char *fn, lam_tensor **out) {
    if (out) {
        *out = NULL;
    }
    return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL tensor or output", fn);
}

lam_status lam_tensor_reshape(lam_tensor *t, const lam_shape *shape, lam_tensor **out) {
    lam_status st = lam__tensor_reshape_view(t, shape, out);
    if (st != LAM_OK) {
        return st;
    }
    return lam__record_op(LAM__G_RESHAPE, LAM_OP_COPY, &t, 1, out, 0.0f, 0, 0);
}

/* A 2-D row-major view of t with its rows of `cols` elements (byte units, as the ABI). */
static void view2d(const lam_tensor *t, int64_t rows, int64_t cols, lam_tensor_view *v) {
    memset(v, 0, sizeof *v);
    const int64_t es = (int64_t)lam_dtype_size(t->dtype);
    v->struct_size = (uint32_t)sizeof *v;
    v->buffer = t->storage->buf;
    v->offset = t->offset * (uint64_t)es;
    v->dtype = t->dtype;
    v->ndim = 2;
    v->dims[0] = rows;
    v->dims[1] = cols;
    v->strides[0] = cols * es;
    v->strides[1] = es;
}

/* out(m, n) = op(a) op(b) with a viewed as (ar, ac) and b as (br, bc). */
static lam_status gemm(const char *fn, const lam_tensor *a, int64_t ar, int64_t ac, int32_t ta,
                       const lam_tensor *b, int64_t br, int64_t bc, int32_t tb,
                       const lam_shape *out_shape, lam_tensor **out) {
    int64_t m = ta ? ac : ar, k = ta ? ar : ac;
    int64_t kb = tb ? bc : br, n = tb ? br : bc;
    if (k != kb) {
        char b1[160], b2[160];
        return lam__error(LAM_ERR_SHAPE,
                          "%s: Shape mismatch, %s%s x %s%s: inner dims %lld and %lld differ", fn,
                          lam_shape_format(&a->shape, b1, sizeof b1), ta ? "^T" : "",
                          lam_shape_format(&b->shape, b2, sizeof b2), tb ? "^T" : "", (long long)k,
                          (long long)kb);
    }
    lam_ctx *ctx = a->storage->ctx;
    lam_tensor *o;
    lam_status st;
    if (k == 0) {
        st = lam_tensor_create(ctx, out_shape, &o); /* empty sum: zeros */
        *out = st == LAM_OK ? o : NULL;
        return st;
    }
    st = lam__tensor_alloc(ctx, out_shape, &o);
    if (st != LAM_OK) {
        return st;
    }
    if (m > 0 && n > 0) {
        lam_tensor_view v[2], vo;
        view2d(a, ar, ac, &v[0]);
        view2d(b, br, bc, &v[1]);
        view2d(o, m, n, &vo);
        double sc[4] = {1.0, 0.0, 0, 0};
        int64_t in[4] = {ta != 0, tb != 0, 0, 0};
        st = lam__execute(ctx, LAM_OP_GEMM, v, 2, &vo, sc, in);
        if (st != LAM_OK) {
            lam_tensor_release(o);
            return st;
        }
    }
    *out = o;
    return LAM_OK;
}

lam_status lam_op_matmul(const lam_tensor *a, const lam_tensor *b, int32_t trans_a, int32_t trans_b,
                         lam_tensor **out) {
    if (out == NULL || a == NULL || b == NULL) {
        return null_arg("matmul", out);
    }
    *out = NULL;
    lam_status st = lam__same_ctx("matmul", a, b);
    if (st == LAM_OK) {
        st = lam__need_f32("matmul", a, "the first operand");
    }
    if (st == LAM_OK) {
        st = lam__need_f32("matmul", b, "the second operand");
    }
    if (st != LAM_OK) {
        return st;
    }
    if (a->shape.ndim != 2 || b->shape.ndim != 2) {
        char b1[160], b2[160];
        return lam__error(LAM_ERR_SHAPE, "matmul: Shape mismatch, %s x %s: both must be 2-D",
                          lam_shape_format(&a->shape, b1, sizeof b1),
                          lam_shape_format(&b->shape, b2, sizeof b2));
    }
    int64_t ar = a->shape.dims[0], ac = a->shape.dims[1];
    int64_t br = b->shape.dims[0], bc = b->shape.dims[1];
    lam_shape os = {0};
    os.ndim = 2;
    os.dims[0] = trans_a ? ac : ar;
    os.dims[1] = trans_b ? br : bc;
    st = gemm("matmul", a, ar, ac, trans_a, b, br, bc, trans_b, &os, out);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *ins[2] = {(lam_tensor *)a, (lam_tensor *)b};
    return lam__record_op(LAM__G_MATMUL, LAM_OP_GEMM, ins, 2, out, 0.0f, trans_a != 0,
                          trans_b != 0);
}

lam_status lam_op_dot(const lam_tensor *a, const lam_tensor *b, lam_tensor **out) {
    if (out == NULL || a == NULL || b == NULL) {
        return null_arg("dot", out);
    }
    *out = NULL;
    lam_status st = lam__same_ctx("dot", a, b);
    if (st == LAM_OK) {
        st = lam__need_f32("dot", a, "the first operand");
    }
    if (st == LAM_OK) {
        st = lam__need_f32("dot", b, "the second operand");
    }
    if (st != LAM_OK) {
        return st;
    }
    uint32_t na = a->shape.ndim, nb = b->shape.ndim;
    if (na < 1 || na > 2 || nb < 1 || nb > 2) {
        char b1[160], b2[160];
        return lam__error(
            LAM_ERR_SHAPE, "dot: Shape mismatch, %s . %s: operands must be 1-D or 2-D",
            lam_shape_format(&a->shape, b1, sizeof b1), lam_shape_format(&b->shape, b2, sizeof b2));
    }
    /* A 1-D left operand is a row, a 1-D right operand a column; their dims leave the result.
     * Written as reshape + matmul + reshape, so autograd needs no rule of its own for dot. */
    lam_shape sa = {0}, sb = {0}, os = {0};
    sa.ndim = sb.ndim = 2;
    sa.dims[0] = na == 2 ? a->shape.dims[0] : 1;
    sa.dims[1] = na == 2 ? a->shape.dims[1] : a->shape.dims[0];
    sb.dims[0] = b->shape.dims[0];
    sb.dims[1] = nb == 2 ? b->shape.dims[1] : 1;
    if (sa.dims[1] != sb.dims[0]) {
        char b1[160], b2[160];
        return lam__error(
            LAM_ERR_SHAPE, "dot: Shape mismatch, %s . %s: inner dims %lld and %lld differ",
            lam_shape_format(&a->shape, b1, sizeof b1), lam_shape_format(&b->shape, b2, sizeof b2),
            (long long)sa.dims[1], (long long)sb.dims[0]);
    }
    if (na == 2) {
        os.dims[os.ndim++] = sa.dims[0];
    }
    if (nb == 2) {
        os.dims[os.ndim++] = sb.dims[1];
    }
    lam_tensor *a2 = NULL, *b2 = NULL, *c = NULL;
    st = lam_tensor_reshape((lam_tensor *)a, &sa, &a2);
    if (st == LAM_OK) {
        st = lam_tensor_reshape((lam_tensor *)b, &sb, &b2);
    }
    if (st == LAM_OK) {
        st = lam_op_matmul(a2, b2, 0, 0, &c);
    }
    if (st == LAM_OK) {
        st = lam_tensor_reshape(c, &os, out);
    }
    lam_tensor_release(a2);
    lam_tensor_release(b2);
    lam_tensor_release(c);
    if (st != LAM_OK) {
        return lam__error_prefix(st, "dot");
    }
    return LAM_OK;
}

lam_status lam_op_transpose(const lam_tensor *a, lam_tensor **out) {
    if (out == NULL || a == NULL) {
        return null_arg("transpose", out);
    }
    *out = NULL;
    lam_status st = lam__need_f32("transpose", a, "the operand");
    if (st != LAM_OK) {
        return st;
    }
    if (a->shape.ndim != 2) {
        char b1[160];
        return lam__error(LAM_ERR_SHAPE, "transpose: Shape mismatch, %s is not 2-D",
                          lam_shape_format(&a->shape, b1, sizeof b1));
    }
    int64_t r = a->shape.dims[0], c = a->shape.dims[1];
    lam_shape os = {0};
    os.ndim = 2;
    os.dims[0] = c;
    os.dims[1] = r;
    lam_tensor *o;
    st = lam__tensor_alloc(a->storage->ctx, &os, &o);
    if (st != LAM_OK) {
        return st;
    }
    if (o->numel > 0) {
        lam_tensor_view vi, vo;
        view2d(a, r, c, &vi);
        /* Read a through swapped strides: element (i, j) of the output is a(j, i). */
        vi.dims[0] = c;
        vi.dims[1] = r;
        vi.strides[0] = vi.strides[1]; /* one element */
        vi.strides[1] = c * vi.strides[0];
        view2d(o, c, r, &vo);
        st = lam__execute(a->storage->ctx, LAM_OP_COPY, &vi, 1, &vo, NULL, NULL);
        if (st != LAM_OK) {
            lam_tensor_release(o);
            return st;
        }
    }
    lam_tensor *in = (lam_tensor *)a;
    st = lam__record_op(LAM__G_TRANSPOSE, LAM_OP_COPY, &in, 1, &o, 0.0f, 0, 0);
    *out = o;
    return st;
}

/* Normalizes axes into a mask; an axis out of range or repeated is an error. */
static lam_status axes_mask(const char *fn, const lam_tensor *a, const int32_t *axes,
                            uint32_t n_axes, bool mask[LAM_MAX_DIMS]) {
    int32_t nd = (int32_t)a->shape.ndim;
    memset(mask, 0, LAM_MAX_DIMS * sizeof *mask);
    if (axes == NULL || n_axes == 0) {
        for (int32_t i = 0; i < nd; i++) {
            mask[i] = true;
        }
        return LAM_OK;
    }
    for (uint32_t i = 0; i < n_axes; i++) {
        int32_t ax = axes[i] < 0 ? axes[i] + nd : axes[i];
        char b1[160];
        if (ax < 0 || ax >= nd) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Axis out of range, axis %d for shape %s with %d dims", fn,
                              axes[i], lam_shape_format(&a->shape, b1, sizeof b1), nd);
        }
        if (mask[ax]) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Repeated axis, axis %d given twice",
                              fn, axes[i]);
        }
        mask[ax] = true;
    }
    return LAM_OK;
}

static void view3d(const lam_tensor *t, int64_t outer, int64_t n, int64_t inner,
                   lam_tensor_view *v) {
    memset(v, 0, sizeof *v);
    const int64_t es = (int64_t)lam_dtype_size(t->dtype);
    v->struct_size = (uint32_t)sizeof *v;
    v->buffer = t->storage->buf;
    v->offset = t->offset * (uint64_t)es;
    v->dtype = t->dtype;
    v->ndim = 3;
    v->dims[0] = outer;
    v->dims[1] = n;
    v->dims[2] = inner;
    v->strides[0] = n * inner * es;
    v->strides[1] = inner * es;
    v->strides[2] = es;
}

static lam_status reduce_steps(lam_op op, const lam_tensor *a, const bool mask[LAM_MAX_DIMS],
                               int32_t keepdims, lam_ctx *ctx, lam_tensor **out);

lam_status lam__op_reduce(lam_op op, const lam_tensor *a, const int32_t *axes, uint32_t n_axes,
                          int32_t keepdims, lam_tensor **out) {
    const char *fn = lam__op_name(op);
    if (out == NULL || a == NULL) {
        return null_arg(fn, out);
    }
    *out = NULL;
    if (op < LAM_OP_REDUCE_SUM || op > LAM_OP_REDUCE_MIN) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "op_reduce: Invalid argument, %s (%d) is not a reduction", fn, (int)op);
    }
    bool mask[LAM_MAX_DIMS];
    lam_status st = lam__need_f32(fn, a, "the operand");
    if (st == LAM_OK) {
        st = axes_mask(fn, a, axes, n_axes, mask);
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_ctx *ctx = a->storage->ctx;
    /* The steps below are one op for autograd: record a single node at the end. */
    int was = lam_autograd_record_begin(0);
    st = reduce_steps(op, a, mask, keepdims, ctx, out);
    lam_autograd_record_end(was);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *in = (lam_tensor *)a;
    st = lam__record_op(LAM__G_REDUCE, op, &in, 1, out, 0.0f, 0, 0);
    lam__node *node = st == LAM_OK ? lam__node_of(*out) : NULL;
    if (node != NULL) {
        memcpy(node->mask, mask, sizeof mask);
        node->keepdims = keepdims;
    }
    return st;
}

static lam_status reduce_steps(lam_op op, const lam_tensor *a, const bool mask[LAM_MAX_DIMS],
                               int32_t keepdims, lam_ctx *ctx, lam_tensor **out) {
    lam_status st = LAM_OK;
    /* Reduce each run of adjacent reduced axes in one backend call, last run first. */
    lam_tensor *cur = lam_tensor_retain((lam_tensor *)a);
    lam_shape cs = a->shape;
    int32_t nd = (int32_t)cs.ndim;
    /* Without keepdims, the last run's output is allocated in the final shape (the same
     * elements in the same order) instead of reshaped after: one tensor fewer per reduction. */
    lam_shape fs = {0};
    for (int32_t i = 0; i < nd; i++) {
        if (!mask[i]) {
            fs.dims[fs.ndim++] = cs.dims[i];
        }
    }
    int final_shape = 0;
    for (int32_t end = nd - 1; end >= 0;) {
        if (!mask[end]) {
            end--;
            continue;
        }
        int32_t start = end;
        while (start > 0 && mask[start - 1]) {
            start--;
        }
        int64_t outer = 1, n = 1, inner = 1;
        for (int32_t i = 0; i < start; i++) {
            outer *= cs.dims[i];
        }
        for (int32_t i = start; i <= end; i++) {
            n *= cs.dims[i];
        }
        for (int32_t i = end + 1; i < nd; i++) {
            inner *= cs.dims[i];
        }
        lam_shape ns = cs;
        for (int32_t i = start; i <= end; i++) {
            ns.dims[i] = 1;
        }
        int last = 1;
        for (int32_t i = 0; i < start; i++) {
            last = last && !mask[i];
        }
        final_shape = last && !keepdims;
        lam_tensor *next;
        st = lam__tensor_alloc(ctx, final_shape ? &fs : &ns, &next);
        if (st != LAM_OK) {
            lam_tensor_release(cur);
            return st;
        }
        if (next->numel > 0) {
            lam_tensor_view vi, vo;
            view3d(cur, outer, n, inner, &vi);
            view3d(next, outer, 1, inner, &vo);
            st = lam__execute(ctx, op, &vi, 1, &vo, NULL, NULL);
        }
        lam_tensor_release(cur);
        cur = next;
        cs = ns;
        if (st != LAM_OK) {
            lam_tensor_release(cur);
            return st;
        }
        end = start - 1;
    }
    if (cur == a) {
        /* Nothing was reduced (a 0-D input): still hand back a tensor of its own. */
        lam_tensor *r;
        st = lam_op_copy(cur, &r);
        lam_tensor_release(cur);
        if (st != LAM_OK) {
            return st;
        }
        cur = r;
    }
    if (!keepdims && !final_shape) {
        lam_tensor *r;
        st = lam_tensor_reshape(cur, &fs, &r);
        lam_tensor_release(cur);
        if (st != LAM_OK) {
            return st;
        }
        cur = r;
    }
    *out = cur;
    return LAM_OK;
}

lam_status lam_op_sum(const lam_tensor *a, const int32_t *axes, uint32_t n_axes, int32_t keepdims,
                      lam_tensor **out) {
    return lam__op_reduce(LAM_OP_REDUCE_SUM, a, axes, n_axes, keepdims, out);
}
lam_status lam_op_mean(const lam_tensor *a, const int32_t *axes, uint32_t n_axes, int32_t keepdims,
                       lam_tensor **out) {
    return lam__op_reduce(LAM_OP_REDUCE_MEAN, a, axes, n_axes, keepdims, out);
}
lam_status lam_op_max(const lam_tensor *a, const int32_t *axes, uint32_t n_axes, int32_t keepdims,
                      lam_tensor **out) {
    return lam__op_reduce(LAM_OP_REDUCE_MAX, a, axes, n_axes, keepdims, out);
}
lam_status lam_op_min(const lam_tensor *a, const int32_t *axes, uint32_t n_axes, int32_t keepdims,
                      lam_tensor **out) {
    return lam__op_reduce(LAM_OP_REDUCE_MIN, a, axes, n_axes, keepdims, out);
}

/* Splits a's shape around `axis` into (outer, n, inner); returns the normalized axis or -1. */
static int32_t split_axis(const char *fn, const lam_tensor *a, int32_t axis, int64_t *outer,
                          int64_t *n, int64_t *inner) {
    int32_t nd = (int32_t)a->shape.ndim;
    int32_t ax = axis < 0 ? axis + nd : axis;
    if (ax < 0 || ax >= nd) {
        char b1[160];
        lam__error(LAM_ERR_INVALID_ARGUMENT,
                   "%s: Axis out of range, axis %d for shape %s with %d dims", fn, axis,
                   lam_shape_format(&a->shape, b1, sizeof b1), nd);
        return -1;
    }
    *outer = *inner = 1;
    for (int32_t i = 0; i < ax; i++) {
        *outer *= a->shape.dims[i];
    }
    *n = a->shape.dims[ax];
    for (int32_t i = ax + 1; i < nd; i++) {
        *inner *= a->shape.dims[i];
    }
    return ax;
}

lam_status lam_op_argmax(const lam_tensor *a, int32_t axis, lam_tensor **out) {
    if (out == NULL || a == NULL) {
        return null_arg("argmax", out);
    }
    *out = NULL;
    if (lam__need_f32("argmax", a, "the operand") != LAM_OK) {
        return LAM_ERR_DTYPE;
    }
    int64_t outer, n, inner;
    int32_t ax = split_axis("argmax", a, axis, &outer, &n, &inner);
    if (ax < 0) {
        return LAM_ERR_INVALID_ARGUMENT;
    }
    lam_shape os = {0};
    for (uint32_t i = 0; i < a->shape.ndim; i++) {
        if ((int32_t)i != ax) {
            os.dims[os.ndim++] = a->shape.dims[i];
        }
    }
    lam_tensor *o;
    lam_status st = lam__tensor_alloc(a->storage->ctx, &os, &o);
    if (st != LAM_OK) {
        return st;
    }
    if (o->numel > 0) {
        lam_tensor_view vi, vo;
        view3d(a, outer, n, inner, &vi);
        view3d(o, outer, 1, inner, &vo);
        st = lam__execute(a->storage->ctx, LAM_OP_ARGMAX, &vi, 1, &vo, NULL, NULL);
        if (st != LAM_OK) {
            lam_tensor_release(o);
            return st;
        }
    }
    *out = o;
    return LAM_OK;
}

lam_status lam__op_softmax(const lam_tensor *a, int32_t axis, int32_t log, lam_tensor **out) {
    const char *fn = log ? "log_softmax" : "softmax";
    if (out == NULL || a == NULL) {
        return null_arg(fn, out);
    }
    *out = NULL;
    if (lam__need_f32(fn, a, "the operand") != LAM_OK) {
        return LAM_ERR_DTYPE;
    }
    int64_t outer, n, inner;
    if (split_axis(fn, a, axis, &outer, &n, &inner) < 0) {
        return LAM_ERR_INVALID_ARGUMENT;
    }
    lam_tensor *o;
    lam_status st = lam__tensor_alloc(a->storage->ctx, &a->shape, &o);
    if (st != LAM_OK) {
        return st;
    }
    if (o->numel > 0) {
        lam_tensor_view vi, vo;
        view3d(a, outer, n, inner, &vi);
        view3d(o, outer, n, inner, &vo);
        st = lam__execute(a->storage->ctx, log ? LAM_OP_LOG_SOFTMAX : LAM_OP_SOFTMAX, &vi, 1, &vo,
                          NULL, NULL);
        if (st != LAM_OK) {
            lam_tensor_release(o);
            return st;
        }
    }
    lam_tensor *in = (lam_tensor *)a;
    st = lam__record_op(LAM__G_SOFTMAX, log ? LAM_OP_LOG_SOFTMAX : LAM_OP_SOFTMAX, &in, 1, &o, 0.0f,
                        log != 0, 0);
    lam__node *node = st == LAM_OK ? lam__node_of(o) : NULL;
    if (node != NULL) {
        node->axis = axis;
    }
    *out = o;
    return st;
}

lam_status lam_op_softmax(const lam_tensor *a, int32_t axis, lam_tensor **out) {
    return lam__op_softmax(a, axis, 0, out);
}
lam_status lam_op_log_softmax(const lam_tensor *a, int32_t axis, lam_tensor **out) {
    return lam__op_softmax(a, axis, 1, out);
}

lam_status lam_op_linear(const lam_tensor *x, const lam_tensor *w, const lam_tensor *bias,
                         lam_op act, lam_tensor **out) {
    if (out == NULL || x == NULL || w == NULL) {
        return null_arg("linear", out);
    }
    *out = NULL;
    if (act != LAM_OP_INVALID && act != LAM_OP_RELU && act != LAM_OP_SIGMOID &&
        act != LAM_OP_TANH && act != LAM_OP_SOFTRELU) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "linear: Invalid activation %d, expected none, relu, sigmoid, tanh or "
                          "softrelu",
                          (int)act);
    }
    lam_status st = lam__same_ctx("linear", x, w);
    if (st == LAM_OK && bias != NULL) {
        st = lam__same_ctx("linear", x, bias);
    }
    if (st == LAM_OK) {
        st = lam__need_f32("linear", x, "x");
    }
    if (st == LAM_OK) {
        st = lam__need_f32("linear", w, "w");
    }
    if (st == LAM_OK && bias != NULL) {
        st = lam__need_f32("linear", bias, "bias");
    }
    if (st != LAM_OK) {
        return st;
    }
    char b1[160], b2[160], b3[160];
    if (x->shape.ndim != 2 || w->shape.ndim != 2 || x->shape.dims[1] != w->shape.dims[1] ||
        (bias != NULL && (bias->shape.ndim != 1 || bias->shape.dims[0] != w->shape.dims[0]))) {
        return lam__error(LAM_ERR_SHAPE,
                          "linear: Shape mismatch, x %s, w %s, bias %s: expected (rows, in), "
                          "(units, in) and (units,)",
                          lam_shape_format(&x->shape, b1, sizeof b1),
                          lam_shape_format(&w->shape, b2, sizeof b2),
                          bias ? lam_shape_format(&bias->shape, b3, sizeof b3) : "none");
    }
    lam_ctx *ctx = x->storage->ctx;
    bool record =
        lam__recording() && (lam__needs_grad(x) || lam__needs_grad(w) || lam__needs_grad(bias));
    lam_tensor_view v[3], vo;
    lam_shape os = {0};
    os.ndim = 2;
    os.dims[0] = x->shape.dims[0];
    os.dims[1] = w->shape.dims[0];
    if (!record) {
        view2d(x, x->shape.dims[0], x->shape.dims[1], &v[0]);
        view2d(w, w->shape.dims[0], w->shape.dims[1], &v[1]);
        if (bias) {
            lam__tensor_view(bias, &v[2]);
        }
        /* Tried directly: a backend without LINEAR (or without it for these operands) answers
         * LAM_ERR_UNSUPPORTED, and the basic ops below take over. No supports() probe on the
         * hot path (it checked every operand a second time). */
        lam_tensor *o;
        st = lam__tensor_alloc(ctx, &os, &o);
        if (st != LAM_OK) {
            return st;
        }
        if (o->numel == 0) {
            *out = o;
            return LAM_OK;
        }
        view2d(o, os.dims[0], os.dims[1], &vo);
        double sc[4] = {1.0, 0.0, 0, 0};
        int64_t in[4] = {0, 1, (int64_t)act, 0};
        st = lam__execute(ctx, LAM_OP_LINEAR, v, bias ? 3 : 2, &vo, sc, in);
        if (st == LAM_OK) {
            *out = o;
            return LAM_OK;
        }
        lam_tensor_release(o);
        if (st != LAM_ERR_UNSUPPORTED) {
            return st;
        }
    }
    /* The same from basic ops (and what autograd records). */
    lam_tensor *y = NULL, *z = NULL;
    st = lam_op_matmul(x, w, 0, 1, &y);
    if (st == LAM_OK && bias != NULL) {
        st = lam_op_add(y, bias, &z);
        lam_tensor_release(y);
        y = z;
        z = NULL;
    }
    if (st == LAM_OK && act != LAM_OP_INVALID) {
        st = lam__op_unary(act, y, &z);
        lam_tensor_release(y);
        y = z;
    }
    if (st != LAM_OK) {
        lam_tensor_release(y);
        return st;
    }
    *out = y;
    return LAM_OK;
}
