/*
 * flatten.c - Flatten, Gluon's nn.Flatten: (batch, d1, d2, ...) -> (batch, d1*d2*...), a
 * reshape (a view of the same storage; its gradient is the reshape back). A 1-D input (batch,)
 * becomes (batch, 1), as MXNet's Flatten. No attributes, no parameters.
 */
#include "lamina/plugin_ops.h"

#include <stdio.h>
#include <stdlib.h>

static const lam_host_api *g_host;

static lam_status flatten_create(void *user, lam_layer *layer, const lam_attrs *attrs,
                                 void **state) {
    (void)user;
    (void)layer;
    (void)attrs;
    *state = NULL; /* nothing per instance */
    return LAM_OK;
}

static void flatten_destroy(void *state) {
    (void)state;
}

/* The flattened shape of an input, or an error naming the layer. */
static lam_status flat_shape(const lam_layer *layer, uint32_t ndim, const int64_t *dims,
                             lam_shape *out) {
    const char *name = g_host->layer_name(layer);
    if (ndim < 1 || ndim > LAM_MAX_DIMS) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, input has rank %u, Flatten needs (batch, "
                                "...) of rank 1 to %d",
                                name, (unsigned)ndim, LAM_MAX_DIMS);
    }
    int64_t rest = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        if (dims[i] < 0) {
            return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                    "%s: Shape mismatch, input dim %u is unknown (%lld)", name,
                                    (unsigned)i, (long long)dims[i]);
        }
        if (i > 0) {
            rest *= dims[i];
        }
    }
    *out = (lam_shape){.ndim = 2, .dims = {dims[0], rest}};
    return LAM_OK;
}

static lam_status flatten_infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                                      const lam_tensor_info *const *inputs, uint32_t n_outputs,
                                      lam_tensor_info *const *outputs) {
    (void)state;
    (void)n_inputs; /* the host checks the arity of the descriptor: one input, one output */
    (void)n_outputs;
    lam_shape s;
    lam_status st = flat_shape(layer, inputs[0]->ndim, inputs[0]->dims, &s);
    if (st != LAM_OK) {
        return st;
    }
    outputs[0]->dtype = inputs[0]->dtype;
    outputs[0]->ndim = 2;
    outputs[0]->dims[0] = s.dims[0];
    outputs[0]->dims[1] = s.dims[1];
    return LAM_OK;
}

static lam_status flatten_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                                  lam_tensor *const *inputs, uint32_t n_outputs,
                                  lam_tensor **outputs) {
    (void)state;
    (void)n_inputs;
    (void)n_outputs;
    outputs[0] = NULL;
    const lam_shape *xs = g_host->tensor_shape(inputs[0]);
    if (xs == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, input is NULL", g_host->layer_name(layer));
    }
    lam_shape s;
    lam_status st = flat_shape(layer, xs->ndim, xs->dims, &s);
    if (st != LAM_OK) {
        return st;
    }
    return g_host->tensor_reshape(inputs[0], &s, &outputs[0]);
}

/* Gluon's repr of Flatten is its bare class name. */
static lam_status flatten_describe(void *state, lam_layer *layer, char *buf, size_t cap) {
    (void)state;
    (void)layer;
    snprintf(buf, cap, "Flatten");
    return LAM_OK;
}

static const lam_tensor_info example_info = {
    (uint32_t)sizeof(lam_tensor_info), LAM_DTYPE_F32, 4, 0, {2, 3, 4, 5}};
static const lam_example_input example_input = {
    (uint32_t)sizeof(lam_example_input), LAM_DOMAIN_REAL, &example_info, -1.0, 1.0, NULL};
static const lam_example_input *const examples[] = {&example_input};

static const lam_layer_desc flatten_desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Flatten",
    .prefix = "flatten",
    .version = "2.0.0",
    .doc = "(batch, d1, d2, ...) -> (batch, d1*d2*...) (Gluon's nn.Flatten)",
    .n_attrs = 0,
    .attrs = NULL,
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .n_examples = 1,
    .examples = examples,
    .example_attrs = "",
    .create = flatten_create,
    .destroy = flatten_destroy,
    .infer_shape = flatten_infer_shape,
    .forward = flatten_forward,
    .describe = flatten_describe,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &flatten_desc);
}
