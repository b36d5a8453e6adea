/*
 * Section 4.3, deferred initialization: initialize() only records the initializer while the
 * input size is unknown; the first forward infers shapes, allocates and initializes.
 */
#include "example_util.h"

#include <math.h>
#include <string.h>

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

static lam_block *make_net(const char *first_attrs) {
    lam_block *net, *a, *b;
    CHECK(lam_sequential_create(&net));
    CHECK(lam_layer_create("Dense", first_attrs, &a));
    CHECK(lam_layer_create("Dense", "units=10", &b));
    CHECK(lam_sequential_add(net, a));
    CHECK(lam_sequential_add(net, b));
    lam_block_release(a);
    lam_block_release(b);
    return net;
}

static void weights(lam_block *net, float *out, size_t n) {
    lam_tensor *w;
    CHECK(lam_param_data(lam_block_param(lam_block_child_at(net, 0), "weight"), &w));
    CHECK(lam_tensor_read(w, out, n));
}

int main(void) {
    lam_seed(0);
    CHECK(lam_scope_begin()); /* every tensor below is released by lam_scope_end */
    lam_initializer *init;
    CHECK(lam_init_custom("MyInit", my_init, NULL, &init));
    lam_block *net = make_net("units=256, activation=relu");

    printf("== initialize() with an unknown input size\n");
    CHECK(lam_block_initialize(net, init, NULL, 0));
    printf("(nothing initialized yet)\n");
    example_summary(net);
    lam_tensor *w, *x = example_uniform(2, 20, 0.0f, 1.0f, 1), *y;
    if (lam_param_data(lam_block_param(lam_block_child_at(net, 0), "weight"), &w) != LAM_OK) {
        printf("error: %s\n", lam_last_error());
    }

    printf("== first forward\n");
    CHECK(lam_block_call(net, x, &y));
    example_summary(net);
    printf("== second forward (no initialization)\n");
    CHECK(lam_block_call(net, x, &y));
    example_print("net(X)", y, 2);

    printf("== re-initialize after shapes are known\n");
    CHECK(lam_block_initialize(net, init, NULL, 1));

    printf("== in_units avoids deferral\n");
    lam_block *eager = make_net("units=256, activation=relu, in_units=20");
    CHECK(lam_block_initialize(eager, init, NULL, 0));

    printf("== eager and deferred initialization give bit-identical weights\n");
    lam_block *deferred = make_net("units=256, activation=relu");
    CHECK(lam_block_initialize(deferred, init, NULL, 0));
    CHECK(lam_block_call(deferred, x, &y));
    static float we[256 * 20], wd[256 * 20];
    weights(eager, we, 256 * 20);
    weights(deferred, wd, 256 * 20);
    printf("identical: %s\n", memcmp(we, wd, sizeof we) == 0 ? "yes" : "no");

    printf("== another feature size\n");
    lam_tensor *x10 = example_uniform(2, 10, 0.0f, 1.0f, 2);
    if (lam_block_call(net, x10, &y) != LAM_OK) {
        printf("error: %s\n", lam_last_error());
    }
    printf("== another batch size\n");
    lam_tensor *x5 = example_uniform(5, 20, 0.0f, 1.0f, 3);
    CHECK(lam_block_call(net, x5, &y));
    char b[64];
    printf("net(X) with batch 5 has shape %s\n",
           lam_shape_format(lam_tensor_shape(y), b, sizeof b));

    lam_block_release(net);
    lam_block_release(eager);
    lam_block_release(deferred);
    lam_initializer_release(init);
    CHECK(lam_scope_end());
    lam_shutdown();
    return 0;
}
