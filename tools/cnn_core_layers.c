/*
 * The CNN's layers as custom blocks over core ops, for as long as the layer plugins (Conv2D,
 * BatchNorm, MaxPool2D, Dropout, Flatten) are not in the tree: same parameter names and
 * shapes as the plugins. Shapes are known up front (no deferred initialization).
 */
#include "cnn_core_layers.h"

#include <stdlib.h>

typedef struct conv_state {
    int64_t pad;
} conv_state;

static lam_status conv_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                               lam_tensor **out) {
    (void)n;
    conv_state *s = state;
    lam_tensor *w = NULL, *b = NULL;
    lam_status st = lam_param_data(lam_block_param(self, "weight"), &w);
    if (st == LAM_OK) {
        st = lam_param_data(lam_block_param(self, "bias"), &b);
    }
    if (st == LAM_OK) {
        lam_conv2d_params p = LAM_CONV2D_PARAMS_INIT;
        p.pad[0] = p.pad[1] = s->pad;
        st = lam_op_conv2d(in[0], w, b, &p, out);
    }
    lam_tensor_release(w);
    lam_tensor_release(b);
    return st;
}

lam_status cl_conv(int64_t in_c, int64_t out_c, int64_t k, int64_t pad, lam_block **out) {
    conv_state *s = malloc(sizeof *s);
    if (s == NULL) {
        return lam_set_error(LAM_ERR_OUT_OF_MEMORY, "Conv2D: Out of memory");
    }
    s->pad = pad;
    lam_status st = lam_block_create("Conv", conv_forward, s, free, out);
    if (st != LAM_OK) {
        free(s);
        return st;
    }
    int64_t wd[4] = {out_c, in_c, k, k};
    lam_shape ws, bs;
    lam_shape_init(&ws, 4, wd);
    lam_shape_init(&bs, 1, &out_c);
    if ((st = lam_block_param_new(*out, "weight", &ws, NULL, NULL)) != LAM_OK ||
        (st = lam_block_param_new(*out, "bias", &bs, NULL, NULL)) != LAM_OK) {
        lam_block_release(*out);
        *out = NULL;
    }
    return st;
}

/* (C) -> (1, C, 1, 1) view of a parameter. */
static lam_status bn_param(lam_block *self, const char *name, lam_tensor **out) {
    lam_tensor *t = NULL;
    lam_status st = lam_param_data(lam_block_param(self, name), &t);
    if (st == LAM_OK) {
        int64_t d[4] = {1, lam_tensor_shape(t)->dims[0], 1, 1};
        lam_shape s;
        lam_shape_init(&s, 4, d);
        st = lam_tensor_reshape(t, &s, out);
        lam_tensor_release(t);
    }
    return st;
}

/* running = 0.9 running + 0.1 batch, outside recording. */
static lam_status bn_update(lam_block *self, const char *name, const lam_tensor *batch) {
    lam_tensor *r = NULL, *a = NULL, *b = NULL, *c = NULL, *flat = NULL;
    lam_status st = lam_param_data(lam_block_param(self, name), &r);
    if (st == LAM_OK) {
        lam_shape s;
        lam_shape_init(&s, 1, &lam_tensor_shape(r)->dims[0]);
        st = lam_tensor_reshape((lam_tensor *)batch, &s, &flat);
    }
    if (st == LAM_OK) {
        st = lam_op_mul_scalar(r, 0.9f, &a);
    }
    if (st == LAM_OK) {
        st = lam_op_mul_scalar(flat, 0.1f, &b);
    }
    if (st == LAM_OK) {
        st = lam_op_add(a, b, &c);
    }
    if (st == LAM_OK) {
        st = lam_op_assign(r, c);
    }
    lam_tensor_release(r);
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(c);
    lam_tensor_release(flat);
    return st;
}

static lam_status bn_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                             lam_tensor **out) {
    (void)state;
    (void)n;
    lam_tensor *mean = NULL, *var = NULL, *g = NULL, *b = NULL, *xc = NULL, *ve = NULL, *sd = NULL,
               *xn = NULL, *xs = NULL;
    int training = lam_autograd_is_training();
    lam_status st = LAM_OK;
    if (training) {
        int32_t axes[3] = {0, 2, 3};
        st = lam_op_moments(in[0], axes, 3, 1, &mean, &var);
        if (st == LAM_OK) {
            int was = lam_autograd_set_recording(0);
            lam_tensor *dm = NULL, *dv = NULL;
            st = lam_tensor_detach(mean, &dm);
            if (st == LAM_OK) {
                st = lam_tensor_detach(var, &dv);
            }
            if (st == LAM_OK) {
                st = bn_update(self, "running_mean", dm);
            }
            if (st == LAM_OK) {
                st = bn_update(self, "running_var", dv);
            }
            lam_tensor_release(dm);
            lam_tensor_release(dv);
            lam_autograd_set_recording(was);
        }
    } else {
        st = bn_param(self, "running_mean", &mean);
        if (st == LAM_OK) {
            st = bn_param(self, "running_var", &var);
        }
    }
    if (st == LAM_OK) {
        st = bn_param(self, "gamma", &g);
    }
    if (st == LAM_OK) {
        st = bn_param(self, "beta", &b);
    }
    if (st == LAM_OK) {
        st = lam_op_sub(in[0], mean, &xc);
    }
    if (st == LAM_OK) {
        st = lam_op_add_scalar(var, 1e-5f, &ve);
    }
    if (st == LAM_OK) {
        st = lam_op_sqrt(ve, &sd);
    }
    if (st == LAM_OK) {
        st = lam_op_div(xc, sd, &xn);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(xn, g, &xs);
    }
    if (st == LAM_OK) {
        st = lam_op_add(xs, b, out);
    }
    lam_tensor *all[] = {mean, var, g, b, xc, ve, sd, xn, xs};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        lam_tensor_release(all[i]);
    }
    return st;
}

lam_status cl_batchnorm(int64_t channels, lam_block **out) {
    lam_status st = lam_block_create("BatchNorm", bn_forward, NULL, NULL, out);
    if (st != LAM_OK) {
        return st;
    }
    lam_shape s;
    lam_shape_init(&s, 1, &channels);
    lam_initializer *one = NULL, *zero = NULL;
    lam_param *rm = NULL, *rv = NULL;
    if ((st = lam_init_one(&one)) == LAM_OK && (st = lam_init_zero(&zero)) == LAM_OK &&
        (st = lam_block_param_new(*out, "gamma", &s, one, NULL)) == LAM_OK &&
        (st = lam_block_param_new(*out, "beta", &s, zero, NULL)) == LAM_OK &&
        (st = lam_block_param_new(*out, "running_mean", &s, zero, &rm)) == LAM_OK &&
        (st = lam_block_param_new(*out, "running_var", &s, one, &rv)) == LAM_OK &&
        (st = lam_param_set_grad_req(rm, LAM_GRAD_NULL)) == LAM_OK) {
        st = lam_param_set_grad_req(rv, LAM_GRAD_NULL);
    }
    lam_initializer_release(one);
    lam_initializer_release(zero);
    if (st != LAM_OK) {
        lam_block_release(*out);
        *out = NULL;
    }
    return st;
}

static lam_status pool_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                               lam_tensor **out) {
    (void)self;
    (void)state;
    (void)n;
    lam_pool2d_params p = LAM_POOL2D_PARAMS_INIT(2, 2);
    return lam_op_max_pool2d(in[0], &p, out, NULL);
}

lam_status cl_maxpool(lam_block **out) {
    return lam_block_create("MaxPool", pool_forward, NULL, NULL, out);
}

static lam_status flatten_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                  lam_tensor **out) {
    (void)self;
    (void)state;
    (void)n;
    const lam_shape *xs = lam_tensor_shape(in[0]);
    int64_t d[2] = {xs->dims[0], lam_shape_numel(xs) / (xs->dims[0] ? xs->dims[0] : 1)};
    lam_shape s;
    lam_shape_init(&s, 2, d);
    return lam_tensor_reshape(in[0], &s, out);
}

lam_status cl_flatten(lam_block **out) {
    return lam_block_create("Flatten", flatten_forward, NULL, NULL, out);
}

typedef struct dropout_state {
    float rate;
} dropout_state;

static lam_status dropout_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                  lam_tensor **out) {
    (void)self;
    (void)n;
    dropout_state *s = state;
    if (!lam_autograd_is_training() || s->rate <= 0) {
        *out = lam_tensor_retain(in[0]);
        return LAM_OK;
    }
    lam_tensor *mask = NULL, *scaled = NULL;
    lam_status st = lam_op_random_bernoulli(lam_tensor_ctx(in[0]), lam_tensor_shape(in[0]),
                                            1.0f - s->rate, &mask);
    if (st == LAM_OK) {
        st = lam_op_mul_scalar(mask, 1.0f / (1.0f - s->rate), &scaled);
    }
    if (st == LAM_OK) {
        st = lam_op_mul(in[0], scaled, out);
    }
    lam_tensor_release(mask);
    lam_tensor_release(scaled);
    return st;
}

lam_status cl_dropout(float rate, lam_block **out) {
    dropout_state *s = malloc(sizeof *s);
    if (s == NULL) {
        return lam_set_error(LAM_ERR_OUT_OF_MEMORY, "Dropout: Out of memory");
    }
    s->rate = rate;
    lam_status st = lam_block_create("Dropout", dropout_forward, s, free, out);
    if (st != LAM_OK) {
        free(s);
    }
    return st;
}
