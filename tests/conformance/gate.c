/*
 * Gate: a well-behaved layer of two inputs, y = a * sigmoid(g) for a and g of one shape, with
 * a cosmetic attribute. `lamina conform` must find its arity (2) and pass it; attrs.effect
 * must report `verbosity` as declared cosmetic instead of failing it.
 */
#include "lamina/plugin_ops.h"

static const lam_host_api *g_host;

static lam_status gate_create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user;
    (void)layer;
    (void)attrs;
    *state = NULL;
    return LAM_OK;
}

static void gate_destroy(void *state) {
    (void)state;
}

/* a and g: each an ndim and its dims (from a lam_shape or a lam_tensor_info). */
static lam_status two_inputs(const lam_layer *layer, uint32_t n, uint32_t a_ndim,
                             const int64_t *a_dims, uint32_t g_ndim, const int64_t *g_dims) {
    if (n != 2) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Wrong number of inputs, expected 2, got %u",
                                g_host->layer_name(layer), (unsigned)n);
    }
    int same = a_ndim == g_ndim;
    for (uint32_t d = 0; same && d < a_ndim; d++) {
        same = a_dims[d] == g_dims[d];
    }
    if (!same) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, the value and the gate differ",
                                g_host->layer_name(layer));
    }
    return LAM_OK;
}

static lam_status gate_infer(void *state, lam_layer *layer, uint32_t n,
                             const lam_tensor_info *const *in, uint32_t n_out,
                             lam_tensor_info *const *out) {
    (void)n_out;
    (void)state;
    lam_status st = n == 2
                        ? two_inputs(layer, n, in[0]->ndim, in[0]->dims, in[1]->ndim, in[1]->dims)
                        : two_inputs(layer, n, 0, NULL, 0, NULL);
    if (st == LAM_OK) {
        out[0]->dtype = in[0]->dtype;
        out[0]->ndim = in[0]->ndim;
        for (uint32_t i = 0; i < in[0]->ndim && i < LAM_MAX_DIMS; i++) {
            out[0]->dims[i] = in[0]->dims[i];
        }
    }
    return st;
}

static lam_status gate_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                               uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    *out = NULL;
    if (n != 2) {
        return two_inputs(layer, n, 0, NULL, 0, NULL);
    }
    const lam_shape *as = g_host->tensor_shape(in[0]), *gs = g_host->tensor_shape(in[1]);
    lam_status st = two_inputs(layer, n, as->ndim, as->dims, gs->ndim, gs->dims);
    lam_tensor *s = NULL;
    if (st == LAM_OK) {
        st = lam_p_unary(g_host, LAM_OP_SIGMOID, in[1], &s);
    }
    if (st == LAM_OK) {
        st = lam_p_mul(g_host, in[0], s, out);
    }
    g_host->tensor_release(s);
    return st;
}

static const lam_attr_desc attr_verbosity = {
    LAM_ATTR_DESC_HEADER, .name = "verbosity", .type = LAM_ATTR_INT, .default_value = "0",
    .doc = "(cosmetic) how much a log line about the layer says"};
static const lam_attr_desc *const attrs[] = {&attr_verbosity};

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Gate",
    .prefix = "gate",
    .version = "0.0.1",
    .doc = "a * sigmoid(g): a value gated by a second input",
    .n_attrs = 1,
    .attrs = attrs,
    .min_inputs = 2,
    .max_inputs = 2,
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
