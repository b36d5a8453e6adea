/*
 * The standard layer plugins BatchNorm, Dropout, Embedding and LayerNorm through the public
 * API: outputs, input and parameter gradients, BatchNorm's running statistics and Dropout's
 * masks against PyTorch float64 (ref/gen_stdlayers_ref.py, output committed as
 * ref/stdlayers_ref.h), training against inference behaviour, save/load of the running
 * statistics, describe lines, and error messages word for word. Tensors live on the default
 * context, so the Vulkan pass of the suite (LAMINA_BACKEND=vulkan) checks the same numbers.
 */
#define _GNU_SOURCE
#include "autograd/ag_util.h"
#include "ref/stdlayers_ref.h"

#include <stdlib.h>
#include <unistd.h>

/* float32 forward / backward against float64 PyTorch */
#define RTOL 1e-4
#define ATOL 2e-5

TestSuite(batchnorm, .fini = ag_fini);
TestSuite(dropout, .fini = ag_fini);
TestSuite(embedding, .fini = ag_fini);
TestSuite(layernorm, .fini = ag_fini);

static lam_block *make(const char *type, const char *attrs) {
    lam_block *b = NULL;
    AG_OK(lam_layer_create(type, attrs, &b));
    AG_OK(lam_block_initialize(b, NULL, NULL, 0));
    return b;
}

static lam_tensor *ref_tensor(const ag_ref_array *a) {
    return ag_tensor(ag_shape(a->ndim, a->dims), a->data, a->count);
}

static void expect_close(const lam_tensor *t, const ag_ref_array *want, const char *what) {
    cr_assert_eq((size_t)lam_tensor_numel(t), want->count, "%s: %lld elements, expected %zu", what,
                 (long long)lam_tensor_numel(t), want->count);
    float *got = ag_read(t);
    for (size_t i = 0; i < want->count; i++) {
        cr_assert(ag_close(got[i], want->data[i], RTOL, ATOL), "%s[%zu] = %.9g, PyTorch %.9g", what,
                  i, (double)got[i], (double)want->data[i]);
    }
    free(got);
}

static void set_param(lam_block *b, const char *name, const ag_ref_array *v) {
    lam_param *p = lam_block_param(b, name);
    cr_assert_not_null(p, "no parameter %s", name);
    lam_tensor *t = ref_tensor(v);
    AG_OK(lam_param_set_data(p, t));
    lam_tensor_release(t);
}

static void expect_param(lam_block *b, const char *name, const ag_ref_array *want) {
    lam_param *p = lam_block_param(b, name);
    cr_assert_not_null(p, "no parameter %s", name);
    lam_tensor *d = NULL;
    AG_OK(lam_param_data(p, &d));
    expect_close(d, want, name);
    lam_tensor_release(d);
}

static void expect_grad(lam_block *b, const char *name, const ag_ref_array *want) {
    lam_param *p = lam_block_param(b, name);
    cr_assert_not_null(p, "no parameter %s", name);
    lam_tensor *g = NULL;
    AG_OK(lam_param_grad(p, &g));
    expect_close(g, want, name);
    lam_tensor_release(g);
}

/* A recorded forward of x (attached) in train mode `train` (-1: follow recording), then the
 * backward of sum(hg * y). Returns y; *x_out the input, for its gradient. */
static lam_tensor *run(lam_block *b, const ag_ref_array *x, const ag_ref_array *hg, int train,
                       lam_tensor **x_out) {
    lam_tensor *xt = ref_tensor(x), *y = NULL;
    AG_OK(lam_tensor_attach_grad(xt));
    int mode = lam_autograd_train_mode_begin(train);
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_block_forward(b, 1, &xt, &y);
    lam_autograd_record_end(was);
    lam_autograd_train_mode_end(mode);
    AG_OK(st);
    lam_tensor *h = ref_tensor(hg);
    AG_OK(lam_autograd_backward(y, h));
    lam_tensor_release(h);
    *x_out = xt;
    return y;
}

static void expect_input_grad(lam_tensor *x, const ag_ref_array *want, const char *what) {
    lam_tensor *g = NULL;
    AG_OK(lam_tensor_grad(x, &g));
    expect_close(g, want, what);
    lam_tensor_release(g);
}

/* An unrecorded forward (inference unless train mode is forced). */
static lam_tensor *infer(lam_block *b, lam_tensor *x) {
    lam_tensor *y = NULL;
    AG_OK(lam_block_forward(b, 1, &x, &y));
    return y;
}

/* ---- BatchNorm ---- */

static const ag_ref_array *const bn_xs[3] = {&ref_bn_x0, &ref_bn_x1, &ref_bn_x2};
static const ag_ref_array *const bn_ys[3] = {&ref_bn_y0, &ref_bn_y1, &ref_bn_y2};
static const ag_ref_array *const bn_rms[3] = {&ref_bn_rm0, &ref_bn_rm1, &ref_bn_rm2};
static const ag_ref_array *const bn_rvs[3] = {&ref_bn_rv0, &ref_bn_rv1, &ref_bn_rv2};

/* BatchNorm with PyTorch's gamma and beta after three training steps on bn_xs. */
static lam_block *bn_trained(void) {
    lam_block *b = make("BatchNorm", "");
    for (int k = 0; k < 3; k++) {
        lam_tensor *x = NULL;
        lam_tensor *y = NULL;
        if (k == 0) { /* the first forward infers in_channels; then PyTorch's affine values */
            lam_tensor *x0 = ref_tensor(bn_xs[0]);
            lam_tensor *y0 = infer(b, x0);
            lam_tensor_release(x0);
            lam_tensor_release(y0);
            set_param(b, "gamma", &ref_bn_gamma);
            set_param(b, "beta", &ref_bn_beta);
        }
        y = run(b, bn_xs[k], &ref_bn_hg, -1, &x);
        lam_tensor_release(x);
        lam_tensor_release(y);
    }
    return b;
}

Test(batchnorm, training_steps_match_pytorch) {
    lam_block *b = make("BatchNorm", "in_channels=2");
    set_param(b, "gamma", &ref_bn_gamma);
    set_param(b, "beta", &ref_bn_beta);
    for (int k = 0; k < 3; k++) {
        lam_tensor *x = NULL;
        /* recording turns train mode on by default, as Gluon's record() */
        lam_tensor *y = run(b, bn_xs[k], &ref_bn_hg, -1, &x);
        expect_close(y, bn_ys[k], ag_fmt("step %d output", k));
        if (k == 0) {
            expect_input_grad(x, &ref_bn_dx0, "input gradient");
            expect_grad(b, "gamma", &ref_bn_dgamma0);
            expect_grad(b, "beta", &ref_bn_dbeta0);
        }
        /* PyTorch's rule, the running variance from the unbiased batch variance */
        expect_param(b, "running_mean", bn_rms[k]);
        expect_param(b, "running_var", bn_rvs[k]);
        lam_tensor_release(x);
        lam_tensor_release(y);
    }
    lam_block_release(b);
}

Test(batchnorm, inference_uses_running_stats_as_pytorch_eval) {
    lam_block *b = bn_trained();
    lam_tensor *x = NULL;
    /* recorded but in predict mode: running statistics, differentiated through them */
    lam_tensor *y = run(b, &ref_bn_xe, &ref_bn_hg, 0, &x);
    expect_close(y, &ref_bn_ye, "eval output");
    expect_input_grad(x, &ref_bn_dxe, "eval input gradient");
    expect_grad(b, "gamma", &ref_bn_dgammae);
    expect_grad(b, "beta", &ref_bn_dbetae);
    /* and inference leaves the running statistics alone */
    expect_param(b, "running_mean", &ref_bn_rm2);
    expect_param(b, "running_var", &ref_bn_rv2);
    lam_tensor *y2 = infer(b, x);
    expect_close(y2, &ref_bn_ye, "unrecorded output");
    expect_param(b, "running_mean", &ref_bn_rm2);
    lam_tensor_release(y2);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

Test(batchnorm, two_d_input_with_momentum_and_epsilon) {
    lam_block *b = make("BatchNorm", "momentum=0.8, epsilon=1e-3, in_channels=4");
    set_param(b, "gamma", &ref_bn2_gamma);
    set_param(b, "beta", &ref_bn2_beta);
    lam_tensor *x = NULL;
    lam_tensor *y = run(b, &ref_bn2_x, &ref_bn2_hg, 1, &x);
    expect_close(y, &ref_bn2_y, "output");
    expect_input_grad(x, &ref_bn2_dx, "input gradient");
    expect_grad(b, "gamma", &ref_bn2_dgamma);
    expect_grad(b, "beta", &ref_bn2_dbeta);
    expect_param(b, "running_mean", &ref_bn2_rm);
    expect_param(b, "running_var", &ref_bn2_rv);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

Test(batchnorm, channels_last_axis_matches_pytorch) {
    lam_block *b = make("BatchNorm", "axis=-1");
    lam_tensor *x = NULL;
    lam_tensor *y0 = NULL, *x0 = ref_tensor(&ref_bn3_x);
    y0 = infer(b, x0); /* infers in_channels = 4 from the last axis */
    lam_tensor_release(x0);
    lam_tensor_release(y0);
    set_param(b, "gamma", &ref_bn3_gamma);
    set_param(b, "beta", &ref_bn3_beta);
    lam_tensor *y = run(b, &ref_bn3_x, &ref_bn3_hg, -1, &x);
    expect_close(y, &ref_bn3_y, "output");
    expect_input_grad(x, &ref_bn3_dx, "input gradient");
    expect_grad(b, "gamma", &ref_bn3_dgamma);
    expect_grad(b, "beta", &ref_bn3_dbeta);
    expect_param(b, "running_mean", &ref_bn3_rm);
    expect_param(b, "running_var", &ref_bn3_rv);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

Test(batchnorm, train_mode_without_recording_updates_running_stats) {
    lam_block *b = make("BatchNorm", "in_channels=2");
    set_param(b, "gamma", &ref_bn_gamma);
    set_param(b, "beta", &ref_bn_beta);
    lam_tensor *x = ref_tensor(&ref_bn_x0);
    int mode = lam_autograd_train_mode_begin(1);
    lam_tensor *y = infer(b, x);
    lam_autograd_train_mode_end(mode);
    expect_close(y, &ref_bn_y0, "output");
    expect_param(b, "running_mean", &ref_bn_rm0);
    expect_param(b, "running_var", &ref_bn_rv0);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

Test(batchnorm, use_global_stats_normalizes_with_running_stats_in_training) {
    lam_block *b = make("BatchNorm", "use_global_stats=true, in_channels=2");
    lam_block *ref = bn_trained();
    /* the trained statistics and affine values into b */
    static const char *const names[] = {"gamma", "beta", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        lam_tensor *d = NULL;
        AG_OK(lam_param_data(lam_block_param(ref, names[i]), &d));
        AG_OK(lam_param_set_data(lam_block_param(b, names[i]), d));
        lam_tensor_release(d);
    }
    lam_tensor *x = NULL;
    lam_tensor *y = run(b, &ref_bn_xe, &ref_bn_hg, 1, &x);
    expect_close(y, &ref_bn_ye, "output in training");
    expect_input_grad(x, &ref_bn_dxe, "input gradient");
    expect_param(b, "running_mean", &ref_bn_rm2);
    expect_param(b, "running_var", &ref_bn_rv2);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(ref);
    lam_block_release(b);
}

Test(batchnorm, save_load_keeps_running_stats_bit_exact) {
    lam_block *b = bn_trained();
    char path[] = "/tmp/lamina_bn_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    AG_OK(lam_block_save_parameters(b, path));
    lam_block *c = NULL;
    AG_OK(lam_layer_create("BatchNorm", "", &c));
    AG_OK(lam_block_initialize(c, NULL, NULL, 0));
    AG_OK(lam_block_load_parameters(c, path, NULL));
    unlink(path);
    static const char *const names[] = {"gamma", "beta", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        lam_tensor *d1 = NULL, *d2 = NULL;
        AG_OK(lam_param_data(lam_block_param(b, names[i]), &d1));
        AG_OK(lam_param_data(lam_block_param(c, names[i]), &d2));
        float *v1 = ag_read(d1), *v2 = ag_read(d2);
        cr_assert_eq(memcmp(v1, v2, 2 * sizeof *v1), 0, "%s differs after save -> load", names[i]);
        free(v1);
        free(v2);
        lam_tensor_release(d1);
        lam_tensor_release(d2);
    }
    lam_tensor *x = ref_tensor(&ref_bn_xe);
    lam_tensor *y1 = infer(b, x), *y2 = infer(c, x);
    float *v1 = ag_read(y1), *v2 = ag_read(y2);
    cr_assert_eq(memcmp(v1, v2, ref_bn_xe.count * sizeof *v1), 0, "inference output differs");
    free(v1);
    free(v2);
    lam_tensor_release(y1);
    lam_tensor_release(y2);
    lam_tensor_release(x);
    lam_block_release(b);
    lam_block_release(c);
}

Test(batchnorm, parameter_names_and_state_flags) {
    lam_block *b = make("BatchNorm", "in_channels=3");
    lam_param_list *l = NULL;
    AG_OK(lam_block_params(b, &l));
    static const char *const keys[] = {"gamma", "beta", "running_mean", "running_var"};
    static const float init[] = {1.0f, 0.0f, 0.0f, 1.0f};
    cr_assert_eq(lam_param_list_count(l), 4);
    for (size_t i = 0; i < 4; i++) {
        lam_param *p = lam_param_list_get(l, i);
        cr_assert_str_eq(lam_param_list_key(l, i), keys[i]);
        cr_assert_str_eq(lam_param_name(p), ag_fmt("%s_%s", lam_block_name(b), keys[i]));
        /* gamma and beta are trained; the running statistics get no gradient */
        cr_assert_eq(lam_param_grad_req(p) == LAM_GRAD_NULL, i >= 2, "%s grad_req", keys[i]);
        lam_tensor *d = NULL;
        AG_OK(lam_param_data(p, &d));
        float *v = ag_read(d);
        for (int k = 0; k < 3; k++) {
            cr_assert_eq(v[k], init[i], "%s[%d] = %g", keys[i], k, (double)v[k]);
        }
        free(v);
        lam_tensor_release(d);
    }
    lam_param_list_destroy(l);
    lam_block_release(b);
    /* no beta / gamma without center / scale (PyTorch's affine=False) */
    b = make("BatchNorm", "center=false, scale=false");
    AG_OK(lam_block_params(b, &l));
    cr_assert_eq(lam_param_list_count(l), 2);
    cr_assert_str_eq(lam_param_list_key(l, 0), "running_mean");
    lam_param_list_destroy(l);
    lam_block_release(b);
}

Test(batchnorm, without_center_and_scale_normalizes_only) {
    lam_block *b = make("BatchNorm", "center=false, scale=false, epsilon=0");
    /* one channel of (4, 1): 1, 2, 3, 6 has mean 3 and biased variance 3.5 */
    const float xv[4] = {1, 2, 3, 6};
    lam_tensor *x = ag_tensor(AG_SHAPE(4, 1), xv, 4);
    int mode = lam_autograd_train_mode_begin(1);
    lam_tensor *y = infer(b, x);
    lam_autograd_train_mode_end(mode);
    float *v = ag_read(y);
    for (int i = 0; i < 4; i++) {
        double want = (xv[i] - 3.0) / sqrt(3.5);
        cr_assert(ag_close(v[i], want, 1e-6, 1e-6), "y[%d] = %g, expected %g", i, (double)v[i],
                  want);
    }
    free(v);
    /* running: 0.9 * 0 + 0.1 * 3, and 0.9 * 1 + 0.1 * (unbiased 14 / 3) */
    lam_tensor *d = NULL;
    AG_OK(lam_param_data(lam_block_param(b, "running_var"), &d));
    v = ag_read(d);
    cr_assert(ag_close(v[0], 0.9 + 0.1 * 14.0 / 3.0, 1e-6, 1e-6), "running_var %g", (double)v[0]);
    free(v);
    lam_tensor_release(d);
    AG_OK(lam_param_data(lam_block_param(b, "running_mean"), &d));
    v = ag_read(d);
    cr_assert(ag_close(v[0], 0.3, 1e-6, 1e-6), "running_mean %g", (double)v[0]);
    free(v);
    lam_tensor_release(d);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

Test(batchnorm, describe_line) {
    lam_block *b = make("BatchNorm", "");
    char *s = lam_block_summary(b);
    cr_assert_str_eq(s, "BatchNorm(axis=1, eps=1e-05, momentum=0.9, fix_gamma=False, "
                        "use_global_stats=False, in_channels=None)");
    free(s);
    lam_tensor *x = ref_tensor(&ref_bn_x0);
    lam_tensor *y = infer(b, x);
    s = lam_block_summary(b);
    cr_assert_str_eq(s, "BatchNorm(axis=1, eps=1e-05, momentum=0.9, fix_gamma=False, "
                        "use_global_stats=False, in_channels=2)");
    free(s);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
    b = make("BatchNorm", "axis=-1, momentum=0.5, epsilon=0.001, scale=false, "
                          "use_global_stats=true, in_channels=8");
    s = lam_block_summary(b);
    cr_assert_str_eq(s, "BatchNorm(axis=-1, eps=0.001, momentum=0.5, fix_gamma=True, "
                        "use_global_stats=True, in_channels=8)");
    free(s);
    lam_block_release(b);
}

/* lam_layer_create fails with `msg` after the subject, the instance's display name `prefix`N
 * (the counter has moved on by each failed create: its number is not judged). */
static void create_fails(const char *type, const char *prefix, const char *attrs, lam_status want,
                         const char *msg) {
    lam_block *b = NULL;
    lam_status st = lam_layer_create(type, attrs, &b);
    cr_assert_null(b);
    const char *m = lam_last_error();
    size_t n = strlen(prefix);
    cr_assert(strncmp(m, prefix, n) == 0 && strspn(m + n, "0123456789") > 0,
              "%s: subject is not %sN: %s", attrs, prefix, m);
    const char *colon = strchr(m, ':');
    cr_assert_not_null(colon, "message without a subject: %s", m);
    ag_assert_error(st, want, ag_fmt("%.*s%s", (int)(colon - m), m, msg), attrs);
}

Test(batchnorm, attribute_errors) {
    create_fails("BatchNorm", "batchnorm", "momentum=1.5", LAM_ERR_INVALID_ARGUMENT,
                 ": Invalid argument, momentum must be in [0, 1], got 1.5");
    create_fails("BatchNorm", "batchnorm", "epsilon=-1", LAM_ERR_INVALID_ARGUMENT,
                 ": Invalid argument, epsilon must be finite and >= 0, got -1");
    create_fails("BatchNorm", "batchnorm", "in_channels=-2", LAM_ERR_INVALID_ARGUMENT,
                 ": Invalid argument, in_channels must be positive or 0 (infer from the input), "
                 "got -2");
    create_fails("BatchNorm", "batchnorm", "axis=9", LAM_ERR_INVALID_ARGUMENT,
                 ": Invalid argument, axis 9 is outside [-8, 8)");
}

Test(batchnorm, input_errors) {
    lam_block *b = make("BatchNorm", "axis=2");
    const char *name = lam_block_name(b);
    float v[6] = {1, 2, 3, 4, 5, 6};
    lam_tensor *x = ag_tensor(AG_SHAPE(2, 3), v, 6), *y = NULL;
    ag_assert_error(lam_block_forward(b, 1, &x, &y), LAM_ERR_SHAPE,
                    ag_fmt("%s: Shape mismatch, axis 2 does not exist in an input of rank 2", name),
                    "axis");
    lam_block_release(b);
    b = make("BatchNorm", "in_channels=4");
    name = lam_block_name(b);
    lam_status st = lam_block_forward(b, 1, &x, &y);
    ag_assert_error(st, LAM_ERR_SHAPE,
                    ag_fmt("%s: Shape inconsistent, provided (4,), inferred (3,)", name),
                    "in_channels");
    lam_block_release(b);
    /* training needs more than one value per channel, as PyTorch */
    b = make("BatchNorm", "");
    name = lam_block_name(b);
    lam_tensor *x1 = ag_tensor(AG_SHAPE(1, 3), v, 3);
    int mode = lam_autograd_train_mode_begin(1);
    st = lam_block_forward(b, 1, &x1, &y);
    lam_autograd_train_mode_end(mode);
    ag_assert_error(st, LAM_ERR_SHAPE,
                    ag_fmt("%s: Shape mismatch, training needs more than 1 value per channel, got "
                           "input (1, 3)",
                           name),
                    "one sample");
    /* in inference one sample is fine */
    y = infer(b, x1);
    lam_tensor_release(y);
    lam_tensor_release(x1);
    lam_tensor_release(x);
    lam_block_release(b);
}

/* ---- Dropout ---- */

Test(dropout, training_masks_match_the_philox_stream_and_pytorch) {
    lam_block *b = make("Dropout", "rate=0.3");
    cr_assert_str_eq(lam_block_name(b), "dropout0", "the reference keys the stream by this name");
    lam_seed(REF_DROP_SEED);
    const ag_ref_array *ys[2] = {&ref_drop_y0, &ref_drop_y1};
    const ag_ref_array *dxs[2] = {&ref_drop_dx0, &ref_drop_dx1};
    for (int k = 0; k < 2; k++) { /* the second forward draws the next numbers of the stream */
        lam_tensor *x = NULL;
        lam_tensor *y = run(b, &ref_drop_x, &ref_drop_hg, -1, &x);
        expect_close(y, ys[k], ag_fmt("forward %d output", k));
        expect_input_grad(x, dxs[k], ag_fmt("forward %d input gradient", k));
        lam_tensor_release(x);
        lam_tensor_release(y);
    }
    /* re-seeding repeats the first mask */
    lam_seed(REF_DROP_SEED);
    lam_tensor *x = ref_tensor(&ref_drop_x);
    int mode = lam_autograd_train_mode_begin(1);
    lam_tensor *y = infer(b, x);
    lam_autograd_train_mode_end(mode);
    expect_close(y, &ref_drop_y0, "after re-seeding");
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

Test(dropout, identity_at_inference) {
    lam_block *b = make("Dropout", "rate=0.9");
    lam_tensor *x = ref_tensor(&ref_drop_x);
    lam_tensor *y = infer(b, x);
    float *v = ag_read(y);
    cr_assert_eq(memcmp(v, ref_drop_x.data, ref_drop_x.count * sizeof *v), 0);
    free(v);
    lam_tensor_release(y);
    lam_tensor_release(x);
    /* recorded in predict mode: identity, gradient passes through unchanged */
    y = run(b, &ref_drop_x, &ref_drop_hg, 0, &x);
    v = ag_read(y);
    cr_assert_eq(memcmp(v, ref_drop_x.data, ref_drop_x.count * sizeof *v), 0);
    free(v);
    expect_input_grad(x, &ref_drop_hg, "predict-mode gradient");
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(b);
}

Test(dropout, drops_the_rate_on_average) {
    lam_block *b = make("Dropout", "rate=0.25");
    lam_seed(7);
    enum { N = 40000 };
    lam_tensor *x = NULL, *y = NULL;
    AG_OK(lam_tensor_full(NULL, &(lam_shape){.ndim = 2, .dims = {200, 200}}, 1.0f, &x));
    int mode = lam_autograd_train_mode_begin(1);
    y = infer(b, x);
    lam_autograd_train_mode_end(mode);
    float *v = ag_read(y);
    size_t zeros = 0;
    for (size_t i = 0; i < N; i++) {
        cr_assert(v[i] == 0.0f || v[i] == (float)(1.0 / 0.75), "y[%zu] = %.9g", i, (double)v[i]);
        zeros += v[i] == 0.0f;
    }
    /* binomial(40000, 0.25): standard deviation ~87; 5 sigma */
    cr_assert(zeros > 10000 - 435 && zeros < 10000 + 435, "%zu zeros of %d", zeros, (int)N);
    free(v);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

Test(dropout, describe_and_errors) {
    lam_block *b = make("Dropout", "");
    char *s = lam_block_summary(b);
    cr_assert_str_eq(s, "Dropout(p = 0.5, axes=())");
    free(s);
    lam_block_release(b);
    create_fails("Dropout", "dropout", "rate=1", LAM_ERR_INVALID_ARGUMENT,
                 ": Invalid argument, rate must be in [0, 1), got 1");
    create_fails("Dropout", "dropout", "rate=-0.1", LAM_ERR_INVALID_ARGUMENT,
                 ": Invalid argument, rate must be in [0, 1), got -0.1");
}

/* ---- Embedding ---- */

/* The reference indices as an int32 or int64 tensor, with `bad` (if >= 0) at position `at`. */
static lam_tensor *indices(lam_dtype dt, int64_t at, int64_t bad) {
    int64_t v64[6];
    int32_t v32[6];
    for (size_t i = 0; i < ref_emb_idx.count; i++) {
        v64[i] = (int64_t)ref_emb_idx.data[i];
        if ((int64_t)i == at) {
            v64[i] = bad;
        }
        v32[i] = (int32_t)v64[i];
    }
    lam_shape s = ag_shape(ref_emb_idx.ndim, ref_emb_idx.dims);
    lam_tensor *t = NULL;
    AG_OK(lam_tensor_create_dtype(NULL, dt, &s, &t));
    if (dt == LAM_DTYPE_I64) {
        AG_OK(lam_tensor_write_bytes(t, v64, sizeof v64));
    } else {
        AG_OK(lam_tensor_write_bytes(t, v32, sizeof v32));
    }
    return t;
}

static void embedding_matches(lam_dtype dt) {
    lam_block *b = make("Embedding", "input_dim=7, output_dim=5");
    set_param(b, "weight", &ref_emb_w);
    lam_tensor *x = indices(dt, -1, 0), *y = NULL;
    int was = lam_autograd_record_begin(1);
    lam_status st = lam_block_forward(b, 1, &x, &y);
    lam_autograd_record_end(was);
    AG_OK(st);
    cr_assert_eq(lam_tensor_shape(y)->ndim, 3);
    cr_assert_eq(lam_tensor_shape(y)->dims[2], 5);
    expect_close(y, &ref_emb_y, "output");
    lam_tensor *h = ref_tensor(&ref_emb_hg);
    AG_OK(lam_autograd_backward(y, h));
    /* repeated indices (1 twice, 6 twice) sum their rows' gradients */
    expect_grad(b, "weight", &ref_emb_dw);
    lam_tensor_release(h);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

Test(embedding, int64_indices_match_pytorch) {
    embedding_matches(LAM_DTYPE_I64);
}

Test(embedding, int32_indices_match_pytorch) {
    embedding_matches(LAM_DTYPE_I32);
}

Test(embedding, out_of_range_index_is_named_with_its_position) {
    lam_block *b = make("Embedding", "input_dim=7, output_dim=5");
    lam_tensor *x = indices(LAM_DTYPE_I64, 5, 7), *y = NULL;
    ag_assert_error(lam_block_forward(b, 1, &x, &y), LAM_ERR_INVALID_ARGUMENT,
                    "embedding0: Index out of range, input[1, 2] is 7, input_dim is 7 (valid: 0 to "
                    "6)",
                    "index 7");
    cr_assert_null(y);
    lam_tensor_release(x);
    x = indices(LAM_DTYPE_I32, 1, -3);
    ag_assert_error(lam_block_forward(b, 1, &x, &y), LAM_ERR_INVALID_ARGUMENT,
                    "embedding0: Index out of range, input[0, 1] is -3, input_dim is 7 (valid: 0 "
                    "to 6)",
                    "index -3");
    lam_tensor_release(x);
    /* float indices are refused (Gluon would cast them) */
    x = ref_tensor(&ref_emb_idx);
    ag_assert_error(lam_block_forward(b, 1, &x, &y), LAM_ERR_DTYPE,
                    "embedding0: Dtype mismatch, indices must be int32 or int64, got float32",
                    "float indices");
    lam_tensor_release(x);
    lam_block_release(b);
}

Test(embedding, describe_and_errors) {
    lam_block *b = make("Embedding", "input_dim=10, output_dim=4");
    char *s = lam_block_summary(b);
    cr_assert_str_eq(s, "Embedding(10 -> 4, float32)");
    free(s);
    lam_param *w = lam_block_param(b, "weight");
    cr_assert_str_eq(lam_param_name(w), "embedding0_weight");
    lam_block_release(b);
    create_fails("Embedding", "embedding", "input_dim=0, output_dim=4", LAM_ERR_INVALID_ARGUMENT,
                 ": Invalid argument, input_dim and output_dim must be positive, got input_dim=0, "
                 "output_dim=4");
}

/* ---- LayerNorm ---- */

Test(layernorm, last_axis_matches_pytorch) {
    lam_block *b = make("LayerNorm", "");
    lam_tensor *x0 = ref_tensor(&ref_ln_x); /* infers in_channels = 4 */
    lam_tensor *y0 = infer(b, x0);
    lam_tensor_release(x0);
    lam_tensor_release(y0);
    set_param(b, "gamma", &ref_ln_gamma);
    set_param(b, "beta", &ref_ln_beta);
    lam_tensor *x = NULL;
    lam_tensor *y = run(b, &ref_ln_x, &ref_ln_hg, -1, &x);
    expect_close(y, &ref_ln_y, "output");
    expect_input_grad(x, &ref_ln_dx, "input gradient");
    expect_grad(b, "gamma", &ref_ln_dgamma);
    expect_grad(b, "beta", &ref_ln_dbeta);
    /* no running state: inference gives the training output */
    lam_tensor *y2 = infer(b, x);
    float *v1 = ag_read(y), *v2 = ag_read(y2);
    cr_assert_eq(memcmp(v1, v2, ref_ln_y.count * sizeof *v1), 0);
    free(v1);
    free(v2);
    lam_tensor_release(y2);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

Test(layernorm, middle_axis_with_epsilon_matches_pytorch) {
    lam_block *b = make("LayerNorm", "axis=1, epsilon=1e-3, in_channels=3");
    set_param(b, "gamma", &ref_ln1_gamma);
    set_param(b, "beta", &ref_ln1_beta);
    lam_tensor *x = NULL;
    lam_tensor *y = run(b, &ref_ln_x, &ref_ln_hg, -1, &x);
    expect_close(y, &ref_ln1_y, "output");
    expect_input_grad(x, &ref_ln1_dx, "input gradient");
    expect_grad(b, "gamma", &ref_ln1_dgamma);
    expect_grad(b, "beta", &ref_ln1_dbeta);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

Test(layernorm, describe_and_errors) {
    lam_block *b = make("LayerNorm", "");
    char *s = lam_block_summary(b);
    cr_assert_str_eq(s, "LayerNorm(eps=1e-05, axis=-1, center=True, scale=True, in_channels=None)");
    free(s);
    lam_tensor *x = ref_tensor(&ref_ln_x);
    lam_tensor *y = infer(b, x);
    lam_tensor_release(y);
    y = NULL;
    s = lam_block_summary(b);
    cr_assert_str_eq(s, "LayerNorm(eps=1e-05, axis=-1, center=True, scale=True, in_channels=4)");
    free(s);
    cr_assert_str_eq(lam_param_name(lam_block_param(b, "gamma")), "layernorm0_gamma");
    cr_assert_str_eq(lam_param_name(lam_block_param(b, "beta")), "layernorm0_beta");
    lam_block_release(b);
    b = make("LayerNorm", "axis=3");
    ag_assert_error(lam_block_forward(b, 1, &x, &y), LAM_ERR_SHAPE,
                    ag_fmt("%s: Shape mismatch, axis 3 does not exist in an input of rank 3",
                           lam_block_name(b)),
                    "axis");
    lam_block_release(b);
    lam_tensor_release(x);
    create_fails("LayerNorm", "layernorm", "epsilon=-0.5", LAM_ERR_INVALID_ARGUMENT,
                 ": Invalid argument, epsilon must be finite and >= 0, got -0.5");
    /* no gamma / beta without scale / center */
    b = make("LayerNorm", "center=false, scale=false");
    cr_assert_null(lam_block_param(b, "gamma"));
    cr_assert_null(lam_block_param(b, "beta"));
    lam_block_release(b);
}

/* ---- edges ---- */

Test(batchnorm, trainer_step_leaves_running_stats_to_the_forward) {
    lam_block *b = make("BatchNorm", "in_channels=2");
    set_param(b, "gamma", &ref_bn_gamma);
    set_param(b, "beta", &ref_bn_beta);
    lam_param_list *l = NULL;
    AG_OK(lam_block_collect_params(b, NULL, &l));
    lam_trainer *tr = NULL;
    AG_OK(lam_trainer_create(l, "sgd", "learning_rate=0.5, momentum=0.9, wd=0.1", &tr));
    lam_tensor *x = NULL;
    lam_tensor *y = run(b, &ref_bn_x0, &ref_bn_hg, -1, &x);
    AG_OK(lam_trainer_step(tr, 3));
    /* the step moved gamma and beta but not the (gradient-free) running statistics */
    expect_param(b, "running_mean", &ref_bn_rm0);
    expect_param(b, "running_var", &ref_bn_rv0);
    lam_tensor *g = NULL;
    AG_OK(lam_param_data(lam_block_param(b, "gamma"), &g));
    float *v = ag_read(g);
    cr_assert(v[0] != ref_bn_gamma.data[0], "gamma did not move");
    free(v);
    lam_tensor_release(g);
    lam_trainer_destroy(tr);
    lam_param_list_destroy(l);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

/* Sample 0 gets a NaN: every other sample's output must be what it is without it. */
static void nan_isolated(lam_block *b, lam_shape s) {
    size_t n = ag_numel(&s);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)sin(0.61 * (double)i + 0.2);
    }
    lam_tensor *clean = ag_tensor(s, x, n);
    x[1] = NAN;
    lam_tensor *dirty = ag_tensor(s, x, n);
    lam_seed(7); /* a stochastic layer draws the same numbers for both */
    lam_tensor *ya = infer(b, clean);
    lam_seed(7);
    lam_tensor *yb = infer(b, dirty);
    float *a = ag_read(ya), *c = ag_read(yb);
    size_t total = (size_t)lam_tensor_numel(ya), per = total / (size_t)s.dims[0];
    cr_assert(isnan(c[1]) || isnan(c[0]), "%s: the NaN vanished", lam_block_name(b));
    for (size_t i = per; i < total; i++) {
        cr_assert(memcmp(&a[i], &c[i], sizeof a[i]) == 0,
                  "%s: output %zu of sample %zu changed by a NaN in sample 0 (%g vs %g)",
                  lam_block_name(b), i, i / per, (double)a[i], (double)c[i]);
    }
    free(a);
    free(c);
    free(x);
    lam_tensor_release(ya);
    lam_tensor_release(yb);
    lam_tensor_release(clean);
    lam_tensor_release(dirty);
}

Test(layernorm, nan_stays_in_its_sample) {
    lam_block *b = make("LayerNorm", "");
    nan_isolated(b, AG_SHAPE(3, 6));
    lam_block_release(b);
    b = make("LayerNorm", "axis=1");
    nan_isolated(b, AG_SHAPE(3, 4, 5));
    lam_block_release(b);
}

Test(batchnorm, nan_stays_in_its_sample_at_inference) {
    /* (in training a NaN reaches every sample through the batch statistics, as in PyTorch) */
    lam_block *b = make("BatchNorm", "");
    nan_isolated(b, AG_SHAPE(3, 2, 2, 3));
    lam_block_release(b);
}

Test(dropout, nan_stays_in_its_sample_in_training) {
    lam_block *b = make("Dropout", "rate=0.25");
    int mode = lam_autograd_train_mode_begin(1);
    nan_isolated(b, AG_SHAPE(3, 6));
    lam_autograd_train_mode_end(mode);
    lam_block_release(b);
}

/* One training forward of b on ctx right after lam_seed(42) (which restarts its stream). */
static float *dropout_on(lam_block *b, lam_ctx *ctx) {
    lam_seed(42);
    lam_tensor *x = NULL, *y = NULL;
    AG_OK(lam_tensor_full(ctx, &(lam_shape){.ndim = 2, .dims = {33, 31}}, 1.0f, &x));
    int mode = lam_autograd_train_mode_begin(1);
    AG_OK(lam_block_forward(b, 1, &x, &y));
    lam_autograd_train_mode_end(mode);
    float *v = ag_read(y);
    lam_tensor_release(x);
    lam_tensor_release(y);
    return v;
}

Test(dropout, cpu_and_vulkan_draw_the_same_mask) {
    lam_ctx *cpu = NULL, *vk = NULL;
    AG_OK(lam_ctx_get("cpu", &cpu));
    if (lam_ctx_get("vulkan", &vk) != LAM_OK) {
        cr_skip("no Vulkan device: %s", lam_last_error());
    }
    lam_block *b = make("Dropout", "rate=0.4");
    float *a = dropout_on(b, cpu), *c = dropout_on(b, vk);
    size_t zeros = 0;
    for (size_t i = 0; i < 33 * 31; i++) {
        cr_assert(memcmp(&a[i], &c[i], sizeof a[i]) == 0, "element %zu: cpu %g, vulkan %g", i,
                  (double)a[i], (double)c[i]);
        zeros += a[i] == 0.0f;
    }
    cr_assert(zeros > 0 && zeros < 33 * 31, "%zu zeros", zeros);
    free(a);
    free(c);
    lam_block_release(b);
}

Test(embedding, scalar_and_empty_indices) {
    lam_block *b = make("Embedding", "input_dim=7, output_dim=5");
    set_param(b, "weight", &ref_emb_w);
    const int32_t three = 3;
    lam_tensor *x = NULL, *y = NULL;
    lam_shape scalar = AG_SCALAR_SHAPE();
    AG_OK(lam_tensor_create_dtype(NULL, LAM_DTYPE_I32, &scalar, &x));
    AG_OK(lam_tensor_write_bytes(x, &three, sizeof three));
    y = infer(b, x);
    cr_assert_eq(lam_tensor_shape(y)->ndim, 1);
    float *v = ag_read(y);
    cr_assert_eq(memcmp(v, ref_emb_w.data + 15, 5 * sizeof *v), 0, "row 3");
    free(v);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_shape empty = AG_SHAPE(0, 3);
    AG_OK(lam_tensor_create_dtype(NULL, LAM_DTYPE_I64, &empty, &x));
    y = infer(b, x);
    const lam_shape *ys = lam_tensor_shape(y);
    cr_assert(ys->ndim == 3 && ys->dims[0] == 0 && ys->dims[1] == 3 && ys->dims[2] == 5);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

Test(batchnorm, deferred_init_at_a_training_forward) {
    /* the first forward, recorded, infers in_channels, initializes and trains at once; the
     * running statistics do not depend on gamma and beta */
    lam_block *b = make("BatchNorm", "");
    for (int k = 0; k < 3; k++) {
        lam_tensor *x = NULL;
        lam_tensor *y = run(b, bn_xs[k], &ref_bn_hg, -1, &x);
        expect_param(b, "running_mean", bn_rms[k]);
        expect_param(b, "running_var", bn_rvs[k]);
        lam_tensor_release(x);
        lam_tensor_release(y);
    }
    lam_block_release(b);
}

/* Each float layer refuses integer input with its name and both dtypes. */
Test(layernorm, integer_input_refused_by_every_float_layer) {
    static const char *const types[] = {"BatchNorm", "Dropout", "LayerNorm"};
    lam_shape s = AG_SHAPE(2, 3);
    lam_tensor *x = NULL, *y = NULL;
    AG_OK(lam_tensor_create_dtype(NULL, LAM_DTYPE_I32, &s, &x));
    for (int i = 0; i < 3; i++) {
        lam_block *b = make(types[i], "");
        ag_assert_error(
            lam_block_forward(b, 1, &x, &y), LAM_ERR_DTYPE,
            ag_fmt("%s: Dtype mismatch, input must be float32, got int32", lam_block_name(b)),
            types[i]);
        cr_assert_null(y);
        lam_block_release(b);
    }
    lam_tensor_release(x);
}
