/*
 * test_vulkan_ops2.c - the ops new in ABI 2.0 on the Vulkan backend, on the plugin alone (no
 * core; vk2_fixture.h). Expected values are worked by hand in the comments, or come from the
 * committed NumPy script ref/gen_vk2_refs.py (its output ref/vk2_refs.h).
 */
#include "vk2_fixture.h"

#include "ref/vk2_refs.h"

TestSuite(vk2ops, .init = vk2_open, .fini = vk2_close);

/* Runs a one-output elementwise op over 1-D views of n floats. */
static void run_ew(lam_op op, uint32_t n_in, const float *const *ins, size_t n, const void *params,
                   float *got) {
    void *bufs[3];
    lam_tensor_view views[3];
    const lam_tensor_view *in[3];
    for (uint32_t i = 0; i < n_in; i++) {
        bufs[i] = vk2_buffer(ins[i], n * sizeof(float));
        views[i] = vk2_view(bufs[i], LAM_DTYPE_F32, 0, VK2_DIMS((int64_t)n));
        in[i] = &views[i];
    }
    void *bo = vk2_buffer(NULL, n * sizeof(float));
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS((int64_t)n));
    const lam_tensor_view *out[1] = {&o};
    lam_op_call c = vk2_call(op, n_in, in, 1, out, params);
    vk2_run(&c);
    vk2_read(bo, 0, got, n * sizeof(float));
    for (uint32_t i = 0; i < n_in; i++) {
        vk2_release(bufs[i]);
    }
    vk2_release(bo);
}

Test(vk2ops, comparisons_give_zero_for_nan) {
    const float x[5] = {1, 2, 3, NAN, -0.0f};
    const float y[5] = {2, 2, 2, 1, 0.0f};
    const float *ins[2] = {x, y};
    float got[5];
    run_ew(LAM_OP_GREATER, 2, ins, 5, NULL, got);
    const float gt[5] = {0, 0, 1, 0, 0};
    vk2_expect_floats(got, gt, 5, 0.0f);
    run_ew(LAM_OP_LESS, 2, ins, 5, NULL, got);
    const float lt[5] = {1, 0, 0, 0, 0};
    vk2_expect_floats(got, lt, 5, 0.0f);
    run_ew(LAM_OP_EQUAL, 2, ins, 5, NULL, got);
    const float eq[5] = {0, 1, 0, 0, 1}; /* -0 == 0 */
    vk2_expect_floats(got, eq, 5, 0.0f);
}

Test(vk2ops, clamp_keeps_nan) {
    const float x[5] = {-3, -1, 0.5f, 7, NAN};
    const float *ins[1] = {x};
    lam_scalar_params p = LAM_SCALAR_PARAMS_INIT;
    p.a = -1.0;
    p.b = 2.0;
    float got[5];
    run_ew(LAM_OP_CLAMP, 1, ins, 5, &p, got);
    const float want[5] = {-1, -1, 0.5f, 2, NAN};
    vk2_expect_floats(got, want, 5, 0.0f);
}

/* out = cond != 0 ? x : y; the NaN of the branch not taken does not reach out, a NaN
 * condition counts as nonzero. */
Test(vk2ops, where_selects_without_leaking_nan) {
    const float cond[4] = {1, 0, NAN, 0};
    const float x[4] = {10, NAN, 30, 40};
    const float y[4] = {NAN, 2, 3, 4};
    const float *ins[3] = {cond, x, y};
    float got[4];
    run_ew(LAM_OP_WHERE, 3, ins, 4, NULL, got);
    const float want[4] = {10, 2, 30, 4};
    vk2_expect_floats(got, want, 4, 0.0f);
}

/* int32 -> float32 rounds to nearest: 16777217 -> 16777216, -16777219 -> -16777220. */
Test(vk2ops, cast_int32_to_float32_rounds_to_nearest) {
    const int32_t xs[4] = {0, -7, 16777217, -16777219};
    void *bx = vk2_buffer(xs, sizeof xs);
    void *bo = vk2_buffer(NULL, sizeof xs);
    lam_tensor_view x = vk2_view(bx, LAM_DTYPE_I32, 0, VK2_DIMS(4));
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(4));
    const lam_tensor_view *in[1] = {&x};
    const lam_tensor_view *out[1] = {&o};
    lam_op_call c = vk2_call(LAM_OP_CAST, 1, in, 1, out, NULL);
    vk2_run(&c);
    float got[4];
    vk2_read(bo, 0, got, sizeof got);
    const float want[4] = {0, -7, 16777216.0f, -16777220.0f};
    vk2_expect_floats(got, want, 4, 0.0f);
    /* int32 -> int32 keeps every bit, also patterns that are NaNs as floats */
    const int32_t nanbits[2] = {0x7fa00001, -1};
    void *bn = vk2_buffer(nanbits, sizeof nanbits);
    lam_tensor_view n = vk2_view(bn, LAM_DTYPE_I32, 0, VK2_DIMS(2));
    lam_tensor_view o2 = vk2_view(bo, LAM_DTYPE_I32, 0, VK2_DIMS(2));
    const lam_tensor_view *in2[1] = {&n};
    const lam_tensor_view *out2[1] = {&o2};
    lam_op_call c2 = vk2_call(LAM_OP_CAST, 1, in2, 1, out2, NULL);
    vk2_run(&c2);
    int32_t back[2];
    vk2_read(bo, 0, back, sizeof back);
    cr_assert_eq(back[0], 0x7fa00001);
    cr_assert_eq(back[1], -1);
}

/* float32 -> int32 truncates toward zero; NaN or a value outside int32 is an error of the
 * call itself (not asynchronous), naming the first bad element. */
Test(vk2ops, cast_float32_to_int32_truncates_and_checks_range) {
    const float xs[5] = {1.9f, -2.9f, -2147483648.0f, -0.5f, 2147483520.0f};
    void *bx = vk2_buffer(xs, sizeof xs);
    void *bo = vk2_buffer(NULL, sizeof xs);
    lam_tensor_view x = vk2_view(bx, LAM_DTYPE_F32, 0, VK2_DIMS(5));
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_I32, 0, VK2_DIMS(5));
    const lam_tensor_view *in[1] = {&x};
    const lam_tensor_view *out[1] = {&o};
    lam_op_call c = vk2_call(LAM_OP_CAST, 1, in, 1, out, NULL);
    vk2_run(&c);
    int32_t got[5];
    vk2_read(bo, 0, got, sizeof got);
    const int32_t want[5] = {1, -2, INT32_MIN, 0, 2147483520};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(got[i], want[i], "element %d: got %d, want %d", i, got[i], want[i]);
    }
    const float bad[5] = {0, 1, NAN, 2147483648.0f, 0};
    cr_assert_eq(vk2_desc->buffer_write(vk2_dev, bx, 0, bad, sizeof bad), LAM_OK);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(vk2_msg,
                     "vulkan: Invalid value, cast element 2 is nan, not representable in int32");
    cr_assert_eq(vk2_desc->synchronize(vk2_dev), LAM_OK, "reported once: %s", vk2_msg);
    const float big[5] = {0, 1, 2, 2147483648.0f, 0};
    cr_assert_eq(vk2_desc->buffer_write(vk2_dev, bx, 0, big, sizeof big), LAM_OK);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(vk2_msg, "cast element 3 is 2.14748e+09"), "%s", vk2_msg);
    /* a strided input is left to the host */
    x.dims[0] = 2;
    x.strides[0] = 8;
    o.dims[0] = 2;
    cr_assert_eq(vk2_desc->supports(vk2_dev, &c), 0);
}

/* out (3, 2, 2) = 0.5 * A[b] B for A (3, 2, 3) and B (1, 3, 2) shared by every batch (also as a
 * batch of 3 with a zero batch stride), and with A given transposed; a NaN in batch 0 of A
 * stays in batch 0. */
Test(vk2ops, gemm_batched_shares_b_and_keeps_batches_apart) {
    void *ba = vk2_buffer(ref_gb_a, sizeof ref_gb_a);
    void *bat = vk2_buffer(ref_gb_at, sizeof ref_gb_at);
    void *bb = vk2_buffer(ref_gb_b, sizeof ref_gb_b);
    void *bo = vk2_buffer(NULL, sizeof ref_gb_out);
    lam_tensor_view a = vk2_view(ba, LAM_DTYPE_F32, 0, VK2_DIMS(3, 2, 3));
    lam_tensor_view b = vk2_view(bb, LAM_DTYPE_F32, 0, VK2_DIMS(1, 3, 2));
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(3, 2, 2));
    const lam_tensor_view *in[2] = {&a, &b};
    const lam_tensor_view *out[1] = {&o};
    lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
    p.alpha = 0.5;
    lam_op_call c = vk2_call(LAM_OP_GEMM_BATCHED, 2, in, 1, out, &p);
    vk2_run(&c);
    float got[12];
    vk2_read(bo, 0, got, sizeof got);
    vk2_expect_floats(got, ref_gb_out, 12, 0.0f);
    /* B as a batch of 3 with batch stride 0 */
    b.dims[0] = 3;
    b.strides[0] = 0;
    vk2_desc->buffer_write(vk2_dev, bo, 0, ref_gb_b, sizeof ref_gb_b); /* garbage in out */
    vk2_run(&c);
    vk2_read(bo, 0, got, sizeof got);
    vk2_expect_floats(got, ref_gb_out, 12, 0.0f);
    /* A transposed: at (3, 3, 2) */
    lam_tensor_view at = vk2_view(bat, LAM_DTYPE_F32, 0, VK2_DIMS(3, 3, 2));
    in[0] = &at;
    p.flags = LAM_GEMM_TRANS_A;
    vk2_run(&c);
    vk2_read(bo, 0, got, sizeof got);
    vk2_expect_floats(got, ref_gb_out, 12, 0.0f);
    /* NaN in A[0][0][0]: out[0][0][*] NaN, nothing else changes */
    in[0] = &a;
    p.flags = 0;
    const float nan = NAN;
    vk2_desc->buffer_write(vk2_dev, ba, 0, &nan, sizeof nan);
    vk2_run(&c);
    vk2_read(bo, 0, got, sizeof got);
    float want[12];
    memcpy(want, ref_gb_out, sizeof want);
    want[0] = want[1] = NAN;
    vk2_expect_floats(got, want, 12, 0.0f);
}

/* The windows of ref/gen_vk2_refs.py: kernel (3, 2), stride (2, 1), padding before (1, 0) and
 * after (1, 1), dilation (1, 2), floor mode. */
static lam_window_params win_params(void) {
    lam_window_params w;
    memset(&w, 0, sizeof w);
    w.struct_size = (uint32_t)sizeof w;
    w.n_spatial = 2;
    w.kernel[0] = 3;
    w.kernel[1] = 2;
    w.stride[0] = 2;
    w.stride[1] = 1;
    w.pad_before[0] = 1;
    w.pad_after[0] = 1;
    w.pad_after[1] = 1;
    w.dilation[0] = 1;
    w.dilation[1] = 2;
    return w;
}

/* 3x3 windows, stride 2, padding 1 on every side, ceil mode (the pools' parameters). */
static lam_window_params pool_params(uint32_t flags) {
    lam_window_params w;
    memset(&w, 0, sizeof w);
    w.struct_size = (uint32_t)sizeof w;
    w.n_spatial = 2;
    for (int i = 0; i < 2; i++) {
        w.kernel[i] = 3;
        w.stride[i] = 2;
        w.pad_before[i] = 1;
        w.pad_after[i] = 1;
        w.dilation[i] = 1;
    }
    w.flags = LAM_WINDOW_CEIL_MODE | flags;
    return w;
}

/* Runs a one-input one-output op from host floats to host floats. */
static void run_1to1(lam_op op, const float *x, uint32_t xnd, const int64_t *xd, uint32_t ond,
                     const int64_t *od, const void *params, float *got, size_t n_out) {
    size_t nx = 1;
    for (uint32_t i = 0; i < xnd; i++) {
        nx *= (size_t)xd[i];
    }
    void *bx = vk2_buffer(x, nx * sizeof(float));
    void *bo = vk2_buffer(NULL, n_out * sizeof(float));
    lam_tensor_view xv = vk2_view(bx, LAM_DTYPE_F32, 0, xnd, xd);
    lam_tensor_view ov = vk2_view(bo, LAM_DTYPE_F32, 0, ond, od);
    const lam_tensor_view *in[1] = {&xv};
    const lam_tensor_view *out[1] = {&ov};
    lam_op_call c = vk2_call(op, 1, in, 1, out, params);
    vk2_run(&c);
    vk2_read(bo, 0, got, n_out * sizeof(float));
    vk2_release(bx);
    vk2_release(bo);
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

Test(vk2ops, im2col_and_col2im_match_numpy) {
    lam_window_params w = win_params();
    float got[NELEM(ref_im2col)];
    run_1to1(LAM_OP_IM2COL, ref_win_x, VK2_DIMS(2, 2, 5, 4),
             VK2_DIMS(2, 2 * 3 * 2, REF_WIN_OH * REF_WIN_OW), &w, got, NELEM(got));
    vk2_expect_floats(got, ref_im2col, NELEM(got), 0.0f);
    float back[NELEM(ref_col2im)];
    run_1to1(LAM_OP_COL2IM, ref_col2im_x, VK2_DIMS(2, 2 * 3 * 2, REF_WIN_OH * REF_WIN_OW),
             VK2_DIMS(2, 2, 5, 4), &w, back, NELEM(back));
    vk2_expect_floats(back, ref_col2im, NELEM(back), 0.0f);
    /* an output of the wrong size is refused */
    void *bx = vk2_buffer(ref_win_x, sizeof ref_win_x);
    void *bo = vk2_buffer(NULL, sizeof ref_im2col);
    lam_tensor_view xv = vk2_view(bx, LAM_DTYPE_F32, 0, VK2_DIMS(2, 2, 5, 4));
    lam_tensor_view ov = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(2, 12, 8));
    const lam_tensor_view *in[1] = {&xv};
    const lam_tensor_view *out[1] = {&ov};
    lam_op_call c = vk2_call(LAM_OP_IM2COL, 1, in, 1, out, &w);
    cr_assert_eq(vk2_desc->supports(vk2_dev, &c), 0);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_ERR_SHAPE);
    cr_assert_not_null(strstr(vk2_msg, "vulkan: Shape mismatch, im2col output has dims (2, 12, 8), "
                                       "expected (2, 12, 9)"),
                       "%s", vk2_msg);
}

/* Max pooling with ceil mode (OH 4 where floor gives 3), ties (first wins) and a NaN (wins). */
Test(vk2ops, max_pool_values_indices_and_gradient) {
    lam_window_params w = pool_params(0);
    void *bx = vk2_buffer(ref_pool_x, sizeof ref_pool_x);
    void *bv = vk2_buffer(NULL, sizeof ref_maxpool_v);
    void *bi = vk2_buffer(NULL, sizeof ref_maxpool_i);
    lam_tensor_view xv = vk2_view(bx, LAM_DTYPE_F32, 0, VK2_DIMS(1, 2, 6, 5));
    lam_tensor_view vv = vk2_view(bv, LAM_DTYPE_F32, 0, VK2_DIMS(1, 2, REF_POOL_OH, REF_POOL_OW));
    lam_tensor_view iv = vk2_view(bi, LAM_DTYPE_I32, 0, VK2_DIMS(1, 2, REF_POOL_OH, REF_POOL_OW));
    const lam_tensor_view *in[1] = {&xv};
    const lam_tensor_view *out[2] = {&vv, &iv};
    lam_op_call c = vk2_call(LAM_OP_MAX_POOL, 1, in, 2, out, &w);
    vk2_run(&c);
    float v[NELEM(ref_maxpool_v)];
    int32_t idx[NELEM(ref_maxpool_i)];
    vk2_read(bv, 0, v, sizeof v);
    vk2_read(bi, 0, idx, sizeof idx);
    vk2_expect_floats(v, ref_maxpool_v, NELEM(v), 0.0f);
    for (size_t i = 0; i < NELEM(idx); i++) {
        cr_assert_eq(idx[i], ref_maxpool_i[i], "index %zu: got %d, want %d", i, idx[i],
                     ref_maxpool_i[i]);
    }
    /* the gradient: each x element added at its index */
    void *bg = vk2_buffer(ref_pool_g, sizeof ref_pool_g);
    void *bo = vk2_buffer(NULL, sizeof ref_maxpool_back);
    lam_tensor_view gv = vk2_view(bg, LAM_DTYPE_F32, 0, VK2_DIMS(1, 2, REF_POOL_OH, REF_POOL_OW));
    lam_tensor_view ov = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(1, 2, 6, 5));
    const lam_tensor_view *bin[2] = {&gv, &iv};
    const lam_tensor_view *bout[1] = {&ov};
    lam_op_call b = vk2_call(LAM_OP_MAX_POOL_BACKWARD, 2, bin, 1, bout, &w);
    vk2_run(&b);
    float back[NELEM(ref_maxpool_back)];
    vk2_read(bo, 0, back, sizeof back);
    vk2_expect_floats(back, ref_maxpool_back, NELEM(back), 0.0f);
    /* float indices are refused */
    iv.dtype = LAM_DTYPE_F32;
    cr_assert_eq(vk2_desc->supports(vk2_dev, &c), 0);
}

Test(vk2ops, avg_pool_divisors_and_gradient) {
    lam_window_params w = pool_params(0);
    float got[NELEM(ref_avgpool_ex)];
    run_1to1(LAM_OP_AVG_POOL, ref_pool_xq, VK2_DIMS(1, 2, 6, 5),
             VK2_DIMS(1, 2, REF_POOL_OH, REF_POOL_OW), &w, got, NELEM(got));
    vk2_expect_floats(got, ref_avgpool_ex, NELEM(got), 1e-6f);
    lam_window_params wi = pool_params(LAM_WINDOW_COUNT_INCLUDE_PAD);
    run_1to1(LAM_OP_AVG_POOL, ref_pool_xq, VK2_DIMS(1, 2, 6, 5),
             VK2_DIMS(1, 2, REF_POOL_OH, REF_POOL_OW), &wi, got, NELEM(got));
    vk2_expect_floats(got, ref_avgpool_in, NELEM(got), 1e-6f);
    float back[NELEM(ref_avgpool_back_ex)];
    run_1to1(LAM_OP_AVG_POOL_BACKWARD, ref_pool_g, VK2_DIMS(1, 2, REF_POOL_OH, REF_POOL_OW),
             VK2_DIMS(1, 2, 6, 5), &w, back, NELEM(back));
    vk2_expect_floats(back, ref_avgpool_back_ex, NELEM(back), 1e-6f);
}

/* MOMENTS over the middle axis of (2, 5, 3): mean and biased variance (NumPy, float64 then
 * rounded); the mean lands in a strided output. */
Test(vk2ops, moments_mean_and_biased_variance) {
    void *bx = vk2_buffer(ref_moments_x, sizeof ref_moments_x);
    void *bm = vk2_buffer(NULL, 2 * sizeof ref_moments_mean);
    void *bv = vk2_buffer(NULL, sizeof ref_moments_var);
    lam_tensor_view xv = vk2_view(bx, LAM_DTYPE_F32, 0, VK2_DIMS(2, 5, 3));
    lam_tensor_view mv = vk2_view(bm, LAM_DTYPE_F32, 4, VK2_DIMS(2, 1, 3));
    mv.strides[2] = 8; /* every other float */
    mv.strides[0] = 24;
    lam_tensor_view vv = vk2_view(bv, LAM_DTYPE_F32, 0, VK2_DIMS(2, 1, 3));
    const lam_tensor_view *in[1] = {&xv};
    const lam_tensor_view *out[2] = {&mv, &vv};
    lam_op_call c = vk2_call(LAM_OP_MOMENTS, 1, in, 2, out, NULL);
    vk2_run(&c);
    float m[12], v[6];
    vk2_read(bm, 0, m, sizeof m);
    vk2_read(bv, 0, v, sizeof v);
    const float mean[6] = {m[1], m[3], m[5], m[7], m[9], m[11]};
    vk2_expect_floats(mean, ref_moments_mean, 6, 1e-6f);
    vk2_expect_floats(v, ref_moments_var, 6, 1e-6f);
    cr_assert_eq(m[0], 0.0f);
    cr_assert_eq(m[2], 0.0f);
}

/* RANDOM, 11 elements from counter offset 6 (so the first block is entered at word 2 and an
 * odd count ends NORMAL on half a pair): UNIFORM and BERNOULLI equal the Python Philox bit for
 * bit; NORMAL to float precision of logf/cosf/sinf. */
static void run_random_at(lam_random_kind kind, double a, double b, uint64_t offset, float *got) {
    void *bo = vk2_buffer(NULL, 11 * sizeof(float));
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(11));
    const lam_tensor_view *out[1] = {&o};
    lam_random_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.kind = kind;
    p.seed = REF_RANDOM_SEED;
    p.key = REF_RANDOM_KEY;
    p.offset = offset;
    p.a = a;
    p.b = b;
    lam_op_call c = vk2_call(LAM_OP_RANDOM, 0, NULL, 1, out, &p);
    vk2_run(&c);
    vk2_read(bo, 0, got, 11 * sizeof(float));
    vk2_release(bo);
}

static void run_random(lam_random_kind kind, double a, double b, float *got) {
    run_random_at(kind, a, b, REF_RANDOM_OFFSET, got);
}

Test(vk2ops, random_matches_the_python_philox) {
    float got[11];
    run_random(LAM_RANDOM_UNIFORM, 0.0, 1.0, got);
    for (int i = 0; i < 11; i++) {
        cr_assert_eq(got[i], (float)(ref_random_u[i] >> 8) * 0x1p-24f, "element %d", i);
    }
    vk2_expect_floats(got, ref_random_uniform, 11, 0.0f);
    run_random(LAM_RANDOM_UNIFORM, -1.0, 3.0, got);
    vk2_expect_floats(got, ref_random_uniform_m1_3, 11, 4.8e-7f); /* one ulp of 4 */
    run_random(LAM_RANDOM_BERNOULLI, 0.3, 0.0, got);
    vk2_expect_floats(got, ref_random_bernoulli_03, 11, 0.0f);
    run_random(LAM_RANDOM_NORMAL, 0.5, 2.0, got);
    vk2_expect_floats(got, ref_random_normal_05_2, 11, 2e-5f);
    /* 64-bit counters: the offset's low word wraps and the block number passes 2^32 */
    run_random_at(LAM_RANDOM_UNIFORM, 0.0, 1.0, REF_RANDOM_OFFSET_WRAP, got);
    vk2_expect_floats(got, ref_random_uniform_wrap, 11, 0.0f);
}

/* PAD x (2, 3) = [[1, 2, 3], [4, 5, 6]] with one row before and two columns after, value -1. */
Test(vk2ops, pad_fills_around_the_input) {
    const float xs[6] = {1, 2, 3, 4, 5, 6};
    lam_pad_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.value = -1.0;
    p.before[0] = 1;
    p.after[1] = 2;
    float got[15];
    run_1to1(LAM_OP_PAD, xs, VK2_DIMS(2, 3), VK2_DIMS(3, 5), &p, got, 15);
    const float want[15] = {-1, -1, -1, -1, -1, 1, 2, 3, -1, -1, 4, 5, 6, -1, -1};
    vk2_expect_floats(got, want, 15, 0.0f);
}

/* table (4, 3) = row r holds (10r, 10r + 1, 10r + 2) */
static const float rows_table[12] = {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32};

static lam_op_call rows_call(lam_op op, lam_tensor_view *x, lam_tensor_view *idx,
                             lam_tensor_view *o, const lam_tensor_view **in,
                             const lam_tensor_view **out) {
    in[0] = x;
    in[1] = idx;
    out[0] = o;
    return vk2_call(op, 2, in, 1, out, NULL);
}

Test(vk2ops, gather_rows_and_bad_index_reported_at_sync) {
    const int32_t good[3] = {3, 0, 3};
    void *bt = vk2_buffer(rows_table, sizeof rows_table);
    void *bi = vk2_buffer(good, sizeof good);
    void *bo = vk2_buffer(NULL, 9 * sizeof(float));
    lam_tensor_view t = vk2_view(bt, LAM_DTYPE_F32, 0, VK2_DIMS(4, 3));
    lam_tensor_view i = vk2_view(bi, LAM_DTYPE_I32, 0, VK2_DIMS(3));
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(3, 3));
    const lam_tensor_view *in[2], *out[1];
    lam_op_call c = rows_call(LAM_OP_GATHER_ROWS, &t, &i, &o, in, out);
    vk2_run(&c);
    float got[9];
    vk2_read(bo, 0, got, sizeof got);
    const float want[9] = {30, 31, 32, 0, 1, 2, 30, 31, 32};
    vk2_expect_floats(got, want, 9, 0.0f);
    /* a bad index: execute enqueues, the next synchronizing call reports the first one */
    const int32_t bad[3] = {1, 7, -1};
    cr_assert_eq(vk2_desc->buffer_write(vk2_dev, bi, 0, bad, sizeof bad), LAM_OK);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_OK, "%s", vk2_msg);
    cr_assert_eq(vk2_desc->synchronize(vk2_dev), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(vk2_msg,
                     "vulkan: Index out of range, gather_rows index at position 1 is 7, outside "
                     "[0, 4)");
    /* reported once */
    cr_assert_eq(vk2_desc->synchronize(vk2_dev), LAM_OK, "%s", vk2_msg);
    /* and through buffer_read too */
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_OK, "%s", vk2_msg);
    cr_assert_eq(vk2_desc->buffer_read(vk2_dev, bo, 0, got, sizeof got), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(vk2_msg, "index at position 1 is 7"), "%s", vk2_msg);
    /* int64 indices are left to the host */
    i.dtype = LAM_DTYPE_I64;
    cr_assert_eq(vk2_desc->supports(vk2_dev, &c), 0);
}

/* out (4, 3) starts at 100 everywhere; x (5, 3) row m holds (m, m, m) + (0, 0.5, 0.25);
 * idx (2, 0, 2, 3, 0): out[0] += x1 + x4, out[2] += x0 + x2, out[3] += x3, out[1] unchanged. */
Test(vk2ops, scatter_add_rows_in_increasing_order) {
    float xs[15];
    for (int m = 0; m < 5; m++) {
        xs[3 * m] = (float)m;
        xs[3 * m + 1] = (float)m + 0.5f;
        xs[3 * m + 2] = (float)m + 0.25f;
    }
    float init[12];
    for (int k = 0; k < 12; k++) {
        init[k] = 100.0f;
    }
    const int32_t idx[5] = {2, 0, 2, 3, 0};
    void *bx = vk2_buffer(xs, sizeof xs);
    void *bi = vk2_buffer(idx, sizeof idx);
    void *bo = vk2_buffer(init, sizeof init);
    lam_tensor_view x = vk2_view(bx, LAM_DTYPE_F32, 0, VK2_DIMS(5, 3));
    lam_tensor_view i = vk2_view(bi, LAM_DTYPE_I32, 0, VK2_DIMS(5));
    lam_tensor_view o = vk2_view(bo, LAM_DTYPE_F32, 0, VK2_DIMS(4, 3));
    const lam_tensor_view *in[2], *out[1];
    lam_op_call c = rows_call(LAM_OP_SCATTER_ADD_ROWS, &x, &i, &o, in, out);
    vk2_run(&c);
    float got[12];
    vk2_read(bo, 0, got, sizeof got);
    const float want[12] = {105, 106, 105.5f, 100, 100,    100,
                            102, 103, 102.5f, 103, 103.5f, 103.25f};
    vk2_expect_floats(got, want, 12, 0.0f);
    const int32_t bad[5] = {0, 1, 4, 2, 9};
    cr_assert_eq(vk2_desc->buffer_write(vk2_dev, bi, 0, bad, sizeof bad), LAM_OK);
    cr_assert_eq(vk2_desc->execute(vk2_dev, &c), LAM_OK, "%s", vk2_msg);
    cr_assert_eq(vk2_desc->synchronize(vk2_dev), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(vk2_msg, "vulkan: Index out of range, scatter_add_rows index at position 2 is "
                              "4, outside [0, 4)");
}
