/*
 * cpu_reduce.c - reductions, argmax, softmax and moments over the middle axis of a 3-D view
 * (outer, n, inner).
 *
 * Sums accumulate in double so a long sum of floats keeps float accuracy. Two loop shapes:
 * when the inner axis is dense, a block of inner positions is reduced together (the loop over
 * the block vectorizes); otherwise each line along n is reduced on its own, with eight
 * independent accumulators when it is dense so that loop vectorizes too.
 */
#include "cpu_internal.h"

#include <math.h>

#define LANES 8
#define BLOCK 512

/* NaN-sticky max/min step: once the accumulator is NaN it stays NaN. */
static inline float max_step(float acc, float v) {
    return (v > acc || isnan(v)) ? v : acc;
}

static inline float min_step(float acc, float v) {
    return (v < acc || isnan(v)) ? v : acc;
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

/*
 * Max (is_max) or min of a line. Dense lines run LANES independent max/min chains plus a NaN
 * flag per lane, a shape the compiler turns into vector max/min and compare instructions;
 * the NaN-sticky step above would not vectorize.
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
                nan_seen[l] |= isnan(v) != 0;
            }
        }
    } else {
        for (; k + LANES <= n; k += LANES) {
            for (int l = 0; l < LANES; l++) {
                const float v = x[k + l];
                lane[l] = v < lane[l] ? v : lane[l];
                nan_seen[l] |= isnan(v) != 0;
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

/* A block of up to BLOCK dense inner positions: out[c] = reduce over k of x[k * xs1 + c]. */
static void sum_block(const float *x, int64_t n, int64_t xs1, int64_t nc, float *o, int64_t os2,
                      int mean) {
    double acc[BLOCK];
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

static void extreme_block(const float *x, int64_t n, int64_t xs1, int64_t nc, float *o, int64_t os2,
                          int is_max) {
    float acc[BLOCK];
    int nan_seen[BLOCK];
    for (int64_t c = 0; c < nc; c++) {
        acc[c] = is_max ? -INFINITY : INFINITY;
        nan_seen[c] = 0;
    }
    for (int64_t k = 0; k < n; k++) {
        const float *row = x + k * xs1;
        if (is_max) {
            for (int64_t c = 0; c < nc; c++) {
                acc[c] = row[c] > acc[c] ? row[c] : acc[c];
                nan_seen[c] |= isnan(row[c]) != 0;
            }
        } else {
            for (int64_t c = 0; c < nc; c++) {
                acc[c] = row[c] < acc[c] ? row[c] : acc[c];
                nan_seen[c] |= isnan(row[c]) != 0;
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
    if (isnan(best)) {
        return 0;
    }
    for (int64_t k = 1; k < n; k++) {
        const float v = x[k * stride];
        if (isnan(v)) {
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
        for (int64_t k = 0; k < n; k++) {
            sum += (double)expf(x[k * xs] - m);
        }
        const float ls = (float)log(sum);
        for (int64_t k = 0; k < n; k++) {
            o[k * os] = (x[k * xs] - m) - ls;
        }
        return;
    }
    for (int64_t k = 0; k < n; k++) {
        const float e = expf(x[k * xs] - m);
        o[k * os] = e;
        sum += (double)e;
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t k = 0; k < n; k++) {
        o[k * os] *= inv;
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
    double acc = 0.0;
    for (int64_t k = 0; k < n; k++) {
        const double d = (double)x[k * stride] - m;
        acc += d * d;
    }
    *mean = (float)m;
    *var = (float)(acc / (double)n);
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

lam_status cpu_reduce(const cpu_call *call) {
    const cpu_view *xv = &call->in[0];
    const cpu_view *ov = &call->out[0];
    const int64_t outer = xv->dims[0];
    const int64_t n = xv->dims[1];
    const int64_t inner = xv->dims[2];
    const int64_t xs0 = xv->st[0], xs1 = xv->st[1], xs2 = xv->st[2];
    const int64_t os0 = ov->st[0], os1 = ov->st[1], os2 = ov->st[2];
    const float *xb = cpu_f32(xv);
    float *ob = cpu_f32(ov);
    const lam_op op = call->op;

    if (outer == 0 || inner == 0) {
        return LAM_OK;
    }
    if (op == LAM_OP_ARGMAX && n == 0) {
        char dims[160];
        return cpu_error(LAM_ERR_SHAPE, "cpu: Empty axis, argmax of an input with dims %s",
                         lam_dims_format(dims, sizeof dims, 3, xv->dims));
    }
    /* The blocked loops need the inner axis dense in x; n == 0 takes the line loops. */
    const int blocked = inner > 1 && xs2 == 1 && n > 0 &&
                        (op == LAM_OP_REDUCE_SUM || op == LAM_OP_REDUCE_MEAN ||
                         op == LAM_OP_REDUCE_MAX || op == LAM_OP_REDUCE_MIN);
    for (int64_t a = 0; a < outer; a++) {
        const float *xa = xb + a * xs0;
        float *oa = ob + a * os0;
        if (blocked) {
            for (int64_t c0 = 0; c0 < inner; c0 += BLOCK) {
                const int64_t nc = inner - c0 < BLOCK ? inner - c0 : BLOCK;
                if (op == LAM_OP_REDUCE_SUM || op == LAM_OP_REDUCE_MEAN) {
                    sum_block(xa + c0, n, xs1, nc, oa + c0 * os2, os2, op == LAM_OP_REDUCE_MEAN);
                } else {
                    extreme_block(xa + c0, n, xs1, nc, oa + c0 * os2, os2, op == LAM_OP_REDUCE_MAX);
                }
            }
            continue;
        }
        for (int64_t c = 0; c < inner; c++) {
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
            case LAM_OP_SOFTMAX:
            case LAM_OP_LOG_SOFTMAX:
                softmax_line(x, n, xs1, o, os1, op == LAM_OP_LOG_SOFTMAX);
                break;
            default:
                return cpu_error(LAM_ERR_INTERNAL, "cpu: Internal error, op %d is no reduction",
                                 (int)op);
            }
        }
    }
    return LAM_OK;
}
