/*
 * A layer plugin built against ONLY the frozen copy of the ABI 2.0 headers in this directory
 * (include path tests/abi/v2.0; never sdk/include): every later host of major 2 must load it
 * and run it. It uses the 2.0 layer contract end to end: attributes as an array of pointers,
 * `user`, arity and example inputs, lam_tensor_info shapes, ops through host->op with
 * parameter structs, and errors through lam_plugin_error.
 *
 *     Frozen20(scale=s, shift=b): y = relu(x) * s + b
 *
 * Keep this file compiling against tests/abi/v2.0 unchanged: when it stops compiling or
 * loading, ABI 2.0 was broken.
 */
#include "lamina/plugin.h"

#include <stdlib.h>

static const lam_host_api *g_host;
static int g_user_tag = 20; /* the descriptor's `user`, checked in create */

static const lam_attr_desc attr_scale = {LAM_ATTR_DESC_HEADER, .name = "scale",
                                         .type = LAM_ATTR_FLOAT, .default_value = "2",
                                         .doc = "factor of the first output"};
static const lam_attr_desc attr_shift = {LAM_ATTR_DESC_HEADER, .name = "shift",
                                         .type = LAM_ATTR_FLOAT, .default_value = "0.5",
                                         .doc = "added to the first output"};
static const lam_attr_desc *const frozen_attrs[] = {&attr_scale, &attr_shift};

typedef struct frozen_state {
    double scale;
    double shift;
} frozen_state;

static lam_status frozen_create(void *user, lam_layer *layer, const lam_attrs *attrs,
                                void **state) {
    *state = NULL;
    if (user != &g_user_tag) {
        return lam_plugin_error(g_host, LAM_ERR_INTERNAL,
                                "%s: Internal error, create got user %p, expected %p",
                                g_host->layer_name(layer), user, (void *)&g_user_tag);
    }
    frozen_state s = {0.0, 0.0};
    lam_status st = g_host->attr_float(attrs, "scale", &s.scale);
    if (st == LAM_OK) {
        st = g_host->attr_float(attrs, "shift", &s.shift);
    }
    if (st != LAM_OK) {
        return st;
    }
    frozen_state *p = malloc(sizeof *p);
    if (p == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, layer state",
                                g_host->layer_name(layer));
    }
    *p = s;
    *state = p;
    return LAM_OK;
}

static void frozen_destroy(void *state) {
    free(state);
}

static lam_status frozen_infer(void *state, lam_layer *layer, uint32_t n_inputs,
                               const lam_tensor_info *const *inputs, uint32_t n_outputs,
                               lam_tensor_info *const *outputs) {
    (void)state;
    if (n_inputs != 1 || n_outputs != 1) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Wrong number of operands, expected 1 input and 1 output, "
                                "got %u and %u",
                                g_host->layer_name(layer), (unsigned)n_inputs, (unsigned)n_outputs);
    }
    outputs[0]->dtype = inputs[0]->dtype;
    outputs[0]->ndim = inputs[0]->ndim;
    for (uint32_t i = 0; i < inputs[0]->ndim && i < LAM_MAX_DIMS; i++) {
        outputs[0]->dims[i] = inputs[0]->dims[i];
    }
    return LAM_OK;
}

/* One host op with one input, one output and optional scalar parameters. */
static lam_status unary(lam_op op, lam_tensor *x, const lam_scalar_params *p, lam_tensor **out) {
    lam_host_op call = LAM_HOST_OP_INIT(op);
    call.n_inputs = 1;
    call.inputs = &x;
    call.n_outputs = 1;
    call.outputs = out;
    call.params = p;
    return g_host->op(&call);
}

static lam_status frozen_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                                 lam_tensor *const *inputs, uint32_t n_outputs,
                                 lam_tensor **outputs) {
    const frozen_state *s = state;
    (void)layer, (void)n_inputs, (void)n_outputs;
    outputs[0] = NULL;
    lam_scalar_params mul = LAM_SCALAR_PARAMS_INIT, add = LAM_SCALAR_PARAMS_INIT;
    mul.a = s->scale;
    add.a = s->shift;
    lam_tensor *r = NULL, *rs = NULL;
    lam_status st = unary(LAM_OP_RELU, inputs[0], NULL, &r);
    if (st == LAM_OK) {
        st = unary(LAM_OP_MUL_SCALAR, r, &mul, &rs);
    }
    if (st == LAM_OK) {
        st = unary(LAM_OP_ADD_SCALAR, rs, &add, &outputs[0]);
    }
    g_host->tensor_release(r);
    g_host->tensor_release(rs);
    return st;
}

static const lam_tensor_info example_x = {.struct_size = (uint32_t)sizeof(lam_tensor_info),
                                          .dtype = LAM_DTYPE_F32,
                                          .ndim = 2,
                                          .dims = {2, 3}};
static const lam_example_input example_in = {.struct_size = (uint32_t)sizeof(lam_example_input),
                                             .domain = LAM_DOMAIN_REAL,
                                             .info = &example_x,
                                             .low = -1.0,
                                             .high = 1.0};
static const lam_example_input *const frozen_examples[] = {&example_in};

static const lam_layer_desc frozen_desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Frozen20",
    .prefix = "frozen",
    .version = "2.0.0",
    .doc = "built against the frozen ABI 2.0 headers: relu(x) * scale + shift",
    .user = &g_user_tag,
    .n_attrs = 2,
    .attrs = frozen_attrs,
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .n_examples = 1,
    .examples = frozen_examples,
    .example_attrs = "scale=2, shift=0.5",
    .create = frozen_create,
    .destroy = frozen_destroy,
    .infer_shape = frozen_infer,
    .forward = frozen_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return host->register_layer(plugin, &frozen_desc);
}
