/*
 * The everyday ops (norm, clamp, take, where, slice, one_hot, arange): values and gradients
 * against PyTorch float64 (ref/everyday_refs.h, from ref/gen_everyday_refs.py), on the default
 * backend ($LAMINA_BACKEND: CI's Vulkan pass runs them on Vulkan), and their errors.
 * A gradient is that of sum(w * f(x)) for the stored head weight w.
 */
#include "test_util.h"

#include "ref/everyday_refs.h"

TestSuite(everyday, .fini = tu_fini);

#define TOL 2e-5

/* f's inputs as leaves, f recorded, backward with head w; value and gradients checked. */
typedef lam_status (*fn1)(lam_tensor *const *x, lam_tensor **y);

static void check_grad(const char *what, fn1 f, uint32_t n, const ref_array *const *inputs,
                       const ref_array *y, const ref_array *w, const ref_array *const *grads) {
    lam_tensor *x[3] = {NULL}, *out = NULL, *head = tu_from_ref(w);
    for (uint32_t i = 0; i < n; i++) {
        x[i] = tu_from_ref(inputs[i]);
        cr_assert_eq(lam_tensor_attach_grad(x[i]), LAM_OK);
    }
    int was = lam_autograd_set_recording(1);
    lam_status st = f(x, &out);
    lam_autograd_set_recording(was);
    tu_assert_result(st, out, y, TOL, TOL, what);
    cr_assert_eq(lam_autograd_backward(out, head), LAM_OK, "%s backward: %s", what,
                 lam_last_error());
    for (uint32_t i = 0; i < n; i++) {
        lam_tensor *g = NULL;
        cr_assert_eq(lam_tensor_grad(x[i], &g), LAM_OK);
        tu_assert_close(g, grads[i], TOL, TOL, what);
        lam_tensor_release(g);
        lam_tensor_release(x[i]);
    }
    lam_tensor_release(out);
    lam_tensor_release(head);
    tu_assert_released();
}

static lam_status norm_all(lam_tensor *const *x, lam_tensor **y) {
    return lam_op_norm(x[0], NULL, 0, 0, y);
}
static lam_status norm_ax1(lam_tensor *const *x, lam_tensor **y) {
    const int32_t ax[1] = {1};
    return lam_op_norm(x[0], ax, 1, 0, y);
}
static lam_status norm_ax0k(lam_tensor *const *x, lam_tensor **y) {
    const int32_t ax[1] = {-2};
    return lam_op_norm(x[0], ax, 1, 1, y);
}

Test(everyday, norm_values_and_gradients_match_pytorch) {
    const ref_array *in[1] = {&er_norm_x};
    check_grad("norm", norm_all, 1, in, &er_norm_all_y, &er_norm_all_w,
               (const ref_array *[]){&er_norm_all_g0});
    check_grad("norm axis 1", norm_ax1, 1, in, &er_norm_ax1_y, &er_norm_ax1_w,
               (const ref_array *[]){&er_norm_ax1_g0});
    check_grad("norm axis -2 kept", norm_ax0k, 1, in, &er_norm_ax0k_y, &er_norm_ax0k_w,
               (const ref_array *[]){&er_norm_ax0k_g0});
}

/* At a zero norm the gradient is 0, as PyTorch's (x / norm would be 0 / 0 = NaN there): an
 * all-zero tensor, and one zero row of a norm over axis 1 beside rows that are not zero. */
Test(everyday, norm_gradient_is_zero_where_the_norm_is_zero_as_pytorch) {
    check_grad("norm of zeros", norm_all, 1, (const ref_array *[]){&er_norm0_zeros},
               &er_norm0_all_y, &er_norm0_all_w, (const ref_array *[]){&er_norm0_all_g0});
    check_grad("norm axis 1, a zero row", norm_ax1, 1, (const ref_array *[]){&er_norm0_x},
               &er_norm0_ax1_y, &er_norm0_ax1_w, (const ref_array *[]){&er_norm0_ax1_g0});
}

static lam_status clamp(lam_tensor *const *x, lam_tensor **y) {
    return lam_op_clamp(x[0], -0.5f, 0.7f, y);
}

Test(everyday, clamp_values_and_gradients_match_pytorch) {
    check_grad("clamp", clamp, 1, (const ref_array *[]){&er_clamp_x}, &er_clamp_y, &er_clamp_w,
               (const ref_array *[]){&er_clamp_g0});
}

static lam_tensor *take_indices(void) {
    lam_tensor *idx = NULL;
    lam_shape s = TU_SHAPE(2, 2);
    cr_assert_eq(lam_tensor_create_dtype(tu_ctx(), LAM_DTYPE_I64, &s, &idx), LAM_OK);
    cr_assert_eq(lam_tensor_write_bytes(idx, er_take_idx, sizeof er_take_idx), LAM_OK);
    return idx;
}

static lam_status take(lam_tensor *const *x, lam_tensor **y) {
    lam_tensor *idx = take_indices();
    lam_status st = lam_op_take(x[0], idx, y);
    lam_tensor_release(idx);
    return st;
}

Test(everyday, take_values_and_gradients_match_pytorch) {
    check_grad("take", take, 1, (const ref_array *[]){&er_take_x}, &er_take_y, &er_take_w,
               (const ref_array *[]){&er_take_g0});
}

static lam_status where(lam_tensor *const *x, lam_tensor **y) {
    lam_tensor *c = tu_from_ref(&er_where_c);
    lam_status st = lam_op_where(c, x[0], x[1], y);
    lam_tensor_release(c);
    return st;
}

Test(everyday, where_values_and_gradients_match_pytorch) {
    check_grad("where", where, 2, (const ref_array *[]){&er_where_a, &er_where_b}, &er_where_y,
               &er_where_w, (const ref_array *[]){&er_where_g0, &er_where_g1});
}

static lam_status slice(lam_tensor *const *x, lam_tensor **y) {
    return lam_tensor_slice(x[0], 1, 1, 6, 2, y);
}

Test(everyday, slice_values_and_gradients_match_pytorch) {
    check_grad("slice", slice, 1, (const ref_array *[]){&er_slice_x}, &er_slice_y, &er_slice_w,
               (const ref_array *[]){&er_slice_g0});
}

/* lam_op_one_hot's status for an index outside [0, depth), with an asynchronous backend's
 * report when the result is read folded in (y is read then and released on an error). */
static lam_status one_hot_status(const lam_tensor *idx, int64_t depth, lam_tensor **y) {
    lam_status st = lam_op_one_hot(idx, depth, y);
    if (strcmp(lam_ctx_backend(tu_ctx()), "cpu") != 0) {
        /* Nothing is read back at the call (reading the indices would have reported it): an
         * asynchronous backend reports the index when a result is read. */
        cr_assert_eq(st, LAM_OK, "one_hot read its indices back: %s", lam_last_error());
        float v[30];
        st = lam_tensor_read(*y, v, (size_t)lam_tensor_numel(*y));
        if (st != LAM_OK) {
            lam_tensor_release(*y);
            *y = NULL;
        }
    }
    return st;
}

Test(everyday, one_hot_matches_pytorch_for_int32_and_float_indices) {
    lam_tensor *idx = NULL, *y = NULL, *fidx = NULL;
    lam_shape s = TU_SHAPE(2, 3);
    cr_assert_eq(lam_tensor_create_dtype(tu_ctx(), LAM_DTYPE_I32, &s, &idx), LAM_OK);
    cr_assert_eq(lam_tensor_write_bytes(idx, er_onehot_idx, sizeof er_onehot_idx), LAM_OK);
    lam_status st = lam_op_one_hot(idx, 5, &y);
    tu_assert_result(st, y, &er_onehot_y, 0, 0, "one_hot int32");
    cr_assert_eq(lam_tensor_ctx(y), tu_ctx(), "on the indices' context");
    lam_tensor_release(y);
    float f[6];
    for (int i = 0; i < 6; i++) {
        f[i] = (float)er_onehot_idx[i];
    }
    fidx = tu_tensor(s, f, 6);
    st = lam_op_one_hot(fidx, 5, &y);
    tu_assert_result(st, y, &er_onehot_y, 0, 0, "one_hot float");
    lam_tensor_release(y);
    y = TU_POISON;
    tu_assert_status(one_hot_status(idx, 4, &y), LAM_ERR_INVALID_ARGUMENT, "depth 4");
    tu_assert_msg("is 4, outside [0, 4)", "the position's value and the range are named");
    cr_assert_null(y);
    tu_assert_status(lam_op_one_hot(idx, 0, &y), LAM_ERR_INVALID_ARGUMENT, "depth 0");
    tu_assert_msg("one_hot: Invalid depth", "message");
    tu_assert_status(lam_op_one_hot(idx, (1 << 24) + 1, &y), LAM_ERR_INVALID_ARGUMENT,
                     "a depth float32 cannot count exactly");
    tu_assert_msg("one_hot: Invalid depth, depth 16777217", "message");
    lam_tensor_release(idx);
    lam_tensor_release(fidx);
    tu_assert_released();
}

/*
 * Float indices are truncated toward zero, as Gluon's nd.one_hot (its kernel takes
 * static_cast<int>(index)): 1.5 -> 1, -0.5 -> 0, 4.9 -> 4 with depth 5 (by hand); a negative
 * index after truncation (-1.5 -> -1) is refused as an integer one is. The CPU message names
 * the element as the indices hold it after truncation.
 */
Test(everyday, one_hot_truncates_float_indices_as_gluon) {
    lam_tensor *y = NULL;
    lam_shape s = TU_SHAPE(3);
    float f[3] = {1.5f, -0.5f, 4.9f};
    const float want[15] = {0, 1, 0, 0, 0, /* 1.5 */ 1, 0, 0, 0, 0, /* -0.5 */
                            0, 0, 0, 0, 1 /* 4.9 */};
    lam_tensor *fidx = tu_tensor(s, f, 3);
    const ref_array r = {2, {3, 5}, 15, want};
    lam_status st = lam_op_one_hot(fidx, 5, &y);
    tu_assert_result(st, y, &r, 0, 0, "one_hot of 1.5, -0.5, 4.9");
    lam_tensor_release(y);
    f[1] = -1.5f;
    cr_assert_eq(lam_tensor_write(fidx, f, 3), LAM_OK);
    y = TU_POISON;
    tu_assert_status(one_hot_status(fidx, 5, &y), LAM_ERR_INVALID_ARGUMENT, "-1.5");
    tu_assert_msg("is -1, outside [0, 5)", "message");
    cr_assert_null(y);
    lam_tensor_release(fidx);
    tu_assert_released();
}

/* A 0-d index gives one row (depth,); empty indices an empty S + (depth,) (by hand). */
Test(everyday, one_hot_of_a_scalar_and_of_no_indices) {
    lam_tensor *idx = NULL, *y = NULL;
    lam_shape s0 = TU_SCALAR_SHAPE(), se = TU_SHAPE(0, 2);
    int64_t three = 3;
    cr_assert_eq(lam_tensor_create_dtype(tu_ctx(), LAM_DTYPE_I64, &s0, &idx), LAM_OK);
    cr_assert_eq(lam_tensor_write_bytes(idx, &three, sizeof three), LAM_OK);
    const float want[4] = {0, 0, 0, 1};
    const ref_array r = {1, {4}, 4, want};
    lam_status st = lam_op_one_hot(idx, 4, &y);
    tu_assert_result(st, y, &r, 0, 0, "one_hot(3, 4)");
    lam_tensor_release(y);
    lam_tensor_release(idx);
    cr_assert_eq(lam_tensor_create_dtype(tu_ctx(), LAM_DTYPE_I32, &se, &idx), LAM_OK);
    cr_assert_eq(lam_op_one_hot(idx, 4, &y), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(y, 3, (const int64_t[]){0, 2, 4}, "shape (0, 2, 4)");
    lam_tensor_release(y);
    lam_tensor_release(idx);
    tu_assert_released();
}

Test(everyday, arange_matches_pytorch) {
    lam_tensor *a = NULL;
    lam_status st = lam_op_arange(NULL, 0.5, 3, 0.75, &a);
    tu_assert_result(st, a, &er_arange_a, 0, 0, "arange");
    cr_assert_eq(lam_tensor_ctx(a), tu_ctx());
    lam_tensor_release(a);
    st = lam_op_arange(NULL, 3, 0, -1, &a);
    tu_assert_result(st, a, &er_arange_b, 0, 0, "arange down");
    lam_tensor_release(a);
    cr_assert_eq(lam_op_arange(NULL, 3, 0, 1, &a), LAM_OK);
    cr_assert_eq(lam_tensor_numel(a), 0, "an empty range");
    lam_tensor_release(a);
    tu_assert_status(lam_op_arange(NULL, 0, 1, 0, &a), LAM_ERR_INVALID_ARGUMENT, "step 0");
    tu_assert_msg("arange: Invalid argument, start 0, stop 1, step 0", "message");
    tu_assert_released();
}

Test(everyday, take_rejects_bad_indices_and_shapes) {
    lam_tensor *x = tu_from_ref(&er_take_x), *idx = NULL, *y = TU_POISON;
    lam_shape s = TU_SHAPE(1);
    int64_t bad = 5;
    cr_assert_eq(lam_tensor_create_dtype(tu_ctx(), LAM_DTYPE_I64, &s, &idx), LAM_OK);
    cr_assert_eq(lam_tensor_write_bytes(idx, &bad, sizeof bad), LAM_OK);
    lam_status st = lam_op_take(x, idx, &y);
    if (st == LAM_OK) { /* an asynchronous backend may report it when the result is read */
        float v[6];
        st = lam_tensor_read(y, v, 6);
        lam_tensor_release(y);
        y = NULL;
    }
    tu_assert_status(st, LAM_ERR_INVALID_ARGUMENT, "index 5 of 5 rows");
    tu_assert_msg("5", "the index is named");
    cr_assert_null(y);
    lam_tensor *scalar = NULL;
    lam_shape sc = TU_SCALAR_SHAPE();
    cr_assert_eq(lam_tensor_create(tu_ctx(), &sc, &scalar), LAM_OK);
    tu_assert_status(lam_op_take(scalar, idx, &y), LAM_ERR_SHAPE, "0-d x");
    tu_assert_msg("take: Shape (), expected at least one dimension", "message");
    lam_tensor_release(scalar);
    lam_tensor_release(idx);
    lam_tensor_release(x);
    tu_assert_released();
}
