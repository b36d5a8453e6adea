/*
 * mydense_v1.c - the in-tree MyDense layer exactly as it was at ABI 1.0 (plugins/layers/mydense
 * on main before the 2.0 break), built against the ABI 1.0 headers copied in this directory: a
 * real 1.0 plugin. Its entry calls the 1.0 lam_plugin_check_host, which reads the frozen first
 * fields of the 2.0 host table and refuses through the frozen set_error slot with "plugin: ABI
 * mismatch, plugin built for 1.0, host provides 2.x".
 */
#include "lamina/plugin.h"

#include <stdio.h>
#include <stdlib.h>

/* The host table, kept from lamina_plugin_entry: the plugin's only way to reach the host.
 * (Not named `host`: that is the entry's parameter.) */
static const lam_host_api *g_host;

/*
 * Step 1: the attribute schema. The host parses "units=3, in_units=5", rejects unknown names
 * (listing these), bad values and missing required attributes (default_value NULL) before
 * create is called, so create only reads validated values.
 */
static const lam_attr_desc mydense_attrs[] = {
    {.name = "units", .type = LAM_ATTR_INT, .default_value = NULL, .doc = "output features"},
    {.name = "in_units", .type = LAM_ATTR_INT, .default_value = NULL, .doc = "input features"},
};

/* Per-instance state: whatever the layer needs later. The host owns parameters, not this. */
typedef struct mydense_state {
    int64_t units;
    int64_t in_units;
} mydense_state;

/*
 * Step 2: create. Reads the attributes, checks what the schema cannot express, and declares
 * the parameters. Errors go through g_host->set_error with the instance's name as the subject
 * ("mydense0: ..."), and the status it returns is passed back to the host.
 */
static lam_status mydense_create(lam_layer *layer, const lam_attrs *attrs, void **state) {
    *state = NULL;
    int64_t units = 0;
    int64_t in_units = 0;
    lam_status st = g_host->attr_int(attrs, "units", &units);
    if (st == LAM_OK) {
        st = g_host->attr_int(attrs, "in_units", &in_units);
    }
    if (st != LAM_OK) {
        return st;
    }
    if (units <= 0 || in_units <= 0) {
        return g_host->set_error(LAM_ERR_INVALID_ARGUMENT,
                                 "%s: Invalid argument, units and in_units must be positive, got "
                                 "units=%lld, in_units=%lld",
                                 g_host->layer_name(layer), (long long)units, (long long)in_units);
    }
    mydense_state *s = malloc(sizeof *s);
    if (s == NULL) {
        return g_host->set_error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, layer state",
                                 g_host->layer_name(layer));
    }
    s->units = units;
    s->in_units = in_units;

    /* The host creates each parameter (display name "mydense0_weight", structural key
     * "weight"), initializes and saves it. A NULL initializer means the block's initializer;
     * the host zeroes a "bias" by default, as Gluon does. Shapes here are fully known; a
     * dimension could also be LAM_DIM_UNKNOWN and set later in infer_shape (see dense.c). */
    const lam_shape weight_shape = {.ndim = 2, .dims = {in_units, units}};
    const lam_shape bias_shape = {.ndim = 1, .dims = {units}};
    st = g_host->layer_declare_param(layer, "weight", &weight_shape, NULL, 0);
    if (st == LAM_OK) {
        st = g_host->layer_declare_param(layer, "bias", &bias_shape, NULL, 0);
    }
    if (st != LAM_OK) {
        free(s);
        return st;
    }
    *state = s;
    return LAM_OK;
}

/* Step 3: destroy frees what create made; the host calls it with NULL state too. */
static void mydense_destroy(void *state) {
    free(state);
}

/* Errors name the instance ("mydense0") as their subject; the host adds context on the way up. */
static lam_status check_one_input(const lam_layer *layer, uint32_t n_inputs) {
    if (n_inputs != 1) {
        return g_host->set_error(LAM_ERR_SHAPE, "%s: Wrong number of inputs, expected 1, got %u",
                                 g_host->layer_name(layer), (unsigned)n_inputs);
    }
    return LAM_OK;
}

/*
 * Step 4: infer_shape. Given the input shapes, checks them, sets any parameter dimension still
 * unknown (g_host->layer_param_infer_shape; none here) and writes the output shape.
 */
static lam_status mydense_infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                                      const lam_shape *inputs, lam_shape *output) {
    const mydense_state *s = state;
    lam_status st = check_one_input(layer, n_inputs);
    if (st != LAM_OK) {
        return st;
    }
    const lam_shape *x = &inputs[0];
    if (x->ndim != 2) {
        return g_host->set_error(
            LAM_ERR_SHAPE, "%s: Shape mismatch, input has rank %u, expected (batch, %lld)",
            g_host->layer_name(layer), (unsigned)x->ndim, (long long)s->in_units);
    }
    if (x->dims[1] != s->in_units) {
        return g_host->set_error(
            LAM_ERR_SHAPE, "%s: Shape inconsistent, input has %lld features, in_units is %lld",
            g_host->layer_name(layer), (long long)x->dims[1], (long long)s->in_units);
    }
    *output = (lam_shape){.ndim = 2, .dims = {x->dims[0], s->units}};
    return LAM_OK;
}

/*
 * Step 5: forward, written only with host ops, so every backend runs it and the host can
 * differentiate it (autograd): no backward to write. Parameter data is borrowed (never
 * released); every tensor an op returns is a new reference to release unless it is the output.
 */
static lam_status mydense_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                                  lam_tensor *const *inputs, lam_tensor **output) {
    (void)state;
    *output = NULL;
    lam_status st = check_one_input(layer, n_inputs); /* the ops check the shapes themselves */
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *weight = NULL; /* borrowed */
    lam_tensor *bias = NULL;   /* borrowed */
    st = g_host->layer_param_data(layer, "weight", inputs[0], &weight);
    if (st == LAM_OK) {
        st = g_host->layer_param_data(layer, "bias", inputs[0], &bias);
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *xw = NULL;
    lam_tensor *xwb = NULL;
    st = g_host->op_matmul(inputs[0], weight, 0, 0, &xw); /* (batch, in) x (in, units) */
    if (st == LAM_OK) {
        st = g_host->op_add(xw, bias, &xwb); /* the (units,) bias broadcasts over the batch */
    }
    if (st == LAM_OK) {
        st = g_host->op_unary(LAM_OP_RELU, xwb, output);
    }
    g_host->tensor_release(xw); /* NULL is a no-op */
    g_host->tensor_release(xwb);
    return st;
}

/* Step 6 (optional): the one-line summary lam_block_summary prints. */
static lam_status mydense_describe(void *state, lam_layer *layer, char *buf, size_t cap) {
    (void)layer;
    const mydense_state *s = state;
    snprintf(buf, cap, "MyDense(%lld -> %lld)", (long long)s->in_units, (long long)s->units);
    return LAM_OK;
}

/* Step 7: the descriptor. LAM_LAYER_DESC_HEADER fills struct_size, abi_version and the ABI
 * fingerprint, which the host checks against its own layout. */
static const lam_layer_desc mydense_desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "MyDense",
    .prefix = "mydense",
    .version = "1.0.0",
    .doc = "relu(dot(x, weight) + bias), the custom layer of section 4.4",
    .n_attrs = (uint32_t)(sizeof mydense_attrs / sizeof mydense_attrs[0]),
    .attrs = mydense_attrs,
    .create = mydense_create,
    .destroy = mydense_destroy,
    .infer_shape = mydense_infer_shape,
    .forward = mydense_forward,
    .backward = NULL, /* the host differentiates forward */
    .describe = mydense_describe,
};

/*
 * Step 8: the entry, the plugin's one exported symbol. Check the host first (ABI major, minor
 * and table size), keep the table, then register the layer type. If anything fails the host
 * unloads the plugin and rolls back its registrations.
 */
LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &mydense_desc);
}
