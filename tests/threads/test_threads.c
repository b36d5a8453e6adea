/*
 * Threads: the contract of lamina.h's "Thread safety" section, tested from outside.
 *
 *  - 4 threads each train their own model at once; the final parameters are bit-identical to
 *    the same models trained one after another on one thread.
 *  - 4 threads run inference on one shared model; every output equals the single-thread output
 *    bit for bit.
 *  - 16 threads whose first call into the library is simultaneous all succeed.
 *  - Autograd recording is per thread, and the scoped helper restores the previous state.
 *  - Tensors made on one thread may be released on another, also after their thread exited;
 *    lam_tensor_live_count counts them wherever they were made.
 *  - lam_shutdown refuses (LAM_ERR_STATE) while another thread is inside an op, and an op on
 *    another thread after a shutdown fails cleanly.
 *
 * The expected values are the library's own single-thread results: what is tested is that
 * threads change nothing (the numbers themselves are checked by the autograd and training
 * tests against PyTorch). Everything runs on the default context ($LAMINA_BACKEND), so the
 * Vulkan run of the suite runs these on lavapipe.
 *
 * Not a Criterion test: Criterion's runner does not start reliably under ThreadSanitizer (its
 * shared arena collides with TSan's memory layout), and CI runs these under TSan. So this is a
 * plain program, `test_threads <case>`, and ctest runs each case as its own process (so the
 * start-up case really makes the first call).
 */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lamina/lamina.h"

/* REQUIRE(cond, fmt, ...) and CHECK(cond) end the test with a message when cond is false (main
 * thread only). */
__attribute__((format(printf, 4, 5))) static void require(int ok, const char *expr,
                                                          const char *where, const char *fmt, ...) {
    if (ok) {
        return;
    }
    fprintf(stderr, "%s: FAILED: %s\n  ", where, expr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}
#define STR2_(x)           #x
#define STR_(x)            STR2_(x)
#define REQUIRE(cond, ...) require((cond) != 0, #cond, __FILE__ ":" STR_(__LINE__), __VA_ARGS__)
#define CHECK(cond)        REQUIRE(cond, "%s", "")

/* Workers do not end the process: they record the first failure here and the main thread
 * checks it after joining them. */
typedef struct failure {
    pthread_mutex_t lock;
    char text[1024];
} failure;

static failure first_failure = {PTHREAD_MUTEX_INITIALIZER, ""};

static void fail(const char *what, lam_status st) {
    pthread_mutex_lock(&first_failure.lock);
    if (first_failure.text[0] == '\0') {
        snprintf(first_failure.text, sizeof first_failure.text, "%s failed: %s (%s)", what,
                 lam_status_string(st), lam_last_error());
    }
    pthread_mutex_unlock(&first_failure.lock);
}

/* Evaluates a call; on failure records it and returns `ret` from the enclosing function. */
#define T_OK(call, ret)                                                                            \
    do {                                                                                           \
        lam_status t_st_ = (call);                                                                 \
        if (t_st_ != LAM_OK) {                                                                     \
            fail(#call, t_st_);                                                                    \
            return ret;                                                                            \
        }                                                                                          \
    } while (0)

static void assert_no_failure(void) {
    REQUIRE(first_failure.text[0] == '\0', "a thread failed: %s", first_failure.text);
}

static void run_threads(size_t n, void *(*fn)(void *), void *args, size_t arg_size) {
    pthread_t tid[16];
    CHECK(n <= 16);
    for (size_t i = 0; i < n; i++) {
        CHECK(pthread_create(&tid[i], NULL, fn, (char *)args + i * arg_size) == 0);
    }
    for (size_t i = 0; i < n; i++) {
        CHECK(pthread_join(tid[i], NULL) == 0);
    }
}

/* ---- 4 threads, 4 models, training at once ------------------------------------------------- */

#define N_MODELS 4
#define IN       20
#define CLASSES  10
#define BATCH    8
#define STEPS    20

/* Fixed input data for model k: x (BATCH, IN) and labels (BATCH,), a simple formula. */
static void model_data(int k, float *x, float *y) {
    for (int i = 0; i < BATCH * IN; i++) {
        x[i] = (float)((i * 7 + k * 13) % 23) / 23.0f - 0.5f;
    }
    for (int i = 0; i < BATCH; i++) {
        y[i] = (float)((i * 3 + k) % CLASSES);
    }
}

typedef struct train_job {
    int k;
    pthread_barrier_t *start; /* NULL: run at once */
    float *params;            /* out: every parameter, in collection order (malloc'd) */
    size_t n_params;
} train_job;

static lam_block *dense(const char *attrs) {
    lam_block *b = NULL;
    T_OK(lam_layer_create("Dense", attrs, &b), NULL);
    return b;
}

/* The chapter's MLP with 16 + 8k hidden units (so each model has its own structure and its own
 * initial values under the one process-wide seed), then STEPS steps of SGD with momentum. */
static void *train_model(void *arg) {
    train_job *job = arg;
    if (job->start) {
        pthread_barrier_wait(job->start);
    }
    char attrs[96];
    snprintf(attrs, sizeof attrs, "units=%d, activation=relu, in_units=%d", 16 + 8 * job->k, IN);
    lam_block *net = NULL;
    T_OK(lam_sequential_create(&net), NULL);
    lam_block *hidden = dense(attrs);
    lam_block *output = dense("units=10");
    if (hidden == NULL || output == NULL) {
        return NULL;
    }
    T_OK(lam_sequential_add(net, hidden), NULL);
    T_OK(lam_sequential_add(net, output), NULL);
    lam_block_release(hidden);
    lam_block_release(output);
    T_OK(lam_block_initialize(net, NULL, NULL, 0), NULL);

    float x[BATCH * IN], y[BATCH];
    model_data(job->k, x, y);
    lam_shape xs, ys;
    lam_shape_init(&xs, 2, (const int64_t[]){BATCH, IN});
    lam_shape_init(&ys, 1, (const int64_t[]){BATCH});
    lam_tensor *tx = NULL, *ty = NULL;
    T_OK(lam_tensor_from_data(NULL, &xs, x, BATCH * IN, &tx), NULL);
    T_OK(lam_tensor_from_data(NULL, &ys, y, BATCH, &ty), NULL);

    lam_param_list *params = NULL;
    lam_trainer *trainer = NULL;
    /* The first forward infers the output layer's in_units (deferred initialization). */
    for (int step = 0; step < STEPS; step++) {
        lam_tensor *out = NULL, *loss = NULL;
        int was = lam_autograd_record_begin(1);
        lam_status st = lam_block_call(net, tx, &out);
        if (st == LAM_OK) {
            st = lam_loss_softmax_cross_entropy(out, ty, &loss);
        }
        lam_autograd_record_end(was);
        T_OK(st, NULL);
        if (trainer == NULL) {
            T_OK(lam_block_collect_params(net, NULL, &params), NULL);
            T_OK(lam_trainer_create(params, "sgd", "learning_rate=0.1, momentum=0.9", &trainer),
                 NULL);
        }
        T_OK(lam_autograd_backward(loss, NULL), NULL);
        T_OK(lam_trainer_step(trainer, BATCH), NULL);
        lam_tensor_release(loss);
        lam_tensor_release(out);
    }

    size_t total = 0;
    for (size_t i = 0; i < lam_param_list_count(params); i++) {
        total += (size_t)lam_shape_numel(lam_param_shape(lam_param_list_get(params, i)));
    }
    job->params = malloc(total * sizeof(float));
    job->n_params = total;
    size_t at = 0;
    for (size_t i = 0; i < lam_param_list_count(params); i++) {
        lam_tensor *d = NULL;
        T_OK(lam_param_data(lam_param_list_get(params, i), &d), NULL);
        size_t n = (size_t)lam_tensor_numel(d);
        T_OK(lam_tensor_read(d, job->params + at, n), NULL);
        at += n;
        lam_tensor_release(d);
    }
    lam_tensor_release(tx);
    lam_tensor_release(ty);
    lam_trainer_destroy(trainer);
    lam_param_list_destroy(params);
    lam_block_release(net);
    return NULL;
}

static void own_models_train_concurrently_bit_identical(void) {
    lam_seed(1234);
    train_job seq[N_MODELS];
    for (int k = 0; k < N_MODELS; k++) {
        seq[k] = (train_job){.k = k};
        train_model(&seq[k]);
        assert_no_failure();
        CHECK(seq[k].params != NULL);
    }
    /* Several rounds: a race does not show every time. */
    for (int round = 0; round < 10; round++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, N_MODELS);
        train_job par[N_MODELS];
        for (int k = 0; k < N_MODELS; k++) {
            par[k] = (train_job){.k = k, .start = &start};
        }
        run_threads(N_MODELS, train_model, par, sizeof par[0]);
        pthread_barrier_destroy(&start);
        assert_no_failure();
        for (int k = 0; k < N_MODELS; k++) {
            CHECK(par[k].params != NULL);
            CHECK(par[k].n_params == seq[k].n_params);
            for (size_t i = 0; i < seq[k].n_params; i++) {
                REQUIRE(memcmp(&par[k].params[i], &seq[k].params[i], sizeof(float)) == 0,
                        "round %d, model %d: parameter value %zu is %.9g trained in a thread, "
                        "%.9g trained alone",
                        round, k, i, (double)par[k].params[i], (double)seq[k].params[i]);
            }
            free(par[k].params);
        }
    }
    for (int k = 0; k < N_MODELS; k++) {
        free(seq[k].params);
    }
    REQUIRE(lam_tensor_live_count() == 0, "%zu tensors left alive", lam_tensor_live_count());
}

/* ---- 4 threads, one model, inference -------------------------------------------------------- */

#define N_INPUTS 6
#define ITERS    500

typedef struct infer_job {
    lam_block *net;
    lam_tensor *const *inputs;
    float (*want)[BATCH * CLASSES];
    pthread_barrier_t *start;
    int id;
    int mismatches;
} infer_job;

static void *infer(void *arg) {
    infer_job *job = arg;
    pthread_barrier_wait(job->start);
    for (int it = 0; it < ITERS; it++) {
        int i = (it + job->id) % N_INPUTS;
        lam_tensor *out = NULL;
        T_OK(lam_block_call(job->net, job->inputs[i], &out), NULL);
        float got[BATCH * CLASSES];
        T_OK(lam_tensor_read(out, got, BATCH * CLASSES), NULL);
        lam_tensor_release(out);
        if (memcmp(got, job->want[i], sizeof got) != 0) {
            job->mismatches++;
        }
    }
    return NULL;
}

/* A custom block out = x * gamma, gamma's shape inferred from the input (deferred
 * initialization through an infer-shape callback). */
static lam_status scale_infer(lam_block *self, void *state, uint32_t n, const lam_shape *shapes) {
    (void)state;
    if (n != 1) {
        return lam_set_error(LAM_ERR_SHAPE, "scale: Wrong number of inputs, %u", n);
    }
    return lam_param_infer_shape(lam_block_param(self, "gamma"), &shapes[0]);
}

static lam_status scale_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                                lam_tensor **out) {
    (void)state;
    (void)n;
    lam_tensor *gamma = NULL;
    lam_status st = lam_param_data(lam_block_param(self, "gamma"), &gamma);
    if (st == LAM_OK) {
        st = lam_op_mul(in[0], gamma, out);
    }
    lam_tensor_release(gamma);
    return st;
}

static lam_block *shared_model(void) {
    lam_block *net = NULL;
    CHECK(lam_sequential_create(&net) == LAM_OK);
    lam_block *h = NULL, *o = NULL;
    REQUIRE(lam_layer_create("Dense", "units=64, activation=relu, in_units=20", &h) == LAM_OK, "%s",
            lam_last_error());
    REQUIRE(lam_layer_create("Dense", "units=10", &o) == LAM_OK, "%s", lam_last_error());
    lam_block *scale = NULL;
    CHECK(lam_block_create("Scale", scale_forward, NULL, NULL, &scale) == LAM_OK);
    lam_shape unknown;
    lam_shape_init(&unknown, 2, (const int64_t[]){LAM_DIM_UNKNOWN, LAM_DIM_UNKNOWN});
    CHECK(lam_block_param_new(scale, "gamma", &unknown, NULL, NULL) == LAM_OK);
    CHECK(lam_block_set_infer_shape(scale, scale_infer) == LAM_OK);
    CHECK(lam_sequential_add(net, h) == LAM_OK);
    CHECK(lam_sequential_add(net, o) == LAM_OK);
    CHECK(lam_sequential_add(net, scale) == LAM_OK);
    lam_block_release(h);
    lam_block_release(o);
    lam_block_release(scale);
    REQUIRE(lam_block_initialize(net, NULL, NULL, 0) == LAM_OK, "%s", lam_last_error());
    return net;
}

static void shared_inference(int first_forward_alone) {
    lam_seed(99);
    lam_block *net = shared_model();
    lam_tensor *inputs[N_INPUTS];
    float want[N_INPUTS][BATCH * CLASSES];
    for (int i = 0; i < N_INPUTS; i++) {
        float x[BATCH * IN], y[BATCH];
        model_data(i, x, y);
        lam_shape xs;
        lam_shape_init(&xs, 2, (const int64_t[]){BATCH, IN});
        CHECK(lam_tensor_from_data(NULL, &xs, x, BATCH * IN, &inputs[i]) == LAM_OK);
    }
    if (first_forward_alone) {
        for (int i = 0; i < N_INPUTS; i++) {
            lam_tensor *out = NULL;
            REQUIRE(lam_block_call(net, inputs[i], &out) == LAM_OK, "%s", lam_last_error());
            CHECK(lam_tensor_read(out, want[i], BATCH * CLASSES) == LAM_OK);
            lam_tensor_release(out);
        }
    } else {
        /* The expected outputs from a model of the same structure and seed, on this thread. */
        lam_block *twin = shared_model();
        for (int i = 0; i < N_INPUTS; i++) {
            lam_tensor *out = NULL;
            REQUIRE(lam_block_call(twin, inputs[i], &out) == LAM_OK, "%s", lam_last_error());
            CHECK(lam_tensor_read(out, want[i], BATCH * CLASSES) == LAM_OK);
            lam_tensor_release(out);
        }
        lam_block_release(twin);
    }
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 4);
    infer_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (infer_job){.net = net, .inputs = inputs, .want = want, .start = &start, .id = t};
    }
    run_threads(4, infer, jobs, sizeof jobs[0]);
    pthread_barrier_destroy(&start);
    assert_no_failure();
    for (int t = 0; t < 4; t++) {
        REQUIRE(jobs[t].mismatches == 0,
                "thread %d: %d of %d outputs differ from the "
                "single-thread output",
                t, jobs[t].mismatches, ITERS);
    }
    for (int i = 0; i < N_INPUTS; i++) {
        lam_tensor_release(inputs[i]);
    }
    lam_block_release(net);
    REQUIRE(lam_tensor_live_count() == 0, "%zu tensors left alive", lam_tensor_live_count());
}

static void shared_model_inference_matches_single_thread(void) {
    shared_inference(1);
}

/* The output layer's in_units and the custom block's gamma are inferred by the first forward,
 * which here runs in 4 threads at once. */
static void shared_model_first_forward_concurrent(void) {
    shared_inference(0);
}

/* ---- 16 threads, first call at once --------------------------------------------------------- */

typedef struct first_job {
    pthread_barrier_t *start;
    float result;
} first_job;

static void *first_call(void *arg) {
    first_job *job = arg;
    pthread_barrier_wait(job->start);
    lam_ctx *ctx = NULL;
    T_OK(lam_ctx_default(&ctx), NULL);
    lam_shape s;
    lam_shape_init(&s, 1, (const int64_t[]){4});
    lam_tensor *a = NULL, *b = NULL, *c = NULL;
    T_OK(lam_tensor_full(ctx, &s, 1.5f, &a), NULL);
    T_OK(lam_tensor_full(ctx, &s, 2.25f, &b), NULL);
    T_OK(lam_op_add(a, b, &c), NULL);
    float v[4];
    T_OK(lam_tensor_read(c, v, 4), NULL);
    job->result = v[0] + v[1] + v[2] + v[3];
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(c);
    return NULL;
}

static void sixteen_first_calls_at_once_all_succeed(void) {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 16);
    first_job jobs[16];
    for (int t = 0; t < 16; t++) {
        jobs[t] = (first_job){.start = &start};
    }
    run_threads(16, first_call, jobs, sizeof jobs[0]);
    pthread_barrier_destroy(&start);
    assert_no_failure();
    for (int t = 0; t < 16; t++) {
        REQUIRE(jobs[t].result == 15.0f, "thread %d: sum %g, want 4 * 3.75 = 15", t,
                (double)jobs[t].result);
    }
}

/* ---- first products at once ------------------------------------------------------------------ */

/* The CPU backend loads OpenBLAS on the first product that needs it (cpu_blas.c), so 4 threads
 * whose first products start together all reach that load at once: one loads, the others wait
 * for it, and every 64x64 product of ones by twos is 128 everywhere (64 * 1 * 2). */
typedef struct gemm_job {
    pthread_barrier_t *start;
    int wrong; /* elements that are not 128 */
} gemm_job;

static void *first_product(void *arg) {
    gemm_job *job = arg;
    lam_ctx *ctx = NULL;
    T_OK(lam_ctx_get("cpu", &ctx), NULL);
    lam_shape s;
    lam_shape_init(&s, 2, (const int64_t[]){64, 64});
    lam_tensor *a = NULL, *b = NULL, *c = NULL;
    T_OK(lam_tensor_full(ctx, &s, 1.0f, &a), NULL);
    T_OK(lam_tensor_full(ctx, &s, 2.0f, &b), NULL);
    pthread_barrier_wait(job->start);
    T_OK(lam_op_matmul(a, b, 0, 0, &c), NULL);
    static _Thread_local float v[64 * 64];
    T_OK(lam_tensor_read(c, v, 64 * 64), NULL);
    for (int i = 0; i < 64 * 64; i++) {
        job->wrong += v[i] != 128.0f;
    }
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(c);
    return NULL;
}

static void first_products_at_once_share_one_openblas_load(void) {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 4);
    gemm_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (gemm_job){.start = &start};
    }
    run_threads(4, first_product, jobs, sizeof jobs[0]);
    pthread_barrier_destroy(&start);
    assert_no_failure();
    for (int t = 0; t < 4; t++) {
        REQUIRE(jobs[t].wrong == 0, "thread %d: %d elements are not 128", t, jobs[t].wrong);
    }
}

/* ---- recording is per thread ---------------------------------------------------------------- */

typedef struct rec_job {
    pthread_barrier_t *on, *checked;
    int seen_at_start, seen_while_other_records, recorded;
} rec_job;

static void *recorder(void *arg) {
    rec_job *job = arg;
    job->seen_at_start = lam_autograd_is_recording();
    int was = lam_autograd_record_begin(1);
    pthread_barrier_wait(job->on);      /* the other thread looks now */
    pthread_barrier_wait(job->checked); /* ... and has looked */
    lam_autograd_record_end(was);
    return NULL;
}

static void *observer(void *arg) {
    rec_job *job = arg;
    lam_shape s;
    lam_shape_init(&s, 1, (const int64_t[]){3});
    lam_tensor *x = NULL, *y = NULL;
    T_OK(lam_tensor_full(NULL, &s, 2.0f, &x), NULL);
    T_OK(lam_tensor_attach_grad(x), NULL);
    pthread_barrier_wait(job->on);
    job->seen_while_other_records = lam_autograd_is_recording();
    /* Not recorded on this thread: backward from y has no graph to walk. */
    lam_status st = lam_op_mul(x, x, &y);
    if (st == LAM_OK) {
        job->recorded = lam_autograd_backward(y, NULL) == LAM_OK;
    }
    pthread_barrier_wait(job->checked);
    lam_tensor_release(y);
    lam_tensor_release(x);
    return NULL;
}

static void recording_is_per_thread(void) {
    /* The main thread records too: new threads still start with recording off. */
    CHECK(lam_autograd_record_begin(1) == 0);
    pthread_barrier_t on, checked;
    pthread_barrier_init(&on, NULL, 2);
    pthread_barrier_init(&checked, NULL, 2);
    rec_job job = {.on = &on, .checked = &checked, .recorded = -1};
    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, recorder, &job) == 0);
    CHECK(pthread_create(&b, NULL, observer, &job) == 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    pthread_barrier_destroy(&on);
    pthread_barrier_destroy(&checked);
    assert_no_failure();
    REQUIRE(job.seen_at_start == 0, "a new thread started with recording on");
    REQUIRE(job.seen_while_other_records == 0, "one thread recording made another thread record");
    REQUIRE(job.recorded == 0, "an op on a thread that does not record was recorded");
    REQUIRE(lam_autograd_is_recording() == 1, "another thread changed this thread's state");
    lam_autograd_record_end(0);
    CHECK(lam_autograd_is_recording() == 0);
}

static void record_begin_end_nest_and_restore(void) {
    CHECK(lam_autograd_is_recording() == 0);
    int outer = lam_autograd_record_begin(1);
    CHECK(outer == 0);
    CHECK(lam_autograd_is_recording() == 1);
    int inner = lam_autograd_record_begin(0);
    CHECK(inner == 1);
    CHECK(lam_autograd_is_recording() == 0);
    lam_autograd_record_end(inner);
    CHECK(lam_autograd_is_recording() == 1);
    lam_autograd_record_end(outer);
    CHECK(lam_autograd_is_recording() == 0);
    /* The old setter still works, per thread, and returns the previous state. */
    CHECK(lam_autograd_set_recording(1) == 0);
    CHECK(lam_autograd_set_recording(0) == 1);
}

/* ---- tensors made on one thread, released on another, outliving their thread ------------- */

#define XT_N 8

typedef struct xt_job {
    lam_tensor **make; /* made here: XT_N tensors of 16 floats, value base + i */
    float base;
    lam_tensor **release; /* released here (made elsewhere), may be NULL */
    size_t n_release;
    pthread_barrier_t *made; /* every thread made its tensors before any releases */
} xt_job;

static void *xt_worker(void *arg) {
    xt_job *job = arg;
    lam_shape s;
    lam_shape_init(&s, 1, (const int64_t[]){16});
    for (size_t i = 0; i < XT_N; i++) {
        T_OK(lam_tensor_full(NULL, &s, job->base + (float)i, &job->make[i]), NULL);
    }
    if (job->made) {
        pthread_barrier_wait(job->made);
    }
    for (size_t i = 0; i < job->n_release; i++) {
        lam_tensor_release(job->release[i]);
        job->release[i] = NULL;
    }
    return NULL;
}

/* Each tensor in ts holds 16 times its expected value. */
static void xt_check_values(lam_tensor *const *ts, size_t n, float base) {
    for (size_t i = 0; i < n; i++) {
        float got[16];
        lam_status st = lam_tensor_read(ts[i], got, 16);
        REQUIRE(st == LAM_OK, "read: %s", lam_last_error());
        for (size_t k = 0; k < 16; k++) {
            REQUIRE(got[k] == base + (float)i, "tensor %zu element %zu is %g, expected %g", i, k,
                    (double)got[k], (double)(base + (float)i));
        }
    }
}

static void tensors_cross_threads_and_thread_exit(void) {
    CHECK(lam_tensor_live_count() == 0);
    /* A thread makes tensors and exits: they stay alive and intact, counted. */
    lam_tensor *a[XT_N] = {0};
    xt_job ja = {.make = a, .base = 100.0f};
    run_threads(1, xt_worker, &ja, sizeof ja);
    assert_no_failure();
    REQUIRE(lam_tensor_live_count() == XT_N, "%zu live", lam_tensor_live_count());
    xt_check_values(a, XT_N, 100.0f);
    /* Released here, on another thread than their maker's (which is gone). */
    for (size_t i = 0; i < XT_N / 2; i++) {
        lam_tensor_release(a[i]);
        a[i] = NULL;
    }
    REQUIRE(lam_tensor_live_count() == XT_N / 2, "%zu live", lam_tensor_live_count());
    /* A new thread (which takes over the exited thread's bookkeeping) makes tensors, releases
     * two of the first thread's and exits holding its own. */
    lam_tensor *b[XT_N] = {0};
    xt_job jb = {.make = b, .base = 200.0f, .release = a + XT_N / 2, .n_release = 2};
    run_threads(1, xt_worker, &jb, sizeof jb);
    assert_no_failure();
    REQUIRE(lam_tensor_live_count() == XT_N / 2 - 2 + XT_N, "%zu live", lam_tensor_live_count());
    xt_check_values(a + XT_N / 2 + 2, XT_N / 2 - 2, 100.0f + (float)(XT_N / 2 + 2));
    xt_check_values(b, XT_N, 200.0f);
    for (size_t i = XT_N / 2 + 2; i < XT_N; i++) {
        lam_tensor_release(a[i]);
    }
    for (size_t i = 0; i < XT_N; i++) {
        lam_tensor_release(b[i]);
    }
    REQUIRE(lam_tensor_live_count() == 0, "%zu live", lam_tensor_live_count());

    /* 4 threads at once, each releasing its neighbour's tensors while the neighbour makes and
     * releases more: every count ends at zero and recycled buffers hold their new values. */
    for (int round = 0; round < 20; round++) {
        lam_tensor *made[4][XT_N];
        xt_job jobs[4];
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, 4);
        for (size_t t = 0; t < 4; t++) {
            jobs[t] = (xt_job){.make = made[t],
                               .base = (float)(t * 10),
                               .made = &bar,
                               .release = made[(t + 1) % 4],
                               .n_release = XT_N};
        }
        run_threads(4, xt_worker, jobs, sizeof jobs[0]);
        pthread_barrier_destroy(&bar);
        assert_no_failure();
        REQUIRE(lam_tensor_live_count() == 0, "round %d: %zu live", round, lam_tensor_live_count());
    }
}

/* ---- lam_shutdown while another thread is inside the library ------------------------------- */

#define BIG 1024 /* a BIG x BIG matmul takes milliseconds: the worker is inside it a while */

typedef struct busy_job {
    lam_tensor *a;
    atomic_int started;
    lam_status st;
    char msg[512];
    float c0; /* first element of a @ a */
} busy_job;

static void *busy_worker(void *arg) {
    busy_job *j = arg;
    lam_tensor *c = NULL;
    atomic_store(&j->started, 1);
    j->st = lam_op_matmul(j->a, j->a, 0, 0, &c);
    if (j->st == LAM_OK) {
        float *all = malloc(sizeof(float) * BIG * BIG);
        j->st = all ? lam_tensor_read(c, all, (size_t)BIG * BIG) : LAM_ERR_OUT_OF_MEMORY;
        j->c0 = all ? all[0] : 0.0f;
        free(all);
    }
    snprintf(j->msg, sizeof j->msg, "%s", j->st == LAM_OK ? "" : lam_last_error());
    lam_tensor_release(c);
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void shutdown_refused_while_another_thread_runs_an_op(void) {
    lam_shape s;
    lam_shape_init(&s, 2, (const int64_t[]){BIG, BIG});
    int refused = 0;
    /* The worker is inside its matmul when lam_shutdown looks, unless this thread slept far
     * longer than asked; then the shutdown may go through, and the attempt is made again. */
    for (int attempt = 0; attempt < 20 && !refused; attempt++) {
        busy_job job = {.st = LAM_ERR_INTERNAL};
        lam_status st = lam_tensor_full(NULL, &s, 1.0f, &job.a);
        REQUIRE(st == LAM_OK, "full: %s", lam_last_error());
        pthread_t tid;
        CHECK(pthread_create(&tid, NULL, busy_worker, &job) == 0);
        while (!atomic_load(&job.started)) {
            sleep_ms(1);
        }
        sleep_ms(5);
        st = lam_shutdown_checked();
        if (st == LAM_OK) {
            /* Not caught inside: the worker's op either ran before or was refused cleanly. */
            pthread_join(tid, NULL);
            REQUIRE(job.st == LAM_OK ||
                        (job.st == LAM_ERR_STATE && strstr(job.msg, "Runtime shut down") != NULL),
                    "worker: %s (%s)", lam_status_string(job.st), job.msg);
            lam_tensor_release(job.a);
            continue;
        }
        refused = 1;
        REQUIRE(st == LAM_ERR_STATE, "lam_shutdown_checked returned %s", lam_status_string(st));
        REQUIRE(strcmp(lam_last_error(),
                       "lam_shutdown: Threads still running, 1 other thread is inside the library "
                       "(an op, a forward, a backward pass, or making, reading or writing a "
                       "tensor); nothing was shut down") == 0,
                "message: %s", lam_last_error());
        pthread_join(tid, NULL);
        /* Nothing was shut down under the worker: its op completed with the right value. */
        REQUIRE(job.st == LAM_OK, "worker: %s (%s)", lam_status_string(job.st), job.msg);
        REQUIRE(job.c0 == (float)BIG, "a @ a [0] = %g, expected %d", (double)job.c0, BIG);
        lam_tensor_release(job.a);
    }
    REQUIRE(refused, "lam_shutdown never saw the worker inside its matmul in 20 attempts");
    /* With the other thread gone, it shuts down; another thread's op afterwards is refused
     * cleanly (its tensor is an orphan), and a new start works. */
    lam_tensor *kept = NULL;
    REQUIRE(lam_tensor_full(NULL, &s, 1.0f, &kept) == LAM_OK, "full: %s", lam_last_error());
    REQUIRE(lam_shutdown_checked() == LAM_OK, "shutdown: %s", lam_last_error());
    busy_job late = {.a = kept, .st = LAM_ERR_INTERNAL};
    run_threads(1, busy_worker, &late, sizeof late);
    REQUIRE(late.st == LAM_ERR_STATE && strstr(late.msg, "Runtime shut down") != NULL,
            "op after shutdown: %s (%s)", lam_status_string(late.st), late.msg);
    lam_tensor_release(kept);
    lam_tensor *x = NULL;
    REQUIRE(lam_tensor_full(NULL, &s, 2.0f, &x) == LAM_OK, "restart: %s", lam_last_error());
    lam_tensor_release(x);
}

/* ---- large ops from several threads at once share the CPU backend's pool --------------------- */

#define POOL_N 200003 /* above the size from which the CPU backend splits an op across threads */

typedef struct pool_arg {
    int k;
    float sum; /* of exp(x * k / 8) - x, computed by this thread */
} pool_arg;

static lam_status pool_compute(lam_ctx *ctx, int k, float *out) {
    float *x = malloc(POOL_N * sizeof *x);
    if (x == NULL) {
        return LAM_ERR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < POOL_N; i++) {
        x[i] = (float)((i * 37 + k * 11) % 1000) / 1000.0f - 0.5f;
    }
    const int64_t n = POOL_N;
    lam_shape shape;
    lam_shape_init(&shape, 1, &n);
    lam_tensor *t = NULL, *s = NULL, *e = NULL, *d = NULL, *r = NULL;
    lam_status st = lam_tensor_from_data(ctx, &shape, x, POOL_N, &t);
    free(x);
    if (st == LAM_OK) {
        st = lam_op_mul_scalar(t, (float)k / 8.0f, &s);
    }
    if (st == LAM_OK) {
        st = lam_op_exp(s, &e);
    }
    if (st == LAM_OK) {
        st = lam_op_sub(e, t, &d);
    }
    if (st == LAM_OK) {
        st = lam_op_sum(d, NULL, 0, 0, &r);
    }
    if (st == LAM_OK) {
        st = lam_tensor_read(r, out, 1);
    }
    lam_tensor *all[] = {t, s, e, d, r};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        lam_tensor_release(all[i]);
    }
    return st;
}

static void *pool_worker(void *arg) {
    pool_arg *a = arg;
    lam_ctx *ctx = NULL;
    T_OK(lam_ctx_get("cpu", &ctx), NULL);
    for (int rep = 0; rep < 20; rep++) {
        float v = 0.0f;
        T_OK(pool_compute(ctx, a->k, &v), NULL);
        if (rep > 0 && v != a->sum) {
            fail("pool_compute gave a different result on a repeat", LAM_ERR_INTERNAL);
            return NULL;
        }
        a->sum = v;
    }
    return NULL;
}

/* 4 user threads run large elementwise ops and a reduction at once, with the backend's pool
 * at 2 threads: each result equals the same computation done alone (bit for bit). */
static void large_ops_from_threads_share_the_pool(void) {
    setenv("LAMINA_NUM_THREADS", "2", 1); /* before the backend first reads it */
    lam_ctx *ctx = NULL;
    CHECK(lam_ctx_get("cpu", &ctx) == LAM_OK);
    pool_arg args[4];
    float alone[4];
    for (int k = 0; k < 4; k++) {
        args[k].k = k + 1;
        args[k].sum = 0.0f;
        CHECK(pool_compute(ctx, k + 1, &alone[k]) == LAM_OK);
    }
    run_threads(4, pool_worker, args, sizeof args[0]);
    assert_no_failure();
    for (int k = 0; k < 4; k++) {
        REQUIRE(args[k].sum == alone[k], "thread %d: %.9g, alone %.9g", k, args[k].sum, alone[k]);
    }
}

static const struct {
    const char *name;
    void (*run)(void);
} cases[] = {
    {"own_models_train_concurrently_bit_identical", own_models_train_concurrently_bit_identical},
    {"large_ops_from_threads_share_the_pool", large_ops_from_threads_share_the_pool},
    {"first_products_at_once_share_one_openblas_load",
     first_products_at_once_share_one_openblas_load},
    {"shared_model_inference_matches_single_thread", shared_model_inference_matches_single_thread},
    {"shared_model_first_forward_concurrent", shared_model_first_forward_concurrent},
    {"sixteen_first_calls_at_once_all_succeed", sixteen_first_calls_at_once_all_succeed},
    {"recording_is_per_thread", recording_is_per_thread},
    {"record_begin_end_nest_and_restore", record_begin_end_nest_and_restore},
    {"tensors_cross_threads_and_thread_exit", tensors_cross_threads_and_thread_exit},
    {"shutdown_refused_while_another_thread_runs_an_op",
     shutdown_refused_while_another_thread_runs_an_op},
};

int main(int argc, char **argv) {
    size_t n = sizeof cases / sizeof cases[0];
    if (argc == 2) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(argv[1], cases[i].name) == 0) {
                cases[i].run();
                lam_shutdown();
                printf("PASS threads %s\n", cases[i].name);
                return 0;
            }
        }
    }
    fprintf(stderr, "usage: %s <case>; cases:\n", argv[0]);
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "  %s\n", cases[i].name);
    }
    return 2;
}
