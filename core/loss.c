/* Losses, written with front-end ops so autograd differentiates them on every backend. */
#include "error.h"
#include "ops.h"
#include "shape.h"
#include "tensor.h"

#include <math.h>
#include <stdlib.h>

/* The labels as doubles: float32 class numbers, or int32/int64 class indices. */
static lam_status read_labels(const lam_tensor *labels, double *y, size_t n) {
    const char *fn = "softmax_cross_entropy";
    lam_dtype dt = lam_tensor_dtype(labels);
    if (dt != LAM_DTYPE_F32 && dt != LAM_DTYPE_I32 && dt != LAM_DTYPE_I64) {
        return lam__error(LAM_ERR_DTYPE,
                          "%s: Dtype mismatch, labels are %s, expected float32, int32 or int64", fn,
                          lam__dtype_name(dt));
    }
    void *raw = malloc((n ? n : 1) * sizeof(int64_t));
    if (raw == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", fn);
    }
    lam_status st = lam_tensor_read_bytes(labels, raw, n * lam_dtype_size(dt));
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        y[i] = dt == LAM_DTYPE_F32   ? (double)((const float *)raw)[i]
               : dt == LAM_DTYPE_I32 ? (double)((const int32_t *)raw)[i]
                                     : (double)((const int64_t *)raw)[i];
    }
    free(raw);
    return st;
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
    /* The labels are read on the host, so nothing below would notice: refuse as every op does. */
    lam_status st = lam__same_ctx("softmax_cross_entropy", logits, labels);
    if (st == LAM_OK) {
        st = lam__need_f32("softmax_cross_entropy", logits, "logits");
    }
    if (st != LAM_OK) {
        return st;
    }
    const lam_shape *ls = lam_tensor_shape(logits), *ys = lam_tensor_shape(labels);
    if (ls->ndim != 2 || ys->ndim != 1 || ys->dims[0] != ls->dims[0]) {
        char b1[160], b2[160];
        return lam__error(LAM_ERR_SHAPE,
                          "softmax_cross_entropy: Shape mismatch, logits %s and labels %s, "
                          "expected (batch, classes) and (batch,)",
                          lam_shape_format(ls, b1, sizeof b1), lam_shape_format(ys, b2, sizeof b2));
    }
    int64_t batch = ls->dims[0], classes = ls->dims[1];
    size_t nb = (size_t)batch, total = nb * (size_t)classes;
    double *y = malloc((nb ? nb : 1) * sizeof *y);
    float *hot = calloc(total ? total : 1, sizeof *hot);
    st = (y && hot) ? read_labels(labels, y, nb)
                    : lam__error(LAM_ERR_OUT_OF_MEMORY, "softmax_cross_entropy: Out of memory");
    for (size_t i = 0; st == LAM_OK && i < nb; i++) {
        if (!(y[i] >= 0.0 && y[i] < (double)classes && y[i] == floor(y[i]))) {
            st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                            "softmax_cross_entropy: Invalid label, labels[%zu] is %g, expected an "
                            "integer in [0, %lld)",
                            i, y[i], (long long)classes);
        } else {
            hot[i * (size_t)classes + (size_t)y[i]] = 1.0f;
        }
    }
    lam_tensor *onehot = NULL, *logp = NULL, *picked = NULL, *sum = NULL;
    if (st == LAM_OK) {
        st = lam_tensor_from_data(lam_tensor_ctx(logits), ls, hot, total, &onehot);
    }
    free(y);
    free(hot);
    if (st == LAM_OK) {
        st = lam_op_log_softmax(logits, -1, &logp);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(logp, onehot, &picked);
    }
    const int32_t last = -1;
    if (st == LAM_OK) {
        st = lam_op_sum(picked, &last, 1, 0, &sum);
    }
    if (st == LAM_OK) {
        st = lam_op_neg(sum, out);
    }
    lam_tensor_release(onehot);
    lam_tensor_release(logp);
    lam_tensor_release(picked);
    lam_tensor_release(sum);
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
