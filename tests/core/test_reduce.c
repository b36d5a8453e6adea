/*
 * Reductions (sum, mean, max, min), argmax, softmax and log_softmax against NumPy, over all
 * axes, one axis, several axes, negative axes, with and without keepdims; and their errors.
 * References: ref/op_refs.h, written by ref/gen_op_refs.py (input ref_red_x has shape
 * (2, 3, 4)).
 */
#include "test_util.h"

TestSuite(reduce, .fini = tu_fini);

typedef lam_status (*reduce_fn)(const lam_tensor *, const int32_t *, uint32_t, int32_t,
                                lam_tensor **);
typedef lam_status (*axis_fn)(const lam_tensor *, int32_t, lam_tensor **);

static void check_reduce(reduce_fn fn, const ref_reduce_case *c, const ref_array *want,
                         const char *what) {
    lam_tensor *x = tu_from_ref(&ref_red_x), *out = TU_POISON;
    lam_status st = fn(x, c->axes, c->n_axes, c->keepdims, &out);
    tu_assert_result(st, out, want, TU_RTOL, TU_ATOL, what);
    tu_assert_exact(x, &ref_red_x, "operand afterwards");
    lam_tensor_release(out);
    lam_tensor_release(x);
    tu_assert_released();
}

/* Cases (see gen_op_refs.py): all () ; all_keep (1,1,1) ; all_listed axes {0,1,2} ;
 * axis1 {1} ; axis1_keep ; axes02 {0,2} ; axes02_keep ; neg1 {-1} ; neg1_keep ;
 * neg_unordered {-1,-3}. */
#define REDUCE_CASE(op, c)                                                                         \
    Test(reduce, op##_matches_numpy_##c) {                                                         \
        check_reduce(lam_op_##op, &ref_red_case_##c, &ref_##op##_##c##_out, #op " " #c);           \
    }
#define REDUCE_CASES(op)                                                                           \
    REDUCE_CASE(op, all)                                                                           \
    REDUCE_CASE(op, all_keep)                                                                      \
    REDUCE_CASE(op, all_listed)                                                                    \
    REDUCE_CASE(op, axis1)                                                                         \
    REDUCE_CASE(op, axis1_keep)                                                                    \
    REDUCE_CASE(op, axes02)                                                                        \
    REDUCE_CASE(op, axes02_keep)                                                                   \
    REDUCE_CASE(op, neg1)                                                                          \
    REDUCE_CASE(op, neg1_keep)                                                                     \
    REDUCE_CASE(op, neg_unordered)

REDUCE_CASES(sum)
REDUCE_CASES(mean)
REDUCE_CASES(max)
REDUCE_CASES(min)

Test(reduce, sum_over_null_axes_reduces_everything) {
    lam_tensor *x = tu_from_ref(&ref_red_x), *out = TU_POISON;
    lam_status st = lam_op_sum(x, NULL, 0, 0, &out);
    tu_assert_result(st, out, &ref_sum_all_out, TU_RTOL, TU_ATOL, "sum(axes NULL)");
    lam_tensor_release(out);
    lam_tensor_release(x);
    tu_assert_released();
}

Test(reduce, sum_and_mean_by_hand_on_small_matrix) {
    /* [[1, 2, 3], [4, 5, 6]]: column sums 5 7 9, row means 2 5 */
    const float d[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *x = tu_tensor(TU_SHAPE(2, 3), d, 6), *s = NULL, *m = NULL;
    const int32_t ax0 = 0, ax1 = 1;
    cr_assert_eq(lam_op_sum(x, &ax0, 1, 0, &s), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_mean(x, &ax1, 1, 1, &m), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(s, 1, (const int64_t[]){3}, "column sums");
    tu_assert_shape(m, 2, (const int64_t[]){2, 1}, "row means");
    const float *g = tu_read(s);
    cr_assert(g[0] == 5.0f && g[1] == 7.0f && g[2] == 9.0f, "%g %g %g", (double)g[0], (double)g[1],
              (double)g[2]);
    g = tu_read(m);
    cr_assert(g[0] == 2.0f && g[1] == 5.0f, "%g %g", (double)g[0], (double)g[1]);
    lam_tensor_release(s);
    lam_tensor_release(m);
    lam_tensor_release(x);
    tu_assert_released();
}

/* ---- argmax ------------------------------------------------------------------------------- */

static void check_axis_op(axis_fn fn, const ref_array *a, int32_t axis, const ref_array *want,
                          double rtol, double atol, const char *what) {
    lam_tensor *x = tu_from_ref(a), *out = TU_POISON;
    lam_status st = fn(x, axis, &out);
    tu_assert_result(st, out, want, rtol, atol, what);
    tu_assert_exact(x, a, "operand afterwards");
    lam_tensor_release(out);
    lam_tensor_release(x);
    tu_assert_released();
}

Test(reduce, argmax_matches_numpy_along_axis0) {
    check_axis_op(lam_op_argmax, &ref_red_x, 0, &ref_argmax_axis0_out, 0.0, 0.0, "argmax 0");
}

Test(reduce, argmax_matches_numpy_along_axis1) {
    check_axis_op(lam_op_argmax, &ref_red_x, 1, &ref_argmax_axis1_out, 0.0, 0.0, "argmax 1");
}

Test(reduce, argmax_matches_numpy_along_last_axis) {
    check_axis_op(lam_op_argmax, &ref_red_x, 2, &ref_argmax_axis2_out, 0.0, 0.0, "argmax 2");
}

Test(reduce, argmax_matches_numpy_along_negative_axis) {
    check_axis_op(lam_op_argmax, &ref_red_x, -1, &ref_argmax_neg1_out, 0.0, 0.0, "argmax -1");
}

Test(reduce, argmax_picks_first_of_tied_maxima_along_axis0) {
    check_axis_op(lam_op_argmax, &ref_argmax_ties_x, 0, &ref_argmax_ties_axis0_out, 0.0, 0.0,
                  "argmax ties 0");
}

Test(reduce, argmax_picks_first_of_tied_maxima_along_axis1) {
    check_axis_op(lam_op_argmax, &ref_argmax_ties_x, 1, &ref_argmax_ties_axis1_out, 0.0, 0.0,
                  "argmax ties 1");
}

/* ---- softmax and log_softmax ------------------------------------------------------------- */

#define SM_TOL TU_RTOL_LOOSE, TU_ATOL

Test(reduce, softmax_matches_numpy_along_last_axis) {
    check_axis_op(lam_op_softmax, &ref_sm_x, -1, &ref_softmax_x_last_out, SM_TOL,
                  "softmax (3, 4) axis -1");
}

Test(reduce, softmax_matches_numpy_along_positive_last_axis) {
    check_axis_op(lam_op_softmax, &ref_sm_x, 1, &ref_softmax_x_last_out, SM_TOL,
                  "softmax (3, 4) axis 1");
}

Test(reduce, softmax_matches_numpy_along_axis0) {
    check_axis_op(lam_op_softmax, &ref_sm_x, 0, &ref_softmax_x_axis0_out, SM_TOL,
                  "softmax (3, 4) axis 0");
}

Test(reduce, softmax_matches_numpy_along_middle_axis) {
    check_axis_op(lam_op_softmax, &ref_sm_x3, 1, &ref_softmax_x3_axis1_out, SM_TOL,
                  "softmax (2, 3, 4) axis 1");
}

Test(reduce, softmax_is_stable_for_large_values_along_last_axis) {
    check_axis_op(lam_op_softmax, &ref_sm_big, -1, &ref_softmax_big_last_out, SM_TOL,
                  "softmax of +-1000 axis -1");
}

Test(reduce, softmax_is_stable_for_large_values_along_axis0) {
    check_axis_op(lam_op_softmax, &ref_sm_big, 0, &ref_softmax_big_axis0_out, SM_TOL,
                  "softmax of +-1000 axis 0");
}

Test(reduce, log_softmax_matches_numpy_along_last_axis) {
    check_axis_op(lam_op_log_softmax, &ref_sm_x, -1, &ref_log_softmax_x_last_out, SM_TOL,
                  "log_softmax (3, 4) axis -1");
}

Test(reduce, log_softmax_matches_numpy_along_positive_last_axis) {
    check_axis_op(lam_op_log_softmax, &ref_sm_x, 1, &ref_log_softmax_x_last_out, SM_TOL,
                  "log_softmax (3, 4) axis 1");
}

Test(reduce, log_softmax_matches_numpy_along_axis0) {
    check_axis_op(lam_op_log_softmax, &ref_sm_x, 0, &ref_log_softmax_x_axis0_out, SM_TOL,
                  "log_softmax (3, 4) axis 0");
}

Test(reduce, log_softmax_matches_numpy_along_middle_axis) {
    check_axis_op(lam_op_log_softmax, &ref_sm_x3, 1, &ref_log_softmax_x3_axis1_out, SM_TOL,
                  "log_softmax (2, 3, 4) axis 1");
}

Test(reduce, log_softmax_is_stable_for_large_values_along_last_axis) {
    check_axis_op(lam_op_log_softmax, &ref_sm_big, -1, &ref_log_softmax_big_last_out, SM_TOL,
                  "log_softmax of +-1000 axis -1");
}

Test(reduce, log_softmax_is_stable_for_large_values_along_axis0) {
    check_axis_op(lam_op_log_softmax, &ref_sm_big, 0, &ref_log_softmax_big_axis0_out, SM_TOL,
                  "log_softmax of +-1000 axis 0");
}

/* ---- errors -----------------------------------------------------------------------------------
 */

static const struct {
    reduce_fn fn;
    const char *name;
} reductions[] = {
    {lam_op_sum, "sum"}, {lam_op_mean, "mean"}, {lam_op_max, "max"}, {lam_op_min, "min"}};

Test(reduce, reductions_reject_axis_out_of_range) {
    lam_tensor *x = tu_from_ref(&ref_red_x);
    const int32_t too_big = 5, too_small = -4;
    for (size_t i = 0; i < sizeof reductions / sizeof reductions[0]; i++) {
        const char *name = reductions[i].name;
        lam_tensor *out = TU_POISON;
        tu_assert_status(reductions[i].fn(x, &too_big, 1, 0, &out), LAM_ERR_INVALID_ARGUMENT, name);
        cr_assert_null(out, "%s: *out must be NULL", name);
        tu_assert_msg(name, name);
        tu_assert_msg("axis", name);
        tu_assert_msg("5", name);
        out = TU_POISON;
        tu_assert_status(reductions[i].fn(x, &too_small, 1, 1, &out), LAM_ERR_INVALID_ARGUMENT,
                         name);
        cr_assert_null(out, "%s: *out must be NULL", name);
        tu_assert_msg(name, name);
        tu_assert_msg("axis", name);
        tu_assert_msg("-4", name);
    }
    lam_tensor_release(x);
    tu_assert_released();
}

Test(reduce, reductions_reject_axis_equal_to_ndim) {
    lam_tensor *x = tu_from_ref(&ref_red_x), *out = TU_POISON;
    const int32_t axes[2] = {0, 3};
    tu_assert_status(lam_op_sum(x, axes, 2, 0, &out), LAM_ERR_INVALID_ARGUMENT,
                     "sum over {0, 3} of (2, 3, 4)");
    cr_assert_null(out);
    tu_assert_msg("sum", "sum over {0, 3}");
    tu_assert_msg("axis", "sum over {0, 3}");
    lam_tensor_release(x);
    tu_assert_released();
}

Test(reduce, reductions_reject_repeated_axis) {
    lam_tensor *x = tu_from_ref(&ref_red_x), *out = TU_POISON;
    const int32_t axes[2] = {1, -2}; /* both name axis 1 */
    tu_assert_status(lam_op_max(x, axes, 2, 0, &out), LAM_ERR_INVALID_ARGUMENT, "max over {1, -2}");
    cr_assert_null(out);
    tu_assert_msg("max", "max over {1, -2}");
    tu_assert_msg("axis", "max over {1, -2}");
    lam_tensor_release(x);
    tu_assert_released();
}

Test(reduce, argmax_rejects_axis_out_of_range) {
    lam_tensor *x = tu_from_ref(&ref_red_x), *out = TU_POISON;
    tu_assert_status(lam_op_argmax(x, 3, &out), LAM_ERR_INVALID_ARGUMENT, "argmax axis 3");
    cr_assert_null(out);
    tu_assert_msg("argmax", "argmax axis 3");
    tu_assert_msg("axis", "argmax axis 3");
    lam_tensor_release(x);
    tu_assert_released();
}

Test(reduce, softmax_rejects_axis_out_of_range) {
    lam_tensor *x = tu_from_ref(&ref_sm_x), *out = TU_POISON; /* (3, 4) */
    tu_assert_status(lam_op_softmax(x, 7, &out), LAM_ERR_INVALID_ARGUMENT, "softmax axis 7");
    cr_assert_null(out);
    tu_assert_msg("softmax", "softmax axis 7");
    tu_assert_msg("axis", "softmax axis 7");
    tu_assert_msg("7", "softmax axis 7");
    out = TU_POISON;
    tu_assert_status(lam_op_softmax(x, -3, &out), LAM_ERR_INVALID_ARGUMENT, "softmax axis -3");
    cr_assert_null(out);
    tu_assert_msg("-3", "softmax axis -3");
    out = TU_POISON;
    tu_assert_status(lam_op_log_softmax(x, 2, &out), LAM_ERR_INVALID_ARGUMENT,
                     "log_softmax axis 2");
    cr_assert_null(out);
    tu_assert_msg("log_softmax", "log_softmax axis 2");
    tu_assert_msg("axis", "log_softmax axis 2");
    lam_tensor_release(x);
    tu_assert_released();
}

Test(reduce, ops_reject_null_arguments) {
    lam_tensor *x = tu_from_ref(&ref_red_x), *out = TU_POISON;
    const int32_t ax = 0;
    tu_assert_status(lam_op_sum(NULL, &ax, 1, 0, &out), LAM_ERR_INVALID_ARGUMENT, "sum(NULL)");
    cr_assert_null(out);
    tu_assert_msg("sum", "sum(NULL)");
    tu_assert_status(lam_op_mean(x, &ax, 1, 0, NULL), LAM_ERR_INVALID_ARGUMENT,
                     "mean with NULL out");
    tu_assert_msg("mean", "mean with NULL out");
    out = TU_POISON;
    tu_assert_status(lam_op_argmax(NULL, 0, &out), LAM_ERR_INVALID_ARGUMENT, "argmax(NULL)");
    cr_assert_null(out);
    tu_assert_msg("argmax", "argmax(NULL)");
    out = TU_POISON;
    tu_assert_status(lam_op_softmax(NULL, 0, &out), LAM_ERR_INVALID_ARGUMENT, "softmax(NULL)");
    cr_assert_null(out);
    tu_assert_msg("softmax", "softmax(NULL)");
    tu_assert_status(lam_op_log_softmax(x, 0, NULL), LAM_ERR_INVALID_ARGUMENT,
                     "log_softmax with NULL out");
    tu_assert_msg("log_softmax", "log_softmax with NULL out");
    lam_tensor_release(x);
    tu_assert_released();
}
