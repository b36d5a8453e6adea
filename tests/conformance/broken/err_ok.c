/*
 * ErrOk: y = relu(x), correct, but forward sets an error message and still returns LAM_OK:
 * the errors check (a successful call leaves no message) must catch it.
 */
#include "common.h"

static lam_status eo_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    *out = NULL;
    lam_status st = one_input(layer, n);
    if (st == LAM_OK) {
        st = lam_p_unary(g_host, LAM_OP_RELU, in[0], out);
    }
    if (st == LAM_OK) {
        /* the defect: an error reported but success returned */
        (void)lam_plugin_error(g_host, LAM_ERR_INTERNAL, "%s: Internal error, reported but ignored",
                               g_host->layer_name(layer));
    }
    return st;
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "ErrOk",
    .prefix = "errok",
    .version = "0.0.1",
    .doc = "relu whose forward sets an error and returns LAM_OK (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = same_shape,
    .forward = eo_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
