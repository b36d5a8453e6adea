/*
 * layernorm.c - LayerNorm, Gluon's nn.LayerNorm: normalizes over one axis (the last by
 * default) of each sample, y = (x - mean) / sqrt(var + epsilon) * gamma + beta, with the
 * biased variance; gamma and beta have the size of that axis. The same in training and at
 * inference (no running statistics).
 *
 * PyTorch's nn.LayerNorm(C) is the default axis=-1. center=false / scale=false: no beta /
 * gamma parameter (PyTorch's elementwise_affine=False; Gluon keeps a fixed one). Over the last
 * axis the forward is one host op, LAYER_NORM (the backend's fused kernel each way, or the
 * host's composition where the backend has none); over another axis it is composed of host ops
 * (MOMENTS and broadcast elementwise ops). Either way autograd differentiates it and every
 * backend runs it.
 */
#include "lamina/plugin_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lam_host_api *g_host;

static const lam_attr_desc attr_axis = {
    LAM_ATTR_DESC_HEADER, .name = "axis", .type = LAM_ATTR_INT, .default_value = "-1",
    .doc = "the axis normalized over (negative counts from the end)"};
static const lam_attr_desc attr_epsilon = {LAM_ATTR_DESC_HEADER, .name = "epsilon",
                                           .type = LAM_ATTR_FLOAT, .default_value = "1e-5",
                                           .doc = "added to the variance, >= 0"};
static const lam_attr_desc attr_center = {LAM_ATTR_DESC_HEADER, .name = "center",
                                          .type = LAM_ATTR_BOOL, .default_value = "true",
                                          .doc = "add the learned offset beta"};
static const lam_attr_desc attr_scale = {LAM_ATTR_DESC_HEADER, .name = "scale",
                                         .type = LAM_ATTR_BOOL, .default_value = "true",
                                         .doc = "multiply by the learned gamma"};
static const lam_attr_desc attr_in_channels = {
    LAM_ATTR_DESC_HEADER, .name = "in_channels", .type = LAM_ATTR_INT, .default_value = "0",
    .doc = "size of the normalized axis; 0 infers it from the first input"};
static const lam_attr_desc *const ln_attrs[] = {&attr_axis, &attr_epsilon, &attr_center,
                                                &attr_scale, &attr_in_channels};

typedef struct ln_state {
    int64_t axis;
    double epsilon;
    int32_t center;
    int32_t scale;
    int64_t in_channels;
} ln_state;

static lam_status ln_create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user;
    *state = NULL;
    const char *name = g_host->layer_name(layer);
    ln_state v = {0};
    lam_status st = g_host->attr_int(attrs, "axis", &v.axis);
    if (st == LAM_OK) {
        st = g_host->attr_float(attrs, "epsilon", &v.epsilon);
    }
    if (st == LAM_OK) {
        st = g_host->attr_bool(attrs, "center", &v.center);
    }
    if (st == LAM_OK) {
        st = g_host->attr_bool(attrs, "scale", &v.scale);
    }
    if (st == LAM_OK) {
        st = g_host->attr_int(attrs, "in_channels", &v.in_channels);
    }
    if (st != LAM_OK) {
        return st;
    }
    if (!(v.epsilon >= 0.0 && v.epsilon < 1e300)) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, epsilon must be finite and >= 0, got %g",
                                name, v.epsilon);
    }
    if (v.in_channels < 0) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, in_channels must be positive or 0 (infer "
                                "from the input), got %lld",
                                name, (long long)v.in_channels);
    }
    if (v.axis < -LAM_MAX_DIMS || v.axis >= LAM_MAX_DIMS) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, axis %lld is outside [-%d, %d)", name,
                                (long long)v.axis, LAM_MAX_DIMS, LAM_MAX_DIMS);
    }
    ln_state *s = malloc(sizeof *s);
    if (s == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, layer state",
                                name);
    }
    *s = v;
    const lam_shape c = {.ndim = 1, .dims = {v.in_channels > 0 ? v.in_channels : LAM_DIM_UNKNOWN}};
    if (v.scale) {
        st = g_host->layer_declare_param(layer, "gamma", &c, "ones", 0);
    }
    if (st == LAM_OK && v.center) {
        st = g_host->layer_declare_param(layer, "beta", &c, "zeros", 0);
    }
    if (st != LAM_OK) {
        free(s);
        return st;
    }
    *state = s;
    return LAM_OK;
}

static void ln_destroy(void *state) {
    free(state);
}

static lam_status norm_axis(const ln_state *s, const lam_layer *layer, uint32_t ndim,
                            uint32_t *axis) {
    int64_t a = s->axis < 0 ? s->axis + (int64_t)ndim : s->axis;
    if (ndim > LAM_MAX_DIMS || a < 0 || a >= (int64_t)ndim) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, axis %lld does not exist in an input of rank "
                                "%u",
                                g_host->layer_name(layer), (long long)s->axis, (unsigned)ndim);
    }
    *axis = (uint32_t)a;
    return LAM_OK;
}

static lam_status ln_infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                                 const lam_tensor_info *const *inputs, uint32_t n_outputs,
                                 lam_tensor_info *const *outputs) {
    const ln_state *s = state;
    (void)n_inputs;
    (void)n_outputs;
    const lam_tensor_info *x = inputs[0];
    const char *name = g_host->layer_name(layer);
    if (x->dtype != LAM_DTYPE_F32) {
        return lam_plugin_error(g_host, LAM_ERR_DTYPE,
                                "%s: Dtype mismatch, input must be float32, got %s", name,
                                lam_p_dtype_name(x->dtype));
    }
    uint32_t a = 0;
    lam_status st = norm_axis(s, layer, x->ndim, &a);
    if (st != LAM_OK) {
        return st;
    }
    if (x->dims[a] <= 0) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, the normalized axis %u has size %lld", name,
                                (unsigned)a, (long long)x->dims[a]);
    }
    const lam_shape c = {.ndim = 1, .dims = {x->dims[a]}};
    if (s->scale) {
        st = g_host->layer_param_infer_shape(layer, "gamma", &c);
    }
    if (st == LAM_OK && s->center) {
        st = g_host->layer_param_infer_shape(layer, "beta", &c);
    }
    if (st != LAM_OK) {
        return st;
    }
    outputs[0]->dtype = x->dtype;
    outputs[0]->ndim = x->ndim;
    memcpy(outputs[0]->dims, x->dims, sizeof outputs[0]->dims);
    return LAM_OK;
}

enum { T_MEAN, T_VAR, T_VEPS, T_SD, T_INV, T_XC, T_XH, T_G, T_B, T_SCALED, T_COUNT };

static lam_status ln_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                             lam_tensor *const *inputs, uint32_t n_outputs, lam_tensor **outputs) {
    const ln_state *s = state;
    (void)n_inputs;
    (void)n_outputs;
    outputs[0] = NULL;
    lam_tensor *x = inputs[0];
    const lam_shape *xs = g_host->tensor_shape(x);
    uint32_t a = 0;
    lam_status st = norm_axis(s, layer, xs->ndim, &a);
    if (st != LAM_OK) {
        return st;
    }
    if (a + 1 == xs->ndim) { /* the last axis: one host op (LAYER_NORM), fused where it can be */
        lam_tensor *g = NULL, *b = NULL; /* borrowed; NULL: no scale or no offset */
        if (s->scale) {
            st = g_host->layer_param_data(layer, "gamma", x, &g);
        }
        if (st == LAM_OK && s->center) {
            st = g_host->layer_param_data(layer, "beta", x, &b);
        }
        return st != LAM_OK ? st : lam_p_layer_norm(g_host, x, g, b, s->epsilon, &outputs[0]);
    }
    /* Another axis: composed of host ops. gamma and beta broadcast along the normalized axis:
     * (1, ..., C, ..., 1) */
    lam_shape pshape = {.ndim = xs->ndim};
    for (uint32_t i = 0; i < xs->ndim; i++) {
        pshape.dims[i] = i == a ? xs->dims[i] : 1;
    }
    const int32_t axis = (int32_t)a;
    lam_tensor *t[T_COUNT] = {NULL};
    lam_tensor *p = NULL; /* borrowed */
    st = lam_p_moments(g_host, x, &axis, 1, 1, &t[T_MEAN], &t[T_VAR]);
    /* xh = (x - mean) * (1 / sqrt(var + eps)): the reciprocal on the small tensor */
    if (st == LAM_OK) {
        st = lam_p_scalar(g_host, LAM_OP_ADD_SCALAR, t[T_VAR], s->epsilon, &t[T_VEPS]);
    }
    if (st == LAM_OK) {
        st = lam_p_unary(g_host, LAM_OP_SQRT, t[T_VEPS], &t[T_SD]);
    }
    if (st == LAM_OK) {
        st = lam_p_scalar(g_host, LAM_OP_RDIV_SCALAR, t[T_SD], 1.0, &t[T_INV]);
    }
    if (st == LAM_OK) {
        st = lam_p_sub(g_host, x, t[T_MEAN], &t[T_XC]);
    }
    if (st == LAM_OK) {
        st = lam_p_mul(g_host, t[T_XC], t[T_INV], &t[T_XH]);
    }
    lam_tensor *y = t[T_XH];
    if (st == LAM_OK && s->scale) {
        st = g_host->layer_param_data(layer, "gamma", x, &p);
        if (st == LAM_OK) {
            st = g_host->tensor_reshape(p, &pshape, &t[T_G]);
        }
        if (st == LAM_OK) {
            st = lam_p_mul(g_host, y, t[T_G], &t[T_SCALED]);
            y = t[T_SCALED];
        }
    }
    if (st == LAM_OK && s->center) {
        st = g_host->layer_param_data(layer, "beta", x, &p);
        if (st == LAM_OK) {
            st = g_host->tensor_reshape(p, &pshape, &t[T_B]);
        }
        if (st == LAM_OK) {
            st = lam_p_add(g_host, y, t[T_B], &outputs[0]);
        }
    } else if (st == LAM_OK) {
        outputs[0] = g_host->tensor_retain(y);
    }
    for (int i = 0; i < T_COUNT; i++) {
        g_host->tensor_release(t[i]);
    }
    return st;
}

/* Gluon 1.x's repr: "LayerNorm(eps=1e-05, axis=-1, center=True, scale=True, in_channels=None)". */
static lam_status ln_describe(void *state, lam_layer *layer, char *buf, size_t cap) {
    const ln_state *s = state;
    const lam_shape *c = g_host->layer_param_shape(layer, s->scale ? "gamma" : "beta");
    char ch[24] = "None";
    int64_t n = c != NULL && c->ndim == 1 && c->dims[0] > 0 ? c->dims[0] : s->in_channels;
    if (n > 0) {
        snprintf(ch, sizeof ch, "%lld", (long long)n);
    }
    snprintf(buf, cap, "LayerNorm(eps=%g, axis=%lld, center=%s, scale=%s, in_channels=%s)",
             s->epsilon, (long long)s->axis, s->center ? "True" : "False",
             s->scale ? "True" : "False", ch);
    return LAM_OK;
}

static const lam_tensor_info example_info = {
    (uint32_t)sizeof(lam_tensor_info), LAM_DTYPE_F32, 3, 0, {2, 3, 4}};
static const lam_example_input example = {
    (uint32_t)sizeof(lam_example_input), LAM_DOMAIN_REAL, &example_info, -1.0, 1.0, NULL};
static const lam_example_input *const examples[] = {&example};

static const lam_layer_desc ln_desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "LayerNorm",
    .prefix = "layernorm",
    .version = "2.0.0",
    .doc = "layer normalization over one axis of each sample (Gluon's nn.LayerNorm)",
    .n_attrs = (uint32_t)(sizeof ln_attrs / sizeof ln_attrs[0]),
    .attrs = ln_attrs,
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .n_examples = 1,
    .examples = examples,
    .create = ln_create,
    .destroy = ln_destroy,
    .infer_shape = ln_infer_shape,
    .forward = ln_forward,
    .describe = ln_describe,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &ln_desc);
}
