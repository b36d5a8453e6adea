/*
 * The float32 ops of 1.0 refuse operands of other dtypes up front (LAM_ERR_DTYPE naming the
 * operand, its dtype and float32) instead of handing integer bits to a float kernel; copy and
 * assign move any dtype when source and destination agree. Worked by hand.
 */
#include "test_util.h"

TestSuite(dtype_checks, .fini = tu_fini);

static lam_tensor *make(lam_dtype dt, lam_shape s) {
    lam_tensor *t = NULL;
    lam_status st = lam_tensor_create_dtype(tu_ctx(), dt, &s, &t);
    cr_assert_eq(st, LAM_OK, "lam_tensor_create_dtype: %s", lam_last_error());
    return t;
}

static lam_tensor *f32(lam_shape s) {
    return make(LAM_DTYPE_F32, s);
}

/* The call failed with LAM_ERR_DTYPE, the exact message, and left out NULL. */
static void refused(lam_status st, lam_tensor *const *out, const char *msg) {
    tu_assert_status(st, LAM_ERR_DTYPE, msg);
    cr_assert_str_eq(lam_last_error(), msg);
    cr_assert_null(*out, "%s: out must be NULL", msg);
}

typedef lam_status (*binary_fn)(const lam_tensor *, const lam_tensor *, lam_tensor **);

Test(dtype_checks, binary_ops_refuse_integer_operands) {
    static const struct {
        binary_fn fn;
        const char *name;
    } ops[] = {{lam_op_add, "add"},
               {lam_op_sub, "sub"},
               {lam_op_mul, "mul"},
               {lam_op_div, "div"},
               {lam_op_maximum, "maximum"},
               {lam_op_minimum, "minimum"},
               {lam_op_greater_equal, "greater_equal"}};
    lam_tensor *f = f32(TU_SHAPE(2, 3)), *i = make(LAM_DTYPE_I32, TU_SHAPE(2, 3));
    lam_tensor *l = make(LAM_DTYPE_I64, TU_SHAPE(3)), *u = make(LAM_DTYPE_U8, TU_SHAPE(2, 3));
    char want[200];
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        lam_tensor *out = TU_POISON;
        snprintf(want, sizeof want,
                 "%s: Dtype mismatch, the second operand is int32, expected float32", ops[k].name);
        refused(ops[k].fn(f, i, &out), &out, want);
        out = TU_POISON;
        snprintf(want, sizeof want,
                 "%s: Dtype mismatch, the first operand is int64, expected float32", ops[k].name);
        refused(ops[k].fn(l, f, &out), &out, want);
        out = TU_POISON;
        snprintf(want, sizeof want,
                 "%s: Dtype mismatch, the first operand is uint8, expected float32", ops[k].name);
        refused(ops[k].fn(u, u, &out), &out, want);
    }
    lam_tensor_release(u);
    lam_tensor_release(l);
    lam_tensor_release(i);
    lam_tensor_release(f);
    tu_assert_released();
}

Test(dtype_checks, unary_and_scalar_ops_refuse_integer_operands) {
    lam_tensor *i = make(LAM_DTYPE_I32, TU_SHAPE(4)), *out = TU_POISON;
    refused(lam_op_exp(i, &out), &out,
            "exp: Dtype mismatch, the operand is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_relu(i, &out), &out,
            "relu: Dtype mismatch, the operand is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_mul_scalar(i, 2.0f, &out), &out,
            "mul_scalar: Dtype mismatch, the operand is int32, expected float32");
    lam_tensor_release(i);
    tu_assert_released();
}

Test(dtype_checks, linear_algebra_refuses_integer_operands) {
    lam_tensor *f = f32(TU_SHAPE(2, 2)), *i = make(LAM_DTYPE_I32, TU_SHAPE(2, 2));
    lam_tensor *b = make(LAM_DTYPE_I64, TU_SHAPE(2)), *out = TU_POISON;
    refused(lam_op_matmul(f, i, 0, 0, &out), &out,
            "matmul: Dtype mismatch, the second operand is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_dot(i, f, &out), &out,
            "dot: Dtype mismatch, the first operand is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_linear(i, f, NULL, LAM_OP_INVALID, &out), &out,
            "linear: Dtype mismatch, x is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_linear(f, i, NULL, LAM_OP_RELU, &out), &out,
            "linear: Dtype mismatch, w is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_linear(f, f, b, LAM_OP_INVALID, &out), &out,
            "linear: Dtype mismatch, bias is int64, expected float32");
    out = TU_POISON;
    refused(lam_op_transpose(i, &out), &out,
            "transpose: Dtype mismatch, the operand is int32, expected float32");
    lam_tensor_release(b);
    lam_tensor_release(i);
    lam_tensor_release(f);
    tu_assert_released();
}

Test(dtype_checks, reductions_argmax_softmax_refuse_integer_operands) {
    lam_tensor *i = make(LAM_DTYPE_I32, TU_SHAPE(2, 3)), *out = TU_POISON;
    const int32_t ax = 1;
    refused(lam_op_sum(i, &ax, 1, 0, &out), &out,
            "sum: Dtype mismatch, the operand is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_mean(i, NULL, 0, 0, &out), &out,
            "mean: Dtype mismatch, the operand is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_max(i, &ax, 1, 1, &out), &out,
            "max: Dtype mismatch, the operand is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_min(i, &ax, 1, 1, &out), &out,
            "min: Dtype mismatch, the operand is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_argmax(i, 1, &out), &out,
            "argmax: Dtype mismatch, the operand is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_softmax(i, 1, &out), &out,
            "softmax: Dtype mismatch, the operand is int32, expected float32");
    out = TU_POISON;
    refused(lam_op_log_softmax(i, -1, &out), &out,
            "log_softmax: Dtype mismatch, the operand is int32, expected float32");
    lam_tensor_release(i);
    tu_assert_released();
}

Test(dtype_checks, losses_check_dtypes_and_take_integer_labels) {
    float logits[6] = {1, 2, 3, 0, 0, 0};
    lam_tensor *lg = tu_tensor(TU_SHAPE(2, 3), logits, 6), *out = TU_POISON;
    lam_tensor *ilg = make(LAM_DTYPE_I32, TU_SHAPE(2, 3));
    lam_tensor *lab = make(LAM_DTYPE_I32, TU_SHAPE(2)), *u = make(LAM_DTYPE_U8, TU_SHAPE(2));
    refused(lam_loss_softmax_cross_entropy(ilg, lab, &out), &out,
            "softmax_cross_entropy: Dtype mismatch, logits is int32, expected float32");
    out = TU_POISON;
    refused(lam_loss_softmax_cross_entropy(lg, u, &out), &out,
            "softmax_cross_entropy: Dtype mismatch, labels are uint8, expected float32, int32 "
            "or int64");
    /* int32 and int64 labels are class indices: row 0 label 2, row 1 label 0 */
    const int32_t l32[2] = {2, 0};
    const int64_t l64[2] = {2, 0};
    lam_tensor *lab64 = make(LAM_DTYPE_I64, TU_SHAPE(2));
    cr_assert_eq(lam_tensor_write_bytes(lab, l32, sizeof l32), LAM_OK);
    cr_assert_eq(lam_tensor_write_bytes(lab64, l64, sizeof l64), LAM_OK);
    /* by hand: -log(e^3 / (e + e^2 + e^3)) and -log(1/3) */
    double r0 = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3.0, r1 = log(3.0);
    lam_tensor *labels[2] = {lab, lab64};
    for (int k = 0; k < 2; k++) {
        out = NULL;
        cr_assert_eq(lam_loss_softmax_cross_entropy(lg, labels[k], &out), LAM_OK, "%s",
                     lam_last_error());
        const float *v = tu_read(out);
        cr_assert(fabs(v[0] - r0) < 1e-5 && fabs(v[1] - r1) < 1e-5, "loss %g %g, expected %g %g",
                  (double)v[0], (double)v[1], r0, r1);
        lam_tensor_release(out);
    }
    const int32_t bad[2] = {3, 0};
    cr_assert_eq(lam_tensor_write_bytes(lab, bad, sizeof bad), LAM_OK);
    out = TU_POISON;
    lam_status st = lam_loss_softmax_cross_entropy(lg, lab, &out);
    if (st == LAM_OK) {
        /* Integer labels stay on the device: an asynchronous backend (Vulkan) reports the
         * range check of its gather when the result is read. */
        float v[2];
        st = lam_tensor_read(out, v, 2);
        tu_assert_status(st, LAM_ERR_INVALID_ARGUMENT, "label 3 of 3 classes, read");
        tu_assert_msg("index at position 0 is 3, outside [0, 3)", "label 3 of 3 classes");
        lam_tensor_release(out);
    } else {
        tu_assert_status(st, LAM_ERR_INVALID_ARGUMENT, "label 3 of 3 classes");
        tu_assert_msg("softmax_cross_entropy: Invalid label, labels[0] is 3, expected an integer "
                      "in [0, 3)",
                      "label 3 of 3 classes");
        cr_assert_null(out);
    }
    out = TU_POISON;
    refused(lam_loss_l2(lg, ilg, &out), &out,
            "l2_loss: Dtype mismatch, label is int32, expected float32");
    lam_tensor *all[] = {lg, ilg, lab, u, lab64};
    for (int k = 0; k < 5; k++) {
        lam_tensor_release(all[k]);
    }
    tu_assert_released();
}

Test(dtype_checks, fill_refuses_integers_assign_needs_equal_dtypes) {
    lam_tensor *i = make(LAM_DTYPE_I32, TU_SHAPE(3)), *f = f32(TU_SHAPE(3));
    tu_assert_status(lam_op_fill(i, 1.0f), LAM_ERR_DTYPE, "fill int32");
    cr_assert_str_eq(lam_last_error(),
                     "fill: Dtype mismatch, the tensor is int32, expected float32");
    tu_assert_status(lam_op_assign(f, i), LAM_ERR_DTYPE, "assign int32 to float32");
    cr_assert_str_eq(lam_last_error(), "assign: Dtype mismatch, the destination is float32 and "
                                       "the source int32 (convert with lam_op_cast)");
    lam_tensor_release(f);
    lam_tensor_release(i);
    tu_assert_released();
}

Test(dtype_checks, copy_and_assign_move_integer_tensors) {
    const int32_t v[4] = {7, -8, 2147483647, INT32_MIN};
    lam_tensor *a = make(LAM_DTYPE_I32, TU_SHAPE(2, 2)), *b = make(LAM_DTYPE_I32, TU_SHAPE(2, 2));
    cr_assert_eq(lam_tensor_write_bytes(a, v, sizeof v), LAM_OK, "%s", lam_last_error());
    lam_tensor *c = NULL;
    cr_assert_eq(lam_op_copy(a, &c), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_dtype(c), LAM_DTYPE_I32, "copy keeps the dtype");
    tu_assert_shape(c, 2, (const int64_t[]){2, 2}, "copy");
    int32_t got[4];
    cr_assert_eq(lam_tensor_read_bytes(c, got, sizeof got), LAM_OK, "%s", lam_last_error());
    cr_assert(memcmp(got, v, sizeof v) == 0, "copy: %d %d %d %d", got[0], got[1], got[2], got[3]);
    cr_assert_eq(lam_op_assign(b, a), LAM_OK, "%s", lam_last_error());
    memset(got, 0, sizeof got);
    cr_assert_eq(lam_tensor_read_bytes(b, got, sizeof got), LAM_OK, "%s", lam_last_error());
    cr_assert(memcmp(got, v, sizeof v) == 0, "assign: %d %d %d %d", got[0], got[1], got[2], got[3]);
    lam_tensor_release(c);
    lam_tensor_release(b);
    lam_tensor_release(a);
    tu_assert_released();
}
