/*
 * test_nn_host.c - the NN ops through the generic host op entry (lam_host_api.op), as a plugin
 * reaches them: the NNHostOp layer of nnhost.c runs one host-op sequence per `case`, and its
 * output is compared with the NumPy references of ref/nn_refs.h (the same figures the front-end
 * tests use). Also the dispatch's own errors (a missing out_shape, a wrong output count).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lamina/lamina.h"
#include "ref/nn_refs.h"

#define MAXN 4096

static void fini(void) {
    lam_shutdown();
}

TestSuite(nn_host, .fini = fini);

#define OK(call)                                                                                   \
    do {                                                                                           \
        lam_status st_ = (call);                                                                   \
        cr_assert_eq(st_, LAM_OK, "%s failed: %s (%s)", #call, lam_status_string(st_),             \
                     lam_last_error());                                                            \
    } while (0)

static lam_tensor *from_ref(const nn_ref *r) {
    lam_ctx *c = NULL;
    OK(lam_ctx_default(&c));
    lam_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = r->ndim;
    for (uint32_t i = 0; i < r->ndim; i++) {
        s.dims[i] = r->dims[i];
    }
    lam_tensor *t = NULL;
    OK(lam_tensor_from_data(c, &s, r->data, r->count, &t));
    return t;
}

/* Runs NNHostOp case `which` on the inputs; returns the status, *out the output. */
static lam_status run(int which, const nn_ref *a, const nn_ref *b, lam_tensor **out) {
    char attrs[32];
    snprintf(attrs, sizeof attrs, "case=%d", which);
    lam_block *blk = NULL;
    OK(lam_layer_create("NNHostOp", attrs, &blk));
    lam_tensor *in[2] = {from_ref(a), b ? from_ref(b) : NULL};
    lam_status st = lam_block_forward(blk, b ? 2 : 1, in, out);
    lam_tensor_release(in[0]);
    lam_tensor_release(in[1]);
    lam_block_release(blk);
    return st;
}

static void expect(int which, const nn_ref *a, const nn_ref *b, const float *want, size_t n,
                   uint32_t ndim, const int64_t *dims, const char *what) {
    lam_tensor *y = NULL;
    OK(run(which, a, b, &y));
    const lam_shape *s = lam_tensor_shape(y);
    cr_assert_eq(s->ndim, ndim, "%s: ndim %u", what, (unsigned)s->ndim);
    for (uint32_t i = 0; i < ndim; i++) {
        cr_assert_eq(s->dims[i], dims[i], "%s: dim %u is %lld, expected %lld", what, i,
                     (long long)s->dims[i], (long long)dims[i]);
    }
    static float got[MAXN];
    cr_assert_eq(lam_tensor_numel(y), (int64_t)n);
    OK(lam_tensor_read(y, got, n));
    for (size_t i = 0; i < n; i++) {
        cr_assert(fabs((double)got[i] - want[i]) <= 1e-4 + 1e-4 * fabs((double)want[i]),
                  "%s: element %zu is %.9g, expected %.9g", what, i, (double)got[i],
                  (double)want[i]);
    }
    lam_tensor_release(y);
}

static void expect_ref(int which, const nn_ref *a, const nn_ref *b, const nn_ref *want,
                       const char *what) {
    expect(which, a, b, want->data, want->count, want->ndim, want->dims, what);
}

Test(nn_host, gemm_batched_with_a_shared_operand) {
    expect_ref(0, &ref_mm_shared_a_a, &ref_mm_shared_a_b, &ref_mm_shared_a_out, "gemm_batched");
}

Test(nn_host, im2col_and_gemm_batched_make_a_convolution) {
    static float want[MAXN]; /* the reference convolution without its bias */
    const nn_ref *r = &ref_conv_basic_out;
    int64_t plane = r->dims[2] * r->dims[3];
    for (size_t i = 0; i < r->count; i++) {
        want[i] = r->data[i] - ref_conv_basic_bias.data[(i / (size_t)plane) % (size_t)r->dims[1]];
    }
    expect(1, &ref_conv_basic_x, &ref_conv_basic_w, want, r->count, r->ndim, r->dims, "conv");
}

Test(nn_host, col2im_gives_the_convolution_data_gradient) {
    expect_ref(2, &ref_conv_basic_g, &ref_conv_basic_w, &ref_conv_basic_dx, "col2im");
}

Test(nn_host, max_pool_indices_route_the_gradient) {
    expect_ref(3, &ref_maxp_odd_x, &ref_maxp_odd_g, &ref_maxp_odd_dx, "max_pool(_backward)");
}

Test(nn_host, avg_pool_and_its_backward) {
    expect_ref(4, &ref_avgp_incl_x, NULL, &ref_avgp_incl_out, "avg_pool");
    expect_ref(5, &ref_avgp_incl_x, &ref_avgp_incl_g, &ref_avgp_incl_dx, "avg_pool_backward");
}

Test(nn_host, pad) {
    expect_ref(6, &ref_pad_x, NULL, &ref_pad_out, "pad");
}

Test(nn_host, moments_over_batch_norm_axes) {
    expect_ref(7, &ref_mom_bn_x, NULL, &ref_mom_bn_mean, "moments mean");
    expect_ref(8, &ref_mom_bn_x, NULL, &ref_mom_bn_var, "moments var");
}

Test(nn_host, dispatch_errors_name_the_op) {
    lam_tensor *y = NULL;
    lam_status st = run(9, &ref_mm_plain_a, NULL, &y);
    cr_assert_eq(st, LAM_ERR_INVALID_ARGUMENT, "%s", lam_last_error());
    cr_assert(strstr(lam_last_error(),
                     "op col2im: Invalid argument, out_shape must give the image's 4-D shape") !=
                  NULL,
              "%s", lam_last_error());
    cr_assert_null(y);
    st = run(10, &ref_maxp_odd_x, NULL, &y);
    cr_assert_eq(st, LAM_ERR_INVALID_ARGUMENT, "%s", lam_last_error());
    cr_assert(strstr(lam_last_error(), "op max_pool: Invalid argument, 1 inputs and 1 outputs "
                                       "given, it takes 1 inputs and 2 outputs") != NULL,
              "%s", lam_last_error());
}
