/*
 * Leaky: y = relu(x), but forward keeps a reference to every input it sees and never drops
 * it: the leak checks (live tensor count) must catch it.
 */
#include "common.h"

static lam_status lk_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    *out = NULL;
    lam_status st = one_input(layer, n);
    if (st != LAM_OK) {
        return st;
    }
    (void)g_host->tensor_retain(in[0]); /* the defect: never released */
    return lam_p_unary(g_host, LAM_OP_RELU, in[0], out);
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Leaky",
    .prefix = "leaky",
    .version = "0.0.1",
    .doc = "relu that leaks a reference to its input (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = same_shape,
    .forward = lk_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
