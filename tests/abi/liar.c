/*
 * A layer plugin that lies about its results: depending on its `lie` attribute, `where`
 * (infer_shape, forward or backward) returns a number that is no lam_status (12345, INT_MIN,
 * 7) or an error without a message (none at all, or an empty one). The host must hand the
 * caller LAM_ERR_INTERNAL naming the plugin, or the error with a message of its own.
 */
#include "fixture.h"
#include "lamina/plugin_ops.h"

#include <limits.h>
#include <stdlib.h>

typedef struct liar {
    int lie;   /* 0 big, 1 min, 2 positive, 3 nomsg, 4 empty */
    int where; /* 0 infer_shape, 1 forward, 2 backward */
} liar;

static lam_status lie(const liar *s) {
    switch (s->lie) {
    case 0:
        return (lam_status)12345;
    case 1:
        return (lam_status)INT_MIN;
    case 2:
        return (lam_status)7;
    case 3:
        return LAM_ERR_SHAPE;
    default:
        return fx_host->set_error(LAM_ERR_BACKEND, "");
    }
}

static lam_status liar_create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user, (void)layer;
    const char *l, *w;
    lam_status st = fx_host->attr_string(attrs, "lie", &l);
    if (st == LAM_OK) {
        st = fx_host->attr_string(attrs, "where", &w);
    }
    if (st != LAM_OK) {
        return st;
    }
    liar *s = malloc(sizeof *s);
    if (s == NULL) {
        return fx_host->set_error(LAM_ERR_OUT_OF_MEMORY, "liar: Out of memory");
    }
    static const char *const lies[] = {"big", "min", "positive", "nomsg", "empty"};
    static const char *const wheres[] = {"infer_shape", "forward", "backward"};
    s->lie = 0;
    s->where = 0;
    for (int i = 0; i < 5; i++) {
        s->lie = strcmp(l, lies[i]) == 0 ? i : s->lie;
    }
    for (int i = 0; i < 3; i++) {
        s->where = strcmp(w, wheres[i]) == 0 ? i : s->where;
    }
    *state = s;
    return LAM_OK;
}

static void liar_destroy(void *state) {
    free(state);
}

static lam_status liar_infer(void *state, lam_layer *layer, uint32_t n,
                             const lam_tensor_info *const *in, uint32_t n_out,
                             lam_tensor_info *const *out) {
    const liar *s = state;
    if (s->where == 0) {
        return lie(s);
    }
    return fx_infer(state, layer, n, in, n_out, out);
}

static lam_status liar_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                               uint32_t n_out, lam_tensor **out) {
    const liar *s = state;
    if (s->where == 1) {
        out[0] = NULL;
        return lie(s);
    }
    (void)layer, (void)n, (void)n_out;
    return lam_p_unary(fx_host, LAM_OP_NEG, in[0], &out[0]);
}

static lam_status liar_backward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                                uint32_t n_out, lam_tensor *const *out,
                                const lam_tensor *const *grad_out, lam_tensor **grad_in) {
    (void)layer, (void)n, (void)in, (void)n_out, (void)out, (void)grad_out, (void)grad_in;
    return lie(state);
}

static const lam_attr_desc liar_lie = {LAM_ATTR_DESC_HEADER,
                                       .name = "lie",
                                       .type = LAM_ATTR_ENUM,
                                       .default_value = "big",
                                       .choices = "big|min|positive|nomsg|empty",
                                       .doc = "what to return"};
static const lam_attr_desc liar_where = {LAM_ATTR_DESC_HEADER,
                                         .name = "where",
                                         .type = LAM_ATTR_ENUM,
                                         .default_value = "forward",
                                         .choices = "infer_shape|forward|backward",
                                         .doc = "which callback lies"};
static const lam_attr_desc *const liar_attrs[] = {&liar_lie, &liar_where};

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    lam_layer_desc d = fx_layer("Liar");
    d.n_attrs = 2;
    d.attrs = liar_attrs;
    d.create = liar_create;
    d.destroy = liar_destroy;
    d.infer_shape = liar_infer;
    d.forward = liar_forward;
    d.backward = liar_backward;
    return host->register_layer(plugin, &d);
}
