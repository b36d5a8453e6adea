/*
 * The CNN's layers as custom blocks over core ops, for as long as the layer plugins Conv2D,
 * MaxPool2D and Flatten are not in the tree: same parameter names and shapes as the plugins.
 * Shapes are known up front (no deferred initialization).
 */
#include "cnn_core_layers.h"

#include <stdlib.h>

typedef struct conv_state {
    int64_t pad;
} conv_state;

static lam_status conv_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                               lam_tensor **out) {
    (void)n;
    conv_state *s = state;
    lam_tensor *w = NULL, *b = NULL;
    lam_status st = lam_param_data(lam_block_param(self, "weight"), &w);
    if (st == LAM_OK) {
        st = lam_param_data(lam_block_param(self, "bias"), &b);
    }
    if (st == LAM_OK) {
        lam_conv2d_params p = LAM_CONV2D_PARAMS_INIT;
        p.pad[0] = p.pad[1] = s->pad;
        st = lam_op_conv2d(in[0], w, b, &p, out);
    }
    lam_tensor_release(w);
    lam_tensor_release(b);
    return st;
}

lam_status cl_conv(int64_t in_c, int64_t out_c, int64_t k, int64_t pad, lam_block **out) {
    conv_state *s = malloc(sizeof *s);
    if (s == NULL) {
        return lam_set_error(LAM_ERR_OUT_OF_MEMORY, "Conv2D: Out of memory");
    }
    s->pad = pad;
    lam_status st = lam_block_create("Conv", conv_forward, s, free, out);
    if (st != LAM_OK) {
        free(s);
        return st;
    }
    int64_t wd[4] = {out_c, in_c, k, k};
    lam_shape ws, bs;
    lam_shape_init(&ws, 4, wd);
    lam_shape_init(&bs, 1, &out_c);
    if ((st = lam_block_param_new(*out, "weight", &ws, NULL, NULL)) != LAM_OK ||
        (st = lam_block_param_new(*out, "bias", &bs, NULL, NULL)) != LAM_OK) {
        lam_block_release(*out);
        *out = NULL;
    }
    return st;
}

static lam_status pool_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                               lam_tensor **out) {
    (void)self;
    (void)state;
    (void)n;
    lam_pool2d_params p = LAM_POOL2D_PARAMS_INIT(2, 2);
    return lam_op_max_pool2d(in[0], &p, out, NULL);
}

lam_status cl_maxpool(lam_block **out) {
    return lam_block_create("MaxPool", pool_forward, NULL, NULL, out);
}

static lam_status flatten_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                  lam_tensor **out) {
    (void)self;
    (void)state;
    (void)n;
    const lam_shape *xs = lam_tensor_shape(in[0]);
    int64_t d[2] = {xs->dims[0], lam_shape_numel(xs) / (xs->dims[0] ? xs->dims[0] : 1)};
    lam_shape s;
    lam_shape_init(&s, 2, d);
    return lam_tensor_reshape(in[0], &s, out);
}

lam_status cl_flatten(lam_block **out) {
    return lam_block_create("Flatten", flatten_forward, NULL, NULL, out);
}
