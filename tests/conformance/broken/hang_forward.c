/*
 * HangForward: forward never returns. The kit must report a timeout naming where the check
 * was, and go on.
 */
#include "common.h"

static lam_status hf_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    (void)layer;
    (void)n;
    (void)in;
    *out = NULL;
    volatile int spin = 1;
    while (spin) { /* the defect */
    }
    return LAM_OK;
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "HangForward",
    .prefix = "hangforward",
    .version = "0.0.1",
    .doc = "never returns from forward (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = same_shape,
    .forward = hf_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
