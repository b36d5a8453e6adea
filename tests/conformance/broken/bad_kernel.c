/*
 * BadKernel: a kernel "bad.scale", y = 2x, whose CPU implementation adds 1e-3 to every element
 * and whose backward gives 3 g instead of 2 g, and a layer "BadKernel" that runs it:
 * kernel.bad.scale.impls and kernel.bad.scale.backward must catch each.
 */
#include "common.h"

#include <stdlib.h>

static size_t numel(const lam_tensor_view *v) {
    size_t n = 1;
    for (uint32_t i = 0; i < v->ndim; i++) {
        n *= (size_t)v->dims[i];
    }
    return n;
}

static lam_status k_shape(void *user, const void *params, uint32_t n_in,
                          const lam_tensor_info *const *in, uint32_t n_out,
                          lam_tensor_info *const *out) {
    (void)user, (void)params, (void)n_in, (void)n_out;
    out[0]->dtype = in[0]->dtype;
    out[0]->ndim = in[0]->ndim;
    for (uint32_t i = 0; i < in[0]->ndim && i < LAM_MAX_DIMS; i++) {
        out[0]->dims[i] = in[0]->dims[i];
    }
    return LAM_OK;
}

static lam_status k_reference(void *user, const void *params, const lam_kernel_args *a) {
    (void)user, (void)params;
    const float *x = a->inputs[0]->data;
    float *y = a->outputs[0]->data;
    for (size_t i = 0; i < numel(a->outputs[0]->view); i++) {
        y[i] = 2.0f * x[i];
    }
    return LAM_OK;
}

static lam_status k_cpu(void *user, const void *params, const lam_kernel_args *a) {
    (void)user, (void)params;
    const float *x = a->inputs[0]->data;
    float *y = a->outputs[0]->data;
    for (size_t i = 0; i < numel(a->outputs[0]->view); i++) {
        y[i] = 2.0f * x[i] + 1e-3f; /* the first defect */
    }
    return LAM_OK;
}

static lam_status k_backward(void *user, const void *params, uint32_t n_in, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor *const *out, const lam_tensor *const *g,
                             lam_tensor **gin) {
    (void)user, (void)params, (void)n_in, (void)in, (void)n_out, (void)out;
    return lam_p_scalar(g_host, LAM_OP_MUL_SCALAR, g[0], 3.0, &gin[0]); /* the second: 3, not 2 */
}

static const lam_kernel_impl cpu_impl = {LAM_KERNEL_IMPL_HEADER, .backend = "cpu", .run = k_cpu};
static const lam_kernel_impl *const impls[] = {&cpu_impl};

static const lam_kernel_desc kernel = {
    LAM_KERNEL_DESC_HEADER,
    .name = "bad.scale",
    .doc = "2x, with a CPU implementation and a backward that disagree with it (broken)",
    .n_inputs = 1,
    .n_outputs = 1,
    .n_impls = 1,
    .impls = impls,
    .shape = k_shape,
    .reference = k_reference,
    .backward = k_backward,
};

static lam_status bk_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)state, (void)layer;
    return g_host->kernel_call("bad.scale", NULL, n, in, n_out, out);
}

static const lam_layer_desc layer = {
    LAM_LAYER_DESC_HEADER,
    .name = "BadKernel",
    .prefix = "badkernel",
    .version = "0.0.1",
    .doc = "runs the kernel bad.scale (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = same_shape,
    .forward = bk_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    st = host->register_kernel(plugin, &kernel);
    return st != LAM_OK ? st : host->register_layer(plugin, &layer);
}
