/*
 * The trainer's breadth against PyTorch (ref/train2_ref.h, made by ref/gen_train2_ref.py):
 * AdamW, RMSProp (plain, and centered with momentum and weight decay), Adam with clipping by
 * global norm (the norm of each step too), AdamW under a warm-up + cosine schedule, the four
 * schedules alone, clipping alone, and softmax cross-entropy with int32/int64 labels (loss and
 * gradient). Also: typed options (exact learning rates, struct_size, ranges), checkpoint and
 * resume continuing bit for bit, and the state file's errors.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include "ag_util.h"
#include "ref/train2_ref.h"

#include <unistd.h>

TestSuite(trainer2, .fini = ag_fini);

#define T2_RTOL 2e-5
#define T2_ATOL 2e-6

static lam_block *new_layer(const char *type, const char *attrs) {
    lam_block *b = NULL;
    AG_OK(lam_layer_create(type, attrs, &b));
    return b;
}

static const char *const keys[4] = {"0.weight", "0.bias", "1.weight", "1.bias"};

/* The reference MLP 6 -> 16 (tanh) -> 4 at its starting weights, and its parameter list. */
static lam_block *mlp(lam_param_list **params) {
    lam_block *net = NULL;
    AG_OK(lam_sequential_create(&net));
    lam_block *a = new_layer("Dense", "units=16, activation=tanh, in_units=6");
    lam_block *b = new_layer("Dense", "units=4, in_units=16");
    AG_OK(lam_sequential_add(net, a));
    AG_OK(lam_sequential_add(net, b));
    lam_block_release(a);
    lam_block_release(b);
    AG_OK(lam_block_initialize(net, NULL, NULL, 0));
    AG_OK(lam_block_collect_params(net, NULL, params));
    const ag_ref_array *init[4] = {&t2_w1, &t2_b1, &t2_w2, &t2_b2};
    for (int i = 0; i < 4; i++) {
        lam_tensor *t =
            ag_tensor(ag_shape(init[i]->ndim, init[i]->dims), init[i]->data, init[i]->count);
        AG_OK(lam_param_set_data(lam_param_list_find(*params, keys[i]), t));
        lam_tensor_release(t);
    }
    return net;
}

/* Forward, summed loss... backward; returns the mean loss. */
static double forward_backward(lam_block *net, lam_dtype label_dtype) {
    lam_tensor *x = ag_tensor(AG_SHAPE(T2_BATCH, 6), t2_x.data, t2_x.count), *y = NULL;
    if (label_dtype == LAM_DTYPE_F32) {
        y = ag_tensor(AG_SHAPE(T2_BATCH), t2_y.data, t2_y.count);
    } else {
        int32_t y32[T2_BATCH];
        for (int i = 0; i < T2_BATCH; i++) {
            y32[i] = (int32_t)t2_y.data[i];
        }
        lam_shape s = AG_SHAPE(T2_BATCH);
        AG_OK(lam_tensor_create_dtype(NULL, LAM_DTYPE_I32, &s, &y));
        AG_OK(lam_tensor_write_bytes(y, y32, sizeof y32));
    }
    lam_tensor *out = NULL, *loss = NULL;
    lam_autograd_set_recording(1);
    AG_OK(lam_block_call(net, x, &out));
    AG_OK(lam_loss_softmax_cross_entropy(out, y, &loss));
    lam_autograd_set_recording(0);
    AG_OK(lam_autograd_backward(loss, NULL));
    float *lv = ag_read(loss);
    double mean = 0;
    for (int i = 0; i < T2_BATCH; i++) {
        mean += lv[i];
    }
    free(lv);
    lam_tensor_release(out);
    lam_tensor_release(loss);
    lam_tensor_release(x);
    lam_tensor_release(y);
    return mean / T2_BATCH;
}

typedef struct run {
    const char *name;
    const ag_ref_array *loss, *w[4], *norm, *lr;
} run;

#define RUN_REFS(p)                                                                                \
    .name = #p, .loss = &t2_##p##_loss,                                                            \
    .w = {&t2_##p##_w1, &t2_##p##_b1, &t2_##p##_w2, &t2_##p##_b2}

static void check_run(lam_trainer *t, lam_block *net, lam_param_list *params, const run *r) {
    for (int step = 0; step < T2_STEPS; step++) {
        if (r->lr != NULL) {
            double lr = lam_trainer_learning_rate(t);
            cr_assert(ag_close(lr, r->lr->data[step], 1e-6, 0), "%s: lr of step %d is %.9g, %.9g",
                      r->name, step, lr, (double)r->lr->data[step]);
        }
        double mean = forward_backward(net, step % 2 ? LAM_DTYPE_I32 : LAM_DTYPE_F32);
        cr_assert(ag_close(mean, r->loss->data[step], T2_RTOL, T2_ATOL),
                  "%s: loss of step %d is %.9g, PyTorch %.9g", r->name, step + 1, mean,
                  (double)r->loss->data[step]);
        AG_OK(lam_trainer_step(t, T2_BATCH));
        cr_assert_eq(lam_trainer_step_count(t), step + 1);
        if (r->norm != NULL) {
            float norm = 0;
            AG_OK(lam_trainer_last_grad_norm(t, &norm));
            cr_assert(ag_close(norm, r->norm->data[step], T2_RTOL, T2_ATOL),
                      "%s: norm of step %d is %.9g, PyTorch %.9g", r->name, step + 1, (double)norm,
                      (double)r->norm->data[step]);
        }
    }
    for (int i = 0; i < 4; i++) {
        lam_tensor *d = NULL;
        AG_OK(lam_param_data(lam_param_list_find(params, keys[i]), &d));
        ag_assert_values(d, lam_tensor_shape(d), r->w[i]->data, r->w[i]->count, T2_RTOL, T2_ATOL,
                         ag_fmt("%s: final %s", r->name, keys[i]));
        lam_tensor_release(d);
    }
}

static void finish(lam_trainer *t, lam_param_list *params, lam_block *net) {
    lam_trainer_destroy(t);
    lam_param_list_destroy(params);
    lam_block_release(net);
    ag_assert_released();
}

Test(trainer2, adamw_matches_pytorch) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_adam_options o = LAM_ADAMW_OPTIONS_INIT;
    o.learning_rate = 0.01;
    o.weight_decay = 0.1;
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create_adamw(params, &o, &t));
    check_run(t, net, params, &(run){RUN_REFS(adamw)});
    finish(t, params, net);
}

Test(trainer2, adamw_string_form_matches_pytorch) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create(params, "adamw", "learning_rate=0.01, wd=0.1", &t));
    check_run(t, net, params, &(run){RUN_REFS(adamw)});
    finish(t, params, net);
}

Test(trainer2, rmsprop_matches_pytorch) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create_rmsprop(params, NULL, &t)); /* PyTorch's defaults, lr 0.01 */
    check_run(t, net, params, &(run){RUN_REFS(rmsprop)});
    finish(t, params, net);
}

Test(trainer2, rmsprop_centered_momentum_matches_pytorch) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create(params, "rmsprop",
                             "learning_rate=0.01, alpha=0.9, epsilon=1e-6, wd=0.01, momentum=0.5, "
                             "centered=1",
                             &t));
    check_run(t, net, params, &(run){RUN_REFS(rmsprop_cm)});
    finish(t, params, net);
}

Test(trainer2, adam_clipped_by_global_norm_matches_pytorch) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_adam_options o = LAM_ADAM_OPTIONS_INIT;
    o.learning_rate = 0.01;
    o.clip_global_norm = 0.05;
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create_adam(params, &o, &t));
    float norm;
    ag_assert_error(lam_trainer_last_grad_norm(t, &norm), LAM_ERR_STATE,
                    "lam_trainer_last_grad_norm: No norm, no step with clip_global_norm ran yet",
                    "last norm before a step");
    check_run(t, net, params, &(run){RUN_REFS(adam_clip), .norm = &t2_adam_clip_norm});
    finish(t, params, net);
}

Test(trainer2, adamw_with_warmup_cosine_schedule_matches_pytorch) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_adam_options o = LAM_ADAMW_OPTIONS_INIT;
    o.learning_rate = 0.02;
    o.weight_decay = 0.05;
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create_adamw(params, &o, &t));
    lam_lr_schedule s = LAM_LR_SCHEDULE_INIT;
    s.kind = LAM_LR_COSINE;
    s.t_max = 3;
    s.eta_min = 0.001;
    s.warmup_steps = 2;
    s.warmup_start_factor = 0.25;
    AG_OK(lam_trainer_set_schedule(t, &s));
    check_run(t, net, params, &(run){RUN_REFS(adamw_sched), .lr = &t2_adamw_sched_lr});
    finish(t, params, net);
}

/* ---- schedules alone ---- */

static void check_schedule(const lam_lr_schedule *s, const ag_ref_array *want, const char *what) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_sgd_options o = LAM_SGD_OPTIONS_INIT;
    o.learning_rate = 0.1;
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create_sgd(params, &o, &t));
    AG_OK(lam_trainer_set_schedule(t, s));
    forward_backward(net, LAM_DTYPE_F32);
    for (int i = 0; i < T2_SCHED_STEPS; i++) {
        double lr = lam_trainer_learning_rate(t);
        cr_assert(ag_close(lr, want->data[i], 1e-6, 1e-9), "%s: step %d lr %.9g, PyTorch %.9g",
                  what, i, lr, (double)want->data[i]);
        AG_OK(lam_trainer_step(t, 1));
    }
    /* The base rate stays what was given; detaching the schedule returns to it. */
    AG_OK(lam_trainer_set_schedule(t, NULL));
    cr_assert_eq(lam_trainer_learning_rate(t), 0.1);
    finish(t, params, net);
}

Test(trainer2, step_schedule_matches_pytorch) {
    lam_lr_schedule s = LAM_LR_SCHEDULE_INIT;
    s.kind = LAM_LR_STEP;
    s.step_size = 3;
    s.gamma = 0.5;
    check_schedule(&s, &t2_sched_step, "StepLR");
}

Test(trainer2, cosine_schedule_matches_pytorch) {
    lam_lr_schedule s = LAM_LR_SCHEDULE_INIT;
    s.kind = LAM_LR_COSINE;
    s.t_max = 8;
    s.eta_min = 0.001;
    check_schedule(&s, &t2_sched_cosine, "CosineAnnealingLR");
}

Test(trainer2, warmup_then_step_matches_pytorch) {
    lam_lr_schedule s = LAM_LR_SCHEDULE_INIT;
    s.kind = LAM_LR_STEP;
    s.step_size = 3;
    s.gamma = 0.5;
    s.warmup_steps = 4;
    s.warmup_start_factor = 0.2;
    check_schedule(&s, &t2_sched_warm_step, "LinearLR then StepLR");
}

Test(trainer2, warmup_then_cosine_matches_pytorch) {
    lam_lr_schedule s = LAM_LR_SCHEDULE_INIT;
    s.kind = LAM_LR_COSINE;
    s.t_max = 6;
    s.warmup_steps = 4;
    s.warmup_start_factor = 0.2;
    check_schedule(&s, &t2_sched_warm_cos, "LinearLR then CosineAnnealingLR");
}

Test(trainer2, schedule_errors_name_the_field) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create_sgd(params, NULL, &t));
    lam_lr_schedule s = LAM_LR_SCHEDULE_INIT;
    s.kind = LAM_LR_STEP;
    s.step_size = 0;
    ag_assert_error(lam_trainer_set_schedule(t, &s), LAM_ERR_INVALID_ARGUMENT,
                    "lam_trainer_set_schedule: Invalid schedule, step_size must be >= 1",
                    "step_size 0");
    s = (lam_lr_schedule)LAM_LR_SCHEDULE_INIT;
    s.warmup_steps = 3;
    s.warmup_start_factor = 0.0;
    ag_assert_error(lam_trainer_set_schedule(t, &s), LAM_ERR_INVALID_ARGUMENT,
                    "lam_trainer_set_schedule: Invalid schedule, warmup_start_factor must be in "
                    "(0, 1]",
                    "start factor 0");
    s = (lam_lr_schedule)LAM_LR_SCHEDULE_INIT;
    s.kind = (lam_lr_schedule_kind)7;
    ag_assert_error(lam_trainer_set_schedule(t, &s), LAM_ERR_INVALID_ARGUMENT,
                    "lam_trainer_set_schedule: Invalid schedule kind 7, expected LAM_LR_CONSTANT, "
                    "LAM_LR_STEP or LAM_LR_COSINE",
                    "kind 7");
    s = (lam_lr_schedule)LAM_LR_SCHEDULE_INIT;
    s.struct_size = 8;
    ag_assert_error(lam_trainer_set_schedule(t, &s), LAM_ERR_INVALID_ARGUMENT,
                    ag_fmt("lam_trainer_set_schedule: Invalid argument, struct_size is 8, "
                           "expected %zu (start from the _INIT macro)",
                           sizeof(lam_lr_schedule)),
                    "struct_size 8");
    cr_assert_eq(lam_trainer_learning_rate(t), 0.01, "a refused schedule changes nothing");
    finish(t, params, net);
}

/* ---- clipping alone ---- */

Test(trainer2, clip_global_norm_matches_pytorch) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    forward_backward(net, LAM_DTYPE_I32); /* the summed loss's gradients */
    float norm = 0;
    AG_OK(lam_param_list_clip_global_norm(params, 0.5, &norm));
    cr_assert(ag_close(norm, t2_clip_norm.data[0], T2_RTOL, T2_ATOL), "norm %.9g, PyTorch %.9g",
              (double)norm, (double)t2_clip_norm.data[0]);
    const ag_ref_array *want[4] = {&t2_clip_gw1, &t2_clip_gb1, &t2_clip_gw2, &t2_clip_gb2};
    for (int i = 0; i < 4; i++) {
        lam_tensor *g = NULL;
        AG_OK(lam_param_grad(lam_param_list_find(params, keys[i]), &g));
        ag_assert_values(g, lam_tensor_shape(g), want[i]->data, want[i]->count, T2_RTOL, T2_ATOL,
                         ag_fmt("clipped gradient of %s", keys[i]));
        lam_tensor_release(g);
    }
    /* Below the limit nothing changes: the norm is now 0.5 (to float rounding). */
    AG_OK(lam_param_list_clip_global_norm(params, 10.0, &norm));
    cr_assert(ag_close(norm, 0.5, 1e-5, 0), "norm after clipping %.9g", (double)norm);
    ag_assert_error(lam_param_list_clip_global_norm(params, 0.0, NULL), LAM_ERR_INVALID_ARGUMENT,
                    "lam_param_list_clip_global_norm: Invalid argument, max_norm must be > 0",
                    "max_norm 0");
    finish(NULL, params, net);
}

/* ---- cross-entropy with integer labels, on the device ---- */

static lam_tensor *labels_of(lam_dtype dt, const float *v, int n) {
    lam_tensor *t = NULL;
    lam_shape s = AG_SHAPE(n);
    AG_OK(lam_tensor_create_dtype(NULL, dt, &s, &t));
    if (dt == LAM_DTYPE_I32) {
        int32_t b[16];
        for (int i = 0; i < n; i++) {
            b[i] = (int32_t)v[i];
        }
        AG_OK(lam_tensor_write_bytes(t, b, (size_t)n * sizeof *b));
    } else {
        int64_t b[16];
        for (int i = 0; i < n; i++) {
            b[i] = (int64_t)v[i];
        }
        AG_OK(lam_tensor_write_bytes(t, b, (size_t)n * sizeof *b));
    }
    return t;
}

static void check_ce(lam_dtype dt) {
    lam_tensor *logits = ag_tensor(AG_SHAPE(5, 7), t2_ce_logits.data, t2_ce_logits.count);
    lam_tensor *labels = labels_of(dt, t2_ce_labels.data, 5), *loss = NULL, *g = NULL;
    lam_tensor *head = ag_tensor(AG_SHAPE(5), t2_ce_weights.data, 5);
    AG_OK(lam_tensor_attach_grad(logits));
    lam_autograd_set_recording(1);
    AG_OK(lam_loss_softmax_cross_entropy(logits, labels, &loss));
    lam_autograd_set_recording(0);
    ag_assert_values(loss, &(lam_shape){.ndim = 1, .dims = {5}}, t2_ce_loss.data, 5, 1e-5, 1e-6,
                     "cross-entropy per sample");
    AG_OK(lam_autograd_backward(loss, head));
    AG_OK(lam_tensor_grad(logits, &g));
    ag_assert_values(g, lam_tensor_shape(logits), t2_ce_grad.data, t2_ce_grad.count, 1e-5, 1e-6,
                     "d loss / d logits");
    lam_tensor_release(g);
    lam_tensor_release(loss);
    lam_tensor_release(head);
    lam_tensor_release(labels);
    lam_tensor_release(logits);
    ag_assert_released();
}

Test(trainer2, cross_entropy_int32_labels_matches_pytorch) {
    check_ce(LAM_DTYPE_I32);
}

Test(trainer2, cross_entropy_int64_labels_matches_pytorch) {
    check_ce(LAM_DTYPE_I64);
}

Test(trainer2, cross_entropy_probability_targets_match_pytorch) {
    lam_tensor *logits = ag_tensor(AG_SHAPE(5, 7), t2_ce_logits.data, t2_ce_logits.count);
    lam_tensor *probs = ag_tensor(AG_SHAPE(5, 7), t2_ce_probs.data, t2_ce_probs.count);
    lam_tensor *head = ag_tensor(AG_SHAPE(5), t2_ce_weights.data, 5), *loss = NULL, *g = NULL;
    AG_OK(lam_tensor_attach_grad(logits));
    lam_autograd_set_recording(1);
    AG_OK(lam_loss_softmax_cross_entropy(logits, probs, &loss));
    lam_autograd_set_recording(0);
    ag_assert_values(loss, &(lam_shape){.ndim = 1, .dims = {5}}, t2_ce_soft_loss.data, 5, 1e-5,
                     1e-6, "cross-entropy with probabilities");
    AG_OK(lam_autograd_backward(loss, head));
    AG_OK(lam_tensor_grad(logits, &g));
    ag_assert_values(g, lam_tensor_shape(logits), t2_ce_soft_grad.data, t2_ce_soft_grad.count, 1e-5,
                     1e-6, "d loss / d logits (probabilities)");
    lam_tensor *bad = ag_tensor(AG_SHAPE(5, 6), t2_ce_probs.data, 30), *out = NULL;
    ag_assert_error(lam_loss_softmax_cross_entropy(logits, bad, &out), LAM_ERR_SHAPE,
                    "softmax_cross_entropy: Shape mismatch, logits (5, 7) and labels (5, 6), "
                    "expected (batch, classes) and (batch,) or (batch, classes)",
                    "targets (5, 6)");
    lam_tensor *all[] = {logits, probs, head, loss, g, bad};
    for (int i = 0; i < 6; i++) {
        lam_tensor_release(all[i]);
    }
    ag_assert_released();
}

/*
 * Dense targets whose rows do not sum to 1 (S = 3 and S = 0.5): the gradient is
 * g_i (S_i softmax(z)_i - T_i), worked by hand. Row 0: z = (0, 0), softmax (1/2, 1/2),
 * T = (2, 1): loss 3 ln 2, gradient (3/2 - 2, 3/2 - 1) = (-1/2, 1/2). Row 1: z = (ln 3, 0),
 * softmax (3/4, 1/4), T = (0, 1/2): loss -(1/2) ln(1/4) = ln 2, gradient (3/8, 1/8 - 1/2) =
 * (3/8, -3/8), times the head's 2.
 */
Test(trainer2, cross_entropy_unnormalized_targets_by_hand) {
    const float z[4] = {0.0f, 0.0f, logf(3.0f), 0.0f}, t[4] = {2.0f, 1.0f, 0.0f, 0.5f};
    const float h[2] = {1.0f, 2.0f};
    lam_tensor *logits = ag_tensor(AG_SHAPE(2, 2), z, 4),
               *targets = ag_tensor(AG_SHAPE(2, 2), t, 4);
    lam_tensor *head = ag_tensor(AG_SHAPE(2), h, 2), *loss = NULL, *g = NULL;
    AG_OK(lam_tensor_attach_grad(logits));
    lam_autograd_set_recording(1);
    AG_OK(lam_loss_softmax_cross_entropy(logits, targets, &loss));
    lam_autograd_set_recording(0);
    const float want_loss[2] = {3.0f * logf(2.0f), logf(2.0f)};
    ag_assert_values(loss, &(lam_shape){.ndim = 1, .dims = {2}}, want_loss, 2, 1e-5, 1e-6,
                     "cross-entropy with unnormalized targets");
    AG_OK(lam_autograd_backward(loss, head));
    AG_OK(lam_tensor_grad(logits, &g));
    const float want_grad[4] = {-0.5f, 0.5f, 0.75f, -0.75f};
    ag_assert_values(g, lam_tensor_shape(logits), want_grad, 4, 1e-5, 1e-6,
                     "d loss / d logits (unnormalized targets)");
    lam_tensor *all[] = {logits, targets, head, loss, g};
    for (int i = 0; i < 5; i++) {
        lam_tensor_release(all[i]);
    }
    ag_assert_released();
}

Test(trainer2, cross_entropy_out_of_range_label_is_named) {
    lam_tensor *logits = ag_tensor(AG_SHAPE(5, 7), t2_ce_logits.data, t2_ce_logits.count);
    const float bad[5] = {1, 2, 7, 0, 3};
    lam_tensor *labels = labels_of(LAM_DTYPE_I64, bad, 5), *loss = NULL;
    lam_status st = lam_loss_softmax_cross_entropy(logits, labels, &loss);
    if (st == LAM_OK) { /* an asynchronous backend reports it when the result is read */
        float v[5];
        st = lam_tensor_read(loss, v, 5);
        lam_tensor_release(loss);
    }
    cr_assert_eq(st, LAM_ERR_INVALID_ARGUMENT, "%s", lam_last_error());
    /* synchronous backends: named by the loss; asynchronous ones: by the backend's check */
    cr_assert(strcmp(lam_last_error(), "softmax_cross_entropy: Invalid label, labels[2] is 7, "
                                       "expected an integer in [0, 7)") == 0 ||
                  strstr(lam_last_error(), "position 2 is 7, outside [0, 7)") != NULL,
              "message: %s", lam_last_error());
    lam_tensor_release(labels);
    lam_tensor_release(logits);
    ag_assert_released();
}

/* ---- typed options ---- */

Test(trainer2, typed_learning_rate_is_kept_exactly) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_sgd_options o = LAM_SGD_OPTIONS_INIT;
    o.learning_rate = 0.123456789;
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create_sgd(params, &o, &t));
    cr_assert_eq(lam_trainer_learning_rate(t), 0.123456789, "%.17g", lam_trainer_learning_rate(t));
    lam_trainer_destroy(t);
    AG_OK(lam_trainer_create(params, "sgd", "learning_rate=0.123456789", &t));
    cr_assert_eq(lam_trainer_learning_rate(t), 0.123456789, "string form: %.17g",
                 lam_trainer_learning_rate(t));
    lam_trainer_set_learning_rate(t, 1e-7 / 3);
    cr_assert_eq(lam_trainer_learning_rate(t), 1e-7 / 3);
    lam_trainer_destroy(t);
    /* defaults: PyTorch's */
    AG_OK(lam_trainer_create_adam(params, NULL, &t));
    cr_assert_eq(lam_trainer_learning_rate(t), 0.001);
    lam_trainer_destroy(t);
    AG_OK(lam_trainer_create_rmsprop(params, NULL, &t));
    cr_assert_eq(lam_trainer_learning_rate(t), 0.01);
    finish(t, params, net);
}

Test(trainer2, typed_option_errors_name_the_field) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_trainer *t = (lam_trainer *)(void *)&params;
    lam_sgd_options o = LAM_SGD_OPTIONS_INIT;
    o.momentum = 1.0;
    ag_assert_error(lam_trainer_create_sgd(params, &o, &t), LAM_ERR_INVALID_ARGUMENT,
                    "lam_trainer_create_sgd: sgd: Invalid value for 'momentum', got 1",
                    "momentum 1");
    cr_assert_null(t);
    lam_adam_options a = LAM_ADAMW_OPTIONS_INIT;
    a.learning_rate = 0.0;
    ag_assert_error(lam_trainer_create_adamw(params, &a, &t), LAM_ERR_INVALID_ARGUMENT,
                    "lam_trainer_create_adamw: adamw: Invalid value for 'learning_rate', got 0",
                    "lr 0");
    a = (lam_adam_options)LAM_ADAM_OPTIONS_INIT;
    a.weight_decay = -1;
    ag_assert_error(lam_trainer_create_adam(params, &a, &t), LAM_ERR_INVALID_ARGUMENT,
                    "lam_trainer_create_adam: adam: Invalid value for 'weight_decay', got -1",
                    "wd -1");
    a = (lam_adam_options)LAM_ADAM_OPTIONS_INIT;
    a.struct_size = (uint32_t)sizeof a + 8;
    ag_assert_error(lam_trainer_create_adam(params, &a, &t), LAM_ERR_INVALID_ARGUMENT,
                    ag_fmt("lam_trainer_create_adam: Invalid argument, struct_size is %zu, "
                           "expected %zu (start from the _INIT macro)",
                           sizeof a + 8, sizeof a),
                    "struct_size");
    lam_rmsprop_options r = LAM_RMSPROP_OPTIONS_INIT;
    r.centered = 2;
    ag_assert_error(lam_trainer_create_rmsprop(params, &r, &t), LAM_ERR_INVALID_ARGUMENT,
                    "lam_trainer_create_rmsprop: rmsprop: Invalid value for 'centered', got 2, "
                    "expected 0 or 1",
                    "centered 2");
    ag_assert_error(
        lam_trainer_create(params, "rmsprop", "centered=0.5", &t), LAM_ERR_INVALID_ARGUMENT,
        "rmsprop: Invalid value for 'centered', got 0.5, expected 0 or 1", "centered 0.5");
    ag_assert_error(lam_trainer_create(params, "adamw", "momentum=0.9", &t),
                    LAM_ERR_INVALID_ARGUMENT,
                    "adamw: Unknown option 'momentum', valid options: learning_rate, beta1, "
                    "beta2, epsilon, wd, clip_global_norm",
                    "adamw momentum");
    finish(NULL, params, net);
}

/* ---- checkpoint and resume ---- */

static char dir[64];

static const char *tmp_path(const char *name) {
    if (dir[0] == '\0') {
        strcpy(dir, "/tmp/lamina-trainer2-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
    }
    static char bufs[4][128]; /* not ag_fmt's buffer: expected messages are built from these */
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static void cleanup_dir(void) {
    char p[128];
    const char *names[] = {"params.safetensors", "state.safetensors", "other.safetensors"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    dir[0] = '\0';
}

typedef lam_status (*make_fn)(lam_param_list *params, lam_trainer **t);

static lam_status make_adamw(lam_param_list *params, lam_trainer **t) {
    lam_adam_options o = LAM_ADAMW_OPTIONS_INIT;
    o.learning_rate = 0.02;
    o.clip_global_norm = 0.1;
    lam_status st = lam_trainer_create_adamw(params, &o, t);
    lam_lr_schedule s = LAM_LR_SCHEDULE_INIT;
    s.kind = LAM_LR_COSINE;
    s.t_max = 5;
    s.warmup_steps = 2;
    return st == LAM_OK ? lam_trainer_set_schedule(*t, &s) : st;
}

static lam_status make_rmsprop(lam_param_list *params, lam_trainer **t) {
    return lam_trainer_create(params, "rmsprop", "momentum=0.3, centered=1, wd=0.01", t);
}

static lam_status make_sgd(lam_param_list *params, lam_trainer **t) {
    return lam_trainer_create(params, "sgd", "learning_rate=0.1, momentum=0.9", t);
}

static void read_params(lam_param_list *params, float *out) {
    size_t at = 0;
    for (int i = 0; i < 4; i++) {
        lam_tensor *d = NULL;
        AG_OK(lam_param_data(lam_param_list_find(params, keys[i]), &d));
        size_t n = (size_t)lam_tensor_numel(d);
        AG_OK(lam_tensor_read(d, out + at, n));
        at += n;
        lam_tensor_release(d);
    }
}

#define N_PARAMS (16 * 6 + 16 + 4 * 16 + 4)

static void resume_is_bit_identical(make_fn make, const char *what) {
    enum { N = 8 };
    float straight[N_PARAMS], resumed[N_PARAMS];
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_trainer *t = NULL;
    AG_OK(make(params, &t));
    for (int i = 0; i < N; i++) {
        forward_backward(net, LAM_DTYPE_I32);
        AG_OK(lam_trainer_step(t, T2_BATCH));
        if (i == N / 2 - 1) {
            AG_OK(lam_block_save_parameters(net, tmp_path("params.safetensors")));
            AG_OK(lam_trainer_save(t, tmp_path("state.safetensors")));
        }
    }
    read_params(params, straight);
    finish(t, params, net);

    net = mlp(&params); /* a fresh model and trainer: the starting weights again */
    AG_OK(make(params, &t));
    lam_load_options lo = LAM_LOAD_OPTIONS_INIT;
    AG_OK(lam_block_load_parameters(net, tmp_path("params.safetensors"), &lo));
    AG_OK(lam_trainer_load(t, tmp_path("state.safetensors")));
    cr_assert_eq(lam_trainer_step_count(t), N / 2);
    for (int i = N / 2; i < N; i++) {
        forward_backward(net, LAM_DTYPE_I32);
        AG_OK(lam_trainer_step(t, T2_BATCH));
    }
    read_params(params, resumed);
    cr_assert(memcmp(straight, resumed, sizeof straight) == 0,
              "%s: resumed training differs from straight training", what);
    finish(t, params, net);
    cleanup_dir();
}

Test(trainer2, adamw_schedule_clip_resume_is_bit_identical) {
    resume_is_bit_identical(make_adamw, "adamw");
}

Test(trainer2, rmsprop_centered_momentum_resume_is_bit_identical) {
    resume_is_bit_identical(make_rmsprop, "rmsprop");
}

Test(trainer2, sgd_momentum_resume_is_bit_identical) {
    resume_is_bit_identical(make_sgd, "sgd");
}

Test(trainer2, failed_loads_change_nothing) {
    lam_param_list *params = NULL;
    lam_block *net = mlp(&params);
    lam_trainer *t = NULL, *other = NULL;
    AG_OK(make_adamw(params, &t));
    forward_backward(net, LAM_DTYPE_I32);
    AG_OK(lam_trainer_step(t, T2_BATCH));
    AG_OK(lam_trainer_save(t, tmp_path("state.safetensors")));
    /* an SGD trainer cannot take Adam state */
    AG_OK(make_sgd(params, &other));
    ag_assert_error(lam_trainer_load(other, tmp_path("state.safetensors")),
                    LAM_ERR_INVALID_ARGUMENT,
                    ag_fmt("loading '%s': Optimizer mismatch, the file holds adamw state, the "
                           "trainer is sgd",
                           tmp_path("state.safetensors")),
                    "sgd <- adamw");
    cr_assert_eq(lam_trainer_step_count(other), 0);
    lam_trainer_destroy(other);
    /* a parameter file is not a trainer state */
    AG_OK(lam_block_save_parameters(net, tmp_path("params.safetensors")));
    AG_OK(make_adamw(params, &other));
    ag_assert_error(lam_trainer_load(other, tmp_path("params.safetensors")), LAM_ERR_FORMAT,
                    ag_fmt("loading '%s': Not a trainer state, the metadata lacks lamina.kind "
                           "\"trainer\", lamina.optimizer, lamina.step or lamina.learning_rate",
                           tmp_path("params.safetensors")),
                    "parameters file");
    lam_trainer_destroy(other);
    /* a trainer over other parameters: an unexpected tensor */
    lam_param_list *sub = NULL;
    AG_OK(lam_block_collect_params(net, ".*weight", &sub)); /* 0.weight, 1.weight */
    lam_adam_options o = LAM_ADAMW_OPTIONS_INIT;
    AG_OK(lam_trainer_create_adamw(sub, &o, &other));
    ag_assert_error(lam_trainer_load(other, tmp_path("state.safetensors")),
                    LAM_ERR_INVALID_ARGUMENT,
                    ag_fmt("loading '%s': Unexpected tensor '0.bias.exp_avg', the trainer has no "
                           "such adamw state",
                           tmp_path("state.safetensors")),
                    "subset");
    cr_assert_eq(lam_trainer_step_count(other), 0);
    cr_assert_eq(lam_trainer_learning_rate(other), 0.001);
    lam_trainer_destroy(other);
    lam_param_list_destroy(sub);
    ag_assert_error(lam_trainer_load(t, tmp_path("missing.safetensors")), LAM_ERR_NOT_FOUND,
                    ag_fmt("loading '%s': Cannot open the file, No such file or directory",
                           tmp_path("missing.safetensors")),
                    "missing file");
    cr_assert_eq(lam_trainer_step_count(t), 1);
    finish(t, params, net);
    cleanup_dir();
}
