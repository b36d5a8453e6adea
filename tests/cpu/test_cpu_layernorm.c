/*
 * test_cpu_layernorm.c - the CPU backend's LAYER_NORM and LAYER_NORM_BACKWARD (ABI 2.2), driven
 * directly through its descriptor with a minimal host table (cpu_test_host.h): values against
 * ref/layer_norm_refs.h (NumPy, float64, from ref/gen_layer_norm_refs.py), NaN isolation between
 * rows, the empty cases the header defines, and the shape errors.
 */
#define _GNU_SOURCE /* setenv, unsetenv (cpu_test_host.h) */

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"
#include "ref/layer_norm_refs.h"

#include "cpu_test_host.h"

static void setup(void) {
    cpu_test_open_backend();
}

static void teardown(void) {
    cpu_test_close_backend();
}

TestSuite(cpu_layernorm, .init = setup, .fini = teardown);

typedef struct tens {
    void *buf;
    lam_tensor_view v;
    size_t count;
} tens;

/* A contiguous float32 tensor of dims (d0) or (d0, d1) holding data (NULL: NaN poison). */
static tens mk(uint32_t nd, int64_t d0, int64_t d1, const float *data) {
    tens t;
    t.count = (size_t)(nd == 1 ? d0 : d0 * d1);
    const size_t bytes = t.count * sizeof(float);
    cr_assert_eq(g_desc.buffer_alloc(g_dev, bytes ? bytes : 4, &t.buf), LAM_OK, "%s", g_msg);
    memset(&t.v, 0, sizeof t.v);
    t.v.struct_size = (uint32_t)sizeof t.v;
    t.v.dtype = LAM_DTYPE_F32;
    t.v.buffer = t.buf;
    t.v.ndim = nd;
    t.v.dims[0] = d0;
    t.v.dims[1] = d1;
    t.v.strides[nd - 1] = 4;
    if (nd == 2) {
        t.v.strides[0] = 4 * d1;
    }
    float *init = malloc(bytes + 4);
    for (size_t i = 0; i < t.count; i++) {
        init[i] = data != NULL ? data[i] : NAN;
    }
    if (bytes > 0) {
        cr_assert_eq(g_desc.buffer_write(g_dev, t.buf, 0, init, bytes), LAM_OK, "%s", g_msg);
    }
    free(init);
    return t;
}

static void rd(const tens *t, float *out) {
    if (t->count > 0) {
        cr_assert_eq(g_desc.buffer_read(g_dev, t->buf, 0, out, t->count * sizeof(float)), LAM_OK,
                     "%s", g_msg);
    }
}

static void drop(tens *t) {
    g_desc.buffer_free(g_dev, t->buf);
}

static lam_status run(lam_op op, uint32_t n_in, tens *in, uint32_t n_out, tens *out) {
    const lam_tensor_view *iv[5], *ov[3];
    for (uint32_t i = 0; i < n_in; i++) {
        iv[i] = &in[i].v;
    }
    for (uint32_t i = 0; i < n_out; i++) {
        ov[i] = &out[i].v;
    }
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    p.a = 1e-5;
    lam_op_call c;
    memset(&c, 0, sizeof c);
    c.struct_size = (uint32_t)sizeof c;
    c.abi_version = LAM_ABI_VERSION;
    c.op = op;
    c.n_inputs = n_in;
    c.n_outputs = n_out;
    c.inputs = iv;
    c.outputs = ov;
    c.params = &p;
    g_msg[0] = '\0';
    return g_desc.execute(g_dev, &c);
}

/* The inputs of the reference (gen_layer_norm_refs.py computes them the same way). */
static float x_ref[LN_M * LN_N], gamma_ref[LN_N], beta_ref[LN_N], dy_ref[LN_M * LN_N];

static void make_inputs(void) {
    for (int i = 0; i < LN_M * LN_N; i++) {
        x_ref[i] = (float)(sin(0.61 * i + 0.3) * 1.7 + 0.2);
        dy_ref[i] = (float)cos(0.47 * i - 0.2);
    }
    for (int j = 0; j < LN_N; j++) {
        gamma_ref[j] = (float)(0.8 + 0.5 * sin(1.3 * j));
        beta_ref[j] = (float)(0.25 * cos(0.9 * j));
    }
}

static void expect_near(const float *got, const double *want, size_t n, double tol,
                        const char *what) {
    for (size_t i = 0; i < n; i++) {
        cr_expect(fabs((double)got[i] - want[i]) <= tol * fmax(1.0, fabs(want[i])),
                  "%s[%zu] = %.9g, expected %.9g", what, i, (double)got[i], want[i]);
    }
}

/* Forward with statistics into y, mean, rstd; x may be replaced. */
static void forward(const float *x, float *y, float *mean, float *rstd) {
    tens in[3] = {mk(2, LN_M, LN_N, x), mk(1, LN_N, 0, gamma_ref), mk(1, LN_N, 0, beta_ref)};
    tens out[3] = {mk(2, LN_M, LN_N, NULL), mk(1, LN_M, 0, NULL), mk(1, LN_M, 0, NULL)};
    cr_assert_eq(run(LAM_OP_LAYER_NORM, 3, in, 3, out), LAM_OK, "%s", g_msg);
    rd(&out[0], y);
    rd(&out[1], mean);
    rd(&out[2], rstd);
    for (int i = 0; i < 3; i++) {
        drop(&in[i]);
        drop(&out[i]);
    }
}

/* Backward (every output) from the given x, mean and rstd. */
static void backward(const float *x, const float *mean, const float *rstd, float *dx, float *dgamma,
                     float *dbeta) {
    tens in[5] = {mk(2, LN_M, LN_N, dy_ref), mk(2, LN_M, LN_N, x), mk(1, LN_M, 0, mean),
                  mk(1, LN_M, 0, rstd), mk(1, LN_N, 0, gamma_ref)};
    tens out[3] = {mk(2, LN_M, LN_N, NULL), mk(1, LN_N, 0, NULL), mk(1, LN_N, 0, NULL)};
    cr_assert_eq(run(LAM_OP_LAYER_NORM_BACKWARD, 5, in, 3, out), LAM_OK, "%s", g_msg);
    rd(&out[0], dx);
    rd(&out[1], dgamma);
    rd(&out[2], dbeta);
    for (int i = 0; i < 5; i++) {
        drop(&in[i]);
    }
    for (int i = 0; i < 3; i++) {
        drop(&out[i]);
    }
}

Test(cpu_layernorm, forward_matches_numpy) {
    make_inputs();
    float y[LN_M * LN_N], mean[LN_M], rstd[LN_M];
    forward(x_ref, y, mean, rstd);
    expect_near(y, ln_y, LN_M * LN_N, 2e-6, "y");
    expect_near(mean, ln_mean, LN_M, 1e-6, "mean");
    expect_near(rstd, ln_rstd, LN_M, 1e-6, "rstd");
}

Test(cpu_layernorm, backward_matches_numpy) {
    make_inputs();
    float y[LN_M * LN_N], mean[LN_M], rstd[LN_M], dx[LN_M * LN_N], dg[LN_N], db[LN_N];
    forward(x_ref, y, mean, rstd);
    backward(x_ref, mean, rstd, dx, dg, db);
    expect_near(dx, ln_dx, LN_M * LN_N, 1e-5, "dx");
    expect_near(dg, ln_dgamma, LN_N, 1e-5, "dgamma");
    expect_near(db, ln_dbeta, LN_N, 1e-5, "dbeta");
}

/* The first output alone (no statistics, no dgamma/dbeta) gives the same y and dx. */
Test(cpu_layernorm, first_output_alone) {
    make_inputs();
    float y[LN_M * LN_N], mean[LN_M], rstd[LN_M], y1[LN_M * LN_N];
    forward(x_ref, y, mean, rstd);
    tens in[3] = {mk(2, LN_M, LN_N, x_ref), mk(1, LN_N, 0, gamma_ref), mk(1, LN_N, 0, beta_ref)};
    tens out = mk(2, LN_M, LN_N, NULL);
    cr_assert_eq(run(LAM_OP_LAYER_NORM, 3, in, 1, &out), LAM_OK, "%s", g_msg);
    rd(&out, y1);
    cr_expect_eq(memcmp(y, y1, sizeof y), 0, "y differs without the statistics");
    tens bin[5] = {mk(2, LN_M, LN_N, dy_ref), mk(2, LN_M, LN_N, x_ref), mk(1, LN_M, 0, mean),
                   mk(1, LN_M, 0, rstd), mk(1, LN_N, 0, gamma_ref)};
    tens bout = mk(2, LN_M, LN_N, NULL);
    cr_assert_eq(run(LAM_OP_LAYER_NORM_BACKWARD, 5, bin, 1, &bout), LAM_OK, "%s", g_msg);
    rd(&bout, y1);
    expect_near(y1, ln_dx, LN_M * LN_N, 1e-5, "dx alone");
    for (int i = 0; i < 5; i++) {
        drop(&bin[i]);
    }
    for (int i = 0; i < 3; i++) {
        drop(&in[i]);
    }
    drop(&out);
    drop(&bout);
}

/* A NaN in row 1 of x: rows 0, 2 and 3 of y and dx are bit-identical to the run without it. */
Test(cpu_layernorm, nan_stays_in_its_row) {
    make_inputs();
    float y0[LN_M * LN_N], m0[LN_M], r0[LN_M], dx0[LN_M * LN_N], dg[LN_N], db[LN_N];
    float y1[LN_M * LN_N], m1[LN_M], r1[LN_M], dx1[LN_M * LN_N];
    forward(x_ref, y0, m0, r0);
    backward(x_ref, m0, r0, dx0, dg, db);
    float x[LN_M * LN_N];
    memcpy(x, x_ref, sizeof x);
    x[LN_N + 3] = NAN;
    forward(x, y1, m1, r1);
    backward(x, m1, r1, dx1, dg, db);
    for (int i = 0; i < LN_M; i++) {
        for (int j = 0; j < LN_N; j++) {
            const int k = i * LN_N + j;
            if (i == 1) {
                cr_expect(isnan(y1[k]) && isnan(dx1[k]), "row 1 [%d]: y %g, dx %g, not NaN", j,
                          (double)y1[k], (double)dx1[k]);
            } else {
                cr_expect(memcmp(&y0[k], &y1[k], 4) == 0 && memcmp(&dx0[k], &dx1[k], 4) == 0,
                          "row %d [%d] changed by a NaN in row 1: y %g vs %g, dx %g vs %g", i, j,
                          (double)y1[k], (double)y0[k], (double)dx1[k], (double)dx0[k]);
            }
        }
    }
    cr_expect(isnan(m1[1]) && isnan(r1[1]) && !isnan(m1[0]) && !isnan(r1[2]));
}

/*
 * Rows far from zero with a small spread (2999.87654 r + 0.002 sin): the variance keeps float
 * accuracy (E[x^2] - E[x]^2 in float would lose every digit, and deviations from the float mean
 * alone would be off by its rounding squared, up to ~10% here). Reference: two passes in double,
 * computed here; y against the op's definition with the mean it wrote (float).
 */
Test(cpu_layernorm, large_mean_small_spread) {
    enum { M = 3, N = 1537 };
    static float x[M * N], g[N], b[N], y[M * N], mean[M], rstd[M];
    for (int i = 0; i < M * N; i++) {
        x[i] = (float)(2999.87654 * (1 + i / N) + 0.002 * sin(0.37 * i));
    }
    for (int j = 0; j < N; j++) {
        g[j] = 1.0f;
        b[j] = 0.0f;
    }
    tens in[3] = {mk(2, M, N, x), mk(1, N, 0, g), mk(1, N, 0, b)};
    tens out[3] = {mk(2, M, N, NULL), mk(1, M, 0, NULL), mk(1, M, 0, NULL)};
    cr_assert_eq(run(LAM_OP_LAYER_NORM, 3, in, 3, out), LAM_OK, "%s", g_msg);
    rd(&out[0], y);
    rd(&out[1], mean);
    rd(&out[2], rstd);
    for (int r = 0; r < M; r++) {
        double s = 0.0, ss = 0.0;
        for (int k = 0; k < N; k++) {
            s += x[r * N + k];
        }
        const double m = s / N;
        for (int k = 0; k < N; k++) {
            ss += (x[r * N + k] - m) * (x[r * N + k] - m);
        }
        const double want = 1.0 / sqrt(ss / N + 1e-5);
        cr_expect(fabs(rstd[r] - want) <= 1e-5 * want, "row %d: rstd %.9g, expected %.9g", r,
                  (double)rstd[r], want);
        cr_expect(fabs(mean[r] - m) <= 1e-6 * fabs(m), "row %d: mean %.9g, expected %.9g", r,
                  (double)mean[r], m);
        for (int k = 0; k < N; k += 97) {
            const double yk = ((double)x[r * N + k] - (double)mean[r]) * want;
            cr_expect(fabs(y[r * N + k] - yk) <= 1e-4 * fmax(1.0, fabs(yk)),
                      "y[%d, %d] %.9g, expected %.9g", r, k, (double)y[r * N + k], yk);
        }
    }
    for (int i = 0; i < 3; i++) {
        drop(&in[i]);
        drop(&out[i]);
    }
}

/* N == 0: NaN statistics, an empty y; M == 0 backward: dgamma and dbeta written as zeros. */
Test(cpu_layernorm, empty_rows_and_no_rows) {
    tens in[3] = {mk(2, 3, 0, NULL), mk(1, 0, 0, NULL), mk(1, 0, 0, NULL)};
    tens out[3] = {mk(2, 3, 0, NULL), mk(1, 3, 0, NULL), mk(1, 3, 0, NULL)};
    float one[3] = {0, 0, 0};
    tens *s[2] = {&out[1], &out[2]};
    for (int i = 0; i < 2; i++) { /* poison with zeros: the op must write NaN */
        cr_assert_eq(g_desc.buffer_write(g_dev, s[i]->buf, 0, one, sizeof one), LAM_OK);
    }
    cr_assert_eq(run(LAM_OP_LAYER_NORM, 3, in, 3, out), LAM_OK, "%s", g_msg);
    float m[3], r[3];
    rd(&out[1], m);
    rd(&out[2], r);
    for (int i = 0; i < 3; i++) {
        cr_expect(isnan(m[i]) && isnan(r[i]), "row %d: mean %g rstd %g, expected NaN", i,
                  (double)m[i], (double)r[i]);
    }
    const float g5[5] = {1, 2, 3, 4, 5};
    tens bin[5] = {mk(2, 0, 5, NULL), mk(2, 0, 5, NULL), mk(1, 0, 0, NULL), mk(1, 0, 0, NULL),
                   mk(1, 5, 0, g5)};
    tens bout[3] = {mk(2, 0, 5, NULL), mk(1, 5, 0, NULL), mk(1, 5, 0, NULL)};
    cr_assert_eq(run(LAM_OP_LAYER_NORM_BACKWARD, 5, bin, 3, bout), LAM_OK, "%s", g_msg);
    float dg[5], db[5];
    rd(&bout[1], dg);
    rd(&bout[2], db);
    for (int j = 0; j < 5; j++) {
        cr_expect(dg[j] == 0.0f && db[j] == 0.0f, "dgamma[%d] %g, dbeta %g: not 0", j,
                  (double)dg[j], (double)db[j]);
    }
    for (int i = 0; i < 5; i++) {
        drop(&bin[i]);
    }
    for (int i = 0; i < 3; i++) {
        drop(&in[i]);
        drop(&out[i]);
        drop(&bout[i]);
    }
}

Test(cpu_layernorm, shape_errors_named) {
    make_inputs();
    tens in[3] = {mk(2, LN_M, LN_N, x_ref), mk(1, LN_N - 1, 0, gamma_ref),
                  mk(1, LN_N, 0, beta_ref)};
    tens out[3] = {mk(2, LN_M, LN_N, NULL), mk(1, LN_M, 0, NULL), mk(1, LN_M, 0, NULL)};
    cr_assert_eq(run(LAM_OP_LAYER_NORM, 3, in, 3, out), LAM_ERR_SHAPE);
    cr_expect_str_eq(g_msg, "cpu: Shape mismatch, layer_norm input 1 (gamma) has dims (6,), "
                            "expected (7,)");
    drop(&in[1]);
    in[1] = mk(1, LN_N, 0, gamma_ref);
    cr_assert_eq(run(LAM_OP_LAYER_NORM, 3, in, 2, out), LAM_ERR_INVALID_ARGUMENT);
    cr_expect_str_eq(g_msg, "cpu: Invalid argument, layer_norm writes 1 output (y) or 3 (y, "
                            "mean, rstd), got 2");
    tens bad = mk(1, LN_M + 1, 0, NULL);
    tens bin[5] = {mk(2, LN_M, LN_N, dy_ref), mk(2, LN_M, LN_N, x_ref), bad, mk(1, LN_M, 0, NULL),
                   mk(1, LN_N, 0, gamma_ref)};
    cr_assert_eq(run(LAM_OP_LAYER_NORM_BACKWARD, 5, bin, 1, out), LAM_ERR_SHAPE);
    cr_expect_str_eq(g_msg, "cpu: Shape mismatch, layer_norm_backward input 2 (mean) has dims "
                            "(5,), expected (4,)");
    for (int i = 0; i < 5; i++) {
        drop(&bin[i]);
    }
    for (int i = 0; i < 3; i++) {
        drop(&in[i]);
        drop(&out[i]);
    }
}
