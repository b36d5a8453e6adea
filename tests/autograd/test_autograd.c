/*
 * Autograd behaviour: shared parameters (the chapter's net, against PyTorch and against two
 * unshared copies), grad_req write/add/null, constants, zero_grad, control flow in a custom
 * forward (the chapter's FancyMLP), detach, and the errors of backward, gradients and losses.
 *
 * Numeric references: ref/shared_ref.h (PyTorch, see ref/gen_shared_ref.py); finite
 * differences of float64 C code for the control-flow case; values worked by hand elsewhere.
 */
#include "ag_util.h"
#include "ref/shared_ref.h"

TestSuite(shared, .fini = ag_fini);
TestSuite(grad_req, .fini = ag_fini);
TestSuite(control_flow, .fini = ag_fini);
TestSuite(detach, .fini = ag_fini);
TestSuite(attach, .fini = ag_fini);
TestSuite(autograd_error, .fini = ag_fini);

/* Reference values against Lamina (float32 vs float64 PyTorch). */
#define REF_RTOL 1e-5
#define REF_ATOL 1e-6

/* A non-NULL pointer never returned by the library: a failing call must reset it to NULL. */
static char poison_byte;
#define POISON ((lam_tensor *)(void *)&poison_byte)

static lam_tensor *from_ref(const ag_ref_array *r) {
    return ag_tensor(ag_shape(r->ndim, r->dims), r->data, r->count);
}

static lam_block *new_layer(const char *type, const char *attrs) {
    lam_block *b = NULL;
    lam_status st = lam_layer_create(type, attrs, &b);
    cr_assert_eq(st, LAM_OK, "lam_layer_create(%s, \"%s\") failed: %s (%s)", type, attrs,
                 lam_status_string(st), lam_last_error());
    return b;
}

static lam_param *param_of(lam_block *b, const char *name) {
    lam_param *p = lam_block_param(b, name);
    cr_assert_not_null(p, "%s has no parameter %s", lam_block_name(b), name);
    return p;
}

static void set_param(lam_block *b, const char *name, const ag_ref_array *r) {
    lam_tensor *t = from_ref(r);
    AG_OK(lam_param_set_data(param_of(b, name), t));
    lam_tensor_release(t);
}

static void set_param_values(lam_param *p, lam_shape s, const float *v) {
    lam_tensor *t = ag_tensor(s, v, ag_numel(&s));
    AG_OK(lam_param_set_data(p, t));
    lam_tensor_release(t);
}

/* The parameter's gradient as a malloc'ed array. */
static float *grad_of(lam_param *p) {
    lam_tensor *g = NULL;
    AG_OK(lam_param_grad(p, &g));
    float *v = ag_read(g);
    lam_tensor_release(g);
    return v;
}

static void assert_param_grad(lam_param *p, const ag_ref_array *want, const char *what) {
    lam_tensor *g = NULL;
    AG_OK(lam_param_grad(p, &g));
    lam_shape s = ag_shape(want->ndim, want->dims);
    ag_assert_values(g, &s, want->data, want->count, REF_RTOL, REF_ATOL, what);
    lam_tensor_release(g);
}

/* ---- shared parameters ---------------------------------------------------------------------- */

/*
 * The chapter's net: Dense(8, relu) -> shared Dense(8, relu) -> Dense(8, relu, params=shared)
 * -> Dense(10). layers[] receives the four (borrowed from the Sequential). With `share` zero,
 * layers 1 and 2 are independent copies holding the same values.
 */
static lam_block *shared_net(int share, lam_block *layers[4]) {
    lam_block *net = NULL;
    AG_OK(lam_sequential_create(&net));
    layers[0] = new_layer("Dense", "units=8, activation=relu, in_units=20");
    layers[1] = new_layer("Dense", "units=8, activation=relu, in_units=8");
    if (share) {
        AG_OK(lam_layer_create_shared("Dense", "units=8, activation=relu, in_units=8", layers[1],
                                      &layers[2]));
    } else {
        layers[2] = new_layer("Dense", "units=8, activation=relu, in_units=8");
    }
    layers[3] = new_layer("Dense", "units=10, in_units=8");
    for (int i = 0; i < 4; i++) {
        AG_OK(lam_sequential_add(net, layers[i]));
        lam_block_release(layers[i]); /* the Sequential holds them */
    }
    AG_OK(lam_block_initialize(net, NULL, NULL, 0));
    set_param(layers[0], "weight", &sr_w0);
    set_param(layers[0], "bias", &sr_b0);
    set_param(layers[1], "weight", &sr_ws);
    set_param(layers[1], "bias", &sr_bs);
    if (!share) {
        set_param(layers[2], "weight", &sr_ws);
        set_param(layers[2], "bias", &sr_bs);
    }
    set_param(layers[3], "weight", &sr_w3);
    set_param(layers[3], "bias", &sr_b3);
    return net;
}

/* Forward on sr_x (attached) and backward with sr_hg; returns x (the caller releases). */
static lam_tensor *run_shared_net(lam_block *net) {
    lam_tensor *x = from_ref(&sr_x), *out = NULL, *hg = from_ref(&sr_hg);
    AG_OK(lam_tensor_attach_grad(x));
    lam_autograd_set_recording(1);
    lam_status st = lam_block_call(net, x, &out);
    lam_autograd_set_recording(0);
    cr_assert_eq(st, LAM_OK, "forward failed: %s", lam_last_error());
    lam_shape os = ag_shape(sr_out.ndim, sr_out.dims);
    ag_assert_values(out, &os, sr_out.data, sr_out.count, REF_RTOL, REF_ATOL, "net(x)");
    AG_OK(lam_autograd_backward(out, hg));
    lam_tensor_release(out);
    lam_tensor_release(hg);
    return x;
}

static void check_shared_against_pytorch(int fused) {
    int was = lam_autograd_set_fused_backward(fused);
    lam_block *l[4];
    lam_block *net = shared_net(1, l);
    cr_assert(param_of(l[2], "weight") == param_of(l[1], "weight"),
              "the shared layer does not use the shared weight");
    cr_assert(param_of(l[2], "bias") == param_of(l[1], "bias"));
    lam_param_list *all = NULL;
    AG_OK(lam_block_collect_params(net, NULL, &all));
    cr_assert_eq(lam_param_list_count(all), 6, "the shared parameters are listed %zu times",
                 lam_param_list_count(all) - 4);
    lam_param_list_destroy(all);

    lam_tensor *x = run_shared_net(net);
    lam_tensor *gx = NULL;
    AG_OK(lam_tensor_grad(x, &gx));
    lam_shape xs = ag_shape(sr_grad_x.ndim, sr_grad_x.dims);
    ag_assert_values(gx, &xs, sr_grad_x.data, sr_grad_x.count, REF_RTOL, REF_ATOL, "grad x");
    lam_tensor_release(gx);
    assert_param_grad(param_of(l[0], "weight"), &sr_grad_w0, "grad w0");
    assert_param_grad(param_of(l[0], "bias"), &sr_grad_b0, "grad b0");
    assert_param_grad(param_of(l[1], "weight"), &sr_grad_ws, "grad shared weight");
    assert_param_grad(param_of(l[1], "bias"), &sr_grad_bs, "grad shared bias");
    assert_param_grad(param_of(l[2], "weight"), &sr_grad_ws, "grad shared weight via layer 2");
    assert_param_grad(param_of(l[3], "weight"), &sr_grad_w3, "grad w3");
    assert_param_grad(param_of(l[3], "bias"), &sr_grad_b3, "grad b3");
    lam_tensor_release(x);
    lam_block_release(net);
    lam_autograd_set_fused_backward(was);
    ag_assert_released();
}

Test(shared, gradient_sums_both_uses_like_pytorch_fused) {
    check_shared_against_pytorch(1);
}

Test(shared, gradient_sums_both_uses_like_pytorch_unfused) {
    check_shared_against_pytorch(0);
}

Test(shared, gradient_equals_the_sum_of_two_unshared_copies) {
    for (int fused = 1; fused >= 0; fused--) {
        int was = lam_autograd_set_fused_backward(fused);
        lam_block *ls[4], *lu[4];
        lam_block *shared = shared_net(1, ls), *copies = shared_net(0, lu);
        lam_tensor *xs = run_shared_net(shared), *xu = run_shared_net(copies);
        const char *names[2] = {"weight", "bias"};
        for (int k = 0; k < 2; k++) {
            float *gs = grad_of(param_of(ls[1], names[k]));
            float *g1 = grad_of(param_of(lu[1], names[k]));
            float *g2 = grad_of(param_of(lu[2], names[k]));
            size_t n = ag_numel(lam_param_shape(param_of(ls[1], names[k])));
            int differ = 0;
            for (size_t i = 0; i < n; i++) {
                double sum = (double)g1[i] + (double)g2[i];
                cr_assert(ag_close(gs[i], sum, 1e-5, 1e-7),
                          "%s: shared %s grad[%zu] is %.9g, use 1 + use 2 = %.9g + %.9g",
                          fused ? "fused" : "unfused", names[k], i, (double)gs[i], (double)g1[i],
                          (double)g2[i]);
                differ = differ || g1[i] != g2[i];
            }
            cr_assert(differ, "both uses gave the same gradient: the check proves nothing");
            free(gs);
            free(g1);
            free(g2);
        }
        /* The unshared parts agree too. */
        float *a = grad_of(param_of(ls[0], "weight")), *b = grad_of(param_of(lu[0], "weight"));
        for (size_t i = 0; i < sr_grad_w0.count; i++) {
            cr_assert(ag_close(a[i], b[i], 1e-5, 1e-7), "grad w0[%zu]: %.9g vs %.9g", i,
                      (double)a[i], (double)b[i]);
        }
        free(a);
        free(b);
        lam_tensor_release(xs);
        lam_tensor_release(xu);
        lam_block_release(shared);
        lam_block_release(copies);
        lam_autograd_set_fused_backward(was);
    }
    ag_assert_released();
}

Test(shared, an_update_through_one_layer_is_seen_by_the_other) {
    lam_block *l[4];
    lam_block *net = shared_net(1, l);
    float ones[64];
    for (int i = 0; i < 64; i++) {
        ones[i] = 1.0f;
    }
    set_param_values(param_of(l[2], "weight"), AG_SHAPE(8, 8), ones);
    lam_tensor *w = NULL;
    AG_OK(lam_param_data(param_of(l[1], "weight"), &w));
    lam_shape s = AG_SHAPE(8, 8);
    ag_assert_values(w, &s, ones, 64, 0.0, 0.0, "shared weight after set_data through layer 2");
    lam_tensor_release(w);
    lam_block_release(net);
    ag_assert_released();
}

/* ---- grad_req, constants, zero_grad --------------------------------------------------------- */

/* Dense(3, tanh, in_units=4) with fixed values, a fixed input that needs no gradient. */
static const float gr_w[12] = {0.5f,  -0.25f, 0.75f, 0.125f, -0.5f, 0.375f,
                               0.25f, 1.0f,   -1.0f, 0.625f, 0.5f,  -0.125f};
static const float gr_b[3] = {0.1f, -0.2f, 0.3f};
static const float gr_x[8] = {1.0f, -0.5f, 0.25f, 0.75f, -1.0f, 0.5f, 1.5f, -0.25f};

static lam_block *grad_req_layer(void) {
    lam_block *d = new_layer("Dense", "units=3, activation=tanh, in_units=4");
    AG_OK(lam_block_initialize(d, NULL, NULL, 0));
    set_param_values(param_of(d, "weight"), AG_SHAPE(3, 4), gr_w);
    set_param_values(param_of(d, "bias"), AG_SHAPE(3), gr_b);
    return d;
}

/* One recorded forward of d on gr_x and a backward of its sum; returns the status. */
static lam_status forward_backward(lam_block *d) {
    lam_tensor *x = ag_tensor(AG_SHAPE(2, 4), gr_x, 8), *y = NULL;
    lam_autograd_set_recording(1);
    lam_status st = lam_block_call(d, x, &y);
    lam_autograd_set_recording(0);
    cr_assert_eq(st, LAM_OK, "forward failed: %s", lam_last_error());
    st = lam_autograd_backward(y, NULL);
    lam_tensor_release(y);
    lam_tensor_release(x);
    return st;
}

/* d(sum tanh(x W^T + b)) by hand in float64: dW[u][k] = sum_r (1 - y^2) x[r][k]. */
static void grad_req_expected(float dw[12], float db[3]) {
    double gw[12] = {0}, gb[3] = {0};
    for (int r = 0; r < 2; r++) {
        for (int u = 0; u < 3; u++) {
            double z = gr_b[u];
            for (int k = 0; k < 4; k++) {
                z += (double)gr_x[r * 4 + k] * gr_w[u * 4 + k];
            }
            double dz = 1.0 - tanh(z) * tanh(z);
            gb[u] += dz;
            for (int k = 0; k < 4; k++) {
                gw[u * 4 + k] += dz * gr_x[r * 4 + k];
            }
        }
    }
    for (int i = 0; i < 12; i++) {
        dw[i] = (float)gw[i];
    }
    for (int i = 0; i < 3; i++) {
        db[i] = (float)gb[i];
    }
}

static void assert_grad_scaled(lam_param *p, const float *base, size_t n, float scale,
                               const char *what) {
    lam_tensor *g = NULL;
    AG_OK(lam_param_grad(p, &g));
    float want[12];
    for (size_t i = 0; i < n; i++) {
        want[i] = base[i] * scale;
    }
    ag_assert_values(g, lam_param_shape(p), want, n, 1e-5, 1e-6, what);
    lam_tensor_release(g);
}

Test(grad_req, write_overwrites_on_every_backward) {
    for (int fused = 1; fused >= 0; fused--) {
        int was = lam_autograd_set_fused_backward(fused);
        lam_block *d = grad_req_layer();
        lam_param *w = param_of(d, "weight"), *b = param_of(d, "bias");
        cr_assert_eq(lam_param_grad_req(w), LAM_GRAD_WRITE, "the default grad_req is not write");
        float dw[12], db[3];
        grad_req_expected(dw, db);
        AG_OK(forward_backward(d));
        assert_grad_scaled(w, dw, 12, 1.0f, "weight grad after one backward");
        AG_OK(forward_backward(d));
        assert_grad_scaled(w, dw, 12, 1.0f, "weight grad after two backwards (write)");
        assert_grad_scaled(b, db, 3, 1.0f, "bias grad after two backwards (write)");
        lam_block_release(d);
        lam_autograd_set_fused_backward(was);
    }
    ag_assert_released();
}

Test(grad_req, add_accumulates_until_zero_grad) {
    for (int fused = 1; fused >= 0; fused--) {
        int was = lam_autograd_set_fused_backward(fused);
        lam_block *d = grad_req_layer();
        lam_param *w = param_of(d, "weight"), *b = param_of(d, "bias");
        AG_OK(lam_param_set_grad_req(w, LAM_GRAD_ADD));
        AG_OK(lam_param_set_grad_req(b, LAM_GRAD_ADD));
        cr_assert_eq(lam_param_grad_req(w), LAM_GRAD_ADD);
        float dw[12], db[3];
        grad_req_expected(dw, db);
        AG_OK(forward_backward(d));
        assert_grad_scaled(w, dw, 12, 1.0f, "weight grad after one backward (add)");
        AG_OK(forward_backward(d));
        assert_grad_scaled(w, dw, 12, 2.0f, "weight grad after two backwards (add)");
        assert_grad_scaled(b, db, 3, 2.0f, "bias grad after two backwards (add)");

        lam_param_list *list = NULL;
        AG_OK(lam_block_collect_params(d, NULL, &list));
        AG_OK(lam_param_list_zero_grad(list));
        assert_grad_scaled(w, dw, 12, 0.0f, "weight grad after zero_grad");
        assert_grad_scaled(b, db, 3, 0.0f, "bias grad after zero_grad");
        AG_OK(forward_backward(d));
        assert_grad_scaled(w, dw, 12, 1.0f, "weight grad after zero_grad and one backward");
        lam_param_list_destroy(list);
        lam_block_release(d);
        lam_autograd_set_fused_backward(was);
    }
    ag_assert_released();
}

Test(grad_req, null_gives_no_gradient_and_leaves_the_others) {
    for (int fused = 1; fused >= 0; fused--) {
        int was = lam_autograd_set_fused_backward(fused);
        lam_block *d = grad_req_layer();
        lam_param *w = param_of(d, "weight"), *b = param_of(d, "bias");
        AG_OK(lam_param_set_grad_req(w, LAM_GRAD_NULL));
        cr_assert_eq(lam_param_grad_req(w), LAM_GRAD_NULL);
        float dw[12], db[3];
        grad_req_expected(dw, db);
        AG_OK(forward_backward(d));
        assert_grad_scaled(b, db, 3, 1.0f, "bias grad next to a grad_req null weight");
        lam_tensor *g = POISON;
        ag_assert_error(
            lam_param_grad(w, &g), LAM_ERR_STATE,
            ag_fmt("%s: No gradient, the parameter is set to grad_req null", lam_param_name(w)),
            "lam_param_grad(grad_req null)");
        cr_assert_null(g, "out is not NULL after a failure");

        /* Nothing left that needs a gradient: the output is not recorded at all. */
        AG_OK(lam_param_set_grad_req(b, LAM_GRAD_NULL));
        lam_tensor *x = ag_tensor(AG_SHAPE(2, 4), gr_x, 8), *y = NULL;
        lam_autograd_set_recording(1);
        AG_OK(lam_block_call(d, x, &y));
        lam_autograd_set_recording(0);
        ag_assert_error(lam_autograd_backward(y, NULL), LAM_ERR_STATE,
                        "backward: Not recorded, the head was not computed inside "
                        "lam_autograd_set_recording(1) from parameters or tensors that need "
                        "gradients",
                        "backward with every parameter grad_req null");
        lam_tensor_release(y);
        lam_tensor_release(x);

        /* Back to write: a gradient buffer again, zero until a backward. */
        AG_OK(lam_param_set_grad_req(w, LAM_GRAD_WRITE));
        assert_grad_scaled(w, dw, 12, 0.0f, "weight grad after null -> write");
        lam_block_release(d);
        lam_autograd_set_fused_backward(was);
    }
    ag_assert_released();
}

/* A custom block y = x * c with a constant c (Gluon's params.get_constant). */
static lam_status scale_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                lam_tensor **out) {
    (void)state;
    (void)n;
    lam_tensor *c = NULL;
    lam_status st = lam_param_data(lam_block_param(self, "scale"), &c);
    if (st == LAM_OK) {
        st = lam_op_mul(in[0], c, out);
    }
    lam_tensor_release(c);
    return st;
}

Test(grad_req, constants_get_no_gradient) {
    const float cv[6] = {2.0f, -1.0f, 0.5f, 3.0f, -2.5f, 1.5f};
    const float xv[6] = {0.25f, 1.0f, -0.75f, 2.0f, 0.5f, -1.25f};
    lam_block *blk = NULL;
    AG_OK(lam_block_create("Scale", scale_forward, NULL, NULL, &blk));
    lam_tensor *ct = ag_tensor(AG_SHAPE(2, 3), cv, 6);
    lam_param *c = NULL;
    AG_OK(lam_block_constant_new(blk, "scale", ct, &c));
    lam_tensor_release(ct);
    AG_OK(lam_block_initialize(blk, NULL, NULL, 0));
    cr_assert(lam_param_is_constant(c));
    cr_assert_eq(lam_param_grad_req(c), LAM_GRAD_NULL, "a constant's grad_req is not null");
    ag_assert_error(
        lam_param_set_grad_req(c, LAM_GRAD_WRITE), LAM_ERR_INVALID_ARGUMENT,
        ag_fmt("%s: Constant parameter, its grad_req is always null", lam_param_name(c)),
        "set_grad_req(write) on a constant");

    /* Only the constant: nothing recorded. */
    lam_tensor *xc = ag_tensor(AG_SHAPE(2, 3), xv, 6), *y = NULL;
    lam_autograd_set_recording(1);
    AG_OK(lam_block_call(blk, xc, &y));
    lam_autograd_set_recording(0);
    ag_assert_error(lam_autograd_backward(y, NULL), LAM_ERR_STATE,
                    "backward: Not recorded, the head was not computed inside "
                    "lam_autograd_set_recording(1) from parameters or tensors that need "
                    "gradients",
                    "backward through a constant only");
    lam_tensor_release(y);

    /* With an attached input: x gets c, the constant nothing. */
    AG_OK(lam_tensor_attach_grad(xc));
    lam_autograd_set_recording(1);
    AG_OK(lam_block_call(blk, xc, &y));
    lam_autograd_set_recording(0);
    AG_OK(lam_autograd_backward(y, NULL));
    lam_tensor *gx = NULL;
    AG_OK(lam_tensor_grad(xc, &gx));
    lam_shape s = AG_SHAPE(2, 3);
    ag_assert_values(gx, &s, cv, 6, 0.0, 0.0, "d(x*c)/dx");
    lam_tensor_release(gx);
    lam_tensor *g = POISON;
    ag_assert_error(lam_param_grad(c, &g), LAM_ERR_STATE,
                    ag_fmt("%s: No gradient, the parameter is a constant", lam_param_name(c)),
                    "lam_param_grad(constant)");
    cr_assert_null(g);
    lam_tensor *cd = NULL;
    AG_OK(lam_param_data(c, &cd));
    ag_assert_values(cd, &s, cv, 6, 0.0, 0.0, "the constant after backward");
    lam_tensor_release(cd);
    lam_tensor_release(y);
    lam_tensor_release(xc);
    lam_block_release(blk);
    ag_assert_released();
}

/* ---- control flow: the chapter's FancyMLP --------------------------------------------------- */

/*
 * FancyMLP (Gluon section 4.1): h = dense(x); h = relu(dot(h, rand_weight) + 1); h = dense(h)
 * with the SAME Dense(20, relu); while |h| > 1: h = h / 2; if |h| < 0.8: h = h * 10;
 * return sum(h). The norm is read back with lam_tensor_scalar while recording, so only the
 * executed halvings are recorded.
 */
typedef struct fancy_state {
    int halvings;
    int scaled;
} fancy_state;

static float fancy_rw[400]; /* the constant rand_weight (20, 20), uniform [0, 1) */

static lam_status norm_of(lam_tensor *h, float *n) {
    lam_tensor *sq = NULL, *s = NULL, *r = NULL;
    lam_status st = lam_op_square(h, &sq);
    if (st == LAM_OK) {
        st = lam_op_sum(sq, NULL, 0, 0, &s);
    }
    if (st == LAM_OK) {
        st = lam_op_sqrt(s, &r);
    }
    if (st == LAM_OK) {
        st = lam_tensor_scalar(r, n);
    }
    lam_tensor_release(sq);
    lam_tensor_release(s);
    lam_tensor_release(r);
    return st;
}

/* Replaces *cur with *next when st is OK (releasing the old one). `next` is passed by address:
 * it is written by the op call in the same argument list. */
static lam_status advance(lam_status st, lam_tensor **cur, lam_tensor **next) {
    if (st == LAM_OK) {
        lam_tensor_release(*cur);
        *cur = *next;
    }
    *next = NULL;
    return st;
}

static lam_status fancy_forward(lam_block *self, void *state, uint32_t n_in, lam_tensor *const *in,
                                lam_tensor **out) {
    (void)n_in;
    fancy_state *fs = state;
    lam_block *dense = lam_block_child(self, "dense");
    lam_tensor *rw = NULL, *h = NULL, *next = NULL;
    float norm = 0.0f;
    lam_status st = lam_param_data(lam_block_param(self, "rand_weight"), &rw);
    if (st == LAM_OK) {
        st = lam_block_call(dense, in[0], &h);
    }
    if (st == LAM_OK) {
        st = advance(lam_op_dot(h, rw, &next), &h, &next);
    }
    if (st == LAM_OK) {
        st = advance(lam_op_add_scalar(h, 1.0f, &next), &h, &next);
    }
    if (st == LAM_OK) {
        st = advance(lam_op_relu(h, &next), &h, &next);
    }
    if (st == LAM_OK) {
        st = advance(lam_block_call(dense, h, &next), &h, &next);
    }
    fs->halvings = 0;
    fs->scaled = 0;
    while (st == LAM_OK && (st = norm_of(h, &norm)) == LAM_OK && norm > 1.0f) {
        st = advance(lam_op_div_scalar(h, 2.0f, &next), &h, &next);
        fs->halvings++;
    }
    if (st == LAM_OK && norm < 0.8f) {
        st = advance(lam_op_mul_scalar(h, 10.0f, &next), &h, &next);
        fs->scaled = 1;
    }
    if (st == LAM_OK) {
        st = lam_op_sum(h, NULL, 0, 0, out);
    }
    lam_tensor_release(h);
    lam_tensor_release(rw);
    return st;
}

typedef struct fancy_case {
    lam_block *block;
    int ref_halvings, ref_scaled; /* of the last reference evaluation */
} fancy_case;

/* dense(x) in float64: relu(x W^T + b), pre-activations into z (2 x 20). */
static void fancy_dense(const double *x, const double *w, const double *b, double *z, double *h) {
    for (int r = 0; r < 2; r++) {
        for (int u = 0; u < 20; u++) {
            double s = b[u];
            for (int k = 0; k < 20; k++) {
                s += x[r * 20 + k] * w[u * 20 + k];
            }
            z[r * 20 + u] = s;
            h[r * 20 + u] = s > 0.0 ? s : 0.0;
        }
    }
}

/* The float64 FancyMLP; returns the smallest distance of a decision to its threshold and of a
 * pre-activation to relu's kink (for the validity check). */
static double fancy_eval(fancy_case *c, const double *const *v, double *out) {
    double z[40], h[40], t[40], margin = INFINITY;
    fancy_dense(v[0], v[1], v[2], z, h);
    for (int i = 0; i < 40; i++) {
        margin = fmin(margin, fabs(z[i]));
    }
    for (int r = 0; r < 2; r++) {
        for (int u = 0; u < 20; u++) {
            double s = 1.0;
            for (int k = 0; k < 20; k++) {
                s += h[r * 20 + k] * (double)fancy_rw[k * 20 + u];
            }
            margin = fmin(margin, fabs(s));
            t[r * 20 + u] = s > 0.0 ? s : 0.0;
        }
    }
    fancy_dense(t, v[1], v[2], z, h);
    for (int i = 0; i < 40; i++) {
        margin = fmin(margin, fabs(z[i]));
    }
    double scale = 1.0, norm = 0.0;
    for (int i = 0; i < 40; i++) {
        norm += h[i] * h[i];
    }
    norm = sqrt(norm);
    c->ref_halvings = 0;
    c->ref_scaled = 0;
    margin = fmin(margin, fabs(norm - 1.0));
    while (norm > 1.0) {
        norm /= 2.0;
        scale /= 2.0;
        c->ref_halvings++;
        margin = fmin(margin, fabs(norm - 1.0));
    }
    margin = fmin(margin, fabs(norm - 0.8));
    if (norm < 0.8) {
        scale *= 10.0;
        c->ref_scaled = 1;
    }
    double sum = 0.0;
    for (int i = 0; i < 40; i++) {
        sum += h[i] * scale;
    }
    *out = sum;
    return margin;
}

static void fancy_ref(const ag_problem *p, const double *const *v, double *out) {
    fancy_eval((fancy_case *)(uintptr_t)p->user, v, out);
}

static int fancy_valid(const ag_problem *p, const double *const *v) {
    double out;
    return fancy_eval((fancy_case *)(uintptr_t)p->user, v, &out) >= 1e-3;
}

static lam_status fancy_call(const ag_problem *p, lam_tensor *const *in, lam_tensor **out) {
    const fancy_case *c = p->user;
    return lam_block_call(c->block, in[0], out);
}

Test(control_flow, only_executed_ops_are_recorded) {
    ag_rng rng = {77};
    for (int i = 0; i < 400; i++) {
        fancy_rw[i] = ag_uniform(&rng, 0.0, 1.0);
    }
    fancy_state *fs = calloc(1, sizeof *fs);
    cr_assert_not_null(fs);
    lam_block *fancy = NULL;
    AG_OK(lam_block_create("FancyMLP", fancy_forward, fs, free, &fancy));
    lam_block *dense = new_layer("Dense", "units=20, activation=relu, in_units=20");
    AG_OK(lam_block_register_child(fancy, "dense", dense));
    lam_block_release(dense);
    lam_tensor *rw = ag_tensor(AG_SHAPE(20, 20), fancy_rw, 400);
    lam_param *rwp = NULL;
    AG_OK(lam_block_constant_new(fancy, "rand_weight", rw, &rwp));
    lam_tensor_release(rw);
    AG_OK(lam_block_initialize(fancy, NULL, NULL, 0));

    /* Weight scales that give a few halvings (|h| of some tens), then the same net scaled
     * down so that no halving runs and the *10 branch does. */
    const double scales[2] = {0.5, 0.05};
    for (int k = 0; k < 2; k++) {
        fancy_case c = {fancy, 0, 0};
        ag_problem p = {
            .what = k == 0 ? "FancyMLP (halvings)" : "FancyMLP (times 10)",
            .n_vars = 3,
            .vars = {{"x", AG_SHAPE(2, 20), -1.0, 1.0, 0, NULL},
                     {"weight", AG_SHAPE(20, 20), -scales[k], scales[k], 0,
                      param_of(dense, "weight")},
                     {"bias", AG_SHAPE(20), -scales[k], scales[k], 0, param_of(dense, "bias")}},
            .out_shape = AG_SCALAR_SHAPE(),
            .forward = fancy_call,
            .ref = fancy_ref,
            .valid = fancy_valid,
            .user = &c,
        };
        ag_check_grad(&p, 9500 + (uint64_t)k, NULL);
        cr_assert_eq(fs->halvings, c.ref_halvings, "%s: %d halvings in Lamina, %d in float64",
                     p.what, fs->halvings, c.ref_halvings);
        cr_assert_eq(fs->scaled, c.ref_scaled, "%s: the *10 branch disagrees", p.what);
        if (k == 0) {
            cr_assert(fs->halvings >= 3, "only %d halvings: the loop is barely exercised",
                      fs->halvings);
        } else {
            cr_assert(fs->halvings == 0 && fs->scaled, "case 2 should take the *10 branch only");
        }
    }
    lam_block_release(fancy);
    ag_assert_released();
}

/* ---- detach --------------------------------------------------------------------------------- */

Test(detach, no_gradient_flows_through_a_detached_tensor) {
    const float xv[6] = {0.5f, -1.5f, 2.0f, -0.25f, 1.25f, 3.0f};
    lam_tensor *x = ag_tensor(AG_SHAPE(2, 3), xv, 6), *y = NULL, *z = NULL, *out = NULL;
    AG_OK(lam_tensor_attach_grad(x));
    lam_autograd_set_recording(1);
    AG_OK(lam_op_mul(x, x, &y));
    AG_OK(lam_tensor_detach(y, &z));
    AG_OK(lam_op_mul(z, x, &out)); /* x^3, but only the last factor is differentiated */
    lam_autograd_set_recording(0);
    float sq[6];
    for (int i = 0; i < 6; i++) {
        sq[i] = xv[i] * xv[i];
    }
    lam_shape s = AG_SHAPE(2, 3);
    ag_assert_values(z, &s, sq, 6, 0.0, 0.0, "detach(x*x) holds x*x");
    AG_OK(lam_autograd_backward(out, NULL));
    lam_tensor *g = NULL;
    AG_OK(lam_tensor_grad(x, &g));
    ag_assert_values(g, &s, sq, 6, 0.0, 0.0, "d(detach(x*x) * x)/dx = x*x, not 3x^2");
    lam_tensor_release(g);

    /* The detached tensor itself is no head and has no gradient. */
    ag_assert_error(lam_autograd_backward(z, NULL), LAM_ERR_STATE,
                    "backward: Not recorded, the head was not computed inside "
                    "lam_autograd_set_recording(1) from parameters or tensors that need "
                    "gradients",
                    "backward on a detached tensor");
    lam_tensor *gz = POISON;
    ag_assert_error(lam_tensor_grad(z, &gz), LAM_ERR_STATE,
                    "lam_tensor_grad: No gradient, call lam_tensor_attach_grad() on the tensor "
                    "before recording",
                    "grad of a detached tensor");
    cr_assert_null(gz);
    lam_tensor_release(out);
    lam_tensor_release(z);
    lam_tensor_release(y);
    lam_tensor_release(x);
    ag_assert_released();
}

Test(detach, layers_before_a_detach_get_no_gradient) {
    for (int fused = 1; fused >= 0; fused--) {
        int was = lam_autograd_set_fused_backward(fused);
        lam_block *d1 = new_layer("Dense", "units=3, activation=tanh, in_units=4");
        lam_block *d2 = new_layer("Dense", "units=2, in_units=3");
        AG_OK(lam_block_initialize(d1, NULL, NULL, 0));
        AG_OK(lam_block_initialize(d2, NULL, NULL, 0));
        set_param_values(param_of(d1, "weight"), AG_SHAPE(3, 4), gr_w);
        set_param_values(param_of(d1, "bias"), AG_SHAPE(3), gr_b);
        lam_tensor *x = ag_tensor(AG_SHAPE(2, 4), gr_x, 8), *h = NULL, *hd = NULL, *y = NULL;
        lam_autograd_set_recording(1);
        AG_OK(lam_block_call(d1, x, &h));
        AG_OK(lam_tensor_detach(h, &hd));
        AG_OK(lam_block_call(d2, hd, &y));
        lam_autograd_set_recording(0);
        AG_OK(lam_autograd_backward(y, NULL));
        const float zeros[12] = {0};
        lam_tensor *g = NULL;
        AG_OK(lam_param_grad(param_of(d1, "weight"), &g));
        lam_shape ws = AG_SHAPE(3, 4);
        ag_assert_values(g, &ws, zeros, 12, 0.0, 0.0, "d1 weight grad behind a detach");
        lam_tensor_release(g);
        /* d2's bias gets the batch size (2) per unit: the head gradient is ones. */
        const float twos[2] = {2.0f, 2.0f};
        AG_OK(lam_param_grad(param_of(d2, "bias"), &g));
        lam_shape bs = AG_SHAPE(2);
        ag_assert_values(g, &bs, twos, 2, 0.0, 0.0, "d2 bias grad");
        lam_tensor_release(g);
        lam_tensor_release(y);
        lam_tensor_release(hd);
        lam_tensor_release(h);
        lam_tensor_release(x);
        lam_block_release(d1);
        lam_block_release(d2);
        lam_autograd_set_fused_backward(was);
    }
    ag_assert_released();
}

/* ---- attach_grad and the head -------------------------------------------------------------- */

Test(attach, an_attached_head_gets_the_head_gradient) {
    const float xv[4] = {1.0f, -2.0f, 3.0f, 0.5f}, hv[4] = {0.25f, -1.0f, 2.0f, 4.0f};
    lam_tensor *x = ag_tensor(AG_SHAPE(4), xv, 4), *hg = ag_tensor(AG_SHAPE(4), hv, 4), *g = NULL;
    AG_OK(lam_tensor_attach_grad(x));
    AG_OK(lam_autograd_backward(x, hg));
    AG_OK(lam_tensor_grad(x, &g));
    lam_shape s = AG_SHAPE(4);
    ag_assert_values(g, &s, hv, 4, 0.0, 0.0, "d x / d x weighted by head_grad");
    lam_tensor_release(g);
    lam_tensor_release(hg);
    lam_tensor_release(x);
    ag_assert_released();
}

Test(attach, attaching_an_intermediate_makes_it_a_leaf) {
    /* y = 3x (recorded), then attach_grad(y): z = y*y differentiates to 2y at y, nothing at x. */
    const float xv[3] = {1.0f, -0.5f, 2.0f};
    lam_tensor *x = ag_tensor(AG_SHAPE(3), xv, 3), *y = NULL, *z = NULL, *g = NULL;
    AG_OK(lam_tensor_attach_grad(x));
    lam_autograd_set_recording(1);
    AG_OK(lam_op_mul_scalar(x, 3.0f, &y));
    AG_OK(lam_tensor_attach_grad(y));
    AG_OK(lam_op_mul(y, y, &z));
    lam_autograd_set_recording(0);
    AG_OK(lam_autograd_backward(z, NULL));
    lam_shape s = AG_SHAPE(3);
    const float gy[3] = {6.0f, -3.0f, 12.0f}, zeros[3] = {0};
    AG_OK(lam_tensor_grad(y, &g));
    ag_assert_values(g, &s, gy, 3, 0.0, 0.0, "d(y*y)/dy");
    lam_tensor_release(g);
    AG_OK(lam_tensor_grad(x, &g));
    ag_assert_values(g, &s, zeros, 3, 0.0, 0.0, "x behind the new leaf");
    lam_tensor_release(g);
    lam_tensor_release(z);
    lam_tensor_release(y);
    lam_tensor_release(x);
    ag_assert_released();
}

Test(attach, backward_restores_the_recording_state) {
    const float xv[2] = {1.0f, 2.0f};
    lam_tensor *x = ag_tensor(AG_SHAPE(2), xv, 2), *y = NULL;
    AG_OK(lam_tensor_attach_grad(x));
    cr_assert_eq(lam_autograd_set_recording(1), 0, "recording is on by default");
    AG_OK(lam_op_square(x, &y));
    AG_OK(lam_autograd_backward(y, NULL));
    cr_assert_eq(lam_autograd_is_recording(), 1, "backward left recording off");
    cr_assert_eq(lam_autograd_set_recording(0), 1);
    cr_assert_eq(lam_autograd_is_recording(), 0);
    lam_tensor_release(y);
    lam_tensor_release(x);
    ag_assert_released();
}

/* ---- errors --------------------------------------------------------------------------------- */

#define NOT_RECORDED                                                                               \
    "backward: Not recorded, the head was not computed inside lam_autograd_set_recording(1) "      \
    "from parameters or tensors that need gradients"

Test(autograd_error, backward_on_an_unrecorded_head) {
    const float v[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *a = ag_tensor(AG_SHAPE(2, 3), v, 6), *b = NULL, *c = NULL;
    /* Recording, but nothing needs a gradient. */
    lam_autograd_set_recording(1);
    AG_OK(lam_op_mul_scalar(a, 2.0f, &b));
    lam_autograd_set_recording(0);
    ag_assert_error(lam_autograd_backward(b, NULL), LAM_ERR_STATE, NOT_RECORDED,
                    "backward(no attached input)");
    /* An attached input, but recording off. */
    AG_OK(lam_tensor_attach_grad(a));
    AG_OK(lam_op_mul_scalar(a, 2.0f, &c));
    ag_assert_error(lam_autograd_backward(c, NULL), LAM_ERR_STATE, NOT_RECORDED,
                    "backward(recording off)");
    /* The attached input's gradient was left alone. */
    lam_tensor *g = NULL;
    AG_OK(lam_tensor_grad(a, &g));
    const float zeros[6] = {0};
    lam_shape s = AG_SHAPE(2, 3);
    ag_assert_values(g, &s, zeros, 6, 0.0, 0.0, "grad after a failed backward");
    lam_tensor_release(g);
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(c);
    ag_assert_released();
}

Test(autograd_error, head_grad_of_another_shape) {
    const float v[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *x = ag_tensor(AG_SHAPE(2, 3), v, 6), *y = NULL;
    lam_tensor *hg1 = ag_tensor(AG_SHAPE(3, 2), v, 6), *hg2 = ag_tensor(AG_SHAPE(3), v, 3);
    AG_OK(lam_tensor_attach_grad(x));
    lam_autograd_set_recording(1);
    AG_OK(lam_op_square(x, &y));
    lam_autograd_set_recording(0);
    ag_assert_error(lam_autograd_backward(y, hg1), LAM_ERR_SHAPE,
                    "backward: Shape mismatch, head is (2, 3), head_grad is (3, 2)",
                    "backward(head_grad (3, 2))");
    ag_assert_error(lam_autograd_backward(y, hg2), LAM_ERR_SHAPE,
                    "backward: Shape mismatch, head is (2, 3), head_grad is (3,)",
                    "backward(head_grad (3,))");
    /* The graph is still usable after the refusal. */
    AG_OK(lam_autograd_backward(y, NULL));
    lam_tensor *g = NULL;
    AG_OK(lam_tensor_grad(x, &g));
    const float want[6] = {2, 4, 6, 8, 10, 12};
    lam_shape s = AG_SHAPE(2, 3);
    ag_assert_values(g, &s, want, 6, 0.0, 0.0, "d(sum x^2)/dx after the refusals");
    lam_tensor_release(g);
    lam_tensor_release(hg1);
    lam_tensor_release(hg2);
    lam_tensor_release(y);
    lam_tensor_release(x);
    ag_assert_released();
}

Test(autograd_error, grad_without_attach_grad) {
    const float v[3] = {1, 2, 3};
    lam_tensor *x = ag_tensor(AG_SHAPE(3), v, 3), *g = POISON;
    ag_assert_error(lam_tensor_grad(x, &g), LAM_ERR_STATE,
                    "lam_tensor_grad: No gradient, call lam_tensor_attach_grad() on the tensor "
                    "before recording",
                    "lam_tensor_grad(not attached)");
    cr_assert_null(g, "out is not NULL after a failure");
    lam_tensor_release(x);
    ag_assert_released();
}

static void assert_ce_error(const float *labels, size_t n, lam_status want, const char *msg) {
    const float logits[20] = {0};
    lam_tensor *lg = ag_tensor(AG_SHAPE(4, 5), logits, 20);
    lam_tensor *lb = ag_tensor(AG_SHAPE((int64_t)n), labels, n), *out = POISON;
    ag_assert_error(lam_loss_softmax_cross_entropy(lg, lb, &out), want, msg,
                    "softmax_cross_entropy");
    cr_assert_null(out, "out is not NULL after a failure");
    lam_tensor_release(lg);
    lam_tensor_release(lb);
}

Test(autograd_error, softmax_cross_entropy_rejects_bad_labels) {
    const float too_big[4] = {0.0f, 5.0f, 1.0f, 2.0f};
    assert_ce_error(too_big, 4, LAM_ERR_INVALID_ARGUMENT,
                    "softmax_cross_entropy: Invalid label, labels[1] is 5, expected an integer "
                    "in [0, 5)");
    const float negative[4] = {0.0f, 1.0f, 2.0f, -1.0f};
    assert_ce_error(negative, 4, LAM_ERR_INVALID_ARGUMENT,
                    "softmax_cross_entropy: Invalid label, labels[3] is -1, expected an integer "
                    "in [0, 5)");
    const float fraction[4] = {1.5f, 1.0f, 2.0f, 3.0f};
    assert_ce_error(fraction, 4, LAM_ERR_INVALID_ARGUMENT,
                    "softmax_cross_entropy: Invalid label, labels[0] is 1.5, expected an integer "
                    "in [0, 5)");
    const float three[3] = {0.0f, 1.0f, 2.0f};
    assert_ce_error(three, 3, LAM_ERR_SHAPE,
                    "softmax_cross_entropy: Shape mismatch, logits (4, 5) and labels (3,), "
                    "expected (batch, classes) and (batch,) or (batch, classes)");
    ag_assert_released();
}

Test(autograd_error, l2_loss_rejects_other_shapes) {
    const float v[6] = {0};
    lam_tensor *p = ag_tensor(AG_SHAPE(2, 3), v, 6), *l = ag_tensor(AG_SHAPE(3, 2), v, 6);
    lam_tensor *out = POISON;
    ag_assert_error(lam_loss_l2(p, l, &out), LAM_ERR_SHAPE,
                    "l2_loss: Shape mismatch, pred (2, 3), label (3, 2)", "l2_loss");
    cr_assert_null(out);
    lam_tensor_release(p);
    lam_tensor_release(l);
    ag_assert_released();
}

/*
 * Backward hands a fresh gradient's buffer to the attached gradient instead of copying it, but
 * only where nothing else sees the old buffer: a view of the gradient taken by the user must
 * see every new gradient (worked by hand: d(sum(c * x))/dx = c).
 */
Test(grad_delivery, a_view_of_the_gradient_sees_every_backward) {
    lam_ctx *cpu = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &cpu), LAM_OK, "%s", lam_last_error());
    const lam_shape s = {.ndim = 2, .dims = {2, 3}}, flat = {.ndim = 1, .dims = {6}};
    const float xv[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *x = NULL, *g = NULL, *gv = NULL;
    cr_assert_eq(lam_tensor_from_data(cpu, &s, xv, 6, &x), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_attach_grad(x), LAM_OK);
    cr_assert_eq(lam_tensor_grad(x, &g), LAM_OK);
    cr_assert_eq(lam_tensor_reshape(g, &flat, &gv), LAM_OK, "%s", lam_last_error());
    for (int round = 1; round <= 3; round++) {
        lam_tensor *y = NULL, *l = NULL;
        int was = lam_autograd_record_begin(1);
        cr_assert_eq(lam_op_mul_scalar(x, (float)round, &y), LAM_OK, "%s", lam_last_error());
        cr_assert_eq(lam_op_sum(y, NULL, 0, 0, &l), LAM_OK, "%s", lam_last_error());
        lam_autograd_record_end(was);
        cr_assert_eq(lam_autograd_backward(l, NULL), LAM_OK, "%s", lam_last_error());
        float got[6], via_view[6];
        cr_assert_eq(lam_tensor_read(g, got, 6), LAM_OK);
        cr_assert_eq(lam_tensor_read(gv, via_view, 6), LAM_OK);
        for (int i = 0; i < 6; i++) {
            cr_expect_eq(got[i], (float)round, "round %d, grad[%d] = %g", round, i, got[i]);
            cr_expect_eq(via_view[i], (float)round, "round %d, view[%d] = %g", round, i,
                         via_view[i]);
        }
        lam_tensor_release(y);
        lam_tensor_release(l);
    }
    lam_tensor_release(gv);
    lam_tensor_release(g);
    lam_tensor_release(x);
}

/* Without a view the buffer is handed over, and the gradient object the user holds still
 * reads each backward's values. */
Test(grad_delivery, the_gradient_held_by_the_user_reads_every_backward) {
    lam_ctx *cpu = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &cpu), LAM_OK, "%s", lam_last_error());
    const lam_shape s = {.ndim = 1, .dims = {4}};
    const float xv[4] = {1, -2, 3, -4};
    lam_tensor *x = NULL, *g = NULL;
    cr_assert_eq(lam_tensor_from_data(cpu, &s, xv, 4, &x), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_attach_grad(x), LAM_OK);
    cr_assert_eq(lam_tensor_grad(x, &g), LAM_OK);
    for (int round = 1; round <= 3; round++) {
        lam_tensor *y = NULL, *l = NULL;
        int was = lam_autograd_record_begin(1);
        cr_assert_eq(lam_op_square(x, &y), LAM_OK, "%s", lam_last_error());
        cr_assert_eq(lam_op_sum(y, NULL, 0, 0, &l), LAM_OK, "%s", lam_last_error());
        lam_autograd_record_end(was);
        cr_assert_eq(lam_autograd_backward(l, NULL), LAM_OK, "%s", lam_last_error());
        float got[4];
        cr_assert_eq(lam_tensor_read(g, got, 4), LAM_OK);
        for (int i = 0; i < 4; i++) { /* d(sum x^2)/dx = 2x */
            cr_expect_eq(got[i], 2.0f * xv[i], "round %d, grad[%d] = %g", round, i, got[i]);
        }
        lam_tensor_release(y);
        lam_tensor_release(l);
    }
    lam_tensor_release(g);
    lam_tensor_release(x);
}
