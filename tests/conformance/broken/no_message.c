/*
 * NoMessage: y = relu(x) for (batch, features) inputs; any other rank is refused with
 * LAM_ERR_SHAPE but without a message: bad_input.rank must catch the missing message.
 */
#include "common.h"

static lam_status nm_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    *out = NULL;
    lam_status st = one_input(layer, n);
    if (st != LAM_OK) {
        return st;
    }
    if (g_host->tensor_shape(in[0])->ndim != 2) {
        return LAM_ERR_SHAPE; /* the defect: no host->set_error */
    }
    return lam_p_unary(g_host, LAM_OP_RELU, in[0], out);
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "NoMessage",
    .prefix = "nomessage",
    .version = "0.0.1",
    .doc = "relu that refuses other ranks without a message (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = same_shape,
    .forward = nm_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
