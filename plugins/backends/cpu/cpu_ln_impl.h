/*
 * cpu_ln_impl.h - the row loops of LAYER_NORM and LAYER_NORM_BACKWARD, included by
 * cpu_kern_impl.h and so compiled once per instruction set (cpu_layernorm.c is the driver).
 *
 * A row is read from memory once each way when it fits in the cache (up to some 10^5 floats):
 * the forward's mean, variance and output passes run over a row that stays there, as do the
 * backward's sums pass and its dx pass (PyTorch's fused kernels make the same two passes). Sums run
 * in LN_LANES float lanes over chunks of LN_CHUNK elements, added in a fixed tree and then in
 * double across chunks: the vector loops do exactly the scalar loop's operations in the same order,
 * so every instruction set gives the same bits (as the rest of cpu_kern_impl.h). A chunk's float
 * sum is off by at most ~37 roundings (32 per lane, 5 in the tree) of its sum of magnitudes, and
 * that bound does not grow with the row's length (the chunks add in double).
 */
#ifndef CPU_KERN_SFX
#error "cpu_ln_impl.h is included by cpu_kern_impl.h"
#endif

#define LN_LANES 32
#define LN_CHUNK 1024

#define LN_INLINE static inline __attribute__((always_inline))

/* lane[0] + ... + lane[LN_LANES - 1] in a fixed pairwise order (lane is clobbered). */
LN_INLINE float ln_tree(float *lane) {
    for (int w = LN_LANES / 2; w > 0; w /= 2) {
        for (int l = 0; l < w; l++) {
            lane[l] += lane[l + w];
        }
    }
    return lane[0];
}

/* Sum of x[k * s] over the row. */
LN_INLINE double ln_sum(const float *x, int64_t s, int64_t n) {
    double total = 0.0;
    for (int64_t c0 = 0; c0 < n; c0 += LN_CHUNK) {
        const int64_t c1 = n - c0 < LN_CHUNK ? n : c0 + LN_CHUNK;
        float lane[LN_LANES] = {0};
        int64_t k = c0;
        for (; k + LN_LANES <= c1; k += LN_LANES) {
            for (int l = 0; l < LN_LANES; l++) {
                lane[l] += x[(k + l) * s];
            }
        }
        for (int l = 0; k < c1; k++, l++) {
            lane[l] += x[k * s];
        }
        total += (double)ln_tree(lane);
    }
    return total;
}

/*
 * The biased variance of the row about its float mean m: the corrected two-pass formula
 * (sum(d^2) - sum(d)^2 / n) / n with d = x - m, whose second term removes the error of m's
 * rounding (it matters for rows far from 0 with a small spread). d is exact where x is within a
 * factor 2 of m (Sterbenz).
 */
LN_INLINE double ln_var(const float *x, int64_t s, int64_t n, float m) {
    double total = 0.0, dsum = 0.0;
    for (int64_t c0 = 0; c0 < n; c0 += LN_CHUNK) {
        const int64_t c1 = n - c0 < LN_CHUNK ? n : c0 + LN_CHUNK;
        float lane[LN_LANES] = {0};
        float lane_d[LN_LANES] = {0};
        int64_t k = c0;
        for (; k + LN_LANES <= c1; k += LN_LANES) {
            for (int l = 0; l < LN_LANES; l++) {
                const float d = x[(k + l) * s] - m;
                lane[l] += d * d;
                lane_d[l] += d;
            }
        }
        for (int l = 0; k < c1; k++, l++) {
            const float d = x[k * s] - m;
            lane[l] += d * d;
            lane_d[l] += d;
        }
        total += (double)ln_tree(lane);
        dsum += (double)ln_tree(lane_d);
    }
    return (total - dsum * dsum / (double)n) / (double)n;
}

/* One row forward: y = ((x - mean) * rstd) * gamma + beta; n == 0 gives NaN statistics. No
 * output overlaps an input (the op's contract; pg and pb below are the driver's): restrict lets
 * the loops vectorize without run-time overlap checks. */
LN_INLINE void ln_fwd_row(const float *restrict x, int64_t xs, const float *restrict g, int64_t gs,
                          const float *restrict b, int64_t bs, float *restrict y, int64_t ys,
                          int64_t n, float eps, float *mean_out, float *rstd_out) {
    const float mean = (float)(ln_sum(x, xs, n) / (double)n);
    const float var = (float)ln_var(x, xs, n, mean);
    const float rstd = 1.0f / sqrtf(var + eps);
    for (int64_t k = 0; k < n; k++) {
        y[k * ys] = ((x[k * xs] - mean) * rstd) * g[k * gs] + b[k * bs];
    }
    *mean_out = mean;
    *rstd_out = rstd;
}

/* LAYER_NORM rows [r0, r1). */
static void KERN_NAME(ln_forward)(const cpu_ln_args *a, int64_t r0, int64_t r1) {
    const int unit = a->xs1 == 1 && a->ys1 == 1 && a->gs == 1 && a->bs == 1;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = a->x + r * a->xs0;
        float *y = a->y + r * a->ys0;
        float m, rs;
        if (unit) {
            ln_fwd_row(x, 1, a->gamma, 1, a->beta, 1, y, 1, a->n, a->eps, &m, &rs);
        } else {
            ln_fwd_row(x, a->xs1, a->gamma, a->gs, a->beta, a->bs, y, a->ys1, a->n, a->eps, &m,
                       &rs);
        }
        if (a->mean != NULL) {
            a->mean[r * a->ms] = m;
            a->rstd[r * a->rs] = rs;
        }
    }
}

/*
 * One row backward: with xh = (x - mean) * rstd and g = dy * gamma, dx = rstd * ((g - mean(g))
 * - xh * mean(g * xh)); with pg non-NULL also pg += dy * xh and pb += dy (dense, n each).
 */
LN_INLINE void ln_bwd_row(const float *restrict dy, int64_t dys, const float *restrict x,
                          int64_t xs, const float *restrict gm, int64_t gs, float *restrict dx,
                          int64_t dxs, int64_t n, float mean, float rstd, float *restrict pg,
                          float *restrict pb) {
    double sg = 0.0, sgx = 0.0;
    for (int64_t c0 = 0; c0 < n; c0 += LN_CHUNK) {
        const int64_t c1 = n - c0 < LN_CHUNK ? n : c0 + LN_CHUNK;
        float lg[LN_LANES] = {0};
        float lgx[LN_LANES] = {0};
        int64_t k = c0;
        for (; k + LN_LANES <= c1; k += LN_LANES) {
            for (int l = 0; l < LN_LANES; l++) {
                const float g = dy[(k + l) * dys] * gm[(k + l) * gs];
                lg[l] += g;
                lgx[l] += g * ((x[(k + l) * xs] - mean) * rstd);
            }
        }
        for (int l = 0; k < c1; k++, l++) {
            const float g = dy[k * dys] * gm[k * gs];
            lg[l] += g;
            lgx[l] += g * ((x[k * xs] - mean) * rstd);
        }
        sg += (double)ln_tree(lg);
        sgx += (double)ln_tree(lgx);
    }
    const float ma = (float)(sg / (double)n);
    const float mb = (float)(sgx / (double)n);
    if (pg != NULL) {
        for (int64_t k = 0; k < n; k++) {
            const float d = dy[k * dys];
            const float xh = (x[k * xs] - mean) * rstd;
            dx[k * dxs] = rstd * ((d * gm[k * gs] - ma) - xh * mb);
            pg[k] += d * xh;
            pb[k] += d;
        }
    } else {
        for (int64_t k = 0; k < n; k++) {
            const float xh = (x[k * xs] - mean) * rstd;
            dx[k * dxs] = rstd * ((dy[k * dys] * gm[k * gs] - ma) - xh * mb);
        }
    }
}

/* LAYER_NORM_BACKWARD rows [r0, r1): dx, and the rows' dgamma and dbeta terms added into pg and
 * pb when pg is non-NULL. */
static void KERN_NAME(ln_backward)(const cpu_ln_args *a, int64_t r0, int64_t r1, float *pg,
                                   float *pb) {
    const int unit = a->xs1 == 1 && a->dys1 == 1 && a->ys1 == 1 && a->gs == 1;
    for (int64_t r = r0; r < r1; r++) {
        const float *dy = a->dy + r * a->dys0;
        const float *x = a->x + r * a->xs0;
        float *dx = a->y + r * a->ys0;
        const float m = a->mean_in[r * a->ms];
        const float rs = a->rstd_in[r * a->rs];
        if (unit) {
            ln_bwd_row(dy, 1, x, 1, a->gamma, 1, dx, 1, a->n, m, rs, pg, pb);
        } else {
            ln_bwd_row(dy, a->dys1, x, a->xs1, a->gamma, a->gs, dx, a->ys1, a->n, m, rs, pg, pb);
        }
    }
}
