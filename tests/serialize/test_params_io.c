/*
 * Saving and loading parameters (Gluon's save_parameters / load_parameters): structural keys,
 * shared parameters stored once with an alias table, deferred models completed from the file,
 * strict loading that reports every problem in one message naming the option that relaxes it,
 * and a failed load that changes nothing.
 */
#include "ser_util.h"

TestSuite(params_io, .fini = su_fini);

static lam_block *layer(const char *attrs) {
    lam_block *b = NULL;
    SU_OK(lam_layer_create("Dense", attrs, &b));
    return b;
}

/* Appends a new Dense layer to seq; the returned pointer is borrowed from seq. */
static lam_block *add(lam_block *seq, const char *attrs) {
    lam_block *b = layer(attrs);
    SU_OK(lam_sequential_add(seq, b));
    lam_block_release(b);
    return b;
}

static lam_block *seq(void) {
    lam_block *s = NULL;
    SU_OK(lam_sequential_create(&s));
    return s;
}

static lam_param *param(lam_block *net, size_t child, const char *name) {
    lam_block *c = lam_block_child_at(net, child);
    cr_assert_not_null(c);
    lam_param *p = lam_block_param(c, name);
    cr_assert_not_null(p, "child %zu has no %s", child, name);
    return p;
}

static float *param_values(lam_param *p, size_t *n) {
    lam_tensor *t = NULL;
    SU_OK(lam_param_data(p, &t));
    *n = (size_t)lam_tensor_numel(t);
    float *v = su_values(t);
    lam_tensor_release(t);
    return v;
}

/* Writes value(k, i) = k + i / 64 into every parameter, k its index in collect order, so
 * every parameter holds distinct, exactly representable numbers. */
static void set_values(lam_block *net, float base) {
    lam_param_list *l = NULL;
    SU_OK(lam_block_collect_params(net, NULL, &l));
    for (size_t k = 0; k < lam_param_list_count(l); k++) {
        lam_tensor *t = NULL;
        SU_OK(lam_param_data(lam_param_list_get(l, k), &t));
        size_t n = (size_t)lam_tensor_numel(t);
        float *v = malloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++) {
            v[i] = base + (float)k + (float)i / 64.0f;
        }
        SU_OK(lam_tensor_write(t, v, n));
        free(v);
        lam_tensor_release(t);
    }
    lam_param_list_destroy(l);
}

/* Every parameter of a and b (in collect order) holds the same bits. */
static void assert_same_values(lam_block *a, lam_block *b) {
    lam_param_list *la = NULL, *lb = NULL;
    SU_OK(lam_block_collect_params(a, NULL, &la));
    SU_OK(lam_block_collect_params(b, NULL, &lb));
    cr_assert_eq(lam_param_list_count(la), lam_param_list_count(lb));
    for (size_t k = 0; k < lam_param_list_count(la); k++) {
        cr_assert_str_eq(lam_param_list_key(la, k), lam_param_list_key(lb, k));
        size_t na, nb;
        float *va = param_values(lam_param_list_get(la, k), &na);
        float *vb = param_values(lam_param_list_get(lb, k), &nb);
        cr_assert_eq(na, nb);
        cr_assert(memcmp(va, vb, na * sizeof *va) == 0, "%s differs", lam_param_list_key(la, k));
        cr_assert(lam_shape_equal(lam_param_shape(lam_param_list_get(la, k)),
                                  lam_param_shape(lam_param_list_get(lb, k))));
        free(va);
        free(vb);
    }
    lam_param_list_destroy(la);
    lam_param_list_destroy(lb);
}

static lam_block *mlp(const char *in_units) {
    lam_block *net = seq();
    add(net, su_fmt("units=4, activation=relu%s", in_units ? in_units : ""));
    add(net, in_units ? "units=2, in_units=4" : "units=2");
    return net;
}

Test(params_io, round_trip_is_bit_exact_under_structural_keys) {
    lam_block *a = mlp(", in_units=3");
    SU_OK(lam_block_initialize(a, NULL, NULL, 0));
    set_values(a, 0.5f);
    const char *path = su_path("mlp.safetensors");
    SU_OK(lam_block_save_parameters(a, path));

    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(path, NULL, &d));
    const char *keys[4] = {"0.weight", "0.bias", "1.weight", "1.bias"};
    cr_assert_eq(lam_tensor_dict_count(d), 4);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(lam_tensor_dict_name(d, i), keys[i]);
    }
    cr_assert_str_eq(lam_tensor_dict_metadata(d, "lamina.kind"), "parameters");
    cr_assert_null(lam_tensor_dict_metadata(d, "lamina.aliases"));
    /* 0.bias holds 1 + i/64 (k = 1). */
    float bias[4] = {1.5f, 1.5f + 1.0f / 64, 1.5f + 2.0f / 64, 1.5f + 3.0f / 64};
    su_assert_bits(lam_tensor_dict_find(d, "0.bias"), bias, 4, "0.bias");
    lam_tensor_dict_destroy(d);

    lam_block *b = mlp(", in_units=3");
    SU_OK(lam_block_initialize(b, NULL, NULL, 0));
    SU_OK(lam_block_load_parameters(b, path, NULL));
    assert_same_values(a, b);
    lam_block_release(a);
    lam_block_release(b);
    su_cleanup();
}

Test(params_io, load_writes_into_the_existing_data_tensor) {
    lam_block *a = mlp(", in_units=3");
    SU_OK(lam_block_initialize(a, NULL, NULL, 0));
    set_values(a, 0.0f);
    const char *path = su_path("mlp.safetensors");
    SU_OK(lam_block_save_parameters(a, path));
    lam_block *b = mlp(", in_units=3");
    SU_OK(lam_block_initialize(b, NULL, NULL, 0));
    lam_tensor *before = NULL, *after = NULL;
    SU_OK(lam_param_data(param(b, 0, "weight"), &before));
    SU_OK(lam_block_load_parameters(b, path, NULL));
    SU_OK(lam_param_data(param(b, 0, "weight"), &after));
    cr_assert_eq(before, after, "the data tensor was replaced");
    float want[3] = {0.0f, 1.0f / 64, 2.0f / 64};
    float *v = su_values(after);
    cr_assert(memcmp(v, want, sizeof want) == 0);
    free(v);
    lam_tensor_release(before);
    lam_tensor_release(after);
    lam_block_release(a);
    lam_block_release(b);
    su_cleanup();
}

/* The chapter's shared net: Dense(8), shared Dense(8), the same layer again, Dense(3). */
static lam_block *shared_net(bool share) {
    lam_block *net = seq();
    add(net, "units=8, activation=relu, in_units=4");
    lam_block *shared = add(net, "units=8, activation=relu, in_units=8");
    lam_block *again = NULL;
    if (share) {
        SU_OK(lam_layer_create_shared("Dense", "units=8, activation=relu, in_units=8", shared,
                                      &again));
    } else {
        again = layer("units=8, activation=relu, in_units=8");
    }
    SU_OK(lam_sequential_add(net, again));
    lam_block_release(again);
    add(net, "units=3, in_units=8");
    SU_OK(lam_block_initialize(net, NULL, NULL, 0));
    return net;
}

Test(params_io, shared_parameters_are_stored_once_and_stay_shared) {
    lam_block *a = shared_net(true);
    set_values(a, 0.25f);
    const char *path = su_path("shared.safetensors");
    SU_OK(lam_block_save_parameters(a, path));
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(path, NULL, &d));
    const char *keys[6] = {"0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"};
    cr_assert_eq(lam_tensor_dict_count(d), 6);
    for (size_t i = 0; i < 6; i++) {
        cr_assert_str_eq(lam_tensor_dict_name(d, i), keys[i]);
    }
    cr_assert_str_eq(lam_tensor_dict_metadata(d, "lamina.aliases"),
                     "{\"2.weight\":\"1.weight\",\"2.bias\":\"1.bias\"}");
    lam_tensor_dict_destroy(d);

    lam_block *b = shared_net(true);
    SU_OK(lam_block_load_parameters(b, path, NULL));
    assert_same_values(a, b);
    cr_assert_eq(param(b, 1, "weight"), param(b, 2, "weight"), "sharing lost");
    lam_tensor *t1 = NULL, *t2 = NULL;
    SU_OK(lam_param_data(param(b, 1, "weight"), &t1));
    SU_OK(lam_param_data(param(b, 2, "weight"), &t2));
    cr_assert_eq(t1, t2);
    lam_tensor_release(t1);
    lam_tensor_release(t2);
    lam_block_release(a);
    lam_block_release(b);
    su_cleanup();
}

Test(params_io, an_alias_fills_a_model_without_that_sharing) {
    lam_block *a = shared_net(true);
    set_values(a, 0.25f);
    const char *path = su_path("shared.safetensors");
    SU_OK(lam_block_save_parameters(a, path));
    lam_block *b = shared_net(false);
    SU_OK(lam_block_load_parameters(b, path, NULL));
    cr_assert_neq(param(b, 1, "weight"), param(b, 2, "weight"));
    const char *names[2] = {"weight", "bias"};
    for (int k = 0; k < 2; k++) {
        size_t n1, n2, n0;
        float *v0 = param_values(param(a, 1, names[k]), &n0);
        float *v1 = param_values(param(b, 1, names[k]), &n1);
        float *v2 = param_values(param(b, 2, names[k]), &n2);
        cr_assert(n0 == n1 && n1 == n2);
        cr_assert(memcmp(v0, v1, n1 * sizeof *v1) == 0);
        cr_assert(memcmp(v0, v2, n1 * sizeof *v1) == 0, "2.%s not filled from 1.%s", names[k],
                  names[k]);
        free(v0);
        free(v1);
        free(v2);
    }
    lam_block_release(a);
    lam_block_release(b);
    su_cleanup();
}

Test(params_io, a_shared_model_loads_a_file_without_aliases) {
    lam_block *a = shared_net(false);
    set_values(a, 0.0f);
    const char *path = su_path("plain.safetensors");
    SU_OK(lam_block_save_parameters(a, path));
    lam_block *b = shared_net(true);
    SU_OK(lam_block_load_parameters(b, path, NULL));
    /* The shared parameter takes the first key that reaches it, 1.weight (k = 2). */
    size_t n;
    float *v = param_values(param(b, 2, "weight"), &n);
    cr_assert_eq(v[0], 2.0f);
    cr_assert_eq(v[1], 2.0f + 1.0f / 64);
    free(v);
    lam_block_release(a);
    lam_block_release(b);
    su_cleanup();
}

Test(params_io, a_deferred_model_takes_its_shapes_from_the_file) {
    lam_block *a = mlp(", in_units=3");
    SU_OK(lam_block_initialize(a, NULL, NULL, 0));
    set_values(a, -1.0f);
    const char *path = su_path("mlp.safetensors");
    SU_OK(lam_block_save_parameters(a, path));

    lam_block *b = mlp(NULL);
    SU_OK(lam_block_initialize(b, NULL, NULL, 0));
    cr_assert_not(lam_param_is_initialized(param(b, 0, "weight")));
    SU_OK(lam_block_load_parameters(b, path, NULL));
    int64_t w0[2] = {4, 3};
    lam_shape want = su_shape(2, w0);
    cr_assert(lam_shape_equal(lam_param_shape(param(b, 0, "weight")), &want));
    cr_assert(lam_param_is_initialized(param(b, 0, "weight")));
    assert_same_values(a, b);

    /* Same forward as the source model: initialization is complete. */
    float x[3] = {0.5f, -1.0f, 2.0f};
    int64_t sx[2] = {1, 3};
    lam_tensor *in = su_tensor(2, sx, x), *ya = NULL, *yb = NULL;
    SU_OK(lam_block_call(a, in, &ya));
    SU_OK(lam_block_call(b, in, &yb));
    float *va = su_values(ya), *vb = su_values(yb);
    cr_assert(memcmp(va, vb, 2 * sizeof *va) == 0);
    free(va);
    free(vb);
    lam_tensor_release(in);
    lam_tensor_release(ya);
    lam_tensor_release(yb);

    /* ... and saving it again gives the same file, byte for byte. */
    const char *again = su_path("again.safetensors");
    SU_OK(lam_block_save_parameters(b, again));
    size_t n1, n2;
    uint8_t *f1 = su_read_file(path, &n1), *f2 = su_read_file(again, &n2);
    cr_assert(n1 == n2 && memcmp(f1, f2, n1) == 0);
    free(f1);
    free(f2);
    lam_block_release(a);
    lam_block_release(b);
    su_cleanup();
}

Test(params_io, a_deferred_model_round_trips_after_its_first_forward) {
    lam_block *a = mlp(NULL);
    SU_OK(lam_block_initialize(a, NULL, NULL, 0));
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t sx[2] = {2, 3};
    lam_tensor *in = su_tensor(2, sx, x), *y = NULL;
    SU_OK(lam_block_call(a, in, &y));
    lam_tensor_release(y);
    lam_tensor_release(in);
    const char *path = su_path("deferred.safetensors");
    SU_OK(lam_block_save_parameters(a, path));
    lam_block *b = mlp(NULL);
    SU_OK(lam_block_load_parameters(b, path, NULL)); /* never initialized: fine too */
    assert_same_values(a, b);
    lam_block_release(a);
    lam_block_release(b);
    su_cleanup();
}

Test(params_io, strict_load_reports_every_problem_in_one_message) {
    /* The example, file and model as it describes them. */
    cr_assert_eq(chdir(su_tmpdir()), 0);
    int64_t s1[2] = {256, 20}, s2[1] = {1};
    lam_tensor *w = NULL, *e = NULL;
    lam_shape sh1 = su_shape(2, s1), sh2 = su_shape(1, s2);
    SU_OK(lam_tensor_full(NULL, &sh1, 1.0f, &w));
    SU_OK(lam_tensor_full(NULL, &sh2, 1.0f, &e));
    const char *names[2] = {"0.weight", "extra.w"};
    lam_tensor *ts[2] = {w, e};
    SU_OK(lam_save_dict("mlp.safetensors", names, ts, 2));
    lam_tensor_release(w);
    lam_tensor_release(e);

    lam_block *net = seq();
    add(net, "units=256, in_units=10");
    SU_OK(lam_block_initialize(net, NULL, NULL, 0));
    su_assert_error(lam_block_load_parameters(net, "mlp.safetensors", NULL), LAM_ERR_SHAPE,
                    "loading 'mlp.safetensors': 3 problems: missing 0.bias (allow_missing skips "
                    "it); unexpected extra.w (ignore_extra skips it); 0.weight: Shape mismatch, "
                    "file has (256, 20), model expects (256, 10)",
                    "the issue's example");
    lam_load_options o = LAM_LOAD_OPTIONS_INIT;
    o.allow_missing = 1;
    o.ignore_extra = 1;
    su_assert_error(lam_block_load_parameters(net, "mlp.safetensors", &o), LAM_ERR_SHAPE,
                    "loading 'mlp.safetensors': 0.weight: Shape mismatch, file has (256, 20), "
                    "model expects (256, 10)",
                    "options relax the rest");
    lam_block_release(net);
    su_cleanup();
}

Test(params_io, each_problem_alone_names_its_option) {
    lam_block *a = mlp(", in_units=3");
    SU_OK(lam_block_initialize(a, NULL, NULL, 0));
    set_values(a, 0.0f);
    const char *path = su_path("mlp.safetensors");
    SU_OK(lam_block_save_parameters(a, path));

    /* A model with one more layer: 2.weight and 2.bias are missing. */
    lam_block *bigger = mlp(", in_units=3");
    add(bigger, "units=5, in_units=2");
    SU_OK(lam_block_initialize(bigger, NULL, NULL, 0));
    su_assert_error(lam_block_load_parameters(bigger, path, NULL), LAM_ERR_NOT_FOUND,
                    su_fmt("loading '%s': 2 problems: missing 2.weight (allow_missing skips it); "
                           "missing 2.bias (allow_missing skips it)",
                           path),
                    "missing");
    size_t n;
    float *before = param_values(param(bigger, 2, "weight"), &n);
    lam_load_options o = LAM_LOAD_OPTIONS_INIT;
    o.allow_missing = 1;
    SU_OK(lam_block_load_parameters(bigger, path, &o));
    float *after = param_values(param(bigger, 2, "weight"), &n);
    cr_assert(memcmp(before, after, n * sizeof *after) == 0, "a missing parameter changed");
    free(before);
    free(after);
    lam_block_release(bigger);

    /* A model with one layer less: 1.weight and 1.bias are unexpected. */
    lam_block *smaller = seq();
    add(smaller, "units=4, activation=relu, in_units=3");
    SU_OK(lam_block_initialize(smaller, NULL, NULL, 0));
    su_assert_error(lam_block_load_parameters(smaller, path, NULL), LAM_ERR_NOT_FOUND,
                    su_fmt("loading '%s': 2 problems: unexpected 1.weight (ignore_extra skips it); "
                           "unexpected 1.bias (ignore_extra skips it)",
                           path),
                    "unexpected");
    lam_load_options o2 = LAM_LOAD_OPTIONS_INIT;
    o2.ignore_extra = 1;
    SU_OK(lam_block_load_parameters(smaller, path, &o2));
    float *w = param_values(param(smaller, 0, "weight"), &n);
    cr_assert_eq(w[5], 5.0f / 64);
    free(w);
    lam_block_release(smaller);
    lam_block_release(a);
    su_cleanup();
}

Test(params_io, an_unexpected_alias_is_reported_as_such) {
    lam_block *a = shared_net(true);
    const char *path = su_path("shared.safetensors");
    SU_OK(lam_block_save_parameters(a, path));
    lam_block *b = seq();
    add(b, "units=8, activation=relu, in_units=4");
    add(b, "units=8, activation=relu, in_units=8");
    SU_OK(lam_block_initialize(b, NULL, NULL, 0));
    su_assert_error(lam_block_load_parameters(b, path, NULL), LAM_ERR_NOT_FOUND,
                    su_fmt("loading '%s': 4 problems: unexpected 3.weight (ignore_extra skips "
                           "it); unexpected 3.bias (ignore_extra skips it); unexpected 2.weight "
                           "(alias of 1.weight; ignore_extra skips it); unexpected 2.bias (alias "
                           "of 1.bias; ignore_extra skips it)",
                           path),
                    "aliases");
    lam_block_release(a);
    lam_block_release(b);
    su_cleanup();
}

/* Dtypes: a file tensor that converts (F16 here) loads; one that does not is a problem. */
Test(params_io, dtype_mismatch_is_reported_and_f16_converts) {
    const char *path = su_path("dtypes.safetensors");
    /* 0.weight (1, 2) F16 [1.5, -2], 0.bias (1,) BOOL [1]: made by hand. */
    const uint8_t data[6] = {0x00, 0x3E, 0x00, 0xC0, 0x01, 0x00};
    su_write_st(path,
                "{\"0.weight\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[0,4]},"
                "\"0.bias\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[4,5]},"
                "\"pad\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[5,6]}}",
                data, sizeof data);
    lam_block *net = seq();
    add(net, "units=1, in_units=2");
    SU_OK(lam_block_initialize(net, NULL, NULL, 0));
    lam_load_options o = LAM_LOAD_OPTIONS_INIT;
    o.ignore_extra = 1;
    su_assert_error(lam_block_load_parameters(net, path, &o), LAM_ERR_DTYPE,
                    su_fmt("loading '%s': 0.bias: Dtype mismatch, file has BOOL, model expects "
                           "float32 (F32, F16, BF16, F64, I32, I64 or U8 convert)",
                           path),
                    "BOOL");
    o.allow_missing = 1;
    lam_block_release(net);

    net = seq();
    add(net, "units=1, in_units=2, use_bias=0");
    SU_OK(lam_block_initialize(net, NULL, NULL, 0));
    SU_OK(lam_block_load_parameters(net, path, &o));
    size_t n;
    float *w = param_values(param(net, 0, "weight"), &n);
    cr_assert_eq(n, 2);
    cr_assert_eq(w[0], 1.5f);
    cr_assert_eq(w[1], -2.0f);
    free(w);
    lam_block_release(net);
    su_cleanup();
}

Test(params_io, a_failed_load_changes_nothing) {
    lam_block *a = mlp(", in_units=3");
    SU_OK(lam_block_initialize(a, NULL, NULL, 0));
    set_values(a, 10.0f);
    const char *path = su_path("mlp.safetensors");
    SU_OK(lam_block_save_parameters(a, path));

    /* Same keys, but the second layer is wider: 1.weight and 1.bias do not fit; 0.* would. */
    lam_block *b = seq();
    add(b, "units=4, activation=relu, in_units=3");
    add(b, "units=3, in_units=4");
    SU_OK(lam_block_initialize(b, NULL, NULL, 0));
    set_values(b, 0.0f);
    lam_status st = lam_block_load_parameters(b, path, NULL);
    cr_assert_eq(st, LAM_ERR_SHAPE, "%s", lam_last_error());
    size_t n;
    float *w = param_values(param(b, 0, "weight"), &n);
    cr_assert_eq(w[0], 0.0f, "0.weight was loaded by a failed load");
    free(w);

    /* A deferred model stays deferred after a failed load. */
    lam_block *c = seq();
    add(c, "units=4, activation=relu");
    add(c, "units=3");
    SU_OK(lam_block_initialize(c, NULL, NULL, 0));
    cr_assert_eq(lam_block_load_parameters(c, path, NULL), LAM_ERR_SHAPE);
    cr_assert_not(lam_param_is_initialized(param(c, 0, "weight")));
    cr_assert_eq(lam_param_shape(param(c, 0, "weight"))->dims[1], LAM_DIM_UNKNOWN);
    lam_block_release(a);
    lam_block_release(b);
    lam_block_release(c);
    su_cleanup();
}

Test(params_io, load_puts_data_on_the_given_context) {
    lam_block *a = mlp(", in_units=3");
    SU_OK(lam_block_initialize(a, NULL, NULL, 0));
    const char *path = su_path("mlp.safetensors");
    SU_OK(lam_block_save_parameters(a, path));
    lam_ctx *ctx = NULL;
    SU_OK(lam_ctx_get("cpu:0", &ctx));
    lam_block *b = mlp(NULL);
    lam_load_options o = LAM_LOAD_OPTIONS_INIT;
    o.ctx = ctx;
    SU_OK(lam_block_load_parameters(b, path, &o));
    lam_tensor *t = NULL;
    SU_OK(lam_param_data(param(b, 1, "bias"), &t));
    cr_assert_eq(lam_tensor_ctx(t), ctx);
    lam_tensor_release(t);
    lam_block_release(a);
    lam_block_release(b);
    su_cleanup();
}

Test(params_io, save_refuses_uninitialized_parameters_by_name) {
    lam_block *net = mlp(", in_units=3");
    const char *path = su_path("x.safetensors");
    su_assert_error(
        lam_block_save_parameters(net, path), LAM_ERR_STATE,
        su_fmt("saving '%s': 0.weight (%s): Not initialized, call lam_block_initialize() (or load "
               "parameters) first",
               path, lam_param_name(param(net, 0, "weight"))),
        "uninitialized");
    lam_block *d = mlp(NULL);
    SU_OK(lam_block_initialize(d, NULL, NULL, 0));
    su_assert_error(lam_block_save_parameters(d, path), LAM_ERR_STATE,
                    su_fmt("saving '%s': 0.weight (%s): Not initialized, its shape is not known "
                           "yet; run a forward pass first",
                           path, lam_param_name(param(d, 0, "weight"))),
                    "deferred");
    cr_assert_eq(su_dir_count(), 0);
    lam_block_release(net);
    lam_block_release(d);
    su_cleanup();
}

Test(params_io, a_corrupt_alias_table_is_refused) {
    const char *path = su_path("alias.safetensors");
    const float v[1] = {1};
    su_write_st(path,
                "{\"__metadata__\":{\"lamina.aliases\":\"{\\\"2.weight\\\":\\\"9.weight\\\"}\"},"
                "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]}}",
                v, sizeof v);
    lam_block *net = seq();
    add(net, "units=1, in_units=1, use_bias=0");
    su_assert_error(lam_block_load_parameters(net, path, NULL), LAM_ERR_FORMAT,
                    su_fmt("loading '%s': Corrupt header, metadata lamina.aliases maps '2.weight' "
                           "to something that is not a tensor of the file",
                           path),
                    "alias");
    su_write_st(path,
                "{\"__metadata__\":{\"lamina.aliases\":\"[1]\"},"
                "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]}}",
                v, sizeof v);
    su_assert_error(lam_block_load_parameters(net, path, NULL), LAM_ERR_FORMAT,
                    su_fmt("loading '%s': Corrupt header, metadata lamina.aliases is not a JSON "
                           "object",
                           path),
                    "alias not an object");
    lam_block_release(net);
    su_cleanup();
}

/* Loading onto another context moves the data there (the gradient buffer follows). */
Test(params_io, load_moves_parameters_to_another_context) {
    lam_ctx *gpu = NULL;
    if (lam_ctx_get("vulkan", &gpu) != LAM_OK) {
        cr_skip("no second context to move to: %s", lam_last_error());
    }
    lam_block *a = mlp(", in_units=3");
    SU_OK(lam_block_initialize(a, NULL, NULL, 0));
    set_values(a, 3.0f);
    const char *path = su_path("mlp.safetensors");
    SU_OK(lam_block_save_parameters(a, path));
    lam_block *b = mlp(", in_units=3");
    SU_OK(lam_block_initialize(b, NULL, NULL, 0));
    lam_load_options o = LAM_LOAD_OPTIONS_INIT;
    o.ctx = gpu;
    SU_OK(lam_block_load_parameters(b, path, &o));
    lam_tensor *t = NULL, *g = NULL;
    SU_OK(lam_param_data(param(b, 0, "weight"), &t));
    SU_OK(lam_param_grad(param(b, 0, "weight"), &g));
    cr_assert_eq(lam_tensor_ctx(t), gpu, "data on %s", lam_ctx_name(lam_tensor_ctx(t)));
    cr_assert_eq(lam_tensor_ctx(g), gpu, "grad on %s", lam_ctx_name(lam_tensor_ctx(g)));
    lam_tensor_release(t);
    lam_tensor_release(g);
    assert_same_values(a, b);

    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(path, gpu, &d));
    cr_assert_eq(lam_tensor_ctx(lam_tensor_dict_get(d, 0)), gpu);
    lam_tensor_dict_destroy(d);
    lam_block_release(a);
    lam_block_release(b);
    su_cleanup();
}
