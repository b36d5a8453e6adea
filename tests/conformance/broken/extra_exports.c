/*
 * ExtraExports: a correct relu layer built without the SDK's version script and with helpers
 * of default visibility, so it exports more than lamina_plugin_entry: plugin.exports must
 * catch it.
 */
#include "common.h"

/* The defect: public helpers (built with -fvisibility=default, no version script). */
LAM_EXPORT int extra_exports_helper(int x);
LAM_EXPORT int extra_exports_helper(int x) {
    return x + 1;
}
LAM_EXPORT int extra_exports_counter;
int extra_exports_counter = 0;

static lam_status ee_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    *out = NULL;
    lam_status st = one_input(layer, n);
    return st == LAM_OK ? lam_p_unary(g_host, LAM_OP_RELU, in[0], out) : st;
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "ExtraExports",
    .prefix = "extraexports",
    .version = "0.0.1",
    .doc = "relu exporting extra symbols (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = same_shape,
    .forward = ee_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    extra_exports_counter = extra_exports_helper(extra_exports_counter);
    return g_host->register_layer(plugin, &desc);
}
