/*
 * IgnoreAttr: y = x * scale (+ 1 when use_beta), except that use_beta is never read: the
 * attrs.effect check (every attribute changes the output or the parameters) must catch it.
 */
#include "common.h"

#include <stdlib.h>

typedef struct ia_state {
    double scale;
} ia_state;

static lam_status ia_create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user;
    (void)layer;
    ia_state *s = malloc(sizeof *s);
    if (s == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "IgnoreAttr: Out of memory");
    }
    lam_status st = g_host->attr_float(attrs, "scale", &s->scale);
    /* the defect: use_beta is in the schema but never read */
    if (st != LAM_OK) {
        free(s);
        return st;
    }
    *state = s;
    return LAM_OK;
}

static void ia_destroy(void *state) {
    free(state);
}

static lam_status ia_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    const ia_state *s = state;
    *out = NULL;
    lam_status st = one_input(layer, n);
    if (st != LAM_OK) {
        return st;
    }
    return lam_p_scalar(g_host, LAM_OP_MUL_SCALAR, in[0], s->scale, out);
}

static const lam_attr_desc attr_scale = {LAM_ATTR_DESC_HEADER, .name = "scale",
                                         .type = LAM_ATTR_FLOAT, .default_value = "2",
                                         .doc = "factor"};
static const lam_attr_desc attr_use_beta = {LAM_ATTR_DESC_HEADER, .name = "use_beta",
                                            .type = LAM_ATTR_BOOL, .default_value = "true",
                                            .doc = "add 1"};
static const lam_attr_desc *const attrs[] = {&attr_scale, &attr_use_beta};

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "IgnoreAttr",
    .prefix = "ignoreattr",
    .version = "0.0.1",
    .doc = "x * scale, ignoring its use_beta attribute (broken)",
    .n_attrs = 2,
    .attrs = attrs,
    .create = ia_create,
    .destroy = ia_destroy,
    .infer_shape = same_shape,
    .forward = ia_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
