/*
 * centered.c - Centered, the chapter's CenteredLayer: y = x - mean(x), the mean taken over all
 * elements. No attributes, no parameters, no state. See mydense/mydense.c for the plugin
 * structure itself.
 */
#include "lamina/plugin_ops.h"

#include <stdio.h>

static const lam_host_api *g_host;

static lam_status centered_create(void *user, lam_layer *layer, const lam_attrs *attrs,
                                  void **state) {
    (void)user;
    (void)layer;
    (void)attrs;
    *state = NULL;
    return LAM_OK;
}

static void centered_destroy(void *state) {
    (void)state;
}

static lam_status check_one_input(const lam_layer *layer, uint32_t n_inputs) {
    if (n_inputs != 1) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Wrong number of inputs, expected 1, got %u",
                                g_host->layer_name(layer), (unsigned)n_inputs);
    }
    return LAM_OK;
}

static lam_status centered_infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                                       const lam_tensor_info *const *inputs, uint32_t n_outputs,
                                       lam_tensor_info *const *outputs) {
    (void)state;
    (void)n_outputs;
    lam_status st = check_one_input(layer, n_inputs);
    if (st != LAM_OK) {
        return st;
    }
    outputs[0]->dtype = inputs[0]->dtype;
    outputs[0]->ndim = inputs[0]->ndim;
    for (uint32_t i = 0; i < inputs[0]->ndim && i < LAM_MAX_DIMS; i++) {
        outputs[0]->dims[i] = inputs[0]->dims[i];
    }
    return LAM_OK;
}

static lam_status centered_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                                   lam_tensor *const *inputs, uint32_t n_outputs,
                                   lam_tensor **outputs) {
    (void)state;
    (void)n_outputs;
    outputs[0] = NULL;
    lam_status st = check_one_input(layer, n_inputs);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *mean = NULL; /* 0-d; the subtraction broadcasts it over x */
    st = lam_p_reduce_all(g_host, LAM_OP_REDUCE_MEAN, inputs[0], 0, &mean);
    if (st == LAM_OK) {
        st = lam_p_sub(g_host, inputs[0], mean, &outputs[0]);
    }
    g_host->tensor_release(mean);
    return st;
}

static lam_status centered_describe(void *state, lam_layer *layer, char *buf, size_t cap) {
    (void)state;
    (void)layer;
    snprintf(buf, cap, "Centered()");
    return LAM_OK;
}

static const lam_layer_desc centered_desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Centered",
    .prefix = "centered",
    .version = "2.0.0",
    .doc = "x - mean(x) over all elements (the chapter's CenteredLayer)",
    .n_attrs = 0,
    .attrs = NULL,
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .create = centered_create,
    .destroy = centered_destroy,
    .infer_shape = centered_infer_shape,
    .forward = centered_forward,
    .backward = NULL,
    .describe = centered_describe,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &centered_desc);
}
