/*
 * cpu_kern_impl.h - the CPU backend's elementwise and reduction loops, compiled once per
 * instruction set: cpu_kern_base.c (x86-64 baseline), cpu_kern_avx2.c (-mavx2 -mfma) and
 * cpu_kern_avx512.c (AVX-512) include this file with CPU_KERN_SFX set, and each exports a
 * cpu_kern table named cpu_kern_<sfx>. The device's instruction set picks the table at run
 * time (cpu_kern_pick in cpu_ops.c; LAMINA_CPU_ISA lowers it for tests).
 *
 * The loops are plain C written so the compiler vectorizes them; the three files differ only
 * in the vector width the compiler may use. No multiply-add contraction (-ffp-contract=off)
 * and no -ffast-math, so every instruction set gives bit-identical results: the vectorized
 * loops do exactly the scalar loop's operations in the same order.
 *
 * exp, log, tanh and sigmoid are polynomials (Cephes' single-precision coefficients, the
 * reduction steps done without branches so the loops vectorize) rather than libm calls, which
 * do not vectorize. Maximum error against the exact result (libm in double), measured over a
 * sweep of 2^24 inputs per function (every 256th float bit pattern, both signs, all exponents)
 * by tests/cpu/test_cpu_kern.c, which fails beyond the bound in brackets:
 *   exp      0.98 ulp [1.0]  (subnormal results: in units of the subnormal spacing)
 *   log      0.77 ulp [1.0]
 *   tanh     1.23 ulp [1.5]
 *   sigmoid  2.09 ulp [2.5]
 * (libm's expf/logf/tanhf are within 1 ulp too; softrelu keeps libm's log1pf.)
 * Special values follow IEEE 754 / libm: exp(-inf) = 0, exp(+inf) = +inf, log(0) = -inf,
 * log(x < 0) = NaN, log(+inf) = +inf, NaN in gives NaN out.
 */
#ifndef CPU_KERN_SFX
#error "cpu_kern_impl.h: define CPU_KERN_SFX (base, avx2, avx512) before including it"
#endif

#include "cpu_internal.h"

#include <math.h>
#include <string.h>

#define KERN_CAT2(a, b) a##_##b
#define KERN_CAT(a, b)  KERN_CAT2(a, b)
#define KERN_NAME(n)    KERN_CAT(n, CPU_KERN_SFX)

/* ---- scalar math the loops vectorize ---- */

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Above this exp overflows (ln FLT_MAX = 88.72283906), below it underflows to 0. */
#define EXP_HI 88.72283935546875f
#define EXP_LO -103.972076416015625f

static inline float exp_poly(float x) {
    /* NaN compares false: it becomes the lower bound here, and is given back at the end */
    float xc = x > -104.0f ? x : -104.0f;
    xc = xc < 89.0f ? xc : 89.0f;
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick (exact without contraction) */
    const float nf = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const int32_t n = (int32_t)nf;
    /* r = x - n ln 2 in two parts (Cody-Waite): n * 0.693359375 is exact */
    float r = xc - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    const float z = r * r;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * z + r + 1.0f;
    /* 2^n in two factors, each a normal number, so subnormal results come out too */
    const int32_t n1 = n / 2;
    const float s1 = u2f((uint32_t)(n1 + 127) << 23);
    const float s2 = u2f((uint32_t)(n - n1 + 127) << 23);
    float y = p * s1 * s2;
    y = x > EXP_HI ? INFINITY : y;
    y = x < EXP_LO ? 0.0f : y;
    return x != x ? x : y;
}

static inline float log_poly(float x) {
    /* subnormals scaled by 2^23 first */
    const int sub = x < 1.17549435e-38f;
    const float xs = sub ? x * 8388608.0f : x;
    const uint32_t u = f2u(xs);
    int32_t e = (int32_t)((u >> 23) & 0xffu) - 126;
    float m = u2f((u & 0x807fffffu) | 0x3f000000u); /* [0.5, 1) */
    const int lt = m < 0.707106781186547524f;
    e = lt ? e - 1 : e;
    m = lt ? (m + m) - 1.0f : m - 1.0f;
    const float fe = (float)e - (sub ? 23.0f : 0.0f);
    const float z = m * m;
    float p = 7.0376836292E-2f;
    p = p * m - 1.1514610310E-1f;
    p = p * m + 1.1676998740E-1f;
    p = p * m - 1.2420140846E-1f;
    p = p * m + 1.4249322787E-1f;
    p = p * m - 1.6668057665E-1f;
    p = p * m + 2.0000714765E-1f;
    p = p * m - 2.4999993993E-1f;
    p = p * m + 3.3333331174E-1f;
    float y = p * m * z;
    y = y + fe * -2.12194440e-4f;
    y = y + -0.5f * z;
    float r = m + y;
    r = r + fe * 0.693359375f;
    r = x > 0.0f ? r : (x == 0.0f ? -INFINITY : NAN);
    r = x == INFINITY ? x : r;
    return x != x ? x : r;
}

static inline float tanh_poly(float x) {
    const float ax = fabsf(x);
    const float z = x * x;
    float small = -5.70498872745E-3f;
    small = small * z + 2.06390887954E-2f;
    small = small * z - 5.37397155531E-2f;
    small = small * z + 1.33314422036E-1f;
    small = small * z - 3.33332819422E-1f;
    small = small * z * x + x;
    const float e = exp_poly(ax + ax);
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0.0f ? -big : big;
    const float r = ax < 0.625f ? small : big;
    return x != x ? x : r;
}

static inline float sigmoid_poly(float a) {
    const float e = exp_poly(-fabsf(a)); /* (0, 1]: never overflows */
    const float d = 1.0f + e;
    const float r = a >= 0.0f ? 1.0f / d : e / d;
    return a != a ? a : r;
}

static inline float softrelu1(float a) {
    return a > 20.0f ? a : log1pf(exp_poly(a)); /* log1p(exp(a)) == a in float above 20 */
}

static inline float relu1(float a) {
    return (a > 0.0f || a != a) ? a : 0.0f;
}

static inline float maximum1(float a, float b) {
    return a != a ? a : b != b ? b : a >= b ? a : b;
}

static inline float minimum1(float a, float b) {
    return a != a ? a : b != b ? b : a <= b ? a : b;
}

/* min(max(x, lo), hi) with NaN kept (fmaxf/fminf would drop it). */
static inline float clamp1(float a, float lo, float hi) {
    const float m = a > lo ? a : lo;
    const float r = m < hi ? m : hi;
    return a != a ? a : r;
}

/* ---- elementwise rows ---- */

#define DEFINE_UNARY(name, EXPR)                                                                   \
    static void name(ptrdiff_t n, float *o, ptrdiff_t os, const float *x, ptrdiff_t xs,            \
                     const float *y, ptrdiff_t ys, float s, float t) {                             \
        (void)t;                                                                                   \
        (void)y;                                                                                   \
        (void)ys;                                                                                  \
        (void)s;                                                                                   \
        if (os == 1 && xs == 1) {                                                                  \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float a = x[i];                                                              \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else if (os == 1 && xs == 0) { /* a broadcast element: one value */                      \
            const float a = x[0];                                                                  \
            const float v = (EXPR);                                                                \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                o[i] = v;                                                                          \
            }                                                                                      \
        } else {                                                                                   \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float a = x[i * xs];                                                         \
                o[i * os] = (EXPR);                                                                \
            }                                                                                      \
        }                                                                                          \
    }

#define DEFINE_BINARY(name, EXPR)                                                                  \
    static void name(ptrdiff_t n, float *o, ptrdiff_t os, const float *x, ptrdiff_t xs,            \
                     const float *y, ptrdiff_t ys, float s, float t) {                             \
        (void)t;                                                                                   \
        (void)s;                                                                                   \
        if (os == 1 && xs == 1 && ys == 1) {                                                       \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float a = x[i];                                                              \
                const float b = y[i];                                                              \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else if (os == 1 && xs == 1 && ys == 0) {                                                \
            const float b = y[0];                                                                  \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float a = x[i];                                                              \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else if (os == 1 && xs == 0 && ys == 1) {                                                \
            const float a = x[0];                                                                  \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float b = y[i];                                                              \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else {                                                                                   \
            for (ptrdiff_t i = 0; i < n; i++) {                                                    \
                const float a = x[i * xs];                                                         \
                const float b = y[i * ys];                                                         \
                o[i * os] = (EXPR);                                                                \
            }                                                                                      \
        }                                                                                          \
    }

static void k_fill(ptrdiff_t n, float *o, ptrdiff_t os, const float *x, ptrdiff_t xs,
                   const float *y, ptrdiff_t ys, float s, float t) {
    (void)t;
    (void)x;
    (void)xs;
    (void)y;
    (void)ys;
    if (os == 1) {
        for (ptrdiff_t i = 0; i < n; i++) {
            o[i] = s;
        }
    } else {
        for (ptrdiff_t i = 0; i < n; i++) {
            o[i * os] = s;
        }
    }
}

DEFINE_UNARY(k_copy, a)
DEFINE_BINARY(k_add, a + b)
DEFINE_BINARY(k_sub, a - b)
DEFINE_BINARY(k_mul, a *b)
DEFINE_BINARY(k_div, a / b)
DEFINE_UNARY(k_add_scalar, a + s)
DEFINE_UNARY(k_mul_scalar, a *s)
DEFINE_UNARY(k_rsub_scalar, s - a)
DEFINE_UNARY(k_div_scalar, a / s)
DEFINE_UNARY(k_rdiv_scalar, s / a)
DEFINE_UNARY(k_pow_scalar, powf(a, s))
DEFINE_UNARY(k_neg, -a)
DEFINE_UNARY(k_abs, fabsf(a))
DEFINE_UNARY(k_square, a *a)
DEFINE_UNARY(k_sqrt, sqrtf(a))
DEFINE_UNARY(k_exp, exp_poly(a))
DEFINE_UNARY(k_log, log_poly(a))
DEFINE_UNARY(k_relu, relu1(a))
DEFINE_UNARY(k_sigmoid, sigmoid_poly(a))
DEFINE_UNARY(k_tanh, tanh_poly(a))
DEFINE_UNARY(k_softrelu, softrelu1(a))
DEFINE_BINARY(k_maximum, maximum1(a, b))
DEFINE_BINARY(k_minimum, minimum1(a, b))
DEFINE_UNARY(k_step, a > 0.0f ? 1.0f : 0.0f)
DEFINE_BINARY(k_greater_equal, a >= b ? 1.0f : 0.0f)
DEFINE_BINARY(k_axpby, s *a + t * b)
DEFINE_BINARY(k_greater, a > b ? 1.0f : 0.0f)
DEFINE_BINARY(k_less, a < b ? 1.0f : 0.0f)
DEFINE_BINARY(k_equal, a == b ? 1.0f : 0.0f)
DEFINE_UNARY(k_clamp, clamp1(a, s, t))
/* LINEAR's epilogue in one pass: the bias add, then the activation, on the rounded sum (the
 * bits of the two passes it replaces). */
DEFINE_BINARY(k_add_relu, relu1(a + b))
DEFINE_BINARY(k_add_sigmoid, sigmoid_poly(a + b))
DEFINE_BINARY(k_add_tanh, tanh_poly(a + b))
DEFINE_BINARY(k_add_softrelu, softrelu1(a + b))

static cpu_ew_row KERN_NAME(bias_act)(lam_op act) {
    switch (act) {
    case LAM_OP_INVALID:
        return k_add;
    case LAM_OP_RELU:
        return k_add_relu;
    case LAM_OP_SIGMOID:
        return k_add_sigmoid;
    case LAM_OP_TANH:
        return k_add_tanh;
    case LAM_OP_SOFTRELU:
        return k_add_softrelu;
    default:
        return NULL;
    }
}

static cpu_ew_row KERN_NAME(ew_row)(lam_op op) {
    switch (op) {
    case LAM_OP_FILL:
        return k_fill;
    case LAM_OP_COPY:
        return k_copy;
    case LAM_OP_ADD:
        return k_add;
    case LAM_OP_SUB:
        return k_sub;
    case LAM_OP_MUL:
        return k_mul;
    case LAM_OP_DIV:
        return k_div;
    case LAM_OP_ADD_SCALAR:
        return k_add_scalar;
    case LAM_OP_MUL_SCALAR:
        return k_mul_scalar;
    case LAM_OP_RSUB_SCALAR:
        return k_rsub_scalar;
    case LAM_OP_DIV_SCALAR:
        return k_div_scalar;
    case LAM_OP_RDIV_SCALAR:
        return k_rdiv_scalar;
    case LAM_OP_POW_SCALAR:
        return k_pow_scalar;
    case LAM_OP_NEG:
        return k_neg;
    case LAM_OP_ABS:
        return k_abs;
    case LAM_OP_SQUARE:
        return k_square;
    case LAM_OP_SQRT:
        return k_sqrt;
    case LAM_OP_EXP:
        return k_exp;
    case LAM_OP_LOG:
        return k_log;
    case LAM_OP_RELU:
        return k_relu;
    case LAM_OP_SIGMOID:
        return k_sigmoid;
    case LAM_OP_TANH:
        return k_tanh;
    case LAM_OP_SOFTRELU:
        return k_softrelu;
    case LAM_OP_MAXIMUM:
        return k_maximum;
    case LAM_OP_MINIMUM:
        return k_minimum;
    case LAM_OP_STEP:
        return k_step;
    case LAM_OP_GREATER_EQUAL:
        return k_greater_equal;
    case LAM_OP_AXPBY:
        return k_axpby;
    case LAM_OP_GREATER:
        return k_greater;
    case LAM_OP_LESS:
        return k_less;
    case LAM_OP_EQUAL:
        return k_equal;
    case LAM_OP_CLAMP:
        return k_clamp;
    default:
        return NULL;
    }
}

/* ---- reductions over the middle axis of (outer, n, inner) ---- */

#define LANES 8

/* NaN-sticky max/min step: once the accumulator is NaN it stays NaN. */
static inline float max_step(float acc, float v) {
    return (v > acc || v != v) ? v : acc;
}

static inline float min_step(float acc, float v) {
    return (v < acc || v != v) ? v : acc;
}

static double sum_line(const float *x, int64_t n, int64_t stride) {
    if (stride != 1) {
        double acc = 0.0;
        for (int64_t k = 0; k < n; k++) {
            acc += x[k * stride];
        }
        return acc;
    }
    double lane[LANES] = {0};
    int64_t k = 0;
    for (; k + LANES <= n; k += LANES) {
        for (int l = 0; l < LANES; l++) {
            lane[l] += x[k + l];
        }
    }
    double tail = 0.0;
    for (; k < n; k++) {
        tail += x[k];
    }
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
           ((lane[4] + lane[5]) + (lane[6] + lane[7])) + tail;
}

/* sum of (x - m)^2 of a line, in double, in sum_line's lane order. */
static double sqdev_line(const float *x, int64_t n, int64_t stride, double m) {
    if (stride != 1) {
        double acc = 0.0;
        for (int64_t k = 0; k < n; k++) {
            const double d = (double)x[k * stride] - m;
            acc += d * d;
        }
        return acc;
    }
    double lane[LANES] = {0};
    int64_t k = 0;
    for (; k + LANES <= n; k += LANES) {
        for (int l = 0; l < LANES; l++) {
            const double d = (double)x[k + l] - m;
            lane[l] += d * d;
        }
    }
    double tail = 0.0;
    for (; k < n; k++) {
        const double d = (double)x[k] - m;
        tail += d * d;
    }
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
           ((lane[4] + lane[5]) + (lane[6] + lane[7])) + tail;
}

/*
 * Max (is_max) or min of a line. Dense lines run LANES independent max/min chains plus a NaN
 * flag per lane, a shape the compiler turns into vector max/min and compare instructions.
 */
static float extreme_line(const float *x, int64_t n, int64_t stride, int is_max) {
    const float init = is_max ? -INFINITY : INFINITY;
    if (stride != 1) {
        float acc = init;
        for (int64_t k = 0; k < n; k++) {
            acc = is_max ? max_step(acc, x[k * stride]) : min_step(acc, x[k * stride]);
        }
        return acc;
    }
    float lane[LANES];
    int nan_seen[LANES];
    for (int l = 0; l < LANES; l++) {
        lane[l] = init;
        nan_seen[l] = 0;
    }
    int64_t k = 0;
    if (is_max) {
        for (; k + LANES <= n; k += LANES) {
            for (int l = 0; l < LANES; l++) {
                const float v = x[k + l];
                lane[l] = v > lane[l] ? v : lane[l];
                nan_seen[l] |= v != v;
            }
        }
    } else {
        for (; k + LANES <= n; k += LANES) {
            for (int l = 0; l < LANES; l++) {
                const float v = x[k + l];
                lane[l] = v < lane[l] ? v : lane[l];
                nan_seen[l] |= v != v;
            }
        }
    }
    float acc = init;
    int nan_any = 0;
    for (int l = 0; l < LANES; l++) {
        acc = is_max ? max_step(acc, lane[l]) : min_step(acc, lane[l]);
        nan_any |= nan_seen[l];
    }
    for (; k < n; k++) {
        acc = is_max ? max_step(acc, x[k]) : min_step(acc, x[k]);
    }
    return nan_any ? NAN : acc;
}

/* A block of up to CPU_RED_BLOCK dense inner positions: out[c] = reduce over k. */
static void sum_block(const float *x, int64_t n, int64_t xs1, int64_t nc, float *o, int64_t os2,
                      int mean) {
    double acc[CPU_RED_BLOCK];
    for (int64_t c = 0; c < nc; c++) {
        acc[c] = 0.0;
    }
    for (int64_t k = 0; k < n; k++) {
        const float *row = x + k * xs1;
        for (int64_t c = 0; c < nc; c++) {
            acc[c] += row[c];
        }
    }
    for (int64_t c = 0; c < nc; c++) {
        double v = mean ? (n > 0 ? acc[c] / (double)n : (double)NAN) : acc[c];
        o[c * os2] = (float)v;
    }
}

/* Mean and biased variance of a block of dense inner positions (MOMENTS), two passes. */
static void moments_block(const float *x, int64_t n, int64_t xs1, int64_t nc, float *mo, int64_t ms,
                          float *vo, int64_t vs) {
    double acc[CPU_RED_BLOCK];
    double mean[CPU_RED_BLOCK];
    for (int64_t c = 0; c < nc; c++) {
        acc[c] = 0.0;
    }
    for (int64_t k = 0; k < n; k++) {
        const float *row = x + k * xs1;
        for (int64_t c = 0; c < nc; c++) {
            acc[c] += row[c];
        }
    }
    for (int64_t c = 0; c < nc; c++) {
        mean[c] = acc[c] / (double)n;
        acc[c] = 0.0;
    }
    for (int64_t k = 0; k < n; k++) {
        const float *row = x + k * xs1;
        for (int64_t c = 0; c < nc; c++) {
            const double d = (double)row[c] - mean[c];
            acc[c] += d * d;
        }
    }
    for (int64_t c = 0; c < nc; c++) {
        mo[c * ms] = (float)mean[c];
        vo[c * vs] = (float)(acc[c] / (double)n);
    }
}

static void extreme_block(const float *x, int64_t n, int64_t xs1, int64_t nc, float *o, int64_t os2,
                          int is_max) {
    float acc[CPU_RED_BLOCK];
    int nan_seen[CPU_RED_BLOCK];
    for (int64_t c = 0; c < nc; c++) {
        acc[c] = is_max ? -INFINITY : INFINITY;
        nan_seen[c] = 0;
    }
    for (int64_t k = 0; k < n; k++) {
        const float *row = x + k * xs1;
        if (is_max) {
            for (int64_t c = 0; c < nc; c++) {
                acc[c] = row[c] > acc[c] ? row[c] : acc[c];
                nan_seen[c] |= row[c] != row[c];
            }
        } else {
            for (int64_t c = 0; c < nc; c++) {
                acc[c] = row[c] < acc[c] ? row[c] : acc[c];
                nan_seen[c] |= row[c] != row[c];
            }
        }
    }
    for (int64_t c = 0; c < nc; c++) {
        o[c * os2] = nan_seen[c] ? NAN : acc[c];
    }
}

/* First index of the maximum; a NaN counts as the maximum (NumPy's rule). n > 0. */
static int64_t argmax_line(const float *x, int64_t n, int64_t stride) {
    float best = x[0];
    int64_t at = 0;
    if (best != best) {
        return 0;
    }
    for (int64_t k = 1; k < n; k++) {
        const float v = x[k * stride];
        if (v != v) {
            return k;
        }
        if (v > best) {
            best = v;
            at = k;
        }
    }
    return at;
}

/* Softmax or log-softmax of one line; x and o may be the same memory. */
static void softmax_line(const float *x, int64_t n, int64_t xs, float *o, int64_t os, int as_log) {
    if (n == 0) {
        return;
    }
    const float m = extreme_line(x, n, xs, 1);
    double sum = 0.0;
    if (as_log) {
        if (xs == 1) {
            for (int64_t k = 0; k < n; k++) {
                sum += (double)exp_poly(x[k] - m);
            }
        } else {
            for (int64_t k = 0; k < n; k++) {
                sum += (double)exp_poly(x[k * xs] - m);
            }
        }
        const float ls = (float)log(sum);
        for (int64_t k = 0; k < n; k++) {
            o[k * os] = (x[k * xs] - m) - ls;
        }
        return;
    }
    if (xs == 1 && os == 1) {
        for (int64_t k = 0; k < n; k++) {
            const float e = exp_poly(x[k] - m);
            o[k] = e;
            sum += (double)e;
        }
    } else {
        for (int64_t k = 0; k < n; k++) {
            const float e = exp_poly(x[k * xs] - m);
            o[k * os] = e;
            sum += (double)e;
        }
    }
    const float inv = (float)(1.0 / sum);
    if (os == 1) {
        for (int64_t k = 0; k < n; k++) {
            o[k] *= inv;
        }
    } else {
        for (int64_t k = 0; k < n; k++) {
            o[k * os] *= inv;
        }
    }
}

/* Mean and biased variance of one line, two passes in double; n == 0 gives NaN. */
static void moments_line(const float *x, int64_t n, int64_t stride, float *mean, float *var) {
    if (n == 0) {
        *mean = NAN;
        *var = NAN;
        return;
    }
    const double m = sum_line(x, n, stride) / (double)n;
    *mean = (float)m;
    *var = (float)(sqdev_line(x, n, stride, m) / (double)n);
}

/* ARGMAX's index into an F32 (exact up to 2^24), I32 or I64 element. */
static void store_index(const cpu_view *ov, char *at, int64_t index) {
    switch (ov->dtype) {
    case LAM_DTYPE_I32:
        *(int32_t *)(void *)at = (int32_t)index;
        break;
    case LAM_DTYPE_I64:
        *(int64_t *)(void *)at = index;
        break;
    default:
        *(float *)(void *)at = (float)index;
        break;
    }
}

/*
 * Tasks [t0, t1) of a reduction: task t is outer position t / per and, blocked, the block of
 * inner positions (t % per) * CPU_RED_BLOCK..; else inner position t % per.
 */
static void KERN_NAME(reduce_tasks)(const cpu_call *call, int blocked, int64_t t0, int64_t t1) {
    const cpu_view *xv = &call->in[0];
    const cpu_view *ov = &call->out[0];
    const int64_t n = xv->dims[1];
    const int64_t inner = xv->dims[2];
    const int64_t xs0 = xv->st[0], xs1 = xv->st[1], xs2 = xv->st[2];
    const int64_t os0 = ov->st[0], os1 = ov->st[1], os2 = ov->st[2];
    const float *xb = cpu_f32(xv);
    float *ob = cpu_f32(ov);
    const lam_op op = call->op;
    const int64_t per = blocked ? (inner + CPU_RED_BLOCK - 1) / CPU_RED_BLOCK : inner;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t a = t / per;
        const float *xa = xb + a * xs0;
        float *oa = ob + a * os0;
        if (blocked) {
            const int64_t c0 = (t % per) * CPU_RED_BLOCK;
            const int64_t nc = inner - c0 < CPU_RED_BLOCK ? inner - c0 : CPU_RED_BLOCK;
            if (op == LAM_OP_REDUCE_SUM || op == LAM_OP_REDUCE_MEAN) {
                sum_block(xa + c0, n, xs1, nc, oa + c0 * os2, os2, op == LAM_OP_REDUCE_MEAN);
            } else if (op == LAM_OP_MOMENTS) {
                const cpu_view *vv = &call->out[1];
                moments_block(xa + c0, n, xs1, nc, oa + c0 * os2, os2,
                              cpu_f32(vv) + a * vv->st[0] + c0 * vv->st[2], vv->st[2]);
            } else {
                extreme_block(xa + c0, n, xs1, nc, oa + c0 * os2, os2, op == LAM_OP_REDUCE_MAX);
            }
            continue;
        }
        const int64_t c = t % per;
        const float *x = xa + c * xs2;
        float *o = oa + c * os2;
        switch (op) {
        case LAM_OP_REDUCE_SUM:
            *o = (float)sum_line(x, n, xs1);
            break;
        case LAM_OP_REDUCE_MEAN:
            *o = n > 0 ? (float)(sum_line(x, n, xs1) / (double)n) : NAN;
            break;
        case LAM_OP_REDUCE_MAX:
            *o = extreme_line(x, n, xs1, 1);
            break;
        case LAM_OP_REDUCE_MIN:
            *o = extreme_line(x, n, xs1, 0);
            break;
        case LAM_OP_ARGMAX:
            store_index(ov, ov->data + (size_t)(a * os0 + c * os2) * ov->esize,
                        argmax_line(x, n, xs1));
            break;
        case LAM_OP_MOMENTS: {
            const cpu_view *vv = &call->out[1];
            float *var = cpu_f32(vv) + a * vv->st[0] + c * vv->st[2];
            moments_line(x, n, xs1, o, var);
            break;
        }
        default: /* SOFTMAX, LOG_SOFTMAX */
            softmax_line(x, n, xs1, o, os1, op == LAM_OP_LOG_SOFTMAX);
            break;
        }
    }
}

#include "cpu_ln_impl.h"

const cpu_kern KERN_NAME(cpu_kern) = {
    .ew_row = KERN_NAME(ew_row),
    .bias_act = KERN_NAME(bias_act),
    .reduce_tasks = KERN_NAME(reduce_tasks),
    .ln_forward = KERN_NAME(ln_forward),
    .ln_backward = KERN_NAME(ln_backward),
};
