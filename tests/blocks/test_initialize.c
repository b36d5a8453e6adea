/*
 * Initializers through parameters (section 4.2): built-in initializers on a block, their
 * statistics against MXNet's formulas, zero biases, declared initializers, the chapter's MyInit,
 * force_reinit and its warning, re-initializing one parameter, and seeds.
 *
 * Exact initial values come from ref/block_refs.h (an independent Philox implementation in
 * gen_block_refs.py); statistics are checked against the distributions' formulas:
 * Uniform(-a, a) has std a / sqrt(3); Xavier's scale is sqrt(magnitude / factor) with
 * factor = (fan_in + fan_out) / 2, fan_in or fan_out.
 */
#include "block_util.h"

TestSuite(initialize, .fini = bu_fini);

/* ---- helpers ------------------------------------------------------------------------------ */

/* Asserts that making an initializer worked and returns it. */
static lam_initializer *made(lam_status st, lam_initializer **slot) {
    cr_assert_eq(st, LAM_OK, "making an initializer failed: %s", lam_last_error());
    cr_assert_not_null(*slot);
    return *slot;
}

/* Each makes a new initializer the caller releases. */
static lam_initializer *make_zero(void) {
    lam_initializer *i = NULL;
    lam_status st = lam_init_zero(&i);
    return made(st, &i);
}
static lam_initializer *make_one(void) {
    lam_initializer *i = NULL;
    lam_status st = lam_init_one(&i);
    return made(st, &i);
}
static lam_initializer *make_constant(float v) {
    lam_initializer *i = NULL;
    lam_status st = lam_init_constant(v, &i);
    return made(st, &i);
}
static lam_initializer *make_normal(float sigma) {
    lam_initializer *i = NULL;
    lam_status st = lam_init_normal(sigma, &i);
    return made(st, &i);
}
static lam_initializer *make_uniform(float scale) {
    lam_initializer *i = NULL;
    lam_status st = lam_init_uniform(scale, &i);
    return made(st, &i);
}
static lam_initializer *make_xavier(lam_xavier_rnd rnd, lam_xavier_factor f, float magnitude) {
    lam_initializer *i = NULL;
    lam_status st = lam_init_xavier(rnd, f, magnitude, &i);
    return made(st, &i);
}

/* Initializes b with a new initializer and releases the initializer. */
static void initialize_with(lam_block *b, lam_initializer *init, int force) {
    BU_OK(lam_block_initialize(b, init, NULL, force));
    lam_initializer_release(init);
}

/* The chapter's MyInit, counting its calls and remembering what it was asked for. */
typedef struct my_init_log {
    int calls;
    char names[8][64];
    lam_shape shapes[8];
    size_t counts[8];
} my_init_log;

static lam_status my_init(const char *name, const lam_shape *shape, float *data, size_t count,
                          lam_rng *rng, void *user) {
    my_init_log *log = user;
    if (log != NULL) {
        if (log->calls < 8) {
            snprintf(log->names[log->calls], sizeof log->names[0], "%s", name);
            log->shapes[log->calls] = *shape;
            log->counts[log->calls] = count;
        }
        log->calls++;
    }
    for (size_t i = 0; i < count; i++) {
        float x = lam_rng_uniform(rng, -10.0f, 10.0f);
        data[i] = fabsf(x) < 5.0f ? 0.0f : x;
    }
    return LAM_OK;
}

static lam_initializer *make_my_init(my_init_log *log) {
    lam_initializer *i = NULL;
    lam_status st = lam_init_custom("MyInit", my_init, log, &i);
    return made(st, &i);
}

typedef struct stats {
    double mean, std, min, max;
    size_t n;
} stats;

static stats param_stats(lam_param *p) {
    size_t n;
    float *v = bu_param_values(p, &n);
    stats s = {0.0, 0.0, INFINITY, -INFINITY, n};
    for (size_t i = 0; i < n; i++) {
        s.mean += v[i];
        s.min = fmin(s.min, v[i]);
        s.max = fmax(s.max, v[i]);
    }
    s.mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        s.std += (v[i] - s.mean) * (v[i] - s.mean);
    }
    s.std = sqrt(s.std / (double)n);
    free(v);
    return s;
}

/* Sequential(Dense(256, relu, in_units=20), Dense(10, in_units=256)). */
static lam_block *mlp_seq(void) {
    lam_block *net = bu_sequential();
    bu_add_layer(net, "Dense", "units=256, activation=relu, in_units=20");
    bu_add_layer(net, "Dense", "units=10, in_units=256");
    return net;
}

static lam_param *net_param(lam_block *net, size_t child, const char *name) {
    return bu_param(lam_block_child_at(net, child), name);
}

/* ---- built-in initializers ---------------------------------------------------------------- */

Test(initialize, zero_one_constant_fill_exactly) {
    lam_block *d = bu_layer("Dense", "units=4, in_units=3");
    lam_param *w = bu_param(d, "weight"), *b = bu_param(d, "bias");
    initialize_with(d, make_zero(), 0);
    bu_assert_param_all(w, 0.0f);
    initialize_with(d, make_one(), 1);
    bu_assert_param_all(w, 1.0f);
    initialize_with(d, make_constant(0.5f), 1);
    bu_assert_param_all(w, 0.5f);
    initialize_with(d, make_constant(-3.25f), 1);
    bu_assert_param_all(w, -3.25f);
    bu_assert_param_all(b, 0.0f);
    lam_block_release(d);
    bu_assert_released();
}

Test(initialize, default_is_uniform_007_keyed_by_structure) {
    lam_seed(BR_UNIFORM_SEED);
    lam_block *net = bu_sequential();
    bu_add_layer(net, "Dense", "units=4, in_units=3");
    BU_OK(lam_block_initialize(net, NULL, NULL, 0));
    lam_tensor *t = NULL;
    BU_OK(lam_param_data(net_param(net, 0, "weight"), &t));
    bu_assert_close(t, &br_uniform_0_weight, 0, 0, "Uniform(0.07) at 0.weight");
    lam_tensor_release(t);
    bu_assert_param_all(net_param(net, 0, "bias"), 0.0f);

    /* A Dense initialized on its own: its key is "weight". */
    lam_block *d = bu_layer("Dense", "units=4, in_units=3");
    BU_OK(lam_block_initialize(d, NULL, NULL, 0));
    BU_OK(lam_param_data(bu_param(d, "weight"), &t));
    bu_assert_close(t, &br_uniform_weight, 0, 0, "Uniform(0.07) at weight");
    lam_tensor_release(t);
    lam_block_release(d);
    lam_block_release(net);
    bu_assert_released();
}

Test(initialize, xavier_values_match_reference) {
    lam_seed(BR_XAVIER_SEED);
    lam_block *net = bu_sequential();
    bu_add_layer(net, "Dense", "units=4, in_units=3");
    initialize_with(net, make_xavier(LAM_XAVIER_UNIFORM, LAM_XAVIER_AVG, 3.0f), 0);
    lam_tensor *t = NULL;
    BU_OK(lam_param_data(net_param(net, 0, "weight"), &t));
    bu_assert_close(t, &br_xavier_0_weight, 0, 0, "Xavier(uniform, avg, 3) at 0.weight");
    lam_tensor_release(t);
    lam_block_release(net);
    bu_assert_released();
}

Test(initialize, normal_statistics_match_sigma) {
    lam_block *d = bu_layer("Dense", "units=512, in_units=1024");
    initialize_with(d, make_normal(0.01f), 0);
    stats s = param_stats(bu_param(d, "weight"));
    cr_assert_eq(s.n, 512 * 1024);
    /* Standard errors: mean 0.01 / 724 = 1.4e-5, std 0.01 / 1024 = 1e-5. */
    cr_assert(fabs(s.mean) < 7e-5, "mean %g", s.mean);
    cr_assert(fabs(s.std - 0.01) < 1e-4, "std %g, expected 0.01", s.std);
    cr_assert(s.max < 0.07 && s.min > -0.07, "range [%g, %g] beyond 7 sigma", s.min, s.max);
    bu_assert_param_all(bu_param(d, "bias"), 0.0f);

    initialize_with(d, make_normal(2.0f), 1);
    s = param_stats(bu_param(d, "weight"));
    cr_assert(fabs(s.std - 2.0) < 0.02, "std %g, expected 2", s.std);
    lam_block_release(d);
    bu_assert_released();
}

typedef struct xavier_case {
    lam_xavier_rnd rnd;
    lam_xavier_factor factor;
    float magnitude;
    double scale; /* sqrt(magnitude / factor) for a (512, 1024) weight, worked by hand */
} xavier_case;

static void check_xavier_stats(lam_param *w, const xavier_case *c) {
    stats s = param_stats(w);
    cr_assert(fabs(s.mean) < 0.01 * c->scale, "mean %g (scale %g)", s.mean, c->scale);
    if (c->rnd == LAM_XAVIER_UNIFORM) {
        double want = c->scale / sqrt(3.0);
        cr_assert(fabs(s.std - want) < 0.01 * want, "uniform std %g, expected %g", s.std, want);
        cr_assert(s.max < c->scale * (1 + 1e-6) && s.min >= -c->scale * (1 + 1e-6),
                  "range [%g, %g] beyond the scale %g", s.min, s.max, c->scale);
        cr_assert(s.max > 0.999 * c->scale && s.min < -0.999 * c->scale,
                  "range [%g, %g] does not reach the scale %g", s.min, s.max, c->scale);
    } else {
        cr_assert(fabs(s.std - c->scale) < 0.01 * c->scale, "gaussian std %g, expected %g", s.std,
                  c->scale);
    }
}

Test(initialize, xavier_statistics_follow_mxnet_formulas) {
    /* fan_in = 1024, fan_out = 512, avg = 768. */
    const xavier_case cases[] = {
        {LAM_XAVIER_UNIFORM, LAM_XAVIER_AVG, 3.0f, sqrt(3.0 / 768.0)},
        {LAM_XAVIER_UNIFORM, LAM_XAVIER_IN, 3.0f, sqrt(3.0 / 1024.0)},
        {LAM_XAVIER_UNIFORM, LAM_XAVIER_OUT, 2.0f, sqrt(2.0 / 512.0)},
        {LAM_XAVIER_GAUSSIAN, LAM_XAVIER_AVG, 2.0f, sqrt(2.0 / 768.0)},
        {LAM_XAVIER_GAUSSIAN, LAM_XAVIER_IN, 1.0f, sqrt(1.0 / 1024.0)},
        {LAM_XAVIER_GAUSSIAN, LAM_XAVIER_OUT, 3.0f, sqrt(3.0 / 512.0)},
    };
    lam_block *d = bu_layer("Dense", "units=512, in_units=1024");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        initialize_with(d, make_xavier(cases[i].rnd, cases[i].factor, cases[i].magnitude), 1);
        check_xavier_stats(bu_param(d, "weight"), &cases[i]);
        bu_assert_param_all(bu_param(d, "bias"), 0.0f);
    }
    lam_block_release(d);
    bu_assert_released();
}

Test(initialize, declared_xavier_with_arguments_applies) {
    lam_block *d =
        bu_layer("Dense", "units=512, in_units=1024, weight_initializer=xavier(gaussian, in, 2)");
    initialize_with(d, make_one(), 0);
    const xavier_case c = {LAM_XAVIER_GAUSSIAN, LAM_XAVIER_IN, 2.0f, sqrt(2.0 / 1024.0)};
    check_xavier_stats(bu_param(d, "weight"), &c);
    lam_block_release(d);
    bu_assert_released();
}

Test(initialize, xavier_on_a_vector_is_a_shape_error) {
    lam_block *d = bu_layer("Dense", "units=4, in_units=3");
    BU_OK(lam_block_initialize(d, NULL, NULL, 0));
    lam_param *b = bu_param(d, "bias");
    lam_initializer *x = make_xavier(LAM_XAVIER_UNIFORM, LAM_XAVIER_AVG, 3.0f);
    bu_assert_error(lam_param_initialize(b, x, NULL, 1), LAM_ERR_SHAPE,
                    bu_fmt("%s: Cannot initialize, Xavier needs at least 2 dims, shape is (4,)",
                           lam_param_name(b)),
                    "Xavier on a bias");
    lam_initializer_release(x);
    bu_assert_param_all(b, 0.0f);
    lam_block_release(d);
    bu_assert_released();
}

/* ---- biases and declared initializers ----------------------------------------------------- */

static lam_status pass_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                               lam_tensor **out) {
    (void)self, (void)state, (void)n;
    *out = lam_tensor_retain(in[0]);
    return LAM_OK;
}

Test(initialize, xavier_on_a_vector_parameter_fails_block_initialize) {
    lam_block *net = NULL;
    BU_OK(lam_block_create("Net", pass_forward, NULL, NULL, &net));
    lam_shape s = BU_SHAPE(3);
    lam_param *p = NULL;
    BU_OK(lam_block_param_new(net, "scale", &s, NULL, &p));
    lam_initializer *x = make_xavier(LAM_XAVIER_UNIFORM, LAM_XAVIER_AVG, 3.0f);
    bu_assert_error(lam_block_initialize(net, x, NULL, 0), LAM_ERR_SHAPE,
                    bu_fmt("%s: Cannot initialize, Xavier needs at least 2 dims, shape is (3,)",
                           lam_param_name(p)),
                    "Xavier through the block on a (3,) parameter");
    lam_initializer_release(x);
    cr_assert(!lam_param_is_initialized(p));
    lam_block_release(net);
    bu_assert_released();
}

Test(initialize, biases_are_zero_under_any_block_initializer) {
    lam_initializer *inits[6] = {
        make_one(),
        make_constant(3.0f),
        make_normal(1.0f),
        make_uniform(1.0f),
        make_xavier(LAM_XAVIER_GAUSSIAN, LAM_XAVIER_AVG, 3.0f),
        make_my_init(NULL),
    };
    for (int i = 0; i < 6; i++) {
        lam_block *net = NULL;
        BU_OK(lam_block_create("Net", pass_forward, NULL, NULL, &net));
        lam_shape bs = BU_SHAPE(3), ws = BU_SHAPE(3, 3);
        BU_OK(lam_block_param_new(net, "bias", &bs, NULL, NULL));
        BU_OK(lam_block_param_new(net, "weight", &ws, NULL, NULL));
        lam_block *seq = bu_sequential();
        bu_add_layer(seq, "Dense", "units=4, in_units=3");
        bu_add_layer(seq, "MyDense", "units=2, in_units=4");
        BU_OK(lam_block_register_child(net, "body", seq));
        lam_block_release(seq);
        BU_OK(lam_block_initialize(net, inits[i], NULL, 0));
        const char *what = lam_initializer_describe(inits[i]);
        lam_param_list *l = NULL;
        BU_OK(lam_block_collect_params(net, ".*bias", &l));
        cr_assert_eq(lam_param_list_count(l), 3, "%s", what);
        for (size_t k = 0; k < 3; k++) {
            bu_assert_param_all(lam_param_list_get(l, k), 0.0f);
        }
        lam_param_list_destroy(l);
        /* ... while the weights got the block's initializer: not all zero. */
        stats s = param_stats(lam_block_param(net, "weight"));
        cr_assert(s.max != 0.0 || s.min != 0.0, "%s left the weight at zero", what);
        lam_block_release(net);
    }
    for (int i = 0; i < 6; i++) {
        lam_initializer_release(inits[i]);
    }
    bu_assert_released();
}

Test(initialize, declared_initializer_wins_over_the_blocks) {
    lam_block *net = bu_sequential();
    lam_block *a = bu_add_layer(
        net, "Dense", "units=3, in_units=2, weight_initializer=constant(2), bias_initializer=ones");
    lam_block *b = bu_add_layer(net, "Dense", "units=2, in_units=3");
    initialize_with(net, make_constant(5.0f), 0);
    bu_assert_param_all(bu_param(a, "weight"), 2.0f);
    bu_assert_param_all(bu_param(a, "bias"), 1.0f);
    bu_assert_param_all(bu_param(b, "weight"), 5.0f);
    bu_assert_param_all(bu_param(b, "bias"), 0.0f);
    /* Also under force_reinit with another block initializer. */
    initialize_with(net, make_normal(1.0f), 1);
    bu_assert_param_all(bu_param(a, "weight"), 2.0f);
    bu_assert_param_all(bu_param(a, "bias"), 1.0f);
    /* An initializer given to the parameter itself wins over its declared one. */
    lam_initializer *z = make_zero();
    BU_OK(lam_param_initialize(bu_param(a, "weight"), z, NULL, 1));
    lam_initializer_release(z);
    bu_assert_param_all(bu_param(a, "weight"), 0.0f);

    /* A custom block's declared initializer. */
    lam_block *c = NULL;
    BU_OK(lam_block_create("Net", pass_forward, NULL, NULL, &c));
    lam_initializer *seven = make_constant(7.0f);
    lam_shape s = BU_SHAPE(2, 2);
    lam_param *p = NULL;
    BU_OK(lam_block_param_new(c, "scale", &s, seven, &p));
    lam_initializer_release(seven); /* the parameter keeps its own reference */
    initialize_with(c, make_one(), 0);
    bu_assert_param_all(p, 7.0f);
    lam_block_release(c);
    lam_block_release(net);
    bu_assert_released();
}

/* ---- custom initializer ------------------------------------------------------------------- */

Test(initialize, my_init_called_once_per_weight_with_name_and_shape) {
    lam_seed(BR_MYINIT_SEED);
    lam_block *net = bu_sequential();
    lam_block *a = bu_add_layer(net, "Dense", "units=4, in_units=3");
    lam_block *b = bu_add_layer(net, "Dense", "units=2, in_units=4");
    my_init_log log = {0};
    initialize_with(net, make_my_init(&log), 0);
    cr_assert_eq(log.calls, 2, "MyInit called %d times, expected once per weight", log.calls);
    cr_assert_str_eq(log.names[0], bu_fmt("%s_weight", lam_block_name(a)));
    cr_assert_str_eq(log.names[1], bu_fmt("%s_weight", lam_block_name(b)));
    lam_shape s0 = BU_SHAPE(4, 3), s1 = BU_SHAPE(2, 4);
    bu_assert_shape(&log.shapes[0], &s0, "shape passed for net[0].weight");
    bu_assert_shape(&log.shapes[1], &s1, "shape passed for net[1].weight");
    cr_assert_eq(log.counts[0], 12);
    cr_assert_eq(log.counts[1], 8);

    lam_tensor *t = NULL;
    BU_OK(lam_param_data(bu_param(a, "weight"), &t));
    bu_assert_close(t, &br_myinit_0_weight, 0, 0, "MyInit at 0.weight");
    lam_tensor_release(t);
    BU_OK(lam_param_data(bu_param(b, "weight"), &t));
    bu_assert_close(t, &br_myinit_1_weight, 0, 0, "MyInit at 1.weight");
    lam_tensor_release(t);
    bu_assert_param_all(bu_param(a, "bias"), 0.0f);
    bu_assert_param_all(bu_param(b, "bias"), 0.0f);
    lam_block_release(net);
    bu_assert_released();
}

Test(initialize, my_init_rule_holds_element_by_element) {
    lam_block *d = bu_layer("Dense", "units=256, in_units=20");
    initialize_with(d, make_my_init(NULL), 0);
    size_t n;
    float *v = bu_param_values(bu_param(d, "weight"), &n);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(v[i] == 0.0f || (fabsf(v[i]) >= 5.0f && fabsf(v[i]) <= 10.0f),
                  "element %zu is %g: neither 0 nor 5 <= |x| <= 10", i, (double)v[i]);
        zeros += v[i] == 0.0f;
    }
    /* Half of U(-10, 10) lies in (-5, 5): 2560 of 5120 expected, std 36. */
    cr_assert(zeros > 2380 && zeros < 2740, "%zu zeros of %zu", zeros, n);
    free(v);
    lam_block_release(d);
    bu_assert_released();
}

static lam_status failing_init(const char *name, const lam_shape *shape, float *data, size_t count,
                               lam_rng *rng, void *user) {
    (void)name, (void)shape, (void)data, (void)count, (void)rng, (void)user;
    return lam_set_error(LAM_ERR_INVALID_ARGUMENT, "MyInit: Refused, no values today");
}

Test(initialize, custom_initializer_failure_names_the_parameter) {
    lam_block *d = bu_layer("Dense", "units=4, in_units=3");
    lam_initializer *init = NULL;
    BU_OK(lam_init_custom("Refuser", failing_init, NULL, &init));
    bu_assert_error(lam_block_initialize(d, init, NULL, 0), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("%s_weight: Initializer 'Refuser' failed, MyInit: Refused, no values "
                           "today",
                           lam_block_name(d)),
                    "failing custom initializer");
    cr_assert(!lam_param_is_initialized(bu_param(d, "weight")));
    lam_initializer_release(init);
    lam_block_release(d);
    bu_assert_released();
}

/* ---- re-initialization -------------------------------------------------------------------- */

Test(initialize, reinit_without_force_warns_and_keeps_values) {
    lam_block *net = mlp_seq();
    initialize_with(net, make_normal(0.01f), 0);
    lam_param *w = net_param(net, 0, "weight");
    size_t n;
    float *before = bu_param_values(w, &n);

    bu_log log;
    bu_log_capture(&log, LAM_LOG_WARN);
    initialize_with(net, make_one(), 0);
    bu_log_stop();
    float *after = bu_param_values(w, &n);
    cr_assert(memcmp(before, after, n * sizeof *before) == 0,
              "initialize without force_reinit changed the weight");
    cr_assert_eq(log.count, 4, "%d warnings, expected one per parameter", log.count);
    cr_assert_eq(log.level[0], LAM_LOG_WARN);
    cr_assert(strstr(log.text[0], lam_param_name(w)) != NULL, "warning \"%s\" does not name %s",
              log.text[0], lam_param_name(w));
    cr_assert(strstr(log.text[0], "force_reinit") != NULL,
              "warning \"%s\" does not mention force_reinit", log.text[0]);
    cr_assert_str_eq(log.text[0], bu_fmt("%s: Already initialized, left as is; pass force_reinit "
                                         "to initialize it again",
                                         lam_param_name(w)));
    cr_assert(strstr(log.text[3], lam_param_name(net_param(net, 1, "bias"))) != NULL,
              "last warning \"%s\"", log.text[3]);

    /* The same through one parameter. */
    bu_log_capture(&log, LAM_LOG_WARN);
    lam_initializer *one = make_one();
    BU_OK(lam_param_initialize(w, one, NULL, 0));
    lam_initializer_release(one);
    bu_log_stop();
    cr_assert_eq(log.count, 1);
    cr_assert(strstr(log.text[0], lam_param_name(w)) && strstr(log.text[0], "force_reinit"),
              "warning \"%s\"", log.text[0]);
    free(after);
    after = bu_param_values(w, &n);
    cr_assert(memcmp(before, after, n * sizeof *before) == 0);
    free(before);
    free(after);
    lam_block_release(net);
    bu_assert_released();
}

Test(initialize, force_reinit_changes_values) {
    lam_block *net = mlp_seq();
    initialize_with(net, make_normal(0.01f), 0);
    bu_log log;
    bu_log_capture(&log, LAM_LOG_WARN);
    initialize_with(net, make_constant(1.0f), 1);
    bu_log_stop();
    cr_assert_eq(log.count, 0, "force_reinit warned: %s", log.text[0]);
    bu_assert_param_all(net_param(net, 0, "weight"), 1.0f);
    bu_assert_param_all(net_param(net, 1, "weight"), 1.0f);
    bu_assert_param_all(net_param(net, 0, "bias"), 0.0f);

    /* Re-initialization writes into the parameter's storage: a reference taken before sees
     * the new values. */
    lam_tensor *t = NULL;
    BU_OK(lam_param_data(net_param(net, 1, "weight"), &t));
    initialize_with(net, make_constant(-2.0f), 1);
    bu_assert_all(t, -2.0f, "weight reference taken before force_reinit");
    lam_tensor_release(t);
    lam_block_release(net);
    bu_assert_released();
}

Test(initialize, one_parameter_reinitialized_alone) {
    lam_block *net = mlp_seq();
    initialize_with(net, make_normal(0.01f), 0);
    lam_param_list *l = NULL;
    BU_OK(lam_block_collect_params(net, NULL, &l));
    size_t np = lam_param_list_count(l);
    cr_assert_eq(np, 4);
    float *before[4];
    size_t counts[4];
    for (size_t i = 0; i < np; i++) {
        before[i] = bu_param_values(lam_param_list_get(l, i), &counts[i]);
    }
    lam_initializer *x = make_xavier(LAM_XAVIER_UNIFORM, LAM_XAVIER_AVG, 3.0f);
    BU_OK(lam_param_initialize(net_param(net, 0, "weight"), x, NULL, 1));
    lam_initializer_release(x);
    for (size_t i = 0; i < np; i++) {
        size_t n;
        float *after = bu_param_values(lam_param_list_get(l, i), &n);
        int same = memcmp(before[i], after, n * sizeof *after) == 0;
        if (i == 0) {
            cr_assert(!same, "net[0].weight did not change");
        } else {
            cr_assert(same, "%s changed", lam_param_list_key(l, i));
        }
        free(after);
        free(before[i]);
    }
    /* Xavier(uniform, avg, 3) on (256, 20): scale sqrt(3 / 138). */
    stats s = param_stats(net_param(net, 0, "weight"));
    double scale = sqrt(3.0 / 138.0);
    cr_assert(s.max < scale && s.min >= -scale && s.max > 0.9 * scale, "range [%g, %g], scale %g",
              s.min, s.max, scale);
    lam_param_list_destroy(l);
    lam_block_release(net);
    bu_assert_released();
}

/* ---- seeds -------------------------------------------------------------------------------- */

static float *all_values(lam_block *net, size_t *total) {
    lam_param_list *l = NULL;
    BU_OK(lam_block_collect_params(net, NULL, &l));
    float *out = NULL;
    size_t len = 0;
    for (size_t i = 0; i < lam_param_list_count(l); i++) {
        size_t n;
        float *v = bu_param_values(lam_param_list_get(l, i), &n);
        out = realloc(out, (len + n) * sizeof *out);
        cr_assert_not_null(out);
        memcpy(out + len, v, n * sizeof *v);
        len += n;
        free(v);
    }
    lam_param_list_destroy(l);
    *total = len;
    return out;
}

Test(initialize, same_seed_bit_identical_other_seed_differs) {
    lam_block *nets[3];
    float *vals[3];
    size_t n[3];
    const uint64_t seeds[3] = {7, 7, 8};
    for (int i = 0; i < 3; i++) {
        lam_seed(seeds[i]);
        cr_assert_eq(lam_seed_get(), seeds[i]);
        nets[i] = mlp_seq(); /* new display names each time: dense2, dense3, ... */
        initialize_with(nets[i], make_normal(0.5f), 0);
        vals[i] = all_values(nets[i], &n[i]);
    }
    cr_assert_str_neq(lam_block_name(lam_block_child_at(nets[0], 0)),
                      lam_block_name(lam_block_child_at(nets[1], 0)));
    cr_assert_eq(n[0], n[1]);
    cr_assert(memcmp(vals[0], vals[1], n[0] * sizeof(float)) == 0,
              "same seed and structure gave different values");
    size_t differ = 0;
    for (size_t k = 0; k < n[0]; k++) {
        differ += vals[0][k] != vals[2][k];
    }
    /* Biases (266 of them) are zero under every seed; every weight should differ. */
    cr_assert(differ > n[0] - 266 - 10, "only %zu of %zu values differ under another seed", differ,
              n[0]);
    for (int i = 0; i < 3; i++) {
        free(vals[i]);
        lam_block_release(nets[i]);
    }
    bu_assert_released();
}

/* lam_seed: "Initial parameter values are a pure function of the seed and the parameter's
 * structural key: eager or deferred initialization, creation order and backend do not change
 * them." Two identical layers, each weight initialized on its own: same key ("weight"), same
 * seed, so the same values, whichever layer was created first. */
Test(initialize, parameter_initialize_alone_ignores_creation_order) {
    lam_seed(BR_UNIFORM_SEED);
    lam_block *a = bu_layer("Dense", "units=4, in_units=3");
    lam_block *b = bu_layer("Dense", "units=4, in_units=3");
    lam_initializer *u = make_uniform(0.07f);
    BU_OK(lam_param_initialize(bu_param(a, "weight"), u, NULL, 0));
    BU_OK(lam_param_initialize(bu_param(b, "weight"), u, NULL, 0));
    lam_initializer_release(u);
    size_t n;
    float *va = bu_param_values(bu_param(a, "weight"), &n);
    float *vb = bu_param_values(bu_param(b, "weight"), &n);
    int same = memcmp(va, vb, n * sizeof *va) == 0;
    float a0 = va[0], b0 = vb[0];
    free(va);
    free(vb);
    char na[64], nb[64];
    snprintf(na, sizeof na, "%s", lam_block_name(a));
    snprintf(nb, sizeof nb, "%s", lam_block_name(b));
    lam_block_release(a); /* before the verdict, so a failure leaks nothing */
    lam_block_release(b);
    cr_assert(same,
              "%s.weight and %s.weight got different values (first %.9g vs %.9g): the stream "
              "depends on the display name, i.e. on creation order",
              na, nb, (double)a0, (double)b0);
    bu_assert_released();
}
