/*
 * conv.c - Conv2D, Gluon's nn.Conv2D: y = act(conv(x, weight) + bias) on NCHW images.
 *
 * weight is (channels, in_channels / groups, KH, KW) and bias (channels,), as in Gluon (and
 * PyTorch's Conv2d). in_channels may be left 0 and is then inferred from the first input.
 * The forward is IM2COL and ONE batched product over the whole batch: the weight matrix is a
 * batch of 1 shared by every sample (a zero batch stride); with groups the groups become the
 * batch instead (the columns permuted to (G, C/G*KH*KW, N*L)). Only host ops, so autograd
 * differentiates it and every backend runs it. See mydense/mydense.c for the plugin structure.
 */
#include "lamina/plugin_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lam_host_api *g_host;

#define REL(t) g_host->tensor_release(t)

/* The activation enum, in the order of its choices; LAM_OP_INVALID is "none" (linear). */
typedef struct conv_activation {
    const char *name;
    lam_op op;
} conv_activation;

static const conv_activation activations[] = {
    {"none", LAM_OP_INVALID}, {"relu", LAM_OP_RELU},         {"sigmoid", LAM_OP_SIGMOID},
    {"tanh", LAM_OP_TANH},    {"softrelu", LAM_OP_SOFTRELU},
};
#define N_ACTIVATIONS (sizeof activations / sizeof activations[0])

static const lam_attr_desc attr_channels = {LAM_ATTR_DESC_HEADER, .name = "channels",
                                            .type = LAM_ATTR_INT, .default_value = NULL,
                                            .doc = "output channels"};
static const lam_attr_desc attr_kernel = {
    LAM_ATTR_DESC_HEADER, .name = "kernel_size", .type = LAM_ATTR_INTS,
    .count = 2,           .default_value = NULL, .doc = "window (KH, KW), or one size for both"};
static const lam_attr_desc attr_strides = {
    LAM_ATTR_DESC_HEADER, .name = "strides",    .type = LAM_ATTR_INTS,
    .count = 2,           .default_value = "1", .doc = "step of the window (SH, SW)"};
static const lam_attr_desc attr_padding = {
    LAM_ATTR_DESC_HEADER, .name = "padding",    .type = LAM_ATTR_INTS,
    .count = 2,           .default_value = "0", .doc = "zeros added on both sides (PH, PW)"};
static const lam_attr_desc attr_dilation = {
    LAM_ATTR_DESC_HEADER, .name = "dilation",   .type = LAM_ATTR_INTS,
    .count = 2,           .default_value = "1", .doc = "spacing of the window's taps (DH, DW)"};
static const lam_attr_desc attr_groups = {
    LAM_ATTR_DESC_HEADER, .name = "groups", .type = LAM_ATTR_INT, .default_value = "1",
    .doc = "channel groups convolved separately; divides channels and in_channels"};
static const lam_attr_desc attr_layout = {LAM_ATTR_DESC_HEADER,  .name = "layout",
                                          .type = LAM_ATTR_ENUM, .default_value = "NCHW",
                                          .choices = "NCHW",     .doc = "data layout; only NCHW"};
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
static const lam_attr_desc attr_weight_init = {
    LAM_ATTR_DESC_HEADER, .name = "weight_initializer", .type = LAM_ATTR_STRING,
    .default_value = "",
    .doc = "initializer of weight, e.g. xavier; empty uses the block's initializer"};
static const lam_attr_desc attr_bias_init = {LAM_ATTR_DESC_HEADER, .name = "bias_initializer",
                                             .type = LAM_ATTR_STRING, .default_value = "zeros",
                                             .doc = "initializer of bias"};
static const lam_attr_desc attr_in_channels = {
    LAM_ATTR_DESC_HEADER, .name = "in_channels", .type = LAM_ATTR_INT, .default_value = "0",
    .doc = "input channels; 0 infers them from the first input"};
/* Gluon's order (channels, kernel_size, strides, padding, dilation, groups, layout, activation,
 * use_bias, weight_initializer, bias_initializer, in_channels). */
static const lam_attr_desc *const conv_attrs[] = {
    &attr_channels, &attr_kernel,      &attr_strides,   &attr_padding,
    &attr_dilation, &attr_groups,      &attr_layout,    &attr_activation,
    &attr_use_bias, &attr_weight_init, &attr_bias_init, &attr_in_channels,
};

typedef struct conv_state {
    int64_t channels;
    int64_t in_channels; /* as given; 0 = inferred (the weight's shape then says what is known) */
    int64_t kernel[2];
    int64_t stride[2];
    int64_t pad[2];
    int64_t dilation[2];
    int64_t groups;
    const conv_activation *act;
    int32_t use_bias;
} conv_state;

static lam_status conv_create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user;
    *state = NULL;
    const char *name = g_host->layer_name(layer);
    conv_state s;
    memset(&s, 0, sizeof s);
    const char *act = NULL;
    const char *weight_init = NULL;
    const char *bias_init = NULL;
    lam_status st = g_host->attr_int(attrs, "channels", &s.channels);
    if (st == LAM_OK) {
        st = g_host->attr_int(attrs, "in_channels", &s.in_channels);
    }
    if (st == LAM_OK) {
        st = g_host->attr_int(attrs, "groups", &s.groups);
    }
    if (st == LAM_OK) {
        st = g_host->attr_bool(attrs, "use_bias", &s.use_bias);
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
    if (s.channels <= 0) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, channels must be positive, got %lld", name,
                                (long long)s.channels);
    }
    st = lam_p_attr_pair(g_host, attrs, name, "kernel_size", 1, s.kernel);
    if (st == LAM_OK) {
        st = lam_p_attr_pair(g_host, attrs, name, "strides", 1, s.stride);
    }
    if (st == LAM_OK) {
        st = lam_p_attr_pair(g_host, attrs, name, "padding", 0, s.pad);
    }
    if (st == LAM_OK) {
        st = lam_p_attr_pair(g_host, attrs, name, "dilation", 1, s.dilation);
    }
    if (st != LAM_OK) {
        return st;
    }
    if (s.groups <= 0) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, groups must be positive, got %lld", name,
                                (long long)s.groups);
    }
    if (s.channels % s.groups != 0) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, groups %lld does not divide channels %lld",
                                name, (long long)s.groups, (long long)s.channels);
    }
    if (s.in_channels < 0) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, in_channels must be positive or 0 (infer "
                                "from the input), got %lld",
                                name, (long long)s.in_channels);
    }
    if (s.in_channels % s.groups != 0) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, groups %lld does not divide in_channels "
                                "%lld",
                                name, (long long)s.groups, (long long)s.in_channels);
    }
    for (size_t i = 0; i < N_ACTIVATIONS && act != NULL; i++) {
        if (strcmp(activations[i].name, act) == 0) {
            s.act = &activations[i];
        }
    }
    if (s.act == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, activation '%s' is not one of "
                                "none|relu|sigmoid|tanh|softrelu",
                                name, act != NULL ? act : "(null)");
    }

    conv_state *heap = malloc(sizeof *heap);
    if (heap == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, layer state",
                                name);
    }
    *heap = s;
    const lam_shape weight_shape = {
        .ndim = 4,
        .dims = {s.channels, s.in_channels > 0 ? s.in_channels / s.groups : LAM_DIM_UNKNOWN,
                 s.kernel[0], s.kernel[1]}};
    st = g_host->layer_declare_param(
        layer, "weight", &weight_shape,
        weight_init != NULL && weight_init[0] != '\0' ? weight_init : NULL, 0);
    if (st == LAM_OK && s.use_bias) {
        const lam_shape bias_shape = {.ndim = 1, .dims = {s.channels}};
        st = g_host->layer_declare_param(
            layer, "bias", &bias_shape,
            bias_init != NULL && bias_init[0] != '\0' ? bias_init : NULL, 0);
    }
    if (st != LAM_OK) {
        free(heap);
        return st;
    }
    *state = heap;
    return LAM_OK;
}

static void conv_destroy(void *state) {
    free(state);
}

/* Output length of one spatial axis (floor mode), 0 when the window does not fit. */
static int64_t out_len(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
    int64_t span = in + 2 * p - d * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
}

/* The sizes of one forward, from the input's. */
typedef struct conv_geo {
    int64_t n, c, h, w; /* input */
    int64_t oh, ow;     /* output */
} conv_geo;

static lam_status conv_geometry(const conv_state *s, const lam_layer *layer, lam_dtype dtype,
                                uint32_t ndim, const int64_t *dims, conv_geo *g) {
    const char *name = g_host->layer_name(layer);
    if (ndim != 4) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, input has rank %u, Conv2D needs (batch, "
                                "channels, height, width) of rank 4",
                                name, (unsigned)ndim);
    }
    if (dtype != LAM_DTYPE_F32) {
        return lam_plugin_error(g_host, LAM_ERR_DTYPE,
                                "%s: Unsupported dtype, the input must be float32, got %s", name,
                                lam_p_dtype_name(dtype));
    }
    for (uint32_t i = 0; i < 4; i++) {
        if (dims[i] < 0) {
            return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                    "%s: Shape mismatch, input dim %u is unknown (%lld)", name,
                                    (unsigned)i, (long long)dims[i]);
        }
    }
    *g = (conv_geo){.n = dims[0], .c = dims[1], .h = dims[2], .w = dims[3]};
    if (g->c == 0 || g->c % s->groups != 0) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, input has %lld channels, groups %lld does "
                                "not divide them",
                                name, (long long)g->c, (long long)s->groups);
    }
    g->oh = out_len(g->h, s->kernel[0], s->stride[0], s->pad[0], s->dilation[0]);
    g->ow = out_len(g->w, s->kernel[1], s->stride[1], s->pad[1], s->dilation[1]);
    if (g->oh < 1 || g->ow < 1) {
        return lam_plugin_error(
            g_host, LAM_ERR_SHAPE,
            "%s: Shape mismatch, kernel_size (%lld, %lld) with dilation (%lld, %lld) spans "
            "%lldx%lld, larger than the %lldx%lld input padded by (%lld, %lld) (%lldx%lld)",
            name, (long long)s->kernel[0], (long long)s->kernel[1], (long long)s->dilation[0],
            (long long)s->dilation[1], (long long)(s->dilation[0] * (s->kernel[0] - 1) + 1),
            (long long)(s->dilation[1] * (s->kernel[1] - 1) + 1), (long long)g->h, (long long)g->w,
            (long long)s->pad[0], (long long)s->pad[1], (long long)(g->h + 2 * s->pad[0]),
            (long long)(g->w + 2 * s->pad[1]));
    }
    return LAM_OK;
}

static lam_status conv_infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                                   const lam_tensor_info *const *inputs, uint32_t n_outputs,
                                   lam_tensor_info *const *outputs) {
    const conv_state *s = state;
    (void)n_inputs; /* the host checks the arity of the descriptor: one input, one output */
    (void)n_outputs;
    conv_geo g = {0};
    lam_status st = conv_geometry(s, layer, inputs[0]->dtype, inputs[0]->ndim, inputs[0]->dims, &g);
    if (st != LAM_OK) {
        return st;
    }
    /* Sets in_channels when still unknown; the host reports a mismatch with a known one. */
    const lam_shape weight_shape = {
        .ndim = 4, .dims = {s->channels, g.c / s->groups, s->kernel[0], s->kernel[1]}};
    st = g_host->layer_param_infer_shape(layer, "weight", &weight_shape);
    if (st != LAM_OK) {
        return st;
    }
    outputs[0]->dtype = inputs[0]->dtype;
    outputs[0]->ndim = 4;
    outputs[0]->dims[0] = g.n;
    outputs[0]->dims[1] = s->channels;
    outputs[0]->dims[2] = g.oh;
    outputs[0]->dims[3] = g.ow;
    return LAM_OK;
}

/* After an op that wrote *next: on success the result replaces *cur, whose old tensor is
 * released. Keeps the forward a flat chain with one exit. */
static lam_status step(lam_status st, lam_tensor **cur, lam_tensor **next) {
    if (st == LAM_OK) {
        REL(*cur);
        *cur = *next;
    }
    *next = NULL;
    return st;
}

static lam_status conv_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                               lam_tensor *const *inputs, uint32_t n_outputs,
                               lam_tensor **outputs) {
    const conv_state *s = state;
    (void)n_inputs;
    (void)n_outputs;
    outputs[0] = NULL;
    lam_tensor *x = inputs[0];
    const lam_shape *xs = g_host->tensor_shape(x);
    if (xs == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, input is NULL", g_host->layer_name(layer));
    }
    conv_geo g = {0};
    lam_status st = conv_geometry(s, layer, g_host->tensor_dtype(x), xs->ndim, xs->dims, &g);
    lam_tensor *weight = NULL; /* borrowed */
    lam_tensor *bias = NULL;   /* borrowed */
    if (st == LAM_OK) {
        st = g_host->layer_param_data(layer, "weight", x, &weight);
    }
    if (st == LAM_OK && s->use_bias) {
        st = g_host->layer_param_data(layer, "bias", x, &bias);
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_window_params win;
    lam_p_window_2d(&win, s->kernel[0], s->kernel[1], s->stride[0], s->stride[1], s->pad[0],
                    s->pad[1]);
    win.dilation[0] = s->dilation[0];
    win.dilation[1] = s->dilation[1];

    /* One CONV: the host runs the backend's direct convolution, or im2col and a product. */
    lam_tensor *y = NULL, *next = NULL;
    st = lam_p_conv(g_host, x, weight, bias, &win, (uint32_t)s->groups, &y);
    if (st == LAM_OK && s->act->op != LAM_OP_INVALID) {
        st = step(lam_p_unary(g_host, s->act->op, y, &next), &y, &next);
    }
    if (st != LAM_OK) {
        REL(y);
        return st;
    }
    outputs[0] = y;
    return LAM_OK;
}

static void pair_text(char *buf, size_t cap, const int64_t v[2]) {
    snprintf(buf, cap, "(%lld, %lld)", (long long)v[0], (long long)v[1]);
}

/* Gluon 1.x's repr: "Conv2D(1 -> 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2),
 * Activation(relu))"; padding, dilation, groups, bias=False only when not the default, and
 * "None" for input channels not known yet. (Gluon prints the weight's in_channels / groups;
 * here the input channels themselves.) */
static lam_status conv_describe(void *state, lam_layer *layer, char *buf, size_t cap) {
    const conv_state *s = state;
    const lam_shape *w = g_host->layer_param_shape(layer, "weight");
    int64_t in = w != NULL && w->ndim == 4 && w->dims[1] > 0 ? w->dims[1] * s->groups : 0;
    char in_text[24] = "None", k[48], st[48], pad[64] = "", dil[64] = "", grp[32] = "";
    char act[48] = "";
    if (in > 0) {
        snprintf(in_text, sizeof in_text, "%lld", (long long)in);
    }
    pair_text(k, sizeof k, s->kernel);
    pair_text(st, sizeof st, s->stride);
    if (s->pad[0] != 0 || s->pad[1] != 0) {
        char p[40];
        pair_text(p, sizeof p, s->pad);
        snprintf(pad, sizeof pad, ", padding=%s", p);
    }
    if (s->dilation[0] != 1 || s->dilation[1] != 1) {
        char d[40];
        pair_text(d, sizeof d, s->dilation);
        snprintf(dil, sizeof dil, ", dilation=%s", d);
    }
    if (s->groups != 1) {
        snprintf(grp, sizeof grp, ", groups=%lld", (long long)s->groups);
    }
    if (s->act->op != LAM_OP_INVALID) {
        snprintf(act, sizeof act, ", Activation(%s)", s->act->name);
    }
    snprintf(buf, cap, "Conv2D(%s -> %lld, kernel_size=%s, stride=%s%s%s%s%s%s)", in_text,
             (long long)s->channels, k, st, pad, dil, grp, s->use_bias ? "" : ", bias=False", act);
    return LAM_OK;
}

/* conform's example: 4 channels in, 6 out (so groups=2 is valid too), a 3x3 window with
 * padding 1 on a 6x7 image. */
static const lam_tensor_info example_info = {
    (uint32_t)sizeof(lam_tensor_info), LAM_DTYPE_F32, 4, 0, {2, 4, 6, 7}};
static const lam_example_input example_input = {
    (uint32_t)sizeof(lam_example_input), LAM_DOMAIN_REAL, &example_info, -1.0, 1.0, NULL};
static const lam_example_input *const examples[] = {&example_input};

static const lam_layer_desc conv_desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Conv2D",
    .prefix = "conv",
    .version = "2.0.0",
    .doc = "2-D convolution over NCHW images, y = act(conv(x, weight) + bias) (Gluon's "
           "nn.Conv2D)",
    .n_attrs = (uint32_t)(sizeof conv_attrs / sizeof conv_attrs[0]),
    .attrs = conv_attrs,
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .n_examples = 1,
    .examples = examples,
    .example_attrs = "channels=6, kernel_size=3, padding=1",
    .create = conv_create,
    .destroy = conv_destroy,
    .infer_shape = conv_infer_shape,
    .forward = conv_forward,
    .describe = conv_describe,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &conv_desc);
}
