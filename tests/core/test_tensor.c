/*
 * Tensors and shapes: creation, reading and writing, getters, reshape views, copies between
 * contexts, reference counting, and the errors of each. Expected values are worked by hand.
 */
#include "test_util.h"

TestSuite(shape, .fini = tu_fini);
TestSuite(tensor, .fini = tu_fini);

/* ---- shapes ------------------------------------------------------------------------------- */

Test(shape, format_matches_documented_examples) {
    char buf[64];
    lam_shape s = TU_SHAPE(2, 20);
    cr_assert_str_eq(lam_shape_format(&s, buf, sizeof buf), "(2, 20)");
    s = TU_SHAPE(256);
    cr_assert_str_eq(lam_shape_format(&s, buf, sizeof buf), "(256,)");
    s = TU_SCALAR_SHAPE();
    cr_assert_str_eq(lam_shape_format(&s, buf, sizeof buf), "()");
    s = TU_SHAPE(LAM_DIM_UNKNOWN, 20);
    cr_assert_str_eq(lam_shape_format(&s, buf, sizeof buf), "(None, 20)");
    s = TU_SHAPE(4, 1, 3);
    cr_assert_str_eq(lam_shape_format(&s, buf, sizeof buf), "(4, 1, 3)");
}

/* The SDK's header-only lam_dims_format (what plugins use) prints what the host prints, for
 * the documented examples, every rank up to LAM_MAX_DIMS and truncating buffers. */
Test(shape, sdk_dims_format_prints_as_the_host) {
    char buf[64], host[64];
    const int64_t d3[1] = {3}, d2[2] = {LAM_DIM_UNKNOWN, 20};
    cr_assert_str_eq(lam_dims_format(buf, sizeof buf, 1, d3), "(3,)");
    cr_assert_str_eq(lam_dims_format(buf, sizeof buf, 2, d2), "(None, 20)");
    cr_assert_str_eq(lam_dims_format(buf, sizeof buf, 0, d3), "()");
    int64_t dims[LAM_MAX_DIMS];
    for (uint32_t nd = 0; nd <= LAM_MAX_DIMS; nd++) {
        for (uint32_t i = 0; i < nd; i++) {
            dims[i] = i == 1 ? LAM_DIM_UNKNOWN : (int64_t)(7 * i + 1);
        }
        lam_shape s = {0};
        s.ndim = nd;
        memcpy(s.dims, dims, nd * sizeof dims[0]);
        for (size_t cap = 1; cap <= sizeof buf; cap++) {
            memset(buf, 'x', sizeof buf);
            memset(host, 'x', sizeof host);
            lam_dims_format(buf, cap, nd, dims);
            lam_shape_format(&s, host, cap);
            cr_assert_str_eq(buf, host, "ndim %u, cap %zu", nd, cap);
        }
    }
}

Test(shape, numel_counts_elements_or_reports_unknown) {
    lam_shape s = TU_SHAPE(2, 3, 4);
    cr_assert_eq(lam_shape_numel(&s), 24);
    s = TU_SCALAR_SHAPE();
    cr_assert_eq(lam_shape_numel(&s), 1);
    s = TU_SHAPE(5, 0);
    cr_assert_eq(lam_shape_numel(&s), 0);
    s = TU_SHAPE(LAM_DIM_UNKNOWN, 3);
    cr_assert_eq(lam_shape_numel(&s), -1);
}

Test(shape, init_copies_dims_and_compares_equal) {
    const int64_t dims[3] = {2, 3, 4};
    lam_shape s;
    cr_assert_eq(lam_shape_init(&s, 3, dims), LAM_OK);
    cr_assert_eq(s.ndim, 3);
    cr_assert_eq(s.dims[0], 2);
    cr_assert_eq(s.dims[1], 3);
    cr_assert_eq(s.dims[2], 4);
    lam_shape same = TU_SHAPE(2, 3, 4);
    lam_shape other = TU_SHAPE(2, 4, 3);
    lam_shape shorter = TU_SHAPE(2, 3);
    cr_assert(lam_shape_equal(&s, &same));
    cr_assert_not(lam_shape_equal(&s, &other));
    cr_assert_not(lam_shape_equal(&s, &shorter));
}

Test(shape, init_rejects_more_than_max_dims) {
    const int64_t dims[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    lam_shape s;
    lam_status st = lam_shape_init(&s, 9, dims);
    tu_assert_status(st, LAM_ERR_INVALID_ARGUMENT, "lam_shape_init with 9 dims");
    tu_assert_msg("9", "lam_shape_init with 9 dims");
}

/* ---- creation ----------------------------------------------------------------------------- */

Test(tensor, create_fills_with_zeros) {
    lam_shape s = TU_SHAPE(2, 3);
    lam_tensor *t = NULL;
    lam_status st = lam_tensor_create(tu_ctx(), &s, &t);
    cr_assert_eq(st, LAM_OK, "%s", lam_last_error());
    tu_assert_shape(t, 2, (const int64_t[]){2, 3}, "zeros");
    tu_assert_all(t, 0.0f, "zeros");
    lam_tensor_release(t);
    tu_assert_released();
}

Test(tensor, create_uses_default_context_when_ctx_is_null) {
    lam_shape s = TU_SHAPE(3);
    lam_tensor *t = NULL;
    cr_assert_eq(lam_tensor_create(NULL, &s, &t), LAM_OK, "%s", lam_last_error());
    cr_assert(lam_tensor_ctx(t) == tu_ctx());
    lam_tensor_release(t);
    tu_assert_released();
}

Test(tensor, create_accepts_scalar_shape) {
    lam_shape s = TU_SCALAR_SHAPE();
    lam_tensor *t = NULL;
    cr_assert_eq(lam_tensor_create(tu_ctx(), &s, &t), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_shape(t)->ndim, 0);
    cr_assert_eq(lam_tensor_numel(t), 1);
    float v = -1.0f;
    cr_assert_eq(lam_tensor_scalar(t, &v), LAM_OK, "%s", lam_last_error());
    cr_assert(v == 0.0f, "scalar zeros gave %g", (double)v);
    lam_tensor_release(t);
    tu_assert_released();
}

Test(tensor, create_accepts_max_dims) {
    lam_shape s = TU_SHAPE(1, 1, 1, 1, 1, 1, 2, 3);
    lam_tensor *t = NULL;
    cr_assert_eq(lam_tensor_full(tu_ctx(), &s, 1.5f, &t), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_shape(t)->ndim, 8);
    cr_assert_eq(lam_tensor_numel(t), 6);
    tu_assert_all(t, 1.5f, "8-d full");
    lam_tensor_release(t);
    tu_assert_released();
}

Test(tensor, create_rejects_more_than_max_dims) {
    /* lam_shape has room for 8 dims only, so ndim 9 is what a careless caller would pass. */
    lam_shape s = TU_SHAPE(1, 1, 1, 1, 1, 1, 1, 2);
    s.ndim = 9;
    lam_tensor *t = TU_POISON; /* must be reset to NULL */
    lam_status st = lam_tensor_create(tu_ctx(), &s, &t);
    tu_assert_status(st, LAM_ERR_SHAPE, "create with 9 dims");
    cr_assert_null(t, "*out must be NULL on failure");
    tu_assert_msg("9", "create with 9 dims");
    tu_assert_msg("8", "create with 9 dims");
    const float data[2] = {1.0f, 2.0f};
    t = TU_POISON;
    st = lam_tensor_from_data(tu_ctx(), &s, data, 2, &t);
    tu_assert_status(st, LAM_ERR_SHAPE, "from_data with 9 dims");
    cr_assert_null(t);
    tu_assert_released();
}

Test(tensor, create_rejects_negative_and_unknown_dims) {
    lam_shape s = TU_SHAPE(2, LAM_DIM_UNKNOWN);
    lam_tensor *t = TU_POISON;
    tu_assert_status(lam_tensor_create(tu_ctx(), &s, &t), LAM_ERR_SHAPE, "create (2, None)");
    cr_assert_null(t);
    tu_assert_msg("(2, None)", "create (2, None)");
    s = TU_SHAPE(2, -3);
    t = TU_POISON;
    tu_assert_status(lam_tensor_create(tu_ctx(), &s, &t), LAM_ERR_SHAPE, "create (2, -3)");
    cr_assert_null(t);
    tu_assert_released();
}

Test(tensor, create_accepts_zero_sized_dim) {
    lam_shape s = TU_SHAPE(0, 3);
    lam_tensor *t = NULL;
    cr_assert_eq(lam_tensor_create(tu_ctx(), &s, &t), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(t, 2, (const int64_t[]){0, 3}, "(0, 3)");
    cr_assert_eq(lam_tensor_numel(t), 0);
    lam_tensor_release(t);
    tu_assert_released();
}

Test(tensor, from_data_round_trips_values) {
    const float data[6] = {-0.0f, 1.0f, -2.5f, 3.25e-30f, 1e30f, 0.1f};
    lam_tensor *t = tu_tensor(TU_SHAPE(3, 2), data, 6);
    float back[6] = {0};
    cr_assert_eq(lam_tensor_read(t, back, 6), LAM_OK, "%s", lam_last_error());
    cr_assert(memcmp(back, data, sizeof data) == 0, "read differs from the data written");
    lam_tensor_release(t);
    tu_assert_released();
}

Test(tensor, from_data_rejects_wrong_count) {
    const float data[6] = {1, 2, 3, 4, 5, 6};
    lam_shape s = TU_SHAPE(2, 3);
    lam_tensor *t = TU_POISON;
    lam_status st = lam_tensor_from_data(tu_ctx(), &s, data, 5, &t);
    cr_assert(st == LAM_ERR_SHAPE || st == LAM_ERR_INVALID_ARGUMENT, "status %d (%s), message %s",
              (int)st, lam_status_string(st), lam_last_error());
    cr_assert_null(t);
    tu_assert_msg("5", "from_data count 5 for (2, 3)");
    tu_assert_released();
}

Test(tensor, full_fills_with_value) {
    lam_shape s = TU_SHAPE(3, 2);
    lam_tensor *t = NULL;
    cr_assert_eq(lam_tensor_full(tu_ctx(), &s, -2.75f, &t), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(t, 2, (const int64_t[]){3, 2}, "full");
    tu_assert_all(t, -2.75f, "full");
    lam_tensor_release(t);
    tu_assert_released();
}

Test(tensor, getters_report_shape_numel_dtype_and_ctx) {
    lam_shape s = TU_SHAPE(2, 3, 4);
    lam_tensor *t = NULL;
    cr_assert_eq(lam_tensor_create(tu_ctx(), &s, &t), LAM_OK, "%s", lam_last_error());
    const lam_shape *got = lam_tensor_shape(t);
    cr_assert_eq(got->ndim, 3);
    cr_assert_eq(got->dims[0], 2);
    cr_assert_eq(got->dims[1], 3);
    cr_assert_eq(got->dims[2], 4);
    cr_assert_eq(lam_tensor_numel(t), 24);
    cr_assert_eq(lam_tensor_dtype(t), LAM_DTYPE_F32);
    cr_assert(lam_tensor_ctx(t) == tu_ctx());
    lam_tensor_release(t);
    tu_assert_released();
}

Test(tensor, write_overwrites_values) {
    lam_shape s = TU_SHAPE(2, 2);
    lam_tensor *t = NULL;
    cr_assert_eq(lam_tensor_create(tu_ctx(), &s, &t), LAM_OK, "%s", lam_last_error());
    const float data[4] = {4.0f, -3.0f, 2.5f, 1e-3f};
    cr_assert_eq(lam_tensor_write(t, data, 4), LAM_OK, "%s", lam_last_error());
    const float *got = tu_read(t);
    cr_assert(memcmp(got, data, sizeof data) == 0);
    lam_tensor_release(t);
    tu_assert_released();
}

Test(tensor, read_rejects_wrong_count) {
    const float data[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *t = tu_tensor(TU_SHAPE(2, 3), data, 6);
    float back[8];
    lam_status st = lam_tensor_read(t, back, 8);
    cr_assert(st == LAM_ERR_SHAPE || st == LAM_ERR_INVALID_ARGUMENT, "status %d (%s), message %s",
              (int)st, lam_status_string(st), lam_last_error());
    tu_assert_msg("8", "read 8 of (2, 3)");
    lam_tensor_release(t);
    tu_assert_released();
}

/* ---- scalar ------------------------------------------------------------------------------- */

Test(tensor, scalar_reads_the_single_element) {
    const float x = 3.5f;
    lam_tensor *t = tu_tensor(TU_SCALAR_SHAPE(), &x, 1);
    float v = 0.0f;
    cr_assert_eq(lam_tensor_scalar(t, &v), LAM_OK, "%s", lam_last_error());
    cr_assert(v == 3.5f, "got %g", (double)v);
    const float y = -7.25f;
    lam_tensor *u = tu_tensor(TU_SHAPE(1, 1), &y, 1);
    cr_assert_eq(lam_tensor_scalar(u, &v), LAM_OK, "%s", lam_last_error());
    cr_assert(v == -7.25f, "got %g", (double)v);
    lam_tensor_release(t);
    lam_tensor_release(u);
    tu_assert_released();
}

Test(tensor, scalar_rejects_non_scalar) {
    const float data[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *t = tu_tensor(TU_SHAPE(2, 3), data, 6);
    float v = 42.0f;
    lam_status st = lam_tensor_scalar(t, &v);
    tu_assert_status(st, LAM_ERR_SHAPE, "scalar of (2, 3)");
    tu_assert_msg("scalar", "scalar of (2, 3)");
    tu_assert_msg("(2, 3)", "scalar of (2, 3)");
    lam_tensor_release(t);
    tu_assert_released();
}

/* ---- reshape ------------------------------------------------------------------------------ */

Test(tensor, reshape_shares_data_with_source) {
    const float data[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *a = tu_tensor(TU_SHAPE(2, 3), data, 6);
    lam_shape s = TU_SHAPE(3, 2);
    lam_tensor *r = NULL;
    cr_assert_eq(lam_tensor_reshape(a, &s, &r), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(r, 2, (const int64_t[]){3, 2}, "reshaped");
    cr_assert(memcmp(tu_read(r), data, sizeof data) == 0, "row-major order kept");

    const float other[6] = {-1, -2, -3, -4, -5, -6};
    cr_assert_eq(lam_tensor_write(r, other, 6), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(a, 2, (const int64_t[]){2, 3}, "source keeps its shape");
    cr_assert(memcmp(tu_read(a), other, sizeof other) == 0, "write via the view reaches source");

    cr_assert_eq(lam_op_fill(a, 9.0f), LAM_OK, "%s", lam_last_error());
    tu_assert_all(r, 9.0f, "fill of the source seen through the view");

    lam_tensor_release(r);
    lam_tensor_release(a);
    tu_assert_released();
}

Test(tensor, reshape_keeps_data_alive_after_source_release) {
    const float data[4] = {1.5f, 2.5f, 3.5f, 4.5f};
    lam_tensor *a = tu_tensor(TU_SHAPE(2, 2), data, 4);
    lam_shape s = TU_SHAPE(4);
    lam_tensor *r = NULL;
    cr_assert_eq(lam_tensor_reshape(a, &s, &r), LAM_OK, "%s", lam_last_error());
    lam_tensor_release(a);
    cr_assert(memcmp(tu_read(r), data, sizeof data) == 0);
    lam_tensor_release(r);
    tu_assert_released();
}

Test(tensor, reshape_infers_minus_one_dim) {
    float data[24];
    for (int i = 0; i < 24; i++) {
        data[i] = (float)i;
    }
    lam_tensor *a = tu_tensor(TU_SHAPE(2, 3, 4), data, 24);
    lam_tensor *r = NULL;
    lam_shape s = TU_SHAPE(-1, 4);
    cr_assert_eq(lam_tensor_reshape(a, &s, &r), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(r, 2, (const int64_t[]){6, 4}, "(-1, 4)");
    cr_assert(memcmp(tu_read(r), data, sizeof data) == 0);
    lam_tensor_release(r);

    s = TU_SHAPE(2, -1, 3);
    cr_assert_eq(lam_tensor_reshape(a, &s, &r), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(r, 3, (const int64_t[]){2, 4, 3}, "(2, -1, 3)");
    lam_tensor_release(r);

    s = TU_SHAPE(-1);
    cr_assert_eq(lam_tensor_reshape(a, &s, &r), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(r, 1, (const int64_t[]){24}, "(-1,)");
    lam_tensor_release(r);
    lam_tensor_release(a);
    tu_assert_released();
}

Test(tensor, reshape_rejects_mismatched_size) {
    const float data[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *a = tu_tensor(TU_SHAPE(2, 3), data, 6);
    lam_shape s = TU_SHAPE(4, 2);
    lam_tensor *r = TU_POISON;
    lam_status st = lam_tensor_reshape(a, &s, &r);
    tu_assert_status(st, LAM_ERR_SHAPE, "reshape (2, 3) to (4, 2)");
    cr_assert_null(r);
    tu_assert_msg("reshape", "reshape (2, 3) to (4, 2)");
    tu_assert_msg("(2, 3)", "reshape (2, 3) to (4, 2)");
    tu_assert_msg("(4, 2)", "reshape (2, 3) to (4, 2)");
    /* the source is untouched */
    cr_assert(memcmp(tu_read(a), data, sizeof data) == 0);
    lam_tensor_release(a);
    tu_assert_released();
}

Test(tensor, reshape_rejects_minus_one_that_does_not_divide) {
    const float data[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *a = tu_tensor(TU_SHAPE(2, 3), data, 6);
    lam_shape s = TU_SHAPE(-1, 4);
    lam_tensor *r = TU_POISON;
    tu_assert_status(lam_tensor_reshape(a, &s, &r), LAM_ERR_SHAPE, "reshape (2, 3) to (-1, 4)");
    cr_assert_null(r);
    tu_assert_msg("reshape", "reshape (2, 3) to (-1, 4)");
    tu_assert_msg("(2, 3)", "reshape (2, 3) to (-1, 4)");
    lam_tensor_release(a);
    tu_assert_released();
}

Test(tensor, reshape_rejects_two_minus_one_dims) {
    const float data[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *a = tu_tensor(TU_SHAPE(2, 3), data, 6);
    lam_shape s = TU_SHAPE(-1, -1);
    lam_tensor *r = TU_POISON;
    tu_assert_status(lam_tensor_reshape(a, &s, &r), LAM_ERR_SHAPE, "reshape to (-1, -1)");
    cr_assert_null(r);
    tu_assert_msg("reshape", "reshape to (-1, -1)");
    lam_tensor_release(a);
    tu_assert_released();
}

Test(tensor, reshape_rejects_more_than_max_dims) {
    const float data[2] = {1, 2};
    lam_tensor *a = tu_tensor(TU_SHAPE(2), data, 2);
    lam_shape s = TU_SHAPE(1, 1, 1, 1, 1, 1, 1, 2);
    s.ndim = 9;
    lam_tensor *r = TU_POISON;
    tu_assert_status(lam_tensor_reshape(a, &s, &r), LAM_ERR_SHAPE, "reshape to 9 dims");
    cr_assert_null(r);
    tu_assert_msg("reshape", "reshape to 9 dims");
    tu_assert_msg("9", "reshape to 9 dims");
    lam_tensor_release(a);
    tu_assert_released();
}

/* ---- copies between contexts ---------------------------------------------------------------- */

Test(tensor, copyto_always_copies_on_same_context) {
    const float data[6] = {1, -2, 3, -4, 5, -6};
    lam_tensor *t = tu_tensor(TU_SHAPE(2, 3), data, 6);
    size_t before = lam_tensor_live_count();
    lam_tensor *c = NULL;
    cr_assert_eq(lam_tensor_copyto(t, tu_ctx(), &c), LAM_OK, "%s", lam_last_error());
    cr_assert(c != NULL && c != t, "copyto must return a different tensor");
    cr_assert_eq(lam_tensor_live_count(), before + 1);
    cr_assert(lam_tensor_ctx(c) == tu_ctx());
    tu_assert_shape(c, 2, (const int64_t[]){2, 3}, "copy");
    cr_assert(memcmp(tu_read(c), data, sizeof data) == 0, "copy has the same values");

    cr_assert_eq(lam_op_fill(c, 7.0f), LAM_OK, "%s", lam_last_error());
    tu_assert_all(c, 7.0f, "modified copy");
    cr_assert(memcmp(tu_read(t), data, sizeof data) == 0, "original untouched by the copy");

    const float other[6] = {0, 0, 0, 0, 0, 1};
    cr_assert_eq(lam_tensor_write(t, other, 6), LAM_OK, "%s", lam_last_error());
    tu_assert_all(c, 7.0f, "copy untouched by the original");

    lam_tensor_release(c);
    lam_tensor_release(t);
    tu_assert_released();
}

Test(tensor, as_in_context_returns_same_tensor_when_already_there) {
    const float data[3] = {1, 2, 3};
    lam_tensor *t = tu_tensor(TU_SHAPE(3), data, 3);
    size_t before = lam_tensor_live_count();
    lam_tensor *same = NULL;
    cr_assert_eq(lam_tensor_as_in_context(t, tu_ctx(), &same), LAM_OK, "%s", lam_last_error());
    cr_assert(same == t, "as_in_context on the tensor's own context must return the tensor");
    cr_assert_eq(lam_tensor_live_count(), before, "no new tensor");
    /* it is a new reference: dropping it leaves t alive */
    lam_tensor_release(same);
    cr_assert_eq(lam_tensor_live_count(), before);
    cr_assert(memcmp(tu_read(t), data, sizeof data) == 0);
    lam_tensor_release(t);
    tu_assert_released();
}

/* ---- reference counting ------------------------------------------------------------------- */

Test(tensor, live_count_returns_to_start_after_release) {
    lam_ctx *ctx = tu_ctx();
    size_t start = lam_tensor_live_count();
    lam_shape s = TU_SHAPE(4, 5);
    lam_tensor *a = NULL, *b = NULL, *r = NULL, *c = NULL, *sum = NULL;
    cr_assert_eq(lam_tensor_create(ctx, &s, &a), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_live_count(), start + 1);
    cr_assert_eq(lam_tensor_full(ctx, &s, 2.0f, &b), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_live_count(), start + 2);
    lam_shape flat = TU_SHAPE(20);
    cr_assert_eq(lam_tensor_reshape(a, &flat, &r), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_copyto(b, ctx, &c), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_add(a, b, &sum), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_live_count(), start + 5);
    cr_assert(lam_tensor_retain(a) == a);
    cr_assert_eq(lam_tensor_live_count(), start + 5, "retain creates no tensor");
    lam_tensor_release(a);
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(r);
    lam_tensor_release(c);
    lam_tensor_release(sum);
    cr_assert_eq(lam_tensor_live_count(), start);
    tu_assert_released();
}

Test(tensor, retain_keeps_tensor_alive_until_last_release) {
    const float data[2] = {8.0f, 9.0f};
    lam_tensor *t = tu_tensor(TU_SHAPE(2), data, 2);
    size_t start = lam_tensor_live_count();
    cr_assert(lam_tensor_retain(t) == t);
    lam_tensor_release(t);
    cr_assert_eq(lam_tensor_live_count(), start, "one reference left");
    cr_assert(memcmp(tu_read(t), data, sizeof data) == 0);
    lam_tensor_release(t);
    cr_assert_eq(lam_tensor_live_count(), start - 1);
    tu_assert_released();
}

Test(tensor, retain_and_release_accept_null) {
    cr_assert_null(lam_tensor_retain(NULL));
    lam_tensor_release(NULL);
    tu_assert_released();
}

/* ---- NULL arguments ----------------------------------------------------------------------- */

Test(tensor, null_arguments_are_rejected) {
    lam_ctx *ctx = tu_ctx();
    lam_shape s = TU_SHAPE(2, 3);
    lam_tensor *t = TU_POISON;
    tu_assert_status(lam_tensor_create(ctx, NULL, &t), LAM_ERR_INVALID_ARGUMENT,
                     "create with NULL shape");
    cr_assert_null(t);
    tu_assert_msg("NULL", "create with NULL shape");

    tu_assert_status(lam_tensor_create(ctx, &s, NULL), LAM_ERR_INVALID_ARGUMENT,
                     "create with NULL out");
    tu_assert_msg("NULL", "create with NULL out");

    t = TU_POISON;
    tu_assert_status(lam_tensor_from_data(ctx, &s, NULL, 6, &t), LAM_ERR_INVALID_ARGUMENT,
                     "from_data with NULL data");
    cr_assert_null(t);
    tu_assert_msg("NULL", "from_data with NULL data");

    const float data[6] = {1, 2, 3, 4, 5, 6};
    t = tu_tensor(s, data, 6);
    tu_assert_status(lam_tensor_read(t, NULL, 6), LAM_ERR_INVALID_ARGUMENT, "read into NULL");
    tu_assert_msg("NULL", "read into NULL");
    tu_assert_status(lam_tensor_write(t, NULL, 6), LAM_ERR_INVALID_ARGUMENT, "write from NULL");
    tu_assert_msg("NULL", "write from NULL");
    float v;
    tu_assert_status(lam_tensor_scalar(NULL, &v), LAM_ERR_INVALID_ARGUMENT, "scalar of NULL");
    tu_assert_msg("NULL", "scalar of NULL");
    lam_tensor *r = TU_POISON;
    tu_assert_status(lam_tensor_reshape(t, NULL, &r), LAM_ERR_INVALID_ARGUMENT,
                     "reshape to NULL shape");
    cr_assert_null(r);
    tu_assert_msg("reshape", "reshape to NULL shape");
    lam_tensor *c = TU_POISON;
    tu_assert_status(lam_tensor_copyto(NULL, ctx, &c), LAM_ERR_INVALID_ARGUMENT, "copyto of NULL");
    cr_assert_null(c);
    tu_assert_msg("copyto", "copyto of NULL");
    lam_tensor_release(t);
    tu_assert_released();
}
