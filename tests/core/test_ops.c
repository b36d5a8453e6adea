/*
 * Front-end ops against NumPy: matmul, dot, broadcasting binary ops, scalar ops, unary ops,
 * transpose, copy, fill and assign, and their shape and argument errors.
 * References: ref/op_refs.h, written by ref/gen_op_refs.py.
 */
#include "test_util.h"

TestSuite(ops, .fini = tu_fini);

typedef lam_status (*binary_fn)(const lam_tensor *, const lam_tensor *, lam_tensor **);
typedef lam_status (*scalar_fn)(const lam_tensor *, float, lam_tensor **);
typedef lam_status (*unary_fn)(const lam_tensor *, lam_tensor **);

/* ---- matmul and dot ----------------------------------------------------------------------- */

static void check_matmul(const ref_array *a, const ref_array *b, int32_t ta, int32_t tb,
                         const ref_array *want, double rtol, double atol, const char *what) {
    lam_tensor *x = tu_from_ref(a), *y = tu_from_ref(b), *out = TU_POISON;
    lam_status st = lam_op_matmul(x, y, ta, tb, &out);
    tu_assert_result(st, out, want, rtol, atol, what);
    tu_assert_exact(x, a, "matmul left operand afterwards");
    tu_assert_exact(y, b, "matmul right operand afterwards");
    lam_tensor_release(out);
    lam_tensor_release(x);
    lam_tensor_release(y);
    tu_assert_released();
}

Test(ops, matmul_matches_numpy_without_transpose) {
    check_matmul(&ref_matmul_nn_a, &ref_matmul_nn_b, 0, 0, &ref_matmul_nn_out, TU_RTOL, TU_ATOL,
                 "matmul (3, 5) x (5, 4)");
}

Test(ops, matmul_matches_numpy_with_transposed_a) {
    check_matmul(&ref_matmul_tn_a, &ref_matmul_tn_b, 1, 0, &ref_matmul_tn_out, TU_RTOL, TU_ATOL,
                 "matmul (5, 3)^T x (5, 4)");
}

Test(ops, matmul_matches_numpy_with_transposed_b) {
    check_matmul(&ref_matmul_nt_a, &ref_matmul_nt_b, 0, 1, &ref_matmul_nt_out, TU_RTOL, TU_ATOL,
                 "matmul (3, 5) x (4, 5)^T");
}

Test(ops, matmul_matches_numpy_with_both_transposed) {
    check_matmul(&ref_matmul_tt_a, &ref_matmul_tt_b, 1, 1, &ref_matmul_tt_out, TU_RTOL, TU_ATOL,
                 "matmul (5, 3)^T x (4, 5)^T");
}

Test(ops, matmul_matches_numpy_for_dense_sized_product) {
    check_matmul(&ref_matmul_big_x, &ref_matmul_big_w, 0, 0, &ref_matmul_big_out, TU_RTOL_LOOSE,
                 TU_ATOL_LOOSE, "matmul (2, 20) x (20, 256)");
}

Test(ops, matmul_matches_numpy_for_dense_sized_transposed_weight) {
    check_matmul(&ref_matmul_big_x, &ref_matmul_big_wt, 0, 1, &ref_matmul_big_nt_out, TU_RTOL_LOOSE,
                 TU_ATOL_LOOSE, "matmul (2, 20) x (256, 20)^T");
}

Test(ops, matmul_honours_transpose_in_shape_check) {
    /* (2, 3) x (5, 3): inner dims differ as stored, agree once b is transposed. */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[15];
    for (int i = 0; i < 15; i++) {
        b[i] = (float)(i + 1);
    }
    lam_tensor *x = tu_tensor(TU_SHAPE(2, 3), a, 6), *y = tu_tensor(TU_SHAPE(5, 3), b, 15);
    lam_tensor *out = TU_POISON;
    tu_assert_status(lam_op_matmul(x, y, 0, 0, &out), LAM_ERR_SHAPE, "matmul (2, 3) x (5, 3)");
    cr_assert_null(out);
    cr_assert_eq(lam_op_matmul(x, y, 0, 1, &out), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(out, 2, (const int64_t[]){2, 5}, "matmul (2, 3) x (5, 3)^T");
    /* worked by hand: row i of a . row j of b */
    const float *got = tu_read(out);
    cr_assert(got[0] == 14.0f && got[1] == 32.0f && got[4] == 86.0f, "%g %g %g", (double)got[0],
              (double)got[1], (double)got[4]);
    cr_assert(got[5] == 32.0f && got[9] == 212.0f, "%g %g", (double)got[5], (double)got[9]);
    lam_tensor_release(out);
    lam_tensor_release(x);
    lam_tensor_release(y);
    tu_assert_released();
}

Test(ops, matmul_rejects_inner_dim_mismatch) {
    float a[6] = {0}, b[20] = {0};
    lam_tensor *x = tu_tensor(TU_SHAPE(2, 3), a, 6), *y = tu_tensor(TU_SHAPE(4, 5), b, 20);
    lam_tensor *out = TU_POISON;
    lam_status st = lam_op_matmul(x, y, 0, 0, &out);
    tu_assert_status(st, LAM_ERR_SHAPE, "matmul (2, 3) x (4, 5)");
    cr_assert_null(out);
    tu_assert_msg("matmul", "matmul (2, 3) x (4, 5)");
    tu_assert_msg("shape", "matmul (2, 3) x (4, 5)");
    tu_assert_msg("(2, 3)", "matmul (2, 3) x (4, 5)");
    tu_assert_msg("(4, 5)", "matmul (2, 3) x (4, 5)");
    lam_tensor_release(x);
    lam_tensor_release(y);
    tu_assert_released();
}

Test(ops, matmul_rejects_non_2d_operand) {
    float a[3] = {1, 2, 3}, b[6] = {0};
    lam_tensor *x = tu_tensor(TU_SHAPE(3), a, 3), *y = tu_tensor(TU_SHAPE(3, 2), b, 6);
    lam_tensor *out = TU_POISON;
    tu_assert_status(lam_op_matmul(x, y, 0, 0, &out), LAM_ERR_SHAPE, "matmul (3,) x (3, 2)");
    cr_assert_null(out);
    tu_assert_msg("matmul", "matmul (3,) x (3, 2)");
    tu_assert_msg("(3,)", "matmul (3,) x (3, 2)");
    lam_tensor_release(x);
    lam_tensor_release(y);
    tu_assert_released();
}

static void check_dot(const ref_array *a, const ref_array *b, const ref_array *want,
                      const char *what) {
    lam_tensor *x = tu_from_ref(a), *y = tu_from_ref(b), *out = TU_POISON;
    lam_status st = lam_op_dot(x, y, &out);
    tu_assert_result(st, out, want, TU_RTOL, TU_ATOL, what);
    lam_tensor_release(out);
    lam_tensor_release(x);
    lam_tensor_release(y);
    tu_assert_released();
}

Test(ops, dot_gives_scalar_shape_for_two_vectors) {
    check_dot(&ref_dot_v5, &ref_dot_u5, &ref_dot_vv_out, "dot (5,) . (5,)");
}

Test(ops, dot_multiplies_matrix_by_vector) {
    check_dot(&ref_dot_m35, &ref_dot_v5, &ref_dot_mv_out, "dot (3, 5) . (5,)");
}

Test(ops, dot_multiplies_vector_by_matrix) {
    check_dot(&ref_dot_v5, &ref_dot_n54, &ref_dot_vm_out, "dot (5,) . (5, 4)");
}

Test(ops, dot_multiplies_matrices) {
    check_dot(&ref_dot_m35, &ref_dot_n54, &ref_dot_mm_out, "dot (3, 5) . (5, 4)");
}

Test(ops, dot_rejects_length_mismatch) {
    float a[3] = {1, 2, 3}, b[4] = {1, 2, 3, 4};
    lam_tensor *x = tu_tensor(TU_SHAPE(3), a, 3), *y = tu_tensor(TU_SHAPE(4), b, 4);
    lam_tensor *out = TU_POISON;
    tu_assert_status(lam_op_dot(x, y, &out), LAM_ERR_SHAPE, "dot (3,) . (4,)");
    cr_assert_null(out);
    tu_assert_msg("dot", "dot (3,) . (4,)");
    tu_assert_msg("shape", "dot (3,) . (4,)");
    tu_assert_msg("(3,)", "dot (3,) . (4,)");
    tu_assert_msg("(4,)", "dot (3,) . (4,)");
    lam_tensor_release(x);
    lam_tensor_release(y);
    tu_assert_released();
}

Test(ops, dot_rejects_matrix_vector_mismatch) {
    float a[15] = {0}, b[4] = {0};
    lam_tensor *x = tu_tensor(TU_SHAPE(3, 5), a, 15), *y = tu_tensor(TU_SHAPE(4), b, 4);
    lam_tensor *out = TU_POISON;
    tu_assert_status(lam_op_dot(x, y, &out), LAM_ERR_SHAPE, "dot (3, 5) . (4,)");
    cr_assert_null(out);
    tu_assert_msg("dot", "dot (3, 5) . (4,)");
    tu_assert_msg("(3, 5)", "dot (3, 5) . (4,)");
    tu_assert_msg("(4,)", "dot (3, 5) . (4,)");
    lam_tensor_release(x);
    lam_tensor_release(y);
    tu_assert_released();
}

/* ---- binary ops with broadcasting ------------------------------------------------------------ */

static void check_binary(binary_fn fn, const ref_array *a, const ref_array *b,
                         const ref_array *want, const char *what) {
    lam_tensor *x = tu_from_ref(a), *y = tu_from_ref(b), *out = TU_POISON;
    lam_status st = fn(x, y, &out);
    tu_assert_result(st, out, want, TU_RTOL, TU_ATOL, what);
    tu_assert_exact(x, a, "left operand afterwards");
    tu_assert_exact(y, b, "right operand afterwards");
    lam_tensor_release(out);
    lam_tensor_release(x);
    lam_tensor_release(y);
    tu_assert_released();
}

/* Cases: same (2,3)&(2,3); row (2,3)&(3,); outer (2,1)&(1,3); rank3 (4,1,3)&(2,1);
 * scalar_rhs (2,3)&(); scalar_lhs ()&(2,3). */
#define BINARY_CASE(op, c)                                                                         \
    Test(ops, op##_matches_numpy_##c) {                                                            \
        check_binary(lam_op_##op, &ref_bin_##c##_a, &ref_bin_##c##_b, &ref_##op##_##c##_out,       \
                     #op " " #c);                                                                  \
    }
#define BINARY_CASES(op)                                                                           \
    BINARY_CASE(op, same)                                                                          \
    BINARY_CASE(op, row)                                                                           \
    BINARY_CASE(op, outer)                                                                         \
    BINARY_CASE(op, rank3)                                                                         \
    BINARY_CASE(op, scalar_rhs)                                                                    \
    BINARY_CASE(op, scalar_lhs)

BINARY_CASES(add)
BINARY_CASES(sub)
BINARY_CASES(mul)
BINARY_CASES(div)
BINARY_CASES(maximum)
BINARY_CASES(minimum)

Test(ops, maximum_matches_numpy_with_ties) {
    check_binary(lam_op_maximum, &ref_minmax_ties_a, &ref_minmax_ties_b, &ref_maximum_ties_out,
                 "maximum with ties");
}

Test(ops, minimum_matches_numpy_with_ties) {
    check_binary(lam_op_minimum, &ref_minmax_ties_a, &ref_minmax_ties_b, &ref_minimum_ties_out,
                 "minimum with ties");
}

Test(ops, binary_ops_reject_incompatible_broadcast) {
    static const struct {
        binary_fn fn;
        const char *name;
    } ops[] = {{lam_op_add, "add"}, {lam_op_sub, "sub"},         {lam_op_mul, "mul"},
               {lam_op_div, "div"}, {lam_op_maximum, "maximum"}, {lam_op_minimum, "minimum"}};
    float a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {1, 2, 3, 4};
    lam_tensor *x = tu_tensor(TU_SHAPE(2, 3), a, 6), *y = tu_tensor(TU_SHAPE(4), b, 4);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        lam_tensor *out = TU_POISON;
        tu_assert_status(ops[i].fn(x, y, &out), LAM_ERR_SHAPE, ops[i].name);
        cr_assert_null(out, "%s: *out must be NULL", ops[i].name);
        tu_assert_msg(ops[i].name, ops[i].name);
        tu_assert_msg("shape", ops[i].name);
        tu_assert_msg("(2, 3)", ops[i].name);
        tu_assert_msg("(4,)", ops[i].name);
    }
    lam_tensor_release(x);
    lam_tensor_release(y);
    tu_assert_released();
}

Test(ops, add_rejects_incompatible_broadcast_of_equal_rank) {
    float a[6] = {0}, b[6] = {0};
    lam_tensor *x = tu_tensor(TU_SHAPE(2, 3), a, 6), *y = tu_tensor(TU_SHAPE(3, 2), b, 6);
    lam_tensor *out = TU_POISON;
    tu_assert_status(lam_op_add(x, y, &out), LAM_ERR_SHAPE, "add (2, 3) + (3, 2)");
    cr_assert_null(out);
    tu_assert_msg("add", "add (2, 3) + (3, 2)");
    tu_assert_msg("(2, 3)", "add (2, 3) + (3, 2)");
    tu_assert_msg("(3, 2)", "add (2, 3) + (3, 2)");
    lam_tensor_release(x);
    lam_tensor_release(y);
    tu_assert_released();
}

/* ---- scalar ops ------------------------------------------------------------------------------ */

static void check_scalar(scalar_fn fn, const ref_array *a, float s, const ref_array *want,
                         const char *what) {
    lam_tensor *x = tu_from_ref(a), *out = TU_POISON;
    lam_status st = fn(x, s, &out);
    tu_assert_result(st, out, want, TU_RTOL, TU_ATOL, what);
    tu_assert_exact(x, a, "operand afterwards");
    lam_tensor_release(out);
    lam_tensor_release(x);
    tu_assert_released();
}

Test(ops, add_scalar_matches_numpy) {
    check_scalar(lam_op_add_scalar, &ref_scalar_x, REF_SCALAR_S, &ref_add_scalar_out, "x + 1.5");
}

Test(ops, sub_scalar_matches_numpy) {
    check_scalar(lam_op_sub_scalar, &ref_scalar_x, REF_SCALAR_S, &ref_sub_scalar_out, "x - 1.5");
}

Test(ops, rsub_scalar_matches_numpy) {
    check_scalar(lam_op_rsub_scalar, &ref_scalar_x, REF_SCALAR_S, &ref_rsub_scalar_out, "1.5 - x");
}

Test(ops, mul_scalar_matches_numpy) {
    check_scalar(lam_op_mul_scalar, &ref_scalar_x, REF_SCALAR_S, &ref_mul_scalar_out, "x * 1.5");
}

Test(ops, div_scalar_matches_numpy) {
    check_scalar(lam_op_div_scalar, &ref_scalar_x, REF_SCALAR_S, &ref_div_scalar_out, "x / 1.5");
}

Test(ops, rdiv_scalar_matches_numpy) {
    check_scalar(lam_op_rdiv_scalar, &ref_scalar_x, REF_SCALAR_S, &ref_rdiv_scalar_out, "1.5 / x");
}

Test(ops, pow_scalar_matches_numpy_for_fractional_exponent) {
    check_scalar(lam_op_pow_scalar, &ref_pow_pos_x, REF_POW_FRAC, &ref_pow_frac_out, "x ** 2.5");
}

Test(ops, pow_scalar_matches_numpy_for_square_root) {
    check_scalar(lam_op_pow_scalar, &ref_pow_pos_x, REF_POW_HALF, &ref_pow_half_out, "x ** 0.5");
}

Test(ops, pow_scalar_matches_numpy_for_integer_exponent_of_negatives) {
    check_scalar(lam_op_pow_scalar, &ref_scalar_x, REF_POW_CUBE, &ref_pow_cube_out, "x ** 3");
}

/* ---- unary ops ------------------------------------------------------------------------------- */

static void check_unary(unary_fn fn, const ref_array *a, const ref_array *want, double rtol,
                        double atol, const char *what) {
    lam_tensor *x = tu_from_ref(a), *out = TU_POISON;
    lam_status st = fn(x, &out);
    tu_assert_result(st, out, want, rtol, atol, what);
    tu_assert_exact(x, a, "operand afterwards");
    lam_tensor_release(out);
    lam_tensor_release(x);
    tu_assert_released();
}

Test(ops, neg_matches_numpy) {
    check_unary(lam_op_neg, &ref_unary_wide_x, &ref_neg_out, 0.0, 0.0, "neg");
}

Test(ops, abs_matches_numpy) {
    check_unary(lam_op_abs, &ref_unary_wide_x, &ref_abs_out, 0.0, 0.0, "abs");
}

Test(ops, square_matches_numpy) {
    check_unary(lam_op_square, &ref_unary_wide_x, &ref_square_out, TU_RTOL, TU_ATOL, "square");
}

Test(ops, sqrt_matches_numpy) {
    check_unary(lam_op_sqrt, &ref_unary_pos_x, &ref_sqrt_out, TU_RTOL, TU_ATOL, "sqrt");
}

Test(ops, exp_matches_numpy_including_large_magnitudes) {
    check_unary(lam_op_exp, &ref_unary_mid_x, &ref_exp_out, TU_RTOL_LOOSE, TU_ATOL, "exp");
}

Test(ops, log_matches_numpy) {
    check_unary(lam_op_log, &ref_unary_pos_x, &ref_log_out, TU_RTOL, TU_ATOL, "log");
}

Test(ops, relu_matches_numpy) {
    check_unary(lam_op_relu, &ref_unary_wide_x, &ref_relu_out, 0.0, 0.0, "relu");
}

Test(ops, sigmoid_matches_numpy_including_large_magnitudes) {
    check_unary(lam_op_sigmoid, &ref_unary_wide_x, &ref_sigmoid_out, TU_RTOL, TU_ATOL, "sigmoid");
}

Test(ops, tanh_matches_numpy_including_large_magnitudes) {
    check_unary(lam_op_tanh, &ref_unary_wide_x, &ref_tanh_out, TU_RTOL, TU_ATOL, "tanh");
}

Test(ops, softrelu_matches_numpy_including_large_magnitudes) {
    check_unary(lam_op_softrelu, &ref_unary_wide_x, &ref_softrelu_out, TU_RTOL, TU_ATOL,
                "softrelu");
}

Test(ops, sigmoid_and_softrelu_stay_finite_and_in_range_at_extremes) {
    /* Stricter than the tolerance: no NaN or inf, sigmoid in [0, 1], softrelu >= 0 and
     * softrelu(x) == x to float precision for large x (a naive log1p(exp(x)) overflows). */
    const float x[4] = {-1000.0f, -100.0f, 100.0f, 1000.0f};
    lam_tensor *t = tu_tensor(TU_SHAPE(4), x, 4), *sig = NULL, *sr = NULL;
    cr_assert_eq(lam_op_sigmoid(t, &sig), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_softrelu(t, &sr), LAM_OK, "%s", lam_last_error());
    const float *g = tu_read(sig);
    for (int i = 0; i < 4; i++) {
        cr_assert(isfinite(g[i]) && g[i] >= 0.0f && g[i] <= 1.0f, "sigmoid(%g) = %g", (double)x[i],
                  (double)g[i]);
    }
    cr_assert(g[0] < 1e-30f && g[3] == 1.0f, "sigmoid(-1000) = %g, sigmoid(1000) = %g",
              (double)g[0], (double)g[3]);
    g = tu_read(sr);
    for (int i = 0; i < 4; i++) {
        cr_assert(isfinite(g[i]) && g[i] >= 0.0f, "softrelu(%g) = %g", (double)x[i], (double)g[i]);
    }
    cr_assert(g[0] < 1e-30f && g[2] == 100.0f && g[3] == 1000.0f,
              "softrelu(-1000) = %g, softrelu(100) = %g, softrelu(1000) = %g", (double)g[0],
              (double)g[2], (double)g[3]);
    lam_tensor_release(sig);
    lam_tensor_release(sr);
    lam_tensor_release(t);
    tu_assert_released();
}

/* ---- transpose, copy, fill, assign ----------------------------------------------------------- */

Test(ops, transpose_matches_numpy) {
    check_unary(lam_op_transpose, &ref_transpose_x, &ref_transpose_out, 0.0, 0.0, "transpose");
}

Test(ops, transpose_rejects_non_2d) {
    float a[24] = {0};
    lam_tensor *x = tu_tensor(TU_SHAPE(2, 3, 4), a, 24), *out = TU_POISON;
    tu_assert_status(lam_op_transpose(x, &out), LAM_ERR_SHAPE, "transpose of (2, 3, 4)");
    cr_assert_null(out);
    tu_assert_msg("transpose", "transpose of (2, 3, 4)");
    tu_assert_msg("(2, 3, 4)", "transpose of (2, 3, 4)");
    lam_tensor_release(x);
    tu_assert_released();
}

Test(ops, copy_gives_independent_tensor_with_equal_values) {
    lam_tensor *x = tu_from_ref(&ref_transpose_x), *c = TU_POISON;
    cr_assert_eq(lam_op_copy(x, &c), LAM_OK, "%s", lam_last_error());
    cr_assert(c != NULL && c != x);
    cr_assert(lam_tensor_ctx(c) == lam_tensor_ctx(x));
    tu_assert_exact(c, &ref_transpose_x, "copy");
    cr_assert_eq(lam_op_fill(c, -1.0f), LAM_OK, "%s", lam_last_error());
    tu_assert_exact(x, &ref_transpose_x, "original after the copy was filled");
    lam_tensor_release(c);
    lam_tensor_release(x);
    tu_assert_released();
}

Test(ops, fill_sets_every_element) {
    lam_tensor *x = tu_from_ref(&ref_red_x);
    cr_assert_eq(lam_op_fill(x, 0.375f), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(x, 3, (const int64_t[]){2, 3, 4}, "filled");
    tu_assert_all(x, 0.375f, "filled");
    lam_tensor_release(x);
    tu_assert_released();
}

Test(ops, fill_keeps_the_sign_of_negative_zero) {
    lam_tensor *x = tu_from_ref(&ref_red_x);
    cr_assert_eq(lam_op_fill(x, -0.0f), LAM_OK, "%s", lam_last_error());
    const float *g = tu_read(x);
    for (int i = 0; i < 24; i++) {
        cr_assert(g[i] == 0.0f && signbit(g[i]), "element %d is %g, expected -0.0", i,
                  (double)g[i]);
    }
    lam_tensor_release(x);
    tu_assert_released();
}

static void check_assign(const ref_array *src, const ref_array *want, const char *what) {
    float zeros[6] = {0};
    lam_tensor *dst = tu_tensor(TU_SHAPE(2, 3), zeros, 6);
    lam_tensor *s = tu_from_ref(src);
    cr_assert_eq(lam_op_assign(dst, s), LAM_OK, "%s: %s", what, lam_last_error());
    tu_assert_exact(dst, want, what);
    tu_assert_exact(s, src, "source afterwards");
    lam_tensor_release(s);
    lam_tensor_release(dst);
    tu_assert_released();
}

Test(ops, assign_copies_same_shape) {
    check_assign(&ref_bin_same_a, &ref_bin_same_a, "assign (2, 3) <- (2, 3)");
}

Test(ops, assign_broadcasts_row) {
    check_assign(&ref_assign_row_src, &ref_assign_row_out, "assign (2, 3) <- (3,)");
}

Test(ops, assign_broadcasts_column) {
    check_assign(&ref_assign_col_src, &ref_assign_col_out, "assign (2, 3) <- (2, 1)");
}

Test(ops, assign_broadcasts_scalar) {
    check_assign(&ref_assign_scalar_src, &ref_assign_scalar_out, "assign (2, 3) <- ()");
}

Test(ops, assign_rejects_incompatible_shape) {
    const float d[6] = {1, 2, 3, 4, 5, 6}, s[4] = {9, 9, 9, 9};
    lam_tensor *dst = tu_tensor(TU_SHAPE(2, 3), d, 6), *src = tu_tensor(TU_SHAPE(4), s, 4);
    tu_assert_status(lam_op_assign(dst, src), LAM_ERR_SHAPE, "assign (2, 3) <- (4,)");
    tu_assert_msg("assign", "assign (2, 3) <- (4,)");
    tu_assert_msg("(2, 3)", "assign (2, 3) <- (4,)");
    tu_assert_msg("(4,)", "assign (2, 3) <- (4,)");
    cr_assert(memcmp(tu_read(dst), d, sizeof d) == 0, "dst untouched after a failed assign");
    lam_tensor_release(dst);
    lam_tensor_release(src);
    tu_assert_released();
}

Test(ops, assign_rejects_source_larger_than_destination) {
    /* src (2, 3) does not broadcast to dst (3,), although (3,) broadcasts to (2, 3) */
    const float d[3] = {1, 2, 3}, s[6] = {0};
    lam_tensor *dst = tu_tensor(TU_SHAPE(3), d, 3), *src = tu_tensor(TU_SHAPE(2, 3), s, 6);
    tu_assert_status(lam_op_assign(dst, src), LAM_ERR_SHAPE, "assign (3,) <- (2, 3)");
    tu_assert_msg("assign", "assign (3,) <- (2, 3)");
    cr_assert(memcmp(tu_read(dst), d, sizeof d) == 0, "dst untouched after a failed assign");
    lam_tensor_release(dst);
    lam_tensor_release(src);
    tu_assert_released();
}

/* ---- NULL arguments ---------------------------------------------------------------------- */

Test(ops, ops_reject_null_arguments) {
    const float d[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *a = tu_tensor(TU_SHAPE(2, 3), d, 6), *out = TU_POISON;

    tu_assert_status(lam_op_add(NULL, a, &out), LAM_ERR_INVALID_ARGUMENT, "add(NULL, a)");
    cr_assert_null(out);
    tu_assert_msg("add", "add(NULL, a)");
    out = TU_POISON;
    tu_assert_status(lam_op_add(a, NULL, &out), LAM_ERR_INVALID_ARGUMENT, "add(a, NULL)");
    cr_assert_null(out);
    tu_assert_msg("add", "add(a, NULL)");
    tu_assert_status(lam_op_add(a, a, NULL), LAM_ERR_INVALID_ARGUMENT, "add with NULL out");
    tu_assert_msg("add", "add with NULL out");

    out = TU_POISON;
    tu_assert_status(lam_op_matmul(NULL, a, 0, 0, &out), LAM_ERR_INVALID_ARGUMENT,
                     "matmul(NULL, a)");
    cr_assert_null(out);
    tu_assert_msg("matmul", "matmul(NULL, a)");
    out = TU_POISON;
    tu_assert_status(lam_op_dot(a, NULL, &out), LAM_ERR_INVALID_ARGUMENT, "dot(a, NULL)");
    cr_assert_null(out);
    tu_assert_msg("dot", "dot(a, NULL)");
    out = TU_POISON;
    tu_assert_status(lam_op_mul_scalar(NULL, 2.0f, &out), LAM_ERR_INVALID_ARGUMENT,
                     "mul_scalar(NULL)");
    cr_assert_null(out);
    tu_assert_msg("mul", "mul_scalar(NULL)");
    out = TU_POISON;
    tu_assert_status(lam_op_relu(NULL, &out), LAM_ERR_INVALID_ARGUMENT, "relu(NULL)");
    cr_assert_null(out);
    tu_assert_msg("relu", "relu(NULL)");
    tu_assert_status(lam_op_exp(a, NULL), LAM_ERR_INVALID_ARGUMENT, "exp with NULL out");
    tu_assert_msg("exp", "exp with NULL out");
    out = TU_POISON;
    tu_assert_status(lam_op_transpose(NULL, &out), LAM_ERR_INVALID_ARGUMENT, "transpose(NULL)");
    cr_assert_null(out);
    tu_assert_msg("transpose", "transpose(NULL)");
    out = TU_POISON;
    tu_assert_status(lam_op_copy(NULL, &out), LAM_ERR_INVALID_ARGUMENT, "copy(NULL)");
    cr_assert_null(out);
    tu_assert_msg("copy", "copy(NULL)");
    tu_assert_status(lam_op_fill(NULL, 1.0f), LAM_ERR_INVALID_ARGUMENT, "fill(NULL)");
    tu_assert_msg("fill", "fill(NULL)");
    tu_assert_status(lam_op_assign(NULL, a), LAM_ERR_INVALID_ARGUMENT, "assign(NULL, a)");
    tu_assert_msg("assign", "assign(NULL, a)");
    tu_assert_status(lam_op_assign(a, NULL), LAM_ERR_INVALID_ARGUMENT, "assign(a, NULL)");
    tu_assert_msg("assign", "assign(a, NULL)");

    lam_tensor_release(a);
    tu_assert_released();
}
