/*
 * A layer plugin of ABI 1.0 (built against the 1.0 headers copied in this directory) that
 * registers without calling lam_plugin_check_host first: the 2.0 registry must refuse its
 * descriptor by version, naming both (the 1.0 header puts struct_size and abi_version where
 * every major does).
 */
#include "lamina/plugin.h"

static lam_status v1_create(lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)layer, (void)attrs;
    *state = NULL;
    return LAM_OK;
}
static void v1_destroy(void *state) {
    (void)state;
}
static lam_status v1_infer(void *state, lam_layer *layer, uint32_t n, const lam_shape *in,
                           lam_shape *out) {
    (void)state, (void)layer, (void)n;
    *out = in[0];
    return LAM_OK;
}
static lam_status v1_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             lam_tensor **out) {
    (void)state, (void)layer, (void)n, (void)in;
    *out = NULL;
    return LAM_ERR_UNSUPPORTED;
}

static const lam_layer_desc v1_desc = {
    LAM_LAYER_DESC_HEADER,   .name = "DirectV1",
    .version = "1.0.0",      .doc = "an ABI 1.0 layer that skips the host check",
    .create = v1_create,     .destroy = v1_destroy,
    .infer_shape = v1_infer, .forward = v1_forward,
};

LAM_PLUGIN_ENTRY {
    return host->register_layer(plugin, &v1_desc);
}
