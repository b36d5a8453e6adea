/*
 * Shared parameters (section 4.2): a layer made with lam_layer_create_shared holds the very
 * same lam_param objects as the layer it shares with (Gluon's params=shared.params).
 */
#include "block_util.h"

TestSuite(sharing, .fini = bu_fini);

static char poison_byte;
#define POISON ((lam_block *)(void *)&poison_byte)

static lam_block *shared_layer(const char *attrs, lam_block *share) {
    lam_block *b = NULL;
    lam_status st = lam_layer_create_shared("Dense", attrs, share, &b);
    cr_assert_eq(st, LAM_OK, "lam_layer_create_shared failed: %s (%s)", lam_status_string(st),
                 lam_last_error());
    return b;
}

/* The chapter's net: Dense(8, relu), shared, Dense(8, relu, params=shared.params), Dense(10). */
typedef struct shared_net {
    lam_block *net, *first, *shared, *again, *out;
} shared_net;

static shared_net make_shared_net(void) {
    shared_net s;
    s.net = bu_sequential();
    s.first = bu_add_layer(s.net, "Dense", "units=8, activation=relu");
    s.shared = bu_add_layer(s.net, "Dense", "units=8, activation=relu");
    s.again = shared_layer("units=8, activation=relu", s.shared);
    BU_OK(lam_sequential_add(s.net, s.again));
    lam_block_release(s.again);
    s.out = bu_add_layer(s.net, "Dense", "units=10");
    return s;
}

Test(sharing, shared_layer_holds_the_same_parameters) {
    shared_net s = make_shared_net();
    cr_assert_str_neq(lam_block_name(s.again), lam_block_name(s.shared));
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "bias" : "weight";
        lam_param *a = bu_param(s.shared, name), *b = bu_param(s.again, name);
        cr_assert_eq(a, b, "%s is not the same parameter", name);
        cr_assert_str_eq(lam_param_name(b), bu_fmt("%s_%s", lam_block_name(s.shared), name));
    }
    cr_assert_neq(bu_param(s.first, "weight"), bu_param(s.shared, "weight"));
    lam_block_release(s.net);
    bu_assert_released();
}

Test(sharing, collect_params_lists_shared_once_under_first_key) {
    shared_net s = make_shared_net();
    lam_param_list *l = NULL;
    BU_OK(lam_block_collect_params(s.net, NULL, &l));
    const char *keys[] = {"0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"};
    cr_assert_eq(lam_param_list_count(l), 6);
    for (size_t i = 0; i < 6; i++) {
        cr_assert_str_eq(lam_param_list_key(l, i), keys[i]);
    }
    cr_assert_eq(lam_param_list_get(l, 2), bu_param(s.again, "weight"));
    lam_param_list_destroy(l);

    /* The sharing layer alone still lists them, under its own keys. */
    BU_OK(lam_block_collect_params(s.again, NULL, &l));
    cr_assert_eq(lam_param_list_count(l), 2);
    cr_assert_str_eq(lam_param_list_key(l, 0), "weight");
    lam_param_list_destroy(l);
    lam_block_release(s.net);
    bu_assert_released();
}

Test(sharing, writes_through_one_are_read_through_the_other) {
    shared_net s = make_shared_net();
    BU_OK(lam_block_initialize(s.net, NULL, NULL, 0));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 20), 0.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(s.net, x, &y)); /* infers (8, 8) for the shared weight */
    lam_tensor_release(y);
    lam_shape s88 = BU_SHAPE(8, 8);
    bu_assert_shape(lam_param_shape(bu_param(s.again, "weight")), &s88, "shared weight");

    /* Through the tensor: change one element via net[1], read it via net[2]. */
    lam_tensor *w1 = NULL, *w2 = NULL;
    BU_OK(lam_param_data(bu_param(s.shared, "weight"), &w1));
    size_t n;
    float *v = bu_values(w1, &n);
    v[0] = 100.0f;
    BU_OK(lam_tensor_write(w1, v, n));
    free(v);
    BU_OK(lam_param_data(bu_param(s.again, "weight"), &w2));
    v = bu_values(w2, &n);
    cr_assert_eq(v[0], 100.0f, "net[2].weight[0][0] is %g after net[1] set it to 100",
                 (double)v[0]);
    free(v);
    lam_tensor_release(w1);
    lam_tensor_release(w2);

    /* Through set_data. */
    float ones[8];
    for (int i = 0; i < 8; i++) {
        ones[i] = 0.25f * (float)i;
    }
    lam_tensor *b = bu_tensor(BU_SHAPE(8), ones, 8);
    BU_OK(lam_param_set_data(bu_param(s.again, "bias"), b));
    lam_tensor_release(b);
    BU_OK(lam_param_data(bu_param(s.shared, "bias"), &b));
    const br_array want = {1, {8}, 8, ones};
    bu_assert_close(b, &want, 0, 0, "net[1].bias after set_data through net[2]");
    lam_tensor_release(b);

    /* The model output is the shared layer applied twice. */
    BU_OK(lam_block_call(s.net, x, &y));
    lam_tensor *h0 = NULL, *h1 = NULL, *h2 = NULL, *h3 = NULL;
    BU_OK(lam_block_call(s.first, x, &h0));
    BU_OK(lam_block_call(s.shared, h0, &h1));
    BU_OK(lam_block_call(s.shared, h1, &h2));
    BU_OK(lam_block_call(s.out, h2, &h3));
    float *hv = bu_values(h3, &n);
    const br_array by_hand = {2, {2, 10}, n, hv};
    bu_assert_close(y, &by_hand, 0, 0, "net(X) vs out(shared(shared(first(X))))");
    free(hv);
    lam_tensor_release(h0);
    lam_tensor_release(h1);
    lam_tensor_release(h2);
    lam_tensor_release(h3);
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(s.net);
    bu_assert_released();
}

typedef struct init_count {
    int calls;
} init_count;

static lam_status count_init(const char *name, const lam_shape *shape, float *data, size_t count,
                             lam_rng *rng, void *user) {
    (void)name, (void)shape;
    ((init_count *)user)->calls++;
    for (size_t i = 0; i < count; i++) {
        data[i] = lam_rng_uniform(rng, -1.0f, 1.0f);
    }
    return LAM_OK;
}

Test(sharing, shared_parameter_initialized_once) {
    shared_net s = make_shared_net();
    init_count c = {0};
    lam_initializer *init = NULL;
    BU_OK(lam_init_custom("Counter", count_init, &c, &init));
    BU_OK(lam_block_initialize(s.net, init, NULL, 0));
    lam_initializer_release(init);
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 20), 0.0f, 1.0f), *y = NULL;
    BU_OK(lam_block_call(s.net, x, &y));
    cr_assert_eq(c.calls, 3, "%d weight initializations for 3 distinct weights", c.calls);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(s.net);
    bu_assert_released();
}

Test(sharing, parameters_outlive_the_original_layer) {
    lam_block *orig = bu_layer("Dense", "units=3, in_units=2");
    lam_block *copy = shared_layer("units=3, in_units=2", orig);
    lam_initializer *one = NULL;
    BU_OK(lam_init_one(&one));
    BU_OK(lam_block_initialize(orig, one, NULL, 0));
    lam_initializer_release(one);
    lam_block_release(orig);
    bu_assert_param_all(bu_param(copy, "weight"), 1.0f);
    const float xv[2] = {1.0f, 2.0f};
    lam_tensor *x = bu_tensor(BU_SHAPE(1, 2), xv, 2), *y = NULL;
    BU_OK(lam_block_call(copy, x, &y));
    const br_array want = {2, {1, 3}, 3, (const float[]){3.0f, 3.0f, 3.0f}};
    bu_assert_close(y, &want, 0, 0, "ones(3, 2) . (1, 2) + 0");
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(copy);
    bu_assert_released();
}

Test(sharing, with_another_type_is_invalid_argument) {
    lam_block *m = bu_layer("MyDense", "units=8, in_units=8");
    lam_block *b = POISON;
    bu_assert_error(lam_layer_create_shared("Dense", "units=8", m, &b), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("Dense: Cannot share parameters with %s, it is a MyDense, not a Dense",
                           lam_block_name(m)),
                    "Dense sharing with MyDense");
    cr_assert_null(b);
    lam_block *seq = bu_sequential();
    b = POISON;
    bu_assert_error(lam_layer_create_shared("Dense", "units=8", seq, &b), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("Dense: Cannot share parameters with %s, it is a Sequential, not a "
                           "Dense",
                           lam_block_name(seq)),
                    "Dense sharing with a Sequential");
    cr_assert_null(b);
    b = POISON;
    bu_assert_error(lam_layer_create_shared("Dense", "units=8", NULL, &b), LAM_ERR_INVALID_ARGUMENT,
                    "lam_layer_create_shared: Invalid argument, share is NULL", "share NULL");
    cr_assert_null(b);
    lam_block_release(m);
    lam_block_release(seq);
    bu_assert_released();
}

Test(sharing, incompatible_declaration_is_refused) {
    lam_block *a = bu_layer("Dense", "units=8");
    lam_block *b = POISON;
    unsigned long n = bu_name_index(lam_block_name(a), "dense");
    bu_assert_error(lam_layer_create_shared("Dense", "units=4", a, &b), LAM_ERR_SHAPE,
                    bu_fmt("dense%lu: Cannot share dense%lu_weight, it has shape (8, None), this "
                           "layer declares (4, None)",
                           n + 1, n),
                    "units 4 sharing with units 8");
    cr_assert_null(b);
    lam_block *nb = bu_layer("Dense", "units=8, use_bias=false");
    unsigned long k = bu_name_index(lam_block_name(nb), "dense");
    bu_assert_error(lam_layer_create_shared("Dense", "units=8", nb, &b), LAM_ERR_INVALID_ARGUMENT,
                    bu_fmt("dense%lu: Cannot share, dense%lu has no parameter 'bias'", k + 1, k),
                    "bias sharing with a layer without one");
    cr_assert_null(b);
    lam_block_release(a);
    lam_block_release(nb);
    bu_assert_released();
}

/* A lam_layer_create_shared that fails must leave the layer it tried to share with as it was.
 * Here the weight is checked (and merged) before the missing bias is found. */
Test(sharing, failed_share_leaves_the_original_untouched) {
    lam_block *a = bu_layer("Dense", "units=8, use_bias=false");
    lam_block *b = POISON;
    lam_status st = lam_layer_create_shared("Dense", "units=8, in_units=5", a, &b);
    cr_assert_eq(st, LAM_ERR_INVALID_ARGUMENT, "sharing a bias that does not exist: %s",
                 lam_last_error());
    cr_assert_null(b);
    char got[160];
    lam_shape want = BU_SHAPE(8, LAM_DIM_UNKNOWN);
    int same = lam_shape_equal(lam_param_shape(bu_param(a, "weight")), &want);
    lam_shape_format(lam_param_shape(bu_param(a, "weight")), got, sizeof got);
    char *summary = lam_block_summary(a);
    char sum[160];
    snprintf(sum, sizeof sum, "%s", summary ? summary : "(null)");
    free(summary);
    lam_block_release(a); /* before the verdict, so a failure leaks nothing */
    cr_assert(same,
              "the failed lam_layer_create_shared changed the original's weight shape to %s "
              "(summary now \"%s\"), expected (8, None)",
              got, sum);
    bu_assert_released();
}

/* ---- across block types (what lamina.h says in place of Gluon's sharing of any dict) ------ */

/* A custom block applying another block's weight: y = x W^T, W = lam_block_param(dense, ...). */
static lam_status tied_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                               lam_tensor **out) {
    (void)self, (void)n;
    lam_tensor *w = NULL;
    lam_status st = lam_param_data(lam_block_param(state, "weight"), &w);
    if (st == LAM_OK) {
        st = lam_op_matmul(in[0], w, 0, 1, out);
    }
    lam_tensor_release(w);
    return st;
}

Test(sharing, custom_block_using_a_layers_weight_adds_up_gradients) {
    lam_block *dense = bu_layer("Dense", "units=3, in_units=4, use_bias=false");
    lam_block *tied = NULL;
    BU_OK(lam_block_create("Tied", tied_forward, dense, NULL, &tied));
    BU_OK(lam_block_initialize(dense, NULL, NULL, 0));
    lam_tensor *x = bu_ramp(BU_SHAPE(2, 4), -1.0f, 1.0f), *a = NULL, *b = NULL, *s = NULL,
               *loss = NULL;
    lam_autograd_set_recording(1);
    BU_OK(lam_block_call(dense, x, &a));
    BU_OK(lam_block_call(tied, x, &b));
    BU_OK(lam_op_add(a, b, &s));
    BU_OK(lam_op_sum(s, NULL, 0, 0, &loss));
    lam_autograd_set_recording(0);
    BU_OK(lam_autograd_backward(loss, NULL));
    /* d sum(x W^T) / dW[j][k] = sum_i x[i][k], once per use: twice that. */
    lam_tensor *g = NULL;
    BU_OK(lam_param_grad(bu_param(dense, "weight"), &g));
    size_t ng, nx;
    float *gv = bu_values(g, &ng), *xv = bu_values(x, &nx);
    cr_assert_eq(ng, 12);
    for (size_t j = 0; j < 3; j++) {
        for (size_t k = 0; k < 4; k++) {
            float want = 2.0f * (xv[k] + xv[4 + k]);
            cr_assert(bu_close(gv[j * 4 + k], want, BU_RTOL, BU_ATOL), "grad[%zu][%zu] %g != %g", j,
                      k, (double)gv[j * 4 + k], (double)want);
        }
    }
    free(gv);
    free(xv);
    lam_tensor_release(g);
    lam_tensor_release(loss);
    lam_tensor_release(s);
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(x);
    lam_block_release(tied);
    lam_block_release(dense);
    bu_assert_released();
}
