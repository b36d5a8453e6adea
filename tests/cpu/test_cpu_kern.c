/*
 * test_cpu_kern.c - the CPU backend's vectorized, multi-threaded loops (cpu_kern_impl.h,
 * cpu_pool.c) against references, on every instruction set this CPU has (LAMINA_CPU_ISA) and
 * at 1 and 2 threads (LAMINA_NUM_THREADS), with sizes above the threshold where the pool
 * shares an op.
 *
 * References: the same loops compiled here for the x86-64 baseline and run one element at a
 * time (elementwise and reductions must match them bit for bit: no contraction, same order);
 * libm in double precision, correctly rounded to float, for the polynomial exp, log, tanh and
 * sigmoid (maximum error in ulp, over a sweep of 2^24 inputs, as cpu_kern_impl.h states); and
 * plain loops written here for im2col, col2im and pooling.
 *
 * The plugin is dlopen()ed with a minimal host table (as test_cpu_ops2.c): the backend alone.
 */
#define _GNU_SOURCE

#include <criterion/criterion.h>

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"

/* The scalar reference: cpu_kern_impl.h compiled for this file's (baseline) target. */
#define CPU_KERN_SFX ref
#include "cpu_kern_impl.h"

/* ---- a minimal host ---- */

#include "cpu_test_host.h"

static void open_backend(void) {
    cpu_test_open_backend();
}

static void teardown(void) {
    cpu_test_close_backend();
}

/* Opens the backend with LAMINA_CPU_ISA = isa and LAMINA_NUM_THREADS = threads (each test is
 * its own process, so the backend reads them fresh). Skips an ISA this CPU lacks. */
static void open_with(const char *isa, const char *threads) {
    __builtin_cpu_init();
    if ((strcmp(isa, "avx2") == 0 &&
         !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) ||
        (strcmp(isa, "avx512") == 0 &&
         !(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")))) {
        cr_skip("this CPU lacks %s", isa);
    }
    setenv("LAMINA_CPU_ISA", isa, 1);
    setenv("LAMINA_NUM_THREADS", threads, 1);
    open_backend();
}

TestSuite(cpu_kern, .fini = teardown);

/* ---- tensors ---- */

typedef struct tens {
    void *buf;
    lam_tensor_view v;
} tens;

/* A float32 tensor of nd dims over a buffer of `elems` elements, with element strides st. */
static tens mk_strided(uint32_t nd, const int64_t *dims, const int64_t *st, size_t elems,
                       const float *data) {
    tens t;
    cr_assert_eq(g_desc.buffer_alloc(g_dev, elems * 4, &t.buf), LAM_OK, "%s", g_msg);
    memset(&t.v, 0, sizeof t.v);
    t.v.struct_size = (uint32_t)sizeof t.v;
    t.v.dtype = LAM_DTYPE_F32;
    t.v.buffer = t.buf;
    t.v.ndim = nd;
    for (uint32_t d = 0; d < nd; d++) {
        t.v.dims[d] = dims[d];
        t.v.strides[d] = st[d] * 4;
    }
    if (data != NULL) {
        cr_assert_eq(g_desc.buffer_write(g_dev, t.buf, 0, data, elems * 4), LAM_OK, "%s", g_msg);
    }
    return t;
}

static tens mk_dense(uint32_t nd, const int64_t *dims, const float *data) {
    int64_t st[LAM_MAX_DIMS];
    size_t n = 1;
    for (int d = (int)nd - 1; d >= 0; d--) {
        st[d] = (int64_t)n;
        n *= (size_t)dims[d];
    }
    return mk_strided(nd, dims, st, n, data);
}

static float *host_of(const tens *t) {
    return g_desc.buffer_host_ptr(g_dev, t->buf);
}

static void rm(tens *t) {
    g_desc.buffer_free(g_dev, t->buf);
}

static lam_status run(lam_op op, const void *params, uint32_t n_in, const tens *const *in,
                      uint32_t n_out, const tens *const *out) {
    const lam_tensor_view *iv[3], *ov[2];
    for (uint32_t i = 0; i < n_in; i++) {
        iv[i] = &in[i]->v;
    }
    for (uint32_t i = 0; i < n_out; i++) {
        ov[i] = &out[i]->v;
    }
    lam_op_call c;
    memset(&c, 0, sizeof c);
    c.struct_size = (uint32_t)sizeof c;
    c.abi_version = LAM_ABI_VERSION;
    c.op = op;
    c.n_inputs = n_in;
    c.n_outputs = n_out;
    c.inputs = n_in > 0 ? iv : NULL;
    c.outputs = ov;
    c.params = params;
    g_msg[0] = '\0';
    return g_desc.execute(g_dev, &c);
}

/* Inputs: a spread of magnitudes and signs, with NaN, infinities, zeros and subnormals. */
static void fill_inputs(float *v, size_t n, uint32_t seed) {
    static const float special[] = {NAN,   INFINITY, -INFINITY, 0.0f,    -0.0f, 1e-40f, -1e-40f,
                                    88.0f, -88.0f,   100.0f,    -110.0f, 1.0f,  -1.0f,  0.5f};
    uint32_t s = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        const float u = (float)(s >> 8) / 16777216.0f; /* [0, 1) */
        const float mag = powf(10.0f, 4.0f * u - 2.0f);
        v[i] = ((s >> 3) & 1u) ? -mag : mag;
        if (i % 97 == 5) {
            v[i] = special[(i / 97) % (sizeof special / sizeof special[0])];
        }
    }
}

static int same_float(float a, float b) {
    if (isnan(a) || isnan(b)) {
        return isnan(a) && isnan(b);
    }
    uint32_t ua, ub;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    return ua == ub;
}

/* ---- elementwise: bit-identical to the scalar reference, any layout, any thread count ---- */

static const lam_op k_unary[] = {
    LAM_OP_COPY,        LAM_OP_ADD_SCALAR, LAM_OP_MUL_SCALAR, LAM_OP_RSUB_SCALAR, LAM_OP_DIV_SCALAR,
    LAM_OP_RDIV_SCALAR, LAM_OP_NEG,        LAM_OP_ABS,        LAM_OP_SQUARE,      LAM_OP_SQRT,
    LAM_OP_EXP,         LAM_OP_LOG,        LAM_OP_RELU,       LAM_OP_SIGMOID,     LAM_OP_TANH,
    LAM_OP_SOFTRELU,    LAM_OP_STEP,       LAM_OP_CLAMP};
static const lam_op k_binary[] = {
    LAM_OP_ADD,           LAM_OP_SUB,   LAM_OP_MUL,     LAM_OP_DIV,  LAM_OP_MAXIMUM, LAM_OP_MINIMUM,
    LAM_OP_GREATER_EQUAL, LAM_OP_AXPBY, LAM_OP_GREATER, LAM_OP_LESS, LAM_OP_EQUAL};

#define R 300
#define C 701

/*
 * out (R, C) = op(x, y) with x dense or transposed (a strided read) and y dense, broadcast
 * along rows (R, 1) or along columns (1, C), against the reference kernel one element at a
 * time.
 */
static void check_ew(lam_op op, int binary, int layout) {
    const int64_t dims[2] = {R, C};
    float *xd = malloc(sizeof(float) * R * C), *yd = malloc(sizeof(float) * R * C);
    fill_inputs(xd, (size_t)R * C, (uint32_t)op);
    fill_inputs(yd, (size_t)R * C, (uint32_t)op + 77u);
    /* layout 0: x dense, y dense; 1: x transposed, y (R, 1); 2: x dense, y (1, C) */
    const int64_t xst[2] = {layout == 1 ? 1 : C, layout == 1 ? R : 1};
    const int64_t yst[2] = {layout == 2 ? 0 : (layout == 1 ? 1 : C), layout == 0 ? 1 : 0};
    tens x = mk_strided(2, dims, xst, (size_t)R * C, xd);
    tens y = mk_strided(2, dims, yst, (size_t)R * C, yd);
    tens o = mk_dense(2, dims, NULL);
    lam_scalar_params sp = LAM_SCALAR_PARAMS_INIT;
    sp.a = op == LAM_OP_CLAMP ? -0.5 : 1.75;
    sp.b = op == LAM_OP_CLAMP ? 0.25 : -0.625;
    const tens *in[2] = {&x, &y}, *out[1] = {&o};
    cr_assert_eq(run(op, &sp, binary ? 2 : 1, in, 1, out), LAM_OK, "op %d: %s", (int)op, g_msg);
    const float *got = host_of(&o);
    cpu_ew_row ref = ew_row_ref(op);
    for (int64_t i = 0; i < R; i++) {
        for (int64_t j = 0; j < C; j++) {
            const float a = xd[i * xst[0] + j * xst[1]];
            const float b = yd[i * yst[0] + j * yst[1]];
            float want;
            ref(1, &want, 1, &a, 1, &b, 1, (float)sp.a, (float)sp.b);
            cr_assert(same_float(got[i * C + j], want),
                      "op %d layout %d at (%lld, %lld): x %.9g y %.9g: got %.9g, want %.9g",
                      (int)op, layout, (long long)i, (long long)j, a, b, got[i * C + j], want);
        }
    }
    rm(&x);
    rm(&y);
    rm(&o);
    free(xd);
    free(yd);
}

static void ew_all(const char *isa, const char *threads) {
    open_with(isa, threads);
    for (int layout = 0; layout < 3; layout++) {
        for (size_t k = 0; k < sizeof k_unary / sizeof k_unary[0]; k++) {
            check_ew(k_unary[k], 0, layout);
        }
        for (size_t k = 0; k < sizeof k_binary / sizeof k_binary[0]; k++) {
            check_ew(k_binary[k], 1, layout);
        }
    }
}

Test(cpu_kern, elementwise_base_1_thread_matches_scalar) {
    ew_all("base", "1");
}
Test(cpu_kern, elementwise_avx2_2_threads_matches_scalar) {
    ew_all("avx2", "2");
}
Test(cpu_kern, elementwise_avx512_2_threads_matches_scalar) {
    ew_all("avx512", "2");
}
Test(cpu_kern, elementwise_avx512_1_thread_matches_scalar) {
    ew_all("avx512", "1");
}

/* ---- exp, log, tanh, sigmoid: error against libm over a sweep ---- */

/* Distance in units in the last place between two finite floats of the same sign region. */
static double ulp_dist(float got, double want) {
    const float wf = (float)want; /* correctly rounded (double rounding aside: < 0.5 ulp more) */
    if (same_float(got, wf)) {
        return 0.0;
    }
    if (isinf(wf) || isinf(got) || isnan(got)) {
        return INFINITY;
    }
    const double ulp =
        fabs(wf) >= 1.17549435e-38f ? ldexp(1.0, ilogb((double)fabsf(wf)) - 23) : ldexp(1.0, -149);
    return fabs((double)got - want) / ulp;
}

static double ref_math(lam_op op, double x) {
    switch (op) {
    case LAM_OP_EXP:
        return exp(x);
    case LAM_OP_LOG:
        return log(x);
    case LAM_OP_TANH:
        return tanh(x);
    default:
        return 1.0 / (1.0 + exp(-x));
    }
}

/* Every 256th float bit pattern (2^24 inputs, both signs, all exponents) through the op. */
static void sweep(const char *isa, lam_op op, double bound) {
    open_with(isa, "2");
    const int64_t n = INT64_C(1) << 24;
    float *xd = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        const uint32_t u = (uint32_t)i << 8 | 0x5bu;
        memcpy(&xd[i], &u, 4);
    }
    tens x = mk_dense(1, &n, xd);
    tens o = mk_dense(1, &n, NULL);
    const tens *in[1] = {&x}, *out[1] = {&o};
    cr_assert_eq(run(op, NULL, 1, in, 1, out), LAM_OK, "%s", g_msg);
    const float *got = host_of(&o);
    double worst = 0.0;
    float worst_x = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        const float a = xd[i];
        const double want = ref_math(op, (double)a);
        if (isnan(a) || isnan(want)) {
            cr_assert(isnan(got[i]), "op %d of %.9g: got %.9g, want NaN", (int)op, a, got[i]);
            continue;
        }
        const double d = ulp_dist(got[i], want);
        if (d > worst) {
            worst = d;
            worst_x = a;
        }
    }
    cr_log_info("%s op %d: max error %.3f ulp at %.9g", isa, (int)op, worst, worst_x);
    cr_assert(worst <= bound, "%s op %d: max error %.3f ulp at x = %.9g, bound %.1f", isa, (int)op,
              worst, worst_x, bound);
    rm(&x);
    rm(&o);
    free(xd);
}

Test(cpu_kern, exp_within_1_ulp_avx512) {
    sweep("avx512", LAM_OP_EXP, 1.0);
}
Test(cpu_kern, exp_within_1_ulp_avx2) {
    sweep("avx2", LAM_OP_EXP, 1.0);
}
Test(cpu_kern, exp_within_1_ulp_base) {
    sweep("base", LAM_OP_EXP, 1.0);
}
Test(cpu_kern, log_within_1_ulp_avx512) {
    sweep("avx512", LAM_OP_LOG, 1.0);
}
Test(cpu_kern, log_within_1_ulp_avx2) {
    sweep("avx2", LAM_OP_LOG, 1.0);
}
Test(cpu_kern, tanh_within_1_5_ulp_avx512) {
    sweep("avx512", LAM_OP_TANH, 1.5);
}
Test(cpu_kern, tanh_within_1_5_ulp_avx2) {
    sweep("avx2", LAM_OP_TANH, 1.5);
}
Test(cpu_kern, sigmoid_within_2_5_ulp_avx512) {
    sweep("avx512", LAM_OP_SIGMOID, 2.5);
}
Test(cpu_kern, sigmoid_within_2_5_ulp_avx2) {
    sweep("avx2", LAM_OP_SIGMOID, 2.5);
}

Test(cpu_kern, math_special_values) {
    open_with("base", "1");
    const int64_t n = 6;
    const float xs[6] = {-INFINITY, INFINITY, 0.0f, -0.0f, -1.0f, NAN};
    const lam_op ops[4] = {LAM_OP_EXP, LAM_OP_LOG, LAM_OP_TANH, LAM_OP_SIGMOID};
    const float want[4][6] = {{0.0f, INFINITY, 1.0f, 1.0f, 0.36787945f, NAN},
                              {NAN, INFINITY, -INFINITY, -INFINITY, NAN, NAN},
                              {-1.0f, 1.0f, 0.0f, -0.0f, -0.76159416f, NAN},
                              {0.0f, 1.0f, 0.5f, 0.5f, 0.26894142f, NAN}};
    for (int k = 0; k < 4; k++) {
        tens x = mk_dense(1, &n, xs);
        tens o = mk_dense(1, &n, NULL);
        const tens *in[1] = {&x}, *out[1] = {&o};
        cr_assert_eq(run(ops[k], NULL, 1, in, 1, out), LAM_OK, "%s", g_msg);
        const float *got = host_of(&o);
        for (int i = 0; i < 6; i++) {
            cr_assert(same_float(got[i], want[k][i]) ||
                          (!isnan(want[k][i]) && fabsf(got[i] - want[k][i]) < 2e-7f),
                      "op %d of %g: got %.9g, want %.9g", (int)ops[k], xs[i], got[i], want[k][i]);
        }
        rm(&x);
        rm(&o);
    }
}

/* ---- reductions, softmax, moments: bit-identical to the reference ---- */

static void check_reduce(lam_op op, int64_t outer, int64_t n, int64_t inner, int transposed) {
    const int64_t dims[3] = {outer, n, inner};
    const size_t count = (size_t)(outer * n * inner);
    /* transposed: the inner and n axes swapped in memory (strided lines / blocks) */
    const int64_t st[3] = {n * inner, transposed ? 1 : inner, transposed ? n : 1};
    float *xd = malloc(sizeof(float) * count);
    fill_inputs(xd, count, (uint32_t)op * 3u);
    for (size_t i = 0; i < count; i++) { /* finite inputs: NaN rules are test_cpu_ops2's */
        xd[i] = isfinite(xd[i]) ? fmodf(xd[i], 50.0f) : 0.25f;
    }
    const int softmax = op == LAM_OP_SOFTMAX || op == LAM_OP_LOG_SOFTMAX;
    const int64_t odims[3] = {outer, softmax ? n : 1, inner};
    const lam_dtype odt = op == LAM_OP_ARGMAX ? LAM_DTYPE_I32 : LAM_DTYPE_F32;
    tens x = mk_strided(3, dims, st, count, xd);
    tens o = mk_dense(3, odims, NULL);
    tens v = mk_dense(3, odims, NULL);
    if (odt == LAM_DTYPE_I32) {
        o.v.dtype = LAM_DTYPE_I32;
    }
    const tens *in[1] = {&x}, *out[2] = {&o, &v};
    const int moments = op == LAM_OP_MOMENTS;
    cr_assert_eq(run(op, NULL, 1, in, moments ? 2 : 1, out), LAM_OK, "op %d: %s", (int)op, g_msg);
    /* the reference on host copies, one task at a time */
    const size_t ocount = (size_t)(outer * odims[1] * inner);
    float *ro = calloc(ocount, sizeof(float)), *rv = calloc(ocount, sizeof(float));
    cpu_call call;
    memset(&call, 0, sizeof call);
    call.op = op;
    call.n_in = 1;
    call.n_out = moments ? 2 : 1;
    cpu_view *views[3] = {&call.in[0], &call.out[0], &call.out[1]};
    float *datas[3] = {xd, ro, rv};
    for (int k = 0; k < 3; k++) {
        views[k]->dtype = k == 1 ? odt : LAM_DTYPE_F32;
        views[k]->ndim = 3;
        views[k]->esize = 4;
        views[k]->data = (char *)datas[k];
        for (int d = 0; d < 3; d++) {
            views[k]->dims[d] = k == 0 ? dims[d] : odims[d];
        }
        views[k]->st[0] = k == 0 ? st[0] : odims[1] * inner;
        views[k]->st[1] = k == 0 ? st[1] : inner;
        views[k]->st[2] = k == 0 ? st[2] : 1;
    }
    const int blocked = inner > 1 && st[2] == 1 && n > 0 &&
                        (op == LAM_OP_REDUCE_SUM || op == LAM_OP_REDUCE_MEAN ||
                         op == LAM_OP_REDUCE_MAX || op == LAM_OP_REDUCE_MIN || moments);
    const int64_t per = blocked ? (inner + CPU_RED_BLOCK - 1) / CPU_RED_BLOCK : inner;
    for (int64_t t = 0; t < outer * per; t++) {
        cpu_kern_ref.reduce_tasks(&call, blocked, t, t + 1);
    }
    const float *got = host_of(&o), *gotv = host_of(&v);
    for (size_t i = 0; i < ocount; i++) {
        cr_assert(same_float(got[i], ro[i]),
                  "op %d (%lld, %lld, %lld)%s element %zu: got %.9g, "
                  "want %.9g",
                  (int)op, (long long)outer, (long long)n, (long long)inner,
                  transposed ? " transposed" : "", i, got[i], ro[i]);
        if (moments) {
            cr_assert(same_float(gotv[i], rv[i]), "variance element %zu: got %.9g, want %.9g", i,
                      gotv[i], rv[i]);
        }
    }
    /* and the reference itself is right: spot-check a sum/mean/moments against a double sum */
    if (op == LAM_OP_REDUCE_MEAN || moments) {
        double acc = 0.0;
        for (int64_t k = 0; k < n; k++) {
            acc += xd[k * st[1]];
        }
        cr_assert_float_eq(ro[0], (float)(acc / (double)n), 1e-5f * (1.0f + fabsf(ro[0])));
    }
    rm(&x);
    rm(&o);
    rm(&v);
    free(xd);
    free(ro);
    free(rv);
}

static void reduce_all(const char *isa, const char *threads) {
    open_with(isa, threads);
    const lam_op ops[] = {LAM_OP_REDUCE_SUM, LAM_OP_REDUCE_MEAN, LAM_OP_REDUCE_MAX,
                          LAM_OP_REDUCE_MIN, LAM_OP_ARGMAX,      LAM_OP_MOMENTS,
                          LAM_OP_SOFTMAX,    LAM_OP_LOG_SOFTMAX};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        check_reduce(ops[k], 3, 517, 700, 0); /* blocked (dense inner) */
        check_reduce(ops[k], 700, 515, 1, 0); /* dense lines */
        check_reduce(ops[k], 4, 300, 129, 1); /* strided lines */
    }
}

Test(cpu_kern, reductions_base_1_thread_match_reference) {
    reduce_all("base", "1");
}
Test(cpu_kern, reductions_avx2_2_threads_match_reference) {
    reduce_all("avx2", "2");
}
Test(cpu_kern, reductions_avx512_2_threads_match_reference) {
    reduce_all("avx512", "2");
}

/* ---- im2col, col2im, pooling split across threads: plain loops as the reference ---- */

Test(cpu_kern, window_ops_across_threads_match_plain_loops) {
    open_with("base", "2");
    enum { N = 4, CH = 16, H = 30, W = 29, K = 3 };
    const int64_t xdims[4] = {N, CH, H, W};
    const int64_t L = (int64_t)H * W; /* stride 1, padding 1: same size */
    const int64_t cdims[3] = {N, CH * K * K, L};
    float *xd = malloc(sizeof(float) * N * CH * H * W);
    fill_inputs(xd, (size_t)N * CH * H * W, 5);
    for (size_t i = 0; i < (size_t)N * CH * H * W; i++) {
        xd[i] = isfinite(xd[i]) ? fmodf(xd[i], 10.0f) : 1.0f;
    }
    tens x = mk_dense(4, xdims, xd);
    tens col = mk_dense(3, cdims, NULL);
    lam_window_params wp = LAM_WINDOW_PARAMS_INIT;
    wp.n_spatial = 2;
    wp.kernel[0] = wp.kernel[1] = K;
    wp.stride[0] = wp.stride[1] = 1;
    wp.pad_before[0] = wp.pad_before[1] = wp.pad_after[0] = wp.pad_after[1] = 1;
    wp.dilation[0] = wp.dilation[1] = 1;
    const tens *in[1] = {&x}, *out[1] = {&col};
    cr_assert_eq(run(LAM_OP_IM2COL, &wp, 1, in, 1, out), LAM_OK, "%s", g_msg);
    const float *cg = host_of(&col);
    float *back = calloc((size_t)N * CH * H * W, sizeof(float));
    for (int64_t n = 0; n < N; n++) {
        for (int64_t c = 0; c < CH; c++) {
            for (int64_t i = 0; i < K; i++) {
                for (int64_t j = 0; j < K; j++) {
                    for (int64_t oh = 0; oh < H; oh++) {
                        for (int64_t ow = 0; ow < W; ow++) {
                            const int64_t h = oh + i - 1, w = ow + j - 1;
                            const int inside = h >= 0 && h < H && w >= 0 && w < W;
                            const float want = inside ? xd[((n * CH + c) * H + h) * W + w] : 0.0f;
                            const int64_t at =
                                (n * CH * K * K + (c * K + i) * K + j) * L + oh * W + ow;
                            cr_assert(same_float(cg[at], want), "im2col at %lld", (long long)at);
                            if (inside) {
                                back[((n * CH + c) * H + h) * W + w] += cg[at];
                            }
                        }
                    }
                }
            }
        }
    }
    /* col2im of those columns: each pixel summed over the taps that read it */
    tens img = mk_dense(4, xdims, NULL);
    const tens *in2[1] = {&col}, *out2[1] = {&img};
    cr_assert_eq(run(LAM_OP_COL2IM, &wp, 1, in2, 1, out2), LAM_OK, "%s", g_msg);
    const float *ig = host_of(&img);
    for (size_t i = 0; i < (size_t)N * CH * H * W; i++) {
        cr_assert(fabsf(ig[i] - back[i]) <= 1e-5f * (1.0f + fabsf(back[i])),
                  "col2im at %zu: got %.9g, want %.9g", i, ig[i], back[i]);
    }
    /* max pooling 2x2 stride 2 (floor) and its indices */
    lam_window_params pp = wp;
    pp.kernel[0] = pp.kernel[1] = 2;
    pp.stride[0] = pp.stride[1] = 2;
    pp.pad_before[0] = pp.pad_before[1] = pp.pad_after[0] = pp.pad_after[1] = 0;
    const int64_t pdims[4] = {N, CH, H / 2, W / 2};
    tens po = mk_dense(4, pdims, NULL);
    tens pi = mk_dense(4, pdims, NULL);
    pi.v.dtype = LAM_DTYPE_I32;
    const tens *out3[2] = {&po, &pi};
    cr_assert_eq(run(LAM_OP_MAX_POOL, &pp, 1, in, 2, out3), LAM_OK, "%s", g_msg);
    const float *pg = host_of(&po);
    const int32_t *ig32 = (const int32_t *)(const void *)host_of(&pi);
    for (int64_t p = 0; p < N * CH; p++) {
        for (int64_t oh = 0; oh < H / 2; oh++) {
            for (int64_t ow = 0; ow < W / 2; ow++) {
                float best = -INFINITY;
                int32_t at = -1;
                for (int64_t i = 0; i < 2; i++) {
                    for (int64_t j = 0; j < 2; j++) {
                        const int64_t h = 2 * oh + i, w = 2 * ow + j;
                        const float v = xd[p * H * W + h * W + w];
                        if (at < 0 || v > best) {
                            best = v;
                            at = (int32_t)(h * W + w);
                        }
                    }
                }
                const int64_t o = (p * (H / 2) + oh) * (W / 2) + ow;
                cr_assert(same_float(pg[o], best) && ig32[o] == at, "max_pool at %lld",
                          (long long)o);
            }
        }
    }
    rm(&x);
    rm(&col);
    rm(&img);
    rm(&po);
    rm(&pi);
    free(xd);
    free(back);
}

/* ---- GEMM's panel loops (products with one of m, k <= 64 and B's rows contiguous) ---- */

/*
 * C = alpha op(A) B + beta C against a double-precision loop, NaN in C ignored when beta is 0.
 * a_step 2: A's elements are every other float of its buffer (both strides even), a layout
 * BLAS cannot take, so the backend runs its own loops (the panels where they fit).
 */
static void check_gemm_a(int64_t m, int64_t n, int64_t k, int trans_a, double alpha, double beta,
                         int64_t a_step) {
    const int64_t ad[2] = {trans_a ? k : m, trans_a ? m : k}, bd[2] = {k, n}, cd[2] = {m, n};
    const int64_t ast[2] = {ad[1] * a_step, a_step};
    float *a = malloc(sizeof(float) * (size_t)(m * k * a_step)),
          *b = malloc(sizeof(float) * (size_t)(k * n));
    float *c0 = malloc(sizeof(float) * (size_t)(m * n));
    for (int64_t i = 0; i < m * k * a_step; i++) {
        a[i] = (float)sin(0.37 * (double)i);
    }
    for (int64_t i = 0; i < k * n; i++) {
        b[i] = (float)cos(0.11 * (double)i);
    }
    for (int64_t i = 0; i < m * n; i++) {
        c0[i] = beta == 0.0 ? NAN : (float)(0.5 + 0.001 * (double)i);
    }
    tens ta = mk_strided(2, ad, ast, (size_t)(m * k * a_step), a), tb = mk_dense(2, bd, b),
         tc = mk_dense(2, cd, c0);
    lam_gemm_params p = LAM_GEMM_PARAMS_INIT;
    p.flags = trans_a ? LAM_GEMM_TRANS_A : 0u;
    p.alpha = alpha;
    p.beta = beta;
    const tens *in[2] = {&ta, &tb}, *out[1] = {&tc};
    cr_assert_eq(run(LAM_OP_GEMM, &p, 2, in, 1, out), LAM_OK, "%s", g_msg);
    const float *got = host_of(&tc);
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0, mag = 0.0;
            for (int64_t q = 0; q < k; q++) {
                const double av = trans_a ? a[(q * m + i) * a_step] : a[(i * k + q) * a_step];
                acc += av * (double)b[q * n + j];
                mag += fabs(av * (double)b[q * n + j]);
            }
            const double want = alpha * acc + (beta != 0.0 ? beta * (double)c0[i * n + j] : 0.0);
            const double tol = 1e-6 * (fabs(alpha) * mag + fabs(beta) + 1.0);
            cr_assert(fabs((double)got[i * n + j] - want) <= tol,
                      "%lld x %lld x %lld%s at (%lld, %lld): got %.9g, want %.9g", (long long)m,
                      (long long)n, (long long)k, trans_a ? " (A^T)" : "", (long long)i,
                      (long long)j, got[i * n + j], want);
        }
    }
    rm(&ta);
    rm(&tb);
    rm(&tc);
    free(a);
    free(b);
    free(c0);
}

static void check_gemm(int64_t m, int64_t n, int64_t k, int trans_a, double alpha, double beta) {
    check_gemm_a(m, n, k, trans_a, alpha, beta, 1);
}

static void gemm_all(const char *isa, const char *threads) {
    open_with(isa, threads);
    check_gemm(32, 784, 144, 0, 1.0, 0.0); /* a conv's forward: W x columns */
    check_gemm(144, 784, 32, 1, 1.0, 0.0); /* its backward-data: W^T x G */
    /* The panels take products above 10^6 multiply-adds (smaller ones go to OpenBLAS). */
    check_gemm(6, 1000, 200, 0, 1.0, 0.0);   /* rows < 8, a column tail */
    check_gemm(37, 270, 150, 0, -0.5, 0.25); /* row and column tails, alpha, beta */
    check_gemm(200, 530, 10, 1, 2.0, 1.0);   /* narrow k, tall m, a column tail */
    check_gemm(6, 100, 25, 0, 1.0, 0.0);     /* a LeNet conv2 product: OpenBLAS */
    check_gemm(64, 4096, 9, 0, 1.0, 0.0);    /* long rows */
    check_gemm(64, 3136, 64, 0, 1.0, 0.0);   /* from 2^22 MACs: OpenBLAS's threads at 2 threads */
    /* A layout OpenBLAS cannot take: the panels on every ISA, whatever the shape rules say */
    check_gemm_a(64, 3136, 64, 0, 1.0, 0.0, 2);
    check_gemm_a(40, 530, 150, 1, -0.5, 0.25, 2);
}

Test(cpu_kern, gemm_panels_avx512_match_double_reference) {
    gemm_all("avx512", "1");
}
/* At two threads the products from 2^22 multiply-adds go to OpenBLAS's threads instead. */
Test(cpu_kern, gemm_panels_avx512_2_threads_match_double_reference) {
    gemm_all("avx512", "2");
}
Test(cpu_kern, gemm_panels_avx2_2_threads_match_double_reference) {
    gemm_all("avx2", "2");
}
Test(cpu_kern, gemm_panels_avx2_match_double_reference) {
    gemm_all("avx2", "1");
}
Test(cpu_kern, gemm_base_matches_double_reference) {
    gemm_all("base", "1");
}

/* ---- LAYER_NORM and its backward: bit-identical to the reference at any ISA and thread count */

static lam_status run_ln(lam_op op, uint32_t n_in, const tens *const *in, uint32_t n_out,
                         const tens *const *out) {
    const lam_tensor_view *iv[5], *ov[3];
    for (uint32_t i = 0; i < n_in; i++) {
        iv[i] = &in[i]->v;
    }
    for (uint32_t i = 0; i < n_out; i++) {
        ov[i] = &out[i]->v;
    }
    lam_scalar_params sp = LAM_SCALAR_PARAMS_INIT;
    sp.a = 1e-5;
    lam_op_call c;
    memset(&c, 0, sizeof c);
    c.struct_size = (uint32_t)sizeof c;
    c.abi_version = LAM_ABI_VERSION;
    c.op = op;
    c.n_inputs = n_in;
    c.n_outputs = n_out;
    c.inputs = iv;
    c.outputs = ov;
    c.params = &sp;
    g_msg[0] = '\0';
    return g_desc.execute(g_dev, &c);
}

static void ln_values(float *v, size_t n, uint32_t seed) {
    fill_inputs(v, n, seed);
    for (size_t i = 0; i < n; i++) {
        v[i] = isfinite(v[i]) ? fmodf(v[i], 20.0f) : 0.75f;
    }
}

/*
 * (m, n) rows, x dense or transposed in memory (the strided loops), through the backend and
 * through the reference table row by row; the backward's dgamma and dbeta as the driver sums
 * them (blocks of 32 rows in float, the blocks in double, in order).
 */
static void check_layer_norm(int64_t m, int64_t n, int transposed) {
    const size_t count = (size_t)(m * n);
    float *xd = malloc(count * 4), *dyd = malloc(count * 4), *gd = malloc((size_t)n * 4),
          *bd = malloc((size_t)n * 4);
    ln_values(xd, count, 11u);
    ln_values(dyd, count, 12u);
    ln_values(gd, (size_t)n, 13u);
    ln_values(bd, (size_t)n, 14u);
    const int64_t md[2] = {m, n}, rd[1] = {m}, nd[1] = {n};
    const int64_t xst[2] = {transposed ? 1 : n, transposed ? m : 1};
    tens x = mk_strided(2, md, xst, count, xd), dy = mk_dense(2, md, dyd);
    tens g = mk_dense(1, nd, gd), b = mk_dense(1, nd, bd);
    tens y = mk_dense(2, md, NULL), mean = mk_dense(1, rd, NULL), rstd = mk_dense(1, rd, NULL);
    tens dx = mk_dense(2, md, NULL), dg = mk_dense(1, nd, NULL), db = mk_dense(1, nd, NULL);
    const tens *fin[3] = {&x, &g, &b}, *fout[3] = {&y, &mean, &rstd};
    cr_assert_eq(run_ln(LAM_OP_LAYER_NORM, 3, fin, 3, fout), LAM_OK, "%s", g_msg);
    const tens *bin[5] = {&dy, &x, &mean, &rstd, &g}, *bout[3] = {&dx, &dg, &db};
    cr_assert_eq(run_ln(LAM_OP_LAYER_NORM_BACKWARD, 5, bin, 3, bout), LAM_OK, "%s", g_msg);
    /* the reference, one row at a time */
    float *ry = malloc(count * 4), *rm_ = malloc((size_t)m * 4), *rr = malloc((size_t)m * 4);
    float *rdx = malloc(count * 4), *part = calloc((size_t)(2 * n), 4);
    double *acc = calloc((size_t)(2 * n), sizeof(double));
    cpu_ln_args a;
    memset(&a, 0, sizeof a);
    a.m = m;
    a.n = n;
    a.eps = 1e-5f;
    a.x = xd;
    a.xs0 = xst[0];
    a.xs1 = xst[1];
    a.gamma = gd;
    a.gs = 1;
    a.beta = bd;
    a.bs = 1;
    a.y = ry;
    a.ys0 = n;
    a.ys1 = 1;
    a.mean = rm_;
    a.ms = 1;
    a.rstd = rr;
    a.rs = 1;
    for (int64_t r = 0; r < m; r++) {
        cpu_kern_ref.ln_forward(&a, r, r + 1);
    }
    a.dy = dyd;
    a.dys0 = n;
    a.dys1 = 1;
    a.mean_in = rm_;
    a.rstd_in = rr;
    a.y = rdx;
    for (int64_t b0 = 0; b0 < m; b0 += 32) {
        memset(part, 0, (size_t)(2 * n) * 4);
        for (int64_t r = b0; r < m && r < b0 + 32; r++) {
            cpu_kern_ref.ln_backward(&a, r, r + 1, part, part + n);
        }
        for (int64_t k = 0; k < 2 * n; k++) {
            acc[k] += (double)part[k];
        }
    }
    const float *gy = host_of(&y), *gm = host_of(&mean), *gr = host_of(&rstd);
    const float *gdx = host_of(&dx), *gdg = host_of(&dg), *gdb = host_of(&db);
    for (size_t i = 0; i < count; i++) {
        cr_assert(same_float(gy[i], ry[i]) && same_float(gdx[i], rdx[i]),
                  "(%lld, %lld)%s element %zu: y %.9g want %.9g, dx %.9g want %.9g", (long long)m,
                  (long long)n, transposed ? " transposed" : "", i, gy[i], ry[i], gdx[i], rdx[i]);
    }
    for (int64_t r = 0; r < m; r++) {
        cr_assert(same_float(gm[r], rm_[r]) && same_float(gr[r], rr[r]), "row %lld statistics",
                  (long long)r);
    }
    for (int64_t k = 0; k < n; k++) {
        cr_assert(same_float(gdg[k], (float)acc[k]) && same_float(gdb[k], (float)acc[n + k]),
                  "column %lld: dgamma %.9g want %.9g, dbeta %.9g want %.9g", (long long)k, gdg[k],
                  (float)acc[k], gdb[k], (float)acc[n + k]);
    }
    /* and the reference itself is right: row 0's mean against a double sum */
    double s = 0.0;
    for (int64_t k = 0; k < n; k++) {
        s += xd[k * xst[1]];
    }
    cr_assert_float_eq(rm_[0], (float)(s / (double)n), 1e-5f * (1.0f + fabsf(rm_[0])));
    tens *all[] = {&x, &dy, &g, &b, &y, &mean, &rstd, &dx, &dg, &db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        rm(all[i]);
    }
    free(xd), free(dyd), free(gd), free(bd), free(ry), free(rm_), free(rr), free(rdx);
    free(part), free(acc);
}

static void layer_norm_all(const char *isa, const char *threads) {
    open_with(isa, threads);
    check_layer_norm(300, 701, 0); /* dense rows, shared by the pool's threads */
    check_layer_norm(300, 701, 1); /* strided rows */
    check_layer_norm(45, 2500, 0); /* rows longer than the summation chunk */
}

Test(cpu_kern, layer_norm_base_1_thread_matches_reference) {
    layer_norm_all("base", "1");
}
Test(cpu_kern, layer_norm_avx2_2_threads_matches_reference) {
    layer_norm_all("avx2", "2");
}
Test(cpu_kern, layer_norm_avx512_2_threads_matches_reference) {
    layer_norm_all("avx512", "2");
}

/* ---- CONV and its gradients (ABI 2.2, oneDNN) against plain double loops ---- */

typedef struct conv_case {
    int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups;
    int bias;
} conv_case;

static int64_t conv_len(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
    return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

/* The input element a tap reads, or -1 in the padding (plugin.h's CONV). */
static int64_t conv_tap(const conv_case *k, int64_t n, int64_t ci, int64_t oh, int64_t ow,
                        int64_t i, int64_t j) {
    const int64_t ih = oh * k->sh - k->ph + i * k->dh, iw = ow * k->sw - k->pw + j * k->dw;
    if (ih < 0 || ih >= k->h || iw < 0 || iw >= k->w) {
        return -1;
    }
    return ((n * k->c + ci) * k->h + ih) * k->w + iw;
}

/* |got - want| within float32 accumulation error of a sum whose terms' magnitudes add to mag.
 */
static void expect_close(const char *what, size_t i, float got, double want, double mag) {
    cr_expect(fabs((double)got - want) <= 1e-5 * mag + 1e-6, "%s[%zu]: %.9g, want %.9g", what, i,
              (double)got, want);
}

static void check_conv(const conv_case *k) {
    const int64_t oh = conv_len(k->h, k->kh, k->sh, k->ph, k->dh);
    const int64_t ow = conv_len(k->w, k->kw, k->sw, k->pw, k->dw);
    const int64_t cg = k->c / k->groups, og = k->o / k->groups;
    const int64_t xd[4] = {k->n, k->c, k->h, k->w}, wd[4] = {k->o, cg, k->kh, k->kw};
    const int64_t yd[4] = {k->n, k->o, oh, ow}, bd[1] = {k->o};
    const size_t nx = (size_t)(k->n * k->c * k->h * k->w), nw = (size_t)(k->o * cg * k->kh * k->kw);
    const size_t ny = (size_t)(k->n * k->o * oh * ow);
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)k->o * 4),
          *g = malloc(ny * 4);
    uint32_t s = 12345u;
    float *all[4] = {x, w, b, g};
    const size_t cnt[4] = {nx, nw, (size_t)k->o, ny};
    for (int a = 0; a < 4; a++) {
        for (size_t i = 0; i < cnt[a]; i++) {
            s = s * 1664525u + 1013904223u;
            all[a][i] = (float)(s >> 8) / 8388608.0f - 1.0f; /* [-1, 1) */
        }
    }
    lam_conv_params p = LAM_CONV_PARAMS_INIT;
    p.groups = (uint32_t)k->groups;
    p.window.kernel[0] = k->kh;
    p.window.kernel[1] = k->kw;
    p.window.stride[0] = k->sh;
    p.window.stride[1] = k->sw;
    p.window.pad_before[0] = p.window.pad_after[0] = k->ph;
    p.window.pad_before[1] = p.window.pad_after[1] = k->pw;
    p.window.dilation[0] = k->dh;
    p.window.dilation[1] = k->dw;
    tens tx = mk_dense(4, xd, x), tw = mk_dense(4, wd, w), tb = mk_dense(1, bd, b);
    tens tg = mk_dense(4, yd, g), ty = mk_dense(4, yd, NULL), tdx = mk_dense(4, xd, NULL);
    tens tdw = mk_dense(4, wd, NULL), tdb = mk_dense(1, bd, NULL);
    const tens *fin[3] = {&tx, &tw, &tb}, *fout[1] = {&ty};
    cr_assert_eq(run(LAM_OP_CONV, &p, k->bias ? 3 : 2, fin, 1, fout), LAM_OK, "%s", g_msg);
    const tens *din[2] = {&tg, &tw}, *dout[1] = {&tdx};
    cr_assert_eq(run(LAM_OP_CONV_BACKWARD_DATA, &p, 2, din, 1, dout), LAM_OK, "%s", g_msg);
    const tens *win[2] = {&tx, &tg}, *wout[2] = {&tdw, &tdb};
    cr_assert_eq(run(LAM_OP_CONV_BACKWARD_WEIGHT, &p, 2, win, k->bias ? 2 : 1, wout), LAM_OK, "%s",
                 g_msg);
    double *dx = calloc(nx, sizeof *dx), *dxm = calloc(nx, sizeof *dxm);
    double *dw = calloc(nw, sizeof *dw), *dwm = calloc(nw, sizeof *dwm);
    const float *y = host_of(&ty);
    for (int64_t n = 0; n < k->n; n++) {
        for (int64_t o = 0; o < k->o; o++) {
            for (int64_t r = 0; r < oh; r++) {
                for (int64_t q = 0; q < ow; q++) {
                    const size_t yi = (size_t)(((n * k->o + o) * oh + r) * ow + q);
                    double acc = k->bias ? b[o] : 0.0, mag = k->bias ? fabs(b[o]) : 0.0;
                    for (int64_t ci = 0; ci < cg; ci++) {
                        for (int64_t i = 0; i < k->kh; i++) {
                            for (int64_t j = 0; j < k->kw; j++) {
                                const int64_t t = conv_tap(k, n, (o / og) * cg + ci, r, q, i, j);
                                if (t < 0) {
                                    continue;
                                }
                                const size_t wi = (size_t)(((o * cg + ci) * k->kh + i) * k->kw + j);
                                acc += (double)w[wi] * x[t];
                                mag += fabs((double)w[wi] * x[t]);
                                dx[t] += (double)w[wi] * g[yi];
                                dxm[t] += fabs((double)w[wi] * g[yi]);
                                dw[wi] += (double)x[t] * g[yi];
                                dwm[wi] += fabs((double)x[t] * g[yi]);
                            }
                        }
                    }
                    expect_close("conv", yi, y[yi], acc, mag);
                }
            }
        }
    }
    for (size_t i = 0; i < nx; i++) {
        expect_close("conv_backward_data", i, host_of(&tdx)[i], dx[i], dxm[i]);
    }
    for (size_t i = 0; i < nw; i++) {
        expect_close("conv_backward_weight", i, host_of(&tdw)[i], dw[i], dwm[i]);
    }
    for (int64_t o = 0; k->bias && o < k->o; o++) {
        double db = 0.0, m = 0.0;
        for (int64_t n = 0; n < k->n; n++) {
            for (int64_t i = 0; i < oh * ow; i++) {
                db += g[(n * k->o + o) * oh * ow + i];
                m += fabs(g[(n * k->o + o) * oh * ow + i]);
            }
        }
        expect_close("conv_backward_weight bias", (size_t)o, host_of(&tdb)[o], db, m);
    }
    tens *ts[8] = {&tx, &tw, &tb, &tg, &ty, &tdx, &tdw, &tdb};
    for (int i = 0; i < 8; i++) {
        rm(ts[i]);
    }
    free(x), free(w), free(b), free(g), free(dx), free(dxm), free(dw), free(dwm);
}

static const conv_case k_convs[] = {
    /* n  c  h  w  o kh kw sh sw ph pw dh dw groups bias */
    {2, 4, 7, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},     /* "same" 3x3 with bias */
    {3, 4, 9, 8, 6, 3, 2, 2, 1, 0, 2, 2, 1, 2, 0},     /* strided, dilated, grouped, padded W */
    {2, 4, 8, 8, 4, 3, 3, 2, 2, 1, 1, 1, 1, 4, 1},     /* depthwise, stride 2 */
    {4, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1, 1, 1},   /* LeNet's first convolution */
    {2, 16, 10, 10, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, /* channels that fill SIMD blocks */
};

static void conv_all(const char *threads) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    cr_skip("the oneDNN convolution is compiled out of sanitizer builds (cpu_dnnl.c says why)");
#endif
    /* (the ISA knob caps the backend's own loops; oneDNN picks its own kernels) */
    open_with("base", threads);
    long lib = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        lib += strstr(line, "libdnnl") != NULL;
    }
    for (size_t i = 0; i < sizeof k_convs / sizeof k_convs[0]; i++) {
        check_conv(&k_convs[i]);
    }
    if (f != NULL) {
        rewind(f);
        while (fgets(line, sizeof line, f) != NULL) {
            lib += strstr(line, "libdnnl") != NULL;
        }
        fclose(f);
    }
    cr_expect_gt(lib, 0, "the convolutions did not run on oneDNN (libdnnl.so.2 is not mapped)");
}

Test(cpu_kern, conv_ops_1_thread_match_double_loops) {
    conv_all("1");
}
Test(cpu_kern, conv_ops_2_threads_match_double_loops) {
    conv_all("2");
}

/* What the backend does not take goes back to the host: oneDNN switched off, a strided view. */
Test(cpu_kern, conv_says_no_without_onednn_or_for_strided_views) {
    setenv("LAMINA_CPU_DNNL", "0", 1);
    open_with("base", "1");
    const conv_case k = {1, 2, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0};
    const int64_t xd[4] = {1, 2, 5, 5}, wd[4] = {2, 2, 3, 3};
    tens tx = mk_dense(4, xd, NULL), tw = mk_dense(4, wd, NULL), ty = mk_dense(4, xd, NULL);
    lam_conv_params p = LAM_CONV_PARAMS_INIT;
    p.window.kernel[0] = p.window.kernel[1] = 3;
    p.window.pad_before[0] = p.window.pad_after[0] = p.window.pad_before[1] =
        p.window.pad_after[1] = k.ph;
    const tens *in[2] = {&tx, &tw}, *out[1] = {&ty};
    cr_assert_eq(run(LAM_OP_CONV, &p, 2, in, 1, out), LAM_ERR_UNSUPPORTED);
    cr_expect(strstr(g_msg, "oneDNN is not available") != NULL, "%s", g_msg);
    p.groups = 3; /* a bad call is still an error naming the problem, not "unsupported" */
    cr_assert_eq(run(LAM_OP_CONV, &p, 2, in, 1, out), LAM_ERR_SHAPE);
    cr_expect(strstr(g_msg, "cpu: Shape mismatch, conv operands") != NULL, "%s", g_msg);
    rm(&tx), rm(&tw), rm(&ty);
}

Test(cpu_kern, conv_says_no_for_a_strided_view) {
    open_with("base", "1");
    const int64_t xd[4] = {1, 2, 5, 5}, xs[4] = {100, 50, 10, 1}, wd[4] = {2, 2, 3, 3};
    tens tx = mk_strided(4, xd, xs, 100, NULL), tw = mk_dense(4, wd, NULL);
    tens ty = mk_dense(4, (const int64_t[4]){1, 2, 3, 3}, NULL);
    lam_conv_params p = LAM_CONV_PARAMS_INIT;
    p.window.kernel[0] = p.window.kernel[1] = 3;
    const tens *in[2] = {&tx, &tw}, *out[1] = {&ty};
    cr_assert_eq(run(LAM_OP_CONV, &p, 2, in, 1, out), LAM_ERR_UNSUPPORTED);
    cr_expect(strstr(g_msg, "not dense") != NULL, "%s", g_msg);
    rm(&tx), rm(&tw), rm(&ty);
}
