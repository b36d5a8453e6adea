/*
 * Shared pieces of the deliberately broken plugins: each file is a small, otherwise correct
 * plugin with exactly one defect that one conformance check is meant to catch.
 */
#ifndef LAMINA_CONFORM_BROKEN_COMMON_H
#define LAMINA_CONFORM_BROKEN_COMMON_H

#include "lamina/plugin_ops.h"

#include <stddef.h>

static const lam_host_api *g_host;

static lam_status one_input(const lam_layer *layer, uint32_t n_inputs) {
    if (n_inputs != 1) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Wrong number of inputs, expected 1, got %u",
                                g_host->layer_name(layer), (unsigned)n_inputs);
    }
    return LAM_OK;
}

static lam_status no_state(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user;
    (void)layer;
    (void)attrs;
    *state = NULL;
    return LAM_OK;
}

static void no_destroy(void *state) {
    (void)state;
}

/* Output dtype and shape = the input's. */
static lam_status same_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                             const lam_tensor_info *const *inputs, uint32_t n_outputs,
                             lam_tensor_info *const *outputs) {
    (void)state;
    (void)n_outputs;
    lam_status st = one_input(layer, n_inputs);
    if (st == LAM_OK) {
        outputs[0]->dtype = inputs[0]->dtype;
        outputs[0]->ndim = inputs[0]->ndim;
        for (uint32_t i = 0; i < inputs[0]->ndim && i < LAM_MAX_DIMS; i++) {
            outputs[0]->dims[i] = inputs[0]->dims[i];
        }
    }
    return st;
}

#endif
