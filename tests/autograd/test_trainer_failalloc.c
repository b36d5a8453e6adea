/*
 * test_trainer_failalloc.c - every allocation of the trainer's calls fails in turn (the sweep of
 * tests/core/test_failalloc.c's injector): typed creation with a schedule, a step of each
 * optimizer (clipping and a schedule on), saving and loading the state, clipping alone, and the
 * integer-label cross-entropy forward and backward. Each failure must return an error with a
 * message, leak nothing and change nothing: after a failed step the parameters are bit for bit
 * as before, the step count too, and a successful step afterwards gives exactly what a run
 * without the failure gives (so the optimizer state was untouched); a failed load leaves the
 * trainer as it was, a failed clip the gradients.
 * Run by ctest with liblamina_failalloc.so preloaded; without it (a sanitizer build) it skips.
 * On the CPU context always (lavapipe does not survive its own allocations failing).
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tools/failalloc/failalloc.h"
#include "lamina/lamina.h"

static lam_failalloc fa;

static void fini(void) {
    lam_shutdown();
}

TestSuite(trainer_failalloc, .fini = fini, .timeout = 300);

#define OK(call)                                                                                   \
    do {                                                                                           \
        lam_status ok_st_ = (call);                                                                \
        cr_assert_eq(ok_st_, LAM_OK, "%s: %s", #call, lam_last_error());                           \
    } while (0)

static void need_injector(void) {
    if (lam_failalloc_bind(&fa) != 0) {
        const char *req = getenv("LAMINA_TEST_FAILALLOC_REQUIRED");
        cr_assert(req == NULL || req[0] != '1', "liblamina_failalloc.so is not preloaded");
        cr_skip_test("liblamina_failalloc.so is not preloaded (sanitizer build?)");
    }
}

static lam_ctx *cpu(void) {
    lam_ctx *c = NULL;
    OK(lam_ctx_get("cpu", &c));
    return c;
}

/* Dense(5, tanh, in 3) -> Dense(3, in 5) on the CPU with fixed weights. */
#define N_VALUES (5 * 3 + 5 + 3 * 5 + 3)

static lam_block *model(lam_param_list **params) {
    lam_block *net = NULL, *a = NULL, *b = NULL;
    OK(lam_sequential_create(&net));
    OK(lam_layer_create("Dense", "units=5, activation=tanh, in_units=3", &a));
    OK(lam_layer_create("Dense", "units=3, in_units=5", &b));
    OK(lam_sequential_add(net, a));
    OK(lam_sequential_add(net, b));
    lam_block_release(a);
    lam_block_release(b);
    OK(lam_block_initialize(net, NULL, cpu(), 0));
    OK(lam_block_collect_params(net, NULL, params));
    for (size_t i = 0; i < lam_param_list_count(*params); i++) {
        lam_tensor *d = NULL;
        OK(lam_param_data(lam_param_list_get(*params, i), &d));
        size_t n = (size_t)lam_tensor_numel(d);
        float v[16];
        for (size_t k = 0; k < n; k++) {
            v[k] = 0.1f * (float)((int)(k * 7 + i * 3) % 11 - 5);
        }
        OK(lam_tensor_write(d, v, n));
        lam_tensor_release(d);
    }
    return net;
}

/* Recorded forward, integer-label cross-entropy, backward. */
static lam_status forward_backward(lam_block *net) {
    const float xv[8] = {0.5f, -1.0f, 0.25f, 1.5f, 0.0f, -0.5f, 0.75f, 1.0f};
    const int32_t yv[2] = {2, 0};
    lam_shape xs = {.ndim = 2, .dims = {2, 3}}, ys = {.ndim = 1, .dims = {2}};
    lam_tensor *x = NULL, *y = NULL, *out = NULL, *loss = NULL;
    lam_status st = lam_tensor_from_data(cpu(), &xs, xv, 6, &x);
    if (st == LAM_OK) {
        st = lam_tensor_create_dtype(cpu(), LAM_DTYPE_I32, &ys, &y);
    }
    if (st == LAM_OK) {
        st = lam_tensor_write_bytes(y, yv, sizeof yv);
    }
    int was = lam_autograd_record_begin(1);
    if (st == LAM_OK) {
        st = lam_block_call(net, x, &out);
    }
    if (st == LAM_OK) {
        st = lam_loss_softmax_cross_entropy(out, y, &loss);
    }
    lam_autograd_record_end(was);
    if (st == LAM_OK) {
        st = lam_autograd_backward(loss, NULL);
    }
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_tensor_release(out);
    lam_tensor_release(loss);
    return st;
}

static void read_all(lam_param_list *params, float *out, int grads) {
    size_t at = 0;
    for (size_t i = 0; i < lam_param_list_count(params); i++) {
        lam_tensor *d = NULL;
        lam_param *p = lam_param_list_get(params, i);
        OK(grads ? lam_param_grad(p, &d) : lam_param_data(p, &d));
        size_t n = (size_t)lam_tensor_numel(d);
        OK(lam_tensor_read(d, out + at, n));
        at += n;
        lam_tensor_release(d);
    }
    cr_assert_eq(at, N_VALUES);
}

typedef lam_status (*make_fn)(lam_param_list *params, lam_trainer **t);

static lam_status make_adam(lam_param_list *params, lam_trainer **t) {
    lam_adam_options o = LAM_ADAMW_OPTIONS_INIT;
    o.learning_rate = 0.05;
    o.clip_global_norm = 0.3;
    lam_status st = lam_trainer_create_adamw(params, &o, t);
    lam_lr_schedule s = LAM_LR_SCHEDULE_INIT;
    s.kind = LAM_LR_COSINE;
    s.t_max = 4;
    s.warmup_steps = 1;
    if (st == LAM_OK && (st = lam_trainer_set_schedule(*t, &s)) != LAM_OK) {
        lam_trainer_destroy(*t);
        *t = NULL;
    }
    return st;
}

static lam_status make_rmsprop(lam_param_list *params, lam_trainer **t) {
    lam_rmsprop_options o = LAM_RMSPROP_OPTIONS_INIT;
    o.momentum = 0.5;
    o.centered = 1;
    o.weight_decay = 0.01;
    return lam_trainer_create_rmsprop(params, &o, t);
}

static lam_status make_sgd(lam_param_list *params, lam_trainer **t) {
    lam_sgd_options o = LAM_SGD_OPTIONS_INIT;
    o.learning_rate = 0.1;
    o.momentum = 0.9;
    o.weight_decay = 0.001;
    o.clip_global_norm = 0.5;
    return lam_trainer_create_sgd(params, &o, t);
}

/* Counting allocations of one call. */
typedef struct call {
    lam_status (*fn)(void *);
    void *arg;
    lam_status st;
} call;

static void run_call(void *arg) {
    call *c = arg;
    c->st = c->fn(c->arg);
}

static lam_status do_step(void *arg) {
    return lam_trainer_step(arg, 2);
}

/* A trainer one step in (so the state exists), with fresh gradients for the next step. */
static void setup(make_fn make, lam_block **net, lam_param_list **params, lam_trainer **t) {
    *net = model(params);
    OK(make(*params, t));
    OK(forward_backward(*net));
    OK(lam_trainer_step(*t, 2));
    OK(forward_backward(*net));
}

static void teardown(lam_block *net, lam_param_list *params, lam_trainer *t) {
    lam_trainer_destroy(t);
    lam_param_list_destroy(params);
    lam_block_release(net);
}

/* One lam_trainer_step(t, 2) with allocation k failing. A failed step must have been an injected
 * failure, say why, and leave the parameters as they were. */
static lam_status armed_step(lam_trainer *t, lam_param_list *params, unsigned long k,
                             const char *what) {
    float before[N_VALUES], got[N_VALUES];
    read_all(params, before, 0);
    lam_clear_error();
    fa.arm(k);
    lam_status st = lam_trainer_step(t, 2);
    int hit = fa.injected();
    fa.arm(0);
    if (st != LAM_OK) {
        read_all(params, got, 0);
        cr_assert(hit, "%s, allocation %lu: status %d without an injected failure: %s", what, k,
                  (int)st, lam_last_error());
        cr_assert(lam_last_error()[0] != '\0', "%s, allocation %lu: no message", what, k);
        cr_assert(memcmp(got, before, sizeof got) == 0,
                  "%s, allocation %lu: a failed step changed the parameters (%s)", what, k,
                  lam_last_error());
    }
    return st;
}

static void sweep_step(make_fn make, const char *what) {
    need_injector();
    lam_block *net;
    lam_param_list *params;
    lam_trainer *t;
    /* the reference: two more successful steps */
    float want1[N_VALUES], want2[N_VALUES], got[N_VALUES];
    setup(make, &net, &params, &t);
    call c = {do_step, t, LAM_OK};
    unsigned long n = lam_failalloc_calibrate(&fa, run_call, &c);
    OK(c.st);
    read_all(params, want1, 0);
    OK(forward_backward(net));
    OK(lam_trainer_step(t, 2));
    read_all(params, want2, 0);
    teardown(net, params, t);
    cr_assert_gt(n, 0);
    unsigned long failed = 0;
    for (unsigned long k = 1; k <= n; k++) {
        setup(make, &net, &params, &t);
        lam_status st = armed_step(t, params, k, what);
        read_all(params, got, 0);
        if (st != LAM_OK) {
            failed++;
            cr_assert_eq(lam_trainer_step_count(t), 1, "%s, allocation %lu: step count", what, k);
            OK(lam_trainer_step(t, 2)); /* the same gradients: the step it failed to take */
            read_all(params, got, 0);
            cr_assert(memcmp(got, want1, sizeof got) == 0,
                      "%s, allocation %lu: the step after a failed one differs", what, k);
        } else {
            cr_assert(memcmp(got, want1, sizeof got) == 0, "%s, allocation %lu: step values", what,
                      k);
        }
        OK(forward_backward(net));
        OK(lam_trainer_step(t, 2));
        read_all(params, got, 0);
        cr_assert(memcmp(got, want2, sizeof got) == 0,
                  "%s, allocation %lu: the state after a failed step differs", what, k);
        teardown(net, params, t);
        cr_assert_eq(lam_tensor_live_count(), 0, "%s, allocation %lu: %zu tensors leaked", what, k,
                     lam_tensor_live_count());
    }
    cr_log_info("%s: %lu allocations, %lu failures reached the caller", what, n, failed);
    cr_assert_gt(failed, 0, "%s: no injected failure reached the caller", what);
}

/*
 * The first step of a data-parallel trainer (lam_trainer_set_comm over the built-in `self`
 * communicator, 1 rank): its checks, the bucket layout and the reductions each fail in turn.
 * A failed first step changes nothing and leaks nothing (a layout that failed part way was
 * once left behind and laid out again, its tensors lost), and the step after it gives what
 * an unfailed run gives.
 */
static void sweep_dist_first_step(void) {
    need_injector();
    lam_comm *comm = NULL;
    OK(lam_comm_open("self", &comm));
    lam_block *net;
    lam_param_list *params;
    lam_trainer *t;
    float want[N_VALUES], got[N_VALUES];
    net = model(&params);
    OK(make_sgd(params, &t));
    OK(lam_trainer_set_comm(t, comm, 64)); /* 64-byte buckets: several of them */
    OK(forward_backward(net));
    call c = {do_step, t, LAM_OK};
    unsigned long n = lam_failalloc_calibrate(&fa, run_call, &c);
    OK(c.st);
    read_all(params, want, 0);
    teardown(net, params, t);
    cr_assert_gt(n, 0);
    unsigned long failed = 0;
    for (unsigned long k = 1; k <= n; k++) {
        net = model(&params);
        OK(make_sgd(params, &t));
        OK(lam_trainer_set_comm(t, comm, 64));
        OK(forward_backward(net));
        if (armed_step(t, params, k, "distributed") != LAM_OK) {
            failed++;
            OK(lam_trainer_step(t, 2)); /* the same gradients: the step it failed to take */
        }
        read_all(params, got, 0);
        cr_assert(memcmp(got, want, sizeof got) == 0, "distributed, allocation %lu: step values",
                  k);
        teardown(net, params, t);
        cr_assert_eq(lam_tensor_live_count(), 0, "distributed, allocation %lu: %zu tensors leaked",
                     k, lam_tensor_live_count());
    }
    OK(lam_comm_close(comm));
    cr_log_info("distributed: %lu allocations, %lu failures reached the caller", n, failed);
    cr_assert_gt(failed, 0, "distributed: no injected failure reached the caller");
}

Test(trainer_failalloc, sgd_distributed_first_step) {
    sweep_dist_first_step();
}

Test(trainer_failalloc, adamw_step_with_clip_and_schedule) {
    sweep_step(make_adam, "adamw");
}

Test(trainer_failalloc, rmsprop_centered_momentum_step) {
    sweep_step(make_rmsprop, "rmsprop");
}

Test(trainer_failalloc, sgd_momentum_clip_step) {
    sweep_step(make_sgd, "sgd");
}

/* Creation, save, load, clipping alone, cross-entropy: clean errors, nothing changed. */

static char dir[64];

static const char *path_of(const char *name) {
    static char b[2][128];
    static int i;
    char *p = b[i++ % 2];
    snprintf(p, sizeof b[0], "%s/%s", dir, name);
    return p;
}

static lam_param_list *g_params;

static lam_status do_create(void *arg) {
    lam_trainer *t = NULL;
    lam_status st = make_adam(arg, &t);
    if (st == LAM_OK) {
        lam_trainer_destroy(t);
    } else if (t != NULL) {
        return lam_set_error(LAM_ERR_INTERNAL, "out is not NULL after a failure");
    }
    return st;
}

static lam_status do_save(void *arg) {
    return lam_trainer_save(arg, path_of("state.safetensors"));
}

static lam_status do_load(void *arg) {
    return lam_trainer_load(arg, path_of("saved.safetensors"));
}

static lam_status do_clip(void *arg) {
    float norm = 0;
    return lam_param_list_clip_global_norm(arg, 0.1, &norm);
}

static lam_status do_ce(void *arg) {
    return forward_backward(arg);
}

static unsigned long sweep(lam_status (*fn)(void *), void *arg, void (*check)(lam_status, void *),
                           const char *what) {
    call c = {fn, arg, LAM_OK};
    unsigned long n = lam_failalloc_calibrate(&fa, run_call, &c);
    OK(c.st);
    cr_assert_gt(n, 0);
    check(c.st, arg); /* the calibration run succeeded: back to the starting point */
    unsigned long failed = 0;
    for (unsigned long k = 1; k <= n; k++) {
        size_t live = lam_tensor_live_count();
        lam_clear_error();
        fa.arm(k);
        lam_status st = fn(arg);
        int hit = fa.injected();
        fa.arm(0);
        if (st != LAM_OK) {
            failed++;
            cr_assert(hit && lam_last_error()[0] != '\0', "%s, allocation %lu: status %d (%s)",
                      what, k, (int)st, lam_last_error());
        }
        cr_assert_eq(lam_tensor_live_count(), live, "%s, allocation %lu: tensors leaked", what, k);
        check(st, arg);
    }
    cr_assert_gt(failed, 0, "%s: no injected failure reached the caller", what);
    return n;
}

static void nothing(lam_status st, void *arg) {
    (void)st;
    (void)arg;
}

static unsigned char saved_bytes[1 << 16];
static size_t saved_size;

static size_t file_bytes(const char *path, unsigned char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* A failed save leaves the earlier file as it was. */
static void save_unchanged(lam_status st, void *arg) {
    (void)arg;
    if (st != LAM_OK) {
        static unsigned char now[1 << 16];
        size_t n = file_bytes(path_of("state.safetensors"), now, sizeof now);
        cr_assert(n == saved_size && memcmp(now, saved_bytes, n) == 0, "a failed save changed it");
    } else {
        saved_size = file_bytes(path_of("state.safetensors"), saved_bytes, sizeof saved_bytes);
    }
}

static double fresh_lr;

/* The loading trainer starts at step 0: a failed load leaves it there, a successful one is
 * moved back by loading a step-0 state of the same trainer. */
static void load_unchanged(lam_status st, void *arg) {
    lam_trainer *t = arg;
    if (st != LAM_OK) {
        cr_assert_eq(lam_trainer_step_count(t), 0, "a failed load changed the step count (%s)",
                     lam_last_error());
        cr_assert_eq(lam_trainer_learning_rate(t), fresh_lr,
                     "a failed load changed the learning rate");
    } else {
        cr_assert_eq(lam_trainer_step_count(t), 1);
        fa.arm(0);
        OK(lam_trainer_load(t, path_of("zero.safetensors")));
        cr_assert_eq(lam_trainer_step_count(t), 0);
    }
}

static float grads_before[N_VALUES];

Test(trainer_failalloc, create_save_load_clip_and_cross_entropy) {
    need_injector();
    strcpy(dir, "/tmp/lamina-trfail-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    lam_block *net = model(&g_params);
    sweep(do_create, g_params, nothing, "create");

    lam_trainer *t = NULL;
    OK(make_adam(g_params, &t));
    OK(forward_backward(net));
    OK(lam_trainer_step(t, 2));
    OK(lam_trainer_save(t, path_of("state.safetensors")));
    saved_size = file_bytes(path_of("state.safetensors"), saved_bytes, sizeof saved_bytes);
    sweep(do_save, t, save_unchanged, "save");
    OK(lam_trainer_save(t, path_of("saved.safetensors")));

    lam_trainer *fresh = NULL;
    OK(make_adam(g_params, &fresh));
    OK(lam_trainer_save(fresh, path_of("zero.safetensors")));
    fresh_lr = lam_trainer_learning_rate(fresh);
    sweep(do_load, fresh, load_unchanged, "load");
    lam_trainer_destroy(fresh);
    lam_trainer_destroy(t);

    sweep(do_ce, net, nothing, "cross-entropy");
    lam_param_list_destroy(g_params);
    lam_block_release(net);
    const char *names[] = {"state.safetensors", "saved.safetensors", "zero.safetensors"};
    for (int i = 0; i < 3; i++) {
        unlink(path_of(names[i]));
    }
    rmdir(dir);
    cr_assert_eq(lam_tensor_live_count(), 0);
}

/* Clipping alone: gradients are restored (recomputed) after each successful round. */
static lam_block *clip_net;

static void clip_check(lam_status st, void *arg) {
    float now[N_VALUES];
    read_all(arg, now, 1);
    if (st != LAM_OK) {
        cr_assert(memcmp(now, grads_before, sizeof now) == 0,
                  "a failed clip changed gradients (%s)", lam_last_error());
    } else {
        OK(forward_backward(clip_net)); /* grad_req write: the same gradients again */
        read_all(arg, now, 1);
        cr_assert(memcmp(now, grads_before, sizeof now) == 0);
    }
}

Test(trainer_failalloc, clip_global_norm) {
    need_injector();
    lam_param_list *params = NULL;
    clip_net = model(&params);
    OK(forward_backward(clip_net));
    read_all(params, grads_before, 1);
    sweep(do_clip, params, clip_check, "clip");
    lam_param_list_destroy(params);
    lam_block_release(clip_net);
    cr_assert_eq(lam_tensor_live_count(), 0);
}
