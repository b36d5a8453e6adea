/*
 * activation.c - Activation, Gluon's nn.Activation: an element-wise function, no parameters.
 * See mydense/mydense.c for the plugin structure itself.
 */
#include "lamina/plugin_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lam_host_api *g_host;

/* The act_type enum, in the order of its choices. */
typedef struct activation_kind {
    const char *name;
    lam_op op;
} activation_kind;

static const activation_kind kinds[] = {
    {"relu", LAM_OP_RELU},
    {"sigmoid", LAM_OP_SIGMOID},
    {"tanh", LAM_OP_TANH},
    {"softrelu", LAM_OP_SOFTRELU},
};

static const lam_attr_desc attr_act_type = {
    LAM_ATTR_DESC_HEADER,
    .name = "act_type",
    .type = LAM_ATTR_ENUM,
    .default_value = NULL,
    .choices = "relu|sigmoid|tanh|softrelu",
    .doc = "the function: relu, sigmoid, tanh or softrelu (log(1 + exp(x)))"};
static const lam_attr_desc *const activation_attrs[] = {&attr_act_type};

static lam_status activation_create(void *user, lam_layer *layer, const lam_attrs *attrs,
                                    void **state) {
    (void)user;
    *state = NULL;
    const char *act = NULL;
    lam_status st = g_host->attr_string(attrs, "act_type", &act);
    if (st != LAM_OK) {
        return st;
    }
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(kinds[i].name, act) == 0) {
            activation_kind *s = malloc(sizeof *s);
            if (s == NULL) {
                return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY,
                                        "%s: Out of memory, layer state",
                                        g_host->layer_name(layer));
            }
            *s = kinds[i];
            *state = s;
            return LAM_OK;
        }
    }
    return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                            "%s: Invalid argument, act_type '%s' is not one of "
                            "relu|sigmoid|tanh|softrelu",
                            g_host->layer_name(layer), act);
}

static void activation_destroy(void *state) {
    free(state);
}

static lam_status check_one_input(const lam_layer *layer, uint32_t n_inputs) {
    if (n_inputs != 1) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Wrong number of inputs, expected 1, got %u",
                                g_host->layer_name(layer), (unsigned)n_inputs);
    }
    return LAM_OK;
}

static lam_status activation_infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
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

static lam_status activation_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                                     lam_tensor *const *inputs, uint32_t n_outputs,
                                     lam_tensor **outputs) {
    const activation_kind *kind = state;
    (void)n_outputs;
    outputs[0] = NULL;
    lam_status st = check_one_input(layer, n_inputs);
    if (st != LAM_OK) {
        return st;
    }
    return lam_p_unary(g_host, kind->op, inputs[0], &outputs[0]);
}

/* Gluon 1.x's repr: "Activation(relu)". */
static lam_status activation_describe(void *state, lam_layer *layer, char *buf, size_t cap) {
    (void)layer;
    const activation_kind *kind = state;
    snprintf(buf, cap, "Activation(%s)", kind->name);
    return LAM_OK;
}

static const lam_layer_desc activation_desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Activation",
    .prefix = "activation",
    .version = "2.0.0",
    .doc = "element-wise activation function (Gluon's nn.Activation)",
    .n_attrs = (uint32_t)(sizeof activation_attrs / sizeof activation_attrs[0]),
    .attrs = activation_attrs,
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .create = activation_create,
    .destroy = activation_destroy,
    .infer_shape = activation_infer_shape,
    .forward = activation_forward,
    .backward = NULL,
    .describe = activation_describe,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &activation_desc);
}
