/*
 * pool.c - Gluon's 2-D pooling layers on NCHW images: MaxPool2D, AvgPool2D and
 * GlobalAvgPool2D, one plugin registering the three (they share the window geometry and the
 * display prefix "pool", so pool0, pool1, ... count across them as in Gluon).
 *
 * Windows follow the host's MAX_POOL / AVG_POOL ops (plugin.h), whose output sizes are
 * PyTorch's: floor((H + 2P - K) / S) + 1, or with ceil_mode rounded up as long as the last
 * window starts inside the input or its leading padding. Padding is at most half the window
 * (PyTorch's rule), so no window lies wholly in the padding. Only host ops in the forward, so
 * autograd differentiates it (through the ops' own adjoints) and every backend runs it.
 */
#include "lamina/plugin_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lam_host_api *g_host;

typedef enum pool_kind { POOL_MAX = 1, POOL_AVG = 2, POOL_GLOBAL_AVG = 3 } pool_kind;

static const lam_attr_desc attr_pool_size = {
    LAM_ATTR_DESC_HEADER, .name = "pool_size",  .type = LAM_ATTR_INTS,
    .count = 2,           .default_value = "2", .doc = "window (KH, KW), or one size for both"};
static const lam_attr_desc attr_strides = {
    LAM_ATTR_DESC_HEADER,
    .name = "strides",
    .type = LAM_ATTR_INTS,
    .count = 2,
    .default_value = "0",
    .doc = "step of the window (SH, SW); 0 (Gluon's None) steps by pool_size"};
static const lam_attr_desc attr_padding = {
    LAM_ATTR_DESC_HEADER,
    .name = "padding",
    .type = LAM_ATTR_INTS,
    .count = 2,
    .default_value = "0",
    .doc = "padding on both sides (PH, PW), at most half of pool_size; never wins a max"};
static const lam_attr_desc attr_layout = {LAM_ATTR_DESC_HEADER,  .name = "layout",
                                          .type = LAM_ATTR_ENUM, .default_value = "NCHW",
                                          .choices = "NCHW",     .doc = "data layout; only NCHW"};
static const lam_attr_desc attr_ceil_mode = {
    LAM_ATTR_DESC_HEADER, .name = "ceil_mode", .type = LAM_ATTR_BOOL, .default_value = "false",
    .doc = "round the output size up (a last, partial window) instead of down"};
static const lam_attr_desc attr_count_include_pad = {
    LAM_ATTR_DESC_HEADER, .name = "count_include_pad", .type = LAM_ATTR_BOOL,
    .default_value = "true",
    .doc = "divide by the whole window, padding included; false: by its taps inside the input"};

/* Gluon's orders: MaxPool2D(pool_size, strides, padding, layout, ceil_mode), AvgPool2D(...,
 * count_include_pad), GlobalAvgPool2D(layout). */
static const lam_attr_desc *const max_attrs[] = {&attr_pool_size, &attr_strides, &attr_padding,
                                                 &attr_layout, &attr_ceil_mode};
static const lam_attr_desc *const avg_attrs[] = {&attr_pool_size, &attr_strides,
                                                 &attr_padding,   &attr_layout,
                                                 &attr_ceil_mode, &attr_count_include_pad};
static const lam_attr_desc *const global_attrs[] = {&attr_layout};

typedef struct pool_state {
    pool_kind kind;
    int64_t kernel[2];
    int64_t stride[2];
    int64_t pad[2];
    int32_t ceil_mode;
    int32_t count_include_pad;
} pool_state;

static lam_status pool_create(pool_kind kind, lam_layer *layer, const lam_attrs *attrs,
                              void **state) {
    *state = NULL;
    const char *name = g_host->layer_name(layer);
    pool_state s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    lam_status st = LAM_OK;
    if (s.kind != POOL_GLOBAL_AVG) {
        st = lam_p_attr_pair(g_host, attrs, name, "pool_size", 1, s.kernel);
        if (st == LAM_OK) {
            st = lam_p_attr_pair(g_host, attrs, name, "strides", 0, s.stride);
        }
        if (st == LAM_OK) {
            st = lam_p_attr_pair(g_host, attrs, name, "padding", 0, s.pad);
        }
        if (st == LAM_OK) {
            st = g_host->attr_bool(attrs, "ceil_mode", &s.ceil_mode);
        }
        if (st == LAM_OK && s.kind == POOL_AVG) {
            st = g_host->attr_bool(attrs, "count_include_pad", &s.count_include_pad);
        }
        if (st != LAM_OK) {
            return st;
        }
        if ((s.stride[0] == 0) != (s.stride[1] == 0)) {
            return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                    "%s: Invalid argument, strides must be positive (or 0 for "
                                    "both: pool_size), got (%lld, %lld)",
                                    name, (long long)s.stride[0], (long long)s.stride[1]);
        }
        if (s.stride[0] == 0) {
            s.stride[0] = s.kernel[0];
            s.stride[1] = s.kernel[1];
        }
        if (2 * s.pad[0] > s.kernel[0] || 2 * s.pad[1] > s.kernel[1]) {
            return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                    "%s: Invalid argument, padding (%lld, %lld) must be at most "
                                    "half of pool_size (%lld, %lld)",
                                    name, (long long)s.pad[0], (long long)s.pad[1],
                                    (long long)s.kernel[0], (long long)s.kernel[1]);
        }
    }
    pool_state *heap = malloc(sizeof *heap);
    if (heap == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, layer state",
                                name);
    }
    *heap = s;
    *state = heap;
    return LAM_OK;
}

static lam_status max_create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user;
    return pool_create(POOL_MAX, layer, attrs, state);
}

static lam_status avg_create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user;
    return pool_create(POOL_AVG, layer, attrs, state);
}

static lam_status global_avg_create(void *user, lam_layer *layer, const lam_attrs *attrs,
                                    void **state) {
    (void)user;
    return pool_create(POOL_GLOBAL_AVG, layer, attrs, state);
}

static void pool_destroy(void *state) {
    free(state);
}

/* Output length of one spatial axis, 0 when the window does not fit (as the host's ops). */
static int64_t out_len(int64_t in, int64_t k, int64_t s, int64_t p, int32_t ceil_mode) {
    int64_t span = in + 2 * p - k;
    if (span < 0) {
        return 0;
    }
    int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p) {
        o--; /* the last window would start in the trailing padding */
    }
    return o;
}

static const char *type_name(pool_kind k) {
    return k == POOL_MAX ? "MaxPool2D" : k == POOL_AVG ? "AvgPool2D" : "GlobalAvgPool2D";
}

/* Checks an input and gives the output's spatial size. */
static lam_status pool_geometry(const pool_state *s, const lam_layer *layer, lam_dtype dtype,
                                uint32_t ndim, const int64_t *dims, int64_t *oh, int64_t *ow) {
    const char *name = g_host->layer_name(layer);
    if (ndim != 4) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, input has rank %u, %s needs (batch, "
                                "channels, height, width) of rank 4",
                                name, (unsigned)ndim, type_name(s->kind));
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
    if (s->kind == POOL_GLOBAL_AVG) {
        if (dims[2] == 0 || dims[3] == 0) {
            return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                    "%s: Shape mismatch, the input images are empty (%lldx%lld)",
                                    name, (long long)dims[2], (long long)dims[3]);
        }
        *oh = *ow = 1;
        return LAM_OK;
    }
    *oh = out_len(dims[2], s->kernel[0], s->stride[0], s->pad[0], s->ceil_mode);
    *ow = out_len(dims[3], s->kernel[1], s->stride[1], s->pad[1], s->ceil_mode);
    if (*oh < 1 || *ow < 1) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, pool_size (%lld, %lld) is larger than the "
                                "%lldx%lld input padded by (%lld, %lld) (%lldx%lld)",
                                name, (long long)s->kernel[0], (long long)s->kernel[1],
                                (long long)dims[2], (long long)dims[3], (long long)s->pad[0],
                                (long long)s->pad[1], (long long)(dims[2] + 2 * s->pad[0]),
                                (long long)(dims[3] + 2 * s->pad[1]));
    }
    return LAM_OK;
}

static lam_status pool_infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                                   const lam_tensor_info *const *inputs, uint32_t n_outputs,
                                   lam_tensor_info *const *outputs) {
    const pool_state *s = state;
    (void)n_inputs; /* the host checks the arity of the descriptor: one input, one output */
    (void)n_outputs;
    int64_t oh = 0, ow = 0;
    lam_status st =
        pool_geometry(s, layer, inputs[0]->dtype, inputs[0]->ndim, inputs[0]->dims, &oh, &ow);
    if (st != LAM_OK) {
        return st;
    }
    outputs[0]->dtype = inputs[0]->dtype;
    outputs[0]->ndim = 4;
    outputs[0]->dims[0] = inputs[0]->dims[0];
    outputs[0]->dims[1] = inputs[0]->dims[1];
    outputs[0]->dims[2] = oh;
    outputs[0]->dims[3] = ow;
    return LAM_OK;
}

static lam_status pool_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                               lam_tensor *const *inputs, uint32_t n_outputs,
                               lam_tensor **outputs) {
    const pool_state *s = state;
    (void)n_inputs;
    (void)n_outputs;
    outputs[0] = NULL;
    lam_tensor *x = inputs[0];
    const lam_shape *xs = g_host->tensor_shape(x);
    if (xs == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, input is NULL", g_host->layer_name(layer));
    }
    int64_t oh = 0, ow = 0;
    lam_status st = pool_geometry(s, layer, g_host->tensor_dtype(x), xs->ndim, xs->dims, &oh, &ow);
    if (st != LAM_OK) {
        return st;
    }
    if (s->kind == POOL_GLOBAL_AVG) {
        const int32_t axes[2] = {2, 3};
        return lam_p_reduce_axes(g_host, LAM_OP_REDUCE_MEAN, x, axes, 2, 1, &outputs[0]);
    }
    lam_window_params win;
    lam_p_window_2d(&win, s->kernel[0], s->kernel[1], s->stride[0], s->stride[1], s->pad[0],
                    s->pad[1]);
    if (s->ceil_mode) {
        win.flags |= LAM_WINDOW_CEIL_MODE;
    }
    if (s->kind == POOL_AVG) {
        if (s->count_include_pad) {
            win.flags |= LAM_WINDOW_COUNT_INCLUDE_PAD;
        }
        return lam_p_avg_pool(g_host, x, &win, &outputs[0]);
    }
    lam_tensor *indices = NULL; /* the host keeps its own for the gradient */
    st = lam_p_max_pool(g_host, x, &win, &outputs[0], &indices);
    g_host->tensor_release(indices);
    return st;
}

/* Gluon 1.x's repr: "MaxPool2D(size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False,
 * global_pool=False, pool_type=max, layout=NCHW)"; AvgPool2D adds count_include_pad=False when
 * it is not the default. */
static lam_status pool_describe(void *state, lam_layer *layer, char *buf, size_t cap) {
    const pool_state *s = state;
    (void)layer;
    if (s->kind == POOL_GLOBAL_AVG) {
        snprintf(buf, cap,
                 "GlobalAvgPool2D(size=(1, 1), stride=(1, 1), padding=(0, 0), ceil_mode=True, "
                 "global_pool=True, pool_type=avg, layout=NCHW)");
        return LAM_OK;
    }
    snprintf(buf, cap,
             "%s(size=(%lld, %lld), stride=(%lld, %lld), padding=(%lld, %lld), ceil_mode=%s, "
             "global_pool=False, pool_type=%s, layout=NCHW%s)",
             type_name(s->kind), (long long)s->kernel[0], (long long)s->kernel[1],
             (long long)s->stride[0], (long long)s->stride[1], (long long)s->pad[0],
             (long long)s->pad[1], s->ceil_mode ? "True" : "False",
             s->kind == POOL_MAX ? "max" : "avg",
             s->kind == POOL_AVG && !s->count_include_pad ? ", count_include_pad=False" : "");
    return LAM_OK;
}

/* conform's examples: a 7x8 image, where ceil_mode changes the width of a 3/2/1 window, and
 * padding makes count_include_pad matter. */
static const lam_tensor_info window_info = {
    (uint32_t)sizeof(lam_tensor_info), LAM_DTYPE_F32, 4, 0, {2, 3, 7, 8}};
static const lam_example_input window_input = {
    (uint32_t)sizeof(lam_example_input), LAM_DOMAIN_REAL, &window_info, -1.0, 1.0, NULL};
static const lam_example_input *const window_examples[] = {&window_input};
static const lam_tensor_info global_info = {
    (uint32_t)sizeof(lam_tensor_info), LAM_DTYPE_F32, 4, 0, {2, 3, 5, 6}};
static const lam_example_input global_input = {
    (uint32_t)sizeof(lam_example_input), LAM_DOMAIN_REAL, &global_info, -1.0, 1.0, NULL};
static const lam_example_input *const global_examples[] = {&global_input};

#define POOL_DESC(name_, create_, doc_, attrs_, examples_, example_attrs_)                         \
    {                                                                                              \
        LAM_LAYER_DESC_HEADER,                                                                     \
            .name = name_, .prefix = "pool", .version = "2.0.0", .doc = doc_,                      \
            .n_attrs = (uint32_t)(sizeof attrs_ / sizeof *attrs_), .attrs = attrs_,                \
            .min_inputs = 1, .max_inputs = 1, .n_outputs = 1, .n_examples = 1,                     \
            .examples = examples_, .example_attrs = example_attrs_, .create = create_,             \
            .destroy = pool_destroy, .infer_shape = pool_infer_shape, .forward = pool_forward,     \
            .describe = pool_describe,                                                             \
    }

static const lam_layer_desc pool_descs[] = {
    POOL_DESC("MaxPool2D", max_create, "2-D max pooling over NCHW images (Gluon's nn.MaxPool2D)",
              max_attrs, window_examples, "pool_size=3, strides=2, padding=1"),
    POOL_DESC("AvgPool2D", avg_create,
              "2-D average pooling over NCHW images (Gluon's nn.AvgPool2D)", avg_attrs,
              window_examples, "pool_size=3, strides=2, padding=1"),
    POOL_DESC("GlobalAvgPool2D", global_avg_create,
              "the mean of each channel's image, (N, C, H, W) -> (N, C, 1, 1) (Gluon's "
              "nn.GlobalAvgPool2D)",
              global_attrs, global_examples, ""),
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    for (size_t i = 0; st == LAM_OK && i < sizeof pool_descs / sizeof pool_descs[0]; i++) {
        st = g_host->register_layer(plugin, &pool_descs[i]);
    }
    return st;
}
