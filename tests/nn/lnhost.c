/*
 * lnhost.c - a test plugin that calls LAYER_NORM and LAYER_NORM_BACKWARD (ABI 2.2) through the
 * generic host op entry with every output count, as a plugin with a backward of its own would:
 * one layer type, LNHostOp, whose INT attribute `case` picks the call and which of its outputs
 * the layer returns (test_layer_norm.c checks them against ref/layer_norm_refs.h).
 */
#include "lamina/plugin.h"
#include "lamina/plugin_ops.h"

#include <stdlib.h>
#include <string.h>

static const lam_host_api *H;

enum {
    C_Y = 0,   /* (x, gamma, beta) -> LAYER_NORM with 3 outputs: y */
    C_MEAN,    /* ... its mean (M) */
    C_RSTD,    /* ... its rstd (M) */
    C_DX,      /* (dy, x, gamma) -> LAYER_NORM (beta 0), then LAYER_NORM_BACKWARD, 3 outputs: dx */
    C_DGAMMA,  /* ... dgamma (N) */
    C_DBETA,   /* ... dbeta (N) */
    C_DX_ONLY, /* ... LAYER_NORM_BACKWARD with 1 output: dx */
    C_TWO_OUT, /* error: LAYER_NORM asked for 2 outputs */
    C_COUNT
};

typedef struct state {
    int64_t which;
} state;

static const lam_attr_desc a_case = {LAM_ATTR_DESC_HEADER, .name = "case", .type = LAM_ATTR_INT,
                                     .default_value = "0", .doc = "which host op call"};
static const lam_attr_desc *const attrs[] = {&a_case};

static lam_status create(void *user, lam_layer *l, const lam_attrs *a, void **out) {
    (void)user;
    (void)l;
    state *s = calloc(1, sizeof *s);
    *out = s;
    if (s == NULL) {
        return H->set_error(LAM_ERR_OUT_OF_MEMORY, "lnhost: Out of memory");
    }
    lam_status st = H->attr_int(a, "case", &s->which);
    if (st == LAM_OK && (s->which < 0 || s->which >= C_COUNT)) {
        st = lam_plugin_error(H, LAM_ERR_INVALID_ARGUMENT, "lnhost: case %lld out of range",
                              (long long)s->which);
    }
    return st;
}

static void destroy(void *s) {
    free(s);
}

static lam_status infer(void *st_, lam_layer *l, uint32_t ni, const lam_tensor_info *const *in,
                        uint32_t no, lam_tensor_info *const *out) {
    (void)l;
    (void)no;
    (void)ni;
    const state *s = st_;
    const lam_tensor_info *x = s->which >= C_DX && s->which <= C_DX_ONLY ? in[1] : in[0];
    out[0]->dtype = LAM_DTYPE_F32;
    out[0]->ndim = 2;
    memcpy(out[0]->dims, x->dims, sizeof out[0]->dims);
    if (s->which == C_MEAN || s->which == C_RSTD || s->which == C_DGAMMA || s->which == C_DBETA) {
        out[0]->ndim = 1;
        out[0]->dims[0] = s->which == C_DGAMMA || s->which == C_DBETA ? x->dims[1] : x->dims[0];
    }
    return LAM_OK;
}

/* LAYER_NORM (n_in 3) or LAYER_NORM_BACKWARD (n_in 5) with n_out outputs into out[]. */
static lam_status call(lam_op op, uint32_t n_in, lam_tensor **in, uint32_t n_out,
                       lam_tensor **out) {
    lam_host_op c = LAM_HOST_OP_INIT(op);
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    p.a = 1e-5;
    c.n_inputs = n_in;
    c.inputs = in;
    c.n_outputs = n_out;
    c.outputs = out;
    c.params = &p;
    return H->op(&c);
}

static lam_status forward(void *st_, lam_layer *l, uint32_t ni, lam_tensor *const *in, uint32_t no,
                          lam_tensor **out) {
    (void)l;
    (void)no;
    (void)ni;
    const state *s = st_;
    lam_tensor *f[3] = {NULL, NULL, NULL}, *b[3] = {NULL, NULL, NULL}, *zero = NULL;
    lam_status st;
    if (s->which <= C_RSTD || s->which == C_TWO_OUT) {
        lam_tensor *fin[3] = {in[0], in[1], in[2]};
        st = call(LAM_OP_LAYER_NORM, 3, fin, s->which == C_TWO_OUT ? 2 : 3, f);
        if (st == LAM_OK) {
            *out = H->tensor_retain(f[s->which]);
        }
    } else {
        lam_tensor *dy = in[0], *x = in[1], *gamma = in[2];
        st = lam_p_fill(H, H->tensor_ctx(x), LAM_DTYPE_F32, H->tensor_shape(gamma), 0.0, &zero);
        if (st == LAM_OK) {
            lam_tensor *fin[3] = {x, gamma, zero};
            st = call(LAM_OP_LAYER_NORM, 3, fin, 3, f);
        }
        if (st == LAM_OK) {
            lam_tensor *bin[5] = {dy, x, f[1], f[2], gamma};
            st = call(LAM_OP_LAYER_NORM_BACKWARD, 5, bin, s->which == C_DX_ONLY ? 1 : 3, b);
        }
        if (st == LAM_OK) {
            *out = H->tensor_retain(b[s->which == C_DX_ONLY ? 0 : s->which - C_DX]);
        }
    }
    for (int i = 0; i < 3; i++) {
        H->tensor_release(f[i]);
        H->tensor_release(b[i]);
    }
    H->tensor_release(zero);
    return st;
}

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    H = host;
    static const lam_layer_desc d = {LAM_LAYER_DESC_HEADER,
                                     .name = "LNHostOp",
                                     .prefix = "lnhost",
                                     .version = "2.2.0",
                                     .doc = "layer-norm host ops by case (test plugin)",
                                     .n_attrs = 1,
                                     .attrs = attrs,
                                     .min_inputs = 3,
                                     .max_inputs = 3,
                                     .create = create,
                                     .destroy = destroy,
                                     .infer_shape = infer,
                                     .forward = forward};
    return host->register_layer(plugin, &d);
}
