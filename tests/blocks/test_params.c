/*
 * Parameters (section 4.2): display names, structural keys, collect_params with a regular
 * expression, the text forms, data and gradient access, set_data, constants, grad_req and the
 * learning-rate and weight-decay multipliers.
 *
 * Display-name counters rise for the whole process; Criterion runs each test in its own
 * process, but the tests still read the first name and expect the next one to be +1 rather
 * than assuming a number. Expected texts are the ones Gluon 1.x prints for the same model.
 */
#include "block_util.h"

TestSuite(param, .fini = bu_fini);
TestSuite(collect_params, .fini = bu_fini);
TestSuite(constant, .fini = bu_fini);

static lam_status pass_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                               lam_tensor **out) {
    (void)self, (void)state, (void)n;
    *out = lam_tensor_retain(in[0]);
    return LAM_OK;
}

static lam_block *custom(const char *type) {
    lam_block *b = NULL;
    BU_OK(lam_block_create(type, pass_forward, NULL, NULL, &b));
    return b;
}

/* Sequential(Dense(256, relu, in_units=20), Dense(10, in_units=256)). */
static lam_block *mlp_seq(void) {
    lam_block *net = bu_sequential();
    bu_add_layer(net, "Dense", "units=256, activation=relu, in_units=20");
    bu_add_layer(net, "Dense", "units=10, in_units=256");
    return net;
}

/* ---- param -------------------------------------------------------------------------------- */

Test(param, display_names_follow_rising_block_counters) {
    lam_block *a = bu_layer("Dense", "units=3");
    lam_block *b = bu_layer("Dense", "units=3");
    unsigned long n = bu_name_index(lam_block_name(a), "dense");
    cr_assert_str_eq(lam_param_name(bu_param(a, "weight")), bu_fmt("dense%lu_weight", n));
    cr_assert_str_eq(lam_param_name(bu_param(a, "bias")), bu_fmt("dense%lu_bias", n));
    cr_assert_str_eq(lam_block_name(b), bu_fmt("dense%lu", n + 1));
    cr_assert_str_eq(lam_param_name(bu_param(b, "weight")), bu_fmt("dense%lu_weight", n + 1));

    lam_block *m = bu_layer("MyDense", "units=3, in_units=5");
    unsigned long k = bu_name_index(lam_block_name(m), "mydense");
    cr_assert_str_eq(lam_param_name(bu_param(m, "weight")), bu_fmt("mydense%lu_weight", k));

    lam_block *fancy = custom("FancyMLP");
    lam_param *p = NULL;
    lam_shape s = BU_SHAPE(20, 20);
    BU_OK(lam_block_param_new(fancy, "rand_weight", &s, NULL, &p));
    cr_assert_str_eq(lam_param_name(p), bu_fmt("%s_rand_weight", lam_block_name(fancy)));
    cr_assert_eq(lam_block_param(fancy, "rand_weight"), p);
    bu_assert_shape(lam_param_shape(p), &s, "rand_weight");
    lam_block_release(a);
    lam_block_release(b);
    lam_block_release(m);
    lam_block_release(fancy);
    bu_assert_released();
}

Test(param, counters_keep_rising_across_shutdown) {
    lam_block *a = bu_layer("Dense", "units=3");
    lam_block *m = NULL;
    BU_OK(lam_block_create("MLP", pass_forward, NULL, NULL, &m));
    unsigned long n = bu_name_index(lam_block_name(a), "dense");
    unsigned long k = bu_name_index(lam_block_name(m), "mlp");
    lam_block_release(a);
    lam_block_release(m);
    lam_shutdown(); /* the runtime restarts on the next call; the counters do not */
    lam_block *b = bu_layer("Dense", "units=3");
    BU_OK(lam_block_create("MLP", pass_forward, NULL, NULL, &m));
    cr_assert_str_eq(lam_block_name(b), bu_fmt("dense%lu", n + 1));
    cr_assert_str_eq(lam_block_name(m), bu_fmt("mlp%lu", k + 1));
    cr_assert_str_eq(lam_param_name(bu_param(b, "weight")), bu_fmt("dense%lu_weight", n + 1));
    lam_block_release(b);
    lam_block_release(m);
    bu_assert_released();
}

Test(param, block_param_new_rejects_duplicate_and_bad_names) {
    lam_block *b = custom("MLP");
    lam_shape s = BU_SHAPE(2, 2);
    lam_param *p = NULL;
    BU_OK(lam_block_param_new(b, "weight", &s, NULL, &p));
    lam_param *q = p;
    bu_assert_error(lam_block_param_new(b, "weight", &s, NULL, &q), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("%s: Duplicate parameter name 'weight'", lam_block_name(b)),
                    "second parameter named weight");
    cr_assert_null(q);
    bu_assert_error(lam_block_param_new(b, "my-weight", &s, NULL, &q), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("%s: Invalid parameter name 'my-weight', expected letters, digits "
                           "and _",
                           lam_block_name(b)),
                    "name with a dash");
    cr_assert_eq(lam_block_param(b, "weight"), p);
    cr_assert_null(lam_block_param(b, "my-weight"));
    lam_block_release(b);
    bu_assert_released();
}

Test(param, own_params_exclude_children) {
    lam_block *net = mlp_seq();
    lam_param_list *l = NULL;
    BU_OK(lam_block_params(net, &l));
    cr_assert_eq(lam_param_list_count(l), 0, "a Sequential has no parameters of its own");
    lam_param_list_destroy(l);

    lam_block *d0 = lam_block_child_at(net, 0);
    BU_OK(lam_block_params(d0, &l));
    cr_assert_eq(lam_param_list_count(l), 2);
    cr_assert_str_eq(lam_param_list_key(l, 0), "weight");
    cr_assert_str_eq(lam_param_list_key(l, 1), "bias");
    cr_assert_eq(lam_param_list_get(l, 0), bu_param(d0, "weight"));
    cr_assert_eq(lam_param_list_get(l, 1), bu_param(d0, "bias"));
    cr_assert_null(lam_param_list_get(l, 2));
    cr_assert_null(lam_param_list_key(l, 2));

    /* Gluon's net[0].params */
    const char *n = lam_block_name(d0);
    char title[64], buf[1024];
    snprintf(title, sizeof title, "%s_", n);
    char want[1024];
    snprintf(want, sizeof want,
             "%s_ (\n"
             "  Parameter %s_weight (shape=(256, 20), dtype=float32)\n"
             "  Parameter %s_bias (shape=(256,), dtype=float32)\n"
             ")",
             n, n, n);
    cr_assert_str_eq(lam_param_list_format(l, title, buf, sizeof buf), want);
    lam_param_list_destroy(l);
    lam_block_release(net);
    bu_assert_released();
}

Test(param, format_shows_kind_name_shape_and_dtype) {
    lam_block *d = bu_layer("Dense", "units=256, in_units=20");
    lam_block *e = bu_layer("Dense", "units=8, activation=relu");
    char buf[256];
    cr_assert_str_eq(
        lam_param_format(bu_param(d, "weight"), buf, sizeof buf),
        bu_fmt("Parameter %s_weight (shape=(256, 20), dtype=float32)", lam_block_name(d)));
    cr_assert_str_eq(lam_param_format(bu_param(d, "bias"), buf, sizeof buf),
                     bu_fmt("Parameter %s_bias (shape=(256,), dtype=float32)", lam_block_name(d)));
    cr_assert_str_eq(
        lam_param_format(bu_param(e, "weight"), buf, sizeof buf),
        bu_fmt("Parameter %s_weight (shape=(8, None), dtype=float32)", lam_block_name(e)));
    lam_block_release(d);
    lam_block_release(e);
    bu_assert_released();
}

Test(param, data_and_grad_before_initialize_are_state_errors) {
    lam_block *d = bu_layer("Dense", "units=4, in_units=3");
    lam_param *w = bu_param(d, "weight");
    cr_assert(!lam_param_is_initialized(w));
    lam_tensor *t = (lam_tensor *)(void *)&t;
    const char *msg = bu_fmt("%s: Not initialized, call lam_block_initialize() on its model (or "
                             "lam_param_initialize()) first",
                             lam_param_name(w));
    char want[512];
    snprintf(want, sizeof want, "%s", msg);
    bu_assert_error(lam_param_data(w, &t), LAM_ERR_STATE, want, "data before initialize");
    cr_assert_null(t);
    t = (lam_tensor *)(void *)&t;
    bu_assert_error(lam_param_grad(w, &t), LAM_ERR_STATE, want, "grad before initialize");
    cr_assert_null(t);
    lam_block_release(d);
    bu_assert_released();
}

Test(param, grad_is_zeros_of_data_shape_after_initialize) {
    lam_block *net = mlp_seq();
    BU_OK(lam_block_initialize(net, NULL, NULL, 0));
    for (size_t i = 0; i < 2; i++) {
        lam_block *d = lam_block_child_at(net, i);
        for (int k = 0; k < 2; k++) {
            lam_param *p = bu_param(d, k ? "bias" : "weight");
            cr_assert(lam_param_is_initialized(p));
            cr_assert(!lam_param_is_constant(p));
            cr_assert_eq(lam_param_grad_req(p), LAM_GRAD_WRITE);
            lam_tensor *data = NULL, *grad = NULL;
            BU_OK(lam_param_data(p, &data));
            BU_OK(lam_param_grad(p, &grad));
            cr_assert_neq(data, grad, "data and grad are the same tensor");
            bu_assert_shape(lam_tensor_shape(grad), lam_param_shape(p), lam_param_name(p));
            bu_assert_shape(lam_tensor_shape(data), lam_param_shape(p), lam_param_name(p));
            bu_assert_all(grad, 0.0f, lam_param_name(p));
            cr_assert_eq(lam_tensor_ctx(grad), lam_tensor_ctx(data));
            lam_tensor_release(data);
            lam_tensor_release(grad);
        }
    }
    lam_block_release(net);
    bu_assert_released();
}

Test(param, set_data_writes_values_into_the_storage) {
    lam_block *d = bu_layer("Dense", "units=4, in_units=5");
    BU_OK(lam_block_initialize(d, NULL, NULL, 0));
    lam_param *w = bu_param(d, "weight");
    lam_tensor *before = NULL;
    BU_OK(lam_param_data(w, &before));
    bu_set_param(w, &br_dense_w);
    lam_tensor *after = NULL;
    BU_OK(lam_param_data(w, &after));
    bu_assert_close(after, &br_dense_w, 0, 0, "weight after set_data");
    /* The parameter's tensor is its storage: a reference taken before sees the new values. */
    bu_assert_close(before, &br_dense_w, 0, 0, "weight reference taken before set_data");
    lam_tensor_release(before);
    lam_tensor_release(after);

    /* The layer computes with them. */
    bu_set_param(bu_param(d, "bias"), &br_dense_b);
    lam_tensor *x = bu_from_ref(&br_dense_x), *y = NULL;
    BU_OK(lam_block_call(d, x, &y));
    bu_assert_close(y, &br_dense_out_none, BU_RTOL, BU_ATOL, "Dense with set weights");
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(d);
    bu_assert_released();
}

Test(param, set_data_shape_mismatch_names_both_shapes) {
    lam_block *d = bu_layer("Dense", "units=4, in_units=3");
    lam_initializer *one = NULL;
    BU_OK(lam_init_one(&one));
    BU_OK(lam_block_initialize(d, one, NULL, 0));
    lam_initializer_release(one);
    lam_param *w = bu_param(d, "weight");
    lam_tensor *t = bu_ramp(BU_SHAPE(3, 4), 0.0f, 1.0f);
    bu_assert_error(
        lam_param_set_data(w, t), LAM_ERR_SHAPE,
        bu_fmt("%s: Shape mismatch, parameter has (4, 3), data has (3, 4)", lam_param_name(w)),
        "transposed data");
    lam_tensor_release(t);
    t = bu_ramp(BU_SHAPE(12), 0.0f, 1.0f);
    bu_assert_error(
        lam_param_set_data(w, t), LAM_ERR_SHAPE,
        bu_fmt("%s: Shape mismatch, parameter has (4, 3), data has (12,)", lam_param_name(w)),
        "flat data");
    lam_tensor_release(t);
    lam_shape s = BU_SHAPE(4, 3);
    bu_assert_shape(lam_param_shape(w), &s, "shape after the failed set_data");
    bu_assert_param_all(w, 1.0f);
    lam_block_release(d);
    bu_assert_released();
}

Test(param, set_data_completes_an_unknown_shape) {
    lam_block *d = bu_layer("Dense", "units=4");
    lam_param *w = bu_param(d, "weight");
    bu_set_param(w, &br_dense_w);
    lam_shape s = BU_SHAPE(4, 5);
    bu_assert_shape(lam_param_shape(w), &s, "weight shape taken from the data");
    cr_assert(lam_param_is_initialized(w));
    bu_set_param(bu_param(d, "bias"), &br_dense_b);
    /* Both parameters have data: the layer runs without lam_block_initialize. */
    lam_tensor *x = bu_from_ref(&br_dense_x), *y = NULL;
    BU_OK(lam_block_call(d, x, &y));
    bu_assert_close(y, &br_dense_out_none, BU_RTOL, BU_ATOL, "Dense with set weights");
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(d);
    bu_assert_released();
}

Test(param, grad_req_null_removes_the_gradient) {
    lam_block *d = bu_layer("Dense", "units=4, in_units=3");
    BU_OK(lam_block_initialize(d, NULL, NULL, 0));
    lam_param *w = bu_param(d, "weight");
    cr_assert_eq(lam_param_grad_req(w), LAM_GRAD_WRITE);
    BU_OK(lam_param_set_grad_req(w, LAM_GRAD_NULL));
    cr_assert_eq(lam_param_grad_req(w), LAM_GRAD_NULL);
    lam_tensor *g = (lam_tensor *)(void *)&g;
    bu_assert_error(
        lam_param_grad(w, &g), LAM_ERR_STATE,
        bu_fmt("%s: No gradient, the parameter is set to grad_req null", lam_param_name(w)),
        "grad with grad_req null");
    cr_assert_null(g);
    BU_OK(lam_param_set_grad_req(w, LAM_GRAD_ADD));
    cr_assert_eq(lam_param_grad_req(w), LAM_GRAD_ADD);
    BU_OK(lam_param_grad(w, &g));
    bu_assert_shape(lam_tensor_shape(g), lam_param_shape(w), "grad back with grad_req add");
    bu_assert_all(g, 0.0f, "grad back with grad_req add");
    lam_tensor_release(g);
    bu_assert_error(
        lam_param_set_grad_req(w, (lam_grad_req)7), LAM_ERR_INVALID_ARGUMENT,
        bu_fmt("%s: Invalid grad_req 7, expected write, add or null", lam_param_name(w)),
        "grad_req 7");
    bu_assert_error(
        lam_param_set_grad_req(w, LAM_GRAD_INVALID), LAM_ERR_INVALID_ARGUMENT,
        bu_fmt("%s: Invalid grad_req 0, expected write, add or null", lam_param_name(w)),
        "grad_req 0");
    cr_assert_eq(lam_param_grad_req(w), LAM_GRAD_ADD);
    /* The other parameter is untouched. */
    cr_assert_eq(lam_param_grad_req(bu_param(d, "bias")), LAM_GRAD_WRITE);
    lam_block_release(d);
    bu_assert_released();
}

Test(param, lr_and_wd_mult_default_to_one_and_are_settable) {
    lam_block *d = bu_layer("Dense", "units=4, in_units=3");
    lam_param *w = bu_param(d, "weight"), *b = bu_param(d, "bias");
    cr_assert_eq(lam_param_lr_mult(w), 1.0f);
    cr_assert_eq(lam_param_wd_mult(w), 1.0f);
    cr_assert_eq(lam_param_lr_mult(b), 1.0f);
    cr_assert_eq(lam_param_wd_mult(b), 1.0f);
    lam_param_set_lr_mult(w, 0.5f);
    lam_param_set_wd_mult(b, 0.0f);
    BU_OK(lam_block_initialize(d, NULL, NULL, 0));
    cr_assert_eq(lam_param_lr_mult(w), 0.5f);
    cr_assert_eq(lam_param_wd_mult(w), 1.0f);
    cr_assert_eq(lam_param_lr_mult(b), 1.0f);
    cr_assert_eq(lam_param_wd_mult(b), 0.0f);
    lam_block_release(d);
    bu_assert_released();
}

/* ---- collect_params ----------------------------------------------------------------------- */

static void assert_keys(const lam_param_list *l, const char *const *keys, size_t n) {
    cr_assert_eq(lam_param_list_count(l), n, "%zu parameters collected, expected %zu",
                 lam_param_list_count(l), n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(lam_param_list_key(l, i), keys[i], "key %zu", i);
    }
}

Test(collect_params, sequential_keys_are_index_and_local_name) {
    lam_block *net = mlp_seq();
    lam_param_list *l = NULL;
    BU_OK(lam_block_collect_params(net, NULL, &l));
    const char *keys[] = {"0.weight", "0.bias", "1.weight", "1.bias"};
    assert_keys(l, keys, 4);
    lam_block *d0 = lam_block_child_at(net, 0), *d1 = lam_block_child_at(net, 1);
    cr_assert_eq(lam_param_list_get(l, 0), bu_param(d0, "weight"));
    cr_assert_eq(lam_param_list_get(l, 3), bu_param(d1, "bias"));
    cr_assert_eq(lam_param_list_find(l, "1.weight"), bu_param(d1, "weight"));
    cr_assert_eq(lam_param_list_find(l, bu_fmt("%s_bias", lam_block_name(d0))),
                 bu_param(d0, "bias"));
    cr_assert_null(lam_param_list_find(l, "2.weight"));
    cr_assert_null(lam_param_list_find(l, "weight"));

    char title[64], buf[2048], want[2048];
    const char *s = lam_block_name(net), *a = lam_block_name(d0), *b = lam_block_name(d1);
    snprintf(title, sizeof title, "%s_", s);
    snprintf(want, sizeof want,
             "%s_ (\n"
             "  Parameter %s_weight (shape=(256, 20), dtype=float32)\n"
             "  Parameter %s_bias (shape=(256,), dtype=float32)\n"
             "  Parameter %s_weight (shape=(10, 256), dtype=float32)\n"
             "  Parameter %s_bias (shape=(10,), dtype=float32)\n"
             ")",
             s, a, a, b, b);
    cr_assert_str_eq(lam_param_list_format(l, title, buf, sizeof buf), want);
    lam_param_list_destroy(l);
    lam_block_release(net);
    bu_assert_released();
}

Test(collect_params, custom_and_nested_keys_use_child_names) {
    lam_block *mlp = custom("MLP");
    lam_block *hidden = bu_layer("Dense", "units=256, activation=relu");
    lam_block *output = bu_layer("Dense", "units=10");
    BU_OK(lam_block_register_child(mlp, "hidden", hidden));
    BU_OK(lam_block_register_child(mlp, "output", output));
    lam_block_release(hidden);
    lam_block_release(output);
    /* A parameter of the block itself comes before its children's. */
    lam_shape s = BU_SHAPE(20, 20);
    BU_OK(lam_block_param_new(mlp, "rand_weight", &s, NULL, NULL));
    lam_param_list *l = NULL;
    BU_OK(lam_block_collect_params(mlp, NULL, &l));
    const char *keys[] = {"rand_weight", "hidden.weight", "hidden.bias", "output.weight",
                          "output.bias"};
    assert_keys(l, keys, 5);
    lam_param_list_destroy(l);

    lam_block *nest = custom("NestMLP");
    lam_block *seq = bu_sequential();
    bu_add_layer(seq, "Dense", "units=64, activation=relu");
    bu_add_layer(seq, "Dense", "units=32, activation=relu");
    BU_OK(lam_block_register_child(nest, "net", seq));
    BU_OK(lam_block_register_child(nest, "mlp", mlp));
    lam_block_release(seq);
    lam_block_release(mlp);
    lam_block *top = bu_sequential();
    BU_OK(lam_sequential_add(top, nest));
    lam_block_release(nest);
    bu_add_layer(top, "Dense", "units=20");
    BU_OK(lam_block_collect_params(top, NULL, &l));
    const char *nested[] = {"0.net.0.weight",
                            "0.net.0.bias",
                            "0.net.1.weight",
                            "0.net.1.bias",
                            "0.mlp.rand_weight",
                            "0.mlp.hidden.weight",
                            "0.mlp.hidden.bias",
                            "0.mlp.output.weight",
                            "0.mlp.output.bias",
                            "1.weight",
                            "1.bias"};
    assert_keys(l, nested, 11);
    lam_param_list_destroy(l);
    BU_OK(lam_block_collect_params(nest, NULL, &l));
    cr_assert_str_eq(lam_param_list_key(l, 0), "net.0.weight");
    cr_assert_eq(lam_param_list_count(l), 9);
    lam_param_list_destroy(l);
    lam_block_release(top);
    bu_assert_released();
}

Test(collect_params, regex_selects_by_display_name_from_the_start) {
    lam_block *net = mlp_seq();
    lam_block *d0 = lam_block_child_at(net, 0), *d1 = lam_block_child_at(net, 1);
    lam_param_list *l = NULL;
    BU_OK(lam_block_collect_params(net, ".*weight", &l));
    const char *weights[] = {"0.weight", "1.weight"};
    assert_keys(l, weights, 2);
    cr_assert_eq(lam_param_list_get(l, 1), bu_param(d1, "weight"));
    lam_param_list_destroy(l);

    BU_OK(lam_block_collect_params(net, ".*bias", &l));
    const char *biases[] = {"0.bias", "1.bias"};
    assert_keys(l, biases, 2);
    lam_param_list_destroy(l);

    /* Like Gluon's select (re.match): anchored at the start of the display name. */
    BU_OK(lam_block_collect_params(net, bu_fmt("%s_.*", lam_block_name(d1)), &l));
    const char *second[] = {"1.weight", "1.bias"};
    assert_keys(l, second, 2);
    lam_param_list_destroy(l);
    BU_OK(lam_block_collect_params(net, "weight", &l));
    cr_assert_eq(lam_param_list_count(l), 0, "'weight' matched a name not starting with it");
    lam_param_list_destroy(l);
    BU_OK(lam_block_collect_params(net, "dense[0-9]+_(weight|bias)", &l));
    cr_assert_eq(lam_param_list_count(l), 4);
    lam_param_list_destroy(l);
    /* Structural keys are not what the expression sees. */
    BU_OK(lam_block_collect_params(net, "0\\.weight", &l));
    cr_assert_eq(lam_param_list_count(l), 0);
    lam_param_list_destroy(l);
    (void)d0;
    lam_block_release(net);
    bu_assert_released();
}

Test(collect_params, bad_regex_is_invalid_argument) {
    lam_block *net = mlp_seq();
    lam_param_list *l = (lam_param_list *)(void *)&l;
    bu_assert_error_prefix(lam_block_collect_params(net, "[", &l), LAM_ERR_INVALID_ARGUMENT,
                           "collect_params: Invalid regular expression '[', ", "regex [");
    cr_assert_null(l);
    bu_assert_error_prefix(lam_block_collect_params(net, "dense(", &l), LAM_ERR_INVALID_ARGUMENT,
                           "collect_params: Invalid regular expression 'dense(', ", "regex dense(");
    cr_assert_null(l);
    lam_block_release(net);
    bu_assert_released();
}

/* ---- constant ----------------------------------------------------------------------------- */

static const float const_values[6] = {0.5f, -1.0f, 2.0f, 3.25f, -0.125f, 7.0f};

Test(constant, keeps_its_value_through_initialize_and_reinit) {
    lam_block *fancy = custom("FancyMLP");
    lam_tensor *v = bu_tensor(BU_SHAPE(2, 3), const_values, 6);
    lam_param *c = NULL;
    BU_OK(lam_block_constant_new(fancy, "rand_weight", v, &c));
    cr_assert_not_null(c);
    lam_tensor_release(v); /* the constant holds a copy */
    cr_assert(lam_param_is_constant(c));
    cr_assert_eq(lam_param_grad_req(c), LAM_GRAD_NULL);
    cr_assert_str_eq(lam_param_name(c), bu_fmt("%s_rand_weight", lam_block_name(fancy)));
    char buf[256];
    cr_assert_str_eq(
        lam_param_format(c, buf, sizeof buf),
        bu_fmt("Constant %s_rand_weight (shape=(2, 3), dtype=float32)", lam_block_name(fancy)));

    const br_array want = {2, {2, 3}, 6, const_values};
    lam_initializer *one = NULL;
    BU_OK(lam_init_one(&one));
    BU_OK(lam_block_initialize(fancy, one, NULL, 0));
    lam_tensor *t = NULL;
    BU_OK(lam_param_data(c, &t));
    bu_assert_close(t, &want, 0, 0, "constant after initialize with One");
    lam_tensor_release(t);
    BU_OK(lam_block_initialize(fancy, one, NULL, 1));
    BU_OK(lam_param_data(c, &t));
    bu_assert_close(t, &want, 0, 0, "constant after force_reinit with One");
    lam_tensor_release(t);
    lam_initializer_release(one);
    lam_block_release(fancy);
    bu_assert_released();
}

Test(constant, has_no_gradient_and_refuses_grad_req) {
    lam_block *fancy = custom("FancyMLP");
    lam_tensor *v = bu_tensor(BU_SHAPE(2, 3), const_values, 6);
    lam_param *c = NULL;
    BU_OK(lam_block_constant_new(fancy, "rand_weight", v, &c));
    lam_tensor_release(v);
    BU_OK(lam_block_initialize(fancy, NULL, NULL, 0));
    lam_tensor *g = (lam_tensor *)(void *)&g;
    bu_assert_error(lam_param_grad(c, &g), LAM_ERR_STATE,
                    bu_fmt("%s: No gradient, the parameter is a constant", lam_param_name(c)),
                    "grad of a constant");
    cr_assert_null(g);
    const char *refuse =
        bu_fmt("%s: Constant parameter, its grad_req is always null", lam_param_name(c));
    char want[256];
    snprintf(want, sizeof want, "%s", refuse);
    bu_assert_error(lam_param_set_grad_req(c, LAM_GRAD_WRITE), LAM_ERR_INVALID_ARGUMENT, want,
                    "grad_req write on a constant");
    bu_assert_error(lam_param_set_grad_req(c, LAM_GRAD_ADD), LAM_ERR_INVALID_ARGUMENT, want,
                    "grad_req add on a constant");
    cr_assert_eq(lam_param_grad_req(c), LAM_GRAD_NULL);
    BU_OK(lam_param_set_grad_req(c, LAM_GRAD_NULL));
    lam_block_release(fancy);
    bu_assert_released();
}

Test(constant, is_listed_by_collect_params) {
    lam_block *fancy = custom("FancyMLP");
    lam_tensor *v = bu_tensor(BU_SHAPE(2, 3), const_values, 6);
    BU_OK(lam_block_constant_new(fancy, "rand_weight", v, NULL));
    lam_tensor_release(v);
    lam_block *dense = bu_layer("Dense", "units=3, activation=relu");
    BU_OK(lam_block_register_child(fancy, "dense", dense));
    lam_block_release(dense);
    lam_param_list *l = NULL;
    BU_OK(lam_block_collect_params(fancy, NULL, &l));
    const char *keys[] = {"rand_weight", "dense.weight", "dense.bias"};
    assert_keys(l, keys, 3);
    cr_assert(lam_param_is_constant(lam_param_list_get(l, 0)));
    cr_assert(!lam_param_is_constant(lam_param_list_get(l, 1)));
    lam_param_list_destroy(l);
    lam_block_release(fancy);
    bu_assert_released();
}

Test(constant, value_set_by_hand_survives_reinit) {
    lam_block *fancy = custom("FancyMLP");
    lam_tensor *v = bu_tensor(BU_SHAPE(2, 3), const_values, 6);
    lam_param *c = NULL;
    BU_OK(lam_block_constant_new(fancy, "rand_weight", v, &c));
    lam_tensor_release(v);
    BU_OK(lam_block_initialize(fancy, NULL, NULL, 0));
    const float other[6] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
    v = bu_tensor(BU_SHAPE(2, 3), other, 6);
    BU_OK(lam_param_set_data(c, v));
    lam_tensor_release(v);
    BU_OK(lam_block_initialize(fancy, NULL, NULL, 1));
    lam_tensor *t = NULL;
    BU_OK(lam_param_data(c, &t));
    const br_array want = {2, {2, 3}, 6, other};
    bu_assert_close(t, &want, 0, 0, "constant set by hand, after force_reinit");
    lam_tensor_release(t);
    lam_block_release(fancy);
    bu_assert_released();
}
