/*
 * Layer values against NumPy (ref/block_refs.h, written by ref/gen_block_refs.py): Dense for
 * every activation, without bias and with flatten on and off, MyDense, Centered, Activation,
 * and the chapter's two-layer MLP, all with weights set through lam_param_set_data.
 */
#include "block_util.h"

TestSuite(dense, .fini = bu_fini);
TestSuite(mydense, .fini = bu_fini);
TestSuite(centered, .fini = bu_fini);
TestSuite(activation, .fini = bu_fini);
TestSuite(mlp, .fini = bu_fini);

/* Runs `b` on `x` and compares with `want`. */
static void check_forward(lam_block *b, const br_array *x, const br_array *want, double rtol,
                          double atol, const char *what) {
    lam_tensor *in = bu_from_ref(x), *out = NULL;
    lam_status st = lam_block_call(b, in, &out);
    cr_assert_eq(st, LAM_OK, "%s: forward failed: %s (%s)", what, lam_status_string(st),
                 lam_last_error());
    bu_assert_close(out, want, rtol, atol, what);
    bu_assert_close(in, x, 0, 0, "the input after the forward");
    lam_tensor_release(in);
    lam_tensor_release(out);
}

/* A Dense with the given attributes and weights, initialized to something else first so that
 * set_data is what gives the values. */
static lam_block *dense_with(const char *attrs, const br_array *w, const br_array *b) {
    lam_block *d = bu_layer("Dense", attrs);
    lam_initializer *init = NULL;
    BU_OK(lam_init_constant(123.0f, &init));
    BU_OK(lam_block_initialize(d, init, NULL, 0));
    lam_initializer_release(init);
    bu_set_param(bu_param(d, "weight"), w);
    if (b != NULL) {
        bu_set_param(bu_param(d, "bias"), b);
    }
    return d;
}

/* ---- dense -------------------------------------------------------------------------------- */

Test(dense, matches_numpy_for_every_activation) {
    static const struct {
        const char *act;
        const br_array *want;
    } cases[] = {
        {"none", &br_dense_out_none},         {"relu", &br_dense_out_relu},
        {"sigmoid", &br_dense_out_sigmoid},   {"tanh", &br_dense_out_tanh},
        {"softrelu", &br_dense_out_softrelu},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char attrs[64], what[64];
        snprintf(attrs, sizeof attrs, "units=4, in_units=5, activation=%s", cases[i].act);
        snprintf(what, sizeof what, "Dense(4, activation=%s)", cases[i].act);
        lam_block *d = dense_with(attrs, &br_dense_w, &br_dense_b);
        check_forward(d, &br_dense_x, cases[i].want, BU_RTOL, BU_ATOL, what);
        lam_block_release(d);
    }
    bu_assert_released();
}

Test(dense, without_bias_matches_numpy) {
    lam_block *d = dense_with("units=4, in_units=5, use_bias=false", &br_dense_w, NULL);
    cr_assert_null(lam_block_param(d, "bias"));
    check_forward(d, &br_dense_x, &br_dense_out_nobias, BU_RTOL, BU_ATOL, "Dense(4, no bias)");
    lam_block_release(d);
    bu_assert_released();
}

Test(dense, flatten_true_flattens_trailing_axes) {
    lam_block *d = dense_with("units=4, in_units=12", &br_dense_flat_w, &br_dense_flat_b);
    check_forward(d, &br_dense3_x, &br_dense_flat_out, BU_RTOL, BU_ATOL,
                  "Dense(4, flatten=true) on (2, 3, 4)");
    lam_block_release(d);
    bu_assert_released();
}

Test(dense, flatten_false_applies_to_the_last_axis) {
    lam_block *d = dense_with("units=5, in_units=4, flatten=false, activation=tanh",
                              &br_dense_last_w, &br_dense_last_b);
    check_forward(d, &br_dense3_x, &br_dense_last_out, BU_RTOL, BU_ATOL,
                  "Dense(5, tanh, flatten=false) on (2, 3, 4)");
    lam_block_release(d);
    bu_assert_released();
}

Test(dense, deferred_layer_with_set_weights_matches_numpy) {
    lam_block *d = bu_layer("Dense", "units=4, activation=relu");
    BU_OK(lam_block_initialize(d, NULL, NULL, 0));
    bu_set_param(bu_param(d, "weight"), &br_dense_w); /* completes the shape (4, 5) */
    bu_set_param(bu_param(d, "bias"), &br_dense_b);
    check_forward(d, &br_dense_x, &br_dense_out_relu, BU_RTOL, BU_ATOL,
                  "deferred Dense(4, relu) with set weights");
    lam_block_release(d);
    bu_assert_released();
}

/* ---- mydense ------------------------------------------------------------------------------ */

Test(mydense, is_relu_of_x_dot_w_plus_b) {
    lam_block *m = bu_layer("MyDense", "units=3, in_units=5");
    BU_OK(lam_block_initialize(m, NULL, NULL, 0));
    bu_set_param(bu_param(m, "weight"), &br_mydense_w);
    bu_set_param(bu_param(m, "bias"), &br_mydense_b);
    check_forward(m, &br_mydense_x, &br_mydense_out, BU_RTOL, BU_ATOL, "MyDense(3, in_units=5)");

    lam_tensor *x4 = bu_ramp(BU_SHAPE(2, 4), 0.0f, 1.0f), *y = (lam_tensor *)(void *)&y;
    bu_assert_error(
        lam_block_call(m, x4, &y), LAM_ERR_SHAPE,
        bu_fmt("%s: Shape inconsistent, input has 4 features, in_units is 5", lam_block_name(m)),
        "MyDense on 4 features");
    cr_assert_null(y);
    lam_tensor_release(x4);
    lam_block_release(m);
    bu_assert_released();
}

/* ---- centered and activation -------------------------------------------------------------- */

Test(centered, subtracts_the_mean_of_all_elements) {
    lam_block *c = bu_layer("Centered", NULL);
    check_forward(c, &br_centered_x, &br_centered_out, BU_RTOL, BU_ATOL, "Centered()");
    /* The chapter's check: [1, 2, 3, 4, 5] -> [-2, -1, 0, 1, 2], exact. */
    const br_array x = {1, {5}, 5, (const float[]){1.0f, 2.0f, 3.0f, 4.0f, 5.0f}};
    const br_array want = {1, {5}, 5, (const float[]){-2.0f, -1.0f, 0.0f, 1.0f, 2.0f}};
    check_forward(c, &x, &want, 0, 0, "Centered()([1, 2, 3, 4, 5])");
    lam_block_release(c);
    bu_assert_released();
}

Test(activation, matches_numpy_for_every_act_type) {
    static const struct {
        const char *act;
        const br_array *want;
        double rtol;
    } cases[] = {
        {"relu", &br_act_out_relu, 0.0},
        {"sigmoid", &br_act_out_sigmoid, BU_RTOL},
        {"tanh", &br_act_out_tanh, BU_RTOL},
        {"softrelu", &br_act_out_softrelu, BU_RTOL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char attrs[64], what[64];
        snprintf(attrs, sizeof attrs, "act_type=%s", cases[i].act);
        snprintf(what, sizeof what, "Activation(%s)", cases[i].act);
        lam_block *a = bu_layer("Activation", attrs);
        check_forward(a, &br_act_x, cases[i].want, cases[i].rtol,
                      cases[i].rtol == 0.0 ? 0.0 : BU_ATOL, what);
        lam_block_release(a);
    }
    bu_assert_released();
}

/* ---- mlp ---------------------------------------------------------------------------------- */

static void set_mlp_weights(lam_block *hidden, lam_block *output) {
    bu_set_param(bu_param(hidden, "weight"), &br_mlp_w1);
    bu_set_param(bu_param(hidden, "bias"), &br_mlp_b1);
    bu_set_param(bu_param(output, "weight"), &br_mlp_w2);
    bu_set_param(bu_param(output, "bias"), &br_mlp_b2);
}

Test(mlp, sequential_matches_numpy) {
    lam_block *net = bu_sequential();
    lam_block *hidden = bu_add_layer(net, "Dense", "units=256, activation=relu");
    lam_block *output = bu_add_layer(net, "Dense", "units=10");
    BU_OK(lam_block_initialize(net, NULL, NULL, 0));
    set_mlp_weights(hidden, output);
    check_forward(hidden, &br_mlp_x, &br_mlp_hidden, BU_RTOL_DOT, BU_ATOL_DOT,
                  "hidden layer of the MLP");
    check_forward(net, &br_mlp_x, &br_mlp_out, BU_RTOL_DOT, BU_ATOL_DOT, "MLP (20 -> 256 -> 10)");
    lam_block_release(net);
    bu_assert_released();
}

/* The chapter's MLP block: forward = output(hidden(x)). */
static lam_status mlp_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                              lam_tensor **out) {
    (void)state, (void)n;
    lam_tensor *h = NULL;
    lam_status st = lam_block_call(lam_block_child(self, "hidden"), in[0], &h);
    if (st != LAM_OK) {
        return st;
    }
    st = lam_block_call(lam_block_child(self, "output"), h, out);
    lam_tensor_release(h);
    return st;
}

Test(mlp, custom_block_matches_numpy) {
    lam_block *mlp = NULL;
    BU_OK(lam_block_create("MLP", mlp_forward, NULL, NULL, &mlp));
    lam_block *hidden = bu_layer("Dense", "units=256, activation=relu, in_units=20");
    lam_block *output = bu_layer("Dense", "units=10, in_units=256");
    BU_OK(lam_block_register_child(mlp, "hidden", hidden));
    BU_OK(lam_block_register_child(mlp, "output", output));
    BU_OK(lam_block_initialize(mlp, NULL, NULL, 0));
    set_mlp_weights(hidden, output);
    lam_block_release(hidden);
    lam_block_release(output);
    check_forward(mlp, &br_mlp_x, &br_mlp_out, BU_RTOL_DOT, BU_ATOL_DOT, "MLP block");
    lam_block_release(mlp);
    bu_assert_released();
}

Test(dense, flatten_false_on_a_vector_keeps_it_a_vector) {
    lam_block *d = dense_with("units=4, in_units=5, flatten=false", &br_dense_w, &br_dense_b);
    /* Row 0 of the (2, 5) input and of the NumPy result. */
    const br_array x = {1, {5}, 5, br_dense_x_data};
    const br_array want = {1, {4}, 4, br_dense_out_none_data};
    check_forward(d, &x, &want, BU_RTOL, BU_ATOL, "Dense(4, flatten=false) on a (5,) vector");
    lam_block_release(d);
    bu_assert_released();
}
