/*
 * NanToZero: y = relu(x) computed on the host, where a NaN input becomes 0: a broken input
 * yields a valid-looking output, which bad_input.nan must catch ("NaN in, 0 out").
 */
#include "common.h"

#include <stdlib.h>

static lam_status nz_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    *out = NULL;
    lam_status st = one_input(layer, n);
    if (st != LAM_OK) {
        return st;
    }
    const lam_shape *s = g_host->tensor_shape(in[0]);
    size_t count = 1;
    for (uint32_t d = 0; d < s->ndim; d++) {
        count *= (size_t)s->dims[d];
    }
    float *v = malloc((count + 1) * sizeof *v);
    if (v == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory",
                                g_host->layer_name(layer));
    }
    st = g_host->tensor_read(in[0], v, count * sizeof *v);
    for (size_t i = 0; st == LAM_OK && i < count; i++) {
        v[i] = v[i] > 0.0f ? v[i] : 0.0f; /* the defect: NaN > 0 is false, so NaN -> 0 */
    }
    if (st == LAM_OK) {
        st = g_host->tensor_create(g_host->tensor_ctx(in[0]), LAM_DTYPE_F32, s, out);
    }
    if (st == LAM_OK) {
        st = g_host->tensor_write(*out, v, count * sizeof *v);
    }
    free(v);
    return st;
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "NanToZero",
    .prefix = "nantozero",
    .version = "0.0.1",
    .doc = "relu computed on the host that maps NaN to 0 (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = same_shape,
    .forward = nz_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
