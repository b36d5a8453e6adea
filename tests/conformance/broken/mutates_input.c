/*
 * MutatesInput: y = relu(x), but forward then overwrites its input with zeros: the
 * inputs_unchanged check must catch it.
 */
#include "common.h"

#include <stdlib.h>

static lam_status mi_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    *out = NULL;
    lam_status st = one_input(layer, n);
    if (st == LAM_OK) {
        st = lam_p_unary(g_host, LAM_OP_RELU, in[0], out);
    }
    if (st == LAM_OK) {
        const lam_shape *s = g_host->tensor_shape(in[0]);
        size_t count = 1;
        for (uint32_t d = 0; d < s->ndim; d++) {
            count *= (size_t)s->dims[d];
        }
        float *zeros = calloc(count + 1, sizeof *zeros);
        if (zeros != NULL) {
            (void)g_host->tensor_write(in[0], zeros, count * sizeof *zeros); /* the defect */
        }
        free(zeros);
    }
    return st;
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "MutatesInput",
    .prefix = "mutatesinput",
    .version = "0.0.1",
    .doc = "relu that zeroes its input (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = same_shape,
    .forward = mi_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
