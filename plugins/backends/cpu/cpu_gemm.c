/*
 * cpu_gemm.c - one GEMM (LAM_OP_GEMM, each batch of GEMM_BATCHED, LINEAR's product):
 * out[M,N] = alpha * op(A) op(B) + beta * out.
 *
 * Normal sizes go to OpenBLAS's cblas_sgemm. Tiny products (a Dense layer on a batch of two)
 * are dominated by the BLAS call's fixed cost, one to four microseconds, so they run through
 * register-blocked loops here instead; so do layouts BLAS cannot take (broadcast rows,
 * non-unit column strides), which are rare.
 *
 * The loops are written once with GCC vector types and compiled three times, for SSE2 (any
 * x86-64), AVX2+FMA and AVX-512 (target attributes, no global -march), and the device picks
 * the best its CPU runs (LAMINA_CPU_ISA can lower the choice, for tests). This file alone is
 * built with -ffp-contract=fast so products and sums fuse into FMAs, as in OpenBLAS.
 */
#include "cpu_internal.h"

#include <limits.h>
#include <stdlib.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include <string.h>

/*
 * Products up to CPU_SMALL_GEMM_MACS multiply-adds skip BLAS when C has at least this many
 * columns, per instruction set of the loops (indexed by cpu_isa). Narrow products (n < 16, e.g.
 * the chapter MLP's output layer, 2x256 . 256x10) keep few columns in registers here, but
 * OpenBLAS's Haswell/Zen/Sandybridge kernels have no small-matrix path and pack both operands,
 * while its SkylakeX/Cooperlake kernels have one (products up to 100^3). Measured with
 * `lamina_bench mlp_forward` (1 thread, both builds alternating, 21 and 7 rounds, on the 2-core
 * Sapphire Rapids VM under heavy load from other jobs, so min figures count), this file's
 * loops for n < 16 vs OpenBLAS:
 *   AVX-512 loops vs SkylakeX:       min 7.27 vs 7.29 us, median 11.9 vs 12.9 us: a tie, BLAS kept;
 *   AVX2 loops vs Haswell:           min 9.6 vs 15.6 us,  median 11.3 vs 18.7 us: loops, -40%;
 *   baseline loops vs Sandybridge:   min 10.0 vs 14.8 us, median 13.2 vs 17.4 us: loops, -25%.
 * (bench/RESULTS.md, "Small products", has the table.)
 */
static const int64_t g_small_min_n[] = {
    [CPU_ISA_BASE] = 1,
    [CPU_ISA_AVX2] = 1,
    [CPU_ISA_AVX512] = 16,
};
/* Largest operand the small path repacks densely, in floats (a 16 KiB stack buffer). */
#define PACK_MAX 4096

/* Strided matrix: element (r, c) at p[r * rs + c * cs]. */
typedef struct mat {
    const float *p;
    int64_t rs;
    int64_t cs;
} mat;

static inline void store_row(float *c, int64_t cs, const float *acc, int64_t n, float alpha,
                             float beta) {
    if (beta == 0.0f) { /* C is not read: NaN already there must not leak in */
        for (int64_t j = 0; j < n; j++) {
            c[j * cs] = alpha * acc[j];
        }
    } else {
        for (int64_t j = 0; j < n; j++) {
            c[j * cs] = alpha * acc[j] + beta * c[j * cs];
        }
    }
}

/* GCC vector types: one register of SSE, AVX2 and AVX-512 respectively. */
typedef float v4sf __attribute__((vector_size(16)));
typedef float v8sf __attribute__((vector_size(32)));
typedef float v16sf __attribute__((vector_size(64)));
typedef int v4si __attribute__((vector_size(16)));
typedef int v8si __attribute__((vector_size(32)));
typedef int v16si __attribute__((vector_size(64)));

/* SHUF(VI, a, b, i...): lanes i of a:b (GCC 12 and clang have the variadic builtin). */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define SHUF(VI, a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#endif
#endif
#ifndef SHUF
#define SHUF(VI, a, b, ...) __builtin_shuffle(a, b, (VI){__VA_ARGS__})
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_X86_KERNELS 1
#define ATTR_AVX2        __attribute__((target("avx2,fma")))
#define ATTR_AVX512      __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#else
#define ATTR_AVX2
#define ATTR_AVX512
#endif

/*
 * Loads, stores (C = alpha * acc + beta * C, C not read when beta == 0) and horizontal sums
 * for each register width; "s" is a lone float. Everything stays in registers: spilling a
 * vector and reading its floats back one by one stalls store forwarding on x86.
 */
#define DEFINE_VEC_HELPERS(sfx, ATTR, VT, VL)                                                      \
    ATTR static inline VT ld_##sfx(const float *p) {                                               \
        VT v;                                                                                      \
        memcpy(&v, p, sizeof v);                                                                   \
        return v;                                                                                  \
    }                                                                                              \
    ATTR static inline void st_##sfx(float *c, int64_t cs, VT v, float alpha, float beta) {        \
        if (cs == 1) {                                                                             \
            VT r = alpha * v;                                                                      \
            if (beta != 0.0f) {                                                                    \
                r += beta * ld_##sfx(c);                                                           \
            }                                                                                      \
            memcpy(c, &r, sizeof r);                                                               \
        } else {                                                                                   \
            for (int l = 0; l < VL; l++) {                                                         \
                c[l * cs] = alpha * v[l] + (beta != 0.0f ? beta * c[l * cs] : 0.0f);               \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_VEC_HELPERS(v4, , v4sf, 4)
DEFINE_VEC_HELPERS(v8, ATTR_AVX2, v8sf, 8)
DEFINE_VEC_HELPERS(v16, ATTR_AVX512, v16sf, 16)

static inline float ld_s(const float *p) {
    return *p;
}

static inline void st_s(float *c, int64_t cs, float v, float alpha, float beta) {
    (void)cs;
    *c = alpha * v + (beta != 0.0f ? beta * *c : 0.0f);
}

/* Sums of four registers at once: out[q] = sum of the lanes of register q. */
static inline void hsum4_v4(v4sf a, v4sf b, v4sf c, v4sf d, float *out) {
    const v4sf ab = SHUF(v4si, a, b, 0, 1, 4, 5) + SHUF(v4si, a, b, 2, 3, 6, 7);
    const v4sf cd = SHUF(v4si, c, d, 0, 1, 4, 5) + SHUF(v4si, c, d, 2, 3, 6, 7);
    const v4sf r = SHUF(v4si, ab, cd, 0, 2, 4, 6) + SHUF(v4si, ab, cd, 1, 3, 5, 7);
    out[0] += r[0];
    out[1] += r[1];
    out[2] += r[2];
    out[3] += r[3];
}

ATTR_AVX2 static inline void hsum4_v8(v8sf a, v8sf b, v8sf c, v8sf d, float *out) {
    const v8sf ab =
        SHUF(v8si, a, b, 0, 1, 2, 3, 8, 9, 10, 11) + SHUF(v8si, a, b, 4, 5, 6, 7, 12, 13, 14, 15);
    const v8sf cd =
        SHUF(v8si, c, d, 0, 1, 2, 3, 8, 9, 10, 11) + SHUF(v8si, c, d, 4, 5, 6, 7, 12, 13, 14, 15);
    /* lanes: a a c c b b d d */
    v8sf r = SHUF(v8si, ab, cd, 0, 1, 8, 9, 4, 5, 12, 13) +
             SHUF(v8si, ab, cd, 2, 3, 10, 11, 6, 7, 14, 15);
    r += SHUF(v8si, r, r, 1, 0, 3, 2, 5, 4, 7, 6);
    out[0] += r[0];
    out[1] += r[4];
    out[2] += r[2];
    out[3] += r[6];
}

ATTR_AVX512 static inline void hsum4_v16(v16sf a, v16sf b, v16sf c, v16sf d, float *out) {
#define LO8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define HI8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
    const v16sf ab = SHUF(v16si, a, b, LO8) + SHUF(v16si, a, b, HI8);
    const v16sf cd = SHUF(v16si, c, d, LO8) + SHUF(v16si, c, d, HI8);
#undef LO8
#undef HI8
    /* lanes: a x4, b x4, c x4, d x4 */
    v16sf r = SHUF(v16si, ab, cd, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
              SHUF(v16si, ab, cd, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    r += SHUF(v16si, r, r, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    r += SHUF(v16si, r, r, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    out[0] += r[0];
    out[1] += r[4];
    out[2] += r[8];
    out[3] += r[12];
}

/*
 * A register block of C: MR rows by NV registers of VW columns (type VT, helpers W), with the
 * k loop split KS ways so that enough independent sums are in flight to hide FMA latency.
 * B's rows are dense (unit column stride); A and C may have any strides. All loop bounds are
 * constants, so the compiler unrolls them and keeps `acc` in registers.
 */
#define DEFINE_BLOCK(name, ATTR, VT, VW, W, MR, NV, KS)                                            \
    ATTR static inline void name(int64_t k, const float *a, int64_t ars, int64_t acs,              \
                                 const float *b, int64_t brs, float *c, int64_t crs, int64_t ccs,  \
                                 float alpha, float beta) {                                        \
        VT acc[KS][MR][NV];                                                                        \
        for (int s = 0; s < KS; s++) {                                                             \
            for (int r = 0; r < MR; r++) {                                                         \
                for (int v = 0; v < NV; v++) {                                                     \
                    acc[s][r][v] = (VT){0};                                                        \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        int64_t kk = 0;                                                                            \
        for (; kk + KS <= k; kk += KS) {                                                           \
            for (int s = 0; s < KS; s++) {                                                         \
                VT bv[NV];                                                                         \
                for (int v = 0; v < NV; v++) {                                                     \
                    bv[v] = ld_##W(b + (kk + s) * brs + v * VW);                                   \
                }                                                                                  \
                for (int r = 0; r < MR; r++) {                                                     \
                    const float av = a[r * ars + (kk + s) * acs];                                  \
                    for (int v = 0; v < NV; v++) {                                                 \
                        acc[s][r][v] += av * bv[v];                                                \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (; kk < k; kk++) {                                                                     \
            for (int r = 0; r < MR; r++) {                                                         \
                const float av = a[r * ars + kk * acs];                                            \
                for (int v = 0; v < NV; v++) {                                                     \
                    acc[0][r][v] += av * ld_##W(b + kk * brs + v * VW);                            \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int s = 1; s < KS; s++) {                                                             \
            for (int r = 0; r < MR; r++) {                                                         \
                for (int v = 0; v < NV; v++) {                                                     \
                    acc[0][r][v] += acc[s][r][v];                                                  \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int r = 0; r < MR; r++) {                                                             \
            for (int v = 0; v < NV; v++) {                                                         \
                st_##W(c + r * crs + v * VW * ccs, ccs, acc[0][r][v], alpha, beta);                \
            }                                                                                      \
        }                                                                                          \
    }

/*
 * The small kernels for one instruction set, whose register is VT of VL floats (helpers W).
 * This file is built with -ffp-contract=fast, so `acc += a * b` is an FMA where the set has
 * one. cpu_gemm picks the set at run time.
 *
 * rows_*: op(B) rows dense (b.cs == 1). C is covered by 4-row blocks of 2 registers, then
 * narrower blocks for the leftover columns, then 1-row blocks for the leftover rows.
 * dots_*: A rows and B^T rows dense along k (a.cs == 1, b.rs == 1, the Dense layer's x W^T
 * on a small batch): each C element is a dot product; four of them run side by side.
 */
#define DEFINE_SMALL_KERNELS(sfx, ATTR, VT, VL, W, HSUM4)                                          \
    DEFINE_BLOCK(b4x2_##sfx, ATTR, VT, VL, W, 4, 2, 1)                                             \
    DEFINE_BLOCK(b4x1_##sfx, ATTR, VT, VL, W, 4, 1, 2)                                             \
    DEFINE_BLOCK(b4x1q_##sfx, ATTR, v4sf, 4, v4, 4, 1, 2)                                          \
    DEFINE_BLOCK(b4x1s_##sfx, ATTR, float, 1, s, 4, 1, 2)                                          \
    DEFINE_BLOCK(b1x4_##sfx, ATTR, VT, VL, W, 1, 4, 2)                                             \
    DEFINE_BLOCK(b1x1_##sfx, ATTR, VT, VL, W, 1, 1, 4)                                             \
    DEFINE_BLOCK(b1x1q_##sfx, ATTR, v4sf, 4, v4, 1, 1, 4)                                          \
    DEFINE_BLOCK(b1x1s_##sfx, ATTR, float, 1, s, 1, 1, 4)                                          \
    ATTR static void rows_##sfx(int64_t m, int64_t n, int64_t k, float alpha, mat a, mat b,        \
                                float beta, float *c, int64_t crs, int64_t ccs) {                  \
        int64_t i = 0;                                                                             \
        for (; i + 4 <= m; i += 4) {                                                               \
            const float *ai = a.p + i * a.rs;                                                      \
            float *ci = c + i * crs;                                                               \
            int64_t j = 0;                                                                         \
            for (; j + 2 * VL <= n; j += 2 * VL) {                                                 \
                b4x2_##sfx(k, ai, a.rs, a.cs, b.p + j, b.rs, ci + j * ccs, crs, ccs, alpha, beta); \
            }                                                                                      \
            for (; j + VL <= n; j += VL) {                                                         \
                b4x1_##sfx(k, ai, a.rs, a.cs, b.p + j, b.rs, ci + j * ccs, crs, ccs, alpha, beta); \
            }                                                                                      \
            for (; j + 4 <= n; j += 4) {                                                           \
                b4x1q_##sfx(k, ai, a.rs, a.cs, b.p + j, b.rs, ci + j * ccs, crs, ccs, alpha,       \
                            beta);                                                                 \
            }                                                                                      \
            for (; j < n; j++) {                                                                   \
                b4x1s_##sfx(k, ai, a.rs, a.cs, b.p + j, b.rs, ci + j * ccs, crs, ccs, alpha,       \
                            beta);                                                                 \
            }                                                                                      \
        }                                                                                          \
        for (; i < m; i++) {                                                                       \
            const float *ai = a.p + i * a.rs;                                                      \
            float *ci = c + i * crs;                                                               \
            int64_t j = 0;                                                                         \
            for (; j + 4 * VL <= n; j += 4 * VL) {                                                 \
                b1x4_##sfx(k, ai, a.rs, a.cs, b.p + j, b.rs, ci + j * ccs, crs, ccs, alpha, beta); \
            }                                                                                      \
            for (; j + VL <= n; j += VL) {                                                         \
                b1x1_##sfx(k, ai, a.rs, a.cs, b.p + j, b.rs, ci + j * ccs, crs, ccs, alpha, beta); \
            }                                                                                      \
            for (; j + 4 <= n; j += 4) {                                                           \
                b1x1q_##sfx(k, ai, a.rs, a.cs, b.p + j, b.rs, ci + j * ccs, crs, ccs, alpha,       \
                            beta);                                                                 \
            }                                                                                      \
            for (; j < n; j++) {                                                                   \
                b1x1s_##sfx(k, ai, a.rs, a.cs, b.p + j, b.rs, ci + j * ccs, crs, ccs, alpha,       \
                            beta);                                                                 \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    ATTR static void dots_##sfx(int64_t m, int64_t n, int64_t k, float alpha, const float *a,      \
                                int64_t lda, mat b, float beta, float *c, int64_t crs,             \
                                int64_t ccs) {                                                     \
        const int64_t kv = k - k % VL;            /* [0, kv): VL wide */                           \
        const int64_t k4 = kv + (k - kv) / 4 * 4; /* [kv, k4): 4 wide, then single floats */       \
        for (int64_t i = 0; i < m; i++) {                                                          \
            const float *ar = a + i * lda;                                                         \
            float *cr = c + i * crs;                                                               \
            int64_t j = 0;                                                                         \
            for (; j + 4 <= n; j += 4) {                                                           \
                const float *b0 = b.p + j * b.cs;                                                  \
                const float *b1 = b0 + b.cs, *b2 = b1 + b.cs, *b3 = b2 + b.cs;                     \
                float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};                                             \
                if (kv > 0) {                                                                      \
                    VT t0 = {0}, t1 = {0}, t2 = {0}, t3 = {0};                                     \
                    for (int64_t kk = 0; kk < kv; kk += VL) {                                      \
                        const VT av = ld_##W(ar + kk);                                             \
                        t0 += av * ld_##W(b0 + kk);                                                \
                        t1 += av * ld_##W(b1 + kk);                                                \
                        t2 += av * ld_##W(b2 + kk);                                                \
                        t3 += av * ld_##W(b3 + kk);                                                \
                    }                                                                              \
                    HSUM4(t0, t1, t2, t3, d);                                                      \
                }                                                                                  \
                if (k4 > kv) {                                                                     \
                    v4sf u0 = {0}, u1 = {0}, u2 = {0}, u3 = {0};                                   \
                    for (int64_t kk = kv; kk < k4; kk += 4) {                                      \
                        const v4sf av = ld_v4(ar + kk);                                            \
                        u0 += av * ld_v4(b0 + kk);                                                 \
                        u1 += av * ld_v4(b1 + kk);                                                 \
                        u2 += av * ld_v4(b2 + kk);                                                 \
                        u3 += av * ld_v4(b3 + kk);                                                 \
                    }                                                                              \
                    hsum4_v4(u0, u1, u2, u3, d);                                                   \
                }                                                                                  \
                for (int64_t kk = k4; kk < k; kk++) {                                              \
                    d[0] += ar[kk] * b0[kk];                                                       \
                    d[1] += ar[kk] * b1[kk];                                                       \
                    d[2] += ar[kk] * b2[kk];                                                       \
                    d[3] += ar[kk] * b3[kk];                                                       \
                }                                                                                  \
                store_row(cr + j * ccs, ccs, d, 4, alpha, beta);                                   \
            }                                                                                      \
            for (; j < n; j++) {                                                                   \
                const float *b0 = b.p + j * b.cs;                                                  \
                VT t0 = {0};                                                                       \
                for (int64_t kk = 0; kk < kv; kk += VL) {                                          \
                    t0 += ld_##W(ar + kk) * ld_##W(b0 + kk);                                       \
                }                                                                                  \
                v4sf u0 = {0};                                                                     \
                for (int64_t kk = kv; kk < k4; kk += 4) {                                          \
                    u0 += ld_v4(ar + kk) * ld_v4(b0 + kk);                                         \
                }                                                                                  \
                float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};                                             \
                const VT z = {0};                                                                  \
                const v4sf zq = {0};                                                               \
                HSUM4(t0, z, z, z, d);                                                             \
                hsum4_v4(u0, zq, zq, zq, d);                                                       \
                for (int64_t kk = k4; kk < k; kk++) {                                              \
                    d[0] += ar[kk] * b0[kk];                                                       \
                }                                                                                  \
                store_row(cr + j * ccs, ccs, d, 1, alpha, beta);                                   \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_SMALL_KERNELS(base, , v4sf, 4, v4, hsum4_v4)
#ifdef HAVE_X86_KERNELS
DEFINE_SMALL_KERNELS(avx2, ATTR_AVX2, v8sf, 8, v8, hsum4_v8)
DEFINE_SMALL_KERNELS(avx512, ATTR_AVX512, v16sf, 16, v16, hsum4_v16)
#endif

#ifdef HAVE_X86_KERNELS
/*
 * dots8_*: the dot-product layout (A rows and B^T rows dense along k) eight columns of C at a
 * time, with no horizontal sum per element: eight accumulators (one per column) are reduced
 * together by a transposing tree (six hadds, two lane swaps, one add) into one register that
 * holds the eight results, stored as a vector. The k tail (k not a multiple of the register
 * width) is read with masked loads, so no scalar loop runs. Columns past the last full group of
 * eight go to dots_* (their count is below eight).
 */
static const int32_t g_tail_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

ATTR_AVX2 static inline __m256 reduce8_avx2(const __m256 *t) {
    const __m256 s01 = _mm256_hadd_ps(t[0], t[1]);
    const __m256 s23 = _mm256_hadd_ps(t[2], t[3]);
    const __m256 s45 = _mm256_hadd_ps(t[4], t[5]);
    const __m256 s67 = _mm256_hadd_ps(t[6], t[7]);
    /* lanes: sums of the low halves of t0..t3, then of their high halves (s4567: t4..t7) */
    const __m256 s0123 = _mm256_hadd_ps(s01, s23);
    const __m256 s4567 = _mm256_hadd_ps(s45, s67);
    return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20),
                         _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

/* C[0..8) = alpha * r + beta * C (C not read when beta == 0), C with column stride ccs. */
ATTR_AVX2 static inline void store8_avx2(float *c, int64_t ccs, __m256 r, float alpha, float beta) {
    r = _mm256_mul_ps(r, _mm256_set1_ps(alpha));
    if (ccs == 1) {
        if (beta != 0.0f) {
            r = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(c), r);
        }
        _mm256_storeu_ps(c, r);
        return;
    }
    float v[8];
    _mm256_storeu_ps(v, r);
    for (int q = 0; q < 8; q++) {
        c[q * ccs] = v[q] + (beta != 0.0f ? beta * c[q * ccs] : 0.0f);
    }
}

ATTR_AVX2 static void dots8_avx2(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                                 int64_t lda, mat b, float beta, float *c, int64_t crs,
                                 int64_t ccs) {
    const int64_t kv = k & ~(int64_t)7;
    const int64_t rem = k - kv;
    const __m256i mask = _mm256_loadu_si256((const __m256i *)(const void *)(g_tail_mask + 8 - rem));
    const int64_t n8 = n & ~(int64_t)7;
    for (int64_t i = 0; i < m; i++) {
        const float *ar = a + i * lda;
        float *cr = c + i * crs;
        for (int64_t j = 0; j < n8; j += 8) {
            const float *bj = b.p + j * b.cs;
            __m256 t[8];
            for (int q = 0; q < 8; q++) {
                t[q] = _mm256_setzero_ps();
            }
            for (int64_t kk = 0; kk < kv; kk += 8) {
                const __m256 av = _mm256_loadu_ps(ar + kk);
                for (int q = 0; q < 8; q++) {
                    t[q] = _mm256_fmadd_ps(av, _mm256_loadu_ps(bj + q * b.cs + kk), t[q]);
                }
            }
            if (rem > 0) {
                const __m256 av = _mm256_maskload_ps(ar + kv, mask);
                for (int q = 0; q < 8; q++) {
                    t[q] = _mm256_fmadd_ps(av, _mm256_maskload_ps(bj + q * b.cs + kv, mask), t[q]);
                }
            }
            store8_avx2(cr + j * ccs, ccs, reduce8_avx2(t), alpha, beta);
        }
    }
    if (n8 < n) {
        const mat rest = {b.p + n8 * b.cs, b.rs, b.cs};
        dots_avx2(m, n - n8, k, alpha, a, lda, rest, beta, c + n8 * ccs, crs, ccs);
    }
}

ATTR_AVX512 static void dots8_avx512(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                                     int64_t lda, mat b, float beta, float *c, int64_t crs,
                                     int64_t ccs) {
    const int64_t kv = k & ~(int64_t)15;
    const int64_t rem = k - kv;
    const __mmask16 mask = (__mmask16)((1u << rem) - 1u);
    const int64_t n8 = n & ~(int64_t)7;
    for (int64_t i = 0; i < m; i++) {
        const float *ar = a + i * lda;
        float *cr = c + i * crs;
        for (int64_t j = 0; j < n8; j += 8) {
            const float *bj = b.p + j * b.cs;
            __m512 t[8];
            for (int q = 0; q < 8; q++) {
                t[q] = _mm512_setzero_ps();
            }
            for (int64_t kk = 0; kk < kv; kk += 16) {
                const __m512 av = _mm512_loadu_ps(ar + kk);
                for (int q = 0; q < 8; q++) {
                    t[q] = _mm512_fmadd_ps(av, _mm512_loadu_ps(bj + q * b.cs + kk), t[q]);
                }
            }
            if (rem > 0) {
                const __m512 av = _mm512_maskz_loadu_ps(mask, ar + kv);
                for (int q = 0; q < 8; q++) {
                    t[q] =
                        _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(mask, bj + q * b.cs + kv), t[q]);
                }
            }
            __m256 h[8];
            for (int q = 0; q < 8; q++) {
                h[q] = _mm256_add_ps(_mm512_castps512_ps256(t[q]), _mm512_extractf32x8_ps(t[q], 1));
            }
            store8_avx2(cr + j * ccs, ccs, reduce8_avx2(h), alpha, beta);
        }
    }
    if (n8 < n) {
        const mat rest = {b.p + n8 * b.cs, b.rs, b.cs};
        dots_avx512(m, n - n8, k, alpha, a, lda, rest, beta, c + n8 * ccs, crs, ccs);
    }
}
#endif

cpu_isa cpu_gemm_pick_isa(void) {
    cpu_isa best = CPU_ISA_BASE;
#ifdef HAVE_X86_KERNELS
    const uint32_t f = cpu_features();
    if ((f & CPU_FEATS_AVX512) == CPU_FEATS_AVX512) {
        best = CPU_ISA_AVX512;
    } else if ((f & CPU_FEATS_AVX2) == CPU_FEATS_AVX2) {
        best = CPU_ISA_AVX2;
    }
#endif
    const char *want = getenv("LAMINA_CPU_ISA");
    if (want == NULL || *want == '\0') {
        return best;
    }
    static const char *const names[] = {"base", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(want, names[i]) == 0) {
            if ((cpu_isa)i > best) {
                cpu_log(LAM_LOG_WARN,
                        "cpu: Unsupported LAMINA_CPU_ISA, this CPU lacks %s; using %s", want,
                        names[best]);
                return best;
            }
            return (cpu_isa)i;
        }
    }
    cpu_log(LAM_LOG_WARN, "cpu: Invalid LAMINA_CPU_ISA, '%s' is not base, avx2 or avx512; using %s",
            want, names[best]);
    return best;
}

const char *cpu_isa_name(cpu_isa isa) {
    switch (isa) {
    case CPU_ISA_AVX512:
        return "AVX-512";
    case CPU_ISA_AVX2:
        return "AVX2";
    default:
        return "baseline";
    }
}

static void small_rows(cpu_isa isa, int64_t m, int64_t n, int64_t k, float alpha, mat a, mat b,
                       float beta, float *c, int64_t crs, int64_t ccs) {
    switch (isa) {
#ifdef HAVE_X86_KERNELS
    case CPU_ISA_AVX512:
        rows_avx512(m, n, k, alpha, a, b, beta, c, crs, ccs);
        return;
    case CPU_ISA_AVX2:
        rows_avx2(m, n, k, alpha, a, b, beta, c, crs, ccs);
        return;
#endif
    default:
        rows_base(m, n, k, alpha, a, b, beta, c, crs, ccs);
        return;
    }
}

static void small_dots(cpu_isa isa, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, mat b, float beta, float *c, int64_t crs, int64_t ccs) {
    switch (isa) {
#ifdef HAVE_X86_KERNELS
    case CPU_ISA_AVX512:
        dots8_avx512(m, n, k, alpha, a, lda, b, beta, c, crs, ccs);
        return;
    case CPU_ISA_AVX2:
        dots8_avx2(m, n, k, alpha, a, lda, b, beta, c, crs, ccs);
        return;
#endif
    default:
        dots_base(m, n, k, alpha, a, lda, b, beta, c, crs, ccs);
        return;
    }
}

/* Any strides at all (broadcast operands, odd views): plain loops, one C element at a time. */
static void small_any(int64_t m, int64_t n, int64_t k, float alpha, mat a, mat b, float beta,
                      float *c, int64_t crs, int64_t ccs) {
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int64_t kk = 0; kk < k; kk++) {
                acc += a.p[i * a.rs + kk * a.cs] * b.p[kk * b.rs + j * b.cs];
            }
            store_row(c + i * crs + j * ccs, ccs, &acc, 1, alpha, beta);
        }
    }
}

/*
 * The small path: runs the kernel that suits the layouts, repacking one operand if needed.
 * With op(B) dense along k (B stored transposed) there are two ways: dot products, which pay
 * a horizontal sum (a few shuffles) per element of C, or repacking op(B) row-dense (about a
 * cycle per element of B) for the row kernel. Repacking wins when k is short next to m.
 */
static void small_gemm(cpu_isa isa, int64_t m, int64_t n, int64_t k, float alpha, mat a, mat b,
                       float beta, float *c, int64_t crs, int64_t ccs) {
    float packed[PACK_MAX];
    if (b.cs == 1) {
        small_rows(isa, m, n, k, alpha, a, b, beta, c, crs, ccs);
        return;
    }
    const int pack_b = k * n <= PACK_MAX;
    if (b.rs == 1 && (k > 3 * m || !pack_b) && (a.cs == 1 || m * k <= PACK_MAX)) {
        const float *ap = a.p;
        int64_t lda = a.rs;
        if (a.cs != 1) { /* op(A) rows made dense for the dot kernel */
            for (int64_t i = 0; i < m; i++) {
                for (int64_t kk = 0; kk < k; kk++) {
                    packed[i * k + kk] = a.p[i * a.rs + kk * a.cs];
                }
            }
            ap = packed;
            lda = k;
        }
        small_dots(isa, m, n, k, alpha, ap, lda, b, beta, c, crs, ccs);
        return;
    }
    if (pack_b) { /* op(B) made row-dense for the row kernel */
        for (int64_t j = 0; j < n; j++) {
            for (int64_t kk = 0; kk < k; kk++) {
                packed[kk * n + j] = b.p[kk * b.rs + j * b.cs];
            }
        }
        const mat bp = {packed, n, 1};
        small_rows(isa, m, n, k, alpha, a, bp, beta, c, crs, ccs);
        return;
    }
    small_any(m, n, k, alpha, a, b, beta, c, crs, ccs);
}

/* C = beta * C (K == 0 or alpha == 0: BLAS does not read A or B then either). */
static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t crs, int64_t ccs) {
    for (int64_t i = 0; i < m; i++) {
        float *cr = c + i * crs;
        for (int64_t j = 0; j < n; j++) {
            cr[j * ccs] = beta == 0.0f ? 0.0f : beta * cr[j * ccs];
        }
    }
}

/*
 * Panels without packing, for products whose op(B) has contiguous rows and whose A side is
 * small (a convolution's W (O, CKK) x columns (CKK, L) and W^T x G; the narrow-K products of a
 * backward pass): C = alpha * op(A) * B + beta * C, C with contiguous rows. A panel is 8 rows
 * x 2 registers of columns: 16 accumulators; each step of k loads two registers of B's row k
 * and broadcasts 8 elements of op(A) (any strides). OpenBLAS packs both operands for every
 * call, which for these shapes (one of m, k at most 64) costs more than the product (the
 * itcopy/incopy share of the convolution profiles), and zeroes C before it when beta is 0;
 * here C is written once. Column tails take one register, then single floats.
 */
#define PANEL_ROW(q, VT, VI)                                                                       \
    {                                                                                              \
        const VT s_ = {a##q[pc]};                                                                  \
        const VT av = __builtin_shuffle(s_, (VI){0});                                              \
        x##q += av * b0;                                                                           \
        y##q += av * b1;                                                                           \
    }
#define PANEL_PUT(q)                                                                               \
    if (q < rows) {                                                                                \
        put(c + q * ldc, x##q, y##q, alpha, beta, cols);                                           \
    }
/*
 * With more than one thread, products from this many multiply-adds go to OpenBLAS (its threads
 * share them) and the panel loops run on the calling thread only. Sharing the panels among the
 * pool's threads lost to OpenBLAS's idle workers, which spin (sched_yield) for about 2^28
 * cycles after each of its calls: a convolution alternates the two (forward and backward-data
 * on panels, backward-weight on OpenBLAS), and its GEMMs at 2 threads took 1.28-1.34x raw
 * sgemm in the runs where a spinning worker shared a core with the pool's. Below this size
 * waking other threads costs more than it saves (a LeNet convolution's per-sample products).
 */
#define CPU_PANEL_PAR_MACS (INT64_C(1) << 22)
/*
 * Products up to 100^3 multiply-adds go to OpenBLAS, whose small-matrix kernels (0.3.21,
 * below 100^3) skip its packing too: the LeNet convolutions' per-sample products ran
 * 1.07-1.47x the time of raw sgemm on the panels (conv2's n = 100 pads a fourth 32-column
 * panel for 4 columns) and 0.98-1.06x on OpenBLAS (AVX-512, 1 thread, conv_gemm kind=lenet1,
 * lenet2); the 784-256-10 step's narrow products measured the same either way.
 */
#define CPU_PANEL_MIN_MACS 1e6

/* What panel_* hands its column-panel loop. */
typedef struct panel_job {
    int64_t m, n, k, full;
    float alpha, beta;
    mat a;
    const float *b;
    int64_t ldb;
    float *c;
    int64_t ldc;
    const float *tail;
} panel_job;

#define DEFINE_PANEL(sfx, ATTR, VT, VI, VL)                                                        \
    /* C row (2 registers; the first `cols` floats when cols < 2 VL) = alpha acc + beta C */       \
    ATTR static inline void put_##sfx(float *c, VT x, VT y, float alpha, float beta,               \
                                      int64_t cols) {                                              \
        VT r0 = alpha * x, r1 = alpha * y;                                                         \
        if (cols == 2 * VL) {                                                                      \
            if (beta != 0.0f) {                                                                    \
                r0 += beta * ld_##sfx(c);                                                          \
                r1 += beta * ld_##sfx(c + VL);                                                     \
            }                                                                                      \
            memcpy(c, &r0, sizeof r0);                                                             \
            memcpy(c + VL, &r1, sizeof r1);                                                        \
            return;                                                                                \
        }                                                                                          \
        float t[2 * VL];                                                                           \
        memcpy(t, &r0, sizeof r0);                                                                 \
        memcpy(t + VL, &r1, sizeof r1);                                                            \
        for (int64_t l = 0; l < cols; l++) {                                                       \
            c[l] = t[l] + (beta != 0.0f ? beta * c[l] : 0.0f);                                     \
        }                                                                                          \
    }                                                                                              \
    /* One tile: `rows` (1..8) rows of op(A) from ap times a k x 2 VL panel of B. Missing rows     \
     * repeat the last one (computed, not stored), so every tile runs the 8-row loop. */           \
    ATTR static void tile_##sfx(const float *ap, int64_t ars, int64_t acs, int64_t rows,           \
                                int64_t k, const float *b, int64_t ldb, float alpha, float beta,   \
                                float *c, int64_t ldc, int64_t cols) {                             \
        const float *a0 = ap, *a1 = ap + (rows > 1 ? 1 : 0) * ars,                                 \
                    *a2 = ap + (rows > 2 ? 2 : rows - 1) * ars,                                    \
                    *a3 = ap + (rows > 3 ? 3 : rows - 1) * ars,                                    \
                    *a4 = ap + (rows > 4 ? 4 : rows - 1) * ars,                                    \
                    *a5 = ap + (rows > 5 ? 5 : rows - 1) * ars,                                    \
                    *a6 = ap + (rows > 6 ? 6 : rows - 1) * ars,                                    \
                    *a7 = ap + (rows > 7 ? 7 : rows - 1) * ars;                                    \
        VT x0 = {0}, x1 = {0}, x2 = {0}, x3 = {0}, x4 = {0}, x5 = {0}, x6 = {0}, x7 = {0};         \
        VT y0 = {0}, y1 = {0}, y2 = {0}, y3 = {0}, y4 = {0}, y5 = {0}, y6 = {0}, y7 = {0};         \
        int64_t pc = 0;                                                                            \
        for (int64_t p = 0; p < k; p++, pc += acs) {                                               \
            const float *br = b + p * ldb;                                                         \
            const VT b0 = ld_##sfx(br), b1 = ld_##sfx(br + VL);                                    \
            PANEL_ROW(0, VT, VI)                                                                   \
            PANEL_ROW(1, VT, VI)                                                                   \
            PANEL_ROW(2, VT, VI)                                                                   \
            PANEL_ROW(3, VT, VI)                                                                   \
            PANEL_ROW(4, VT, VI)                                                                   \
            PANEL_ROW(5, VT, VI)                                                                   \
            PANEL_ROW(6, VT, VI)                                                                   \
            PANEL_ROW(7, VT, VI)                                                                   \
        }                                                                                          \
        void (*const put)(float *, VT, VT, float, float, int64_t) = put_##sfx;                     \
        PANEL_PUT(0)                                                                               \
        PANEL_PUT(1)                                                                               \
        PANEL_PUT(2)                                                                               \
        PANEL_PUT(3)                                                                               \
        PANEL_PUT(4)                                                                               \
        PANEL_PUT(5)                                                                               \
        PANEL_PUT(6)                                                                               \
        PANEL_PUT(7)                                                                               \
    }                                                                                              \
    /* Column panels [p0, p1) of a panel_job: every C element is one task's, summed in the same    \
     * order at any thread count. */                                                               \
    ATTR static void panels_##sfx(void *arg, int64_t p0, int64_t p1) {                             \
        const panel_job *J = arg;                                                                  \
        for (int64_t j = p0 * 2 * VL; j < p1 * 2 * VL && j < J->n; j += 2 * VL) {                  \
            const int is_tail = j == J->full;                                                      \
            for (int64_t i = 0; i < J->m; i += 8) {                                                \
                tile_##sfx(J->a.p + i * J->a.rs, J->a.rs, J->a.cs, J->m - i < 8 ? J->m - i : 8,    \
                           J->k, is_tail ? J->tail : J->b + j, is_tail ? 2 * VL : J->ldb,          \
                           J->alpha, J->beta, J->c + i * J->ldc + j, J->ldc,                       \
                           is_tail ? J->n - j : 2 * VL);                                           \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    /* Returns 0 when the padded tail panel could not be allocated (the caller falls back). */     \
    ATTR static int panel_##sfx(int64_t m, int64_t n, int64_t k, float alpha, mat a,               \
                                const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {  \
        const int64_t full = n / (2 * VL) * (2 * VL);                                              \
        float *tail = NULL;                                                                        \
        if (full < n) { /* the last columns, zero-padded to a whole panel */                       \
            tail = malloc((size_t)k * 2 * VL * sizeof *tail);                                      \
            if (tail == NULL) {                                                                    \
                return 0;                                                                          \
            }                                                                                      \
            for (int64_t p = 0; p < k; p++) {                                                      \
                for (int64_t l = 0; l < 2 * VL; l++) {                                             \
                    tail[p * 2 * VL + l] = full + l < n ? b[p * ldb + full + l] : 0.0f;            \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        const panel_job job = {m, n, k, full, alpha, beta, a, b, ldb, c, ldc, tail};               \
        const int64_t np = (n + 2 * VL - 1) / (2 * VL);                                            \
        panels_##sfx((void *)&job, 0, np);                                                         \
        free(tail);                                                                                \
        return 1;                                                                                  \
    }

#if HAVE_X86_KERNELS
DEFINE_PANEL(v8, ATTR_AVX2, v8sf, v8si, 8)
DEFINE_PANEL(v16, ATTR_AVX512, v16sf, v16si, 16)
#endif

/*
 * Whether the panel loops take this product (see DEFINE_PANEL): B rows and C rows contiguous,
 * one of m and k at most 64, B's panel of k rows small enough to stay in L2, and wide enough
 * for the two-register panel. The panels read A and B where they lie (OpenBLAS packs them
 * first), which wins on a convolution's products and loses where B is a layer's weight:
 * lam_op_matmul against raw sgemm, AVX-512, 1 thread (m x n x k, B's row stride):
 *  - B's rows a multiple of 4 KiB apart, k > 64: the k rows of a panel fall on the same L1
 *    sets; 64x1024x512 took 1.56x OpenBLAS's time, 64x1024x1024 1.31x, 64x4096x512 1.50x
 *    (the backward of a Dense layer of 1024 or 4096 units, batch 64);
 *  - m <= 64 with k beyond ~640: 64x1000x1000 1.14x, 64x1000x768 1.15x, while 64x3136x576
 *    (a convolution, n wide) ran 0.83x and 64x784x784 1.0x;
 *  - k <= 64 with m beyond 256 (a weight's gradient at batch 64): 768x1024x64 1.14x,
 *    1000x1000x64 1.14x, 1024x1024x64 1.20x, while 128x1024x64 ran 0.88x and 576x3136x64
 *    (n wide) 0.95x.
 * So the panels keep their cases (small m or k, wide n) and leave the rest to OpenBLAS: the
 * 784-1024-1024-10 step at batch 64 went from 1.28-1.31x the time of its raw GEMMs to 1.14-1.17x.
 */
static int panel_fits(const cpu_device *dev, int64_t m, int64_t n, int64_t k, mat b, int64_t ccs) {
    const int64_t vl = dev->isa == CPU_ISA_AVX512 ? 16 : 8;
    if (dev->isa == CPU_ISA_BASE || b.cs != 1 || ccs != 1 || m < 1 || n < 2 * vl || k > 4096 ||
        (m > 64 && k > 64)) {
        return 0;
    }
    const int wide = n >= 2048;
    if (k > 64) { /* m <= 64 */
        const int aliased = ((uint64_t)b.rs * sizeof(float)) % 4096 == 0;
        return !aliased && (k <= 640 || wide);
    }
    return m <= 256 || wide; /* k <= 64 */
}

/*
 * Leading dimension for BLAS of a stored rows x cols matrix, or 0 when BLAS cannot take the
 * layout: columns must be unit-stride and rows at least `cols` apart (row-major rules).
 */
static int blas_ld(int64_t rows, int64_t cols, const int64_t *strides) {
    const int64_t min_ld = cols > 1 ? cols : 1;
    if (cols > 1 && strides[1] != 1) {
        return 0;
    }
    const int64_t ld = rows > 1 ? strides[0] : min_ld;
    if (ld < min_ld || ld > INT_MAX) {
        return 0;
    }
    return (int)ld;
}

lam_status cpu_gemm(const cpu_device *dev, int trans_a, int trans_b, float alpha, float beta,
                    const cpu_view *av, const cpu_view *bv, const cpu_view *cv) {
    const int ta = trans_a != 0;
    const int tb = trans_b != 0;
    const int64_t m = cv->dims[0];
    const int64_t n = cv->dims[1];
    const int64_t k = ta ? av->dims[0] : av->dims[1];
    float *c = cpu_f32(cv);
    const int64_t crs = cv->st[0];
    const int64_t ccs = cv->st[1];
    /* op(A) and op(B) as strided matrices: transposing swaps the strides. */
    const mat a = {cpu_f32(av), ta ? av->st[1] : av->st[0], ta ? av->st[0] : av->st[1]};
    const mat b = {cpu_f32(bv), tb ? bv->st[1] : bv->st[0], tb ? bv->st[0] : bv->st[1]};

    if (m == 0 || n == 0) {
        return LAM_OK;
    }
    if (k == 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, crs, ccs);
        return LAM_OK;
    }
    const double macs = (double)m * (double)n * (double)k;
    const int lda = blas_ld(av->dims[0], av->dims[1], av->st);
    const int ldb = blas_ld(bv->dims[0], bv->dims[1], bv->st);
    const int ldc = blas_ld(m, n, cv->st);
    const int fits_int = m <= INT_MAX && n <= INT_MAX && k <= INT_MAX;
    const int small = macs <= CPU_SMALL_GEMM_MACS && n >= g_small_min_n[dev->isa];
    const int blas_takes = lda > 0 && ldb > 0 && ldc > 0 && fits_int;
#if HAVE_X86_KERNELS
    const int blas_threads = blas_takes && macs >= (double)CPU_PANEL_PAR_MACS && cpu_threads() > 1;
    /*
     * The AVX2 panels (16 columns) only take what OpenBLAS cannot: with half the columns of a
     * register per B row fetched, they lost to OpenBLAS's Haswell kernel on every shape the
     * AVX-512 panels win on (LAMINA_CPU_ISA=avx2 OPENBLAS_CORETYPE=Haswell, 1 thread, on the
     * AVX-512 VM: a convolution's 64x3136x576 forward 1.36x its time, the 576x3136x64
     * backward-data 1.20x, 128x1024x64 1.19x; bench/RESULTS.md has the run).
     */
    const int panel_isa = dev->isa == CPU_ISA_AVX512 || !blas_takes;
    if (!small && !blas_threads && (macs > CPU_PANEL_MIN_MACS || !blas_takes) && panel_isa &&
        panel_fits(dev, m, n, k, b, ccs)) {
        if (dev->isa == CPU_ISA_AVX512 ? panel_v16(m, n, k, alpha, a, b.p, b.rs, beta, c, crs)
                                       : panel_v8(m, n, k, alpha, a, b.p, b.rs, beta, c, crs)) {
            return LAM_OK;
        }
    }
#endif
    if (!small && blas_takes) {
        return cpu_blas_sgemm(ta, tb, (int)m, (int)n, (int)k, alpha, a.p, lda, b.p, ldb, beta, c,
                              ldc);
    } else {
        small_gemm(dev->isa, m, n, k, alpha, a, b, beta, c, crs, ccs);
    }
    return LAM_OK;
}
