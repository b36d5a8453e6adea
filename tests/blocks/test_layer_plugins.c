/*
 * Layer blocks from plugins by name: attribute parsing and its errors, and the model summary
 * (Gluon 1.x's repr) of layers, Sequentials and custom blocks.
 *
 * Attribute orders are those of the schemas in plugins/layers/<name>/<name>.c; summaries are
 * the strings Gluon 1.x prints for the same models.
 */
#include "block_util.h"

TestSuite(layer, .fini = bu_fini);
TestSuite(summary, .fini = bu_fini);

/* A poison value for `out`: a failing call must set it back to NULL. */
static char poison_byte;
#define POISON ((lam_block *)(void *)&poison_byte)

static void assert_create_error(const char *type, const char *attrs, lam_status want,
                                const char *msg) {
    lam_block *b = POISON;
    char what[256];
    snprintf(what, sizeof what, "lam_layer_create(%s, \"%s\")", type, attrs ? attrs : "(null)");
    bu_assert_error(lam_layer_create(type, attrs, &b), want, msg, what);
    cr_assert_null(b, "%s: out is not NULL after a failure", what);
}

/* ---- layer -------------------------------------------------------------------------------- */

Test(layer, create_by_name_applies_attributes) {
    lam_block *d = bu_layer("Dense", "units=256, activation=relu, in_units=20");
    cr_assert_str_eq(lam_block_type(d), "Dense");
    bu_name_index(lam_block_name(d), "dense");
    cr_assert_eq(lam_block_child_count(d), 0);
    lam_shape w = BU_SHAPE(256, 20), b = BU_SHAPE(256);
    bu_assert_shape(lam_param_shape(bu_param(d, "weight")), &w, "weight");
    bu_assert_shape(lam_param_shape(bu_param(d, "bias")), &b, "bias");
    cr_assert_null(lam_block_param(d, "gamma"));
    lam_block_release(d);

    lam_block *nb = bu_layer("Dense", "  units = 3 ,use_bias = FALSE,  ");
    cr_assert_null(lam_block_param(nb, "bias"), "use_bias=FALSE still declared a bias");
    lam_shape w3 = BU_SHAPE(3, LAM_DIM_UNKNOWN);
    bu_assert_shape(lam_param_shape(bu_param(nb, "weight")), &w3, "weight without in_units");
    lam_block_release(nb);

    lam_block *nb0 = bu_layer("Dense", "units=3, use_bias=0");
    cr_assert_null(lam_block_param(nb0, "bias"), "use_bias=0 still declared a bias");
    lam_block_release(nb0);

    lam_block *m = bu_layer("MyDense", "units=3, in_units=5");
    cr_assert_str_eq(lam_block_type(m), "MyDense");
    bu_name_index(lam_block_name(m), "mydense");
    lam_shape mw = BU_SHAPE(5, 3); /* MyDense keeps (in_units, units) */
    bu_assert_shape(lam_param_shape(bu_param(m, "weight")), &mw, "MyDense weight");
    lam_block_release(m);
    bu_assert_released();
}

Test(layer, type_list_has_the_chapter_layers) {
    const char *want[4] = {"Dense", "MyDense", "Centered", "Activation"};
    size_t n = lam_layer_type_count();
    cr_assert_geq(n, 4);
    for (int i = 0; i < 4; i++) {
        int found = 0;
        for (size_t k = 0; k < n; k++) {
            found = found || strcmp(lam_layer_type_name(k), want[i]) == 0;
        }
        cr_assert(found, "layer type %s is not loaded", want[i]);
    }
    cr_assert_null(lam_layer_type_name(n));
    bu_assert_released();
}

Test(layer, unknown_type_lists_loaded_types) {
    char expected[1024] = "NoSuchConv2D: Unknown layer type, loaded types: ";
    size_t n = lam_layer_type_count();
    for (size_t k = 0; k < n; k++) {
        strcat(expected, k ? ", " : "");
        strcat(expected, lam_layer_type_name(k));
    }
    assert_create_error("NoSuchConv2D", "channels=3", LAM_ERR_NOT_FOUND, expected);
    const char *m = lam_last_error();
    cr_assert(strstr(m, "Dense") && strstr(m, "MyDense") && strstr(m, "Centered") &&
                  strstr(m, "Activation"),
              "message does not list every chapter layer: %s", m);
    /* Type names are case-sensitive. */
    cr_assert_eq(lam_layer_create("dense", "units=2", &(lam_block *){NULL}), LAM_ERR_NOT_FOUND);
    bu_assert_released();
}

Test(layer, unknown_attribute_lists_valid_ones) {
    assert_create_error("Dense", "unit=10", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Unknown attribute 'unit', valid attributes: units, activation, "
                        "use_bias, in_units, flatten, weight_initializer, bias_initializer");
    assert_create_error("MyDense", "units=3, in_units=5, bias=1", LAM_ERR_INVALID_ARGUMENT,
                        "MyDense: Unknown attribute 'bias', valid attributes: units, in_units");
    assert_create_error("Activation", "act=relu", LAM_ERR_INVALID_ARGUMENT,
                        "Activation: Unknown attribute 'act', valid attributes: act_type");
    assert_create_error("Centered", "axis=1", LAM_ERR_INVALID_ARGUMENT,
                        "Centered: Unknown attribute 'axis', valid attributes: none");
    bu_assert_released();
}

Test(layer, missing_required_attribute_is_named) {
    assert_create_error("Dense", NULL, LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Missing attribute 'units' (required)");
    assert_create_error("Dense", "activation=relu", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Missing attribute 'units' (required)");
    assert_create_error("MyDense", "units=3", LAM_ERR_INVALID_ARGUMENT,
                        "MyDense: Missing attribute 'in_units' (required)");
    assert_create_error("Activation", "", LAM_ERR_INVALID_ARGUMENT,
                        "Activation: Missing attribute 'act_type' (required)");
    bu_assert_released();
}

Test(layer, bad_int_value_is_rejected) {
    assert_create_error("Dense", "units=ten", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Invalid value for 'units', expected an integer, got 'ten'");
    assert_create_error("Dense", "units=2.5", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Invalid value for 'units', expected an integer, got '2.5'");
    assert_create_error("Dense", "units=", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Missing value for attribute 'units', expected an integer");
    assert_create_error("MyDense", "units=3, in_units=5x", LAM_ERR_INVALID_ARGUMENT,
                        "MyDense: Invalid value for 'in_units', expected an integer, got '5x'");
    bu_assert_released();
}

Test(layer, bad_bool_value_is_rejected) {
    assert_create_error("Dense", "units=2, use_bias=yes", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Invalid value for 'use_bias', expected true or false, got 'yes'");
    assert_create_error("Dense", "units=2, flatten=2", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Invalid value for 'flatten', expected true or false, got '2'");
    bu_assert_released();
}

Test(layer, bad_enum_value_is_rejected) {
    assert_create_error("Dense", "units=2, activation=gelu", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Invalid value for 'activation', expected one of "
                        "none|relu|sigmoid|tanh|softrelu, got 'gelu'");
    assert_create_error("Dense", "units=2, activation=Relu", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Invalid value for 'activation', expected one of "
                        "none|relu|sigmoid|tanh|softrelu, got 'Relu'");
    assert_create_error("Activation", "act_type=elu", LAM_ERR_INVALID_ARGUMENT,
                        "Activation: Invalid value for 'act_type', expected one of "
                        "relu|sigmoid|tanh|softrelu, got 'elu'");
    bu_assert_released();
}

Test(layer, repeated_or_malformed_attribute_is_rejected) {
    assert_create_error("Dense", "units=2, units=3", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Repeated attribute 'units'");
    assert_create_error("Dense", "units", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Invalid attribute 'units', expected name=value");
    bu_assert_released();
}

/* Attribute strings go through the key=value parser that optimizer options and initializer
 * arguments use (core/kv.c): the same message grammar with "attribute" as the word (the trainer
 * and initializer tests check the same wording), empty items and unbalanced brackets rejected,
 * a comma inside brackets not splitting a value. */
Test(layer, attributes_share_the_key_value_grammar) {
    assert_create_error("Dense", "units=2, activation=relu, units=3", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Repeated attribute 'units'");
    assert_create_error("Dense", "units=2,, activation=relu", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Empty attribute, nothing after 'units=2,'");
    assert_create_error("Dense", ", units=2", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Empty attribute, nothing before the first ','");
    assert_create_error("Dense", "=2", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Missing attribute name in '=2', expected name=value");
    assert_create_error("Dense", "units=2, weight_initializer=xavier(gaussian, in, 2",
                        LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Unbalanced brackets in attribute 'weight_initializer=xavier("
                        "gaussian, in, 2', '(' is not closed");
    assert_create_error("Dense", "units=2, activation=", LAM_ERR_INVALID_ARGUMENT,
                        "Dense: Missing value for attribute 'activation', expected one of "
                        "none|relu|sigmoid|tanh|softrelu");
    /* A value with commas inside brackets is one value; spaces around keys and values go; an
     * empty string attribute is a value (weight_initializer: the block's initializer). */
    lam_block *x = bu_layer("Dense", "units=2, weight_initializer=xavier(gaussian, in, 2)");
    lam_block_release(x);
    lam_block *d = bu_layer("Dense", " units = 2 ,in_units=3,  bias_initializer = constant( 2 ) , "
                                     "weight_initializer=");
    lam_initializer *one = NULL;
    BU_OK(lam_init_one(&one));
    BU_OK(lam_block_initialize(d, one, NULL, 0));
    lam_initializer_release(one);
    bu_assert_param_all(bu_param(d, "weight"), 1.0f);
    bu_assert_param_all(bu_param(d, "bias"), 2.0f);
    lam_block_release(d);
    bu_assert_released();
}

Test(layer, nonpositive_units_named_after_the_instance) {
    lam_block *first = bu_layer("Dense", "units=1");
    unsigned long n = bu_name_index(lam_block_name(first), "dense");
    assert_create_error("Dense", "units=0", LAM_ERR_INVALID_ARGUMENT,
                        bu_fmt("dense%lu: Invalid argument, units must be positive, got 0", n + 1));
    assert_create_error("Dense", "units=4, in_units=-2", LAM_ERR_INVALID_ARGUMENT,
                        bu_fmt("dense%lu: Invalid argument, in_units must be positive or 0 (infer "
                               "from the input), got -2",
                               n + 2));
    lam_block *m = bu_layer("MyDense", "units=1, in_units=1");
    unsigned long k = bu_name_index(lam_block_name(m), "mydense");
    assert_create_error("MyDense", "units=3, in_units=0", LAM_ERR_INVALID_ARGUMENT,
                        bu_fmt("mydense%lu: Invalid argument, units and in_units must be "
                               "positive, got units=3, in_units=0",
                               k + 1));
    lam_block_release(first);
    lam_block_release(m);
    bu_assert_released();
}

Test(layer, bad_initializer_attribute_names_layer_and_parameter) {
    lam_block *first = bu_layer("Dense", "units=1");
    unsigned long n = bu_name_index(lam_block_name(first), "dense");
    assert_create_error(
        "Dense", "units=2, weight_initializer=glorot", LAM_ERR_INVALID_ARGUMENT,
        bu_fmt("dense%lu: parameter 'weight': lam_init_parse: Unknown initializer 'glorot', "
               "expected zeros, ones, constant(v), uniform[(scale)], normal[(sigma)] or "
               "xavier[(rnd, factor, magnitude)]",
               n + 1));
    lam_block_release(first);
    bu_assert_released();
}

/* lam_init_parse documents "xavier(gaussian, in, 2)", and Dense's weight_initializer takes
 * lam_init_parse text; a declared initializer with several arguments must be expressible. */
Test(layer, initializer_attribute_accepts_several_arguments) {
    lam_block *d = NULL;
    lam_status st = lam_layer_create(
        "Dense", "units=4, in_units=3, weight_initializer=xavier(gaussian, in, 2)", &d);
    cr_assert_eq(st, LAM_OK, "Dense with weight_initializer=xavier(gaussian, in, 2): %s (%s)",
                 lam_status_string(st), lam_last_error());
    lam_block_release(d);
    bu_assert_released();
}

Test(layer, empty_attribute_text_gives_defaults) {
    lam_block *c = bu_layer("Centered", "");
    lam_block *c2 = bu_layer("Centered", NULL);
    lam_param_list *l = NULL;
    BU_OK(lam_block_collect_params(c, NULL, &l));
    cr_assert_eq(lam_param_list_count(l), 0);
    lam_param_list_destroy(l);
    lam_block_release(c);
    lam_block_release(c2);
    bu_assert_released();
}

/* ---- summary ------------------------------------------------------------------------------ */

static void assert_summary(const lam_block *b, const char *want) {
    char *s = lam_block_summary(b);
    cr_assert_not_null(s, "lam_block_summary returned NULL");
    int same = strcmp(s, want) == 0;
    if (!same) {
        char msg[2048];
        snprintf(msg, sizeof msg, "summary\n--- got:\n%s\n--- expected:\n%s", s, want);
        free(s);
        cr_assert_fail("%s", msg);
    }
    free(s);
}

Test(summary, dense_shows_sizes_and_activation) {
    lam_block *a = bu_layer("Dense", "units=256, activation=relu, in_units=20");
    assert_summary(a, "Dense(20 -> 256, Activation(relu))");
    lam_block *b = bu_layer("Dense", "units=10, in_units=256");
    assert_summary(b, "Dense(256 -> 10, linear)");
    lam_block *c = bu_layer("Dense", "units=2, in_units=3, activation=softrelu");
    assert_summary(c, "Dense(3 -> 2, Activation(softrelu))");
    lam_block *d = bu_layer("Dense", "units=2, in_units=3, activation=none");
    assert_summary(d, "Dense(3 -> 2, linear)");
    lam_block_release(a);
    lam_block_release(b);
    lam_block_release(c);
    lam_block_release(d);
    bu_assert_released();
}

Test(summary, deferred_dense_shows_none_until_first_forward) {
    lam_block *d = bu_layer("Dense", "units=8, activation=relu");
    assert_summary(d, "Dense(None -> 8, Activation(relu))");
    BU_OK(lam_block_initialize(d, NULL, NULL, 0));
    assert_summary(d, "Dense(None -> 8, Activation(relu))");
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 20), 0.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(d, x, &y));
    assert_summary(d, "Dense(20 -> 8, Activation(relu))");
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(d);
    bu_assert_released();
}

Test(summary, other_layers) {
    lam_block *m = bu_layer("MyDense", "units=3, in_units=5");
    assert_summary(m, "MyDense(5 -> 3)");
    lam_block *c = bu_layer("Centered", NULL);
    assert_summary(c, "Centered()");
    lam_block *a = bu_layer("Activation", "act_type=relu");
    assert_summary(a, "Activation(relu)");
    lam_block *t = bu_layer("Activation", "act_type=tanh");
    assert_summary(t, "Activation(tanh)");
    lam_block_release(m);
    lam_block_release(c);
    lam_block_release(a);
    lam_block_release(t);
    bu_assert_released();
}

Test(summary, sequential_lists_children_with_indices) {
    lam_block *seq = bu_sequential();
    bu_add_layer(seq, "Dense", "units=256, activation=relu, in_units=20");
    bu_add_layer(seq, "Dense", "units=10");
    assert_summary(seq, "Sequential(\n"
                        "  (0): Dense(20 -> 256, Activation(relu))\n"
                        "  (1): Dense(None -> 10, linear)\n"
                        ")");
    lam_block_release(seq);
    bu_assert_released();
}

static lam_status pass_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                               lam_tensor **out) {
    (void)self, (void)state, (void)n;
    *out = lam_tensor_retain(in[0]);
    return LAM_OK;
}

Test(summary, nested_blocks_indent_two_spaces_per_level) {
    lam_block *chimera = bu_sequential();
    lam_block *nest = NULL;
    BU_OK(lam_block_create("NestMLP", pass_forward, NULL, NULL, &nest));
    lam_block *inner = bu_sequential();
    bu_add_layer(inner, "Dense", "units=64, activation=relu, in_units=20");
    bu_add_layer(inner, "Dense", "units=32, activation=relu, in_units=64");
    BU_OK(lam_block_register_child(nest, "net", inner));
    lam_block *dense = bu_layer("Dense", "units=16, activation=relu, in_units=32");
    BU_OK(lam_block_register_child(nest, "dense", dense));
    BU_OK(lam_sequential_add(chimera, nest));
    bu_add_layer(chimera, "Dense", "units=20, in_units=16");
    bu_add_layer(chimera, "MyDense", "units=3, in_units=20");
    bu_add_layer(chimera, "Centered", NULL);
    lam_block_release(inner);
    lam_block_release(dense);
    lam_block_release(nest);
    assert_summary(chimera, "Sequential(\n"
                            "  (0): NestMLP(\n"
                            "    (net): Sequential(\n"
                            "      (0): Dense(20 -> 64, Activation(relu))\n"
                            "      (1): Dense(64 -> 32, Activation(relu))\n"
                            "    )\n"
                            "    (dense): Dense(32 -> 16, Activation(relu))\n"
                            "  )\n"
                            "  (1): Dense(16 -> 20, linear)\n"
                            "  (2): MyDense(20 -> 3)\n"
                            "  (3): Centered()\n"
                            ")");
    lam_block_release(chimera);
    bu_assert_released();
}

Test(summary, custom_block_named_by_type) {
    lam_block *mlp = NULL;
    BU_OK(lam_block_create("MLP", pass_forward, NULL, NULL, &mlp));
    lam_block *hidden = bu_layer("Dense", "units=256, activation=relu");
    lam_block *output = bu_layer("Dense", "units=10");
    BU_OK(lam_block_register_child(mlp, "hidden", hidden));
    BU_OK(lam_block_register_child(mlp, "output", output));
    lam_block_release(hidden);
    lam_block_release(output);
    assert_summary(mlp, "MLP(\n"
                        "  (hidden): Dense(None -> 256, Activation(relu))\n"
                        "  (output): Dense(None -> 10, linear)\n"
                        ")");
    lam_block_release(mlp);
    cr_assert_null(lam_block_summary(NULL));
    bu_assert_released();
}
