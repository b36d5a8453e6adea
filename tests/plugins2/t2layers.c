/*
 * t2layers.c - the layers ABI 1.0 could not express, written as a plugin author would against
 * the SDK only (plugin.h, plugin_ops.h; TLayerNorm and TConv3x3 use 2.2's fused LAYER_NORM and
 * CONV ops, the rest 2.0's): TLayerNorm, TConv3x3, TMaxPool (odd sizes),
 * TEmbedding (I32 indices), TDropout (device RNG, training flag). With the GELU example plugin
 * (a custom kernel) they are issue 14's proof set: each passes `lamina conform --backend all`
 * and a NaN in one sample never reaches another sample's output (tests/plugins2). They are test
 * plugins, not the tuned in-tree layers.
 */
#include "lamina/plugin.h"
#include "lamina/plugin_ops.h"

#include <stdlib.h>
#include <string.h>

static const lam_host_api *H;

#define REL(t) H->tensor_release(t)

/* ---- shared ---- */

typedef struct state {
    int64_t units;  /* TConv3x3 channels, TEmbedding output_dim */
    int64_t extent; /* TEmbedding input_dim */
    int64_t pool;   /* TMaxPool window */
    int64_t stride; /* TMaxPool stride */
    double epsilon; /* TLayerNorm */
    double rate;    /* TDropout */
} state;

static lam_status new_state(void **out, state **s) {
    *s = calloc(1, sizeof **s);
    *out = *s;
    return *s ? LAM_OK : H->set_error(LAM_ERR_OUT_OF_MEMORY, "t2layers: Out of memory");
}

static void destroy(void *st) {
    free(st);
}

static void info_copy(lam_tensor_info *o, const lam_tensor_info *i) {
    o->dtype = i->dtype;
    o->ndim = i->ndim;
    memcpy(o->dims, i->dims, sizeof o->dims);
}

static lam_status need(const lam_tensor_info *in, uint32_t ndim, lam_dtype dt, const char *who) {
    if ((ndim != 0 && in->ndim != ndim) || in->dtype != dt) {
        return lam_plugin_error(H, LAM_ERR_SHAPE, "%s: Invalid input, expected %u-D %s", who,
                                (unsigned)ndim, dt == LAM_DTYPE_I32 ? "int32" : "float32");
    }
    return LAM_OK;
}

static lam_shape shape_of(uint32_t ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    lam_shape s = {.ndim = ndim, .dims = {d0, d1, d2, d3}};
    return s;
}

/* ---- TLayerNorm: over the last axis, with gamma and beta ---- */

static const lam_attr_desc ln_eps = {LAM_ATTR_DESC_HEADER, .name = "epsilon",
                                     .type = LAM_ATTR_FLOAT, .default_value = "1e-5",
                                     .doc = "added to the variance"};
static const lam_attr_desc *const ln_attrs[] = {&ln_eps};

static lam_status ln_create(void *user, lam_layer *l, const lam_attrs *a, void **out) {
    (void)user;
    state *s;
    lam_status st = new_state(out, &s);
    if (st == LAM_OK) {
        st = H->attr_float(a, "epsilon", &s->epsilon);
    }
    lam_shape p = shape_of(1, LAM_DIM_UNKNOWN, 0, 0, 0);
    if (st == LAM_OK) {
        st = H->layer_declare_param(l, "gamma", &p, "ones", 0);
    }
    if (st == LAM_OK) {
        st = H->layer_declare_param(l, "beta", &p, "zeros", 0);
    }
    return st;
}

static lam_status ln_infer(void *st_, lam_layer *l, uint32_t ni, const lam_tensor_info *const *in,
                           uint32_t no, lam_tensor_info *const *out) {
    (void)st_;
    (void)ni;
    (void)no;
    lam_status st = need(in[0], 0, LAM_DTYPE_F32, "TLayerNorm");
    if (st != LAM_OK || in[0]->ndim < 1) {
        return st != LAM_OK ? st : H->set_error(LAM_ERR_SHAPE, "TLayerNorm: Input has no axis");
    }
    lam_shape p = shape_of(1, in[0]->dims[in[0]->ndim - 1], 0, 0, 0);
    st = H->layer_param_infer_shape(l, "gamma", &p);
    if (st == LAM_OK) {
        st = H->layer_param_infer_shape(l, "beta", &p);
    }
    info_copy(out[0], in[0]);
    return st;
}

static lam_status ln_forward(void *st_, lam_layer *l, uint32_t ni, lam_tensor *const *in,
                             uint32_t no, lam_tensor **out) {
    (void)ni;
    (void)no;
    const state *s = st_;
    lam_tensor *g = NULL, *b = NULL; /* borrowed */
    lam_status st = H->layer_param_data(l, "gamma", in[0], &g);
    if (st == LAM_OK) {
        st = H->layer_param_data(l, "beta", in[0], &b);
    }
    /* One host op (LAYER_NORM, ABI 2.2): the backend's fused kernel each way where it has one,
     * the host's composition of basic ops elsewhere; one autograd node either way. */
    return st != LAM_OK ? st : lam_p_layer_norm(H, in[0], g, b, s->epsilon, out);
}

/* ---- TConv3x3: NCHW, 3x3, stride 1, padding 1: one CONV host op ---- */

static const lam_attr_desc cv_ch = {LAM_ATTR_DESC_HEADER, .name = "channels", .type = LAM_ATTR_INT,
                                    .default_value = NULL, .doc = "output channels"};
static const lam_attr_desc *const cv_attrs[] = {&cv_ch};

static lam_status cv_create(void *user, lam_layer *l, const lam_attrs *a, void **out) {
    (void)user;
    state *s;
    lam_status st = new_state(out, &s);
    if (st == LAM_OK) {
        st = H->attr_int(a, "channels", &s->units);
    }
    if (st == LAM_OK && s->units < 1) {
        st = lam_plugin_error(H, LAM_ERR_INVALID_ARGUMENT, "TConv3x3: channels %lld < 1",
                              (long long)s->units);
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_shape w = shape_of(4, s->units, LAM_DIM_UNKNOWN, 3, 3), b = shape_of(1, s->units, 0, 0, 0);
    if (st == LAM_OK) {
        st = H->layer_declare_param(l, "weight", &w, NULL, 0);
    }
    if (st == LAM_OK) {
        st = H->layer_declare_param(l, "bias", &b, "zeros", 0);
    }
    return st;
}

static lam_status cv_infer(void *st_, lam_layer *l, uint32_t ni, const lam_tensor_info *const *in,
                           uint32_t no, lam_tensor_info *const *out) {
    (void)ni;
    (void)no;
    const state *s = st_;
    lam_status st = need(in[0], 4, LAM_DTYPE_F32, "TConv3x3");
    if (st != LAM_OK) {
        return st;
    }
    lam_shape w = shape_of(4, s->units, in[0]->dims[1], 3, 3);
    st = H->layer_param_infer_shape(l, "weight", &w);
    info_copy(out[0], in[0]);
    out[0]->dims[1] = s->units;
    return st;
}

static lam_status cv_forward(void *st_, lam_layer *l, uint32_t ni, lam_tensor *const *in,
                             uint32_t no, lam_tensor **out) {
    (void)ni;
    (void)no;
    (void)st_;
    lam_window_params win;
    lam_p_window_2d(&win, 3, 3, 1, 1, 1, 1);
    lam_tensor *w = NULL, *b = NULL; /* borrowed */
    lam_status st = H->layer_param_data(l, "weight", in[0], &w);
    if (st == LAM_OK) {
        st = H->layer_param_data(l, "bias", in[0], &b);
    }
    if (st == LAM_OK) { /* one CONV (ABI 2.2): the backend's direct convolution, or the host's
                         * im2col and batched product where it has none */
        st = lam_p_conv(H, in[0], w, b, &win, 1, out);
    }
    return st;
}

/* ---- TMaxPool: odd windows and strides, floor mode ---- */

static const lam_attr_desc mp_pool = {LAM_ATTR_DESC_HEADER, .name = "pool_size",
                                      .type = LAM_ATTR_INT, .default_value = "3",
                                      .doc = "square window"};
static const lam_attr_desc mp_stride = {LAM_ATTR_DESC_HEADER, .name = "strides",
                                        .type = LAM_ATTR_INT, .default_value = "2",
                                        .doc = "step of the window"};
static const lam_attr_desc *const mp_attrs[] = {&mp_pool, &mp_stride};

static lam_status mp_create(void *user, lam_layer *l, const lam_attrs *a, void **out) {
    (void)user;
    (void)l;
    state *s;
    lam_status st = new_state(out, &s);
    if (st == LAM_OK) {
        st = H->attr_int(a, "pool_size", &s->pool);
    }
    if (st == LAM_OK) {
        st = H->attr_int(a, "strides", &s->stride);
    }
    if (st == LAM_OK && (s->pool < 1 || s->stride < 1)) {
        st = H->set_error(LAM_ERR_INVALID_ARGUMENT, "TMaxPool: pool_size and strides must be >= 1");
    }
    return st;
}

static lam_status mp_infer(void *st_, lam_layer *l, uint32_t ni, const lam_tensor_info *const *in,
                           uint32_t no, lam_tensor_info *const *out) {
    (void)l;
    (void)ni;
    (void)no;
    const state *s = st_;
    lam_status st = need(in[0], 4, LAM_DTYPE_F32, "TMaxPool");
    if (st == LAM_OK && (in[0]->dims[2] < s->pool || in[0]->dims[3] < s->pool)) {
        st = lam_plugin_error(H, LAM_ERR_SHAPE,
                              "TMaxPool: Input %lldx%lld is smaller than the "
                              "window %lld",
                              (long long)in[0]->dims[2], (long long)in[0]->dims[3],
                              (long long)s->pool);
    }
    info_copy(out[0], in[0]);
    for (int i = 2; i < 4; i++) {
        out[0]->dims[i] = (in[0]->dims[i] - s->pool) / s->stride + 1;
    }
    return st;
}

static lam_status mp_forward(void *st_, lam_layer *l, uint32_t ni, lam_tensor *const *in,
                             uint32_t no, lam_tensor **out) {
    (void)l;
    (void)ni;
    (void)no;
    const state *s = st_;
    lam_window_params win;
    lam_p_window_2d(&win, s->pool, s->pool, s->stride, s->stride, 0, 0);
    lam_tensor *idx = NULL;
    lam_status st = lam_p_max_pool(H, in[0], &win, out, &idx);
    REL(idx);
    return st;
}

/* ---- TEmbedding: I32 indices of any shape -> (..., output_dim) ---- */

static const lam_attr_desc em_in = {LAM_ATTR_DESC_HEADER, .name = "input_dim", .type = LAM_ATTR_INT,
                                    .default_value = NULL, .doc = "vocabulary size"};
static const lam_attr_desc em_out = {LAM_ATTR_DESC_HEADER, .name = "output_dim",
                                     .type = LAM_ATTR_INT, .default_value = NULL,
                                     .doc = "embedding size"};
static const lam_attr_desc *const em_attrs[] = {&em_in, &em_out};

static lam_status em_create(void *user, lam_layer *l, const lam_attrs *a, void **out) {
    (void)user;
    state *s;
    lam_status st = new_state(out, &s);
    if (st == LAM_OK) {
        st = H->attr_int(a, "input_dim", &s->extent);
    }
    if (st == LAM_OK) {
        st = H->attr_int(a, "output_dim", &s->units);
    }
    if (st == LAM_OK && (s->extent < 1 || s->units < 1)) {
        st = H->set_error(LAM_ERR_INVALID_ARGUMENT, "TEmbedding: dims must be >= 1");
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_shape w = shape_of(2, s->extent, s->units, 0, 0);
    if (st == LAM_OK) {
        st = H->layer_declare_param(l, "weight", &w, NULL, 0);
    }
    return st;
}

static lam_status em_infer(void *st_, lam_layer *l, uint32_t ni, const lam_tensor_info *const *in,
                           uint32_t no, lam_tensor_info *const *out) {
    (void)l;
    (void)ni;
    (void)no;
    const state *s = st_;
    lam_status st = need(in[0], 0, LAM_DTYPE_I32, "TEmbedding");
    if (st == LAM_OK && in[0]->ndim >= LAM_MAX_DIMS) {
        st = H->set_error(LAM_ERR_SHAPE, "TEmbedding: Too many dims");
    }
    info_copy(out[0], in[0]);
    out[0]->dtype = LAM_DTYPE_F32;
    out[0]->dims[out[0]->ndim++] = s->units;
    return st;
}

static lam_status em_forward(void *st_, lam_layer *l, uint32_t ni, lam_tensor *const *in,
                             uint32_t no, lam_tensor **out) {
    (void)st_;
    (void)ni;
    (void)no;
    lam_tensor *w = NULL;
    lam_status st = H->layer_param_data(l, "weight", in[0], &w);
    return st == LAM_OK ? lam_p_gather_rows(H, w, in[0], out) : st;
}

static const lam_tensor_info em_info = {
    (uint32_t)sizeof(lam_tensor_info), LAM_DTYPE_I32, 2, 0, {3, 4}};
static const lam_example_input em_example = {
    (uint32_t)sizeof(lam_example_input), LAM_DOMAIN_INDEX, &em_info, 0, 0, "input_dim"};
static const lam_example_input *const em_examples[] = {&em_example};

static const lam_tensor_info img_info = {
    (uint32_t)sizeof(lam_tensor_info), LAM_DTYPE_F32, 4, 0, {2, 3, 7, 7}};
static const lam_example_input img_example = {
    (uint32_t)sizeof(lam_example_input), LAM_DOMAIN_REAL, &img_info, -1.0, 1.0, NULL};
static const lam_example_input *const img_examples[] = {&img_example};

/* ---- TDropout: inverted dropout from the device RNG in training, identity otherwise ---- */

static const lam_attr_desc dr_rate = {LAM_ATTR_DESC_HEADER, .name = "rate", .type = LAM_ATTR_FLOAT,
                                      .default_value = "0.5",
                                      .doc = "probability of dropping an element"};
static const lam_attr_desc *const dr_attrs[] = {&dr_rate};

static lam_status dr_create(void *user, lam_layer *l, const lam_attrs *a, void **out) {
    (void)user;
    (void)l;
    state *s;
    lam_status st = new_state(out, &s);
    if (st == LAM_OK) {
        st = H->attr_float(a, "rate", &s->rate);
    }
    if (st == LAM_OK && !(s->rate >= 0.0 && s->rate < 1.0)) {
        st = lam_plugin_error(H, LAM_ERR_INVALID_ARGUMENT, "TDropout: rate %g is not in [0, 1)",
                              s->rate);
    }
    return st;
}

static lam_status same_infer(void *st_, lam_layer *l, uint32_t ni, const lam_tensor_info *const *in,
                             uint32_t no, lam_tensor_info *const *out) {
    (void)st_;
    (void)l;
    (void)ni;
    (void)no;
    info_copy(out[0], in[0]);
    return need(in[0], 0, LAM_DTYPE_F32, "TDropout");
}

static lam_status dr_forward(void *st_, lam_layer *l, uint32_t ni, lam_tensor *const *in,
                             uint32_t no, lam_tensor **out) {
    (void)ni;
    (void)no;
    const state *s = st_;
    if (!H->is_training() || s->rate == 0.0) {
        *out = H->tensor_retain(in[0]); /* identity at inference */
        return LAM_OK;
    }
    const lam_shape *xs = H->tensor_shape(in[0]);
    uint64_t count = 1;
    for (uint32_t i = 0; i < xs->ndim; i++) {
        count *= (uint64_t)xs->dims[i];
    }
    lam_rng_key key = {(uint32_t)sizeof key, 0, 0, 0, 0};
    lam_tensor *mask = NULL, *kept = NULL;
    lam_status st = H->layer_rng(l, count, &key);
    if (st == LAM_OK) {
        st = lam_p_random(H, H->tensor_ctx(in[0]), LAM_DTYPE_F32, xs, LAM_RANDOM_BERNOULLI,
                          1.0 - s->rate, 0.0, &key, &mask);
    }
    if (st == LAM_OK) {
        st = lam_p_mul(H, in[0], mask, &kept);
    }
    if (st == LAM_OK) {
        st = lam_p_scalar(H, LAM_OP_MUL_SCALAR, kept, 1.0 / (1.0 - s->rate), out);
    }
    REL(mask);
    REL(kept);
    return st;
}

/* ---- registration ---- */

#define LAYER(nm, pfx, doc_, attrs_, create_, infer_, forward_)                                    \
    {                                                                                              \
        LAM_LAYER_DESC_HEADER, .name = nm, .prefix = pfx, .version = "2.0.0", .doc = doc_,         \
                               .n_attrs = sizeof attrs_ / sizeof attrs_[0], .attrs = attrs_,       \
                               .create = create_, .destroy = destroy, .infer_shape = infer_,       \
                               .forward = forward_                                                 \
    }

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    H = host;
    lam_layer_desc d[5] = {
        LAYER("TLayerNorm", "tlayernorm", "layer norm over the last axis (test plugin)", ln_attrs,
              ln_create, ln_infer, ln_forward),
        LAYER("TConv3x3", "tconv", "3x3 convolution, padding 1, NCHW (test plugin)", cv_attrs,
              cv_create, cv_infer, cv_forward),
        LAYER("TMaxPool", "tmaxpool", "max pooling, floor mode (test plugin)", mp_attrs, mp_create,
              mp_infer, mp_forward),
        LAYER("TEmbedding", "tembedding", "rows of a table by int32 index (test plugin)", em_attrs,
              em_create, em_infer, em_forward),
        LAYER("TDropout", "tdropout", "inverted dropout in training (test plugin)", dr_attrs,
              dr_create, same_infer, dr_forward),
    };
    d[1].example_attrs = "channels=4";
    d[1].n_examples = 1;
    d[1].examples = img_examples;
    d[2].n_examples = 1;
    d[2].examples = img_examples;
    d[3].n_examples = 1;
    d[3].examples = em_examples;
    d[3].example_attrs = "input_dim=7, output_dim=5";
    d[4].flags = LAM_LAYER_STOCHASTIC;
    for (int i = 0; st == LAM_OK && i < 5; i++) {
        st = host->register_layer(plugin, &d[i]);
    }
    return st;
}
