/*
 * cpu_gemm.c - LAM_OP_GEMM: out[M,N] = alpha * op(A) op(B) + beta * out.
 *
 * Normal sizes go to OpenBLAS's cblas_sgemm. Tiny products (a Dense layer on a batch of two)
 * are dominated by the BLAS call's fixed cost, a couple of microseconds, so they run through
 * a short loop here instead; so do layouts BLAS cannot take (broadcast rows, non-unit column
 * strides), which are rare.
 */
#include "cpu_internal.h"

#include <limits.h>
#include <string.h>

/* Products up to this many multiply-adds skip BLAS (2x20x256 = 10240). */
#define SMALL_GEMM_MACS 32768
/* Largest op(A) the dot kernel packs on the stack (floats). */
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

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_X86_KERNELS 1
#define ATTR_AVX2 __attribute__((target("avx2,fma")))
#define ATTR_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#else
#define ATTR_AVX2
#define ATTR_AVX512
#endif

/*
 * Horizontal sums in registers. (Spilling a vector and reading its floats back one by one
 * stalls store forwarding on x86, which made a tiny GEMM slower than the BLAS call.)
 */
static inline float hsum_v4(v4sf v) {
    v += __builtin_shuffle(v, (v4si){2, 3, 0, 1});
    v += __builtin_shuffle(v, (v4si){1, 0, 3, 2});
    return v[0];
}

ATTR_AVX2 static inline float hsum_v8(v8sf v) {
    v += __builtin_shuffle(v, (v8si){4, 5, 6, 7, 0, 1, 2, 3});
    v += __builtin_shuffle(v, (v8si){2, 3, 0, 1, 6, 7, 4, 5});
    v += __builtin_shuffle(v, (v8si){1, 0, 3, 2, 5, 4, 7, 6});
    return v[0];
}

ATTR_AVX512 static inline float hsum_v16(v16sf v) {
    v += __builtin_shuffle(v, (v16si){8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7});
    v += __builtin_shuffle(v, (v16si){4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11});
    v += __builtin_shuffle(v, (v16si){2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13});
    v += __builtin_shuffle(v, (v16si){1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14});
    return v[0];
}

/*
 * The small kernels, compiled once per instruction set: VT is that set's register of VL
 * floats, and this file is built with -ffp-contract=fast so `t += a * b` becomes an FMA where
 * the set has one. cpu_gemm picks the set at run time.
 *
 * rows_*: op(B) rows dense (b.cs == 1). For each row of C, up to 4 registers of columns stay
 * in registers while k runs: acc += A(i,k) * B(k, j0..); leftover columns take 4-wide
 * registers, then scalars.
 * dots_*: A rows and B^T rows dense along k (a.cs == 1, b.rs == 1, the Dense layer's x W^T):
 * each C element is a dot product; four of them run side by side.
 */
#define DEFINE_SMALL_KERNELS(sfx, ATTR, VT, VL, HSUM)                                              \
    ATTR static inline VT load_##sfx(const float *p) {                                             \
        VT v;                                                                                      \
        memcpy(&v, p, sizeof v);                                                                   \
        return v;                                                                                  \
    }                                                                                              \
    ATTR static inline v4sf load4_##sfx(const float *p) {                                          \
        v4sf v;                                                                                    \
        memcpy(&v, p, sizeof v);                                                                   \
        return v;                                                                                  \
    }                                                                                              \
    ATTR static inline void store_##sfx(float *c, int64_t cs, VT v, float alpha, float beta) {     \
        if (cs == 1) {                                                                             \
            VT r = alpha * v;                                                                      \
            if (beta != 0.0f) {                                                                    \
                r += beta * load_##sfx(c);                                                         \
            }                                                                                      \
            memcpy(c, &r, sizeof r);                                                               \
        } else {                                                                                   \
            for (int l = 0; l < VL; l++) {                                                         \
                c[l * cs] = alpha * v[l] + (beta != 0.0f ? beta * c[l * cs] : 0.0f);               \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    ATTR static inline void store4_##sfx(float *c, int64_t cs, v4sf v, float alpha, float beta) {  \
        if (cs == 1) {                                                                             \
            v4sf r = alpha * v;                                                                    \
            if (beta != 0.0f) {                                                                    \
                r += beta * load4_##sfx(c);                                                        \
            }                                                                                      \
            memcpy(c, &r, sizeof r);                                                               \
        } else {                                                                                   \
            for (int l = 0; l < 4; l++) {                                                          \
                c[l * cs] = alpha * v[l] + (beta != 0.0f ? beta * c[l * cs] : 0.0f);               \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    ATTR static void rows_##sfx(int64_t m, int64_t n, int64_t k, float alpha, mat a, mat b,        \
                                float beta, float *c, int64_t crs, int64_t ccs) {                  \
        for (int64_t i = 0; i < m; i++) {                                                          \
            const float *ar = a.p + i * a.rs;                                                      \
            float *cr = c + i * crs;                                                               \
            int64_t j0 = 0;                                                                        \
            for (; j0 + 4 * VL <= n; j0 += 4 * VL) {                                               \
                VT t0 = {0}, t1 = {0}, t2 = {0}, t3 = {0};                                         \
                for (int64_t kk = 0; kk < k; kk++) {                                               \
                    const float av = ar[kk * a.cs];                                                \
                    const float *br = b.p + kk * b.rs + j0;                                        \
                    t0 += av * load_##sfx(br);                                                     \
                    t1 += av * load_##sfx(br + VL);                                                \
                    t2 += av * load_##sfx(br + 2 * VL);                                            \
                    t3 += av * load_##sfx(br + 3 * VL);                                            \
                }                                                                                  \
                store_##sfx(cr + j0 * ccs, ccs, t0, alpha, beta);                                  \
                store_##sfx(cr + (j0 + VL) * ccs, ccs, t1, alpha, beta);                           \
                store_##sfx(cr + (j0 + 2 * VL) * ccs, ccs, t2, alpha, beta);                       \
                store_##sfx(cr + (j0 + 3 * VL) * ccs, ccs, t3, alpha, beta);                       \
            }                                                                                      \
            for (; j0 + VL <= n; j0 += VL) {                                                       \
                VT t0 = {0};                                                                       \
                for (int64_t kk = 0; kk < k; kk++) {                                               \
                    t0 += ar[kk * a.cs] * load_##sfx(b.p + kk * b.rs + j0);                        \
                }                                                                                  \
                store_##sfx(cr + j0 * ccs, ccs, t0, alpha, beta);                                  \
            }                                                                                      \
            for (; j0 + 4 <= n; j0 += 4) {                                                         \
                v4sf t0 = {0};                                                                     \
                for (int64_t kk = 0; kk < k; kk++) {                                               \
                    t0 += ar[kk * a.cs] * load4_##sfx(b.p + kk * b.rs + j0);                       \
                }                                                                                  \
                store4_##sfx(cr + j0 * ccs, ccs, t0, alpha, beta);                                 \
            }                                                                                      \
            for (; j0 < n; j0++) {                                                                 \
                float t0 = 0.0f;                                                                   \
                for (int64_t kk = 0; kk < k; kk++) {                                               \
                    t0 += ar[kk * a.cs] * b.p[kk * b.rs + j0];                                     \
                }                                                                                  \
                store_row(cr + j0 * ccs, ccs, &t0, 1, alpha, beta);                                \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    ATTR static void dots_##sfx(int64_t m, int64_t n, int64_t k, float alpha, const float *a,      \
                                int64_t lda, mat b, float beta, float *c, int64_t crs,             \
                                int64_t ccs) {                                                     \
        const int64_t kv = k - k % VL;             /* [0, kv): VL-wide */                          \
        const int64_t k4 = kv + (k - kv) / 4 * 4;  /* [kv, k4): 4-wide, then scalars */            \
        for (int64_t i = 0; i < m; i++) {                                                          \
            const float *ar = a + i * lda;                                                         \
            float *cr = c + i * crs;                                                               \
            int64_t j = 0;                                                                         \
            for (; j + 4 <= n; j += 4) {                                                           \
                const float *b0 = b.p + j * b.cs;                                                  \
                const float *b1 = b0 + b.cs, *b2 = b1 + b.cs, *b3 = b2 + b.cs;                     \
                VT t0 = {0}, t1 = {0}, t2 = {0}, t3 = {0};                                         \
                for (int64_t kk = 0; kk < kv; kk += VL) {                                          \
                    const VT av = load_##sfx(ar + kk);                                             \
                    t0 += av * load_##sfx(b0 + kk);                                                \
                    t1 += av * load_##sfx(b1 + kk);                                                \
                    t2 += av * load_##sfx(b2 + kk);                                                \
                    t3 += av * load_##sfx(b3 + kk);                                                \
                }                                                                                  \
                v4sf u0 = {0}, u1 = {0}, u2 = {0}, u3 = {0};                                       \
                for (int64_t kk = kv; kk < k4; kk += 4) {                                          \
                    const v4sf av = load4_##sfx(ar + kk);                                          \
                    u0 += av * load4_##sfx(b0 + kk);                                               \
                    u1 += av * load4_##sfx(b1 + kk);                                               \
                    u2 += av * load4_##sfx(b2 + kk);                                               \
                    u3 += av * load4_##sfx(b3 + kk);                                               \
                }                                                                                  \
                float d[4] = {HSUM(t0) + hsum_v4(u0), HSUM(t1) + hsum_v4(u1),                      \
                              HSUM(t2) + hsum_v4(u2), HSUM(t3) + hsum_v4(u3)};                     \
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
                    t0 += load_##sfx(ar + kk) * load_##sfx(b0 + kk);                               \
                }                                                                                  \
                v4sf u0 = {0};                                                                     \
                for (int64_t kk = kv; kk < k4; kk += 4) {                                          \
                    u0 += load4_##sfx(ar + kk) * load4_##sfx(b0 + kk);                             \
                }                                                                                  \
                float d = HSUM(t0) + hsum_v4(u0);                                                  \
                for (int64_t kk = k4; kk < k; kk++) {                                              \
                    d += ar[kk] * b0[kk];                                                          \
                }                                                                                  \
                store_row(cr + j * ccs, ccs, &d, 1, alpha, beta);                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_SMALL_KERNELS(base, , v4sf, 4, hsum_v4)
#ifdef HAVE_X86_KERNELS
DEFINE_SMALL_KERNELS(avx2, ATTR_AVX2, v8sf, 8, hsum_v8)
DEFINE_SMALL_KERNELS(avx512, ATTR_AVX512, v16sf, 16, hsum_v16)
#endif

typedef enum isa { ISA_BASE, ISA_AVX2, ISA_AVX512 } isa;

static isa best_isa(void) {
#ifdef HAVE_X86_KERNELS
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) {
        return ISA_AVX512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return ISA_AVX2;
    }
#endif
    return ISA_BASE;
}

static void small_rows(int64_t m, int64_t n, int64_t k, float alpha, mat a, mat b, float beta,
                       float *c, int64_t crs, int64_t ccs) {
    switch (best_isa()) {
#ifdef HAVE_X86_KERNELS
    case ISA_AVX512:
        rows_avx512(m, n, k, alpha, a, b, beta, c, crs, ccs);
        return;
    case ISA_AVX2:
        rows_avx2(m, n, k, alpha, a, b, beta, c, crs, ccs);
        return;
#endif
    default:
        rows_base(m, n, k, alpha, a, b, beta, c, crs, ccs);
        return;
    }
}

static void small_dots(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       mat b, float beta, float *c, int64_t crs, int64_t ccs) {
    switch (best_isa()) {
#ifdef HAVE_X86_KERNELS
    case ISA_AVX512:
        dots_avx512(m, n, k, alpha, a, lda, b, beta, c, crs, ccs);
        return;
    case ISA_AVX2:
        dots_avx2(m, n, k, alpha, a, lda, b, beta, c, crs, ccs);
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

/* The small path: chooses the kernel that suits the layouts. */
static void small_gemm(int64_t m, int64_t n, int64_t k, float alpha, mat a, mat b, float beta,
                       float *c, int64_t crs, int64_t ccs) {
    if (b.cs == 1) {
        small_rows(m, n, k, alpha, a, b, beta, c, crs, ccs);
    } else if (b.rs == 1 && a.cs == 1) {
        small_dots(m, n, k, alpha, a.p, a.rs, b, beta, c, crs, ccs);
    } else if (b.rs == 1 && m * k <= PACK_MAX) {
        float packed[PACK_MAX]; /* op(A) rows made dense for the dot kernel */
        for (int64_t i = 0; i < m; i++) {
            for (int64_t kk = 0; kk < k; kk++) {
                packed[i * k + kk] = a.p[i * a.rs + kk * a.cs];
            }
        }
        small_dots(m, n, k, alpha, packed, k, b, beta, c, crs, ccs);
    } else {
        small_any(m, n, k, alpha, a, b, beta, c, crs, ccs);
    }
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

lam_status cpu_gemm(const lam_op_call *call) {
    const lam_tensor_view *av = &call->inputs[0];
    const lam_tensor_view *bv = &call->inputs[1];
    const lam_tensor_view *cv = call->output;
    const int ta = call->ints[0] != 0;
    const int tb = call->ints[1] != 0;
    const int64_t m = cv->dims[0];
    const int64_t n = cv->dims[1];
    const int64_t k = ta ? av->dims[0] : av->dims[1];
    const float alpha = (float)call->scalars[0];
    const float beta = (float)call->scalars[1];
    float *c = cpu_buffer_data(cv->buffer) + cv->offset;
    const int64_t crs = cv->strides[0];
    const int64_t ccs = cv->strides[1];
    /* op(A) and op(B) as strided matrices: transposing swaps the strides. */
    const mat a = {cpu_buffer_data(av->buffer) + av->offset, ta ? av->strides[1] : av->strides[0],
                   ta ? av->strides[0] : av->strides[1]};
    const mat b = {cpu_buffer_data(bv->buffer) + bv->offset, tb ? bv->strides[1] : bv->strides[0],
                   tb ? bv->strides[0] : bv->strides[1]};

    if (m == 0 || n == 0) {
        return LAM_OK;
    }
    if (k == 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, crs, ccs);
        return LAM_OK;
    }
    const double macs = (double)m * (double)n * (double)k;
    const int lda = blas_ld(av->dims[0], av->dims[1], av->strides);
    const int ldb = blas_ld(bv->dims[0], bv->dims[1], bv->strides);
    const int ldc = blas_ld(m, n, cv->strides);
    const int fits_int = m <= INT_MAX && n <= INT_MAX && k <= INT_MAX;
    if (macs > SMALL_GEMM_MACS && lda > 0 && ldb > 0 && ldc > 0 && fits_int) {
        cpu_blas_sgemm(ta, tb, (int)m, (int)n, (int)k, alpha, a.p, lda, b.p, ldb, beta, c, ldc);
    } else {
        small_gemm(m, n, k, alpha, a, b, beta, c, crs, ccs);
    }
    return LAM_OK;
}
