/*
 * test_nn_ops.c - the NN ops of lamina.h (batched matmul, conv2d, max/avg pooling, pad,
 * moments): forward values and gradients against ref/nn_refs.h (NumPy, float64, written by
 * ref/gen_nn_refs.py, whose gradients are themselves checked by central differences there),
 * central differences of Lamina's own float32 forward here, NaN isolation between samples, the
 * max-pool tie rule and the parameter errors. Runs on the default context (CPU, or Vulkan with
 * LAMINA_BACKEND=vulkan, where the host falls back to the CPU for what Vulkan lacks).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lamina/lamina.h"
#include "ref/nn_refs.h"

#define RTOL 1e-4
#define ATOL 1e-4
#define MAXN 4096

static float buf[MAXN];

static void fini(void) {
    lam_shutdown();
}

TestSuite(nn, .fini = fini);

#define OK(call)                                                                                   \
    do {                                                                                           \
        lam_status st_ = (call);                                                                   \
        cr_assert_eq(st_, LAM_OK, "%s failed: %s (%s)", #call, lam_status_string(st_),             \
                     lam_last_error());                                                            \
    } while (0)

static lam_ctx *ctx(void) {
    lam_ctx *c = NULL;
    OK(lam_ctx_default(&c));
    return c;
}

static lam_shape shape_of(const nn_ref *r) {
    lam_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = r->ndim;
    for (uint32_t i = 0; i < r->ndim; i++) {
        s.dims[i] = r->dims[i];
    }
    return s;
}

static lam_tensor *from_ref(const nn_ref *r, int grad) {
    lam_shape s = shape_of(r);
    lam_tensor *t = NULL;
    OK(lam_tensor_from_data(ctx(), &s, r->data, r->count, &t));
    if (grad) {
        OK(lam_tensor_attach_grad(t));
    }
    return t;
}

static const float *read(const lam_tensor *t) {
    int64_t n = lam_tensor_numel(t);
    cr_assert(n >= 0 && n <= MAXN);
    OK(lam_tensor_read(t, buf, (size_t)n));
    return buf;
}

static void assert_close(const lam_tensor *t, const nn_ref *want, const char *what) {
    cr_assert_not_null(t, "%s: no tensor", what);
    lam_shape s = shape_of(want);
    char b1[160], b2[160];
    cr_assert(lam_shape_equal(lam_tensor_shape(t), &s), "%s: shape %s, expected %s", what,
              lam_shape_format(lam_tensor_shape(t), b1, sizeof b1),
              lam_shape_format(&s, b2, sizeof b2));
    const float *got = read(t);
    for (size_t i = 0; i < want->count; i++) {
        double g = got[i], w = want->data[i];
        cr_assert(fabs(g - w) <= ATOL + RTOL * fabs(w), "%s: element %zu is %.9g, expected %.9g",
                  what, i, g, w);
    }
}

static void assert_grad(const lam_tensor *t, const nn_ref *want, const char *what) {
    lam_tensor *g = NULL;
    OK(lam_tensor_grad(t, &g));
    assert_close(g, want, what);
    lam_tensor_release(g);
}

static void assert_error(lam_status got, lam_status want, const char *needle, const char *what) {
    cr_assert_eq(got, want, "%s: status %d (%s), expected %d; message: %s", what, (int)got,
                 lam_status_string(got), (int)want, lam_last_error());
    cr_assert(strstr(lam_last_error(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
              lam_last_error(), needle);
}

static void backward(lam_tensor *out, const nn_ref *g) {
    lam_tensor *hg = from_ref(g, 0);
    OK(lam_autograd_backward(out, hg));
    lam_tensor_release(hg);
}

/* ---- batched matmul ---- */

static void mm_case(const nn_ref *a, const nn_ref *b, int ta, int tb, const nn_ref *out,
                    const nn_ref *g, const nn_ref *da, const nn_ref *db, const char *what) {
    lam_tensor *ta_ = from_ref(a, 1), *tb_ = from_ref(b, 1), *o = NULL;
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_op_matmul_batched(ta_, tb_, ta, tb, &o);
    lam_autograd_record_end(was);
    OK(st);
    assert_close(o, out, what);
    backward(o, g);
    assert_grad(ta_, da, "grad a");
    assert_grad(tb_, db, "grad b");
    lam_tensor_release(o);
    lam_tensor_release(ta_);
    lam_tensor_release(tb_);
    cr_assert_eq(lam_tensor_live_count(), 0);
}

Test(nn, matmul_batched_matches_numpy) {
    mm_case(&ref_mm_plain_a, &ref_mm_plain_b, 0, 0, &ref_mm_plain_out, &ref_mm_plain_g,
            &ref_mm_plain_da, &ref_mm_plain_db, "plain");
}

Test(nn, matmul_batched_shared_a_sums_its_gradient) {
    mm_case(&ref_mm_shared_a_a, &ref_mm_shared_a_b, 0, 0, &ref_mm_shared_a_out, &ref_mm_shared_a_g,
            &ref_mm_shared_a_da, &ref_mm_shared_a_db, "shared a");
}

Test(nn, matmul_batched_transposed_shared_b) {
    mm_case(&ref_mm_shared_b_tt_a, &ref_mm_shared_b_tt_b, 1, 1, &ref_mm_shared_b_tt_out,
            &ref_mm_shared_b_tt_g, &ref_mm_shared_b_tt_da, &ref_mm_shared_b_tt_db, "shared b, tt");
}

Test(nn, matmul_batched_transposed_shared_a) {
    mm_case(&ref_mm_ta_shared_a_a, &ref_mm_ta_shared_a_b, 1, 0, &ref_mm_ta_shared_a_out,
            &ref_mm_ta_shared_a_g, &ref_mm_ta_shared_a_da, &ref_mm_ta_shared_a_db, "ta shared a");
}

Test(nn, matmul_batched_nan_stays_in_its_batch) {
    /* a shared (1, 2, 4); b (3, 4, 5) with a NaN in batch 1 only */
    lam_tensor *a = from_ref(&ref_mm_shared_a_a, 0), *o = NULL, *b = NULL;
    float data[60];
    memcpy(data, ref_mm_shared_a_b.data, sizeof data);
    data[20 + 7] = NAN;
    lam_shape s = shape_of(&ref_mm_shared_a_b);
    OK(lam_tensor_from_data(ctx(), &s, data, 60, &b));
    OK(lam_op_matmul_batched(a, b, 0, 0, &o));
    const float *got = read(o);
    for (int i = 0; i < 30; i++) {
        int batch = i / 10;
        if (batch == 1) {
            continue;
        }
        cr_assert(fabsf(got[i] - ref_mm_shared_a_out.data[i]) <= 1e-4f,
                  "element %d of batch %d is %g, expected %g", i, batch, (double)got[i],
                  (double)ref_mm_shared_a_out.data[i]);
    }
    cr_assert(isnan(got[10 + 2]), "the NaN's own column is NaN");
    lam_tensor_release(o);
    lam_tensor_release(a);
    lam_tensor_release(b);
}

Test(nn, matmul_batched_rejects_bad_shapes) {
    lam_tensor *a = from_ref(&ref_mm_plain_a, 0), *b = from_ref(&ref_mm_shared_b_tt_b, 0);
    lam_tensor *o = (lam_tensor *)(void *)&buf;
    assert_error(lam_op_matmul_batched(a, b, 0, 0, &o), LAM_ERR_SHAPE,
                 "lam_op_matmul_batched: Shape mismatch, (3, 2, 4) x (1, 5, 4)", "inner dims");
    cr_assert_null(o);
    lam_tensor *c = from_ref(&ref_mm_ta_shared_a_b, 0); /* (2, 4, 2): batch 2 against 3 */
    assert_error(lam_op_matmul_batched(a, c, 1, 0, &o), LAM_ERR_SHAPE, "batches equal or 1",
                 "batches");
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(c);
}

/* ---- conv2d ---- */

typedef struct conv_case {
    const nn_ref *x, *w, *bias, *out, *g, *dx, *dw, *dbias;
    lam_conv2d_params p;
} conv_case;

static lam_conv2d_params conv_params(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                                     int64_t dw, uint32_t groups) {
    lam_conv2d_params p = LAM_CONV2D_PARAMS_INIT;
    p.stride[0] = sh;
    p.stride[1] = sw;
    p.pad[0] = ph;
    p.pad[1] = pw;
    p.dilation[0] = dh;
    p.dilation[1] = dw;
    p.groups = groups;
    return p;
}

static void conv_run(const conv_case *c) {
    lam_tensor *x = from_ref(c->x, 1), *w = from_ref(c->w, 1), *o = NULL;
    lam_tensor *b = c->bias ? from_ref(c->bias, 1) : NULL;
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_op_conv2d(x, w, b, &c->p, &o);
    lam_autograd_record_end(was);
    OK(st);
    assert_close(o, c->out, "conv2d forward");
    backward(o, c->g);
    assert_grad(x, c->dx, "conv2d grad x");
    assert_grad(w, c->dw, "conv2d grad w");
    if (b != NULL) {
        assert_grad(b, c->dbias, "conv2d grad bias");
    }
    lam_tensor_release(o);
    lam_tensor_release(x);
    lam_tensor_release(w);
    lam_tensor_release(b);
    cr_assert_eq(lam_tensor_live_count(), 0);
}

Test(nn, conv2d_padding_bias_odd_sizes) {
    conv_case c = {&ref_conv_basic_x,   &ref_conv_basic_w,     &ref_conv_basic_bias,
                   &ref_conv_basic_out, &ref_conv_basic_g,     &ref_conv_basic_dx,
                   &ref_conv_basic_dw,  &ref_conv_basic_dbias, conv_params(1, 1, 1, 1, 1, 1, 1)};
    conv_run(&c);
}

Test(nn, conv2d_stride2_dilation2_uneven_padding) {
    conv_case c = {&ref_conv_s2d2_x,
                   &ref_conv_s2d2_w,
                   NULL,
                   &ref_conv_s2d2_out,
                   &ref_conv_s2d2_g,
                   &ref_conv_s2d2_dx,
                   &ref_conv_s2d2_dw,
                   NULL,
                   conv_params(2, 2, 2, 1, 2, 2, 1)};
    conv_run(&c);
}

Test(nn, conv2d_groups2) {
    conv_case c = {&ref_conv_groups_x,   &ref_conv_groups_w,     &ref_conv_groups_bias,
                   &ref_conv_groups_out, &ref_conv_groups_g,     &ref_conv_groups_dx,
                   &ref_conv_groups_dw,  &ref_conv_groups_dbias, conv_params(2, 1, 1, 0, 1, 1, 2)};
    conv_run(&c);
}

/* sum(out * g) in double. */
static double weighted(const lam_tensor *o, const nn_ref *g) {
    const float *v = read(o);
    double s = 0.0;
    for (size_t i = 0; i < g->count; i++) {
        s += (double)v[i] * (double)g->data[i];
    }
    return s;
}

/* Central differences of Lamina's own forward (float32) at a few coordinates of input `which`
 * of f, against the recorded gradient. f is linear (or quadratic) in that input where it is
 * probed, so a large step is exact up to rounding. */
typedef lam_status (*fwd)(lam_tensor *const *in, lam_tensor **out);

static void fd_check(fwd f, const nn_ref *const *inputs, uint32_t n, uint32_t which,
                     const nn_ref *g, float step, const char *what) {
    lam_tensor *in[4] = {NULL};
    for (uint32_t i = 0; i < n; i++) {
        in[i] = from_ref(inputs[i], i == which);
    }
    lam_tensor *o = NULL, *grad = NULL;
    int was = lam_autograd_record_begin(1);
    lam_status st = f(in, &o);
    lam_autograd_record_end(was);
    OK(st);
    backward(o, g);
    lam_tensor_release(o);
    OK(lam_tensor_grad(in[which], &grad));
    static float an[MAXN];
    const nn_ref *r = inputs[which];
    OK(lam_tensor_read(grad, an, r->count));
    lam_tensor_release(grad);
    static float v[MAXN];
    memcpy(v, r->data, r->count * sizeof *v);
    lam_shape s = shape_of(r);
    for (size_t k = 0; k < 5; k++) {
        size_t idx = (k * 7919 + 13) % r->count;
        double fpm[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            v[idx] = r->data[idx] + (sgn ? -step : step);
            lam_tensor *p = NULL;
            OK(lam_tensor_from_data(ctx(), &s, v, r->count, &p));
            lam_tensor *saved = in[which];
            in[which] = p;
            OK(f(in, &o));
            in[which] = saved;
            fpm[sgn] = weighted(o, g);
            lam_tensor_release(o);
            lam_tensor_release(p);
        }
        v[idx] = r->data[idx];
        double fd = (fpm[0] - fpm[1]) / (2.0 * (double)step);
        cr_assert(fabs(fd - an[idx]) <= 2e-3 + 2e-3 * fabs(fd),
                  "%s: d/d input %u [%zu]: finite difference %.6g, gradient %.6g", what, which, idx,
                  fd, (double)an[idx]);
    }
    for (uint32_t i = 0; i < n; i++) {
        lam_tensor_release(in[i]);
    }
}

static lam_status conv_s2d2(lam_tensor *const *in, lam_tensor **out) {
    lam_conv2d_params p = conv_params(2, 2, 2, 1, 2, 2, 1);
    return lam_op_conv2d(in[0], in[1], NULL, &p, out);
}

static lam_status conv_groups(lam_tensor *const *in, lam_tensor **out) {
    lam_conv2d_params p = conv_params(2, 1, 1, 0, 1, 1, 2);
    return lam_op_conv2d(in[0], in[1], in[2], &p, out);
}

Test(nn, conv2d_gradients_match_finite_differences) {
    const nn_ref *a[2] = {&ref_conv_s2d2_x, &ref_conv_s2d2_w};
    fd_check(conv_s2d2, a, 2, 0, &ref_conv_s2d2_g, 0.5f, "conv s2d2 x");
    fd_check(conv_s2d2, a, 2, 1, &ref_conv_s2d2_g, 0.5f, "conv s2d2 w");
    const nn_ref *b[3] = {&ref_conv_groups_x, &ref_conv_groups_w, &ref_conv_groups_bias};
    fd_check(conv_groups, b, 3, 0, &ref_conv_groups_g, 0.5f, "conv groups x");
    fd_check(conv_groups, b, 3, 1, &ref_conv_groups_g, 0.5f, "conv groups w");
    fd_check(conv_groups, b, 3, 2, &ref_conv_groups_g, 0.5f, "conv groups bias");
}

/* A NaN in one pixel of sample 0 changes nothing in sample 1's output. */
static void conv_nan_case(const nn_ref *xr, const nn_ref *wr, const nn_ref *br,
                          const lam_conv2d_params *p) {
    lam_tensor *w = from_ref(wr, 0), *b = br ? from_ref(br, 0) : NULL;
    lam_tensor *clean = from_ref(xr, 0), *dirty = NULL, *o1 = NULL, *o2 = NULL;
    static float data[MAXN];
    memcpy(data, xr->data, xr->count * sizeof *data);
    data[xr->dims[2] * xr->dims[3] + 5] = NAN; /* sample 0, channel 1 */
    lam_shape s = shape_of(xr);
    OK(lam_tensor_from_data(ctx(), &s, data, xr->count, &dirty));
    OK(lam_op_conv2d(clean, w, b, p, &o1));
    OK(lam_op_conv2d(dirty, w, b, p, &o2));
    static float want[MAXN];
    int64_t n = lam_tensor_numel(o1), per = n / xr->dims[0];
    memcpy(want, read(o1), (size_t)n * sizeof *want);
    const float *got = read(o2);
    int nan0 = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i < per) {
            nan0 += isnan(got[i]) != 0;
            continue;
        }
        cr_assert(got[i] == want[i], "sample %lld, element %lld: %g with the NaN, %g without",
                  (long long)(i / per), (long long)(i % per), (double)got[i], (double)want[i]);
    }
    cr_assert(nan0 > 0, "the NaN reaches its own sample");
    lam_tensor_release(w);
    lam_tensor_release(b);
    lam_tensor_release(clean);
    lam_tensor_release(dirty);
    lam_tensor_release(o1);
    lam_tensor_release(o2);
}

Test(nn, conv2d_nan_in_one_sample_stays_there) {
    lam_conv2d_params p1 = conv_params(1, 1, 1, 1, 1, 1, 1);
    conv_nan_case(&ref_conv_basic_x, &ref_conv_basic_w, &ref_conv_basic_bias, &p1);
    lam_conv2d_params p2 = conv_params(2, 1, 1, 0, 1, 1, 2);
    conv_nan_case(&ref_conv_groups_x, &ref_conv_groups_w, &ref_conv_groups_bias, &p2);
}

Test(nn, conv2d_rejects_bad_arguments) {
    lam_tensor *x = from_ref(&ref_conv_basic_x, 0), *w = from_ref(&ref_conv_basic_w, 0);
    lam_tensor *o = (lam_tensor *)(void *)&buf;
    lam_conv2d_params p = conv_params(1, 1, 1, 1, 1, 1, 3); /* 3 groups: w has 3 of 3 channels */
    assert_error(lam_op_conv2d(x, w, NULL, &p, &o), LAM_ERR_SHAPE,
                 "lam_op_conv2d: Shape mismatch, x (2, 3, 7, 6), w (4, 3, 3, 3), bias none, "
                 "groups 3",
                 "groups");
    cr_assert_null(o);
    p = conv_params(0, 1, 1, 1, 1, 1, 1);
    assert_error(lam_op_conv2d(x, w, NULL, &p, &o), LAM_ERR_INVALID_ARGUMENT,
                 "lam_op_conv2d: Invalid argument, axis 0: kernel 3, stride 0", "stride 0");
    assert_error(lam_op_conv2d(x, w, NULL, NULL, &o), LAM_ERR_INVALID_ARGUMENT,
                 "lam_op_conv2d: Invalid argument, params are NULL", "NULL params");
    p = conv_params(1, 1, 0, 0, 4, 1, 1); /* dilated kernel 9 rows > 7 */
    assert_error(lam_op_conv2d(x, w, NULL, &p, &o), LAM_ERR_SHAPE,
                 "lam_op_conv2d: Shape mismatch, a 3x3 window (dilation 4x1) does not fit", "fit");
    lam_tensor_release(x);
    lam_tensor_release(w);
}

/* ---- pooling ---- */

static lam_pool2d_params pool_params(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                                     int64_t pw, int64_t dh, int64_t dw, uint32_t flags) {
    lam_pool2d_params p = LAM_POOL2D_PARAMS_INIT(kh, kw);
    p.stride[0] = sh;
    p.stride[1] = sw;
    p.pad[0] = ph;
    p.pad[1] = pw;
    p.dilation[0] = dh;
    p.dilation[1] = dw;
    p.flags = flags;
    return p;
}

static void max_case(const nn_ref *x, const nn_ref *out, const nn_ref *idx, const nn_ref *g,
                     const nn_ref *dx, lam_pool2d_params p) {
    lam_tensor *t = from_ref(x, 1), *o = NULL, *ix = NULL;
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_op_max_pool2d(t, &p, &o, &ix);
    lam_autograd_record_end(was);
    OK(st);
    assert_close(o, out, "max pool forward");
    cr_assert_eq(lam_tensor_dtype(ix), LAM_DTYPE_I32);
    static int32_t got[MAXN];
    OK(lam_tensor_read_bytes(ix, got, idx->count * sizeof *got));
    for (size_t i = 0; i < idx->count; i++) {
        cr_assert_eq(got[i], (int32_t)idx->data[i], "index %zu is %d, expected %d", i, got[i],
                     (int)idx->data[i]);
    }
    backward(o, g);
    assert_grad(t, dx, "max pool grad");
    lam_tensor_release(o);
    lam_tensor_release(ix);
    lam_tensor_release(t);
    cr_assert_eq(lam_tensor_live_count(), 0);
}

Test(nn, max_pool_odd_sizes_padding_stride2) {
    max_case(&ref_maxp_odd_x, &ref_maxp_odd_out, &ref_maxp_odd_idx, &ref_maxp_odd_g,
             &ref_maxp_odd_dx, pool_params(3, 3, 2, 2, 1, 1, 1, 1, 0));
}

Test(nn, max_pool_ceil_mode) {
    max_case(&ref_maxp_ceil_x, &ref_maxp_ceil_out, &ref_maxp_ceil_idx, &ref_maxp_ceil_g,
             &ref_maxp_ceil_dx, pool_params(3, 3, 2, 2, 0, 0, 1, 1, LAM_POOL_CEIL_MODE));
}

Test(nn, max_pool_ceil_mode_drops_a_window_in_the_padding) {
    max_case(&ref_maxp_ceil_pad_x, &ref_maxp_ceil_pad_out, &ref_maxp_ceil_pad_idx,
             &ref_maxp_ceil_pad_g, &ref_maxp_ceil_pad_dx,
             pool_params(3, 2, 2, 2, 1, 1, 1, 1, LAM_POOL_CEIL_MODE));
}

Test(nn, max_pool_dilation2) {
    max_case(&ref_maxp_dil_x, &ref_maxp_dil_out, &ref_maxp_dil_idx, &ref_maxp_dil_g,
             &ref_maxp_dil_dx, pool_params(2, 2, 1, 2, 0, 1, 2, 2, 0));
}

Test(nn, max_pool_ties_send_the_gradient_to_the_first) {
    max_case(&ref_maxp_ties_x, &ref_maxp_ties_out, &ref_maxp_ties_idx, &ref_maxp_ties_g,
             &ref_maxp_ties_dx, pool_params(2, 3, 1, 2, 0, 1, 1, 1, 0));
}

/* Rows wide enough for the CPU backend's row-at-a-time path (several vector widths, a
 * remainder, padded windows at the ends): LeNet's 2x2/2, 3x3/2 with ties and padding, and a
 * dilated 2x3 window with stride 3 in ceil mode. */
Test(nn, max_pool_wide_rows_lenet_2x2) {
    max_case(&ref_maxp_lenet_x, &ref_maxp_lenet_out, &ref_maxp_lenet_idx, &ref_maxp_lenet_g,
             &ref_maxp_lenet_dx, pool_params(2, 2, 2, 2, 0, 0, 1, 1, 0));
}

Test(nn, max_pool_wide_rows_ties_and_padding) {
    max_case(&ref_maxp_wide_ties_x, &ref_maxp_wide_ties_out, &ref_maxp_wide_ties_idx,
             &ref_maxp_wide_ties_g, &ref_maxp_wide_ties_dx, pool_params(3, 3, 2, 2, 1, 1, 1, 1, 0));
}

Test(nn, max_pool_wide_rows_stride3_dilation2_ceil) {
    max_case(&ref_maxp_wide_s3_x, &ref_maxp_wide_s3_out, &ref_maxp_wide_s3_idx, &ref_maxp_wide_s3_g,
             &ref_maxp_wide_s3_dx, pool_params(2, 3, 2, 3, 0, 1, 1, 2, LAM_POOL_CEIL_MODE));
}

Test(nn, max_pool_rows_of_5_and_7_2x2) {
    max_case(&ref_maxp_lenet2_x, &ref_maxp_lenet2_out, &ref_maxp_lenet2_idx, &ref_maxp_lenet2_g,
             &ref_maxp_lenet2_dx, pool_params(2, 2, 2, 2, 0, 0, 1, 1, 0));
    max_case(&ref_maxp_2x2_pad_x, &ref_maxp_2x2_pad_out, &ref_maxp_2x2_pad_idx, &ref_maxp_2x2_pad_g,
             &ref_maxp_2x2_pad_dx, pool_params(2, 2, 2, 2, 1, 1, 1, 1, 0));
}

Test(nn, max_pool_all_equal_window_picks_its_first_element) {
    /* by hand: a 2x2 plane of equal values, one 2x2 window: index 0 gets everything */
    const float x[4] = {1, 1, 1, 1};
    lam_shape s = {.ndim = 4, .dims = {1, 1, 2, 2}};
    lam_tensor *t = NULL, *o = NULL, *ix = NULL, *g = NULL;
    OK(lam_tensor_from_data(ctx(), &s, x, 4, &t));
    OK(lam_tensor_attach_grad(t));
    lam_pool2d_params p = pool_params(2, 2, 2, 2, 0, 0, 1, 1, 0);
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_op_max_pool2d(t, &p, &o, NULL);
    lam_autograd_record_end(was);
    OK(st);
    OK(lam_autograd_backward(o, NULL));
    OK(lam_tensor_grad(t, &g));
    const float *v = read(g);
    cr_assert(v[0] == 1.0f && v[1] == 0.0f && v[2] == 0.0f && v[3] == 0.0f,
              "gradient (%g, %g, %g, %g), expected (1, 0, 0, 0)", (double)v[0], (double)v[1],
              (double)v[2], (double)v[3]);
    (void)ix;
    lam_tensor_release(g);
    lam_tensor_release(o);
    lam_tensor_release(t);
}

Test(nn, max_pool_rejects_windows_in_the_padding) {
    lam_tensor *x = from_ref(&ref_maxp_odd_x, 0), *o = (lam_tensor *)(void *)&buf, *ix = NULL;
    lam_pool2d_params p = pool_params(2, 2, 2, 2, 2, 0, 1, 1, 0);
    assert_error(lam_op_max_pool2d(x, &p, &o, &ix), LAM_ERR_INVALID_ARGUMENT,
                 "lam_op_max_pool2d: Invalid argument, axis 0: padding 2 for kernel 2 (the "
                 "padding is at most half the kernel",
                 "pad > k/2");
    cr_assert_null(o);
    cr_assert_null(ix);
    /* H = 2, kernel 2 with dilation 3, padding 1: the one window's taps are rows -1 and 2 */
    const float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    lam_shape s = {.ndim = 4, .dims = {1, 1, 2, 4}};
    lam_tensor *y = NULL;
    OK(lam_tensor_from_data(ctx(), &s, v, 8, &y));
    p = pool_params(2, 2, 1, 1, 1, 0, 3, 1, 0);
    assert_error(lam_op_max_pool2d(y, &p, &o, NULL), LAM_ERR_INVALID_ARGUMENT,
                 "lam_op_max_pool2d: Invalid argument, window 0 along axis 2 lies wholly in the "
                 "padding",
                 "window in the padding");
    p = pool_params(2, 2, 1, 1, 0, 0, 1, 1, LAM_POOL_COUNT_INCLUDE_PAD);
    assert_error(lam_op_max_pool2d(y, &p, &o, NULL), LAM_ERR_INVALID_ARGUMENT,
                 "lam_op_max_pool2d: Invalid argument, unknown flags 0x2", "flags");
    lam_tensor_release(x);
    lam_tensor_release(y);
}

static void avg_case(const nn_ref *x, const nn_ref *out, const nn_ref *g, const nn_ref *dx,
                     lam_pool2d_params p) {
    lam_tensor *t = from_ref(x, 1), *o = NULL;
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_op_avg_pool2d(t, &p, &o);
    lam_autograd_record_end(was);
    OK(st);
    assert_close(o, out, "avg pool forward");
    backward(o, g);
    assert_grad(t, dx, "avg pool grad");
    lam_tensor_release(o);
    lam_tensor_release(t);
    cr_assert_eq(lam_tensor_live_count(), 0);
}

Test(nn, avg_pool_excludes_padding) {
    avg_case(&ref_avgp_odd_x, &ref_avgp_odd_out, &ref_avgp_odd_g, &ref_avgp_odd_dx,
             pool_params(3, 3, 2, 2, 1, 1, 1, 1, 0));
}

Test(nn, avg_pool_count_include_pad) {
    avg_case(&ref_avgp_incl_x, &ref_avgp_incl_out, &ref_avgp_incl_g, &ref_avgp_incl_dx,
             pool_params(3, 3, 2, 2, 1, 1, 1, 1, LAM_POOL_COUNT_INCLUDE_PAD));
}

Test(nn, avg_pool_ceil_mode_clips_the_padded_window) {
    avg_case(&ref_avgp_ceil_incl_x, &ref_avgp_ceil_incl_out, &ref_avgp_ceil_incl_g,
             &ref_avgp_ceil_incl_dx,
             pool_params(3, 3, 2, 2, 1, 1, 1, 1, LAM_POOL_CEIL_MODE | LAM_POOL_COUNT_INCLUDE_PAD));
}

Test(nn, avg_pool_ceil_mode) {
    avg_case(&ref_avgp_ceil_x, &ref_avgp_ceil_out, &ref_avgp_ceil_g, &ref_avgp_ceil_dx,
             pool_params(3, 2, 2, 2, 1, 0, 1, 1, LAM_POOL_CEIL_MODE));
}

static lam_status maxp_odd(lam_tensor *const *in, lam_tensor **out) {
    lam_pool2d_params p = pool_params(3, 3, 2, 2, 1, 1, 1, 1, 0);
    return lam_op_max_pool2d(in[0], &p, out, NULL);
}

static lam_status avgp_ceil(lam_tensor *const *in, lam_tensor **out) {
    lam_pool2d_params p =
        pool_params(3, 3, 2, 2, 1, 1, 1, 1, LAM_POOL_CEIL_MODE | LAM_POOL_COUNT_INCLUDE_PAD);
    return lam_op_avg_pool2d(in[0], &p, out);
}

Test(nn, pool_gradients_match_finite_differences) {
    const nn_ref *a[1] = {&ref_maxp_odd_x}; /* values 0.25 apart: a step of 0.05 keeps winners */
    fd_check(maxp_odd, a, 1, 0, &ref_maxp_odd_g, 0.05f, "max pool");
    const nn_ref *b[1] = {&ref_avgp_ceil_incl_x};
    fd_check(avgp_ceil, b, 1, 0, &ref_avgp_ceil_incl_g, 0.5f, "avg pool");
}

/* ---- pad ---- */

Test(nn, pad_constant_and_its_gradient) {
    lam_tensor *x = from_ref(&ref_pad_x, 1), *o = NULL;
    const int64_t before[3] = {1, 0, 2}, after[3] = {0, 2, 1};
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_op_pad(x, before, after, 0.5f, &o);
    lam_autograd_record_end(was);
    OK(st);
    assert_close(o, &ref_pad_out, "pad forward");
    backward(o, &ref_pad_g);
    assert_grad(x, &ref_pad_dx, "pad grad");
    lam_tensor_release(o);
    const int64_t bad[3] = {0, -1, 0};
    o = (lam_tensor *)(void *)&buf;
    assert_error(lam_op_pad(x, bad, after, 0.0f, &o), LAM_ERR_INVALID_ARGUMENT,
                 "lam_op_pad: Invalid argument, axis 1: padding -1 before and 2 after", "negative");
    cr_assert_null(o);
    lam_tensor_release(x);
}

/* ---- moments ---- */

static void mom_case(const nn_ref *x, const int32_t *axes, uint32_t n_axes, int32_t keep,
                     const nn_ref *mean, const nn_ref *var, const nn_ref *gm, const nn_ref *gv,
                     const nn_ref *dx) {
    lam_tensor *t = from_ref(x, 1), *m = NULL, *v = NULL;
    lam_tensor *tgm = from_ref(gm, 0), *tgv = from_ref(gv, 0), *a = NULL, *b = NULL, *sa = NULL,
               *sb = NULL, *h = NULL;
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_op_moments(t, axes, n_axes, keep, &m, &v);
    if (st == LAM_OK) { /* head = sum(mean * gm) + sum(var * gv) */
        OK(lam_op_mul(m, tgm, &a));
        OK(lam_op_mul(v, tgv, &b));
        OK(lam_op_sum(a, NULL, 0, 0, &sa));
        OK(lam_op_sum(b, NULL, 0, 0, &sb));
        OK(lam_op_add(sa, sb, &h));
    }
    lam_autograd_record_end(was);
    OK(st);
    assert_close(m, mean, "moments mean");
    assert_close(v, var, "moments var");
    OK(lam_autograd_backward(h, NULL));
    assert_grad(t, dx, "moments grad");
    lam_tensor *all[] = {t, m, v, tgm, tgv, a, b, sa, sb, h};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        lam_tensor_release(all[i]);
    }
    cr_assert_eq(lam_tensor_live_count(), 0);
}

Test(nn, moments_batch_norm_axes) {
    const int32_t axes[] = REF_MOM_BN_AXES;
    mom_case(&ref_mom_bn_x, axes, REF_MOM_BN_NAXES, REF_MOM_BN_KEEP, &ref_mom_bn_mean,
             &ref_mom_bn_var, &ref_mom_bn_gm, &ref_mom_bn_gv, &ref_mom_bn_dx);
}

Test(nn, moments_layer_norm_axis) {
    const int32_t axes[] = REF_MOM_LN_AXES;
    mom_case(&ref_mom_ln_x, axes, REF_MOM_LN_NAXES, REF_MOM_LN_KEEP, &ref_mom_ln_mean,
             &ref_mom_ln_var, &ref_mom_ln_gm, &ref_mom_ln_gv, &ref_mom_ln_dx);
}

Test(nn, moments_adjacent_middle_axes) {
    const int32_t axes[] = REF_MOM_MID_AXES;
    mom_case(&ref_mom_mid_x, axes, REF_MOM_MID_NAXES, REF_MOM_MID_KEEP, &ref_mom_mid_mean,
             &ref_mom_mid_var, &ref_mom_mid_gm, &ref_mom_mid_gv, &ref_mom_mid_dx);
}

Test(nn, moments_all_axes) {
    mom_case(&ref_mom_all_x, NULL, 0, REF_MOM_ALL_KEEP, &ref_mom_all_mean, &ref_mom_all_var,
             &ref_mom_all_gm, &ref_mom_all_gv, &ref_mom_all_dx);
}

Test(nn, moments_rejects_repeated_axes) {
    lam_tensor *x = from_ref(&ref_mom_bn_x, 0), *m = (lam_tensor *)(void *)&buf, *v = NULL;
    const int32_t axes[2] = {1, -3};
    assert_error(lam_op_moments(x, axes, 2, 0, &m, &v), LAM_ERR_INVALID_ARGUMENT,
                 "lam_op_moments: Invalid argument, axis -3 repeated for shape (3, 4, 5, 2)",
                 "repeated");
    cr_assert_null(m);
    assert_error(lam_op_moments(x, axes, 1, 0, NULL, NULL), LAM_ERR_INVALID_ARGUMENT,
                 "lam_op_moments: Invalid argument, both outputs NULL", "no outputs");
    lam_tensor_release(x);
}
