/*
 * dropout.c - Dropout, Gluon's nn.Dropout: in training each element is zeroed with probability
 * `rate` and the survivors are scaled by 1 / (1 - rate) (inverted dropout), so the expected
 * output is the input; at inference the layer is the identity (the output is the input).
 *
 * The mask comes from the device's counter-based RNG (the RANDOM op, Philox-4x32-10) through
 * host->layer_rng: the stream is keyed by (lam_seed, the instance's name) and each training
 * forward draws fresh numbers, so a re-seeded run repeats its masks bit for bit on every
 * backend. The layer is flagged LAM_LAYER_STOCHASTIC for `lamina conform`.
 */
#include "lamina/plugin_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lam_host_api *g_host;

static const lam_attr_desc attr_rate = {
    LAM_ATTR_DESC_HEADER, .name = "rate", .type = LAM_ATTR_FLOAT, .default_value = "0.5",
    .doc = "probability of zeroing an element in training, in [0, 1)"};
static const lam_attr_desc *const dropout_attrs[] = {&attr_rate};

typedef struct dropout_state {
    double rate;
} dropout_state;

static lam_status dropout_create(void *user, lam_layer *layer, const lam_attrs *attrs,
                                 void **state) {
    (void)user;
    *state = NULL;
    double rate = 0.0;
    lam_status st = g_host->attr_float(attrs, "rate", &rate);
    if (st != LAM_OK) {
        return st;
    }
    if (!(rate >= 0.0 && rate < 1.0)) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, rate must be in [0, 1), got %g",
                                g_host->layer_name(layer), rate);
    }
    dropout_state *s = malloc(sizeof *s);
    if (s == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, layer state",
                                g_host->layer_name(layer));
    }
    s->rate = rate;
    *state = s;
    return LAM_OK;
}

static void dropout_destroy(void *state) {
    free(state);
}

static lam_status dropout_infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                                      const lam_tensor_info *const *inputs, uint32_t n_outputs,
                                      lam_tensor_info *const *outputs) {
    (void)state;
    (void)n_inputs;
    (void)n_outputs;
    if (inputs[0]->dtype != LAM_DTYPE_F32) {
        return lam_plugin_error(g_host, LAM_ERR_DTYPE,
                                "%s: Dtype mismatch, input must be float32, got %s",
                                g_host->layer_name(layer), lam_p_dtype_name(inputs[0]->dtype));
    }
    outputs[0]->dtype = inputs[0]->dtype;
    outputs[0]->ndim = inputs[0]->ndim;
    memcpy(outputs[0]->dims, inputs[0]->dims, sizeof outputs[0]->dims);
    return LAM_OK;
}

static lam_status dropout_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                                  lam_tensor *const *inputs, uint32_t n_outputs,
                                  lam_tensor **outputs) {
    const dropout_state *s = state;
    (void)n_inputs;
    (void)n_outputs;
    lam_tensor *x = inputs[0];
    if (!g_host->is_training() || s->rate == 0.0) {
        outputs[0] = g_host->tensor_retain(x); /* identity */
        return LAM_OK;
    }
    outputs[0] = NULL;
    const lam_shape *xs = g_host->tensor_shape(x);
    uint64_t count = 1;
    for (uint32_t i = 0; i < xs->ndim; i++) {
        count *= (uint64_t)xs->dims[i];
    }
    lam_rng_key key = {(uint32_t)sizeof key, 0, 0, 0, 0};
    lam_tensor *mask = NULL, *kept = NULL;
    /* mask: 1 with probability 1 - rate, drawn on x's device */
    lam_status st = g_host->layer_rng(layer, count, &key);
    if (st == LAM_OK) {
        st = lam_p_random(g_host, g_host->tensor_ctx(x), LAM_DTYPE_F32, xs, LAM_RANDOM_BERNOULLI,
                          1.0 - s->rate, 0.0, &key, &mask);
    }
    if (st == LAM_OK) {
        st = lam_p_mul(g_host, x, mask, &kept);
    }
    if (st == LAM_OK) {
        st = lam_p_scalar(g_host, LAM_OP_MUL_SCALAR, kept, 1.0 / (1.0 - s->rate), &outputs[0]);
    }
    g_host->tensor_release(mask);
    g_host->tensor_release(kept);
    return st;
}

/* Gluon 1.x's repr: "Dropout(p = 0.5, axes=())". */
static lam_status dropout_describe(void *state, lam_layer *layer, char *buf, size_t cap) {
    (void)layer;
    const dropout_state *s = state;
    snprintf(buf, cap, "Dropout(p = %g, axes=())", s->rate);
    return LAM_OK;
}

static const lam_layer_desc dropout_desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Dropout",
    .prefix = "dropout",
    .version = "2.0.0",
    .doc = "inverted dropout in training from the device RNG, identity at inference (Gluon's "
           "nn.Dropout)",
    .flags = LAM_LAYER_STOCHASTIC,
    .n_attrs = (uint32_t)(sizeof dropout_attrs / sizeof dropout_attrs[0]),
    .attrs = dropout_attrs,
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .create = dropout_create,
    .destroy = dropout_destroy,
    .infer_shape = dropout_infer_shape,
    .forward = dropout_forward,
    .describe = dropout_describe,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &dropout_desc);
}
