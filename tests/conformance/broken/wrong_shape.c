/*
 * WrongShape: y = relu(x), but infer_shape claims one more feature than forward produces:
 * shape.infer must catch it.
 */
#include "common.h"

static lam_status ws_infer(void *state, lam_layer *layer, uint32_t n,
                           const lam_tensor_info *const *in, uint32_t n_out,
                           lam_tensor_info *const *out) {
    (void)n_out;
    lam_status st = same_shape(state, layer, n, in, n_out, out);
    if (st == LAM_OK && out[0]->ndim > 0) {
        out[0]->dims[out[0]->ndim - 1] += 1; /* the defect */
    }
    return st;
}

static lam_status ws_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    *out = NULL;
    lam_status st = one_input(layer, n);
    return st == LAM_OK ? lam_p_unary(g_host, LAM_OP_RELU, in[0], out) : st;
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "WrongShape",
    .prefix = "wrongshape",
    .version = "0.0.1",
    .doc = "relu whose infer_shape adds a feature (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = ws_infer,
    .forward = ws_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
