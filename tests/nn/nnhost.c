/*
 * nnhost.c - a test plugin that reaches the NN ops only through the generic host op entry
 * (host->op, via plugin_ops.h), as a plugin author does: one layer type, NNHostOp, whose INT
 * attribute `case` picks a fixed sequence of host ops (test_nn_host.c lists them and checks the
 * results against the NumPy references of ref/nn_refs.h).
 */
#include "lamina/plugin.h"
#include "lamina/plugin_ops.h"

#include <stdlib.h>
#include <string.h>

static const lam_host_api *H;

enum {
    C_GEMM_BATCHED = 0, /* (a, b) -> a . b per batch, a shared */
    C_CONV,             /* (x, w) -> GEMM_BATCHED(w (1, O, CKK), IM2COL(x)), 3x3, pad 1 */
    C_CONV_DATA_GRAD,   /* (g, w) -> COL2IM(GEMM_BATCHED(w^T, g)), into (N, C, OH, OW) */
    C_MAX_POOL,         /* (x, g) -> MAX_POOL_BACKWARD(g, MAX_POOL(x).indices), 3x3/2, pad 1 */
    C_AVG_POOL,         /* (x) -> AVG_POOL, 3x3/2, pad 1, count_include_pad */
    C_AVG_POOL_GRAD,    /* (x, g) -> AVG_POOL_BACKWARD(g) into x's shape */
    C_PAD,              /* (x) -> PAD before (1, 0, 2), after (0, 2, 1), value 0.5 */
    C_MEAN,             /* (x) -> MOMENTS over (0, 2, 3), the mean */
    C_VAR,              /* (x) -> the variance */
    C_COL2IM_NO_SHAPE,  /* error: COL2IM without out_shape */
    C_MAX_POOL_ONE_OUT, /* error: MAX_POOL asked for one output */
    C_COUNT
};

typedef struct state {
    int64_t which;
} state;

static const lam_attr_desc a_case = {LAM_ATTR_DESC_HEADER, .name = "case", .type = LAM_ATTR_INT,
                                     .default_value = "0", .doc = "which host op sequence"};
static const lam_attr_desc *const attrs[] = {&a_case};

static lam_status create(void *user, lam_layer *l, const lam_attrs *a, void **out) {
    (void)user;
    (void)l;
    state *s = calloc(1, sizeof *s);
    *out = s;
    if (s == NULL) {
        return H->set_error(LAM_ERR_OUT_OF_MEMORY, "nnhost: Out of memory");
    }
    lam_status st = H->attr_int(a, "case", &s->which);
    if (st == LAM_OK && (s->which < 0 || s->which >= C_COUNT)) {
        st = lam_plugin_error(H, LAM_ERR_INVALID_ARGUMENT, "nnhost: case %lld out of range",
                              (long long)s->which);
    }
    return st;
}

static void destroy(void *s) {
    free(s);
}

static void window(lam_window_params *w, int64_t k, int64_t stride, int64_t pad) {
    lam_p_window_2d(w, k, k, stride, stride, pad, pad);
}

static int64_t pooled(int64_t n) {
    return (n + 2 - 3) / 2 + 1;
}

static lam_status infer(void *st_, lam_layer *l, uint32_t ni, const lam_tensor_info *const *in,
                        uint32_t no, lam_tensor_info *const *out) {
    (void)l;
    (void)no;
    const state *s = st_;
    const lam_tensor_info *x = in[0], *y = ni > 1 ? in[1] : in[0];
    out[0]->dtype = LAM_DTYPE_F32;
    out[0]->ndim = x->ndim;
    memcpy(out[0]->dims, x->dims, sizeof out[0]->dims);
    int64_t *d = out[0]->dims;
    switch (s->which) {
    case C_GEMM_BATCHED:
        d[0] = x->dims[0] == 1 ? y->dims[0] : x->dims[0];
        d[2] = y->dims[2];
        break;
    case C_CONV:
        d[1] = y->dims[0];
        break;
    case C_CONV_DATA_GRAD:
        d[1] = y->dims[1];
        break;
    case C_AVG_POOL:
        d[2] = pooled(x->dims[2]);
        d[3] = pooled(x->dims[3]);
        break;
    case C_PAD:
        d[0] += 1;
        d[1] += 2;
        d[2] += 3;
        break;
    case C_MEAN:
    case C_VAR:
        out[0]->ndim = 1;
        d[0] = x->dims[1];
        break;
    default:
        break;
    }
    return LAM_OK;
}

static lam_status conv(lam_tensor *x, lam_tensor *w, lam_tensor **out) {
    const lam_shape *xs = H->tensor_shape(x), *ws = H->tensor_shape(w);
    lam_shape w3 = {.ndim = 3, .dims = {1, ws->dims[0], ws->dims[1] * 9}};
    lam_shape y4 = {.ndim = 4, .dims = {xs->dims[0], ws->dims[0], xs->dims[2], xs->dims[3]}};
    lam_window_params win;
    window(&win, 3, 1, 1);
    lam_tensor *cols = NULL, *wm = NULL, *y = NULL;
    lam_status st = lam_p_im2col(H, x, &win, &cols);
    if (st == LAM_OK) {
        st = H->tensor_reshape(w, &w3, &wm);
    }
    if (st == LAM_OK) {
        st = lam_p_matmul_batched(H, wm, cols, 0, &y);
    }
    if (st == LAM_OK) {
        st = H->tensor_reshape(y, &y4, out);
    }
    H->tensor_release(cols);
    H->tensor_release(wm);
    H->tensor_release(y);
    return st;
}

static lam_status conv_data_grad(lam_tensor *g, lam_tensor *w, lam_tensor **out) {
    const lam_shape *gs = H->tensor_shape(g), *ws = H->tensor_shape(w);
    lam_shape w3 = {.ndim = 3, .dims = {1, ws->dims[0], ws->dims[1] * 9}};
    lam_shape g3 = {.ndim = 3, .dims = {gs->dims[0], gs->dims[1], gs->dims[2] * gs->dims[3]}};
    lam_shape img = {.ndim = 4, .dims = {gs->dims[0], ws->dims[1], gs->dims[2], gs->dims[3]}};
    lam_window_params win;
    window(&win, 3, 1, 1);
    lam_tensor *wm = NULL, *gm = NULL, *cols = NULL;
    lam_status st = H->tensor_reshape(w, &w3, &wm);
    if (st == LAM_OK) {
        st = H->tensor_reshape(g, &g3, &gm);
    }
    if (st == LAM_OK) { /* (N, CKK, L) */
        st = lam_p_matmul_batched(H, wm, gm, LAM_GEMM_TRANS_A, &cols);
    }
    if (st == LAM_OK) {
        st = lam_p_col2im(H, cols, &win, &img, out);
    }
    H->tensor_release(wm);
    H->tensor_release(gm);
    H->tensor_release(cols);
    return st;
}

static lam_status forward(void *st_, lam_layer *l, uint32_t ni, lam_tensor *const *in, uint32_t no,
                          lam_tensor **out) {
    (void)l;
    (void)no;
    const state *s = st_;
    lam_tensor *x = in[0], *y = ni > 1 ? in[1] : NULL, *a = NULL, *b = NULL;
    lam_window_params win;
    window(&win, 3, 2, 1);
    lam_status st;
    switch (s->which) {
    case C_GEMM_BATCHED:
        return lam_p_matmul_batched(H, x, y, 0, out);
    case C_CONV:
        return conv(x, y, out);
    case C_CONV_DATA_GRAD:
        return conv_data_grad(x, y, out);
    case C_MAX_POOL:
        st = lam_p_max_pool(H, x, &win, &a, &b);
        if (st == LAM_OK) {
            st = lam_p_max_pool_backward(H, y, b, &win, H->tensor_shape(x), out);
        }
        break;
    case C_AVG_POOL:
        win.flags = LAM_WINDOW_COUNT_INCLUDE_PAD;
        return lam_p_avg_pool(H, x, &win, out);
    case C_AVG_POOL_GRAD:
        win.flags = LAM_WINDOW_COUNT_INCLUDE_PAD;
        return lam_p_avg_pool_backward(H, y, &win, H->tensor_shape(x), out);
    case C_PAD: {
        const int64_t before[3] = {1, 0, 2}, after[3] = {0, 2, 1};
        return lam_p_pad(H, x, before, after, 0.5, out);
    }
    case C_MEAN:
    case C_VAR: {
        const int32_t axes[3] = {0, 2, 3};
        st = lam_p_moments(H, x, axes, 3, 0, &a, &b);
        if (st == LAM_OK) {
            *out = H->tensor_retain(s->which == C_MEAN ? a : b);
        }
        break;
    }
    case C_COL2IM_NO_SHAPE:
        return lam_p__shaped(H, LAM_OP_COL2IM, 1, in, &win, NULL, out);
    default: { /* C_MAX_POOL_ONE_OUT */
        lam_host_op call = LAM_HOST_OP_INIT(LAM_OP_MAX_POOL);
        call.n_inputs = 1;
        call.inputs = in;
        call.n_outputs = 1;
        call.outputs = out;
        call.params = &win;
        return H->op(&call);
    }
    }
    H->tensor_release(a);
    H->tensor_release(b);
    return st;
}

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    H = host;
    static const lam_layer_desc d = {LAM_LAYER_DESC_HEADER,
                                     .name = "NNHostOp",
                                     .prefix = "nnhost",
                                     .version = "2.0.0",
                                     .doc = "NN host ops by case (test plugin)",
                                     .n_attrs = 1,
                                     .attrs = attrs,
                                     .min_inputs = 1,
                                     .max_inputs = 2,
                                     .create = create,
                                     .destroy = destroy,
                                     .infer_shape = infer,
                                     .forward = forward};
    return host->register_layer(plugin, &d);
}
