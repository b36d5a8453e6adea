/*
 * Issue 14's proof set through the public API: the ABI 2.0 test layers (t2layers.c) and the
 * GELU example's custom kernel. Values against float64 NumPy (ref/t2_ref.py, output committed
 * as ref/t2_ref.h); a NaN in one sample never reaches another sample's output; int32 indices
 * are bounds-checked; dropout draws its mask on the device from the seeded stream (the same
 * bits on the CPU and on Vulkan), only in training.
 */
#include "lamina/lamina.h"
#include "ref/t2_ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void seq(float *v, size_t n, double a, double b) {
    for (size_t i = 0; i < n; i++) {
        v[i] = (float)sin(a * (double)i + b);
    }
}

static lam_block *layer(const char *type, const char *attrs) {
    lam_block *b = NULL;
    cr_assert_eq(lam_layer_create(type, attrs, &b), LAM_OK, "%s", lam_last_error());
    return b;
}

static lam_tensor *tensor(lam_ctx *ctx, lam_shape s, const float *v) {
    lam_tensor *t = NULL;
    int64_t n = 1;
    for (uint32_t i = 0; i < s.ndim; i++) {
        n *= s.dims[i];
    }
    cr_assert_eq(lam_tensor_from_data(ctx, &s, v, (size_t)n, &t), LAM_OK, "%s", lam_last_error());
    return t;
}

static float *forward(lam_block *b, lam_tensor *x, size_t *n_out) {
    lam_tensor *y = NULL;
    cr_assert_eq(lam_block_forward(b, 1, &x, &y), LAM_OK, "%s", lam_last_error());
    size_t n = (size_t)lam_tensor_numel(y);
    float *v = malloc(n * sizeof *v);
    cr_assert_eq(lam_tensor_read(y, v, n), LAM_OK, "%s", lam_last_error());
    lam_tensor_release(y);
    *n_out = n;
    return v;
}

static void set_param(lam_block *b, const char *name, const float *v, size_t n) {
    lam_param *p = lam_block_param(b, name);
    cr_assert_not_null(p, "no parameter %s", name);
    lam_tensor *d = NULL;
    cr_assert_eq(lam_param_data(p, &d), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_write(d, v, n), LAM_OK, "%s", lam_last_error());
    lam_tensor_release(d);
}

static void expect_near(const float *got, const double *want, size_t n, double tol,
                        const char *what) {
    for (size_t i = 0; i < n; i++) {
        cr_expect(fabs(got[i] - want[i]) <= tol * (1.0 + fabs(want[i])), "%s[%zu]: %.9g vs %.9g",
                  what, i, got[i], want[i]);
    }
}

Test(t2layers, conv3x3_matches_numpy) {
    lam_block *b = layer("TConv3x3", "channels=4");
    float x[2 * 3 * 5 * 6], w[4 * 3 * 9], bias[4];
    seq(x, 180, 0.37, 0.1);
    seq(w, 108, 0.53, -0.2);
    seq(bias, 4, 1.1, 0.3);
    lam_tensor *t = tensor(NULL, (lam_shape){.ndim = 4, .dims = {2, 3, 5, 6}}, x);
    cr_assert_eq(lam_block_initialize(b, NULL, NULL, 0), LAM_OK, "%s", lam_last_error());
    size_t n;
    free(forward(b, t, &n)); /* deferred shapes settle on the first forward */
    set_param(b, "weight", w, 108);
    set_param(b, "bias", bias, 4);
    float *y = forward(b, t, &n);
    cr_assert_eq(n, 240u);
    expect_near(y, conv_y, n, 1e-5, "conv");
    free(y);
    lam_tensor_release(t);
    lam_block_release(b);
}

Test(t2layers, maxpool_odd_matches_numpy) {
    lam_block *b = layer("TMaxPool", "pool_size=3, strides=2");
    float x[2 * 3 * 7 * 9];
    seq(x, 378, 0.91, 0.05);
    lam_tensor *t = tensor(NULL, (lam_shape){.ndim = 4, .dims = {2, 3, 7, 9}}, x);
    size_t n;
    float *y = forward(b, t, &n);
    cr_assert_eq(n, 2u * 3 * 3 * 4);
    expect_near(y, pool_y, n, 0.0, "pool");
    free(y);
    lam_tensor_release(t);
    lam_block_release(b);
}

Test(t2layers, layernorm_matches_numpy) {
    lam_block *b = layer("TLayerNorm", NULL);
    float x[15];
    seq(x, 15, 0.77, 0.4);
    lam_tensor *t = tensor(NULL, (lam_shape){.ndim = 2, .dims = {3, 5}}, x);
    cr_assert_eq(lam_block_initialize(b, NULL, NULL, 0), LAM_OK, "%s", lam_last_error());
    size_t n;
    float *y = forward(b, t, &n);
    expect_near(y, ln_y, n, 2e-5, "layernorm");
    free(y);
    lam_tensor_release(t);
    lam_block_release(b);
}

/* Sample 0 gets a NaN: every other sample's output must be what it is without it. */
static void nan_isolated(const char *type, const char *attrs, lam_shape s) {
    lam_block *b = layer(type, attrs);
    cr_assert_eq(lam_block_initialize(b, NULL, NULL, 0), LAM_OK, "%s", lam_last_error());
    int64_t n = 1;
    for (uint32_t i = 0; i < s.ndim; i++) {
        n *= s.dims[i];
    }
    float *x = malloc((size_t)n * sizeof *x);
    seq(x, (size_t)n, 0.61, 0.2);
    lam_tensor *clean = tensor(NULL, s, x);
    x[1] = NAN;
    lam_tensor *dirty = tensor(NULL, s, x);
    size_t na, nb;
    lam_seed(7); /* a stochastic layer draws the same numbers for both */
    float *a = forward(b, clean, &na);
    lam_seed(7);
    float *c = forward(b, dirty, &nb);
    cr_assert_eq(na, nb);
    size_t per = na / (size_t)s.dims[0];
    for (size_t i = per; i < na; i++) {
        cr_expect(memcmp(&a[i], &c[i], sizeof a[i]) == 0,
                  "%s: output %zu of sample %zu changed by a NaN in sample 0 (%g vs %g)", type, i,
                  i / per, a[i], c[i]);
    }
    free(a);
    free(c);
    free(x);
    lam_tensor_release(clean);
    lam_tensor_release(dirty);
    lam_block_release(b);
}

Test(t2layers, nan_stays_in_its_sample) {
    nan_isolated("TConv3x3", "channels=3", (lam_shape){.ndim = 4, .dims = {3, 2, 4, 5}});
    nan_isolated("TMaxPool", "pool_size=3, strides=2",
                 (lam_shape){.ndim = 4, .dims = {3, 2, 5, 5}});
    nan_isolated("TLayerNorm", NULL, (lam_shape){.ndim = 2, .dims = {3, 6}});
    nan_isolated("GELU", NULL, (lam_shape){.ndim = 2, .dims = {3, 6}});
    int was = lam_autograd_train_mode_begin(1);
    nan_isolated("TDropout", "rate=0.25", (lam_shape){.ndim = 2, .dims = {3, 6}});
    lam_autograd_train_mode_end(was);
}

static lam_tensor *indices(lam_ctx *ctx, const int32_t *v, int64_t n) {
    lam_shape s = {.ndim = 1, .dims = {n}};
    lam_tensor *t = NULL;
    cr_assert_eq(lam_tensor_create_dtype(ctx, LAM_DTYPE_I32, &s, &t), LAM_OK, "%s",
                 lam_last_error());
    cr_assert_eq(lam_tensor_write_bytes(t, v, (size_t)n * sizeof *v), LAM_OK, "%s",
                 lam_last_error());
    return t;
}

Test(t2layers, embedding_int32_rows_and_gradient) {
    lam_block *b = layer("TEmbedding", "input_dim=7, output_dim=3");
    cr_assert_eq(lam_block_initialize(b, NULL, NULL, 0), LAM_OK, "%s", lam_last_error());
    float w[21];
    seq(w, 21, 0.3, 0.0);
    set_param(b, "weight", w, 21);
    const int32_t idx[4] = {6, 0, 6, 2};
    lam_tensor *t = indices(NULL, idx, 4), *y = NULL, *loss = NULL;
    int was = lam_autograd_record_begin(1);
    cr_assert_eq(lam_block_forward(b, 1, &t, &y), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_sum(y, NULL, 0, 0, &loss), LAM_OK, "%s", lam_last_error());
    lam_autograd_record_end(was);
    float got[12];
    cr_assert_eq(lam_tensor_read(y, got, 12), LAM_OK);
    for (int m = 0; m < 4; m++) {
        for (int d = 0; d < 3; d++) {
            cr_expect_eq(got[m * 3 + d], w[idx[m] * 3 + d], "row %d col %d", m, d);
        }
    }
    cr_assert_eq(lam_autograd_backward(loss, NULL), LAM_OK, "%s", lam_last_error());
    lam_tensor *g = NULL;
    cr_assert_eq(lam_param_grad(lam_block_param(b, "weight"), &g), LAM_OK, "%s", lam_last_error());
    float gw[21];
    cr_assert_eq(lam_tensor_read(g, gw, 21), LAM_OK);
    const float want[7] = {1, 0, 1, 0, 0, 0, 2}; /* how often each row was gathered */
    for (int r = 0; r < 7; r++) {
        for (int d = 0; d < 3; d++) {
            cr_expect_eq(gw[r * 3 + d], want[r], "grad row %d", r);
        }
    }
    lam_tensor_release(g);
    lam_tensor_release(loss);
    lam_tensor_release(y);
    lam_tensor_release(t);
    const int32_t bad[3] = {1, 7, 0};
    t = indices(NULL, bad, 3);
    y = NULL;
    lam_status st = lam_block_forward(b, 1, &t, &y);
    if (st == LAM_OK) { /* an asynchronous backend reports it when the result is read */
        float v[9];
        st = lam_tensor_read(y, v, 9);
        lam_tensor_release(y);
    }
    cr_expect_eq(st, LAM_ERR_INVALID_ARGUMENT, "%s", lam_last_error());
    cr_expect(strstr(lam_last_error(), "7") != NULL, "message names the index: %s",
              lam_last_error());
    lam_tensor_release(t);
    lam_block_release(b);
}

/* One training forward of b on ctx right after lam_seed(42): the stream restarts there. */
static float *dropout_on(lam_block *b, lam_ctx *ctx, size_t *n) {
    lam_seed(42);
    float x[256];
    for (int i = 0; i < 256; i++) {
        x[i] = 1.0f;
    }
    lam_tensor *t = tensor(ctx, (lam_shape){.ndim = 2, .dims = {16, 16}}, x);
    int was = lam_autograd_train_mode_begin(1);
    float *y = forward(b, t, n);
    lam_autograd_train_mode_end(was);
    lam_tensor_release(t);
    return y;
}

Test(t2layers, dropout_device_rng_training_only) {
    lam_ctx *cpu = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &cpu), LAM_OK, "%s", lam_last_error());
    size_t n;
    lam_block *d = layer("TDropout", "rate=0.3");
    float *a = dropout_on(d, cpu, &n), *again = dropout_on(d, cpu, &n);
    int kept = 0;
    for (size_t i = 0; i < n; i++) {
        cr_expect(a[i] == 0.0f || fabsf(a[i] - 1.0f / 0.7f) < 1e-6f, "element %zu is %g", i, a[i]);
        kept += a[i] != 0.0f;
    }
    cr_expect(kept > 256 * 0.55 && kept < 256 * 0.85, "%d of 256 kept at rate 0.3", kept);
    cr_expect(memcmp(a, again, n * sizeof *a) == 0, "the same seed gives the same mask");
    lam_seed(42);
    size_t n2;
    float *first = dropout_on(d, cpu, &n2);
    free(first);
    int was = lam_autograd_train_mode_begin(1); /* a second forward without re-seeding differs */
    float ones[256];
    for (int i = 0; i < 256; i++) {
        ones[i] = 1.0f;
    }
    lam_tensor *t2 = tensor(cpu, (lam_shape){.ndim = 2, .dims = {16, 16}}, ones);
    float *next = forward(d, t2, &n2);
    lam_autograd_train_mode_end(was);
    cr_expect(memcmp(a, next, n * sizeof *a) != 0, "consecutive forwards drew the same mask");
    free(next);
    lam_tensor_release(t2);
    lam_ctx *vk = NULL;
    if (lam_ctx_get("vulkan", &vk) == LAM_OK) {
        float *v = dropout_on(d, vk, &n);
        cr_expect(memcmp(a, v, n * sizeof *a) == 0, "CPU and Vulkan masks differ");
        free(v);
    }
    /* inference: the identity */
    lam_block *b = layer("TDropout", "rate=0.3");
    float x[4] = {1, 2, 3, 4};
    lam_tensor *t = tensor(cpu, (lam_shape){.ndim = 1, .dims = {4}}, x);
    float *y = forward(b, t, &n);
    cr_expect(memcmp(x, y, sizeof x) == 0, "dropout at inference must be the identity");
    free(y);
    free(a);
    free(again);
    lam_tensor_release(t);
    lam_block_release(b);
    lam_block_release(d);
}

Test(t2layers, two_outputs_each_differentiated) {
    lam_block *b = layer("TTwo", NULL);
    cr_expect_eq(lam_block_output_count(b), 2u);
    float x[3] = {1, -2, 0.5f};
    lam_tensor *t = tensor(NULL, (lam_shape){.ndim = 1, .dims = {3}}, x), *o[2] = {NULL, NULL};
    cr_assert_eq(lam_tensor_attach_grad(t), LAM_OK);
    int was = lam_autograd_record_begin(1);
    cr_assert_eq(lam_block_forward_outputs(b, 1, &t, 2, o), LAM_OK, "%s", lam_last_error());
    lam_tensor *sum = NULL, *loss = NULL;
    cr_assert_eq(lam_op_add(o[0], o[1], &sum), LAM_OK);
    cr_assert_eq(lam_op_sum(sum, NULL, 0, 0, &loss), LAM_OK);
    lam_autograd_record_end(was);
    float a[3], c[3];
    cr_assert_eq(lam_tensor_read(o[0], a, 3), LAM_OK);
    cr_assert_eq(lam_tensor_read(o[1], c, 3), LAM_OK);
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(a[i], 2 * x[i]);
        cr_expect_eq(c[i], x[i] + 1);
    }
    cr_assert_eq(lam_autograd_backward(loss, NULL), LAM_OK, "%s", lam_last_error());
    lam_tensor *g = NULL;
    cr_assert_eq(lam_tensor_grad(t, &g), LAM_OK);
    float gv[3];
    cr_assert_eq(lam_tensor_read(g, gv, 3), LAM_OK);
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(gv[i], 3.0f, "d(2x + x + 1)/dx = 3, got %g", gv[i]);
    }
    lam_tensor *first = NULL, *three[3] = {NULL, NULL, NULL};
    cr_assert_eq(lam_block_forward(b, 1, &t, &first), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_read(first, a, 3), LAM_OK);
    cr_expect_eq(a[1], -4.0f, "lam_block_forward gives the first output");
    cr_expect_eq(lam_block_forward_outputs(b, 1, &t, 3, three), LAM_ERR_INVALID_ARGUMENT);
    cr_expect_str_eq(lam_last_error(),
                     "ttwo0: Wrong number of outputs, 3 asked for, the block gives 2");
    lam_tensor *all[] = {first, g, sum, loss, o[0], o[1], t};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        lam_tensor_release(all[i]);
    }
    lam_block_release(b);
}

Test(t2layers, max_inputs_zero_means_min) {
    lam_block *b = layer("TPair", NULL);
    float x[2] = {1, 2}, y[2] = {10, 20};
    lam_tensor *a = tensor(NULL, (lam_shape){.ndim = 1, .dims = {2}}, x);
    lam_tensor *c = tensor(NULL, (lam_shape){.ndim = 1, .dims = {2}}, y);
    lam_tensor *in[2] = {a, c}, *o = NULL;
    cr_assert_eq(lam_block_forward(b, 2, in, &o), LAM_OK, "%s", lam_last_error());
    float v[2];
    cr_assert_eq(lam_tensor_read(o, v, 2), LAM_OK);
    cr_expect(v[0] == 11 && v[1] == 22, "got %g %g", v[0], v[1]);
    lam_tensor_release(o);
    cr_expect_eq(lam_block_forward(b, 1, in, &o), LAM_ERR_SHAPE);
    cr_expect_str_eq(lam_last_error(), "tpair0: Wrong number of inputs, expected 2, got 1");
    lam_tensor_release(a);
    lam_tensor_release(c);
    lam_block_release(b);
}
