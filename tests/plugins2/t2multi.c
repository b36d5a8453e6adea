/*
 * t2multi.c - a layer with two outputs (ABI 2.0: n_outputs in the descriptor): TTwo gives
 * 2x and x + 1. tests/plugins2/test_t2layers.c drives it through lam_block_forward_outputs.
 */
#include "lamina/plugin.h"
#include "lamina/plugin_ops.h"

#include <string.h>

static const lam_host_api *H;

static lam_status create(void *user, lam_layer *l, const lam_attrs *a, void **state) {
    (void)user;
    (void)l;
    (void)a;
    *state = NULL;
    return LAM_OK;
}

static void destroy(void *state) {
    (void)state;
}

static lam_status infer(void *st, lam_layer *l, uint32_t ni, const lam_tensor_info *const *in,
                        uint32_t no, lam_tensor_info *const *out) {
    (void)st;
    (void)l;
    (void)ni;
    for (uint32_t i = 0; i < no; i++) {
        out[i]->dtype = in[0]->dtype;
        out[i]->ndim = in[0]->ndim;
        memcpy(out[i]->dims, in[0]->dims, sizeof out[i]->dims);
    }
    return LAM_OK;
}

static lam_status forward(void *st, lam_layer *l, uint32_t ni, lam_tensor *const *in, uint32_t no,
                          lam_tensor **out) {
    (void)st;
    (void)l;
    (void)ni;
    (void)no;
    lam_status s = lam_p_scalar(H, LAM_OP_MUL_SCALAR, in[0], 2.0, &out[0]);
    return s == LAM_OK ? lam_p_scalar(H, LAM_OP_ADD_SCALAR, in[0], 1.0, &out[1]) : s;
}

static const lam_layer_desc two = {LAM_LAYER_DESC_HEADER,
                                   .name = "TTwo",
                                   .prefix = "ttwo",
                                   .version = "2.0.0",
                                   .doc = "two outputs: 2x and x + 1 (test plugin)",
                                   .n_outputs = 2,
                                   .create = create,
                                   .destroy = destroy,
                                   .infer_shape = infer,
                                   .forward = forward};

/* TPair: exactly two inputs through "min 2, max 0" (max 0 means min), output x + y. */
static lam_status pair_forward(void *st, lam_layer *l, uint32_t ni, lam_tensor *const *in,
                               uint32_t no, lam_tensor **out) {
    (void)st;
    (void)l;
    (void)ni;
    (void)no;
    return lam_p_add(H, in[0], in[1], &out[0]);
}

static const lam_layer_desc pair = {LAM_LAYER_DESC_HEADER,
                                    .name = "TPair",
                                    .prefix = "tpair",
                                    .version = "2.0.0",
                                    .doc = "x + y, exactly two inputs (test plugin)",
                                    .min_inputs = 2,
                                    .max_inputs = 0,
                                    .create = create,
                                    .destroy = destroy,
                                    .infer_shape = infer,
                                    .forward = pair_forward};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    H = host;
    st = host->register_layer(plugin, &two);
    return st != LAM_OK ? st : host->register_layer(plugin, &pair);
}
