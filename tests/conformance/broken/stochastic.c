/*
 * Stochastic: y = x * (1 + 0.05 u), u a fresh pseudo-random number each call (no training
 * flag, no seed): finite differences cannot judge any point, and grad.finite_diff must fail
 * rather than pass over zero judged elements.
 */
#include "common.h"

static unsigned g_calls;

static lam_status st_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    *out = NULL;
    lam_status st = one_input(layer, n);
    if (st != LAM_OK) {
        return st;
    }
    g_calls = g_calls * 1103515245u + 12345u; /* the defect: output depends on the call count */
    float u = (float)((g_calls >> 8) & 0xffff) / 65536.0f;
    return lam_p_scalar(g_host, LAM_OP_MUL_SCALAR, in[0], 1.0 + 0.05 * (double)u, out);
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Stochastic",
    .prefix = "stochastic",
    .version = "0.0.1",
    .doc = "x times a random factor drawn at every call (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = same_shape,
    .forward = st_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
