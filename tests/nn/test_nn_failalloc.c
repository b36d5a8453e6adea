/*
 * test_nn_failalloc.c - every allocation of a recorded forward and backward through the NN ops
 * (conv2d with groups and bias, max and average pooling, pad, moments, batched matmul) fails in
 * turn: each run must return an error with a message, crash nowhere and leave no tensor alive.
 * Run by ctest with liblamina_failalloc.so preloaded; without it (a sanitizer build) it skips.
 * On the CPU context always: the sweep judges the host's code, and Mesa's lavapipe does not
 * survive its own allocations failing (a later vkCmdPipelineBarrier crashes inside it).
 */
#include <criterion/criterion.h>

#include <string.h>

#include "../tools/failalloc/failalloc.h"
#include "lamina/lamina.h"
#include "ref/nn_refs.h"

static lam_failalloc fa;

static void fini(void) {
    lam_shutdown();
}

TestSuite(nn_failalloc, .fini = fini);

#define N_T 24

/* One recorded forward and backward; every tensor it makes is released before it returns. */
static lam_status scenario(void) {
    lam_tensor *t[N_T] = {NULL};
    lam_ctx *ctx = NULL;
    lam_status st = lam_ctx_get("cpu", &ctx);
    const nn_ref *in[4] = {&ref_conv_groups_x, &ref_conv_groups_w, &ref_conv_groups_bias,
                           &ref_mm_shared_a_a};
    for (int i = 0; st == LAM_OK && i < 4; i++) {
        lam_shape s;
        memset(&s, 0, sizeof s);
        s.ndim = in[i]->ndim;
        memcpy(s.dims, in[i]->dims, sizeof s.dims);
        st = lam_tensor_from_data(ctx, &s, in[i]->data, in[i]->count, &t[i]);
        if (st == LAM_OK) {
            st = lam_tensor_attach_grad(t[i]);
        }
    }
    int was = lam_autograd_record_begin(1);
    lam_conv2d_params cp = LAM_CONV2D_PARAMS_INIT;
    cp.groups = 2;
    cp.pad[0] = 1;
    lam_pool2d_params mp = LAM_POOL2D_PARAMS_INIT(3, 3), ap = LAM_POOL2D_PARAMS_INIT(2, 2);
    mp.stride[0] = mp.stride[1] = 1;
    mp.pad[0] = mp.pad[1] = 1;
    ap.flags = LAM_POOL_CEIL_MODE | LAM_POOL_COUNT_INCLUDE_PAD;
    const int64_t before[4] = {0, 0, 1, 1}, after[4] = {0, 0, 0, 1};
    const int32_t axes[3] = {0, 2, 3};
    if (st == LAM_OK) {
        st = lam_op_conv2d(t[0], t[1], t[2], &cp, &t[4]); /* (2, 6, 5, 5) */
    }
    if (st == LAM_OK) {
        st = lam_op_max_pool2d(t[4], &mp, &t[5], &t[6]);
    }
    if (st == LAM_OK) {
        st = lam_op_pad(t[5], before, after, 0.0f, &t[7]);
    }
    if (st == LAM_OK) {
        st = lam_op_avg_pool2d(t[7], &ap, &t[8]);
    }
    if (st == LAM_OK) {
        st = lam_op_moments(t[8], axes, 3, 1, &t[9], &t[10]);
    }
    if (st == LAM_OK) {
        st = lam_op_add(t[9], t[10], &t[11]);
    }
    if (st == LAM_OK) {
        st = lam_op_sum(t[11], NULL, 0, 0, &t[12]);
    }
    if (st == LAM_OK) { /* a shared (1, 2, 4) operand against a (3, 4, 2) batch of t[3]^T */
        lam_shape s = {.ndim = 3, .dims = {3, 4, 2}};
        st = lam_tensor_full(ctx, &s, 0.5f, &t[13]);
    }
    if (st == LAM_OK) {
        st = lam_op_matmul_batched(t[3], t[13], 0, 0, &t[14]);
    }
    if (st == LAM_OK) {
        st = lam_op_sum(t[14], NULL, 0, 0, &t[15]);
    }
    if (st == LAM_OK) {
        st = lam_op_add(t[12], t[15], &t[16]);
    }
    lam_autograd_record_end(was);
    if (st == LAM_OK) {
        st = lam_autograd_backward(t[16], NULL);
    }
    for (int i = 0; st == LAM_OK && i < 4; i++) {
        st = lam_tensor_grad(t[i], &t[17 + i]);
    }
    for (int i = 0; i < N_T; i++) {
        lam_tensor_release(t[i]);
    }
    return st;
}

static void run_once(void *arg) {
    *(lam_status *)arg = scenario();
}

Test(nn_failalloc, every_allocation_failure_is_a_clean_error) {
    if (lam_failalloc_bind(&fa) != 0) {
        const char *req = getenv("LAMINA_TEST_FAILALLOC_REQUIRED");
        cr_assert(req == NULL || req[0] != '1', "liblamina_failalloc.so is not preloaded");
        cr_skip_test("liblamina_failalloc.so is not preloaded (sanitizer build?)");
    }
    lam_status st = scenario(); /* warm: the runtime starts, pools fill */
    cr_assert_eq(st, LAM_OK, "%s", lam_last_error());
    unsigned long n = lam_failalloc_calibrate(&fa, run_once, &st);
    cr_assert_eq(st, LAM_OK, "%s", lam_last_error());
    cr_assert_gt(n, 0);
    unsigned long failed = 0;
    for (unsigned long k = 1; k <= n; k++) {
        lam_clear_error();
        fa.arm(k);
        st = scenario();
        int hit = fa.injected();
        fa.arm(0);
        if (hit) {
            failed += st != LAM_OK;
            cr_assert(st == LAM_OK || lam_last_error()[0] != '\0',
                      "allocation %lu: status %d without a message", k, (int)st);
        }
        cr_assert_eq(lam_tensor_live_count(), 0, "allocation %lu: %zu tensors leaked", k,
                     lam_tensor_live_count());
    }
    cr_log_info("%lu allocations, %lu failures reached the caller", n, failed);
    cr_assert_gt(failed, 0, "no injected failure reached the caller (%lu allocations)", n);
}
