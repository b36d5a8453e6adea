/*
 * Shared pieces of the deliberately broken plugins: each file is a small, otherwise correct
 * plugin with exactly one defect that one conformance check is meant to catch.
 */
#ifndef LAMINA_CONFORM_BROKEN_COMMON_H
#define LAMINA_CONFORM_BROKEN_COMMON_H

#include "lamina/plugin.h"

#include <stddef.h>

static const lam_host_api *g_host;

static lam_status one_input(const lam_layer *layer, uint32_t n_inputs) {
    if (n_inputs != 1) {
        return g_host->set_error(LAM_ERR_SHAPE, "%s: Wrong number of inputs, expected 1, got %u",
                                 g_host->layer_name(layer), (unsigned)n_inputs);
    }
    return LAM_OK;
}

static lam_status no_state(lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)layer;
    (void)attrs;
    *state = NULL;
    return LAM_OK;
}

static void no_destroy(void *state) {
    (void)state;
}

/* Output shape = input shape. */
static lam_status same_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                             const lam_shape *inputs, lam_shape *output) {
    (void)state;
    lam_status st = one_input(layer, n_inputs);
    if (st == LAM_OK) {
        *output = inputs[0];
    }
    return st;
}

#endif
