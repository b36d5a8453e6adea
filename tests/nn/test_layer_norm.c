/*
 * test_layer_norm.c - lam_op_layer_norm, the host side of LAYER_NORM (ABI 2.2): forward values
 * and the gradients of its one autograd node (x, gamma, beta) against ../cpu/ref/
 * layer_norm_refs.h (NumPy, float64, gradients checked by central differences in
 * gen_layer_norm_refs.py); the host's composition on a backend without the fused op (Vulkan)
 * against the CPU's fused op; NaN isolation between rows; the errors. Runs on the default
 * context (CPU, or Vulkan with LAMINA_BACKEND=vulkan, where the composition runs). The
 * LNHostOp test layer (lnhost.c) makes the calls a plugin makes through host->op: LAYER_NORM
 * with its statistics and LAYER_NORM_BACKWARD with 1 and 3 outputs.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../cpu/ref/layer_norm_refs.h"
#include "lamina/lamina.h"

#define NX (LN_M * LN_N)

static void fini(void) {
    lam_shutdown();
}

TestSuite(layer_norm, .fini = fini);

#define OK(call)                                                                                   \
    do {                                                                                           \
        lam_status st_ = (call);                                                                   \
        cr_assert_eq(st_, LAM_OK, "%s failed: %s (%s)", #call, lam_status_string(st_),             \
                     lam_last_error());                                                            \
    } while (0)

/* The reference's inputs, computed as gen_layer_norm_refs.py computes them. */
static float x_ref[NX], gamma_ref[LN_N], beta_ref[LN_N], dy_ref[NX];

static void make_inputs(void) {
    for (int i = 0; i < NX; i++) {
        x_ref[i] = (float)(sin(0.61 * i + 0.3) * 1.7 + 0.2);
        dy_ref[i] = (float)cos(0.47 * i - 0.2);
    }
    for (int j = 0; j < LN_N; j++) {
        gamma_ref[j] = (float)(0.8 + 0.5 * sin(1.3 * j));
        beta_ref[j] = (float)(0.25 * cos(0.9 * j));
    }
}

static lam_tensor *tensor(lam_ctx *ctx, const lam_shape *s, const float *data, int grad) {
    lam_tensor *t = NULL;
    OK(lam_tensor_from_data(ctx, s, data, (size_t)lam_shape_numel(s), &t));
    if (grad) {
        OK(lam_tensor_attach_grad(t));
    }
    return t;
}

typedef struct ln_result {
    float y[NX], dx[NX], dgamma[LN_N], dbeta[LN_N];
} ln_result;

static void read_grad(const lam_tensor *t, float *out, size_t n) {
    lam_tensor *g = NULL;
    OK(lam_tensor_grad(t, &g));
    OK(lam_tensor_read(g, out, n));
    lam_tensor_release(g);
}

/* y = layer_norm(x) on ctx with x shaped `xs` (LN_M * LN_N elements), then backward with head
 * gradient dy; gamma/beta NULL-able (affine 0: neither). */
static void run(lam_ctx *ctx, const lam_shape *xs, const float *x, int affine, ln_result *r) {
    const lam_shape sn = {.ndim = 1, .dims = {LN_N}};
    lam_tensor *tx = tensor(ctx, xs, x, 1);
    lam_tensor *tg = affine ? tensor(ctx, &sn, gamma_ref, 1) : NULL;
    lam_tensor *tb = affine ? tensor(ctx, &sn, beta_ref, 1) : NULL;
    lam_tensor *dy = tensor(ctx, xs, dy_ref, 0), *y = NULL;
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_op_layer_norm(tx, tg, tb, 1e-5f, &y);
    lam_autograd_record_end(was);
    OK(st);
    cr_assert(lam_shape_equal(lam_tensor_shape(y), xs));
    OK(lam_tensor_read(y, r->y, NX));
    OK(lam_autograd_backward(y, dy));
    read_grad(tx, r->dx, NX);
    if (affine) {
        read_grad(tg, r->dgamma, LN_N);
        read_grad(tb, r->dbeta, LN_N);
    }
    lam_tensor_release(y);
    lam_tensor_release(dy);
    lam_tensor_release(tx);
    lam_tensor_release(tg);
    lam_tensor_release(tb);
}

static void expect_near(const float *got, const double *want, size_t n, double tol,
                        const char *what) {
    for (size_t i = 0; i < n; i++) {
        cr_expect(fabs((double)got[i] - want[i]) <= tol * fmax(1.0, fabs(want[i])),
                  "%s[%zu] = %.9g, expected %.9g", what, i, (double)got[i], want[i]);
    }
}

static void expect_refs(const ln_result *r, const char *where) {
    char w[64];
    snprintf(w, sizeof w, "%s y", where);
    expect_near(r->y, ln_y, NX, 1e-5, w);
    snprintf(w, sizeof w, "%s dx", where);
    expect_near(r->dx, ln_dx, NX, 1e-4, w);
    snprintf(w, sizeof w, "%s dgamma", where);
    expect_near(r->dgamma, ln_dgamma, LN_N, 1e-4, w);
    snprintf(w, sizeof w, "%s dbeta", where);
    expect_near(r->dbeta, ln_dbeta, LN_N, 1e-4, w);
}

static lam_ctx *default_ctx(void) {
    lam_ctx *c = NULL;
    OK(lam_ctx_default(&c));
    return c;
}

Test(layer_norm, values_and_gradients_match_numpy) {
    make_inputs();
    ln_result r;
    const lam_shape s2 = {.ndim = 2, .dims = {LN_M, LN_N}};
    run(default_ctx(), &s2, x_ref, 1, &r);
    expect_refs(&r, "(4, 7)");
    /* The same rows as a 3-D tensor: every axis but the last is rows. */
    const lam_shape s3 = {.ndim = 3, .dims = {2, 2, LN_N}};
    run(default_ctx(), &s3, x_ref, 1, &r);
    expect_refs(&r, "(2, 2, 7)");
    cr_expect_eq(lam_tensor_live_count(), 0);
}

/* No gamma and no beta: ones and zeros, so y = xhat = (y_ref - beta) / gamma. */
Test(layer_norm, without_gamma_and_beta) {
    make_inputs();
    ln_result r;
    const lam_shape s2 = {.ndim = 2, .dims = {LN_M, LN_N}};
    run(default_ctx(), &s2, x_ref, 0, &r);
    double want[NX];
    for (int i = 0; i < NX; i++) {
        want[i] = (ln_y[i] - (double)beta_ref[i % LN_N]) / (double)gamma_ref[i % LN_N];
    }
    expect_near(r.y, want, NX, 1e-5, "xhat");
    cr_expect_eq(lam_tensor_live_count(), 0);
}

/*
 * The host's composition of basic ops (what runs where the backend lacks the fused op: Vulkan
 * has no LAYER_NORM) gives the CPU's fused results, values and gradients.
 */
Test(layer_norm, composition_on_vulkan_matches_fused_cpu) {
    make_inputs();
    lam_ctx *cpu = NULL, *vk = NULL;
    OK(lam_ctx_get("cpu", &cpu));
    if (lam_ctx_get("vulkan", &vk) != LAM_OK) {
        cr_skip("no Vulkan device here (%s): the composition is checked where one exists (CI's "
                "lavapipe pass)",
                lam_last_error());
    }
    ln_result a, b;
    const lam_shape s2 = {.ndim = 2, .dims = {LN_M, LN_N}};
    run(cpu, &s2, x_ref, 1, &a);
    run(vk, &s2, x_ref, 1, &b);
    expect_refs(&a, "cpu");
    expect_refs(&b, "vulkan");
    for (int i = 0; i < NX; i++) {
        cr_expect(fabsf(a.y[i] - b.y[i]) <= 2e-6f * fmaxf(1.0f, fabsf(a.y[i])), "y[%d] %g vs %g", i,
                  (double)a.y[i], (double)b.y[i]);
        cr_expect(fabsf(a.dx[i] - b.dx[i]) <= 1e-5f * fmaxf(1.0f, fabsf(a.dx[i])),
                  "dx[%d] %g vs %g", i, (double)a.dx[i], (double)b.dx[i]);
    }
    cr_expect_eq(lam_tensor_live_count(), 0);
}

/* A NaN in row 1: every other row's output and gradient is bit-identical to the run without. */
Test(layer_norm, nan_stays_in_its_row) {
    make_inputs();
    const lam_shape s2 = {.ndim = 2, .dims = {LN_M, LN_N}};
    ln_result a, b;
    run(default_ctx(), &s2, x_ref, 1, &a);
    float x[NX];
    memcpy(x, x_ref, sizeof x);
    x[LN_N + 2] = NAN;
    run(default_ctx(), &s2, x, 1, &b);
    for (int i = 0; i < NX; i++) {
        if (i / LN_N == 1) {
            cr_expect(isnan(b.y[i]) && isnan(b.dx[i]), "row 1: y %g, dx %g, not NaN",
                      (double)b.y[i], (double)b.dx[i]);
        } else {
            cr_expect(memcmp(&a.y[i], &b.y[i], 4) == 0 && memcmp(&a.dx[i], &b.dx[i], 4) == 0,
                      "element %d (row %d) changed by a NaN in row 1: y %g vs %g, dx %g vs %g", i,
                      i / LN_N, (double)b.y[i], (double)a.y[i], (double)b.dx[i], (double)a.dx[i]);
        }
    }
    cr_expect_eq(lam_tensor_live_count(), 0);
}

static void expect_error(lam_status got, lam_status want, const char *msg) {
    cr_expect_eq(got, want, "status %s, expected %s (%s)", lam_status_string(got),
                 lam_status_string(want), lam_last_error());
    cr_expect_str_eq(lam_last_error(), msg);
}

Test(layer_norm, errors_named) {
    make_inputs();
    lam_ctx *c = default_ctx();
    const lam_shape s2 = {.ndim = 2, .dims = {LN_M, LN_N}}, s6 = {.ndim = 1, .dims = {6}};
    const lam_shape s0 = {.ndim = 0};
    lam_tensor *x = tensor(c, &s2, x_ref, 0), *g6 = tensor(c, &s6, gamma_ref, 0);
    lam_tensor *sc = tensor(c, &s0, x_ref, 0), *y = (lam_tensor *)&y;
    expect_error(lam_op_layer_norm(x, g6, NULL, 1e-5f, &y), LAM_ERR_SHAPE,
                 "lam_op_layer_norm: Shape mismatch, gamma is (6,), x's last axis has 7");
    cr_expect_null(y);
    expect_error(lam_op_layer_norm(x, NULL, NULL, -1.0f, &y), LAM_ERR_INVALID_ARGUMENT,
                 "lam_op_layer_norm: Invalid argument, eps -1 (must be finite and >= 0)");
    expect_error(lam_op_layer_norm(sc, NULL, NULL, 1e-5f, &y), LAM_ERR_SHAPE,
                 "lam_op_layer_norm: Shape mismatch, x has no axis to normalize over");
    expect_error(lam_op_layer_norm(NULL, NULL, NULL, 1e-5f, &y), LAM_ERR_INVALID_ARGUMENT,
                 "lam_op_layer_norm: Invalid argument, x is NULL");
    lam_tensor_release(x);
    lam_tensor_release(g6);
    lam_tensor_release(sc);
    cr_expect_eq(lam_tensor_live_count(), 0);
}

/* ---- through the generic host op entry (LNHostOp) ---- */

/* LNHostOp case `which` on three (4, 7)-or-(7) inputs: (x, gamma, beta) or (dy, x, gamma). */
static lam_status host_case(int which, int recording, lam_tensor **out) {
    make_inputs();
    lam_ctx *c = default_ctx();
    const lam_shape s2 = {.ndim = 2, .dims = {LN_M, LN_N}}, sn = {.ndim = 1, .dims = {LN_N}};
    const int bwd = which >= 3;
    lam_tensor *in[3] = {bwd ? tensor(c, &s2, dy_ref, 0) : tensor(c, &s2, x_ref, recording),
                         bwd ? tensor(c, &s2, x_ref, recording) : tensor(c, &sn, gamma_ref, 0),
                         bwd ? tensor(c, &sn, gamma_ref, 0) : tensor(c, &sn, beta_ref, 0)};
    char attrs[32];
    snprintf(attrs, sizeof attrs, "case=%d", which);
    lam_block *blk = NULL;
    OK(lam_layer_create("LNHostOp", attrs, &blk));
    int was = lam_autograd_record_begin(recording);
    lam_status st = lam_block_forward(blk, 3, in, out);
    lam_autograd_record_end(was);
    for (int i = 0; i < 3; i++) {
        lam_tensor_release(in[i]);
    }
    lam_block_release(blk);
    return st;
}

static void expect_host_case(int which, const double *want, int64_t n, const char *what) {
    lam_tensor *y = NULL;
    OK(host_case(which, 0, &y));
    cr_assert_eq(lam_tensor_numel(y), n, "%s: %lld elements", what, (long long)lam_tensor_numel(y));
    float got[NX];
    OK(lam_tensor_read(y, got, (size_t)n));
    expect_near(got, want, (size_t)n, 1e-4, what);
    lam_tensor_release(y);
}

/* dx, dgamma and dbeta with beta 0: the same as the reference's (beta does not enter them). */
Test(layer_norm, host_op_entry_every_output_count) {
    expect_host_case(0, ln_y, NX, "host op y");
    expect_host_case(1, ln_mean, LN_M, "host op mean");
    expect_host_case(2, ln_rstd, LN_M, "host op rstd");
    expect_host_case(3, ln_dx, NX, "host op dx");
    expect_host_case(4, ln_dgamma, LN_N, "host op dgamma");
    expect_host_case(5, ln_dbeta, LN_N, "host op dbeta");
    expect_host_case(6, ln_dx, NX, "host op dx alone");
    cr_expect_eq(lam_tensor_live_count(), 0);
}

Test(layer_norm, host_op_entry_errors) {
    lam_tensor *y = (lam_tensor *)&y;
    expect_error(host_case(7, 0, &y), LAM_ERR_INVALID_ARGUMENT,
                 "op layer_norm: Invalid argument, 2 outputs given, it writes 1 (y) or 3 (y, mean, "
                 "rstd)");
    cr_expect_null(y);
    /* The backward op is not differentiable: refused while x needs a gradient. */
    expect_error(host_case(3, 1, &y), LAM_ERR_UNSUPPORTED,
                 "op layer_norm_backward: Unsupported, the gradient of layer_norm_backward is not "
                 "differentiable (record layer_norm instead)");
    cr_expect_eq(lam_tensor_live_count(), 0);
}
