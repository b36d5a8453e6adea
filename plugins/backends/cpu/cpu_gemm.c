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

/* Products up to this many multiply-adds skip BLAS (2x20x256 = 10240). */
#define SMALL_GEMM_MACS 32768
/* Columns of C computed per pass of the small kernel (a stack accumulator). */
#define SMALL_TILE 256
#define LANES 8

/* Strided matrix: element (r, c) at p[r * rs + c * cs]. */
typedef struct mat {
    const float *p;
    int64_t rs;
    int64_t cs;
} mat;

static void store_row(float *c, int64_t cs, const float *acc, int64_t n, float alpha, float beta) {
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

/*
 * C row i, block of columns: acc[j] = sum_k A(i,k) B(k,j). Walks B by rows, so when B's rows
 * are dense the inner loop vectorizes.
 */
static void small_axpy(int64_t m, int64_t n, int64_t k, float alpha, mat a, mat b, float beta,
                       float *c, int64_t crs, int64_t ccs) {
    float acc[SMALL_TILE];
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j0 = 0; j0 < n; j0 += SMALL_TILE) {
            const int64_t nj = n - j0 < SMALL_TILE ? n - j0 : SMALL_TILE;
            for (int64_t j = 0; j < nj; j++) {
                acc[j] = 0.0f;
            }
            for (int64_t kk = 0; kk < k; kk++) {
                const float av = a.p[i * a.rs + kk * a.cs];
                const float *brow = b.p + kk * b.rs + j0 * b.cs;
                if (b.cs == 1) {
                    for (int64_t j = 0; j < nj; j++) {
                        acc[j] += av * brow[j];
                    }
                } else {
                    for (int64_t j = 0; j < nj; j++) {
                        acc[j] += av * brow[j * b.cs];
                    }
                }
            }
            store_row(c + i * crs + j0 * ccs, ccs, acc, nj, alpha, beta);
        }
    }
}

/*
 * The same product when A's rows and B's columns are both dense along k (op(B) = B^T with B
 * row-major, the Dense layer's x W^T): each C element is a dot product over k.
 */
static void small_dot(int64_t m, int64_t n, int64_t k, float alpha, mat a, mat b, float beta,
                      float *c, int64_t crs, int64_t ccs) {
    for (int64_t i = 0; i < m; i++) {
        const float *ar = a.p + i * a.rs;
        float *cr = c + i * crs;
        for (int64_t j = 0; j < n; j++) {
            const float *br = b.p + j * b.cs;
            float lane[LANES] = {0};
            int64_t kk = 0;
            for (; kk + LANES <= k; kk += LANES) {
                for (int l = 0; l < LANES; l++) {
                    lane[l] += ar[kk + l] * br[kk + l];
                }
            }
            float dot = ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
                        ((lane[4] + lane[5]) + (lane[6] + lane[7]));
            for (; kk < k; kk++) {
                dot += ar[kk] * br[kk];
            }
            store_row(cr + j * ccs, ccs, &dot, 1, alpha, beta);
        }
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
    } else if (a.cs == 1 && b.rs == 1 && b.cs != 1) {
        small_dot(m, n, k, alpha, a, b, beta, c, crs, ccs);
    } else {
        small_axpy(m, n, k, alpha, a, b, beta, c, crs, ccs);
    }
    return LAM_OK;
}
