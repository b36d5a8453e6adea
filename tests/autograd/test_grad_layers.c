/*
 * Finite-difference gradient checks of the layer plugins (Dense with every activation, with
 * and without bias, flatten on a 3-D input; MyDense; Centered; Activation) with respect to
 * the input and to every parameter, and fused against unfused Dense backward.
 *
 * Parameter values are set with lam_param_set_data; the references are the layers' textbook
 * formulas in float64 (Gluon's Dense: act(x . W^T + b) with W (units, in); MyDense:
 * relu(x . W + b) with W (in, units); Centered: x - mean(x); softrelu = log(1 + exp(x))).
 */
#include "ag_util.h"

TestSuite(grad_layer, .fini = ag_fini);
TestSuite(fused, .fini = ag_fini);

static lam_block *make_layer(const char *type, const char *attrs) {
    lam_block *b = NULL;
    lam_status st = lam_layer_create(type, attrs, &b);
    cr_assert_eq(st, LAM_OK, "lam_layer_create(%s, \"%s\") failed: %s (%s)", type, attrs,
                 lam_status_string(st), lam_last_error());
    AG_OK(lam_block_initialize(b, NULL, NULL, 0));
    return b;
}

static lam_param *param_of(lam_block *b, const char *name) {
    lam_param *p = lam_block_param(b, name);
    cr_assert_not_null(p, "%s has no parameter %s", lam_block_name(b), name);
    return p;
}

static double act_apply(const char *act, double z) {
    if (strcmp(act, "relu") == 0) {
        return z > 0.0 ? z : 0.0;
    }
    if (strcmp(act, "sigmoid") == 0) {
        return 1.0 / (1.0 + exp(-z));
    }
    if (strcmp(act, "tanh") == 0) {
        return tanh(z);
    }
    if (strcmp(act, "softrelu") == 0) {
        return log1p(exp(z));
    }
    return z; /* none */
}

static lam_status block_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    lam_block *const *b = p->user; /* every layer case keeps its block first */
    return lam_block_call(*b, in[0], out);
}

/* ---- Dense ---------------------------------------------------------------------------------- */

typedef struct dense_case {
    lam_block *block;
    const char *act;
    int use_bias;
    int flatten;
    int64_t units;
} dense_case;

/* rows and features of the input as Dense sees them */
static void dense_geometry(const dense_case *c, const lam_shape *x, size_t *rows, size_t *in) {
    uint32_t split = c->flatten ? 1u : x->ndim - 1u;
    *rows = 1;
    *in = 1;
    for (uint32_t d = 0; d < x->ndim; d++) {
        if (d < split) {
            *rows *= (size_t)x->dims[d];
        } else {
            *in *= (size_t)x->dims[d];
        }
    }
}

/* z = x2 . W^T + b (before the activation), rows x units */
static void dense_pre(const ag_problem *p, const double *const *v, double *z) {
    const dense_case *c = p->user;
    size_t rows, in, units = (size_t)c->units;
    dense_geometry(c, &p->vars[0].shape, &rows, &in);
    for (size_t r = 0; r < rows; r++) {
        for (size_t u = 0; u < units; u++) {
            double s = c->use_bias ? v[2][u] : 0.0;
            for (size_t k = 0; k < in; k++) {
                s += v[0][r * in + k] * v[1][u * in + k];
            }
            z[r * units + u] = s;
        }
    }
}

static void dense_ref(const ag_problem *p, const double *const *v, double *out) {
    const dense_case *c = p->user;
    size_t n = ag_numel(&p->out_shape);
    dense_pre(p, v, out);
    for (size_t k = 0; k < n; k++) {
        out[k] = act_apply(c->act, out[k]);
    }
}

/* relu: every pre-activation at least 0.05 from the kink. */
static int dense_valid(const ag_problem *p, const double *const *v) {
    const dense_case *c = p->user;
    if (strcmp(c->act, "relu") != 0) {
        return 1;
    }
    size_t n = ag_numel(&p->out_shape);
    double *z = malloc(n * sizeof *z);
    cr_assert_not_null(z);
    dense_pre(p, v, z);
    int ok = 1;
    for (size_t k = 0; k < n; k++) {
        ok = ok && fabs(z[k]) >= 0.05;
    }
    free(z);
    return ok;
}

/* A Dense problem for input shape x; c->block must be created. */
static ag_problem dense_problem(dense_case *c, const char *what, lam_shape x) {
    size_t rows, in;
    dense_geometry(c, &x, &rows, &in);
    lam_shape out = AG_SCALAR_SHAPE();
    if (c->flatten) {
        out = AG_SHAPE(x.dims[0], c->units);
    } else {
        out = x;
        out.dims[x.ndim - 1] = c->units;
    }
    ag_problem p = {
        .what = what,
        .n_vars = c->use_bias ? 3u : 2u,
        .vars = {{"x", x, -1.0, 1.0, 0, NULL},
                 {"weight", AG_SHAPE(c->units, (int64_t)in), -1.0, 1.0, 0,
                  param_of(c->block, "weight")}},
        .out_shape = out,
        .forward = block_forward,
        .ref = dense_ref,
        .valid = dense_valid,
        .user = c,
    };
    if (c->use_bias) {
        p.vars[2] = (ag_var){"bias", AG_SHAPE(c->units), -0.5, 0.5, 0, param_of(c->block, "bias")};
    }
    return p;
}

static const char *const dense_acts[] = {"none", "relu", "sigmoid", "tanh", "softrelu"};
#define N_ACTS (sizeof dense_acts / sizeof dense_acts[0])

Test(grad_layer, dense_matches_finite_differences_for_every_activation) {
    for (size_t a = 0; a < N_ACTS; a++) {
        for (int bias = 1; bias >= 0; bias--) {
            char attrs[128], what[192];
            snprintf(attrs, sizeof attrs, "units=4, activation=%s, use_bias=%s, in_units=5",
                     dense_acts[a], bias ? "true" : "false");
            snprintf(what, sizeof what, "Dense(%s) on (3,5)", attrs);
            dense_case c = {make_layer("Dense", attrs), dense_acts[a], bias, 1, 4};
            ag_problem p = dense_problem(&c, what, AG_SHAPE(3, 5));
            ag_check_grad(&p, 8000 + 10 * a + (uint64_t)bias, NULL);
            lam_block_release(c.block);
        }
    }
    ag_assert_released();
}

Test(grad_layer, dense_flattens_a_3d_input) {
    for (size_t a = 0; a < N_ACTS; a++) {
        char attrs[128], what[192];
        snprintf(attrs, sizeof attrs, "units=4, activation=%s, in_units=12", dense_acts[a]);
        snprintf(what, sizeof what, "Dense(%s) on (2,3,4), flatten", attrs);
        dense_case c = {make_layer("Dense", attrs), dense_acts[a], 1, 1, 4};
        ag_problem p = dense_problem(&c, what, AG_SHAPE(2, 3, 4));
        ag_check_grad(&p, 8100 + a, NULL);
        lam_block_release(c.block);
    }
    ag_assert_released();
}

Test(grad_layer, dense_without_flatten_applies_to_the_last_axis) {
    for (size_t a = 0; a < N_ACTS; a++) {
        char attrs[128], what[192];
        snprintf(attrs, sizeof attrs, "units=5, activation=%s, in_units=4, flatten=false",
                 dense_acts[a]);
        snprintf(what, sizeof what, "Dense(%s) on (2,3,4)", attrs);
        dense_case c = {make_layer("Dense", attrs), dense_acts[a], 1, 0, 5};
        ag_problem p = dense_problem(&c, what, AG_SHAPE(2, 3, 4));
        ag_check_grad(&p, 8200 + a, NULL);
        lam_block_release(c.block);
    }
    /* A 1-D input is one row. */
    dense_case c = {make_layer("Dense", "units=3, activation=tanh, in_units=4, flatten=false"),
                    "tanh", 1, 0, 3};
    ag_problem p = dense_problem(&c, "Dense(units=3, tanh, flatten=false) on (4,)", AG_SHAPE(4));
    ag_check_grad(&p, 8250, NULL);
    lam_block_release(c.block);
    ag_assert_released();
}

Test(grad_layer, dense_with_deferred_in_units_takes_the_set_data_shape) {
    /* in_units left to inference: lam_param_set_data gives the weight its shape. */
    dense_case c = {make_layer("Dense", "units=3, activation=tanh"), "tanh", 1, 1, 3};
    ag_problem p = dense_problem(&c, "Dense(units=3, tanh, deferred) on (4,6)", AG_SHAPE(4, 6));
    ag_check_grad(&p, 8300, NULL);
    lam_block_release(c.block);
    ag_assert_released();
}

/* ---- MyDense, Centered, Activation ---------------------------------------------------------- */

typedef struct mydense_case {
    lam_block *block;
    int64_t in, units;
} mydense_case;

static void mydense_pre(const ag_problem *p, const double *const *v, double *z) {
    const mydense_case *c = p->user;
    size_t rows = (size_t)p->vars[0].shape.dims[0], in = (size_t)c->in, units = (size_t)c->units;
    for (size_t r = 0; r < rows; r++) {
        for (size_t u = 0; u < units; u++) {
            double s = v[2][u];
            for (size_t k = 0; k < in; k++) {
                s += v[0][r * in + k] * v[1][k * units + u];
            }
            z[r * units + u] = s;
        }
    }
}

static void mydense_ref(const ag_problem *p, const double *const *v, double *out) {
    mydense_pre(p, v, out);
    for (size_t k = 0; k < ag_numel(&p->out_shape); k++) {
        out[k] = out[k] > 0.0 ? out[k] : 0.0;
    }
}

static int mydense_valid(const ag_problem *p, const double *const *v) {
    size_t n = ag_numel(&p->out_shape);
    double *z = malloc(n * sizeof *z);
    cr_assert_not_null(z);
    mydense_pre(p, v, z);
    int ok = 1;
    for (size_t k = 0; k < n; k++) {
        ok = ok && fabs(z[k]) >= 0.05;
    }
    free(z);
    return ok;
}

Test(grad_layer, mydense_matches_finite_differences) {
    mydense_case c = {make_layer("MyDense", "units=3, in_units=5"), 5, 3};
    ag_problem p = {
        .what = "MyDense(units=3, in_units=5) on (4,5)",
        .n_vars = 3,
        .vars = {{"x", AG_SHAPE(4, 5), -1.0, 1.0, 0, NULL},
                 {"weight", AG_SHAPE(5, 3), -1.0, 1.0, 0, param_of(c.block, "weight")},
                 {"bias", AG_SHAPE(3), -0.5, 0.5, 0, param_of(c.block, "bias")}},
        .out_shape = AG_SHAPE(4, 3),
        .forward = block_forward,
        .ref = mydense_ref,
        .valid = mydense_valid,
        .user = &c,
    };
    ag_check_grad(&p, 8400, NULL);
    lam_block_release(c.block);
    ag_assert_released();
}

typedef struct plain_case {
    lam_block *block;
    const char *act;
} plain_case;

static void centered_ref(const ag_problem *p, const double *const *v, double *out) {
    size_t n = ag_numel(&p->out_shape);
    double mean = 0.0;
    for (size_t k = 0; k < n; k++) {
        mean += v[0][k];
    }
    mean /= (double)n;
    for (size_t k = 0; k < n; k++) {
        out[k] = v[0][k] - mean;
    }
}

Test(grad_layer, centered_matches_finite_differences) {
    plain_case c = {make_layer("Centered", ""), NULL};
    ag_problem p = {
        .what = "Centered on (2,3,2)",
        .n_vars = 1,
        .vars = {{"x", AG_SHAPE(2, 3, 2), -3.0, 3.0, 0, NULL}},
        .out_shape = AG_SHAPE(2, 3, 2),
        .forward = block_forward,
        .ref = centered_ref,
        .user = &c,
    };
    ag_check_grad(&p, 8500, NULL);
    lam_block_release(c.block);
    ag_assert_released();
}

static void activation_ref(const ag_problem *p, const double *const *v, double *out) {
    const plain_case *c = p->user;
    for (size_t k = 0; k < ag_numel(&p->out_shape); k++) {
        out[k] = act_apply(c->act, v[0][k]);
    }
}

Test(grad_layer, activation_matches_finite_differences_for_every_type) {
    const char *acts[] = {"relu", "sigmoid", "tanh", "softrelu"};
    for (size_t a = 0; a < 4; a++) {
        char attrs[64], what[96];
        snprintf(attrs, sizeof attrs, "act_type=%s", acts[a]);
        snprintf(what, sizeof what, "Activation(%s) on (3,4)", acts[a]);
        plain_case c = {make_layer("Activation", attrs), acts[a]};
        ag_problem p = {
            .what = what,
            .n_vars = 1,
            /* relu: |x| >= 0.1, away from the kink */
            .vars = {{"x", AG_SHAPE(3, 4), a == 0 ? 0.1 : -3.0, 3.0, a == 0, NULL}},
            .out_shape = AG_SHAPE(3, 4),
            .forward = block_forward,
            .ref = activation_ref,
            .user = &c,
        };
        ag_check_grad(&p, 8600 + a, NULL);
        lam_block_release(c.block);
    }
    ag_assert_released();
}

/* ---- fused against unfused Dense backward --------------------------------------------------- */

/* fused and unfused gradients agree: |a - b| <= FUSED_ATOL + FUSED_RTOL |b| */
#define FUSED_RTOL 1e-5
#define FUSED_ATOL 1e-7

static void check_fused_agrees(const char *attrs, const char *act, int bias, int flatten,
                               int64_t units, lam_shape x, uint64_t seed) {
    float *grads[2][AG_MAX_VARS] = {{0}};
    uint32_t n_vars = 0;
    size_t counts[AG_MAX_VARS] = {0};
    for (int mode = 0; mode < 2; mode++) {
        int was = lam_autograd_set_fused_backward(mode == 0);
        char what[192];
        snprintf(what, sizeof what, "Dense(%s) on %s input, %s backward", attrs,
                 x.ndim == 3   ? "3-D"
                 : x.ndim == 1 ? "1-D"
                               : "2-D",
                 mode == 0 ? "fused" : "unfused");
        /* A fresh layer each time, so nothing of the first pass is left over. */
        dense_case c = {make_layer("Dense", attrs), act, bias, flatten, units};
        ag_problem p = dense_problem(&c, what, x);
        /* Same seed: the same inputs, parameters and head gradient in both modes. */
        ag_check_grad(&p, seed, grads[mode]);
        n_vars = p.n_vars;
        for (uint32_t i = 0; i < n_vars; i++) {
            counts[i] = ag_numel(&p.vars[i].shape);
        }
        lam_block_release(c.block);
        lam_autograd_set_fused_backward(was);
    }
    const char *names[3] = {"x", "weight", "bias"};
    for (uint32_t i = 0; i < n_vars; i++) {
        for (size_t j = 0; j < counts[i]; j++) {
            float f = grads[0][i][j], u = grads[1][i][j];
            cr_assert(ag_close(f, u, FUSED_RTOL, FUSED_ATOL),
                      "Dense(%s): d/d%s[%zu] is %.9g fused, %.9g unfused", attrs, names[i], j,
                      (double)f, (double)u);
        }
        free(grads[0][i]);
        free(grads[1][i]);
    }
}

Test(fused, backward_is_on_by_default_and_switchable) {
    cr_assert_eq(lam_autograd_set_fused_backward(0), 1, "fused backward is not on by default");
    cr_assert_eq(lam_autograd_set_fused_backward(1), 0, "set_fused_backward(0) did not stick");
    cr_assert_eq(lam_autograd_set_fused_backward(1), 1);
}

Test(fused, dense_gradients_equal_unfused_for_every_activation) {
    for (size_t a = 0; a < N_ACTS; a++) {
        for (int bias = 1; bias >= 0; bias--) {
            char attrs[128];
            snprintf(attrs, sizeof attrs, "units=6, activation=%s, use_bias=%s, in_units=7",
                     dense_acts[a], bias ? "true" : "false");
            check_fused_agrees(attrs, dense_acts[a], bias, 1, 6, AG_SHAPE(5, 7),
                               9000 + 10 * a + (uint64_t)bias);
        }
    }
    ag_assert_released();
}

Test(fused, dense_gradients_equal_unfused_on_1d_and_3d_inputs) {
    for (size_t a = 0; a < N_ACTS; a++) {
        char attrs[128];
        snprintf(attrs, sizeof attrs, "units=4, activation=%s, in_units=12", dense_acts[a]);
        check_fused_agrees(attrs, dense_acts[a], 1, 1, 4, AG_SHAPE(2, 3, 4), 9100 + a);
        snprintf(attrs, sizeof attrs, "units=5, activation=%s, in_units=4, flatten=false",
                 dense_acts[a]);
        check_fused_agrees(attrs, dense_acts[a], 1, 0, 5, AG_SHAPE(2, 3, 4), 9200 + a);
        snprintf(attrs, sizeof attrs, "units=3, activation=%s, in_units=4, flatten=false",
                 dense_acts[a]);
        check_fused_agrees(attrs, dense_acts[a], 1, 0, 3, AG_SHAPE(4), 9300 + a);
    }
    ag_assert_released();
}

/*
 * softrelu with strongly negative pre-activations (z in [-12, -4]): the activation's slope
 * sigmoid(z) is small but well represented in float32, and the unfused backward (the sigmoid
 * rule of softrelu) gets it to float32 precision. The fused backward must agree within 1e-5
 * relative, as for every other input.
 */
Test(fused, dense_softrelu_keeps_precision_for_negative_pre_activations) {
    const float w[8] = {0.25f, -0.5f, 0.75f, 0.125f, -0.25f, 0.5f, 0.375f, -0.125f};
    const float b[4] = {-4.0f, -6.5f, -9.0f, -11.5f};
    const float x[6] = {0.5f, -0.25f, 1.0f, 0.75f, -0.5f, -1.0f};
    /* d(sum softrelu(z))/db[u] = sum over rows of sigmoid(z), in float64 */
    double want[4] = {0};
    for (int r = 0; r < 3; r++) {
        for (int u = 0; u < 4; u++) {
            double z =
                (double)b[u] + (double)x[2 * r] * w[2 * u] + (double)x[2 * r + 1] * w[2 * u + 1];
            want[u] += 1.0 / (1.0 + exp(-z));
        }
    }
    float got[2][4];
    for (int mode = 0; mode < 2; mode++) {
        int was = lam_autograd_set_fused_backward(mode == 0);
        lam_block *d = make_layer("Dense", "units=4, activation=softrelu, in_units=2");
        lam_tensor *t = ag_tensor(AG_SHAPE(4, 2), w, 8);
        AG_OK(lam_param_set_data(param_of(d, "weight"), t));
        lam_tensor_release(t);
        t = ag_tensor(AG_SHAPE(4), b, 4);
        AG_OK(lam_param_set_data(param_of(d, "bias"), t));
        lam_tensor_release(t);
        lam_tensor *xt = ag_tensor(AG_SHAPE(3, 2), x, 6), *y = NULL, *g = NULL;
        lam_autograd_set_recording(1);
        AG_OK(lam_block_call(d, xt, &y));
        lam_autograd_set_recording(0);
        AG_OK(lam_autograd_backward(y, NULL));
        AG_OK(lam_param_grad(param_of(d, "bias"), &g));
        AG_OK(lam_tensor_read(g, got[mode], 4));
        lam_tensor_release(g);
        lam_tensor_release(y);
        lam_tensor_release(xt);
        lam_block_release(d);
        lam_autograd_set_fused_backward(was);
    }
    for (int u = 0; u < 4; u++) {
        cr_assert(ag_close(got[1][u], want[u], FUSED_RTOL, 0.0),
                  "unfused: d/dbias[%d] is %.9g, float64 %.9g", u, (double)got[1][u], want[u]);
    }
    for (int u = 0; u < 4; u++) {
        cr_assert(ag_close(got[0][u], got[1][u], FUSED_RTOL, 0.0),
                  "d/dbias[%d] is %.9g fused, %.9g unfused (float64 %.9g): relative error %.2g", u,
                  (double)got[0][u], (double)got[1][u], want[u],
                  fabs((double)got[0][u] - want[u]) / want[u]);
    }
    ag_assert_released();
}
