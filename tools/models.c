/* The models of `lamina train` and `lamina inspect --model`: the chapter's MLP and a
 * LeNet-style CNN, built from the layer plugins. */
#include "cli.h"

#include <stdio.h>

#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((st = (call)) != LAM_OK) {                                                             \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* in -> hidden (relu) [-> shared hidden (relu) twice] -> classes */
lam_status model_mlp(int64_t hidden, int shared_layer, int64_t classes, lam_block **out) {
    lam_block *net = NULL, *l = NULL, *shared = NULL, *again = NULL;
    char attrs[128];
    lam_status st;
    TRY(lam_sequential_create(&net));
    snprintf(attrs, sizeof attrs, "units=%lld, activation=relu", (long long)hidden);
    TRY(lam_layer_create("Dense", attrs, &l));
    TRY(lam_sequential_add(net, l));
    if (shared_layer) {
        TRY(lam_layer_create("Dense", attrs, &shared));
        TRY(lam_layer_create_shared("Dense", attrs, shared, &again));
        TRY(lam_sequential_add(net, shared));
        TRY(lam_sequential_add(net, again));
    }
    lam_block_release(l);
    snprintf(attrs, sizeof attrs, "units=%lld", (long long)classes);
    TRY(lam_layer_create("Dense", attrs, &l));
    TRY(lam_sequential_add(net, l));
    lam_block_release(l);
    lam_block_release(shared);
    lam_block_release(again);
    *out = net;
    return LAM_OK;
fail:
    lam_block_release(l);
    lam_block_release(shared);
    lam_block_release(again);
    lam_block_release(net);
    return st;
}

/* Appends the layer plugin `type` made with `attrs`. */
static lam_status add_layer(lam_block *net, const char *type, const char *attrs) {
    lam_block *l = NULL;
    lam_status st = lam_layer_create(type, attrs, &l);
    if (st == LAM_OK) {
        st = lam_sequential_add(net, l);
    }
    lam_block_release(l);
    return st;
}

/* LeNet-style: (conv 3x3 - BatchNorm - relu - max pool 2x2) x 2, flatten, dropout, dense. The
 * Sequential's children 0..10 are, in order: Conv2D, BatchNorm, Activation, MaxPool2D,
 * Conv2D, BatchNorm, Activation, MaxPool2D, Flatten, Dropout, Dense (the structural keys of
 * the parameter file, "0.weight", "1.running_mean", ..., "10.weight"). */
lam_status model_cnn(const int64_t image[3], int64_t classes, lam_block **out) {
    lam_block *net = NULL;
    char attrs[160];
    lam_status st;
    TRY(lam_sequential_create(&net));
    int64_t in_c = image[0];
    for (int i = 0; i < 2; i++) {
        int64_t ch = i == 0 ? CNN_C1 : CNN_C2;
        snprintf(attrs, sizeof attrs, "channels=%lld, kernel_size=3, padding=1, in_channels=%lld",
                 (long long)ch, (long long)in_c);
        TRY(add_layer(net, "Conv2D", attrs));
        snprintf(attrs, sizeof attrs, "in_channels=%lld", (long long)ch);
        TRY(add_layer(net, "BatchNorm", attrs));
        TRY(add_layer(net, "Activation", "act_type=relu"));
        TRY(add_layer(net, "MaxPool2D", "pool_size=2, strides=2"));
        in_c = ch;
    }
    TRY(add_layer(net, "Flatten", NULL));
    snprintf(attrs, sizeof attrs, "rate=%g", CNN_DROPOUT);
    TRY(add_layer(net, "Dropout", attrs));
    snprintf(attrs, sizeof attrs, "units=%lld, in_units=%lld", (long long)classes,
             (long long)(CNN_C2 * (image[1] / 4) * (image[2] / 4)));
    TRY(add_layer(net, "Dense", attrs));
    *out = net;
    return LAM_OK;
fail:
    lam_block_release(net);
    return st;
}
