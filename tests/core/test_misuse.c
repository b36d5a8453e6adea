/*
 * Public API misuse and hostile sizes: the contracts lamina.h states for NULL arguments,
 * double releases, use after release, objects that outlive lam_shutdown(), and shapes whose
 * element count overflows. A normal build detects and reports; the ASan build reports a use of
 * a released tensor or block itself (checked in a child process).
 */
#include "test_util.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_BUILD 1
#endif
#endif

TestSuite(misuse, .fini = tu_fini);
TestSuite(shape_overflow, .fini = tu_fini);

#define OK(call)                                                                                   \
    do {                                                                                           \
        lam_status st_ = (call);                                                                   \
        cr_assert_eq(st_, LAM_OK, "%s failed: %s (%s)", #call, lam_status_string(st_),             \
                     lam_last_error());                                                            \
    } while (0)

/* ---- log capture -------------------------------------------------------------------------- */

static char logged[4096];

__attribute__((unused)) static void capture(lam_log_level level, const char *message, void *user) {
    (void)user;
    if (level == LAM_LOG_ERROR) {
        size_t n = strlen(logged);
        snprintf(logged + n, sizeof logged - n, "%s\n", message);
    }
}

/* ---- shapes ------------------------------------------------------------------------------- */

#define P60 ((int64_t)1 << 60)
#define P61 ((int64_t)1 << 61)
#define P62 ((int64_t)1 << 62)

Test(shape_overflow, numel_of_an_overflowing_shape_is_minus_one) {
    lam_shape s = TU_SHAPE(P62, 4); /* 2^64: wrapped to 0 before */
    cr_assert_eq(lam_shape_numel(&s), -1);
    s = TU_SHAPE(P61, P61);
    cr_assert_eq(lam_shape_numel(&s), -1);
    s = TU_SHAPE(P60); /* the largest count allowed */
    cr_assert_eq(lam_shape_numel(&s), P60);
    s = TU_SHAPE(P60, 2);
    cr_assert_eq(lam_shape_numel(&s), -1);
    s = TU_SHAPE(P62, 0); /* no elements, but strides would overflow */
    cr_assert_eq(lam_shape_numel(&s), -1);
    s = TU_SHAPE(3, 0, 5);
    cr_assert_eq(lam_shape_numel(&s), 0);
}

Test(shape_overflow, create_refuses_more_than_2_60_elements) {
    lam_shape s = TU_SHAPE(P62, 4);
    lam_tensor *t = TU_POISON;
    tu_assert_status(lam_tensor_create(tu_ctx(), &s, &t), LAM_ERR_SHAPE, "create (2^62, 4)");
    cr_assert_null(t);
    cr_assert_str_eq(lam_last_error(), "lam_tensor_create: Shape too large, (4611686018427387904, "
                                       "4) has more than 2^60 elements");
    s = TU_SHAPE(P61, 1, 0); /* zero elements, dims beyond the limit anyway */
    tu_assert_status(lam_tensor_create(tu_ctx(), &s, &t), LAM_ERR_SHAPE, "create (2^61, 1, 0)");
    tu_assert_released();
}

Test(shape_overflow, reshape_refuses_an_overflowing_target) {
    lam_tensor *t = tu_tensor(TU_SHAPE(1, 8), (const float[]){1, 2, 3, 4, 5, 6, 7, 8}, 8);
    lam_shape s = TU_SHAPE(P61 + 1, 8); /* 2^64 + 8 elements: wrapped to 8 before */
    lam_tensor *r = TU_POISON;
    tu_assert_status(lam_tensor_reshape(t, &s, &r), LAM_ERR_SHAPE, "reshape to (2^61+1, 8)");
    cr_assert_null(r);
    cr_assert_str_eq(lam_last_error(), "reshape: Shape too large, (2305843009213693953, 8) has "
                                       "more than 2^60 elements");
    s = TU_SHAPE(-1, P61, 4); /* the known dims alone overflow */
    tu_assert_status(lam_tensor_reshape(t, &s, &r), LAM_ERR_SHAPE, "reshape to (-1, 2^61, 4)");
    tu_assert_msg("Shape too large", "reshape to (-1, 2^61, 4)");
    s = TU_SHAPE(2, -1);
    OK(lam_tensor_reshape(t, &s, &r));
    tu_assert_shape(r, 2, (const int64_t[]){2, 4}, "reshape to (2, -1)");
    lam_tensor_release(r);
    lam_tensor_release(t);
    tu_assert_released();
}

Test(shape_overflow, op_results_too_large_are_refused) {
    lam_ctx *ctx = tu_ctx();
    /* Empty operands whose product or broadcast would have 2^80 elements. */
    lam_shape sa = TU_SHAPE((int64_t)1 << 40, 0), sb = TU_SHAPE(0, (int64_t)1 << 40);
    lam_tensor *a = NULL, *b = NULL, *c = TU_POISON;
    OK(lam_tensor_create(ctx, &sa, &a));
    OK(lam_tensor_create(ctx, &sb, &b));
    tu_assert_status(lam_op_matmul(a, b, 0, 0, &c), LAM_ERR_SHAPE, "matmul (2^40,0) x (0,2^40)");
    tu_assert_msg("Shape too large, (1099511627776, 1099511627776) has more than 2^60",
                  "matmul message");
    cr_assert_null(c);
    lam_tensor_release(a);
    lam_tensor_release(b);
    sa = TU_SHAPE((int64_t)1 << 40, 1, 0);
    sb = TU_SHAPE(1, (int64_t)1 << 40, 0);
    OK(lam_tensor_create(ctx, &sa, &a));
    OK(lam_tensor_create(ctx, &sb, &b));
    c = TU_POISON;
    tu_assert_status(lam_op_add(a, b, &c), LAM_ERR_SHAPE, "broadcast add");
    tu_assert_msg("Shape too large", "broadcast add message");
    cr_assert_null(c);
    lam_tensor_release(a);
    lam_tensor_release(b);
    tu_assert_released();
}

static lam_status no_forward(lam_block *self, void *state, uint32_t n, lam_tensor *const *in,
                             lam_tensor **out) {
    (void)self, (void)state, (void)n, (void)in, (void)out;
    return LAM_ERR_INTERNAL;
}

Test(shape_overflow, parameter_shapes_are_checked) {
    lam_block *b = NULL;
    OK(lam_block_create("Big", no_forward, NULL, NULL, &b));
    lam_shape s = TU_SHAPE(P62, 4);
    lam_param *p = (lam_param *)(void *)&p;
    tu_assert_status(lam_block_param_new(b, "w", &s, NULL, &p), LAM_ERR_SHAPE, "param (2^62, 4)");
    cr_assert_null(p);
    cr_assert_str_eq(lam_last_error(),
                     "big0_w: Shape too large, (4611686018427387904, 4) has more than 2^60 "
                     "elements");
    s = TU_SHAPE(LAM_DIM_UNKNOWN, P61, 4); /* the known dims alone overflow */
    tu_assert_status(lam_block_param_new(b, "v", &s, NULL, &p), LAM_ERR_SHAPE,
                     "param (?, 2^61, 4)");
    cr_assert_eq(lam_block_param(b, "w"), NULL);
    cr_assert_eq(lam_block_param(b, "v"), NULL);
    lam_block_release(b);
}

/* ---- NULL getters ------------------------------------------------------------------------- */

Test(misuse, getters_accept_null) {
    cr_assert_eq(lam_tensor_numel(NULL), 0);
    cr_assert_null(lam_tensor_shape(NULL));
    cr_assert_eq(lam_tensor_dtype(NULL), LAM_DTYPE_INVALID);
    cr_assert_null(lam_tensor_ctx(NULL));
    cr_assert_eq(lam_shape_numel(NULL), 0);
    lam_shape s = TU_SHAPE(2);
    cr_assert_eq(lam_shape_equal(NULL, &s), 0);
    cr_assert_eq(lam_shape_equal(&s, NULL), 0);
    cr_assert_null(lam_param_name(NULL));
    cr_assert_null(lam_param_shape(NULL));
    cr_assert_eq(lam_param_is_initialized(NULL), 0);
    cr_assert_eq(lam_param_is_constant(NULL), 0);
    cr_assert_eq(lam_param_grad_req(NULL), LAM_GRAD_INVALID);
    cr_assert_eq(lam_param_lr_mult(NULL), 0.0f);
    cr_assert_eq(lam_param_wd_mult(NULL), 0.0f);
    lam_param_set_lr_mult(NULL, 2.0f);
    lam_param_set_wd_mult(NULL, 2.0f);
    char buf[32];
    cr_assert_str_eq(lam_param_format(NULL, buf, sizeof buf), "(null)");
    tu_assert_status(lam_param_set_grad_req(NULL, LAM_GRAD_ADD), LAM_ERR_INVALID_ARGUMENT,
                     "set_grad_req(NULL)");
    cr_assert_str_eq(lam_last_error(), "lam_param_set_grad_req: Invalid argument, NULL parameter");
    lam_tensor_release(NULL);
    cr_assert_null(lam_tensor_retain(NULL));
    lam_block_release(NULL);
    cr_assert_null(lam_block_retain(NULL));
}

/* ---- double release and use after release ------------------------------------------------- */

/*
 * Runs fn in a child with stderr captured; returns its wait status. The ASan build must end
 * the child with a report naming `kind`.
 */
__attribute__((unused)) static int in_child(void (*fn)(void), char *err, size_t cap) {
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        fn();
        _exit(0);
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fd[0], err + len, cap - 1 - len)) > 0) {
        len += (size_t)r;
    }
    err[len] = '\0';
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static void tensor_released_twice(void) {
    lam_tensor *t = tu_tensor(TU_SHAPE(2), (const float[]){1, 2}, 2);
    lam_tensor_release(t);
    lam_tensor_release(t);
}

__attribute__((unused)) static void tensor_used_after_release(void) {
    lam_tensor *t = tu_tensor(TU_SHAPE(2), (const float[]){1, 2}, 2);
    lam_tensor_release(t);
    float v[2];
    (void)lam_tensor_read(t, v, 2);
}

static void block_released_twice(void) {
    lam_block *b = NULL;
    (void)lam_sequential_create(&b);
    lam_block_release(b);
    lam_block_release(b);
}

#ifdef ASAN_BUILD
static void assert_asan_reports(void (*fn)(void), const char *kind, const char *what) {
    static char err[65536];
    int status = in_child(fn, err, sizeof err);
    cr_assert(!(WIFEXITED(status) && WEXITSTATUS(status) == 0), "%s: the child ended normally",
              what);
    cr_assert(strstr(err, "AddressSanitizer") != NULL && strstr(err, kind) != NULL,
              "%s: no AddressSanitizer report of %s in:\n%s", what, kind, err);
}
#endif

Test(misuse, tensor_released_twice_is_detected_and_ignored) {
#ifdef ASAN_BUILD
    assert_asan_reports(tensor_released_twice, "use-after-poison", "tensor released twice");
#else
    lam_log_set_callback(capture, NULL, LAM_LOG_ERROR);
    logged[0] = '\0';
    tensor_released_twice();
    cr_assert(strstr(logged, "lam_tensor_release: Released tensor ") != NULL &&
                  strstr(logged, ", released more often than retained; ignored") != NULL,
              "logged: %s", logged);
    /* The pool is intact: the next tensors come out right (a corrupted pool crashed here). */
    lam_tensor *a = tu_tensor(TU_SHAPE(3), (const float[]){1, 2, 3}, 3);
    lam_tensor *b = tu_tensor(TU_SHAPE(3), (const float[]){4, 5, 6}, 3);
    lam_tensor *c = NULL;
    OK(lam_op_add(a, b, &c));
    const float *got = tu_read(c);
    cr_assert(got[0] == 5 && got[1] == 7 && got[2] == 9);
    cr_assert_eq(lam_tensor_live_count(), 3);
    lam_tensor_release(a);
    lam_tensor_release(b);
    lam_tensor_release(c);
    tu_assert_released();
    lam_log_set_callback(NULL, NULL, LAM_LOG_ERROR);
#endif
}

Test(misuse, tensor_used_after_release_is_detected) {
#ifdef ASAN_BUILD
    assert_asan_reports(tensor_used_after_release, "use-after-poison", "tensor used after release");
#else
    lam_tensor *t = tu_tensor(TU_SHAPE(2), (const float[]){1, 2}, 2);
    lam_tensor_release(t);
    float v[2];
    tu_assert_status(lam_tensor_read(t, v, 2), LAM_ERR_INVALID_ARGUMENT, "read after release");
    cr_assert_str_eq(lam_last_error(), "lam_tensor_read: Invalid argument, the tensor was released "
                                       "(use after lam_tensor_release)");
    lam_log_set_callback(capture, NULL, LAM_LOG_ERROR);
    logged[0] = '\0';
    cr_assert_null(lam_tensor_retain(t));
    cr_assert(strstr(logged, "retained after its last release") != NULL, "logged: %s", logged);
    lam_log_set_callback(NULL, NULL, LAM_LOG_ERROR);
    tu_assert_released();
#endif
}

Test(misuse, block_released_twice_is_detected) {
#ifdef ASAN_BUILD
    assert_asan_reports(block_released_twice, "heap-use-after-free", "block released twice");
#else
    lam_log_set_callback(capture, NULL, LAM_LOG_ERROR);
    logged[0] = '\0';
    block_released_twice();
    cr_assert(strstr(logged, "lam_block_release: Released block ") != NULL &&
                  strstr(logged, ", released more often than retained; ignored") != NULL,
              "logged: %s", logged);
    lam_log_set_callback(NULL, NULL, LAM_LOG_ERROR);
#endif
}

/* ---- objects that outlive lam_shutdown ---------------------------------------------------- */

Test(misuse, blocks_and_tensors_outlive_shutdown) {
    lam_block *net = NULL;
    OK(lam_sequential_create(&net));
    lam_block *dense = NULL;
    OK(lam_layer_create("Dense", "units=2, in_units=3", &dense));
    OK(lam_sequential_add(net, dense));
    lam_block_release(dense);
    OK(lam_block_initialize(net, NULL, NULL, 0));
    lam_tensor *x = tu_tensor(TU_SHAPE(1, 3), (const float[]){1, 2, 3}, 3);
    lam_tensor *y = NULL;
    OK(lam_block_call(net, x, &y));
    lam_param_list *params = NULL;
    OK(lam_block_collect_params(net, NULL, &params));

    lam_shutdown();

    cr_assert_eq(lam_tensor_live_count(), 0);
    /* Shape getters still answer; the data is gone. */
    cr_assert_eq(lam_tensor_numel(x), 3);
    cr_assert_null(lam_tensor_ctx(x));
    float v[3];
    tu_assert_status(lam_tensor_read(x, v, 3), LAM_ERR_STATE, "read after shutdown");
    cr_assert_str_eq(lam_last_error(), "lam_tensor_read: Runtime shut down, the tensor's data "
                                       "was freed by lam_shutdown()");
    lam_tensor *z = TU_POISON;
    tu_assert_status(lam_op_add(x, x, &z), LAM_ERR_STATE, "add after shutdown");
    tu_assert_msg("Runtime shut down", "add after shutdown");
    cr_assert_null(z);
    lam_tensor *out = TU_POISON;
    tu_assert_status(lam_block_call(net, x, &out), LAM_ERR_STATE, "forward after shutdown");
    char want[256];
    snprintf(want, sizeof want,
             "%s: Runtime shut down, lam_shutdown() unloaded its layer plugin; create the model "
             "again",
             lam_block_name(lam_block_child_at(net, 0)));
    cr_assert_str_eq(lam_last_error(), want);
    cr_assert_null(out);
    char *summary = lam_block_summary(net);
    cr_assert_str_eq(summary, "Sequential(\n  (0): Dense()\n)");
    free(summary);
    /* Releasing everything afterwards is safe (it crashed in the plugin's destroy before). */
    lam_param_list_destroy(params);
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(net);
    /* A new runtime works as before. */
    lam_tensor *w = tu_tensor(TU_SHAPE(1), (const float[]){4}, 1);
    cr_assert_eq(tu_read(w)[0], 4.0f);
    lam_tensor_release(w);
    tu_assert_released();
}
