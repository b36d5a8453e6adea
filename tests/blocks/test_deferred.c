/*
 * Deferred initialization (section 4.3): initialize() on an unknown input size only records
 * the initializer; the first forward infers the shapes and runs it, once per parameter.
 * Values do not depend on when that happens: eager and deferred initialization give
 * bit-identical weights for the same seed and structural key.
 */
#include "block_util.h"

TestSuite(deferred, .fini = bu_fini);

typedef struct my_init_log {
    int calls;
    char names[8][64];
    lam_shape shapes[8];
} my_init_log;

/* The chapter's MyInit, counting its calls. */
static lam_status my_init(const char *name, const lam_shape *shape, float *data, size_t count,
                          lam_rng *rng, void *user) {
    my_init_log *log = user;
    if (log->calls < 8) {
        snprintf(log->names[log->calls], sizeof log->names[0], "%s", name);
        log->shapes[log->calls] = *shape;
    }
    log->calls++;
    for (size_t i = 0; i < count; i++) {
        float x = lam_rng_uniform(rng, -10.0f, 10.0f);
        data[i] = fabsf(x) < 5.0f ? 0.0f : x;
    }
    return LAM_OK;
}

static lam_initializer *make_my_init(my_init_log *log) {
    lam_initializer *i = NULL;
    BU_OK(lam_init_custom("MyInit", my_init, log, &i));
    return i;
}

/* Sequential(Dense(256, relu <first_attrs>), Dense(10)). */
static lam_block *make_net(const char *first_attrs) {
    lam_block *net = bu_sequential();
    bu_add_layer(net, "Dense", first_attrs);
    bu_add_layer(net, "Dense", "units=10");
    return net;
}

static lam_param *net_param(lam_block *net, size_t child, const char *name) {
    return bu_param(lam_block_child_at(net, child), name);
}

#define DEFERRED_FMT                                                                               \
    "%s: Deferred initialization, shape (256, None) is not known yet; run a forward pass first, "  \
    "or give the layer its input size (e.g. in_units) so it is initialized at once"

Test(deferred, data_unavailable_until_first_forward) {
    lam_block *net = make_net("units=256, activation=relu");
    my_init_log log = {0};
    lam_initializer *init = make_my_init(&log);
    BU_OK(lam_block_initialize(net, init, NULL, 0));
    cr_assert_eq(log.calls, 0, "MyInit ran %d times before the first forward", log.calls);

    lam_param *w = net_param(net, 0, "weight");
    cr_assert(!lam_param_is_initialized(w));
    lam_shape unknown = BU_SHAPE(256, LAM_DIM_UNKNOWN);
    bu_assert_shape(lam_param_shape(w), &unknown, "weight before the forward");
    lam_tensor *t = (lam_tensor *)(void *)&t;
    char want[512];
    snprintf(want, sizeof want, DEFERRED_FMT, lam_param_name(w));
    bu_assert_error(lam_param_data(w, &t), LAM_ERR_DEFERRED_INIT, want, "data while deferred");
    cr_assert_null(t);
    t = (lam_tensor *)(void *)&t;
    bu_assert_error(lam_param_grad(w, &t), LAM_ERR_DEFERRED_INIT, want, "grad while deferred");
    cr_assert_null(t);
    /* A bias has a known shape: it is initialized at once. */
    cr_assert(lam_param_is_initialized(net_param(net, 0, "bias")));
    bu_assert_param_all(net_param(net, 0, "bias"), 0.0f);

    lam_initializer_release(init);
    lam_block_release(net);
    bu_assert_released();
}

Test(deferred, first_forward_infers_shapes_and_initializes_once) {
    lam_block *net = make_net("units=256, activation=relu");
    my_init_log log = {0};
    lam_initializer *init = make_my_init(&log);
    BU_OK(lam_block_initialize(net, init, NULL, 0));
    lam_initializer_release(init); /* the parameters keep what they need */

    lam_tensor *x = bu_ramp(BU_SHAPE(2, 20), 0.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(net, x, &y));
    lam_shape ys = BU_SHAPE(2, 10);
    bu_assert_shape(lam_tensor_shape(y), &ys, "net(X)");
    lam_tensor_release(y);
    cr_assert_eq(log.calls, 2, "MyInit ran %d times, expected once per weight", log.calls);
    lam_param *w0 = net_param(net, 0, "weight"), *w1 = net_param(net, 1, "weight");
    cr_assert_str_eq(log.names[0], lam_param_name(w0));
    cr_assert_str_eq(log.names[1], lam_param_name(w1));
    lam_shape s0 = BU_SHAPE(256, 20), s1 = BU_SHAPE(10, 256);
    bu_assert_shape(&log.shapes[0], &s0, "shape passed to MyInit for net[0].weight");
    bu_assert_shape(&log.shapes[1], &s1, "shape passed to MyInit for net[1].weight");
    bu_assert_shape(lam_param_shape(w0), &s0, "net[0].weight after the forward");
    bu_assert_shape(lam_param_shape(w1), &s1, "net[1].weight after the forward");
    cr_assert(lam_param_is_initialized(w0) && lam_param_is_initialized(w1));
    lam_tensor *t = NULL;
    BU_OK(lam_param_data(w0, &t));
    bu_assert_shape(lam_tensor_shape(t), &s0, "net[0].weight data");
    lam_tensor_release(t);
    BU_OK(lam_param_grad(w1, &t));
    bu_assert_all(t, 0.0f, "net[1].weight grad");
    lam_tensor_release(t);

    /* Later forwards initialize nothing. */
    BU_OK(lam_block_call(net, x, &y));
    lam_tensor_release(y);
    cr_assert_eq(log.calls, 2, "MyInit ran again on the second forward");

    /* Re-initializing once shapes are known runs at once (the chapter's first fix). */
    init = make_my_init(&log);
    BU_OK(lam_block_initialize(net, init, NULL, 1));
    lam_initializer_release(init);
    cr_assert_eq(log.calls, 4, "force_reinit after the forward ran MyInit %d times in all",
                 log.calls);
    lam_tensor_release(x);
    lam_block_release(net);
    bu_assert_released();
}

Test(deferred, other_feature_size_is_shape_error_other_batch_works) {
    lam_block *net = make_net("units=256, activation=relu");
    BU_OK(lam_block_initialize(net, NULL, NULL, 0));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 20), 0.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(net, x, &y));
    lam_tensor_release(y);
    lam_param *w = net_param(net, 0, "weight");
    size_t n;
    float *before = bu_param_values(w, &n);

    lam_tensor *x10 = bu_ramp(BU_SHAPE(2, 10), 0.0f, 1.0f);
    y = (lam_tensor *)(void *)&y;
    bu_assert_error(lam_block_call(net, x10, &y), LAM_ERR_SHAPE,
                    bu_fmt("%s: Shape inconsistent, provided (256, 20), inferred (256, 10)",
                           lam_block_name(lam_block_child_at(net, 0))),
                    "input with 10 features after 20");
    cr_assert_null(y);
    lam_shape s0 = BU_SHAPE(256, 20);
    bu_assert_shape(lam_param_shape(w), &s0, "weight after the failed forward");
    float *after = bu_param_values(w, &n);
    cr_assert(memcmp(before, after, n * sizeof *after) == 0, "the failed forward changed weights");

    lam_tensor *x5 = bu_ramp(BU_SHAPE(5, 20), 0.0f, 1.0f);
    BU_OK(lam_block_call(net, x5, &y));
    lam_shape ys = BU_SHAPE(5, 10);
    bu_assert_shape(lam_tensor_shape(y), &ys, "net(X) with a batch of 5");
    lam_tensor_release(y);
    free(before);
    free(after);
    lam_tensor_release(x);
    lam_tensor_release(x10);
    lam_tensor_release(x5);
    lam_block_release(net);
    bu_assert_released();
}

Test(deferred, in_units_avoids_deferral) {
    lam_block *net = make_net("units=256, activation=relu, in_units=20");
    my_init_log log = {0};
    lam_initializer *init = make_my_init(&log);
    BU_OK(lam_block_initialize(net, init, NULL, 0));
    lam_initializer_release(init);
    /* The first layer is initialized at once; the second still waits for its input size. */
    cr_assert_eq(log.calls, 1);
    lam_param *w0 = net_param(net, 0, "weight");
    cr_assert_str_eq(log.names[0], lam_param_name(w0));
    cr_assert(lam_param_is_initialized(w0));
    cr_assert(!lam_param_is_initialized(net_param(net, 1, "weight")));
    lam_tensor *t = NULL;
    BU_OK(lam_param_data(w0, &t));
    lam_shape s0 = BU_SHAPE(256, 20);
    bu_assert_shape(lam_tensor_shape(t), &s0, "net[0].weight");
    lam_tensor_release(t);
    lam_block_release(net);
    bu_assert_released();
}

/* Initializes two nets of the same structure, one deferred and one eager, and compares every
 * parameter bit for bit. */
static void check_eager_equals_deferred(lam_initializer *init) {
    lam_seed(99);
    lam_block *eager = make_net("units=256, activation=relu, in_units=20");
    lam_block *deferred = make_net("units=256, activation=relu");
    BU_OK(lam_block_initialize(eager, init, NULL, 0));
    BU_OK(lam_block_initialize(deferred, init, NULL, 0));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 20), 0.0f, 1.0f), *ye = NULL, *yd = NULL;
    BU_OK(lam_block_call(deferred, x, &yd));
    BU_OK(lam_block_call(eager, x, &ye));
    const char *what = lam_initializer_describe(init);
    for (size_t c = 0; c < 2; c++) {
        for (int k = 0; k < 2; k++) {
            const char *name = k ? "bias" : "weight";
            size_t ne, nd;
            float *ve = bu_param_values(net_param(eager, c, name), &ne);
            float *vd = bu_param_values(net_param(deferred, c, name), &nd);
            cr_assert_eq(ne, nd);
            cr_assert(memcmp(ve, vd, ne * sizeof *ve) == 0,
                      "%s: net[%zu].%s differs between eager and deferred initialization", what, c,
                      name);
            free(ve);
            free(vd);
        }
    }
    size_t n;
    float *a = bu_values(ye, &n), *b = bu_values(yd, &n);
    cr_assert(memcmp(a, b, n * sizeof *a) == 0, "%s: outputs differ", what);
    free(a);
    free(b);
    lam_tensor_release(x);
    lam_tensor_release(ye);
    lam_tensor_release(yd);
    lam_block_release(eager);
    lam_block_release(deferred);
}

Test(deferred, eager_and_deferred_weights_bit_identical) {
    my_init_log log = {0};
    lam_initializer *inits[3] = {NULL, NULL, NULL};
    inits[0] = make_my_init(&log);
    BU_OK(lam_init_uniform(0.07f, &inits[1]));
    BU_OK(lam_init_xavier(LAM_XAVIER_GAUSSIAN, LAM_XAVIER_AVG, 3.0f, &inits[2]));
    for (int i = 0; i < 3; i++) {
        check_eager_equals_deferred(inits[i]);
        lam_initializer_release(inits[i]);
    }
    cr_assert_eq(log.calls, 4);
    bu_assert_released();
}

Test(deferred, reinit_before_forward_replaces_the_pending_initializer) {
    lam_block *net = make_net("units=256, activation=relu");
    my_init_log log = {0};
    lam_initializer *init = make_my_init(&log);
    BU_OK(lam_block_initialize(net, init, NULL, 0));
    lam_initializer_release(init);

    /* Without force_reinit the pending initialization is kept, with a warning. */
    bu_log warn;
    bu_log_capture(&warn, LAM_LOG_WARN);
    lam_initializer *one = NULL;
    BU_OK(lam_init_one(&one));
    BU_OK(lam_block_initialize(net, one, NULL, 0));
    bu_log_stop();
    lam_param *w0 = net_param(net, 0, "weight");
    cr_assert_geq(warn.count, 2);
    cr_assert(strstr(warn.text[0], lam_param_name(w0)) && strstr(warn.text[0], "force_reinit"),
              "warning \"%s\"", warn.text[0]);

    BU_OK(lam_block_initialize(net, one, NULL, 1));
    lam_initializer_release(one);
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 20), 0.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(net, x, &y));
    cr_assert_eq(log.calls, 0, "the replaced MyInit still ran");
    bu_assert_param_all(w0, 1.0f);
    bu_assert_param_all(net_param(net, 1, "weight"), 1.0f);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(net);
    bu_assert_released();
}

Test(deferred, flatten_infers_product_of_trailing_axes) {
    lam_block *d = bu_layer("Dense", "units=3");
    lam_block *e = bu_layer("Dense", "units=3, flatten=false");
    BU_OK(lam_block_initialize(d, NULL, NULL, 0));
    BU_OK(lam_block_initialize(e, NULL, NULL, 0));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 3, 4), -1.0f, 1.0f), *y = NULL, *z = NULL;
    BU_OK(lam_block_call(d, x, &y));
    BU_OK(lam_block_call(e, x, &z));
    lam_shape w12 = BU_SHAPE(3, 12), w4 = BU_SHAPE(3, 4);
    bu_assert_shape(lam_param_shape(bu_param(d, "weight")), &w12, "flatten=true weight");
    bu_assert_shape(lam_param_shape(bu_param(e, "weight")), &w4, "flatten=false weight");
    lam_shape ys = BU_SHAPE(2, 3), zs = BU_SHAPE(2, 3, 3);
    bu_assert_shape(lam_tensor_shape(y), &ys, "flatten=true output");
    bu_assert_shape(lam_tensor_shape(z), &zs, "flatten=false output");
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_tensor_release(z);
    lam_block_release(d);
    lam_block_release(e);
    bu_assert_released();
}

Test(deferred, rejected_first_input_keeps_the_layer_waiting) {
    lam_block *d = bu_layer("Dense", "units=3");
    my_init_log log = {0};
    lam_initializer *init = make_my_init(&log);
    BU_OK(lam_block_initialize(d, init, NULL, 0));
    lam_initializer_release(init);
    lam_tensor *v = bu_ramp(BU_SHAPE(4), 0.0f, 1.0f), *y = (lam_tensor *)(void *)&y;
    bu_assert_error(lam_block_call(d, v, &y), LAM_ERR_SHAPE,
                    bu_fmt("%s: Shape mismatch, input has rank 1, flatten=true needs (batch, "
                           "features...) of rank >= 2",
                           lam_block_name(d)),
                    "a vector into Dense(flatten=true)");
    cr_assert_null(y);
    cr_assert_eq(log.calls, 0);
    lam_shape unknown = BU_SHAPE(3, LAM_DIM_UNKNOWN);
    bu_assert_shape(lam_param_shape(bu_param(d, "weight")), &unknown, "weight after the failure");
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 4), 0.0f, 1.0f);
    BU_OK(lam_block_call(d, x, &y));
    cr_assert_eq(log.calls, 1);
    lam_shape s = BU_SHAPE(3, 4);
    bu_assert_shape(lam_param_shape(bu_param(d, "weight")), &s, "weight after the forward");
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_tensor_release(v);
    lam_block_release(d);
    bu_assert_released();
}

Test(deferred, parameter_initialize_on_waiting_parameter_runs_at_first_forward) {
    lam_block *net = make_net("units=256, activation=relu");
    BU_OK(lam_block_initialize(net, NULL, NULL, 0));
    my_init_log log = {0};
    lam_initializer *init = make_my_init(&log);
    lam_param *w0 = net_param(net, 0, "weight");
    BU_OK(lam_param_initialize(w0, init, NULL, 1));
    lam_initializer_release(init);
    cr_assert_eq(log.calls, 0);
    cr_assert(!lam_param_is_initialized(w0));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 20), 0.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(net, x, &y));
    cr_assert_eq(log.calls, 1, "MyInit ran %d times for the one parameter given it", log.calls);
    cr_assert_str_eq(log.names[0], lam_param_name(w0));
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(net);
    bu_assert_released();
}

Test(deferred, summary_and_format_follow_the_inferred_shape) {
    lam_block *d = bu_layer("Dense", "units=8, activation=relu");
    char buf[256];
    cr_assert_str_eq(
        lam_param_format(bu_param(d, "weight"), buf, sizeof buf),
        bu_fmt("Parameter %s_weight (shape=(8, None), dtype=float32)", lam_block_name(d)));
    bu_set_param(bu_param(d, "weight"), &(const br_array){2, {8, 5}, 40, br_mlp_w1_data});
    cr_assert_str_eq(
        lam_param_format(bu_param(d, "weight"), buf, sizeof buf),
        bu_fmt("Parameter %s_weight (shape=(8, 5), dtype=float32)", lam_block_name(d)));
    char *s = lam_block_summary(d);
    cr_assert_str_eq(s, "Dense(5 -> 8, Activation(relu))");
    free(s);
    lam_block_release(d);
    bu_assert_released();
}

static lam_status refuse_init(const char *name, const lam_shape *shape, float *data, size_t count,
                              lam_rng *rng, void *user) {
    (void)name, (void)shape, (void)data, (void)count, (void)rng, (void)user;
    return lam_set_error(LAM_ERR_INVALID_ARGUMENT, "MyInit: Refused");
}

Test(deferred, initializer_failure_surfaces_at_first_forward) {
    lam_block *d = bu_layer("Dense", "units=4");
    lam_initializer *init = NULL;
    BU_OK(lam_init_custom("Refuser", refuse_init, NULL, &init));
    BU_OK(lam_block_initialize(d, init, NULL, 0)); /* only recorded: nothing runs yet */
    lam_initializer_release(init);
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 3), 0.0f, 1.0f), *y = (lam_tensor *)(void *)&y;
    bu_assert_error(
        lam_block_call(d, x, &y), LAM_ERR_INVALID_ARGUMENT,
        bu_fmt("%s_weight: Initializer 'Refuser' failed, MyInit: Refused", lam_block_name(d)),
        "first forward with a failing initializer");
    cr_assert_null(y);
    cr_assert(!lam_param_is_initialized(bu_param(d, "weight")));
    lam_tensor_release(x);
    lam_block_release(d);
    bu_assert_released();
}

/* Initializing a child again without force_reinit is "left as is" (a warning). It must not
 * change what a still-pending initialization produces: the eager and the deferred model, given
 * the same calls, end with bit-identical weights. */
Test(deferred, ignored_reinit_of_a_child_keeps_the_pending_values) {
    lam_seed(5);
    lam_block *eager = make_net("units=256, activation=relu, in_units=20");
    lam_block *deferred = make_net("units=256, activation=relu");
    bu_log warn;
    bu_log_capture(&warn, LAM_LOG_WARN);
    lam_block *nets[2] = {eager, deferred};
    for (int i = 0; i < 2; i++) {
        BU_OK(lam_block_initialize(nets[i], NULL, NULL, 0));
        BU_OK(lam_block_initialize(lam_block_child_at(nets[i], 0), NULL, NULL, 0));
    }
    bu_log_stop();
    cr_assert_eq(warn.count, 4, "%d warnings, expected 2 per model", warn.count);
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 20), 0.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(deferred, x, &y));
    lam_tensor_release(y);
    lam_tensor_release(x);
    size_t ne, nd;
    float *ve = bu_param_values(net_param(eager, 0, "weight"), &ne);
    float *vd = bu_param_values(net_param(deferred, 0, "weight"), &nd);
    int same = ne == nd && memcmp(ve, vd, ne * sizeof *ve) == 0;
    float e0 = ve[0], d0 = vd[0];
    free(ve);
    free(vd);
    lam_block_release(eager); /* before the verdict, so a failure leaks nothing */
    lam_block_release(deferred);
    cr_assert(same,
              "net[0].weight differs between eager and deferred initialization after an ignored "
              "re-initialize of net[0] (first element %.9g vs %.9g)",
              (double)e0, (double)d0);
    bu_assert_released();
}

/*
 * Reading a parameter whose shape is not known, before and after initialize, as Gluon answers:
 * "not initialized" (initialize first) before, DeferredInitializationError (run a forward)
 * after; following each piece of advice works.
 */
Test(deferred, data_before_initialize_is_state_error_advising_initialize) {
    lam_block *net = make_net("units=256, activation=relu");
    lam_param *w = net_param(net, 0, "weight");
    lam_tensor *t = (lam_tensor *)(void *)&t;
    const char *want = bu_fmt("%s: Not initialized, call lam_block_initialize() on its model (or "
                              "lam_param_initialize()) first; its shape (256, None) is then "
                              "inferred at the first forward pass",
                              lam_param_name(w));
    char saved[512];
    snprintf(saved, sizeof saved, "%s", want);
    bu_assert_error(lam_param_data(w, &t), LAM_ERR_STATE, saved, "data before initialize");
    cr_assert_null(t);
    t = (lam_tensor *)(void *)&t;
    bu_assert_error(lam_param_grad(w, &t), LAM_ERR_STATE, saved, "grad before initialize");
    cr_assert_null(t);
    /* A known shape changes nothing but the hint. */
    lam_param *b = net_param(net, 0, "bias");
    bu_assert_error(lam_param_data(b, &t), LAM_ERR_STATE,
                    bu_fmt("%s: Not initialized, call lam_block_initialize() on its model (or "
                           "lam_param_initialize()) first",
                           lam_param_name(b)),
                    "bias before initialize");

    /* The advice: initialize. Now the shape is what is missing. */
    BU_OK(lam_block_initialize(net, NULL, NULL, 0));
    char want2[512];
    snprintf(want2, sizeof want2, DEFERRED_FMT, lam_param_name(w));
    bu_assert_error(lam_param_data(w, &t), LAM_ERR_DEFERRED_INIT, want2, "data while deferred");
    cr_assert_null(t);

    /* The advice: a forward pass. Now the data is there. */
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 20), 0.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(net, x, &y));
    BU_OK(lam_param_data(w, &t));
    lam_shape s0 = BU_SHAPE(256, 20);
    bu_assert_shape(lam_tensor_shape(t), &s0, "net[0].weight after the forward");
    lam_tensor_release(t);
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(net);
    bu_assert_released();
}
