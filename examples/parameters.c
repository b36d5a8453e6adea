/*
 * Section 4.2, parameter management: access, initialization (built-in and custom) and sharing.
 */
#include "example_util.h"

#include <math.h>
#include <string.h>

/* The chapter's MyInit: uniform in [-10, 10], then zero every element with |x| < 5. */
static lam_status my_init(const char *name, const lam_shape *shape, float *data, size_t count,
                          lam_rng *rng, void *user) {
    (void)user;
    char b[64];
    printf("Init %s %s\n", name, lam_shape_format(shape, b, sizeof b));
    for (size_t i = 0; i < count; i++) {
        float x = lam_rng_uniform(rng, -10.0f, 10.0f);
        data[i] = fabsf(x) < 5.0f ? 0.0f : x;
    }
    return LAM_OK;
}

static void stats(const char *label, lam_param *p) {
    lam_tensor *t;
    CHECK(lam_param_data(p, &t));
    size_t n = (size_t)lam_tensor_numel(t);
    float *v = malloc(n * sizeof *v);
    CHECK(lam_tensor_read(t, v, n));
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++) {
        mean += v[i];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        var += (v[i] - mean) * (v[i] - mean);
    }
    printf("%s: mean %.4f std %.4f\n", label, mean, sqrt(var / (double)n));
    free(v);
}

int main(void) {
    char buf[2048], title[64];
    lam_seed(0);
    CHECK(lam_scope_begin()); /* every tensor below is released by lam_scope_end */
    lam_block *net, *d0, *d1;
    CHECK(lam_sequential_create(&net));
    CHECK(lam_layer_create("Dense", "units=256, activation=relu", &d0));
    CHECK(lam_layer_create("Dense", "units=10", &d1));
    CHECK(lam_sequential_add(net, d0));
    CHECK(lam_sequential_add(net, d1));
    lam_block_release(d0);
    lam_block_release(d1);
    CHECK(lam_block_initialize(net, NULL, NULL, 0)); /* Uniform(0.07) weights, zero biases */
    lam_tensor *x = example_uniform(2, 20, 0.0f, 1.0f, 1), *y;
    CHECK(lam_block_call(net, x, &y));

    printf("== Access\n");
    lam_block *first = lam_block_child_at(net, 0), *second = lam_block_child_at(net, 1);
    lam_param_list *params;
    CHECK(lam_block_params(first, &params));
    snprintf(title, sizeof title, "%s_", lam_block_name(first));
    printf("%s\n", lam_param_list_format(params, title, buf, sizeof buf));
    lam_param_list_destroy(params);
    example_print_param("net[0].weight", lam_block_param(first, "weight"), 4);
    lam_tensor *g;
    CHECK(lam_param_grad(lam_block_param(first, "weight"), &g));
    example_print("net[0].weight grad", g, 4);
    example_print_param("net[1].bias", lam_block_param(second, "bias"), 4);

    printf("== collect_params\n");
    CHECK(lam_block_collect_params(net, NULL, &params));
    snprintf(title, sizeof title, "%s_", lam_block_name(net));
    printf("%s\n", lam_param_list_format(params, title, buf, sizeof buf));
    for (size_t i = 0; i < lam_param_list_count(params); i++) {
        printf("key %s -> %s\n", lam_param_list_key(params, i),
               lam_param_name(lam_param_list_get(params, i)));
    }
    lam_param_list_destroy(params);
    CHECK(lam_block_collect_params(net, ".*weight", &params));
    printf("%s\n", lam_param_list_format(params, title, buf, sizeof buf));
    lam_param_list_destroy(params);

    printf("== Built-in initializers\n");
    lam_initializer *init;
    CHECK(lam_init_normal(0.01f, &init));
    CHECK(lam_block_initialize(net, init, NULL, 1));
    lam_initializer_release(init);
    stats("Normal(sigma=0.01) net[0].weight", lam_block_param(first, "weight"));
    example_print_param("net[0].bias", lam_block_param(first, "bias"), 4);
    CHECK(lam_init_constant(1.0f, &init));
    CHECK(lam_block_initialize(net, init, NULL, 1));
    lam_initializer_release(init);
    example_print_param("Constant(1) net[0].weight", lam_block_param(first, "weight"), 4);
    CHECK(lam_init_xavier(LAM_XAVIER_UNIFORM, LAM_XAVIER_AVG, 3.0f, &init));
    CHECK(lam_param_initialize(lam_block_param(first, "weight"), init, NULL, 1));
    lam_initializer_release(init);
    stats("Xavier net[0].weight", lam_block_param(first, "weight"));
    printf("Xavier bound sqrt(3/((20+256)/2)) = %.4f\n", sqrt(3.0 / 138.0));

    printf("== Custom initializer\n");
    CHECK(lam_init_custom("MyInit", my_init, NULL, &init));
    CHECK(lam_block_initialize(net, init, NULL, 1));
    lam_initializer_release(init);
    example_print_param("net[0].weight", lam_block_param(first, "weight"), 6);
    lam_tensor *w, *w1;
    CHECK(lam_param_data(lam_block_param(first, "weight"), &w));
    CHECK(lam_op_add_scalar(w, 1.0f, &w1));
    CHECK(lam_param_set_data(lam_block_param(first, "weight"), w1));
    example_print_param("after set_data(w + 1)", lam_block_param(first, "weight"), 6);

    printf("== Shared parameters\n");
    lam_block *net2, *a, *shared, *again, *out;
    CHECK(lam_sequential_create(&net2));
    CHECK(lam_layer_create("Dense", "units=8, activation=relu", &a));
    CHECK(lam_layer_create("Dense", "units=8, activation=relu", &shared));
    CHECK(lam_layer_create_shared("Dense", "units=8, activation=relu", shared, &again));
    CHECK(lam_layer_create("Dense", "units=10", &out));
    CHECK(lam_sequential_add(net2, a));
    CHECK(lam_sequential_add(net2, shared));
    CHECK(lam_sequential_add(net2, again));
    CHECK(lam_sequential_add(net2, out));
    example_summary(net2);
    CHECK(lam_init_xavier(LAM_XAVIER_UNIFORM, LAM_XAVIER_AVG, 3.0f, &init));
    CHECK(lam_block_initialize(net2, init, NULL, 0));
    lam_initializer_release(init);
    CHECK(lam_block_call(net2, x, &y));
    example_summary(net2);
    example_print("net(X)", y, 4);
    printf("net[1] weight is %s, net[2] weight is %s\n",
           lam_param_name(lam_block_param(shared, "weight")),
           lam_param_name(lam_block_param(again, "weight")));
    /* Change one element through net[1]; net[2] sees it: it is the same storage. */
    float v[64];
    CHECK(lam_param_data(lam_block_param(shared, "weight"), &w));
    CHECK(lam_tensor_read(w, v, 64));
    v[0] = 100.0f;
    CHECK(lam_tensor_write(w, v, 64));
    CHECK(lam_param_data(lam_block_param(again, "weight"), &w));
    CHECK(lam_tensor_read(w, v, 64));
    printf("net[2].weight[0][0] after setting net[1].weight[0][0] = 100: %.1f\n", v[0]);
    CHECK(lam_block_collect_params(net2, NULL, &params));
    printf("collect_params lists %zu parameters (the shared pair once)\n",
           lam_param_list_count(params));
    lam_param_list_destroy(params);

    lam_block_release(a);
    lam_block_release(shared);
    lam_block_release(again);
    lam_block_release(out);
    lam_block_release(net2);
    lam_block_release(net);
    CHECK(lam_scope_end());
    lam_shutdown();
    return 0;
}
