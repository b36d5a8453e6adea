/*
 * batchnorm.c - BatchNorm, Gluon's nn.BatchNorm: normalizes each channel (the `axis` of the
 * input) over every other axis, y = (x - mean) / sqrt(var + epsilon) * gamma + beta.
 *
 * Training (host->is_training: inside lam_autograd_train_mode_begin(1), or while recording
 * unless train mode was switched off) uses the batch's mean and biased variance and then
 * updates the running statistics, PyTorch's rule written with Gluon's momentum (PyTorch's
 * momentum is 1 - Gluon's):
 *
 *     running_mean = momentum * running_mean + (1 - momentum) * mean
 *     running_var  = momentum * running_var  + (1 - momentum) * var * n / (n - 1)
 *
 * n the values per channel: the running variance takes the UNBIASED batch variance, as PyTorch
 * does (Gluon takes the biased one), so a PyTorch model loading our file behaves the same; and
 * as in PyTorch, training needs more than one value per channel. Inference (and training with
 * use_global_stats) uses the running statistics. running_mean / running_var are LAM_PARAM_STATE
 * parameters: no gradient, saved with the model (batchnorm0_running_mean, ...), changed only
 * by a training forward through host->layer_param_assign.
 *
 * center=false / scale=false: no beta / gamma parameter at all (PyTorch's affine=False; Gluon
 * keeps a fixed one). The forward is host ops only (MOMENTS and broadcast elementwise ops), so
 * autograd differentiates it and every backend runs it:
 *     s = gamma / sqrt(var + eps),  y = x * s + (beta - mean * s)
 * two passes over x, the per-channel arithmetic on (1, C, 1, 1) tensors.
 */
#include "lamina/plugin_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lam_host_api *g_host;

static const lam_attr_desc attr_axis = {
    LAM_ATTR_DESC_HEADER, .name = "axis", .type = LAM_ATTR_INT, .default_value = "1",
    .doc = "the channel axis (negative counts from the end); statistics over every other axis"};
static const lam_attr_desc attr_momentum = {
    LAM_ATTR_DESC_HEADER, .name = "momentum", .type = LAM_ATTR_FLOAT, .default_value = "0.9",
    .doc = "running = momentum * running + (1 - momentum) * batch statistic, in [0, 1]"};
static const lam_attr_desc attr_epsilon = {LAM_ATTR_DESC_HEADER, .name = "epsilon",
                                           .type = LAM_ATTR_FLOAT, .default_value = "1e-5",
                                           .doc = "added to the variance, >= 0"};
static const lam_attr_desc attr_center = {LAM_ATTR_DESC_HEADER, .name = "center",
                                          .type = LAM_ATTR_BOOL, .default_value = "true",
                                          .doc = "add the learned offset beta"};
static const lam_attr_desc attr_scale = {LAM_ATTR_DESC_HEADER, .name = "scale",
                                         .type = LAM_ATTR_BOOL, .default_value = "true",
                                         .doc = "multiply by the learned gamma"};
static const lam_attr_desc attr_global = {
    LAM_ATTR_DESC_HEADER, .name = "use_global_stats", .type = LAM_ATTR_BOOL,
    .default_value = "false",
    .doc = "use the running statistics in training too (and leave them unchanged)"};
static const lam_attr_desc attr_in_channels = {
    LAM_ATTR_DESC_HEADER, .name = "in_channels", .type = LAM_ATTR_INT, .default_value = "0",
    .doc = "channels; 0 infers them from the first input"};
static const lam_attr_desc *const bn_attrs[] = {
    &attr_axis,  &attr_momentum, &attr_epsilon,     &attr_center,
    &attr_scale, &attr_global,   &attr_in_channels,
};

typedef struct bn_state {
    int64_t axis;
    double momentum;
    double epsilon;
    int32_t center;
    int32_t scale;
    int32_t use_global_stats;
    int64_t in_channels;
} bn_state;

static lam_status bn_create(void *user, lam_layer *layer, const lam_attrs *attrs, void **state) {
    (void)user;
    *state = NULL;
    const char *name = g_host->layer_name(layer);
    bn_state v = {0};
    lam_status st = g_host->attr_int(attrs, "axis", &v.axis);
    if (st == LAM_OK) {
        st = g_host->attr_float(attrs, "momentum", &v.momentum);
    }
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
        st = g_host->attr_bool(attrs, "use_global_stats", &v.use_global_stats);
    }
    if (st == LAM_OK) {
        st = g_host->attr_int(attrs, "in_channels", &v.in_channels);
    }
    if (st != LAM_OK) {
        return st;
    }
    if (!(v.momentum >= 0.0 && v.momentum <= 1.0)) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, momentum must be in [0, 1], got %g", name,
                                v.momentum);
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
    bn_state *s = malloc(sizeof *s);
    if (s == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, layer state",
                                name);
    }
    *s = v;
    const lam_shape c = {.ndim = 1, .dims = {v.in_channels > 0 ? v.in_channels : LAM_DIM_UNKNOWN}};
    /* Gluon's order, which is also the order of the keys in a saved file. */
    if (v.scale) {
        st = g_host->layer_declare_param(layer, "gamma", &c, "ones", 0);
    }
    if (st == LAM_OK && v.center) {
        st = g_host->layer_declare_param(layer, "beta", &c, "zeros", 0);
    }
    if (st == LAM_OK) {
        st = g_host->layer_declare_param(layer, "running_mean", &c, "zeros", LAM_PARAM_STATE);
    }
    if (st == LAM_OK) {
        st = g_host->layer_declare_param(layer, "running_var", &c, "ones", LAM_PARAM_STATE);
    }
    if (st != LAM_OK) {
        free(s);
        return st;
    }
    *state = s;
    return LAM_OK;
}

static void bn_destroy(void *state) {
    free(state);
}

/* The channel axis of an input of rank `ndim`, checked. */
static lam_status channel_axis(const bn_state *s, const lam_layer *layer, uint32_t ndim,
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

static lam_status bn_infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                                 const lam_tensor_info *const *inputs, uint32_t n_outputs,
                                 lam_tensor_info *const *outputs) {
    const bn_state *s = state;
    (void)n_inputs; /* the host checks the arity the descriptor declares */
    (void)n_outputs;
    const lam_tensor_info *x = inputs[0];
    const char *name = g_host->layer_name(layer);
    if (x->dtype != LAM_DTYPE_F32) {
        return lam_plugin_error(g_host, LAM_ERR_DTYPE,
                                "%s: Dtype mismatch, input must be float32, got %s", name,
                                lam_p_dtype_name(x->dtype));
    }
    uint32_t a = 0;
    lam_status st = channel_axis(s, layer, x->ndim, &a);
    if (st != LAM_OK) {
        return st;
    }
    if (x->dims[a] <= 0) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, input has %lld channels on axis %u", name,
                                (long long)x->dims[a], (unsigned)a);
    }
    const lam_shape c = {.ndim = 1, .dims = {x->dims[a]}};
    static const char *const names[] = {"gamma", "beta", "running_mean", "running_var"};
    for (size_t i = 0; i < 4 && st == LAM_OK; i++) {
        if ((i == 0 && !s->scale) || (i == 1 && !s->center)) {
            continue;
        }
        st = g_host->layer_param_infer_shape(layer, names[i], &c);
    }
    if (st != LAM_OK) {
        return st;
    }
    outputs[0]->dtype = x->dtype;
    outputs[0]->ndim = x->ndim;
    memcpy(outputs[0]->dims, x->dims, sizeof outputs[0]->dims);
    return LAM_OK;
}

/* Tensors a forward makes; all released at its end, so every exit path is the same one. */
enum {
    T_MEAN, /* (1, C, 1, 1) */
    T_VAR,
    T_GAMMA, /* parameters reshaped to (1, C, 1, 1) */
    T_BETA,
    T_VEPS, /* var + eps, then its sqrt, then s */
    T_SD,
    T_INV,
    T_S,
    T_MS,
    T_SHIFT,
    T_XS,
    T_MD, /* the running-statistics update */
    T_VD,
    T_M1,
    T_V1,
    T_RM,
    T_RV,
    T_COUNT
};

/*
 * The batch mean and biased variance per channel, shaped like `bshape`. With the channel axis
 * in the middle (NCHW) the reduced axes are not adjacent and MOMENTS over them would copy x
 * into (C, N*H*W) order; instead x is viewed as (N, C, H*W), MOMENTS reduces each sample's
 * plane (contiguous), and the N equal-size groups are combined exactly (Chan et al.):
 *     mean = mean_n(m_n),  var = mean_n(v_n) + mean_n((m_n - mean)^2)
 * on (N, C, 1) tensors, all recorded, so autograd differentiates it.
 */
static lam_status batch_moments(lam_tensor *x, uint32_t a, const lam_shape *bshape,
                                const int32_t *axes, uint32_t n_axes, lam_tensor **mean,
                                lam_tensor **var) {
    const lam_shape *xs = g_host->tensor_shape(x);
    int64_t before = 1, after = 1;
    for (uint32_t i = 0; i < xs->ndim; i++) {
        before *= i < a ? xs->dims[i] : 1;
        after *= i > a ? xs->dims[i] : 1;
    }
    lam_tensor *t3 = NULL, *m = NULL, *v = NULL, *gm = NULL, *vm = NULL, *d = NULL, *d2 = NULL,
               *dm = NULL, *gv = NULL;
    lam_status st;
    if (before == 1 || after == 1) { /* the reduced axes are adjacent: one MOMENTS */
        return lam_p_moments(g_host, x, axes, n_axes, 1, mean, var);
    }
    const lam_shape s3 = {.ndim = 3, .dims = {before, xs->dims[a], after}};
    const int32_t last = 2, first = 0;
    st = g_host->tensor_reshape(x, &s3, &t3);
    if (st == LAM_OK) { /* per sample and channel: (N, C, 1) */
        st = lam_p_moments(g_host, t3, &last, 1, 1, &m, &v);
    }
    if (st == LAM_OK) { /* (1, C, 1) */
        st = lam_p_reduce(g_host, LAM_OP_REDUCE_MEAN, m, first, 1, &gm);
    }
    if (st == LAM_OK) {
        st = lam_p_reduce(g_host, LAM_OP_REDUCE_MEAN, v, first, 1, &vm);
    }
    if (st == LAM_OK) {
        st = lam_p_sub(g_host, m, gm, &d);
    }
    if (st == LAM_OK) {
        st = lam_p_unary(g_host, LAM_OP_SQUARE, d, &d2);
    }
    if (st == LAM_OK) {
        st = lam_p_reduce(g_host, LAM_OP_REDUCE_MEAN, d2, first, 1, &dm);
    }
    if (st == LAM_OK) {
        st = lam_p_add(g_host, vm, dm, &gv);
    }
    if (st == LAM_OK) {
        st = g_host->tensor_reshape(gm, bshape, mean);
    }
    if (st == LAM_OK) {
        st = g_host->tensor_reshape(gv, bshape, var);
    }
    lam_tensor *all[] = {t3, m, v, gm, vm, d, d2, dm, gv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        g_host->tensor_release(all[i]);
    }
    if (st != LAM_OK) {
        g_host->tensor_release(*mean);
        *mean = NULL;
    }
    return st;
}

/* The running statistics from the batch ones (not recorded: they are not differentiated). */
static lam_status update_running(const bn_state *s, lam_layer *layer, lam_tensor *x, lam_tensor **t,
                                 int64_t channels, int64_t n) {
    lam_tensor *rm = NULL, *rv = NULL; /* borrowed */
    const lam_shape c = {.ndim = 1, .dims = {channels}};
    lam_status st = g_host->layer_param_data(layer, "running_mean", x, &rm);
    if (st == LAM_OK) {
        st = g_host->layer_param_data(layer, "running_var", x, &rv);
    }
    if (st == LAM_OK) {
        st = g_host->tensor_detach(t[T_MEAN], &t[T_MD]);
    }
    if (st == LAM_OK) {
        st = g_host->tensor_detach(t[T_VAR], &t[T_VD]);
    }
    if (st == LAM_OK) {
        st = g_host->tensor_reshape(t[T_MD], &c, &t[T_M1]);
    }
    if (st == LAM_OK) {
        st = g_host->tensor_reshape(t[T_VD], &c, &t[T_V1]);
    }
    /* PyTorch's running variance: the unbiased batch variance, var * n / (n - 1). */
    const double unbias = (double)n / (double)(n - 1);
    if (st == LAM_OK) {
        st = lam_p_axpby(g_host, s->momentum, rm, 1.0 - s->momentum, t[T_M1], &t[T_RM]);
    }
    if (st == LAM_OK) {
        st = lam_p_axpby(g_host, s->momentum, rv, (1.0 - s->momentum) * unbias, t[T_V1], &t[T_RV]);
    }
    if (st == LAM_OK) {
        st = g_host->layer_param_assign(layer, "running_mean", t[T_RM]);
    }
    if (st == LAM_OK) {
        st = g_host->layer_param_assign(layer, "running_var", t[T_RV]);
    }
    return st;
}

static lam_status bn_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                             lam_tensor *const *inputs, uint32_t n_outputs, lam_tensor **outputs) {
    const bn_state *s = state;
    (void)n_inputs;
    (void)n_outputs;
    outputs[0] = NULL;
    const char *name = g_host->layer_name(layer);
    lam_tensor *x = inputs[0];
    const lam_shape *xs = g_host->tensor_shape(x);
    uint32_t a = 0;
    lam_status st = channel_axis(s, layer, xs->ndim, &a);
    if (st != LAM_OK) {
        return st;
    }
    /* (1, C, 1, 1): the channel axis kept, every other one reduced to 1 */
    lam_shape bshape = {.ndim = xs->ndim};
    int32_t axes[LAM_MAX_DIMS];
    uint32_t n_axes = 0;
    int64_t n = 1;
    for (uint32_t i = 0; i < xs->ndim; i++) {
        bshape.dims[i] = i == a ? xs->dims[i] : 1;
        if (i != a) {
            axes[n_axes++] = (int32_t)i;
            n *= xs->dims[i];
        }
    }
    const int64_t channels = xs->dims[a];
    const int batch_stats = g_host->is_training() && !s->use_global_stats;
    if (batch_stats && n <= 1) {
        char dims[160] = "";
        for (uint32_t i = 0; i < xs->ndim; i++) {
            size_t len = strlen(dims);
            snprintf(dims + len, sizeof dims - len, "%s%lld", i ? ", " : "",
                     (long long)xs->dims[i]);
        }
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, training needs more than 1 value per "
                                "channel, got input (%s)",
                                name, dims);
    }

    lam_tensor *t[T_COUNT] = {NULL};
    lam_tensor *p = NULL; /* borrowed parameter data */
    if (batch_stats) {
        st = batch_moments(x, a, &bshape, axes, n_axes, &t[T_MEAN], &t[T_VAR]);
    } else {
        st = g_host->layer_param_data(layer, "running_mean", x, &p);
        if (st == LAM_OK) {
            st = g_host->tensor_reshape(p, &bshape, &t[T_MEAN]);
        }
        if (st == LAM_OK) {
            st = g_host->layer_param_data(layer, "running_var", x, &p);
        }
        if (st == LAM_OK) {
            st = g_host->tensor_reshape(p, &bshape, &t[T_VAR]);
        }
    }
    if (st == LAM_OK && s->scale) {
        st = g_host->layer_param_data(layer, "gamma", x, &p);
        if (st == LAM_OK) {
            st = g_host->tensor_reshape(p, &bshape, &t[T_GAMMA]);
        }
    }
    if (st == LAM_OK && s->center) {
        st = g_host->layer_param_data(layer, "beta", x, &p);
        if (st == LAM_OK) {
            st = g_host->tensor_reshape(p, &bshape, &t[T_BETA]);
        }
    }
    /* s = gamma / sqrt(var + eps); shift = beta - mean * s */
    if (st == LAM_OK) {
        st = lam_p_scalar(g_host, LAM_OP_ADD_SCALAR, t[T_VAR], s->epsilon, &t[T_VEPS]);
    }
    if (st == LAM_OK) {
        st = lam_p_unary(g_host, LAM_OP_SQRT, t[T_VEPS], &t[T_SD]);
    }
    if (st == LAM_OK) {
        st = s->scale ? lam_p_div(g_host, t[T_GAMMA], t[T_SD], &t[T_S])
                      : lam_p_scalar(g_host, LAM_OP_RDIV_SCALAR, t[T_SD], 1.0, &t[T_S]);
    }
    if (st == LAM_OK) {
        st = lam_p_mul(g_host, t[T_MEAN], t[T_S], &t[T_MS]);
    }
    if (st == LAM_OK) {
        st = s->center ? lam_p_sub(g_host, t[T_BETA], t[T_MS], &t[T_SHIFT])
                       : lam_p_unary(g_host, LAM_OP_NEG, t[T_MS], &t[T_SHIFT]);
    }
    if (st == LAM_OK) {
        st = lam_p_mul(g_host, x, t[T_S], &t[T_XS]);
    }
    if (st == LAM_OK) {
        st = lam_p_add(g_host, t[T_XS], t[T_SHIFT], &outputs[0]);
    }
    if (st == LAM_OK && batch_stats) {
        st = update_running(s, layer, x, t, channels, n);
    }
    for (int i = 0; i < T_COUNT; i++) {
        g_host->tensor_release(t[i]);
    }
    if (st != LAM_OK) {
        g_host->tensor_release(outputs[0]);
        outputs[0] = NULL;
    }
    return st;
}

/* Gluon 1.x's repr: "BatchNorm(axis=1, eps=1e-05, momentum=0.9, fix_gamma=False,
 * use_global_stats=False, in_channels=None)". */
static lam_status bn_describe(void *state, lam_layer *layer, char *buf, size_t cap) {
    const bn_state *s = state;
    const lam_shape *c = g_host->layer_param_shape(layer, "running_mean");
    char ch[24] = "None";
    if (c != NULL && c->ndim == 1 && c->dims[0] > 0) {
        snprintf(ch, sizeof ch, "%lld", (long long)c->dims[0]);
    }
    char eps[32];
    snprintf(eps, sizeof eps, "%g", s->epsilon);
    snprintf(buf, cap,
             "BatchNorm(axis=%lld, eps=%s, momentum=%g, fix_gamma=%s, use_global_stats=%s, "
             "in_channels=%s)",
             (long long)s->axis, eps, s->momentum, s->scale ? "False" : "True",
             s->use_global_stats ? "True" : "False", ch);
    return LAM_OK;
}

static const lam_tensor_info example_info = {
    (uint32_t)sizeof(lam_tensor_info), LAM_DTYPE_F32, 4, 0, {4, 3, 2, 2}};
static const lam_example_input example = {
    (uint32_t)sizeof(lam_example_input), LAM_DOMAIN_REAL, &example_info, -1.0, 1.0, NULL};
static const lam_example_input *const examples[] = {&example};

static const lam_layer_desc bn_desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "BatchNorm",
    .prefix = "batchnorm",
    .version = "2.0.0",
    .doc = "batch normalization over every axis but `axis`, running statistics for inference "
           "(Gluon's nn.BatchNorm)",
    .n_attrs = (uint32_t)(sizeof bn_attrs / sizeof bn_attrs[0]),
    .attrs = bn_attrs,
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .n_examples = 1,
    .examples = examples,
    .create = bn_create,
    .destroy = bn_destroy,
    .infer_shape = bn_infer_shape,
    .forward = bn_forward,
    .describe = bn_describe,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &bn_desc);
}
