/*
 * Finite-difference gradient checks of every differentiable front-end op: element-wise binary
 * ops with broadcasting, scalar ops, element-wise functions, matmul and dot, transpose and
 * reshape, reductions, softmax and log-softmax, and the two losses.
 *
 * Each case pairs the Lamina op with a float64 reference written here (see ag_util.h for the
 * method). Inputs keep away from kinks (relu and abs at 0, ties of maximum/minimum and of
 * max/min reductions) and from the edges of a function's domain (log, sqrt, pow, division).
 */
#include "ag_util.h"

TestSuite(grad_op, .fini = ag_fini);

/* ---- element-wise binary ops with broadcasting --------------------------------------------- */

typedef struct binary_case {
    lam_status (*op)(const lam_tensor *, const lam_tensor *, lam_tensor **);
    double (*f)(double, double);
} binary_case;

static double f_add(double a, double b) {
    return a + b;
}
static double f_sub(double a, double b) {
    return a - b;
}
static double f_mul(double a, double b) {
    return a * b;
}
static double f_div(double a, double b) {
    return a / b;
}
static double f_max(double a, double b) {
    return a > b ? a : b;
}
static double f_min(double a, double b) {
    return a < b ? a : b;
}

static lam_status binary_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    const binary_case *c = p->user;
    return c->op(in[0], in[1], out);
}

static void binary_ref(const ag_problem *p, const double *const *v, double *out) {
    const binary_case *c = p->user;
    int64_t idx[LAM_MAX_DIMS];
    for (size_t k = 0; k < ag_numel(&p->out_shape); k++) {
        ag_unravel(&p->out_shape, k, idx);
        double a = v[0][ag_bcast_index(&p->vars[0].shape, idx, p->out_shape.ndim)];
        double b = v[1][ag_bcast_index(&p->vars[1].shape, idx, p->out_shape.ndim)];
        out[k] = c->f(a, b);
    }
}

/* maximum/minimum: every pair that meets is at least 0.05 apart (no tie within a FD step). */
static int binary_no_ties(const ag_problem *p, const double *const *v) {
    int64_t idx[LAM_MAX_DIMS];
    for (size_t k = 0; k < ag_numel(&p->out_shape); k++) {
        ag_unravel(&p->out_shape, k, idx);
        double a = v[0][ag_bcast_index(&p->vars[0].shape, idx, p->out_shape.ndim)];
        double b = v[1][ag_bcast_index(&p->vars[1].shape, idx, p->out_shape.ndim)];
        if (fabs(a - b) < 0.05) {
            return 0;
        }
    }
    return 1;
}

/* The broadcasting layouts every binary op is checked with. */
typedef struct layout {
    const char *name;
    lam_shape a, b, out;
} layout;

static void check_binary(const char *name, const binary_case *c, int divide, int ties) {
    const layout layouts[] = {
        {"(2,3) op (2,3)", AG_SHAPE(2, 3), AG_SHAPE(2, 3), AG_SHAPE(2, 3)},
        {"(2,3) op (3,)", AG_SHAPE(2, 3), AG_SHAPE(3), AG_SHAPE(2, 3)},
        {"(3,) op (2,3)", AG_SHAPE(3), AG_SHAPE(2, 3), AG_SHAPE(2, 3)},
        {"(2,1) op (1,3)", AG_SHAPE(2, 1), AG_SHAPE(1, 3), AG_SHAPE(2, 3)},
        {"(2,3,4) op (3,1)", AG_SHAPE(2, 3, 4), AG_SHAPE(3, 1), AG_SHAPE(2, 3, 4)},
        {"(2,3) op ()", AG_SHAPE(2, 3), AG_SCALAR_SHAPE(), AG_SHAPE(2, 3)},
    };
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        const layout *l = &layouts[i];
        char what[128];
        snprintf(what, sizeof what, "%s %s", name, l->name);
        ag_problem p = {
            .what = what,
            .n_vars = 2,
            .vars = {{"a", l->a, -2.0, 2.0, 0, NULL},
                     /* a divisor keeps |b| >= 0.5 */
                     {"b", l->b, divide ? 0.5 : -2.0, 2.0, divide, NULL}},
            .out_shape = l->out,
            .forward = binary_forward,
            .ref = binary_ref,
            .valid = ties ? binary_no_ties : NULL,
            .user = c,
        };
        ag_check_grad(&p, 1000 + i, NULL);
    }
    ag_assert_released();
}

Test(grad_op, add_matches_finite_differences_with_broadcasting) {
    const binary_case c = {lam_op_add, f_add};
    check_binary("add", &c, 0, 0);
}

Test(grad_op, sub_matches_finite_differences_with_broadcasting) {
    const binary_case c = {lam_op_sub, f_sub};
    check_binary("sub", &c, 0, 0);
}

Test(grad_op, mul_matches_finite_differences_with_broadcasting) {
    const binary_case c = {lam_op_mul, f_mul};
    check_binary("mul", &c, 0, 0);
}

Test(grad_op, div_matches_finite_differences_with_broadcasting) {
    const binary_case c = {lam_op_div, f_div};
    check_binary("div", &c, 1, 0);
}

Test(grad_op, maximum_matches_finite_differences_with_broadcasting) {
    const binary_case c = {lam_op_maximum, f_max};
    check_binary("maximum", &c, 0, 1);
}

Test(grad_op, minimum_matches_finite_differences_with_broadcasting) {
    const binary_case c = {lam_op_minimum, f_min};
    check_binary("minimum", &c, 0, 1);
}

Test(grad_op, same_tensor_twice_gets_both_contributions) {
    /* x * x and x + x: the two uses of x add up (2x and 2). */
    const binary_case mul = {lam_op_mul, f_mul};
    const float xv[6] = {0.5f, -1.25f, 2.0f, 0.75f, -0.3f, 1.5f};
    for (int k = 0; k < 2; k++) {
        lam_tensor *x = ag_tensor(AG_SHAPE(2, 3), xv, 6), *y = NULL, *g = NULL;
        AG_OK(lam_tensor_attach_grad(x));
        lam_autograd_set_recording(1);
        AG_OK(k == 0 ? mul.op(x, x, &y) : lam_op_add(x, x, &y));
        lam_autograd_set_recording(0);
        AG_OK(lam_autograd_backward(y, NULL));
        AG_OK(lam_tensor_grad(x, &g));
        float want[6];
        for (int i = 0; i < 6; i++) {
            want[i] = k == 0 ? 2.0f * xv[i] : 2.0f;
        }
        lam_shape s = AG_SHAPE(2, 3);
        ag_assert_values(g, &s, want, 6, 0.0, 0.0, k == 0 ? "d(x*x)/dx" : "d(x+x)/dx");
        lam_tensor_release(g);
        lam_tensor_release(y);
        lam_tensor_release(x);
    }
    ag_assert_released();
}

/* Contributions are summed in the first one's buffer only where nothing else can see it: a
 * head gradient the caller still holds is handed to both uses of x (x + x) and stays as it
 * was; three fresh contributions (x * a + x * b + x * c) sum exactly to a + b + c. */
Test(grad_op, accumulation_never_writes_a_gradient_someone_holds) {
    const float xv[4] = {0.5f, -1.25f, 2.0f, 0.75f}, hv[4] = {1.0f, -2.0f, 0.25f, 3.0f};
    const float av[4] = {1, 2, 3, 4}, bv[4] = {10, 20, 30, 40}, cv[4] = {100, 200, 300, 400};
    lam_tensor *x = ag_tensor(AG_SHAPE(4), xv, 4), *h = ag_tensor(AG_SHAPE(4), hv, 4);
    lam_tensor *y = NULL, *g = NULL;
    AG_OK(lam_tensor_attach_grad(x));
    lam_autograd_set_recording(1);
    AG_OK(lam_op_add(x, x, &y));
    lam_autograd_set_recording(0);
    AG_OK(lam_autograd_backward(y, h));
    AG_OK(lam_tensor_grad(x, &g));
    const float twice[4] = {2.0f, -4.0f, 0.5f, 6.0f};
    lam_shape s = AG_SHAPE(4);
    ag_assert_values(g, &s, twice, 4, 0.0, 0.0, "d(x+x)/dx . h");
    ag_assert_values(h, &s, hv, 4, 0.0, 0.0, "the head gradient, unchanged");
    lam_tensor_release(g);
    lam_tensor_release(y);
    lam_tensor *a = ag_tensor(AG_SHAPE(4), av, 4), *b = ag_tensor(AG_SHAPE(4), bv, 4);
    lam_tensor *c = ag_tensor(AG_SHAPE(4), cv, 4), *p[3] = {NULL, NULL, NULL}, *s1 = NULL;
    lam_tensor *s2 = NULL;
    lam_autograd_set_recording(1);
    AG_OK(lam_op_mul(x, a, &p[0]));
    AG_OK(lam_op_mul(x, b, &p[1]));
    AG_OK(lam_op_mul(x, c, &p[2]));
    AG_OK(lam_op_add(p[0], p[1], &s1));
    AG_OK(lam_op_add(s1, p[2], &s2));
    lam_autograd_set_recording(0);
    AG_OK(lam_autograd_backward(s2, NULL));
    AG_OK(lam_tensor_grad(x, &g));
    const float sum[4] = {111, 222, 333, 444};
    ag_assert_values(g, &s, sum, 4, 0.0, 0.0, "d(xa+xb+xc)/dx");
    ag_assert_values(a, &s, av, 4, 0.0, 0.0, "a, unchanged");
    lam_tensor *all[] = {g, s2, s1, p[0], p[1], p[2], a, b, c, h, x};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        lam_tensor_release(all[i]);
    }
    ag_assert_released();
}

/* ---- scalar ops ----------------------------------------------------------------------------- */

typedef struct scalar_case {
    const char *name;
    lam_status (*op)(const lam_tensor *, float, lam_tensor **);
    double (*f)(double x, double s);
    float s;
    double lo, hi; /* input range */
} scalar_case;

static double s_add(double x, double s) {
    return x + s;
}
static double s_sub(double x, double s) {
    return x - s;
}
static double s_rsub(double x, double s) {
    return s - x;
}
static double s_mul(double x, double s) {
    return x * s;
}
static double s_div(double x, double s) {
    return x / s;
}
static double s_rdiv(double x, double s) {
    return s / x;
}
static double s_pow(double x, double s) {
    return pow(x, s);
}

static lam_status scalar_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    const scalar_case *c = p->user;
    return c->op(in[0], c->s, out);
}

static void scalar_ref(const ag_problem *p, const double *const *v, double *out) {
    const scalar_case *c = p->user;
    for (size_t k = 0; k < ag_numel(&p->out_shape); k++) {
        out[k] = c->f(v[0][k], (double)c->s);
    }
}

Test(grad_op, scalar_ops_match_finite_differences) {
    const scalar_case cases[] = {
        {"add_scalar(1.5)", lam_op_add_scalar, s_add, 1.5f, -2.0, 2.0},
        {"sub_scalar(0.75)", lam_op_sub_scalar, s_sub, 0.75f, -2.0, 2.0},
        {"rsub_scalar(3)", lam_op_rsub_scalar, s_rsub, 3.0f, -2.0, 2.0},
        {"mul_scalar(-2.5)", lam_op_mul_scalar, s_mul, -2.5f, -2.0, 2.0},
        {"div_scalar(4)", lam_op_div_scalar, s_div, 4.0f, -2.0, 2.0},
        {"div_scalar(-0.5)", lam_op_div_scalar, s_div, -0.5f, -2.0, 2.0},
        {"rdiv_scalar(2)", lam_op_rdiv_scalar, s_rdiv, 2.0f, 0.5, 2.0},
        {"rdiv_scalar(-1.5)", lam_op_rdiv_scalar, s_rdiv, -1.5f, 0.5, 2.0},
        {"pow_scalar(2)", lam_op_pow_scalar, s_pow, 2.0f, 0.5, 2.0},
        {"pow_scalar(3)", lam_op_pow_scalar, s_pow, 3.0f, 0.5, 2.0},
        {"pow_scalar(0.5)", lam_op_pow_scalar, s_pow, 0.5f, 0.5, 2.0},
        {"pow_scalar(-1.5)", lam_op_pow_scalar, s_pow, -1.5f, 0.5, 2.0},
        {"pow_scalar(2.5)", lam_op_pow_scalar, s_pow, 2.5f, 0.5, 2.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const scalar_case *c = &cases[i];
        ag_problem p = {
            .what = c->name,
            .n_vars = 1,
            /* rdiv's input may be negative too (|x| >= 0.5); pow keeps x > 0. */
            .vars = {{"x", AG_SHAPE(2, 3), c->lo, c->hi, c->op == lam_op_rdiv_scalar, NULL}},
            .out_shape = AG_SHAPE(2, 3),
            .forward = scalar_forward,
            .ref = scalar_ref,
            .user = c,
        };
        ag_check_grad(&p, 2000 + i, NULL);
    }
    ag_assert_released();
}

/* ---- element-wise functions ----------------------------------------------------------------- */

typedef struct unary_case {
    const char *name;
    lam_status (*op)(const lam_tensor *, lam_tensor **);
    double (*f)(double);
    double lo, hi;
    int away; /* magnitude in [lo, hi) with a random sign */
} unary_case;

static double u_neg(double x) {
    return -x;
}
static double u_abs(double x) {
    return fabs(x);
}
static double u_square(double x) {
    return x * x;
}
static double u_relu(double x) {
    return x > 0.0 ? x : 0.0;
}
static double u_sigmoid(double x) {
    return 1.0 / (1.0 + exp(-x));
}
static double u_softrelu(double x) {
    return log1p(exp(x));
}
static double u_copy(double x) {
    return x;
}

static lam_status unary_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    const unary_case *c = p->user;
    return c->op(in[0], out);
}

static void unary_ref(const ag_problem *p, const double *const *v, double *out) {
    const unary_case *c = p->user;
    for (size_t k = 0; k < ag_numel(&p->out_shape); k++) {
        out[k] = c->f(v[0][k]);
    }
}

Test(grad_op, unary_functions_match_finite_differences) {
    const unary_case cases[] = {
        {"neg", lam_op_neg, u_neg, -2.0, 2.0, 0},
        {"abs", lam_op_abs, u_abs, 0.1, 2.0, 1},
        {"square", lam_op_square, u_square, -2.0, 2.0, 0},
        {"sqrt", lam_op_sqrt, sqrt, 0.25, 3.0, 0},
        {"exp", lam_op_exp, exp, -2.0, 2.0, 0},
        {"log", lam_op_log, log, 0.25, 3.0, 0},
        {"relu", lam_op_relu, u_relu, 0.1, 2.0, 1},
        {"sigmoid", lam_op_sigmoid, u_sigmoid, -3.0, 3.0, 0},
        {"tanh", lam_op_tanh, tanh, -2.0, 2.0, 0},
        {"softrelu", lam_op_softrelu, u_softrelu, -3.0, 3.0, 0},
        {"copy", lam_op_copy, u_copy, -2.0, 2.0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const unary_case *c = &cases[i];
        ag_problem p = {
            .what = c->name,
            .n_vars = 1,
            .vars = {{"x", AG_SHAPE(3, 4), c->lo, c->hi, c->away, NULL}},
            .out_shape = AG_SHAPE(3, 4),
            .forward = unary_forward,
            .ref = unary_ref,
            .user = c,
        };
        ag_check_grad(&p, 3000 + i, NULL);
    }
    ag_assert_released();
}

/* tanh(exp(x) * x) - sigmoid(x): several rules composed, x used three times. */
static lam_status chain_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    (void)p;
    lam_tensor *e = NULL, *m = NULL, *t = NULL, *s = NULL;
    lam_status st = lam_op_exp(in[0], &e);
    if (st == LAM_OK) {
        st = lam_op_mul(e, in[0], &m);
    }
    if (st == LAM_OK) {
        st = lam_op_tanh(m, &t);
    }
    if (st == LAM_OK) {
        st = lam_op_sigmoid(in[0], &s);
    }
    if (st == LAM_OK) {
        st = lam_op_sub(t, s, out);
    }
    lam_tensor_release(e);
    lam_tensor_release(m);
    lam_tensor_release(t);
    lam_tensor_release(s);
    return st;
}

static void chain_ref(const ag_problem *p, const double *const *v, double *out) {
    for (size_t k = 0; k < ag_numel(&p->out_shape); k++) {
        double x = v[0][k];
        out[k] = tanh(exp(x) * x) - 1.0 / (1.0 + exp(-x));
    }
}

Test(grad_op, chained_functions_match_finite_differences) {
    ag_problem p = {
        .what = "tanh(exp(x)*x) - sigmoid(x)",
        .n_vars = 1,
        .vars = {{"x", AG_SHAPE(2, 5), -1.5, 1.0, 0, NULL}},
        .out_shape = AG_SHAPE(2, 5),
        .forward = chain_forward,
        .ref = chain_ref,
    };
    ag_check_grad(&p, 3500, NULL);
    ag_assert_released();
}

/* ---- matmul and dot ------------------------------------------------------------------------- */

typedef struct matmul_case {
    int32_t ta, tb;
    int64_t m, k, n; /* op(a) is (m, k), op(b) is (k, n) */
} matmul_case;

static lam_status matmul_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    const matmul_case *c = p->user;
    return lam_op_matmul(in[0], in[1], c->ta, c->tb, out);
}

static void matmul_ref(const ag_problem *p, const double *const *v, double *out) {
    const matmul_case *c = p->user;
    for (int64_t i = 0; i < c->m; i++) {
        for (int64_t j = 0; j < c->n; j++) {
            double s = 0.0;
            for (int64_t q = 0; q < c->k; q++) {
                double a = c->ta ? v[0][q * c->m + i] : v[0][i * c->k + q];
                double b = c->tb ? v[1][j * c->k + q] : v[1][q * c->n + j];
                s += a * b;
            }
            out[i * c->n + j] = s;
        }
    }
}

Test(grad_op, matmul_matches_finite_differences_for_every_transpose) {
    for (int32_t ta = 0; ta < 2; ta++) {
        for (int32_t tb = 0; tb < 2; tb++) {
            const matmul_case c = {ta, tb, 3, 4, 5};
            char what[64];
            snprintf(what, sizeof what, "matmul(trans_a=%d, trans_b=%d)", ta, tb);
            ag_problem p = {
                .what = what,
                .n_vars = 2,
                .vars = {{"a", ta ? AG_SHAPE(4, 3) : AG_SHAPE(3, 4), -1.5, 1.5, 0, NULL},
                         {"b", tb ? AG_SHAPE(5, 4) : AG_SHAPE(4, 5), -1.5, 1.5, 0, NULL}},
                .out_shape = AG_SHAPE(3, 5),
                .forward = matmul_forward,
                .ref = matmul_ref,
                .user = &c,
            };
            ag_check_grad(&p, 4000 + (uint64_t)(2 * ta + tb), NULL);
        }
    }
    ag_assert_released();
}

typedef struct dot_case {
    const char *name;
    lam_shape a, b, out;
} dot_case;

static lam_status dot_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    (void)p;
    return lam_op_dot(in[0], in[1], out);
}

/* Gluon's dot: a 1-D left operand is a row (1, k), a 1-D right operand a column (k, 1). */
static void dot_ref(const ag_problem *p, const double *const *v, double *out) {
    const lam_shape *sa = &p->vars[0].shape, *sb = &p->vars[1].shape;
    int64_t m = sa->ndim == 2 ? sa->dims[0] : 1;
    int64_t k = sa->ndim == 2 ? sa->dims[1] : sa->dims[0];
    int64_t n = sb->ndim == 2 ? sb->dims[1] : 1;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t q = 0; q < k; q++) {
                s += v[0][i * k + q] * v[1][q * n + j];
            }
            out[i * n + j] = s;
        }
    }
}

Test(grad_op, dot_matches_finite_differences_for_every_rank) {
    const dot_case cases[] = {
        {"dot (4,) . (4,)", AG_SHAPE(4), AG_SHAPE(4), AG_SCALAR_SHAPE()},
        {"dot (3,4) . (4,)", AG_SHAPE(3, 4), AG_SHAPE(4), AG_SHAPE(3)},
        {"dot (4,) . (4,5)", AG_SHAPE(4), AG_SHAPE(4, 5), AG_SHAPE(5)},
        {"dot (3,4) . (4,5)", AG_SHAPE(3, 4), AG_SHAPE(4, 5), AG_SHAPE(3, 5)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const dot_case *c = &cases[i];
        ag_problem p = {
            .what = c->name,
            .n_vars = 2,
            .vars = {{"a", c->a, -1.5, 1.5, 0, NULL}, {"b", c->b, -1.5, 1.5, 0, NULL}},
            .out_shape = c->out,
            .forward = dot_forward,
            .ref = dot_ref,
        };
        ag_check_grad(&p, 4100 + i, NULL);
    }
    ag_assert_released();
}

/* ---- transpose and reshape ------------------------------------------------------------------ */

static lam_status transpose_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    (void)p;
    return lam_op_transpose(in[0], out);
}

static void transpose_ref(const ag_problem *p, const double *const *v, double *out) {
    int64_t r = p->vars[0].shape.dims[0], c = p->vars[0].shape.dims[1];
    for (int64_t i = 0; i < r; i++) {
        for (int64_t j = 0; j < c; j++) {
            out[j * r + i] = v[0][i * c + j];
        }
    }
}

Test(grad_op, transpose_matches_finite_differences) {
    ag_problem p = {
        .what = "transpose (3,5)",
        .n_vars = 1,
        .vars = {{"x", AG_SHAPE(3, 5), -2.0, 2.0, 0, NULL}},
        .out_shape = AG_SHAPE(5, 3),
        .forward = transpose_forward,
        .ref = transpose_ref,
    };
    ag_check_grad(&p, 4200, NULL);
    ag_assert_released();
}

/* reshape, then square: the square makes the gradient depend on where each element went. */
static lam_status reshape_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    lam_tensor *r = NULL;
    lam_status st = lam_tensor_reshape(in[0], (const lam_shape *)p->user, &r);
    if (st == LAM_OK) {
        st = lam_op_square(r, out);
    }
    lam_tensor_release(r);
    return st;
}

static void reshape_ref(const ag_problem *p, const double *const *v, double *out) {
    for (size_t k = 0; k < ag_numel(&p->out_shape); k++) {
        out[k] = v[0][k] * v[0][k];
    }
}

Test(grad_op, reshape_matches_finite_differences) {
    const lam_shape targets[] = {AG_SHAPE(4, 6), AG_SHAPE(24), AG_SHAPE(2, -1, 3)};
    const lam_shape outs[] = {AG_SHAPE(4, 6), AG_SHAPE(24), AG_SHAPE(2, 4, 3)};
    for (size_t i = 0; i < 3; i++) {
        ag_problem p = {
            .what = "square(reshape((2,3,4)))",
            .n_vars = 1,
            .vars = {{"x", AG_SHAPE(2, 3, 4), -2.0, 2.0, 0, NULL}},
            .out_shape = outs[i],
            .forward = reshape_forward,
            .ref = reshape_ref,
            .user = &targets[i],
        };
        ag_check_grad(&p, 4300 + i, NULL);
    }
    ag_assert_released();
}

/* ---- reductions ----------------------------------------------------------------------------- */

typedef enum reduce_kind { R_SUM, R_MEAN, R_MAX, R_MIN } reduce_kind;

typedef struct reduce_case {
    reduce_kind kind;
    int32_t axes[LAM_MAX_DIMS];
    uint32_t n_axes;
    int32_t keepdims;
} reduce_case;

static lam_status reduce_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    const reduce_case *c = p->user;
    const int32_t *axes = c->n_axes ? c->axes : NULL;
    switch (c->kind) {
    case R_SUM:
        return lam_op_sum(in[0], axes, c->n_axes, c->keepdims, out);
    case R_MEAN:
        return lam_op_mean(in[0], axes, c->n_axes, c->keepdims, out);
    case R_MAX:
        return lam_op_max(in[0], axes, c->n_axes, c->keepdims, out);
    default:
        return lam_op_min(in[0], axes, c->n_axes, c->keepdims, out);
    }
}

/* Which input dims a case reduces. */
static void reduce_mask(const reduce_case *c, uint32_t nd, int mask[LAM_MAX_DIMS]) {
    for (uint32_t d = 0; d < nd; d++) {
        mask[d] = c->n_axes == 0;
    }
    for (uint32_t i = 0; i < c->n_axes; i++) {
        int32_t a = c->axes[i] < 0 ? c->axes[i] + (int32_t)nd : c->axes[i];
        mask[a] = 1;
    }
}

/* The shape a reduction gives (for the case table). */
static lam_shape reduce_shape(const reduce_case *c, const lam_shape *in) {
    int mask[LAM_MAX_DIMS];
    reduce_mask(c, in->ndim, mask);
    lam_shape s = AG_SCALAR_SHAPE();
    for (uint32_t d = 0; d < in->ndim; d++) {
        if (!mask[d]) {
            s.dims[s.ndim++] = in->dims[d];
        } else if (c->keepdims) {
            s.dims[s.ndim++] = 1;
        }
    }
    return s;
}

static void reduce_ref(const ag_problem *p, const double *const *v, double *out) {
    const reduce_case *c = p->user;
    const lam_shape *in = &p->vars[0].shape;
    int mask[LAM_MAX_DIMS];
    reduce_mask(c, in->ndim, mask);
    size_t n_out = ag_numel(&p->out_shape), n_in = ag_numel(in), group = n_in / n_out;
    int *seen = calloc(n_out, sizeof *seen);
    cr_assert_not_null(seen);
    int64_t idx[LAM_MAX_DIMS];
    for (size_t k = 0; k < n_in; k++) {
        ag_unravel(in, k, idx);
        /* Output element: the kept dims in order (the same flat order with or without
         * keepdims, since reduced dims then have size 1). */
        size_t o = 0;
        for (uint32_t d = 0; d < in->ndim; d++) {
            if (!mask[d]) {
                o = o * (size_t)in->dims[d] + (size_t)idx[d];
            }
        }
        double x = v[0][k];
        if (!seen[o]) {
            out[o] = c->kind == R_SUM || c->kind == R_MEAN ? 0.0 : x;
            seen[o] = 1;
        }
        switch (c->kind) {
        case R_SUM:
        case R_MEAN:
            out[o] += x;
            break;
        case R_MAX:
            out[o] = x > out[o] ? x : out[o];
            break;
        case R_MIN:
            out[o] = x < out[o] ? x : out[o];
            break;
        }
    }
    if (c->kind == R_MEAN) {
        for (size_t o = 0; o < n_out; o++) {
            out[o] /= (double)group;
        }
    }
    free(seen);
}

/* max/min: all values at least 0.01 apart, so the extreme of every group is unique. */
static int all_distinct(const ag_problem *p, const double *const *v) {
    size_t n = ag_numel(&p->vars[0].shape);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            if (fabs(v[0][i] - v[0][j]) < 0.01) {
                return 0;
            }
        }
    }
    return 1;
}

static void check_reduce(reduce_kind kind, const char *name) {
    const reduce_case cases[] = {
        {kind, {0}, 0, 0},    {kind, {0}, 0, 1},       {kind, {1}, 1, 0},      {kind, {1}, 1, 1},
        {kind, {-1}, 1, 0},   {kind, {0}, 1, 1},       {kind, {0, 2}, 2, 0},   {kind, {0, 2}, 2, 1},
        {kind, {2, 1}, 2, 0}, {kind, {0, 1, 2}, 3, 0}, {kind, {-3, -2}, 2, 1},
    };
    const lam_shape in = AG_SHAPE(2, 3, 4);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const reduce_case *c = &cases[i];
        char what[128];
        int n = snprintf(what, sizeof what, "%s(axes={", name);
        for (uint32_t a = 0; a < c->n_axes; a++) {
            n += snprintf(what + n, sizeof what - (size_t)n, "%s%d", a ? "," : "", c->axes[a]);
        }
        snprintf(what + n, sizeof what - (size_t)n, "}, keepdims=%d)", c->keepdims);
        ag_problem p = {
            .what = what,
            .n_vars = 1,
            .vars = {{"x", in, -2.0, 2.0, 0, NULL}},
            .out_shape = reduce_shape(c, &in),
            .forward = reduce_forward,
            .ref = reduce_ref,
            .valid = kind == R_MAX || kind == R_MIN ? all_distinct : NULL,
            .user = c,
        };
        ag_check_grad(&p, 5000 + 100 * (uint64_t)kind + i, NULL);
    }
    ag_assert_released();
}

Test(grad_op, sum_matches_finite_differences_over_axes) {
    check_reduce(R_SUM, "sum");
}

Test(grad_op, mean_matches_finite_differences_over_axes) {
    check_reduce(R_MEAN, "mean");
}

Test(grad_op, max_matches_finite_differences_over_axes) {
    check_reduce(R_MAX, "max");
}

Test(grad_op, min_matches_finite_differences_over_axes) {
    check_reduce(R_MIN, "min");
}

/* ---- softmax and log-softmax ---------------------------------------------------------------- */

typedef struct softmax_case {
    int32_t axis;
    int log;
} softmax_case;

static lam_status softmax_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    const softmax_case *c = p->user;
    return c->log ? lam_op_log_softmax(in[0], c->axis, out) : lam_op_softmax(in[0], c->axis, out);
}

static void softmax_ref(const ag_problem *p, const double *const *v, double *out) {
    const softmax_case *c = p->user;
    const lam_shape *s = &p->vars[0].shape;
    int32_t ax = c->axis < 0 ? c->axis + (int32_t)s->ndim : c->axis;
    size_t outer = 1, n = (size_t)s->dims[ax], inner = 1;
    for (int32_t d = 0; d < ax; d++) {
        outer *= (size_t)s->dims[d];
    }
    for (uint32_t d = (uint32_t)ax + 1; d < s->ndim; d++) {
        inner *= (size_t)s->dims[d];
    }
    for (size_t o = 0; o < outer; o++) {
        for (size_t i = 0; i < inner; i++) {
            double z = 0.0;
            for (size_t j = 0; j < n; j++) {
                z += exp(v[0][(o * n + j) * inner + i]);
            }
            for (size_t j = 0; j < n; j++) {
                double x = v[0][(o * n + j) * inner + i];
                out[(o * n + j) * inner + i] = c->log ? x - log(z) : exp(x) / z;
            }
        }
    }
}

Test(grad_op, softmax_and_log_softmax_match_finite_differences) {
    const softmax_case cases[] = {{-1, 0}, {1, 0}, {0, 0}, {-1, 1}, {1, 1}, {0, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const softmax_case *c = &cases[i];
        char what[64];
        snprintf(what, sizeof what, "%s(axis=%d) of (3,4)", c->log ? "log_softmax" : "softmax",
                 c->axis);
        ag_problem p = {
            .what = what,
            .n_vars = 1,
            .vars = {{"x", AG_SHAPE(3, 4), -2.0, 2.0, 0, NULL}},
            .out_shape = AG_SHAPE(3, 4),
            .forward = softmax_forward,
            .ref = softmax_ref,
            .user = c,
        };
        ag_check_grad(&p, 6000 + i, NULL);
    }
    /* The middle axis of a 3-D tensor (outer and inner both > 1). */
    for (int log = 0; log < 2; log++) {
        const softmax_case c = {1, log};
        ag_problem p = {
            .what = log ? "log_softmax(axis=1) of (2,3,4)" : "softmax(axis=1) of (2,3,4)",
            .n_vars = 1,
            .vars = {{"x", AG_SHAPE(2, 3, 4), -2.0, 2.0, 0, NULL}},
            .out_shape = AG_SHAPE(2, 3, 4),
            .forward = softmax_forward,
            .ref = softmax_ref,
            .user = &c,
        };
        ag_check_grad(&p, 6100 + (uint64_t)log, NULL);
    }
    ag_assert_released();
}

/* ---- losses --------------------------------------------------------------------------------- */

typedef struct ce_case {
    const float *labels;
    size_t batch;
} ce_case;

static lam_status ce_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    const ce_case *c = p->user;
    lam_tensor *labels = ag_tensor(AG_SHAPE((int64_t)c->batch), c->labels, c->batch);
    lam_status st = lam_loss_softmax_cross_entropy(in[0], labels, out);
    lam_tensor_release(labels);
    return st;
}

static void ce_ref(const ag_problem *p, const double *const *v, double *out) {
    const ce_case *c = p->user;
    size_t classes = (size_t)p->vars[0].shape.dims[1];
    for (size_t b = 0; b < c->batch; b++) {
        const double *row = v[0] + b * classes;
        double z = 0.0;
        for (size_t j = 0; j < classes; j++) {
            z += exp(row[j]);
        }
        out[b] = log(z) - row[(size_t)c->labels[b]];
    }
}

Test(grad_op, softmax_cross_entropy_matches_finite_differences) {
    const float labels[4] = {2.0f, 0.0f, 4.0f, 2.0f};
    const ce_case c = {labels, 4};
    ag_problem p = {
        .what = "softmax_cross_entropy (4,5)",
        .n_vars = 1,
        .vars = {{"logits", AG_SHAPE(4, 5), -3.0, 3.0, 0, NULL}},
        .out_shape = AG_SHAPE(4),
        .forward = ce_forward,
        .ref = ce_ref,
        .user = &c,
    };
    ag_check_grad(&p, 7000, NULL);
    ag_assert_released();
}

static lam_status l2_forward(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    (void)p;
    return lam_loss_l2(in[0], in[1], out);
}

static void l2_ref(const ag_problem *p, const double *const *v, double *out) {
    size_t batch = (size_t)p->vars[0].shape.dims[0];
    size_t per = ag_numel(&p->vars[0].shape) / batch;
    for (size_t b = 0; b < batch; b++) {
        double s = 0.0;
        for (size_t j = 0; j < per; j++) {
            double d = v[0][b * per + j] - v[1][b * per + j];
            s += d * d;
        }
        out[b] = 0.5 * s / (double)per;
    }
}

Test(grad_op, l2_loss_matches_finite_differences) {
    const lam_shape shapes[] = {AG_SHAPE(4, 3), AG_SHAPE(3, 2, 2), AG_SHAPE(5)};
    const lam_shape outs[] = {AG_SHAPE(4), AG_SHAPE(3), AG_SHAPE(5)};
    for (size_t i = 0; i < 3; i++) {
        ag_problem p = {
            .what = "l2_loss",
            .n_vars = 2,
            .vars = {{"pred", shapes[i], -2.0, 2.0, 0, NULL},
                     {"label", shapes[i], -2.0, 2.0, 0, NULL}},
            .out_shape = outs[i],
            .forward = l2_forward,
            .ref = l2_ref,
        };
        ag_check_grad(&p, 7100 + i, NULL);
    }
    ag_assert_released();
}
