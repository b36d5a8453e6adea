/*
 * Losses, written with front-end ops so that they run on every backend. Softmax cross-entropy
 * records one node with its fused gradient (softmax minus targets); the others are
 * differentiated op by op.
 */
#include "backward.h"
#include "error.h"
#include "ops.h"
#include "shape.h"
#include "tape.h"
#include "tensor.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* -sum(targets * logp, last axis): targets (batch, classes) given as a tensor (one-hot rows or
 * class probabilities), all on the device; differentiable w.r.t. the logits only. */
static lam_status ce_targets(const lam_tensor *targets, lam_tensor *logp, lam_tensor **out) {
    lam_tensor *picked = NULL, *sum = NULL;
    const int32_t last = -1;
    lam_status st = lam_op_mul(logp, targets, &picked);
    if (st == LAM_OK) {
        st = lam_op_sum(picked, &last, 1, 0, &sum);
    }
    if (st == LAM_OK) {
        st = lam_op_neg(sum, out);
    }
    lam_tensor_release(picked);
    lam_tensor_release(sum);
    return st;
}

/* sum(logp * -onehot, last axis): the host-built negated one-hot of float32 class numbers,
 * handed back in *hot_out (the negation is exact, so the loss has the bits of -sum(logp * onehot)
 * without an op for the sign). */
static lam_status ce_host_labels(const lam_tensor *logits, const lam_tensor *labels,
                                 lam_tensor *logp, lam_tensor **out, lam_tensor **hot_out);

/* The gather refused a label: only on this error path are the labels read, to name the
 * first one out of range as the float path does. */
static lam_status label_error(lam_status st, const lam_tensor *labels, int64_t batch,
                              int64_t classes) {
    if (st != LAM_ERR_INVALID_ARGUMENT) {
        return st;
    }
    int64_t *y = malloc((size_t)(batch ? batch : 1) * sizeof *y);
    lam_tensor *y64 = NULL;
    lam_status rs = y ? lam_op_cast(labels, LAM_DTYPE_I64, &y64) : LAM_ERR_OUT_OF_MEMORY;
    if (rs == LAM_OK) {
        rs = lam_tensor_read_bytes(y64, y, (size_t)batch * sizeof *y);
    }
    for (int64_t i = 0; rs == LAM_OK && i < batch; i++) {
        if (y[i] < 0 || y[i] >= classes) {
            st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                            "softmax_cross_entropy: Invalid label, labels[%lld] is %lld, expected "
                            "an integer in [0, %lld)",
                            (long long)i, (long long)y[i], (long long)classes);
            break;
        }
    }
    lam_tensor_release(y64);
    free(y);
    return st == LAM_OK || strncmp(lam_last_error(), "softmax_cross_entropy", 21) == 0
               ? st
               : lam__error_prefix(st, "softmax_cross_entropy: Invalid label");
}

/*
 * Integer labels on the device, nothing read back: the negated one-hot row of label y is
 * step(|y - c|) - 1 over the classes c (a broadcast against a row 0..C-1; the loss is then
 * sum(logp * -onehot), the exact bits of -sum(logp * onehot), handed back in *hot_out as the
 * ce_host_labels' is), and a gather of the
 * labels from a (C, 1) column of zeros checks that every label is in [0, C) (the gather names
 * the position and the value; an asynchronous backend reports it when the result is read, which
 * is why its zeros are added to the loss).
 */
static lam_status ce_device_labels(const lam_tensor *logits, const lam_tensor *labels,
                                   lam_tensor *logp, lam_tensor **out, lam_tensor **hot_out) {
    const lam_shape *ls = lam_tensor_shape(logits);
    int64_t batch = ls->dims[0], classes = ls->dims[1];
    lam_ctx *ctx = lam_tensor_ctx(logits);
    lam_tensor *zeros = NULL, *check = NULL, *y = NULL, *row = NULL, *hot = NULL, *tmp = NULL;
    lam_tensor *picked = NULL, *neg = NULL;
    float *iota = malloc((size_t)(classes ? classes : 1) * sizeof *iota);
    lam_status st = iota ? LAM_OK : lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory");
    for (int64_t c = 0; iota != NULL && c < classes; c++) {
        iota[c] = (float)c;
    }
    lam_shape col = {.ndim = 2, .dims = {classes, 1}}, yb = {.ndim = 2, .dims = {batch, 1}};
    lam_shape rs = {.ndim = 2, .dims = {1, classes}}, flat = {.ndim = 1, .dims = {batch}};
    if (st == LAM_OK) {
        st = lam_tensor_full(ctx, &col, 0.0f, &zeros);
    }
    if (st == LAM_OK && (st = lam_op_gather_rows(zeros, labels, &check)) != LAM_OK) {
        st = label_error(st, labels, batch, classes);
    }
    if (st == LAM_OK) {
        st = lam_op_cast(labels, LAM_DTYPE_F32, &tmp);
    }
    if (st == LAM_OK) {
        st = lam_tensor_reshape(tmp, &yb, &y);
    }
    if (st == LAM_OK) {
        st = lam_tensor_from_data(ctx, &rs, iota, (size_t)classes, &row);
    }
    if (st == LAM_OK) {
        lam_tensor_release(tmp);
        tmp = NULL;
        st = lam_op_sub(y, row, &tmp); /* (batch, classes) */
    }
    if (st == LAM_OK) {
        st = lam_op_abs(tmp, &hot);
    }
    if (st == LAM_OK) {
        lam_tensor_release(tmp);
        tmp = NULL;
        st = lam_op_step(hot, &tmp);
    }
    if (st == LAM_OK) {
        lam_tensor_release(hot);
        hot = NULL;
        st = lam_op_add_scalar(tmp, -1.0f, &hot); /* the negated one-hot: step - 1 */
    }
    const int32_t last = -1;
    if (st == LAM_OK) {
        st = lam_op_mul(logp, hot, &picked);
    }
    if (st == LAM_OK) {
        st = lam_op_sum(picked, &last, 1, 0, &neg); /* -sum(logp * onehot), exactly */
    }
    lam_tensor *check_flat = NULL;
    if (st == LAM_OK) {
        st = lam_tensor_reshape(check, &flat, &check_flat);
    }
    if (st == LAM_OK) {
        st = lam_op_add(neg, check_flat, out);
    }
    if (st == LAM_OK) {
        *hot_out = hot;
        hot = NULL;
    }
    free(iota);
    lam_tensor *all[] = {zeros, check, y, row, hot, tmp, picked, neg, check_flat};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        lam_tensor_release(all[i]);
    }
    return st;
}

/*
 * The fused gradient. With loss_i = -sum_c T_ic logp_ic and logp = log_softmax(z), the
 * gradient w.r.t. the logits is g_i (S_i softmax(z)_ic - T_ic), S_i = sum_c T_ic: three ops
 * (four for dense targets, whose rows need not sum to 1) where the recorded chain of
 * log_softmax, mul, sum and neg took about ten. One-hot rows (labels) have S_i = 1 exactly.
 */
typedef struct ce_grad {
    lam_tensor *logp;    /* log_softmax(logits), retained */
    lam_tensor *targets; /* T (batch, classes), or -T for labels, retained */
    bool onehot;         /* labels: rows of T sum to 1 exactly, and targets holds -T */
} ce_grad;

static void ce_grad_free(void *p) {
    ce_grad *c = p;
    if (c != NULL) {
        lam_tensor_release(c->logp);
        lam_tensor_release(c->targets);
        free(c);
    }
}

static lam_status ce_backward(void *p, const lam__node *n, lam_tensor *g) {
    const ce_grad *c = p;
    const int32_t last = -1;
    lam_tensor *sm = NULL, *rows = NULL, *scaled = NULL, *d = NULL, *gcol = NULL, *grad = NULL;
    const lam_shape *ls = lam_tensor_shape(c->logp);
    const lam_shape col = {.ndim = 2, .dims = {ls->dims[0], 1}};
    lam_status st = lam_op_exp(c->logp, &sm); /* softmax */
    if (st == LAM_OK && !c->onehot) {
        st = lam_op_sum(c->targets, &last, 1, 1, &rows);
        if (st == LAM_OK) {
            st = lam_op_mul(sm, rows, &scaled);
        }
    }
    if (st == LAM_OK) {
        /* softmax - T: for labels softmax + (-T), the same bits */
        st = c->onehot ? lam_op_add(sm, c->targets, &d) : lam_op_sub(scaled, c->targets, &d);
    }
    if (st == LAM_OK) {
        st = lam__tensor_reshape_view(g, &col, &gcol);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(d, gcol, &grad);
    }
    if (st == LAM_OK) {
        st = lam__grad_accumulate(n->in[0], grad);
    }
    lam_tensor *all[] = {sm, rows, scaled, d, gcol, grad};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        lam_tensor_release(all[i]);
    }
    return st;
}

/* Records *out = loss(logits) with the fused gradient when the logits need one. */
static lam_status ce_record(const lam_tensor *logits, lam_tensor *logp, lam_tensor *targets,
                            bool onehot, lam_tensor **out) {
    if (!lam__recording() || !lam__needs_grad(logits)) {
        return LAM_OK;
    }
    ce_grad *c = malloc(sizeof *c);
    if (c == NULL) {
        lam_tensor_release(*out);
        *out = NULL;
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "softmax_cross_entropy: Out of memory");
    }
    c->logp = lam_tensor_retain(logp);
    c->targets = lam_tensor_retain(targets);
    c->onehot = onehot;
    lam_tensor *in[1] = {(lam_tensor *)logits};
    return lam__record_closure(in, 1, out, (lam__closure){ce_backward, c, ce_grad_free});
}

lam_status lam_loss_softmax_cross_entropy(const lam_tensor *logits, const lam_tensor *labels,
                                          lam_tensor **out) {
    if (out == NULL || logits == NULL || labels == NULL) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "softmax_cross_entropy: Invalid argument, NULL tensor or output");
    }
    *out = NULL;
    lam_status st = lam__same_ctx("softmax_cross_entropy", logits, labels);
    if (st == LAM_OK) {
        st = lam__need_f32("softmax_cross_entropy", logits, "logits");
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_dtype dt = lam_tensor_dtype(labels);
    if (dt != LAM_DTYPE_F32 && dt != LAM_DTYPE_I32 && dt != LAM_DTYPE_I64) {
        return lam__error(LAM_ERR_DTYPE,
                          "softmax_cross_entropy: Dtype mismatch, labels are %s, expected float32, "
                          "int32 or int64",
                          lam__dtype_name(dt));
    }
    const lam_shape *ls = lam_tensor_shape(logits), *ys = lam_tensor_shape(labels);
    bool dense = dt == LAM_DTYPE_F32 && ls->ndim == 2 && lam_shape_equal(ys, ls);
    if (!dense && (ls->ndim != 2 || ys->ndim != 1 || ys->dims[0] != ls->dims[0])) {
        char b1[160], b2[160];
        return lam__error(LAM_ERR_SHAPE,
                          "softmax_cross_entropy: Shape mismatch, logits %s and labels %s, "
                          "expected (batch, classes) and (batch,) or (batch, classes)",
                          lam_shape_format(ls, b1, sizeof b1), lam_shape_format(ys, b2, sizeof b2));
    }
    lam_tensor *logp = NULL, *targets = NULL;
    /* The forward's ops are not recorded: one node with the fused gradient stands for them. */
    int was = lam_autograd_record_begin(0);
    st = lam_op_log_softmax(logits, -1, &logp);
    if (st == LAM_OK) {
        if (dense) {
            st = ce_targets(labels, logp, out);
            targets = st == LAM_OK ? lam_tensor_retain((lam_tensor *)labels) : NULL;
        } else if (dt == LAM_DTYPE_F32) {
            st = ce_host_labels(logits, labels, logp, out, &targets);
        } else {
            st = ce_device_labels(logits, labels, logp, out, &targets);
        }
    }
    lam_autograd_record_end(was);
    if (st == LAM_OK) {
        st = ce_record(logits, logp, targets, !dense, out);
    }
    lam_tensor_release(logp);
    lam_tensor_release(targets);
    if (st != LAM_OK && strncmp(lam_last_error(), "softmax_cross_entropy", 21) != 0) {
        st = lam__error_prefix(st, "softmax_cross_entropy");
    }
    return st;
}

static lam_status ce_host_labels(const lam_tensor *logits, const lam_tensor *labels,
                                 lam_tensor *logp, lam_tensor **out, lam_tensor **hot_out) {
    const lam_shape *ls = lam_tensor_shape(logits);
    int64_t batch = ls->dims[0], classes = ls->dims[1];
    size_t nb = (size_t)batch, total = nb * (size_t)classes;
    float *y = malloc((nb ? nb : 1) * sizeof *y);
    float *hot = calloc(total ? total : 1, sizeof *hot);
    lam_status st = (y && hot)
                        ? lam_tensor_read(labels, y, nb)
                        : lam__error(LAM_ERR_OUT_OF_MEMORY, "softmax_cross_entropy: Out of memory");
    for (size_t i = 0; st == LAM_OK && i < nb; i++) {
        double v = (double)y[i];
        if (!(v >= 0.0 && v < (double)classes && v == floor(v))) {
            st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                            "softmax_cross_entropy: Invalid label, labels[%zu] is %g, expected an "
                            "integer in [0, %lld)",
                            i, v, (long long)classes);
        } else {
            hot[i * (size_t)classes + (size_t)v] = -1.0f;
        }
    }
    lam_tensor *onehot = NULL, *picked = NULL;
    if (st == LAM_OK) {
        st = lam_tensor_from_data(lam_tensor_ctx(logits), ls, hot, total, &onehot);
    }
    free(y);
    free(hot);
    if (st == LAM_OK) {
        st = lam_op_mul(logp, onehot, &picked);
    }
    const int32_t last = -1;
    if (st == LAM_OK) {
        st = lam_op_sum(picked, &last, 1, 0, out);
    }
    if (st == LAM_OK) {
        *hot_out = onehot;
        onehot = NULL;
    }
    lam_tensor_release(onehot);
    lam_tensor_release(picked);
    return st;
}

lam_status lam_loss_l2(const lam_tensor *pred, const lam_tensor *label, lam_tensor **out) {
    if (out == NULL || pred == NULL || label == NULL) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "l2_loss: Invalid argument, NULL tensor or "
                                                    "output");
    }
    *out = NULL;
    lam_status st = lam__need_f32("l2_loss", pred, "pred");
    if (st == LAM_OK) {
        st = lam__need_f32("l2_loss", label, "label");
    }
    if (st != LAM_OK) {
        return st;
    }
    const lam_shape *ps = lam_tensor_shape(pred);
    if (!lam_shape_equal(ps, lam_tensor_shape(label)) || ps->ndim < 1) {
        char b1[160], b2[160];
        return lam__error(LAM_ERR_SHAPE, "l2_loss: Shape mismatch, pred %s, label %s",
                          lam_shape_format(ps, b1, sizeof b1),
                          lam_shape_format(lam_tensor_shape(label), b2, sizeof b2));
    }
    lam_tensor *d = NULL, *sq = NULL, *m = NULL;
    int32_t axes[LAM_MAX_DIMS];
    uint32_t n = 0;
    for (uint32_t i = 1; i < ps->ndim; i++) {
        axes[n++] = (int32_t)i;
    }
    st = lam_op_sub(pred, label, &d);
    if (st == LAM_OK) {
        st = lam_op_square(d, &sq);
    }
    if (st == LAM_OK) {
        st = n ? lam_op_mean(sq, axes, n, 0, &m) : (m = lam_tensor_retain(sq), LAM_OK);
    }
    if (st == LAM_OK) {
        st = lam_op_mul_scalar(m, 0.5f, out);
    }
    lam_tensor_release(d);
    lam_tensor_release(sq);
    lam_tensor_release(m);
    return st;
}
