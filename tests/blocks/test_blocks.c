/*
 * Blocks (section 4.1): custom blocks with a forward callback and state, registered children,
 * Sequential, nesting, and the forward-before-initialize error.
 *
 * Expected values are worked by hand (a custom block scales its input by a known factor) or
 * come from composing the same layers by hand; messages are those lamina.h and core/block.c
 * document, quoted in full.
 */
#include "block_util.h"

TestSuite(block, .fini = bu_fini);
TestSuite(sequential, .fini = bu_fini);
TestSuite(nesting, .fini = bu_fini);
TestSuite(forward, .fini = bu_fini);

/* ---- a custom block: y = factor * x, counting its calls ----------------------------------- */

typedef struct scale_state {
    float factor;
    int forward_calls;
    uint32_t last_n_inputs;
} scale_state;

static int free_state_calls;
static void *freed_state;

static void count_free(void *state) {
    free_state_calls++;
    freed_state = state;
}

static lam_status scale_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                lam_tensor **out) {
    (void)self;
    scale_state *s = state;
    s->forward_calls++;
    s->last_n_inputs = n;
    return lam_op_mul_scalar(in[0], s->factor, out);
}

/* Runs each registered child in order (the chapter's MySequential). */
static lam_status chain_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                lam_tensor **out) {
    (void)state;
    (void)n;
    lam_tensor *x = lam_tensor_retain(in[0]);
    for (size_t i = 0; i < lam_block_child_count(self); i++) {
        lam_tensor *y = NULL;
        lam_status st = lam_block_call(lam_block_child_at(self, i), x, &y);
        lam_tensor_release(x);
        if (st != LAM_OK) {
            return st;
        }
        x = y;
    }
    *out = x;
    return LAM_OK;
}

static lam_status noop_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                               lam_tensor **out) {
    (void)self, (void)state, (void)n, (void)in, (void)out;
    return LAM_OK; /* forgets the output */
}

static lam_status failing_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                  lam_tensor **out) {
    (void)state, (void)n, (void)in, (void)out;
    return lam_set_error(LAM_ERR_SHAPE, "%s: Bad input, expected 2 dims, got 3",
                         lam_block_name(self));
}

static lam_block *custom(const char *type, lam_forward_fn fn, void *state,
                         void (*free_state)(void *)) {
    lam_block *b = NULL;
    BU_OK(lam_block_create(type, fn, state, free_state, &b));
    cr_assert_not_null(b);
    return b;
}

/* ---- block -------------------------------------------------------------------------------- */

Test(block, forward_passes_state_and_inputs_to_callback) {
    scale_state s = {2.5f, 0, 0};
    lam_block *b = custom("Scale", scale_forward, &s, NULL);
    const float xv[4] = {1.0f, -2.0f, 0.5f, 4.0f};
    lam_tensor *x = bu_tensor(BU_SHAPE(2, 2), xv, 4), *y = NULL;
    BU_OK(lam_block_initialize(b, NULL, NULL, 0));
    BU_OK(lam_block_call(b, x, &y));
    const br_array want = {2, {2, 2}, 4, (const float[]){2.5f, -5.0f, 1.25f, 10.0f}};
    bu_assert_close(y, &want, 0, 0, "Scale(2.5)(x)");
    cr_assert_eq(s.forward_calls, 1);
    cr_assert_eq(s.last_n_inputs, 1);
    lam_tensor_release(y);

    lam_tensor *two[2] = {x, x};
    BU_OK(lam_block_forward(b, 2, two, &y));
    cr_assert_eq(s.forward_calls, 2);
    cr_assert_eq(s.last_n_inputs, 2);
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(b);
    bu_assert_released();
}

Test(block, free_state_called_once_on_last_release) {
    free_state_calls = 0;
    freed_state = NULL;
    scale_state s = {1.0f, 0, 0};
    lam_block *b = custom("Scale", scale_forward, &s, count_free);
    lam_block *parent = custom("Chain", chain_forward, NULL, NULL);
    BU_OK(lam_block_register_child(parent, "inner", b));
    cr_assert_eq(lam_block_retain(b), b);
    lam_block_release(b);
    lam_block_release(b); /* the parent still holds one */
    cr_assert_eq(free_state_calls, 0, "free_state ran while the parent holds the block");
    lam_block_release(parent);
    cr_assert_eq(free_state_calls, 1, "free_state ran %d times", free_state_calls);
    cr_assert_eq(freed_state, &s, "free_state got another pointer than the state");
    lam_block_release(NULL); /* a no-op */
    cr_assert_eq(free_state_calls, 1);
    bu_assert_released();
}

Test(block, free_state_null_is_allowed) {
    scale_state s = {1.0f, 0, 0};
    lam_block *b = custom("Scale", scale_forward, &s, NULL);
    lam_block_release(b);
    bu_assert_released();
}

Test(block, names_come_from_lowercased_type_with_rising_counter) {
    lam_block *a = custom("MLP", chain_forward, NULL, NULL);
    lam_block *b = custom("MLP", chain_forward, NULL, NULL);
    lam_block *c = custom("FancyMLP", chain_forward, NULL, NULL);
    cr_assert_str_eq(lam_block_type(a), "MLP");
    cr_assert_str_eq(lam_block_type(c), "FancyMLP");
    unsigned long n = bu_name_index(lam_block_name(a), "mlp");
    cr_assert_str_eq(lam_block_name(b), bu_fmt("mlp%lu", n + 1));
    bu_name_index(lam_block_name(c), "fancymlp");
    lam_block *s = bu_sequential();
    cr_assert_str_eq(lam_block_type(s), "Sequential");
    bu_name_index(lam_block_name(s), "sequential");
    lam_block_release(a);
    lam_block_release(b);
    lam_block_release(c);
    lam_block_release(s);
    bu_assert_released();
}

Test(block, create_rejects_bad_type_and_missing_forward) {
    lam_block *b = (lam_block *)&free_state_calls; /* poison: must come back NULL */
    bu_assert_error(lam_block_create("1mlp", chain_forward, NULL, NULL, &b),
                    LAM_ERR_INVALID_ARGUMENT,
                    "lam_block_create: Invalid type name '1mlp', expected a C identifier such as "
                    "MLP",
                    "type starting with a digit");
    cr_assert_null(b);
    bu_assert_error(lam_block_create("My-MLP", chain_forward, NULL, NULL, &b),
                    LAM_ERR_INVALID_ARGUMENT,
                    "lam_block_create: Invalid type name 'My-MLP', expected a C identifier such as "
                    "MLP",
                    "type with a dash");
    bu_assert_error(lam_block_create("MLP", NULL, NULL, NULL, &b), LAM_ERR_INVALID_ARGUMENT,
                    "MLP: Invalid argument, a custom block needs a forward function",
                    "NULL forward");
    cr_assert_null(b);
    bu_assert_released();
}

Test(block, forward_error_from_callback_is_returned_unchanged) {
    lam_block *b = custom("Picky", failing_forward, NULL, NULL);
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 2), -1.0f, 1.0f), *y = (lam_tensor *)&free_state_calls;
    BU_OK(lam_block_initialize(b, NULL, NULL, 0));
    bu_assert_error(lam_block_call(b, x, &y), LAM_ERR_SHAPE,
                    bu_fmt("%s: Bad input, expected 2 dims, got 3", lam_block_name(b)),
                    "failing forward");
    cr_assert_null(y);
    lam_tensor_release(x);
    lam_block_release(b);
    bu_assert_released();
}

Test(block, forward_without_output_is_state_error) {
    lam_block *b = custom("Forgetful", noop_forward, NULL, NULL);
    lam_tensor *x = bu_ramp(BU_SHAPE(3), -1.0f, 1.0f), *y = NULL;
    bu_assert_error(lam_block_call(b, x, &y), LAM_ERR_STATE,
                    bu_fmt("%s: Forward returned no output", lam_block_name(b)),
                    "forward that sets no output");
    cr_assert_null(y);
    lam_tensor_release(x);
    lam_block_release(b);
    bu_assert_released();
}

Test(block, register_child_keeps_order_and_finds_by_name_and_index) {
    lam_block *mlp = custom("MLP", chain_forward, NULL, NULL);
    lam_block *hidden = bu_layer("Dense", "units=8, activation=relu");
    lam_block *output = bu_layer("Dense", "units=2");
    lam_block *extra = bu_layer("Centered", NULL);
    BU_OK(lam_block_register_child(mlp, "hidden", hidden));
    BU_OK(lam_block_register_child(mlp, "output", output));
    BU_OK(lam_block_register_child(mlp, "extra", extra));
    cr_assert_eq(lam_block_child_count(mlp), 3);
    cr_assert_eq(lam_block_child_at(mlp, 0), hidden);
    cr_assert_eq(lam_block_child_at(mlp, 1), output);
    cr_assert_eq(lam_block_child_at(mlp, 2), extra);
    cr_assert_null(lam_block_child_at(mlp, 3));
    cr_assert_eq(lam_block_child(mlp, "output"), output);
    cr_assert_eq(lam_block_child(mlp, "hidden"), hidden);
    cr_assert_eq(lam_block_child(mlp, "extra"), extra);
    cr_assert_null(lam_block_child(mlp, "Hidden"));
    cr_assert_null(lam_block_child(mlp, "0"));
    cr_assert_eq(lam_block_child_count(hidden), 0);
    /* The parent holds its own references: the children outlive ours. */
    lam_block_release(hidden);
    lam_block_release(output);
    lam_block_release(extra);
    cr_assert_str_eq(lam_block_type(lam_block_child(mlp, "extra")), "Centered");
    lam_block_release(mlp);
    bu_assert_released();
}

Test(block, register_child_rejects_duplicate_name) {
    lam_block *mlp = custom("MLP", chain_forward, NULL, NULL);
    lam_block *a = bu_layer("Dense", "units=8");
    lam_block *b = bu_layer("Dense", "units=4");
    BU_OK(lam_block_register_child(mlp, "hidden", a));
    bu_assert_error(lam_block_register_child(mlp, "hidden", b), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("%s: Duplicate child name 'hidden', already holds %s",
                           lam_block_name(mlp), lam_block_name(a)),
                    "second child named hidden");
    cr_assert_eq(lam_block_child_count(mlp), 1);
    cr_assert_eq(lam_block_child(mlp, "hidden"), a);
    lam_block_release(a);
    lam_block_release(b);
    lam_block_release(mlp);
    bu_assert_released();
}

Test(block, register_child_rejects_cycles) {
    lam_block *outer = custom("Outer", chain_forward, NULL, NULL);
    lam_block *mid = bu_sequential();
    lam_block *inner = custom("Inner", chain_forward, NULL, NULL);
    bu_assert_error(lam_block_register_child(outer, "me", outer), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("%s: Cycle, cannot register %s as a child of itself or its descendant",
                           lam_block_name(outer), lam_block_name(outer)),
                    "block as its own child");
    BU_OK(lam_block_register_child(outer, "mid", mid));
    BU_OK(lam_sequential_add(mid, inner));
    bu_assert_error(lam_block_register_child(inner, "loop", outer), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("%s: Cycle, cannot register %s as a child of itself or its descendant",
                           lam_block_name(inner), lam_block_name(outer)),
                    "ancestor as a child of its descendant");
    cr_assert_eq(lam_block_child_count(inner), 0);
    /* The same block under two parents is not a cycle (sharing a whole block). */
    lam_block *other = bu_sequential();
    BU_OK(lam_sequential_add(other, inner));
    lam_block_release(other);
    lam_block_release(inner);
    lam_block_release(mid);
    lam_block_release(outer);
    bu_assert_released();
}

Test(block, register_child_rejects_dot_and_empty_names) {
    lam_block *mlp = custom("MLP", chain_forward, NULL, NULL);
    lam_block *a = bu_layer("Dense", "units=8");
    bu_assert_error(
        lam_block_register_child(mlp, "a.b", a), LAM_ERR_INVALID_ARGUMENT,
        bu_fmt("%s: Invalid child name 'a.b', '.' separates structural keys", lam_block_name(mlp)),
        "name with a dot");
    bu_assert_error(lam_block_register_child(mlp, "", a), LAM_ERR_INVALID_ARGUMENT,
                    "lam_block_register_child: Invalid argument, NULL block, child or name",
                    "empty name");
    cr_assert_eq(lam_block_child_count(mlp), 0);
    lam_block_release(a);
    lam_block_release(mlp);
    bu_assert_released();
}

/* ---- sequential --------------------------------------------------------------------------- */

Test(sequential, add_appends_under_index_names) {
    lam_block *seq = bu_sequential();
    cr_assert_eq(lam_block_child_count(seq), 0);
    lam_block *a = bu_add_layer(seq, "Dense", "units=8");
    lam_block *b = bu_add_layer(seq, "Activation", "act_type=relu");
    lam_block *c = bu_add_layer(seq, "Dense", "units=2");
    cr_assert_eq(lam_block_child_count(seq), 3);
    cr_assert_eq(lam_block_child_at(seq, 0), a);
    cr_assert_eq(lam_block_child_at(seq, 1), b);
    cr_assert_eq(lam_block_child_at(seq, 2), c);
    cr_assert_eq(lam_block_child(seq, "0"), a);
    cr_assert_eq(lam_block_child(seq, "1"), b);
    cr_assert_eq(lam_block_child(seq, "2"), c);
    cr_assert_null(lam_block_child_at(seq, 3));
    cr_assert_null(lam_block_child(seq, "3"));
    lam_block_release(seq);
    bu_assert_released();
}

Test(sequential, empty_passes_its_input_through) {
    lam_block *seq = bu_sequential();
    BU_OK(lam_block_initialize(seq, NULL, NULL, 0));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 3), -1.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(seq, x, &y));
    cr_assert_not_null(y);
    size_t n;
    float *xv = bu_values(x, &n);
    const br_array want = {2, {2, 3}, 6, xv};
    bu_assert_close(y, &want, 0, 0, "Sequential()(x)");
    free(xv);
    lam_tensor_release(y);
    lam_tensor *two[2] = {x, x};
    y = (lam_tensor *)&free_state_calls;
    bu_assert_error(
        lam_block_forward(seq, 2, two, &y), LAM_ERR_INVALID_ARGUMENT,
        bu_fmt("%s: Empty Sequential passes one input through, got 2", lam_block_name(seq)),
        "empty Sequential with two inputs");
    cr_assert_null(y);
    lam_tensor_release(x);
    lam_block_release(seq);
    bu_assert_released();
}

Test(sequential, forward_equals_children_applied_in_order) {
    lam_block *seq = bu_sequential();
    lam_block *a = bu_add_layer(seq, "Dense", "units=6, activation=relu");
    lam_block *b = bu_add_layer(seq, "Dense", "units=3");
    lam_seed(3);
    BU_OK(lam_block_initialize(seq, NULL, NULL, 0));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 5), -1.0f, 1.0f), *y = NULL, *h = NULL, *want = NULL;
    BU_OK(lam_block_call(seq, x, &y));
    BU_OK(lam_block_call(a, x, &h));
    BU_OK(lam_block_call(b, h, &want));
    size_t n;
    float *wv = bu_values(want, &n);
    const br_array w = {2, {2, 3}, n, wv};
    bu_assert_close(y, &w, 0, 0, "Sequential(a, b)(x) vs b(a(x))");
    free(wv);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_tensor_release(h);
    lam_tensor_release(want);
    lam_block_release(seq);
    bu_assert_released();
}

/* ---- nesting ------------------------------------------------------------------------------ */

/* Outer (custom) { body: Sequential[ Dense(8, relu), Sequential[ Dense(6, tanh), Inner (custom)
 * { Dense(4) } ] ], head: Dense(3) }: four levels of blocks. */
Test(nesting, four_levels_equal_composing_layers_by_hand) {
    lam_block *outer = custom("Outer", chain_forward, NULL, NULL);
    lam_block *body = bu_sequential();
    lam_block *l1 = bu_add_layer(body, "Dense", "units=8, activation=relu");
    lam_block *sub = bu_sequential();
    lam_block *l2 = bu_add_layer(sub, "Dense", "units=6, activation=tanh");
    lam_block *inner = custom("Inner", chain_forward, NULL, NULL);
    lam_block *l3 = bu_layer("Dense", "units=4");
    BU_OK(lam_block_register_child(inner, "proj", l3));
    BU_OK(lam_sequential_add(sub, inner));
    BU_OK(lam_sequential_add(body, sub));
    lam_block *l4 = bu_layer("Dense", "units=3");
    BU_OK(lam_block_register_child(outer, "body", body));
    BU_OK(lam_block_register_child(outer, "head", l4));
    lam_block_release(l3);
    lam_block_release(l4);
    lam_block_release(inner);
    lam_block_release(sub);
    lam_block_release(body);

    lam_initializer *init = NULL;
    BU_OK(lam_init_normal(0.5f, &init));
    BU_OK(lam_block_initialize(outer, init, NULL, 0));
    lam_initializer_release(init);
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 5), -1.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(outer, x, &y));

    lam_block *leaves[4] = {l1, l2, l3, l4};
    lam_tensor *h = lam_tensor_retain(x);
    for (int i = 0; i < 4; i++) {
        lam_tensor *next = NULL;
        BU_OK(lam_block_call(leaves[i], h, &next));
        lam_tensor_release(h);
        h = next;
    }
    size_t n;
    float *hv = bu_values(h, &n);
    const br_array want = {2, {2, 3}, n, hv};
    bu_assert_close(y, &want, 0, 0, "nested model vs its layers composed by hand");
    free(hv);

    lam_param_list *all = NULL;
    BU_OK(lam_block_collect_params(outer, NULL, &all));
    cr_assert_eq(lam_param_list_count(all), 8);
    cr_assert_str_eq(lam_param_list_key(all, 4), "body.1.1.proj.weight");
    cr_assert_eq(lam_param_list_get(all, 4), lam_block_param(l3, "weight"));
    cr_assert_str_eq(lam_param_list_key(all, 7), "head.bias");
    lam_param_list_destroy(all);

    lam_tensor_release(h);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(outer);
    bu_assert_released();
}

/* ---- forward before initialize ------------------------------------------------------------ */

#define NOT_INITIALIZED_FMT                                                                        \
    "%s: Not initialized, call lam_block_initialize() on it or on the model containing it "        \
    "before the first forward (a child of a custom block is only reached once registered with "    \
    "lam_block_register_child)"

Test(forward, before_initialize_is_state_error) {
    lam_block *d = bu_layer("Dense", "units=4, in_units=3");
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 3), -1.0f, 1.0f), *y = (lam_tensor *)&free_state_calls;
    bu_assert_error(lam_block_call(d, x, &y), LAM_ERR_STATE,
                    bu_fmt(NOT_INITIALIZED_FMT, lam_block_name(d)), "Dense never initialized");
    cr_assert_null(y);

    /* Inside a Sequential, the message names the layer, not the container. */
    lam_block *seq = bu_sequential();
    lam_block *d2 = bu_add_layer(seq, "Dense", "units=4");
    bu_assert_error(lam_block_call(seq, x, &y), LAM_ERR_STATE,
                    bu_fmt(NOT_INITIALIZED_FMT, lam_block_name(d2)),
                    "Sequential never initialized");
    lam_tensor_release(x);
    lam_block_release(d);
    lam_block_release(seq);
    bu_assert_released();
}

/* The chapter's exercise: a layer kept by a custom block but never registered is not reached
 * by initialize. */
static lam_status orphan_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                 lam_tensor **out) {
    (void)self, (void)n;
    return lam_block_call((lam_block *)state, in[0], out);
}

static void release_block(void *state) {
    lam_block_release(state);
}

Test(forward, unregistered_child_of_custom_block_is_not_initialized) {
    lam_block *dense = bu_layer("Dense", "units=4");
    lam_block *mlp = custom("MLP", orphan_forward, dense, release_block);
    BU_OK(lam_block_initialize(mlp, NULL, NULL, 0));
    cr_assert(!lam_param_is_initialized(bu_param(dense, "bias")),
              "initialize reached a child that was never registered");
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 3), -1.0f, 1.0f), *y = NULL;
    bu_assert_error(lam_block_call(mlp, x, &y), LAM_ERR_STATE,
                    bu_fmt(NOT_INITIALIZED_FMT, lam_block_name(dense)), "unregistered child");
    cr_assert_null(y);
    lam_tensor_release(x);
    lam_block_release(mlp); /* releases the dense through free_state */
    bu_assert_released();
}

Test(forward, parameter_free_layers_need_no_initialize) {
    lam_block *c = bu_layer("Centered", NULL);
    lam_block *a = bu_layer("Activation", "act_type=relu");
    const float xv[4] = {1.0f, 2.0f, 3.0f, 6.0f};
    lam_tensor *x = bu_tensor(BU_SHAPE(4), xv, 4), *y = NULL, *z = NULL;
    BU_OK(lam_block_call(c, x, &y));
    const br_array want = {1, {4}, 4, (const float[]){-2.0f, -1.0f, 0.0f, 3.0f}};
    bu_assert_close(y, &want, 0, 0, "Centered()(1, 2, 3, 6)");
    BU_OK(lam_block_call(a, y, &z));
    const br_array want_relu = {1, {4}, 4, (const float[]){0.0f, 0.0f, 0.0f, 3.0f}};
    bu_assert_close(z, &want_relu, 0, 0, "relu(centered)");
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_tensor_release(z);
    lam_block_release(c);
    lam_block_release(a);
    bu_assert_released();
}

Test(forward, error_inside_sequential_leaks_nothing) {
    lam_block *seq = bu_sequential();
    lam_block *d = bu_add_layer(seq, "Dense", "units=8, activation=relu");
    lam_block *m = bu_add_layer(seq, "MyDense", "units=3, in_units=5");
    BU_OK(lam_block_initialize(seq, NULL, NULL, 0));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 20), 0.0f, 1.0f), *y = (lam_tensor *)&free_state_calls;
    bu_assert_error(
        lam_block_call(seq, x, &y), LAM_ERR_SHAPE,
        bu_fmt("%s: Shape inconsistent, input has 8 features, in_units is 5", lam_block_name(m)),
        "MyDense(in_units=5) after Dense(8)");
    cr_assert_null(y);
    /* The first layer ran and completed its initialization. */
    cr_assert(lam_param_is_initialized(bu_param(d, "weight")));
    lam_tensor_release(x);
    lam_block_release(seq);
    bu_assert_released();
}

Test(forward, wrong_number_of_inputs_is_shape_error) {
    lam_block *d = bu_layer("Dense", "units=4, in_units=3");
    BU_OK(lam_block_initialize(d, NULL, NULL, 0));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 3), 0.0f, 1.0f), *y = NULL;
    bu_assert_error(lam_block_forward(d, 0, NULL, &y), LAM_ERR_SHAPE,
                    bu_fmt("%s: Wrong number of inputs, expected 1, got 0", lam_block_name(d)),
                    "Dense with no input");
    lam_tensor *two[2] = {x, x};
    bu_assert_error(lam_block_forward(d, 2, two, &y), LAM_ERR_SHAPE,
                    bu_fmt("%s: Wrong number of inputs, expected 1, got 2", lam_block_name(d)),
                    "Dense with two inputs");
    cr_assert_null(y);
    lam_tensor *with_null[1] = {NULL};
    bu_assert_error(lam_block_forward(d, 1, with_null, &y), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("%s: Invalid argument, input 0 is NULL", lam_block_name(d)),
                    "NULL input");
    bu_assert_error(lam_block_call(d, x, NULL), LAM_ERR_INVALID_ARGUMENT,
                    "lam_block_forward: Invalid argument, output is NULL", "NULL output");
    lam_tensor_release(x);
    lam_block_release(d);
    bu_assert_released();
}

Test(forward, custom_block_with_uninitialized_param_names_itself) {
    scale_state s = {1.0f, 0, 0};
    lam_block *b = custom("Scale", scale_forward, &s, NULL);
    lam_shape shape = BU_SHAPE(2, 2);
    BU_OK(lam_block_param_new(b, "gain", &shape, NULL, NULL));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 2), 0.0f, 1.0f), *y = NULL;
    bu_assert_error(lam_block_call(b, x, &y), LAM_ERR_STATE,
                    bu_fmt(NOT_INITIALIZED_FMT, lam_block_name(b)), "custom block not initialized");
    cr_assert_eq(s.forward_calls, 0, "forward ran before initialize");
    BU_OK(lam_block_initialize(b, NULL, NULL, 0));
    BU_OK(lam_block_call(b, x, &y));
    cr_assert_eq(s.forward_calls, 1);
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(b);
    bu_assert_released();
}
