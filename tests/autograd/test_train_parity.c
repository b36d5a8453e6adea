/*
 * Training parity with PyTorch: the chapter's MLP 20 -> 256 (relu) -> 10 from fixed weights, on
 * a fixed batch of 8 with softmax cross-entropy, for 5 steps of SGD, SGD with momentum and
 * weight decay, and Adam; the per-step losses and the final weights must match PyTorch's
 * (ref/train_ref.h, made by ref/gen_train_ref.py). Lamina's loss is per sample and
 * lam_trainer_step(8) divides the summed gradient by 8, which is PyTorch's reduction='mean'.
 *
 * Also: the trainer's per-parameter multipliers and grad_req null, worked by hand, and its
 * errors.
 */
#include "ag_util.h"
#include "ref/train_ref.h"

TestSuite(train, .fini = ag_fini);
TestSuite(trainer, .fini = ag_fini);
TestSuite(trainer_error, .fini = ag_fini);

static char poison_byte;
#define POISON_TRAINER ((lam_trainer *)(void *)&poison_byte)

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

static void set_param(lam_param *p, const ag_ref_array *r) {
    cr_assert_not_null(p);
    lam_tensor *t = from_ref(r);
    AG_OK(lam_param_set_data(p, t));
    lam_tensor_release(t);
}

static void assert_param_data(lam_param *p, const ag_ref_array *want, double rtol, double atol,
                              const char *what) {
    lam_tensor *d = NULL;
    AG_OK(lam_param_data(p, &d));
    lam_shape s = ag_shape(want->ndim, want->dims);
    ag_assert_values(d, &s, want->data, want->count, rtol, atol, what);
    lam_tensor_release(d);
}

/* ---- parity with PyTorch -------------------------------------------------------------------- */

typedef struct train_case {
    const char *name;
    const char *optimizer;
    const char *options;
    double lr;
    const ag_ref_array *loss, *w1, *b1, *w2, *b2;
} train_case;

#define TRAIN_REFS(prefix)                                                                         \
    .loss = &tr_##prefix##_loss, .w1 = &tr_##prefix##_w1, .b1 = &tr_##prefix##_b1,                 \
    .w2 = &tr_##prefix##_w2, .b2 = &tr_##prefix##_b2

static const train_case sgd_case = {
    .name = "sgd", .optimizer = "sgd", .options = "learning_rate=0.1", .lr = 0.1, TRAIN_REFS(sgd)};
static const train_case momentum_case = {.name = "sgd momentum",
                                         .optimizer = "sgd",
                                         .options = "learning_rate=0.1, momentum=0.9, wd=0.0001",
                                         .lr = 0.1,
                                         TRAIN_REFS(momentum)};
static const train_case adam_case = {.name = "adam",
                                     .optimizer = "adam",
                                     .options = "learning_rate=0.001",
                                     .lr = 0.001,
                                     TRAIN_REFS(adam)};

static void run_training(const train_case *c, int fused) {
    int was = lam_autograd_set_fused_backward(fused);
    lam_block *net = NULL;
    AG_OK(lam_sequential_create(&net));
    lam_block *hidden = new_layer("Dense", "units=256, activation=relu, in_units=20");
    lam_block *output = new_layer("Dense", "units=10, in_units=256");
    AG_OK(lam_sequential_add(net, hidden));
    AG_OK(lam_sequential_add(net, output));
    lam_block_release(hidden);
    lam_block_release(output);
    AG_OK(lam_block_initialize(net, NULL, NULL, 0));

    lam_param_list *params = NULL;
    AG_OK(lam_block_collect_params(net, NULL, &params));
    cr_assert_eq(lam_param_list_count(params), 4);
    lam_param *w1 = lam_param_list_find(params, "0.weight");
    lam_param *b1 = lam_param_list_find(params, "0.bias");
    lam_param *w2 = lam_param_list_find(params, "1.weight");
    lam_param *b2 = lam_param_list_find(params, "1.bias");
    set_param(w1, &tr_w1);
    set_param(b1, &tr_b1);
    set_param(w2, &tr_w2);
    set_param(b2, &tr_b2);

    lam_trainer *trainer = NULL;
    AG_OK(lam_trainer_create(params, c->optimizer, c->options, &trainer));
    cr_assert_eq(lam_trainer_learning_rate(trainer), c->lr, "%s: learning rate %g", c->name,
                 lam_trainer_learning_rate(trainer));

    lam_tensor *x = from_ref(&tr_x), *y = from_ref(&tr_y);
    for (int step = 0; step < TR_STEPS; step++) {
        lam_tensor *out = NULL, *loss = NULL;
        lam_autograd_set_recording(1);
        AG_OK(lam_block_call(net, x, &out));
        AG_OK(lam_loss_softmax_cross_entropy(out, y, &loss));
        lam_autograd_set_recording(0);
        lam_shape ls = AG_SHAPE(TR_BATCH);
        cr_assert(lam_shape_equal(lam_tensor_shape(loss), &ls), "the loss is not (batch,)");
        float *lv = ag_read(loss);
        double mean = 0.0;
        for (int i = 0; i < TR_BATCH; i++) {
            mean += lv[i];
        }
        mean /= TR_BATCH;
        free(lv);
        double want = c->loss->data[step];
        cr_assert(ag_close(mean, want, TR_RTOL, TR_ATOL),
                  "%s (%s): loss of step %d is %.9g, PyTorch %.9g", c->name,
                  fused ? "fused" : "unfused", step + 1, mean, want);
        AG_OK(lam_autograd_backward(loss, NULL));
        AG_OK(lam_trainer_step(trainer, TR_BATCH));
        lam_tensor_release(loss);
        lam_tensor_release(out);
    }
    assert_param_data(w1, c->w1, TR_RTOL, TR_ATOL, ag_fmt("%s: final 0.weight", c->name));
    assert_param_data(b1, c->b1, TR_RTOL, TR_ATOL, ag_fmt("%s: final 0.bias", c->name));
    assert_param_data(w2, c->w2, TR_RTOL, TR_ATOL, ag_fmt("%s: final 1.weight", c->name));
    assert_param_data(b2, c->b2, TR_RTOL, TR_ATOL, ag_fmt("%s: final 1.bias", c->name));

    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_trainer_destroy(trainer);
    lam_param_list_destroy(params);
    lam_block_release(net);
    lam_autograd_set_fused_backward(was);
    ag_assert_released();
}

Test(train, sgd_matches_pytorch) {
    run_training(&sgd_case, 1);
}

Test(train, sgd_matches_pytorch_unfused) {
    run_training(&sgd_case, 0);
}

Test(train, sgd_momentum_weight_decay_matches_pytorch) {
    run_training(&momentum_case, 1);
}

Test(train, sgd_momentum_weight_decay_matches_pytorch_unfused) {
    run_training(&momentum_case, 0);
}

Test(train, adam_matches_pytorch) {
    run_training(&adam_case, 1);
}

Test(train, adam_matches_pytorch_unfused) {
    run_training(&adam_case, 0);
}

/* ---- the trainer's rules, worked by hand ---------------------------------------------------- */

/*
 * Dense(1, in_units=2) with w = (1, 2), b = 0.5 on x = ((1, 1), (3, -1)), loss = sum(y):
 * grad w = (1 + 3, 1 - 1) = (4, 0), grad b = 2; lam_trainer_step(2) uses g / 2 = (2, 0), 1.
 */
static lam_block *tiny_layer(lam_param **w, lam_param **b) {
    lam_block *d = new_layer("Dense", "units=1, in_units=2");
    AG_OK(lam_block_initialize(d, NULL, NULL, 0));
    *w = lam_block_param(d, "weight");
    *b = lam_block_param(d, "bias");
    const float wv[2] = {1.0f, 2.0f}, bv[1] = {0.5f};
    lam_tensor *t = ag_tensor(AG_SHAPE(1, 2), wv, 2);
    AG_OK(lam_param_set_data(*w, t));
    lam_tensor_release(t);
    t = ag_tensor(AG_SHAPE(1), bv, 1);
    AG_OK(lam_param_set_data(*b, t));
    lam_tensor_release(t);
    return d;
}

static void tiny_step(lam_block *d, lam_trainer *t) {
    const float xv[4] = {1.0f, 1.0f, 3.0f, -1.0f};
    lam_tensor *x = ag_tensor(AG_SHAPE(2, 2), xv, 4), *y = NULL;
    lam_autograd_set_recording(1);
    AG_OK(lam_block_call(d, x, &y));
    lam_autograd_set_recording(0);
    AG_OK(lam_autograd_backward(y, NULL));
    AG_OK(lam_trainer_step(t, 2));
    lam_tensor_release(y);
    lam_tensor_release(x);
}

static void assert_values2(lam_param *p, const float *want, size_t n, const char *what) {
    lam_tensor *d = NULL;
    AG_OK(lam_param_data(p, &d));
    ag_assert_values(d, lam_param_shape(p), want, n, 1e-6, 1e-7, what);
    lam_tensor_release(d);
}

Test(trainer, multipliers_scale_learning_rate_and_weight_decay) {
    lam_param *w, *b;
    lam_block *d = tiny_layer(&w, &b);
    lam_param_list *list = NULL;
    AG_OK(lam_block_collect_params(d, NULL, &list));
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create(list, "sgd", "learning_rate=0.1, wd=0.5", &t));
    lam_param_set_lr_mult(w, 2.0f);
    lam_param_set_wd_mult(b, 0.0f);
    tiny_step(d, t);
    /* w: g = (2, 0) + 0.5 (1, 2) = (2.5, 1), lr 0.2: (1, 2) - (0.5, 0.2) = (0.5, 1.8).
     * b: g = 1 (no decay), lr 0.1: 0.5 - 0.1 = 0.4. */
    const float ww[2] = {0.5f, 1.8f}, bw[1] = {0.4f};
    assert_values2(w, ww, 2, "weight after a step with lr_mult 2");
    assert_values2(b, bw, 1, "bias after a step with wd_mult 0");
    lam_trainer_destroy(t);
    lam_param_list_destroy(list);
    lam_block_release(d);
    ag_assert_released();
}

Test(trainer, skips_grad_req_null_parameters) {
    lam_param *w, *b;
    lam_block *d = tiny_layer(&w, &b);
    AG_OK(lam_param_set_grad_req(b, LAM_GRAD_NULL));
    lam_param_list *list = NULL;
    AG_OK(lam_block_collect_params(d, NULL, &list));
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create(list, "sgd", "learning_rate=0.5", &t));
    tiny_step(d, t);
    const float ww[2] = {0.0f, 2.0f}, bw[1] = {0.5f}; /* (1, 2) - 0.5 (2, 0) */
    assert_values2(w, ww, 2, "weight after a step");
    assert_values2(b, bw, 1, "grad_req null bias after a step");
    lam_trainer_set_learning_rate(t, 0.25);
    cr_assert_eq(lam_trainer_learning_rate(t), 0.25);
    lam_trainer_destroy(t);
    lam_param_list_destroy(list);
    lam_block_release(d);
    ag_assert_released();
}

Test(trainer, defaults_are_pytorchs) {
    lam_param *w, *b;
    lam_block *d = tiny_layer(&w, &b);
    lam_param_list *list = NULL;
    AG_OK(lam_block_collect_params(d, NULL, &list));
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create(list, "sgd", NULL, &t));
    cr_assert_eq(lam_trainer_learning_rate(t), 0.01);
    lam_trainer_destroy(t);
    AG_OK(lam_trainer_create(list, "adam", "", &t));
    cr_assert_eq(lam_trainer_learning_rate(t), 0.001);
    lam_trainer_destroy(t);
    lam_param_list_destroy(list);
    lam_block_release(d);
    ag_assert_released();
}

/* ---- errors --------------------------------------------------------------------------------- */

static void assert_create_error(const char *optimizer, const char *options, const char *msg) {
    lam_param *w, *b;
    lam_block *d = tiny_layer(&w, &b);
    lam_param_list *list = NULL;
    AG_OK(lam_block_collect_params(d, NULL, &list));
    lam_trainer *t = POISON_TRAINER;
    ag_assert_error(lam_trainer_create(list, optimizer, options, &t), LAM_ERR_INVALID_ARGUMENT, msg,
                    ag_fmt("lam_trainer_create(%s, \"%s\")", optimizer, options));
    cr_assert_null(t, "out is not NULL after a failure");
    lam_param_list_destroy(list);
    lam_block_release(d);
}

Test(trainer_error, unknown_optimizer) {
    assert_create_error("adagrad", "",
                        "lam_trainer_create: Unknown optimizer 'adagrad', expected sgd, adam, "
                        "adamw or rmsprop");
    assert_create_error("SGD", "",
                        "lam_trainer_create: Unknown optimizer 'SGD', expected sgd, adam, adamw or "
                        "rmsprop");
    ag_assert_released();
}

Test(trainer_error, unknown_option) {
    assert_create_error("sgd", "learning_rate=0.1, beta1=0.9",
                        "sgd: Unknown option 'beta1', valid options: learning_rate, momentum, wd, "
                        "clip_global_norm");
    assert_create_error("adam", "momentum=0.9",
                        "adam: Unknown option 'momentum', valid options: learning_rate, beta1, "
                        "beta2, epsilon, wd, clip_global_norm");
    assert_create_error("sgd", "momentum", "sgd: Invalid option 'momentum', expected name=value");
    ag_assert_released();
}

/* Option strings go through the key=value parser that layer attributes and initializer arguments
 * use (core/kv.c): the same message grammar with "option" as the word (the layer and initializer
 * tests check the same wording). Before it, a repeated option silently took the last value and
 * empty items were skipped. */
Test(trainer_error, options_share_the_key_value_grammar) {
    assert_create_error("sgd", "momentum=0.5, learning_rate=0.1, momentum=0.9",
                        "sgd: Repeated option 'momentum'");
    assert_create_error("adam", "beta1=0.8,,beta2=0.9",
                        "adam: Empty option, nothing after 'beta1=0.8,'");
    assert_create_error("sgd", "learning_rate=",
                        "sgd: Missing value for option 'learning_rate', expected a number");
    assert_create_error("sgd", "=0.1", "sgd: Missing option name in '=0.1', expected name=value");
    assert_create_error("sgd", "learning_rate=(0.1, 0.2)",
                        "sgd: Invalid value for 'learning_rate', got '(0.1, 0.2)'");
    ag_assert_released();
}

Test(trainer_error, bad_option_value) {
    assert_create_error("sgd", "momentum=1.5", "sgd: Invalid value for 'momentum', got '1.5'");
    assert_create_error("sgd", "learning_rate=-0.1",
                        "sgd: Invalid value for 'learning_rate', got '-0.1'");
    assert_create_error("sgd", "learning_rate=fast",
                        "sgd: Invalid value for 'learning_rate', got 'fast'");
    assert_create_error("adam", "beta2=1", "adam: Invalid value for 'beta2', got '1'");
    ag_assert_released();
}

Test(trainer_error, step_rejects_a_batch_size_below_one) {
    lam_param *w, *b;
    lam_block *d = tiny_layer(&w, &b);
    lam_param_list *list = NULL;
    AG_OK(lam_block_collect_params(d, NULL, &list));
    lam_trainer *t = NULL;
    AG_OK(lam_trainer_create(list, "sgd", "learning_rate=0.5", &t));
    const float xv[4] = {1.0f, 1.0f, 3.0f, -1.0f};
    lam_tensor *x = ag_tensor(AG_SHAPE(2, 2), xv, 4), *y = NULL;
    lam_autograd_set_recording(1);
    AG_OK(lam_block_call(d, x, &y));
    lam_autograd_set_recording(0);
    AG_OK(lam_autograd_backward(y, NULL));
    ag_assert_error(lam_trainer_step(t, 0), LAM_ERR_INVALID_ARGUMENT,
                    "trainer step: Invalid argument, batch_size must be positive",
                    "lam_trainer_step(0)");
    ag_assert_error(lam_trainer_step(t, -8), LAM_ERR_INVALID_ARGUMENT,
                    "trainer step: Invalid argument, batch_size must be positive",
                    "lam_trainer_step(-8)");
    const float ww[2] = {1.0f, 2.0f};
    assert_values2(w, ww, 2, "weight after refused steps");
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_trainer_destroy(t);
    lam_param_list_destroy(list);
    lam_block_release(d);
    ag_assert_released();
}
