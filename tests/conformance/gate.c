/*
 * Gate: a well-behaved layer of two inputs, y = a * sigmoid(g) for a and g of one shape, with
 * a cosmetic attribute. `lamina conform` must find its arity (2) and pass it; attrs.effect
 * must report `verbosity` as declared cosmetic instead of failing it.
 */
#include "lamina/plugin.h"

static const lam_host_api *g_host;

static lam_status gate_create(lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)layer;
    (void)attrs;
    *state = NULL;
    return LAM_OK;
}

static void gate_destroy(void *state) {
    (void)state;
}

static lam_status two_inputs(const lam_layer *layer, uint32_t n, const lam_shape *a,
                             const lam_shape *g) {
    if (n != 2) {
        return g_host->set_error(LAM_ERR_SHAPE, "%s: Wrong number of inputs, expected 2, got %u",
                                 g_host->layer_name(layer), (unsigned)n);
    }
    int same = a->ndim == g->ndim;
    for (uint32_t d = 0; same && d < a->ndim; d++) {
        same = a->dims[d] == g->dims[d];
    }
    if (!same) {
        return g_host->set_error(LAM_ERR_SHAPE, "%s: Shape mismatch, the value and the gate differ",
                                 g_host->layer_name(layer));
    }
    return LAM_OK;
}

static lam_status gate_infer(void *state, lam_layer *layer, uint32_t n, const lam_shape *in,
                             lam_shape *out) {
    (void)state;
    lam_status st = n == 2 ? two_inputs(layer, n, &in[0], &in[1]) : two_inputs(layer, n, in, in);
    if (st == LAM_OK) {
        *out = in[0];
    }
    return st;
}

static lam_status gate_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                               lam_tensor **out) {
    (void)state;
    *out = NULL;
    if (n != 2) {
        return two_inputs(layer, n, NULL, NULL);
    }
    lam_status st = two_inputs(layer, n, g_host->tensor_shape(in[0]), g_host->tensor_shape(in[1]));
    lam_tensor *s = NULL;
    if (st == LAM_OK) {
        st = g_host->op_unary(LAM_OP_SIGMOID, in[1], &s);
    }
    if (st == LAM_OK) {
        st = g_host->op_mul(in[0], s, out);
    }
    g_host->tensor_release(s);
    return st;
}

static const lam_attr_desc attrs[] = {
    {.name = "verbosity",
     .type = LAM_ATTR_INT,
     .default_value = "0",
     .doc = "(cosmetic) how much a log line about the layer says"},
};

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Gate",
    .prefix = "gate",
    .version = "0.0.1",
    .doc = "a * sigmoid(g): a value gated by a second input",
    .n_attrs = 1,
    .attrs = attrs,
    .create = gate_create,
    .destroy = gate_destroy,
    .infer_shape = gate_infer,
    .forward = gate_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
