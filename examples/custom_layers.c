/*
 * Section 4.4, custom layers: Centered (no parameters) and MyDense (with parameters), both
 * plugins (plugins/layers/centered, plugins/layers/mydense), used alone and inside models.
 */
#include "example_util.h"

#include <math.h>

int main(void) {
    lam_seed(0);
    CHECK(lam_scope_begin()); /* every tensor below is released by lam_scope_end */

    printf("== Centered: x - mean(x)\n");
    lam_block *centered;
    CHECK(lam_layer_create("Centered", NULL, &centered));
    float v[5] = {1, 2, 3, 4, 5};
    int64_t d5[1] = {5};
    lam_shape s5;
    CHECK(lam_shape_init(&s5, 1, d5));
    lam_tensor *x, *y;
    CHECK(lam_tensor_from_data(NULL, &s5, v, 5, &x));
    CHECK(lam_block_call(centered, x, &y)); /* no parameters: no initialize needed */
    example_print("layer([1, 2, 3, 4, 5])", y, 5);

    lam_block *net, *dense;
    CHECK(lam_sequential_create(&net));
    CHECK(lam_layer_create("Dense", "units=128", &dense));
    CHECK(lam_sequential_add(net, dense));
    CHECK(lam_sequential_add(net, centered));
    lam_block_release(dense);
    CHECK(lam_block_initialize(net, NULL, NULL, 0));
    x = example_uniform(4, 8, 0.0f, 1.0f, 4);
    CHECK(lam_block_call(net, x, &y));
    lam_tensor *m;
    float mean;
    CHECK(lam_op_mean(y, NULL, 0, 0, &m));
    CHECK(lam_tensor_scalar(m, &mean));
    printf("mean of Sequential(Dense(128), Centered())(X) is 0 within 1e-6: %s\n",
           fabsf(mean) < 1e-6f ? "yes" : "no");
    example_summary(net);
    lam_block_release(net);
    lam_block_release(centered);

    printf("== MyDense(units=3, in_units=5)\n");
    lam_block *mydense;
    CHECK(lam_layer_create("MyDense", "units=3, in_units=5", &mydense));
    lam_param_list *params;
    char buf[1024], title[64];
    CHECK(lam_block_params(mydense, &params));
    snprintf(title, sizeof title, "%s_", lam_block_name(mydense));
    printf("%s\n", lam_param_list_format(params, title, buf, sizeof buf));
    lam_param_list_destroy(params);
    CHECK(lam_block_initialize(mydense, NULL, NULL, 0));
    x = example_uniform(2, 5, 0.0f, 1.0f, 5);
    CHECK(lam_block_call(mydense, x, &y));
    example_print("dense(X)", y, 6);
    lam_block_release(mydense);

    printf("== Sequential(MyDense(8, in_units=64), MyDense(1, in_units=8))\n");
    lam_block *a, *b;
    CHECK(lam_sequential_create(&net));
    CHECK(lam_layer_create("MyDense", "units=8, in_units=64", &a));
    CHECK(lam_layer_create("MyDense", "units=1, in_units=8", &b));
    CHECK(lam_sequential_add(net, a));
    CHECK(lam_sequential_add(net, b));
    lam_block_release(a);
    lam_block_release(b);
    CHECK(lam_block_initialize(net, NULL, NULL, 0));
    example_summary(net);
    x = example_uniform(2, 64, 0.0f, 1.0f, 6);
    CHECK(lam_block_call(net, x, &y));
    example_print("net(X)", y, 2);
    lam_block_release(net);

    printf("== A wrong input size for MyDense\n");
    CHECK(lam_layer_create("MyDense", "units=3, in_units=5", &mydense));
    CHECK(lam_block_initialize(mydense, NULL, NULL, 0));
    x = example_uniform(2, 4, 0.0f, 1.0f, 7);
    if (lam_block_call(mydense, x, &y) != LAM_OK) {
        printf("error: %s\n", lam_last_error());
    }
    lam_block_release(mydense);
    CHECK(lam_scope_end());
    lam_shutdown();
    return 0;
}
