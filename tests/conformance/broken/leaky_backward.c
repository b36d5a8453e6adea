/*
 * LeakyBackward: y = x * scale, scale of shape (features,) inferred from the input. Its fused
 * backward is right but keeps a reference to the output gradient on every call: the leaks
 * check, which now runs forward, fused backward and an optimizer step, must catch it.
 */
#include "common.h"

#include <stdint.h>

static lam_status lb_create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user;
    (void)attrs;
    *state = NULL;
    const lam_shape s = {.ndim = 1, .dims = {LAM_DIM_UNKNOWN}};
    return g_host->layer_declare_param(layer, "scale", &s, "ones", 0);
}

static lam_status lb_infer(void *state, lam_layer *layer, uint32_t n,
                           const lam_tensor_info *const *in, uint32_t n_out,
                           lam_tensor_info *const *out) {
    (void)n_out;
    lam_status st = same_shape(state, layer, n, in, n_out, out);
    if (st == LAM_OK && in[0]->ndim < 1) {
        st = lam_plugin_error(g_host, LAM_ERR_SHAPE, "%s: Shape mismatch, needs rank >= 1",
                              g_host->layer_name(layer));
    }
    if (st == LAM_OK) {
        const lam_shape s = {.ndim = 1, .dims = {in[0]->dims[in[0]->ndim - 1]}};
        st = g_host->layer_param_infer_shape(layer, "scale", &s);
    }
    return st;
}

static lam_status lb_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    *out = NULL;
    lam_tensor *scale = NULL;
    lam_status st = one_input(layer, n);
    if (st == LAM_OK) {
        st = g_host->layer_param_data(layer, "scale", in[0], &scale);
    }
    return st == LAM_OK ? lam_p_mul(g_host, in[0], scale, out) : st;
}

static lam_status lb_backward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                              uint32_t n_out, lam_tensor *const *outs,
                              const lam_tensor *const *grads, lam_tensor **grad_in) {
    (void)n_out;
    const lam_tensor *output = outs[0];
    const lam_tensor *g = grads[0];
    (void)state;
    (void)output;
    lam_tensor *scale = NULL, *gx = NULL, *prod = NULL, *sum = NULL, *twice = NULL;
    lam_status st = one_input(layer, n);
    if (st == LAM_OK) {
        st = g_host->layer_param_data(layer, "scale", in[0], &scale);
    }
    if (st == LAM_OK) {
        st = lam_p_mul(g_host, g, scale, &gx); /* right */
    }
    if (st == LAM_OK) {
        st = lam_p_mul(g_host, g, in[0], &prod);
    }
    /* The sum over every axis but the last. */
    const lam_shape *xs = g_host->tensor_shape(in[0]);
    int32_t axes[LAM_MAX_DIMS];
    uint32_t na = 0;
    for (uint32_t i = 0; xs != NULL && i + 1 < xs->ndim; i++) {
        axes[na++] = (int32_t)i;
    }
    if (st == LAM_OK && na > 0) {
        st = lam_p_reduce_axes(g_host, LAM_OP_REDUCE_SUM, prod, axes, na, 0, &sum);
    } else if (st == LAM_OK) {
        sum = g_host->tensor_retain(prod);
    }
    if (st == LAM_OK) {
        st = lam_p_scalar(g_host, LAM_OP_MUL_SCALAR, sum, 1.0f, &twice);
        (void)g_host->tensor_retain((lam_tensor *)(uintptr_t)g); /* the defect: never released */
    }
    if (st == LAM_OK) {
        st = g_host->layer_param_add_grad(layer, "scale", twice);
    }
    if (st == LAM_OK) {
        grad_in[0] = gx;
        gx = NULL;
    }
    g_host->tensor_release(gx);
    g_host->tensor_release(prod);
    g_host->tensor_release(sum);
    g_host->tensor_release(twice);
    return st;
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "LeakyBackward",
    .prefix = "leakybackward",
    .version = "0.0.1",
    .doc = "x * scale with a fused backward that leaks a reference (broken)",
    .create = lb_create,
    .destroy = no_destroy,
    .infer_shape = lb_infer,
    .forward = lb_forward,
    .backward = lb_backward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
