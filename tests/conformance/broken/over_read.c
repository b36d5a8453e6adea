/*
 * OverRead: y = relu(x), but forward also reads its input into a buffer of its own with
 * tensor_read and then reads one element past that buffer (a loop bound off by one). The
 * value is thrown away, so every other check passes; the bounds check's guard pages must
 * catch the read.
 */
#include "common.h"

#include <stdlib.h>

static lam_status or_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
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
    float *x = malloc((count ? count : 1) * sizeof *x);
    if (x == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, %zu floats",
                                g_host->layer_name(layer), count);
    }
    st = g_host->tensor_read(in[0], x, count * sizeof *x);
    if (st == LAM_OK) {
        volatile float *v = x;
        float largest = 0.0f;
        for (size_t i = 0; i <= count; i++) { /* the defect: <= reads x[count] */
            float e = v[i];
            largest = e > largest ? e : largest;
        }
        (void)largest;
        st = lam_p_unary(g_host, LAM_OP_RELU, in[0], out);
    }
    free(x);
    return st;
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "OverRead",
    .prefix = "overread",
    .version = "0.0.1",
    .doc = "relu that reads one element past its own buffer (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = same_shape,
    .forward = or_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
