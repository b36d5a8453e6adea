/*
 * The index, random, selection and conversion ops of ABI 2.0 through their public front ends
 * (lamina.h): gather / scatter-add of rows, random tensors, where, comparisons, clamp, cast.
 * References: worked by hand here, or ref/index_refs.h, written by ref/gen_index_refs.py
 * (NumPy, and a Philox-4x32-10 of its own following plugin.h's layout for LAM_OP_RANDOM).
 * Tensors live on the default context ($LAMINA_BACKEND), so the Vulkan pass runs them there.
 */
#include "test_util.h"

#include "ref/index_refs.h"

#include <stdlib.h>

TestSuite(ops_index, .fini = tu_fini);

/* ---- helpers ---- */

static lam_tensor *typed(lam_ctx *ctx, lam_dtype dt, lam_shape shape, const void *data,
                         size_t bytes) {
    lam_tensor *t = NULL;
    lam_status st = lam_tensor_create_dtype(ctx, dt, &shape, &t);
    cr_assert_eq(st, LAM_OK, "lam_tensor_create_dtype: %s", lam_last_error());
    st = lam_tensor_write_bytes(t, data, bytes);
    cr_assert_eq(st, LAM_OK, "lam_tensor_write_bytes: %s", lam_last_error());
    return t;
}

static lam_tensor *i32(lam_shape shape, const int32_t *v, size_t n) {
    return typed(tu_ctx(), LAM_DTYPE_I32, shape, v, n * sizeof *v);
}

static lam_tensor *i64(lam_shape shape, const int64_t *v, size_t n) {
    return typed(tu_ctx(), LAM_DTYPE_I64, shape, v, n * sizeof *v);
}

static void expect_values(const lam_tensor *t, const float *want, size_t n, const char *what) {
    cr_assert_eq(lam_tensor_dtype(t), LAM_DTYPE_F32, "%s: dtype", what);
    cr_assert_eq((size_t)lam_tensor_numel(t), n, "%s: numel", what);
    const float *got = tu_read(t);
    for (size_t i = 0; i < n; i++) {
        int same = (isnan(want[i]) && isnan(got[i])) || got[i] == want[i];
        cr_assert(same, "%s: element %zu is %.9g, expected %.9g", what, i, (double)got[i],
                  (double)want[i]);
    }
}

/* ---- gather rows ---- */

static void check_gather(lam_tensor *idx, const char *what) {
    lam_tensor *table = tu_tensor(TU_SHAPE(4, 3), ref_gather_table, 12), *out = TU_POISON;
    lam_status st = lam_op_gather_rows(table, idx, &out);
    cr_assert_eq(st, LAM_OK, "%s: %s", what, lam_last_error());
    tu_assert_shape(out, 3, (const int64_t[]){2, 3, 3}, what);
    expect_values(out, ref_gather_out, 18, what);
    lam_tensor_release(out);
    lam_tensor_release(table);
    lam_tensor_release(idx);
    tu_assert_released();
}

Test(ops_index, gather_rows_int32_indices_of_2d_shape) {
    const int32_t v[6] = {3, 0, 3, 1, 2, 0};
    check_gather(i32(TU_SHAPE(2, 3), v, 6), "gather (4, 3) by int32 (2, 3)");
}

Test(ops_index, gather_rows_int64_indices_of_2d_shape) {
    const int64_t v[6] = {3, 0, 3, 1, 2, 0};
    check_gather(i64(TU_SHAPE(2, 3), v, 6), "gather (4, 3) by int64 (2, 3)");
}

Test(ops_index, gather_rows_gradient_adds_repeated_rows) {
    const int32_t v[6] = {3, 0, 3, 1, 2, 0};
    lam_tensor *table = tu_tensor(TU_SHAPE(4, 3), ref_gather_table, 12);
    lam_tensor *idx = i32(TU_SHAPE(2, 3), v, 6), *out = NULL, *g = NULL;
    lam_tensor *head = tu_tensor(TU_SHAPE(2, 3, 3), ref_gather_head, 18);
    cr_assert_eq(lam_tensor_attach_grad(table), LAM_OK, "%s", lam_last_error());
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_op_gather_rows(table, idx, &out);
    lam_autograd_record_end(was);
    cr_assert_eq(st, LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_autograd_backward(out, head), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_grad(table, &g), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(g, 2, (const int64_t[]){4, 3}, "table gradient");
    expect_values(g, ref_gather_grad, 12, "gradient of gather to the table (np.add.at)");
    lam_tensor_release(g);
    lam_tensor_release(head);
    lam_tensor_release(out);
    lam_tensor_release(idx);
    lam_tensor_release(table);
    tu_assert_released();
}

/* An index outside [0, V) names its position and value; an asynchronous backend may report
 * it when the result is read (lamina.h). */
static void check_bad_index(lam_tensor *idx, const char *pos, const char *value) {
    lam_tensor *table = tu_tensor(TU_SHAPE(4, 3), ref_gather_table, 12), *out = TU_POISON;
    lam_status st = lam_op_gather_rows(table, idx, &out);
    if (st == LAM_OK) {
        float buf[18];
        st = lam_tensor_read(out, buf, (size_t)lam_tensor_numel(out));
        lam_tensor_release(out);
    } else {
        cr_assert_null(out, "a failed gather must leave out NULL");
    }
    tu_assert_status(st, LAM_ERR_INVALID_ARGUMENT, "gather with a bad index");
    tu_assert_msg(pos, "the bad index's position");
    tu_assert_msg(value, "the bad index's value");
    tu_assert_msg("[0, 4)", "the valid range");
    lam_tensor_release(table);
    lam_tensor_release(idx);
}

Test(ops_index, gather_rows_refuses_negative_index) {
    const int32_t v[6] = {0, 1, 2, 3, -1, 0};
    check_bad_index(i32(TU_SHAPE(2, 3), v, 6), "position 4", "-1");
}

Test(ops_index, gather_rows_refuses_index_equal_to_rows) {
    const int64_t v[6] = {0, 1, 4, 3, 2, 0};
    check_bad_index(i64(TU_SHAPE(2, 3), v, 6), "position 2", "4");
}

Test(ops_index, gather_rows_refuses_float_indices_and_1d_table) {
    float f[2] = {0, 1};
    lam_tensor *table = tu_tensor(TU_SHAPE(4, 3), ref_gather_table, 12);
    lam_tensor *fidx = tu_tensor(TU_SHAPE(2), f, 2), *out = TU_POISON;
    tu_assert_status(lam_op_gather_rows(table, fidx, &out), LAM_ERR_DTYPE, "float indices");
    tu_assert_msg("lam_op_gather_rows: Dtype mismatch, indices are float32, expected int32",
                  "float indices");
    cr_assert_null(out);
    const int32_t v[2] = {0, 1};
    lam_tensor *idx = i32(TU_SHAPE(2), v, 2), *flat = tu_tensor(TU_SHAPE(12), ref_gather_table, 12);
    tu_assert_status(lam_op_gather_rows(flat, idx, &out), LAM_ERR_SHAPE, "1-D table");
    tu_assert_msg("lam_op_gather_rows: Shape mismatch, the table is (12,), expected 2-D",
                  "1-D table");
    lam_tensor_release(flat);
    lam_tensor_release(idx);
    lam_tensor_release(fidx);
    lam_tensor_release(table);
}

/* ---- scatter-add rows ---- */

Test(ops_index, scatter_add_rows_adds_in_order_and_leaves_target) {
    const int64_t v[5] = {1, 3, 1, 0, 1};
    lam_tensor *target = tu_tensor(TU_SHAPE(4, 2), ref_scatter_target, 8);
    lam_tensor *values = tu_tensor(TU_SHAPE(5, 2), ref_scatter_values, 10);
    lam_tensor *idx = i64(TU_SHAPE(5), v, 5), *out = TU_POISON;
    lam_status st = lam_op_scatter_add_rows(target, values, idx, &out);
    cr_assert_eq(st, LAM_OK, "%s", lam_last_error());
    tu_assert_shape(out, 2, (const int64_t[]){4, 2}, "scatter-add");
    expect_values(out, ref_scatter_out, 8, "scatter-add (np.add.at)");
    expect_values(target, ref_scatter_target, 8, "the target afterwards");
    lam_tensor_release(out);
    const int32_t v32[5] = {1, 3, 1, 0, 1};
    lam_tensor *idx32 = i32(TU_SHAPE(5), v32, 5);
    cr_assert_eq(lam_op_scatter_add_rows(target, values, idx32, &out), LAM_OK, "%s",
                 lam_last_error());
    expect_values(out, ref_scatter_out, 8, "scatter-add, int32 indices");
    lam_tensor_release(out);
    lam_tensor_release(idx32);
    lam_tensor_release(idx);
    lam_tensor_release(values);
    lam_tensor_release(target);
    tu_assert_released();
}

Test(ops_index, scatter_add_rows_refused_while_recording) {
    const int32_t v[5] = {1, 3, 1, 0, 1};
    lam_tensor *target = tu_tensor(TU_SHAPE(4, 2), ref_scatter_target, 8);
    lam_tensor *values = tu_tensor(TU_SHAPE(5, 2), ref_scatter_values, 10);
    lam_tensor *idx = i32(TU_SHAPE(5), v, 5), *out = TU_POISON;
    cr_assert_eq(lam_tensor_attach_grad(values), LAM_OK, "%s", lam_last_error());
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_op_scatter_add_rows(target, values, idx, &out);
    lam_autograd_record_end(was);
    tu_assert_status(st, LAM_ERR_UNSUPPORTED, "scatter-add while recording");
    tu_assert_msg("lam_op_scatter_add_rows: Cannot differentiate", "scatter-add while recording");
    cr_assert_null(out);
    /* not recording: the same call works */
    cr_assert_eq(lam_op_scatter_add_rows(target, values, idx, &out), LAM_OK, "%s",
                 lam_last_error());
    expect_values(out, ref_scatter_out, 8, "scatter-add outside recording");
    lam_tensor_release(out);
    lam_tensor_release(idx);
    lam_tensor_release(values);
    lam_tensor_release(target);
}

Test(ops_index, scatter_add_rows_refuses_bad_index_and_shapes) {
    const int32_t bad[5] = {1, 3, 7, 0, 1};
    lam_tensor *target = tu_tensor(TU_SHAPE(4, 2), ref_scatter_target, 8);
    lam_tensor *values = tu_tensor(TU_SHAPE(5, 2), ref_scatter_values, 10);
    lam_tensor *idx = i32(TU_SHAPE(5), bad, 5), *out = TU_POISON;
    lam_status st = lam_op_scatter_add_rows(target, values, idx, &out);
    if (st == LAM_OK) { /* an asynchronous backend reports it when read */
        float buf[8];
        st = lam_tensor_read(out, buf, 8);
        lam_tensor_release(out);
    }
    tu_assert_status(st, LAM_ERR_INVALID_ARGUMENT, "scatter-add with index 7 of 4 rows");
    tu_assert_msg("position 2", "position");
    tu_assert_msg("7", "value");
    lam_tensor *idx4 = i32(TU_SHAPE(4), bad, 4);
    out = TU_POISON;
    tu_assert_status(lam_op_scatter_add_rows(target, values, idx4, &out), LAM_ERR_SHAPE,
                     "5 rows of values, 4 indices");
    tu_assert_msg("lam_op_scatter_add_rows: Shape mismatch, target (4, 2), values (5, 2), "
                  "indices (4,)",
                  "shape message");
    cr_assert_null(out);
    lam_tensor_release(idx4);
    lam_tensor_release(idx);
    lam_tensor_release(values);
    lam_tensor_release(target);
}

/* ---- random ---- */

static lam_tensor *uniform(lam_ctx *ctx, lam_shape s, float lo, float hi) {
    lam_tensor *t = NULL;
    lam_status st = lam_op_random_uniform(ctx, &s, lo, hi, &t);
    cr_assert_eq(st, LAM_OK, "lam_op_random_uniform: %s", lam_last_error());
    return t;
}

Test(ops_index, random_first_values_match_independent_philox) {
    lam_seed(REF_RANDOM_SEED);
    lam_tensor *u = uniform(NULL, TU_SHAPE(2, 5), -1.0f, 3.0f), *b = NULL, *n = NULL;
    tu_assert_shape(u, 2, (const int64_t[]){2, 5}, "uniform");
    expect_values(u, ref_uniform, 10, "uniform [-1, 3), the stream's elements 0..9");
    lam_shape sb = TU_SHAPE(7), sn = TU_SHAPE(5);
    cr_assert_eq(lam_op_random_bernoulli(NULL, &sb, 0.3f, &b), LAM_OK, "%s", lam_last_error());
    expect_values(b, ref_bernoulli, 7, "bernoulli 0.3, elements 10..16");
    cr_assert_eq(lam_op_random_normal(NULL, &sn, 0.5f, 2.0f, &n), LAM_OK, "%s", lam_last_error());
    const float *got = tu_read(n);
    for (int i = 0; i < 5; i++) { /* logf/cosf/sinf: a few ulp */
        cr_assert(tu_close(got[i], ref_normal[i], 1e-5, 1e-5), "normal %d is %.9g, expected %.9g",
                  i, (double)got[i], (double)ref_normal[i]);
    }
    lam_tensor_release(n);
    lam_tensor_release(b);
    lam_tensor_release(u);
    tu_assert_released();
}

Test(ops_index, random_reseeding_repeats_and_consecutive_calls_differ) {
    lam_seed(REF_RANDOM_SEED);
    lam_tensor *a = uniform(NULL, TU_SHAPE(10), -1.0f, 3.0f);
    lam_tensor *b = uniform(NULL, TU_SHAPE(10), -1.0f, 3.0f);
    float va[10], vb[10];
    cr_assert_eq(lam_tensor_read(a, va, 10), LAM_OK);
    cr_assert_eq(lam_tensor_read(b, vb, 10), LAM_OK);
    cr_assert(memcmp(va, vb, sizeof va) != 0, "two consecutive calls drew the same numbers");
    lam_seed(REF_RANDOM_SEED);
    lam_tensor *c = uniform(NULL, TU_SHAPE(10), -1.0f, 3.0f);
    expect_values(c, va, 10, "the first call after re-seeding");
    expect_values(c, ref_uniform, 10, "and the reference");
    lam_seed(REF_RANDOM_SEED + 1);
    lam_tensor *d = uniform(NULL, TU_SHAPE(10), -1.0f, 3.0f);
    const float *vd = tu_read(d);
    cr_assert(memcmp(va, vd, sizeof va) != 0, "another seed drew the same numbers");
    lam_tensor *all[] = {a, b, c, d};
    for (int i = 0; i < 4; i++) {
        lam_tensor_release(all[i]);
    }
    tu_assert_released();
}

Test(ops_index, random_normal_moments_over_1e5_samples) {
    lam_seed(7);
    lam_shape s = TU_SHAPE(100000);
    lam_tensor *t = NULL;
    cr_assert_eq(lam_op_random_normal(NULL, &s, 1.5f, 2.0f, &t), LAM_OK, "%s", lam_last_error());
    float *v = malloc(100000 * sizeof *v);
    cr_assert_not_null(v);
    cr_assert_eq(lam_tensor_read(t, v, 100000), LAM_OK, "%s", lam_last_error());
    double sum = 0, sq = 0;
    for (int i = 0; i < 100000; i++) {
        cr_assert(isfinite(v[i]), "sample %d is %g", i, (double)v[i]);
        sum += v[i];
    }
    double mean = sum / 1e5;
    for (int i = 0; i < 100000; i++) {
        sq += (v[i] - mean) * (v[i] - mean);
    }
    double sd = sqrt(sq / 1e5);
    /* standard errors: 2 / sqrt(1e5) = 0.0063 for the mean, about 0.0045 for the std */
    cr_assert(fabs(mean - 1.5) < 0.03, "mean %g, expected 1.5", mean);
    cr_assert(fabs(sd - 2.0) < 0.03, "std %g, expected 2", sd);
    free(v);
    lam_tensor_release(t);
}

/* 1000 + (1001 - 1000) * f rounds to 1001 for f > 1 - 2^-15 (float spacing near 1000 is
 * 2^-14): about 32 of 2^20 elements would leave the half-open interval. */
Test(ops_index, random_uniform_stays_below_high_when_rounding_reaches_it) {
    lam_seed(5);
    const int n = 1 << 20;
    lam_tensor *t = uniform(NULL, TU_SHAPE(n), 1000.0f, 1001.0f);
    float *v = malloc((size_t)n * sizeof *v);
    cr_assert_not_null(v);
    cr_assert_eq(lam_tensor_read(t, v, (size_t)n), LAM_OK, "%s", lam_last_error());
    int top = 0;
    for (int i = 0; i < n; i++) {
        cr_assert(v[i] >= 1000.0f && v[i] < 1001.0f, "element %d is %.9g, outside [1000, 1001)", i,
                  (double)v[i]);
        top += v[i] == nextafterf(1001.0f, 0.0f);
    }
    cr_assert(top > 0, "no element at the float below 1001: the test lost its point");
    free(v);
    lam_tensor_release(t);
    tu_assert_released();
}

Test(ops_index, random_uniform_and_bernoulli_bit_identical_on_cpu_and_vulkan) {
    lam_ctx *cpu = NULL, *vk = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &cpu), LAM_OK, "%s", lam_last_error());
    if (lam_ctx_get("vulkan", &vk) != LAM_OK) {
        cr_skip("no Vulkan device: %s", lam_last_error());
    }
    lam_tensor *t[4] = {NULL};
    lam_shape s = TU_SHAPE(3, 37);
    lam_ctx *ctxs[2] = {cpu, vk};
    for (int k = 0; k < 2; k++) {
        lam_seed(99);
        t[2 * k] = uniform(ctxs[k], s, -2.5f, 0.75f);
        cr_assert_eq(lam_op_random_bernoulli(ctxs[k], &s, 0.4f, &t[2 * k + 1]), LAM_OK, "%s",
                     lam_last_error());
    }
    float a[111], b[111];
    for (int j = 0; j < 2; j++) {
        cr_assert_eq(lam_tensor_read(t[j], a, 111), LAM_OK, "%s", lam_last_error());
        cr_assert_eq(lam_tensor_read(t[2 + j], b, 111), LAM_OK, "%s", lam_last_error());
        for (int i = 0; i < 111; i++) {
            cr_assert(memcmp(&a[i], &b[i], sizeof a[i]) == 0,
                      "%s element %d: cpu %.9g, vulkan %.9g", j ? "bernoulli" : "uniform", i,
                      (double)a[i], (double)b[i]);
        }
    }
    for (int i = 0; i < 4; i++) {
        lam_tensor_release(t[i]);
    }
}

/* ---- where ---- */

static lam_tensor *where_of(const lam_tensor *c, const lam_tensor *x, const lam_tensor *y) {
    lam_tensor *o = TU_POISON;
    lam_status st = lam_op_where(c, x, y, &o);
    cr_assert_eq(st, LAM_OK, "lam_op_where: %s", lam_last_error());
    return o;
}

Test(ops_index, where_takes_branches_and_nan_not_taken_does_not_leak) {
    float c[5] = {1, 0, 2, 0, -1}, x[5] = {1, NAN, 3, NAN, 5}, y[5] = {NAN, 20, NAN, 40, NAN};
    const float want[5] = {1, 20, 3, 40, 5};
    lam_tensor *tc = tu_tensor(TU_SHAPE(5), c, 5), *tx = tu_tensor(TU_SHAPE(5), x, 5);
    lam_tensor *ty = tu_tensor(TU_SHAPE(5), y, 5);
    lam_tensor *o = where_of(tc, tx, ty);
    expect_values(o, want, 5, "where with float32 cond");
    lam_tensor_release(o);
    const uint8_t cu[5] = {1, 0, 255, 0, 7};
    lam_tensor *tu8 = typed(tu_ctx(), LAM_DTYPE_U8, TU_SHAPE(5), cu, 5);
    o = where_of(tu8, tx, ty);
    expect_values(o, want, 5, "where with uint8 cond");
    lam_tensor_release(o);
    const int32_t ci[5] = {1, 0, 1, 0, 1};
    lam_tensor *ti = i32(TU_SHAPE(5), ci, 5);
    o = TU_POISON;
    tu_assert_status(lam_op_where(ti, tx, ty, &o), LAM_ERR_DTYPE, "int32 cond");
    tu_assert_msg("lam_op_where: Dtype mismatch, cond is int32, expected float32 or uint8",
                  "int32 cond");
    cr_assert_null(o);
    lam_tensor *short_y = tu_tensor(TU_SHAPE(4), y, 4);
    tu_assert_status(lam_op_where(tc, tx, short_y, &o), LAM_ERR_SHAPE, "shapes differ");
    tu_assert_msg("lam_op_where: Shape mismatch, (5,) and (4,)", "shapes differ");
    lam_tensor *all[] = {tc, tx, ty, tu8, ti, short_y};
    for (int i = 0; i < 6; i++) {
        lam_tensor_release(all[i]);
    }
    tu_assert_released();
}

/* sum(w * where(c, x, y)) */
static double where_loss(const lam_tensor *c, const lam_tensor *x, const lam_tensor *y,
                         const lam_tensor *w) {
    lam_tensor *o = where_of(c, x, y), *p = NULL, *s = NULL;
    cr_assert_eq(lam_op_mul(o, w, &p), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_sum(p, NULL, 0, 0, &s), LAM_OK, "%s", lam_last_error());
    float v;
    cr_assert_eq(lam_tensor_scalar(s, &v), LAM_OK, "%s", lam_last_error());
    lam_tensor_release(s);
    lam_tensor_release(p);
    lam_tensor_release(o);
    return v;
}

Test(ops_index, where_gradients_match_finite_differences) {
    float c[4] = {1, 0, 0, 1}, x[4] = {0.5f, -1, 2, 3}, y[4] = {4, -2, 0.25f, 1};
    float w[4] = {1.5f, -2, 0.5f, 3};
    lam_tensor *tc = tu_tensor(TU_SHAPE(4), c, 4), *tx = tu_tensor(TU_SHAPE(4), x, 4);
    lam_tensor *ty = tu_tensor(TU_SHAPE(4), y, 4), *tw = tu_tensor(TU_SHAPE(4), w, 4);
    cr_assert_eq(lam_tensor_attach_grad(tx), LAM_OK);
    cr_assert_eq(lam_tensor_attach_grad(ty), LAM_OK);
    int was = lam_autograd_record_begin(1);
    lam_tensor *o = where_of(tc, tx, ty);
    lam_autograd_record_end(was);
    cr_assert_eq(lam_autograd_backward(o, tw), LAM_OK, "%s", lam_last_error());
    lam_tensor *gx = NULL, *gy = NULL;
    cr_assert_eq(lam_tensor_grad(tx, &gx), LAM_OK);
    cr_assert_eq(lam_tensor_grad(ty, &gy), LAM_OK);
    float vx[4], vy[4];
    cr_assert_eq(lam_tensor_read(gx, vx, 4), LAM_OK);
    cr_assert_eq(lam_tensor_read(gy, vy, 4), LAM_OK);
    const float h = 1e-2f;
    for (int i = 0; i < 4; i++) {
        float xp[4], xm[4], yp[4], ym[4];
        memcpy(xp, x, sizeof x);
        memcpy(xm, x, sizeof x);
        memcpy(yp, y, sizeof y);
        memcpy(ym, y, sizeof y);
        xp[i] += h;
        xm[i] -= h;
        yp[i] += h;
        ym[i] -= h;
        lam_tensor *a = tu_tensor(TU_SHAPE(4), xp, 4), *b = tu_tensor(TU_SHAPE(4), xm, 4);
        double fx = (where_loss(tc, a, ty, tw) - where_loss(tc, b, ty, tw)) / (2.0 * h);
        lam_tensor_release(a);
        lam_tensor_release(b);
        a = tu_tensor(TU_SHAPE(4), yp, 4);
        b = tu_tensor(TU_SHAPE(4), ym, 4);
        double fy = (where_loss(tc, tx, a, tw) - where_loss(tc, tx, b, tw)) / (2.0 * h);
        lam_tensor_release(a);
        lam_tensor_release(b);
        cr_assert(fabs(vx[i] - fx) < 1e-3, "d/dx[%d]: autograd %g, finite differences %g", i,
                  (double)vx[i], fx);
        cr_assert(fabs(vy[i] - fy) < 1e-3, "d/dy[%d]: autograd %g, finite differences %g", i,
                  (double)vy[i], fy);
        /* and by hand: w where chosen, else 0 */
        cr_assert_eq(vx[i], c[i] != 0 ? w[i] : 0.0f, "d/dx[%d] is %g", i, (double)vx[i]);
        cr_assert_eq(vy[i], c[i] != 0 ? 0.0f : w[i], "d/dy[%d] is %g", i, (double)vy[i]);
    }
    lam_tensor *all[] = {gx, gy, o, tc, tx, ty, tw};
    for (int i = 0; i < 7; i++) {
        lam_tensor_release(all[i]);
    }
    tu_assert_released();
}

/* ---- comparisons ---- */

Test(ops_index, comparisons_with_nan_and_signed_zero) {
    float a[6] = {1, 2, NAN, 3, -0.0f, NAN}, b[6] = {2, 2, 1, NAN, 0.0f, NAN};
    const float gt[6] = {0, 0, 0, 0, 0, 0}, lt[6] = {1, 0, 0, 0, 0, 0}, eq[6] = {0, 1, 0, 0, 1, 0};
    const float gt_swapped[6] = {1, 0, 0, 0, 0, 0};
    lam_tensor *ta = tu_tensor(TU_SHAPE(2, 3), a, 6), *tb = tu_tensor(TU_SHAPE(2, 3), b, 6);
    lam_tensor *o = NULL;
    cr_assert_eq(lam_op_greater(ta, tb, &o), LAM_OK, "%s", lam_last_error());
    expect_values(o, gt, 6, "a > b");
    lam_tensor_release(o);
    cr_assert_eq(lam_op_greater(tb, ta, &o), LAM_OK, "%s", lam_last_error());
    expect_values(o, gt_swapped, 6, "b > a");
    lam_tensor_release(o);
    cr_assert_eq(lam_op_less(ta, tb, &o), LAM_OK, "%s", lam_last_error());
    expect_values(o, lt, 6, "a < b");
    lam_tensor_release(o);
    cr_assert_eq(lam_op_equal(ta, tb, &o), LAM_OK, "%s", lam_last_error());
    expect_values(o, eq, 6, "a == b");
    lam_tensor_release(o);
    lam_tensor *tc = tu_tensor(TU_SHAPE(6), a, 6);
    o = TU_POISON;
    tu_assert_status(lam_op_less(ta, tc, &o), LAM_ERR_SHAPE, "(2, 3) < (6,)");
    tu_assert_msg("lam_op_less: Shape mismatch, (2, 3) and (6,)", "shape message");
    cr_assert_null(o);
    const int32_t iv[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *ti = i32(TU_SHAPE(2, 3), iv, 6);
    tu_assert_status(lam_op_equal(ta, ti, &o), LAM_ERR_DTYPE, "float32 == int32");
    tu_assert_msg("lam_op_equal: Dtype mismatch, the second operand is int32, expected float32",
                  "dtype message");
    lam_tensor_release(ti);
    lam_tensor_release(tc);
    lam_tensor_release(ta);
    lam_tensor_release(tb);
    tu_assert_released();
}

/* ---- clamp ---- */

Test(ops_index, clamp_values_and_nan) {
    float x[7] = {-2, -1, 0, 0.5f, 1, 3, NAN};
    const float want[7] = {-1, -1, 0, 0.5f, 1, 1, NAN};
    lam_tensor *t = tu_tensor(TU_SHAPE(7), x, 7), *o = NULL;
    cr_assert_eq(lam_op_clamp(t, -1.0f, 1.0f, &o), LAM_OK, "%s", lam_last_error());
    expect_values(o, want, 7, "clamp to [-1, 1]");
    lam_tensor_release(o);
    o = TU_POISON;
    tu_assert_status(lam_op_clamp(t, 2.0f, 1.0f, &o), LAM_ERR_INVALID_ARGUMENT, "low > high");
    tu_assert_msg("lam_op_clamp: Invalid argument, low 2 > high 1", "low > high");
    cr_assert_null(o);
    lam_tensor_release(t);
    tu_assert_released();
}

static double clamp_sum(const float *x, int n) {
    lam_tensor *t = tu_tensor(TU_SHAPE(n), x, (size_t)n), *o = NULL, *s = NULL;
    cr_assert_eq(lam_op_clamp(t, -1.0f, 1.0f, &o), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_sum(o, NULL, 0, 0, &s), LAM_OK, "%s", lam_last_error());
    float v;
    cr_assert_eq(lam_tensor_scalar(s, &v), LAM_OK);
    lam_tensor_release(s);
    lam_tensor_release(o);
    lam_tensor_release(t);
    return v;
}

Test(ops_index, clamp_gradient_at_inside_and_outside_bounds) {
    float x[6] = {-2, -1, -0.25f, 0.5f, 1, 3};
    const float want[6] = {0, 1, 1, 1, 1, 0}; /* 1 inside [low, high], bounds included */
    lam_tensor *t = tu_tensor(TU_SHAPE(6), x, 6), *o = NULL, *g = NULL;
    cr_assert_eq(lam_tensor_attach_grad(t), LAM_OK);
    int was = lam_autograd_record_begin(1);
    cr_assert_eq(lam_op_clamp(t, -1.0f, 1.0f, &o), LAM_OK, "%s", lam_last_error());
    lam_autograd_record_end(was);
    cr_assert_eq(lam_autograd_backward(o, NULL), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_grad(t, &g), LAM_OK);
    expect_values(g, want, 6, "clamp's gradient");
    const float *got = tu_read(g);
    float gv[6];
    memcpy(gv, got, sizeof gv);
    const float h = 1e-2f;
    for (int i = 0; i < 6; i++) {
        if (x[i] == -1.0f || x[i] == 1.0f) {
            continue; /* at a bound the function has a kink: the rule says 1 (above) */
        }
        float xp[6], xm[6];
        memcpy(xp, x, sizeof x);
        memcpy(xm, x, sizeof x);
        xp[i] += h;
        xm[i] -= h;
        double fd = (clamp_sum(xp, 6) - clamp_sum(xm, 6)) / (2.0 * h);
        cr_assert(fabs(fd - gv[i]) < 1e-3, "d/dx[%d]: autograd %g, finite differences %g", i,
                  (double)gv[i], fd);
    }
    lam_tensor_release(g);
    lam_tensor_release(o);
    lam_tensor_release(t);
    tu_assert_released();
}

/* ---- cast ---- */

Test(ops_index, cast_float_to_int32_truncates_toward_zero) {
    float x[7] = {1.9f, -1.9f, 0.5f, -0.5f, 2.0f, 1e9f, -2147483648.0f};
    const int32_t want[7] = {1, -1, 0, 0, 2, 1000000000, INT32_MIN};
    lam_tensor *t = tu_tensor(TU_SHAPE(7), x, 7), *o = NULL;
    cr_assert_eq(lam_op_cast(t, LAM_DTYPE_I32, &o), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_dtype(o), LAM_DTYPE_I32);
    tu_assert_shape(o, 1, (const int64_t[]){7}, "cast");
    int32_t got[7];
    cr_assert_eq(lam_tensor_read_bytes(o, got, sizeof got), LAM_OK, "%s", lam_last_error());
    for (int i = 0; i < 7; i++) {
        cr_assert_eq(got[i], want[i], "element %d: %d, expected %d", i, got[i], want[i]);
    }
    lam_tensor_release(o);
    lam_tensor_release(t);
    tu_assert_released();
}

Test(ops_index, cast_int32_to_float_rounds_to_nearest) {
    const int32_t v[4] = {1, -7, 16777217, 16777219}; /* 2^24 + 1 and + 3 are not floats */
    const float want[4] = {1.0f, -7.0f, 16777216.0f, 16777220.0f};
    lam_tensor *t = i32(TU_SHAPE(2, 2), v, 4), *o = NULL;
    cr_assert_eq(lam_op_cast(t, LAM_DTYPE_F32, &o), LAM_OK, "%s", lam_last_error());
    tu_assert_shape(o, 2, (const int64_t[]){2, 2}, "cast");
    expect_values(o, want, 4, "int32 -> float32");
    lam_tensor_release(o);
    lam_tensor_release(t);
    tu_assert_released();
}

/* Casting to the same dtype is a copy: of an int32 tensor too (lam_op_copy of any dtype). */
Test(ops_index, cast_to_same_integer_dtype_copies) {
    const int32_t v[3] = {5, -6, 2147483647};
    lam_tensor *t = i32(TU_SHAPE(3), v, 3), *o = NULL;
    lam_status st = lam_op_cast(t, LAM_DTYPE_I32, &o);
    cr_assert_eq(st, LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_dtype(o), LAM_DTYPE_I32);
    int32_t got[3];
    cr_assert_eq(lam_tensor_read_bytes(o, got, sizeof got), LAM_OK, "%s", lam_last_error());
    cr_assert(got[0] == 5 && got[1] == -6 && got[2] == 2147483647, "%d %d %d", got[0], got[1],
              got[2]);
    lam_tensor_release(o);
    lam_tensor_release(t);
    tu_assert_released();
}

static void check_cast_error(const float *x, int n, lam_dtype to, const char *elem,
                             const char *value, const char *dtname) {
    lam_tensor *t = tu_tensor(TU_SHAPE(n), x, (size_t)n), *o = TU_POISON;
    lam_status st = lam_op_cast(t, to, &o);
    tu_assert_status(st, LAM_ERR_INVALID_ARGUMENT, "bad cast");
    tu_assert_msg("lam_op_cast", "subject");
    tu_assert_msg(elem, "the element");
    tu_assert_msg(value, "the value");
    tu_assert_msg(dtname, "the dtype");
    cr_assert_null(o);
    lam_tensor_release(t);
    tu_assert_released();
}

Test(ops_index, cast_refuses_nan) {
    float x[3] = {1, 2, NAN};
    check_cast_error(x, 3, LAM_DTYPE_I32, "element 2", "nan", "int32");
}

Test(ops_index, cast_refuses_out_of_range) {
    float x[3] = {1, 3e9f, 2};
    check_cast_error(x, 3, LAM_DTYPE_I32, "element 1", "3e+09", "int32");
    float y[2] = {255.5f, 256.0f};
    check_cast_error(y, 2, LAM_DTYPE_U8, "element 1", "256", "uint8");
}

Test(ops_index, cast_refuses_unsupported_dtype) {
    float x[2] = {1, 2};
    lam_tensor *t = tu_tensor(TU_SHAPE(2), x, 2), *o = TU_POISON;
    tu_assert_status(lam_op_cast(t, LAM_DTYPE_F16, &o), LAM_ERR_DTYPE, "cast to float16");
    tu_assert_msg("lam_op_cast: Unsupported dtype float16", "cast to float16");
    cr_assert_null(o);
    lam_tensor_release(t);
}

/* ---- a backend without the op: the host stages it on the CPU ---- */

/* Vulkan has no int64 gather and no cast to uint8: both run on the CPU, staged. */
Test(ops_index, ops_a_backend_lacks_run_staged_on_the_cpu) {
    lam_ctx *vk = NULL;
    if (lam_ctx_get("vulkan", &vk) != LAM_OK) {
        cr_skip("no Vulkan device: %s", lam_last_error());
    }
    const int64_t v[6] = {3, 0, 3, 1, 2, 0};
    lam_tensor *table = NULL, *out = NULL, *idx = typed(vk, LAM_DTYPE_I64, TU_SHAPE(2, 3), v, 48);
    lam_shape ts = TU_SHAPE(4, 3);
    cr_assert_eq(lam_tensor_from_data(vk, &ts, ref_gather_table, 12, &table), LAM_OK);
    cr_assert_eq(lam_op_gather_rows(table, idx, &out), LAM_OK, "%s", lam_last_error());
    cr_assert(lam_tensor_ctx(out) == vk, "the result lives on the operands' context");
    expect_values(out, ref_gather_out, 18, "int64 gather on vulkan");
    lam_tensor *o2 = NULL;
    cr_assert_eq(lam_op_cast(table, LAM_DTYPE_U8, &o2), LAM_OK, "%s", lam_last_error());
    cr_assert(lam_tensor_ctx(o2) == vk, "the cast lives on the operand's context");
    uint8_t got[12];
    cr_assert_eq(lam_tensor_read_bytes(o2, got, sizeof got), LAM_OK, "%s", lam_last_error());
    for (int i = 0; i < 12; i++) { /* the table holds integers 0..112 */
        cr_assert_eq(got[i], (uint8_t)ref_gather_table[i], "cast element %d: %d", i, got[i]);
    }
    lam_tensor_release(o2);
    lam_tensor_release(out);
    lam_tensor_release(table);
    lam_tensor_release(idx);
    tu_assert_released();
}
