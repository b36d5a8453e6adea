/*
 * dense.c - Dense, Gluon's nn.Dense: y = act(x . weight^T + bias).
 *
 * weight is (units, in_units) as in Gluon, bias (units,). in_units may be left 0 and is then
 * inferred from the first input (deferred initialization). With flatten (the default) an input
 * (batch, d1, d2, ...) is treated as (batch, d1*d2*...); without it the layer applies to the
 * last axis and keeps the leading ones. See mydense/mydense.c for the plugin structure itself.
 */
#include "lamina/plugin_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lam_host_api *g_host;

/* The activation enum, in the order of its choices; LAM_OP_INVALID is "none" (linear). */
typedef struct dense_activation {
    const char *name;
    lam_op op;
} dense_activation;

static const dense_activation activations[] = {
    {"none", LAM_OP_INVALID}, {"relu", LAM_OP_RELU},         {"sigmoid", LAM_OP_SIGMOID},
    {"tanh", LAM_OP_TANH},    {"softrelu", LAM_OP_SOFTRELU},
};
#define N_ACTIVATIONS (sizeof activations / sizeof activations[0])

static const lam_attr_desc attr_units = {LAM_ATTR_DESC_HEADER, .name = "units",
                                         .type = LAM_ATTR_INT, .default_value = NULL,
                                         .doc = "output features"};
static const lam_attr_desc attr_activation = {
    LAM_ATTR_DESC_HEADER,
    .name = "activation",
    .type = LAM_ATTR_ENUM,
    .default_value = "none",
    .choices = "none|relu|sigmoid|tanh|softrelu",
    .doc = "activation applied to the output; none is linear"};
static const lam_attr_desc attr_use_bias = {LAM_ATTR_DESC_HEADER, .name = "use_bias",
                                            .type = LAM_ATTR_BOOL, .default_value = "true",
                                            .doc = "add a bias"};
static const lam_attr_desc attr_in_units = {
    LAM_ATTR_DESC_HEADER, .name = "in_units", .type = LAM_ATTR_INT, .default_value = "0",
    .doc = "input features; 0 infers them from the first input"};
static const lam_attr_desc attr_flatten = {
    LAM_ATTR_DESC_HEADER, .name = "flatten", .type = LAM_ATTR_BOOL, .default_value = "true",
    .doc = "flatten all but the first input axis; false applies to the last axis"};
static const lam_attr_desc attr_weight_init = {
    LAM_ATTR_DESC_HEADER, .name = "weight_initializer", .type = LAM_ATTR_STRING,
    .default_value = "",
    .doc = "initializer of weight, e.g. xavier; empty uses the block's initializer"};
static const lam_attr_desc attr_bias_init = {LAM_ATTR_DESC_HEADER, .name = "bias_initializer",
                                             .type = LAM_ATTR_STRING, .default_value = "zeros",
                                             .doc = "initializer of bias"};
/* The schema is an array of pointers, so each attribute descriptor can grow (ABI 2.0). */
static const lam_attr_desc *const dense_attrs[] = {
    &attr_units,   &attr_activation,  &attr_use_bias,  &attr_in_units,
    &attr_flatten, &attr_weight_init, &attr_bias_init,
};

typedef struct dense_state {
    int64_t units;
    int64_t in_units; /* as given; 0 = inferred (the weight's shape then says what is known) */
    const dense_activation *act;
    int32_t use_bias;
    int32_t flatten;
} dense_state;

static lam_status dense_create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user;
    *state = NULL;
    const char *name = g_host->layer_name(layer);
    int64_t units = 0;
    int64_t in_units = 0;
    int32_t use_bias = 0;
    int32_t flatten = 0;
    const char *act = NULL;
    const char *weight_init = NULL;
    const char *bias_init = NULL;
    lam_status st = g_host->attr_int(attrs, "units", &units);
    if (st == LAM_OK) {
        st = g_host->attr_int(attrs, "in_units", &in_units);
    }
    if (st == LAM_OK) {
        st = g_host->attr_bool(attrs, "use_bias", &use_bias);
    }
    if (st == LAM_OK) {
        st = g_host->attr_bool(attrs, "flatten", &flatten);
    }
    if (st == LAM_OK) {
        st = g_host->attr_string(attrs, "activation", &act);
    }
    if (st == LAM_OK) {
        st = g_host->attr_string(attrs, "weight_initializer", &weight_init);
    }
    if (st == LAM_OK) {
        st = g_host->attr_string(attrs, "bias_initializer", &bias_init);
    }
    if (st != LAM_OK) {
        return st;
    }
    if (units <= 0) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, units must be positive, got %lld", name,
                                (long long)units);
    }
    if (in_units < 0) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, in_units must be positive or 0 (infer "
                                "from the input), got %lld",
                                name, (long long)in_units);
    }
    const dense_activation *found = NULL;
    for (size_t i = 0; i < N_ACTIVATIONS && act != NULL; i++) {
        if (strcmp(activations[i].name, act) == 0) {
            found = &activations[i];
        }
    }
    if (found == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, activation '%s' is not one of "
                                "none|relu|sigmoid|tanh|softrelu",
                                name, act != NULL ? act : "(null)");
    }

    dense_state *s = malloc(sizeof *s);
    if (s == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, layer state",
                                name);
    }
    *s = (dense_state){.units = units,
                       .in_units = in_units,
                       .act = found,
                       .use_bias = use_bias,
                       .flatten = flatten};

    const lam_shape weight_shape = {.ndim = 2,
                                    .dims = {units, in_units > 0 ? in_units : LAM_DIM_UNKNOWN}};
    st = g_host->layer_declare_param(
        layer, "weight", &weight_shape,
        weight_init != NULL && weight_init[0] != '\0' ? weight_init : NULL, 0);
    if (st == LAM_OK && use_bias) {
        const lam_shape bias_shape = {.ndim = 1, .dims = {units}};
        st = g_host->layer_declare_param(
            layer, "bias", &bias_shape,
            bias_init != NULL && bias_init[0] != '\0' ? bias_init : NULL, 0);
    }
    if (st != LAM_OK) {
        free(s);
        return st;
    }
    *state = s;
    return LAM_OK;
}

static void dense_destroy(void *state) {
    free(state);
}

/*
 * From an input shape: the features per row (`in`), the rows of the 2-D matrix the product
 * runs on, and the output shape. Fails on a rank the layer cannot take.
 */
static lam_status dense_geometry(const dense_state *s, const lam_layer *layer, const lam_shape *x,
                                 int64_t *in, int64_t *rows, lam_shape *out) {
    const char *name = g_host->layer_name(layer);
    if (x->ndim > LAM_MAX_DIMS) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, input has rank %u, at most %d", name,
                                (unsigned)x->ndim, LAM_MAX_DIMS);
    }
    if (s->flatten && x->ndim < 2) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, input has rank %u, flatten=true needs "
                                "(batch, features...) of rank >= 2",
                                name, (unsigned)x->ndim);
    }
    if (x->ndim < 1) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, input has rank 0, needs rank >= 1", name);
    }
    /* flatten: rows = dims[0], in = prod(dims[1:]); otherwise in = dims[-1], rows = the rest */
    const uint32_t split = s->flatten ? 1u : x->ndim - 1u;
    int64_t r = 1;
    int64_t f = 1;
    for (uint32_t i = 0; i < x->ndim; i++) {
        if (x->dims[i] < 0) {
            return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                    "%s: Shape mismatch, input dim %u is unknown (%lld)", name,
                                    (unsigned)i, (long long)x->dims[i]);
        }
        if (i < split) {
            r *= x->dims[i];
        } else {
            f *= x->dims[i];
        }
    }
    if (f == 0) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE, "%s: Shape mismatch, input has 0 features",
                                name);
    }
    *in = f;
    *rows = r;
    *out = (lam_shape){0};
    if (s->flatten) {
        out->ndim = 2;
        out->dims[0] = x->dims[0];
        out->dims[1] = s->units;
    } else {
        out->ndim = x->ndim;
        for (uint32_t i = 0; i + 1 < x->ndim; i++) {
            out->dims[i] = x->dims[i];
        }
        out->dims[x->ndim - 1] = s->units;
    }
    return LAM_OK;
}

static lam_status check_one_input(const lam_layer *layer, uint32_t n_inputs) {
    if (n_inputs != 1) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Wrong number of inputs, expected 1, got %u",
                                g_host->layer_name(layer), (unsigned)n_inputs);
    }
    return LAM_OK;
}

static lam_status dense_infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                                    const lam_tensor_info *const *inputs, uint32_t n_outputs,
                                    lam_tensor_info *const *outputs) {
    const dense_state *s = state;
    int64_t in = 0;
    int64_t rows = 0;
    lam_shape out = {0};
    lam_shape x = {0};
    lam_status st = check_one_input(layer, n_inputs);
    if (st == LAM_OK && n_outputs != 1) {
        st = lam_plugin_error(g_host, LAM_ERR_SHAPE,
                              "%s: Wrong number of outputs, expected 1, got %u",
                              g_host->layer_name(layer), (unsigned)n_outputs);
    }
    if (st == LAM_OK) {
        x.ndim = inputs[0]->ndim;
        for (uint32_t i = 0; i < x.ndim && i < LAM_MAX_DIMS; i++) {
            x.dims[i] = inputs[0]->dims[i];
        }
        st = dense_geometry(s, layer, &x, &in, &rows, &out);
    }
    if (st != LAM_OK) {
        return st;
    }
    /* Sets in_units when still unknown; the host reports a mismatch with a known one. */
    const lam_shape weight_shape = {.ndim = 2, .dims = {s->units, in}};
    st = g_host->layer_param_infer_shape(layer, "weight", &weight_shape);
    if (st != LAM_OK) {
        return st;
    }
    outputs[0]->dtype = inputs[0]->dtype;
    outputs[0]->ndim = out.ndim;
    for (uint32_t i = 0; i < out.ndim; i++) {
        outputs[0]->dims[i] = out.dims[i];
    }
    return LAM_OK;
}

/* After an op that wrote *next: on success the result replaces *cur, whose old tensor is
 * released. Keeps the forward a flat chain with one exit. */
static lam_status step(lam_status st, lam_tensor **cur, lam_tensor **next) {
    if (st == LAM_OK) {
        g_host->tensor_release(*cur);
        *cur = *next;
    }
    *next = NULL;
    return st;
}

static lam_status dense_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                                lam_tensor *const *inputs, uint32_t n_outputs,
                                lam_tensor **outputs) {
    const dense_state *s = state;
    (void)n_outputs; /* the host asks for the one output the descriptor declares */
    outputs[0] = NULL;
    int64_t in = 0;
    int64_t rows = 0;
    lam_shape out_shape = {0};
    lam_status st = check_one_input(layer, n_inputs);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *x = inputs[0];
    const lam_shape *x_shape = g_host->tensor_shape(x);
    if (x_shape == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, input is NULL", g_host->layer_name(layer));
    }
    st = dense_geometry(s, layer, x_shape, &in, &rows, &out_shape);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *weight = NULL; /* borrowed */
    lam_tensor *bias = NULL;   /* borrowed */
    st = g_host->layer_param_data(layer, "weight", x, &weight);
    if (st == LAM_OK && s->use_bias) {
        st = g_host->layer_param_data(layer, "bias", x, &bias);
    }
    if (st != LAM_OK) {
        return st;
    }

    lam_tensor *y = NULL; /* owned: the latest result */
    lam_tensor *next = NULL;
    if (x_shape->ndim != 2) {
        const lam_shape x2 = {.ndim = 2, .dims = {rows, in}};
        st = step(g_host->tensor_reshape(x, &x2, &next), &y, &next);
    }
    if (st == LAM_OK) {
        /* act((rows, in) x (units, in)^T + bias) = (rows, units), one backend op where it can */
        st = step(lam_p_linear(g_host, y != NULL ? y : x, weight, bias, LAM_GEMM_TRANS_B,
                               s->act->op, &next),
                  &y, &next);
    }
    if (st == LAM_OK && out_shape.ndim != 2) {
        st = step(g_host->tensor_reshape(y, &out_shape, &next), &y, &next);
    }
    if (st != LAM_OK) {
        g_host->tensor_release(y);
        return st;
    }
    outputs[0] = y;
    return LAM_OK;
}

/*
 * Fused backward. With x2 = x as (rows, in), y = x2 . W^T + b and a = act(y) the output:
 *   dy = g * act'(y), computed from a: relu step(a), sigmoid a(1-a), tanh 1-a^2; softrelu
 *        sigmoid(y), with y recomputed (from a it would be 1 - exp(-a), which cancels);
 *   dW = dy^T . x2,  db = sum(dy, axis 0),  dx = dy . W (reshaped like x).
 * The host checks (and a test proves) that this equals differentiating dense_forward.
 */
static lam_status act_grad(const dense_state *s, const lam_tensor *a, lam_tensor *g,
                           lam_tensor **dy) {
    lam_tensor *t = NULL, *u = NULL;
    lam_status st = LAM_OK;
    switch (s->act->op) {
    case LAM_OP_RELU:
        st = lam_p_unary(g_host, LAM_OP_STEP, a, &t);
        break;
    case LAM_OP_SIGMOID:
        st = lam_p_scalar(g_host, LAM_OP_RSUB_SCALAR, a, 1.0, &u);
        if (st == LAM_OK) {
            st = lam_p_mul(g_host, a, u, &t);
        }
        break;
    case LAM_OP_TANH:
        st = lam_p_unary(g_host, LAM_OP_SQUARE, a, &u);
        if (st == LAM_OK) {
            st = lam_p_scalar(g_host, LAM_OP_RSUB_SCALAR, u, 1.0, &t);
        }
        break;
    case LAM_OP_SOFTRELU:
        /* sigmoid(y) of the pre-activation, handed in as `a` by the caller: computing it from
         * the output as 1 - exp(-a) loses every digit when y is very negative. */
        st = lam_p_unary(g_host, LAM_OP_SIGMOID, a, &t);
        break;
    default: /* linear */
        *dy = g_host->tensor_retain(g);
        return LAM_OK;
    }
    if (st == LAM_OK) {
        st = lam_p_mul(g_host, g, t, dy);
    }
    g_host->tensor_release(t);
    g_host->tensor_release(u);
    return st;
}

/* t as `shape`: a new reference to t itself when it has that shape already (the 2-D case of
 * every backward), else the host's reshape. */
static lam_status as_shape(lam_tensor *t, const lam_shape *shape, lam_tensor **out) {
    const lam_shape *have = g_host->tensor_shape(t);
    if (have != NULL && have->ndim == shape->ndim) {
        int same = 1;
        for (uint32_t d = 0; d < shape->ndim; d++) {
            same = same && have->dims[d] == shape->dims[d];
        }
        if (same) {
            *out = g_host->tensor_retain(t);
            return LAM_OK;
        }
    }
    return g_host->tensor_reshape(t, shape, out);
}

static lam_status dense_backward(void *state, lam_layer *layer, uint32_t n_inputs,
                                 lam_tensor *const *inputs, uint32_t n_outputs,
                                 lam_tensor *const *outputs, const lam_tensor *const *grad_outputs,
                                 lam_tensor **grad_inputs) {
    const dense_state *s = state;
    (void)n_outputs;
    lam_tensor *output = outputs[0];
    const lam_tensor *grad_output = grad_outputs[0];
    if (grad_output == NULL) {
        return LAM_OK; /* no gradient reached the output: nothing flows back */
    }
    lam_status st = check_one_input(layer, n_inputs);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor *x = inputs[0];
    const lam_shape *x_shape = g_host->tensor_shape(x);
    int64_t in = 0, rows = 0;
    lam_shape out_shape = {0};
    st = dense_geometry(s, layer, x_shape, &in, &rows, &out_shape);
    lam_tensor *weight = NULL; /* borrowed */
    if (st == LAM_OK) {
        st = g_host->layer_param_data(layer, "weight", x, &weight);
    }
    if (st != LAM_OK) {
        return st;
    }
    const lam_shape s2 = {.ndim = 2, .dims = {rows, s->units}};
    const lam_shape x2s = {.ndim = 2, .dims = {rows, in}};
    lam_tensor *a2 = NULL, *g2 = NULL, *dy = NULL, *x2 = NULL, *dw = NULL, *db = NULL, *dx2 = NULL;
    if (s->act->op == LAM_OP_SOFTRELU) {
        /* softrelu's slope needs the pre-activation y = x2 . W^T + b: recompute it. */
        lam_tensor *x2r = NULL, *yl = NULL, *bias = NULL;
        const lam_shape x2shape = {.ndim = 2, .dims = {rows, in}};
        st = g_host->tensor_reshape(x, &x2shape, &x2r);
        if (st == LAM_OK) {
            st = lam_p_matmul(g_host, x2r, weight, LAM_GEMM_TRANS_B, &yl);
        }
        if (st == LAM_OK && s->use_bias) {
            st = g_host->layer_param_data(layer, "bias", x, &bias);
            if (st == LAM_OK) {
                st = lam_p_add(g_host, yl, bias, &a2);
            }
        } else if (st == LAM_OK) {
            a2 = g_host->tensor_retain(yl);
        }
        g_host->tensor_release(x2r);
        g_host->tensor_release(yl);
    } else {
        st = as_shape(output, &s2, &a2);
    }
    if (st == LAM_OK) {
        st = as_shape((lam_tensor *)grad_output, &s2, &g2);
    }
    if (st == LAM_OK) {
        st = act_grad(s, a2, g2, &dy);
    }
    if (st == LAM_OK) {
        st = as_shape(x, &x2s, &x2);
    }
    if (st == LAM_OK) {
        st = lam_p_matmul(g_host, dy, x2, LAM_GEMM_TRANS_A, &dw); /* (units, in) */
    }
    if (st == LAM_OK) {
        st = g_host->layer_param_add_grad(layer, "weight", dw);
    }
    if (st == LAM_OK && s->use_bias) {
        st = lam_p_reduce(g_host, LAM_OP_REDUCE_SUM, dy, 0, 0, &db);
        if (st == LAM_OK) {
            st = g_host->layer_param_add_grad(layer, "bias", db);
        }
    }
    /* The input's gradient costs a product as large as the forward: only when needed. */
    if (st == LAM_OK && g_host->layer_input_needs_grad(layer, 0)) {
        st = lam_p_matmul(g_host, dy, weight, 0, &dx2); /* (rows, in) */
        if (st == LAM_OK) {
            st = as_shape(dx2, x_shape, &grad_inputs[0]);
        }
    }
    g_host->tensor_release(a2);
    g_host->tensor_release(g2);
    g_host->tensor_release(dy);
    g_host->tensor_release(x2);
    g_host->tensor_release(dw);
    g_host->tensor_release(db);
    g_host->tensor_release(dx2);
    return st;
}

/* Gluon 1.x's repr: "Dense(20 -> 256, Activation(relu))", "Dense(None -> 10, linear)". */
static lam_status dense_describe(void *state, lam_layer *layer, char *buf, size_t cap) {
    const dense_state *s = state;
    const lam_shape *w = g_host->layer_param_shape(layer, "weight");
    int64_t in = w != NULL && w->ndim == 2 ? w->dims[1] : s->in_units;
    char in_text[24] = "None";
    if (in > 0) {
        snprintf(in_text, sizeof in_text, "%lld", (long long)in);
    }
    if (s->act->op == LAM_OP_INVALID) {
        snprintf(buf, cap, "Dense(%s -> %lld, linear)", in_text, (long long)s->units);
    } else {
        snprintf(buf, cap, "Dense(%s -> %lld, Activation(%s))", in_text, (long long)s->units,
                 s->act->name);
    }
    return LAM_OK;
}

static const lam_layer_desc dense_desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Dense",
    .prefix = "dense",
    .version = "2.0.0",
    .doc = "fully connected layer, y = act(x . weight^T + bias) (Gluon's nn.Dense)",
    .n_attrs = (uint32_t)(sizeof dense_attrs / sizeof dense_attrs[0]),
    .attrs = dense_attrs,
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .create = dense_create,
    .destroy = dense_destroy,
    .infer_shape = dense_infer_shape,
    .forward = dense_forward,
    .backward = dense_backward,
    .describe = dense_describe,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &dense_desc);
}
