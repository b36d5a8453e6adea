/*
 * cpu_nn.c - sliding-window ops on (N, C, H, W) views: IM2COL and its adjoint COL2IM, max
 * pooling with indices and its gradient, average pooling and its gradient.
 *
 * Every loop runs per sample and channel, so a NaN in one sample reaches no other. Sums that
 * the header orders (COL2IM, the backward ops) are accumulated in that order, so results do
 * not depend on how the loops are blocked.
 */
#include "cpu_internal.h"

#include <math.h>
#include <string.h>

/* The window parameters of a call with the output size worked out. */
typedef struct win {
    int64_t k[2], s[2], pb[2], pa[2], d[2];
    int64_t in[2];  /* H, W */
    int64_t out[2]; /* OH, OW */
    uint32_t flags;
} win;

/* Bounds that keep every size sum below 2^63: spatial dims, and window parameters. */
#define CPU_WIN_MAX   (INT64_C(1) << 40)
#define CPU_PARAM_MAX (INT64_C(1) << 31)

/* Output size along one axis (plugin.h, IM2COL), or -1 when not even one window fits. */
static int64_t out_size(const win *w, int ax) {
    const int64_t span = w->in[ax] + w->pb[ax] + w->pa[ax] - w->d[ax] * (w->k[ax] - 1) - 1;
    if (span < 0) {
        return -1;
    }
    if (!(w->flags & LAM_WINDOW_CEIL_MODE)) {
        return span / w->s[ax] + 1;
    }
    int64_t n = (span + w->s[ax] - 1) / w->s[ax] + 1;
    if ((n - 1) * w->s[ax] >= w->in[ax] + w->pb[ax]) {
        n--; /* the last window would start in the trailing padding */
    }
    return n;
}

/* Checks the parameters against input size (H, W) and fills w. */
static lam_status make_win(const cpu_call *c, int64_t h, int64_t wd, win *w) {
    const lam_window_params *p = lam_op_params(c, lam_window_params);
    if (p == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s needs its parameters (lam_window_params, "
                         "struct_size set)",
                         c->name);
    }
    if (p->n_spatial != 2) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s has n_spatial %u; 2.0 window ops take 2",
                         c->name, (unsigned)p->n_spatial);
    }
    if (h > CPU_WIN_MAX || wd > CPU_WIN_MAX) {
        return cpu_error(LAM_ERR_SHAPE,
                         "cpu: Shape mismatch, %s spatial dims (%lld, %lld) exceed 2^40", c->name,
                         (long long)h, (long long)wd);
    }
    w->flags = p->flags;
    w->in[0] = h;
    w->in[1] = wd;
    for (int ax = 0; ax < 2; ax++) {
        w->k[ax] = p->kernel[ax];
        w->s[ax] = p->stride[ax];
        w->pb[ax] = p->pad_before[ax];
        w->pa[ax] = p->pad_after[ax];
        w->d[ax] = p->dilation[ax];
        if (w->k[ax] < 1 || w->s[ax] < 1 || w->d[ax] < 1 || w->pb[ax] < 0 || w->pa[ax] < 0 ||
            w->k[ax] > CPU_PARAM_MAX || w->s[ax] > CPU_PARAM_MAX || w->d[ax] > CPU_PARAM_MAX ||
            w->pb[ax] > CPU_PARAM_MAX || w->pa[ax] > CPU_PARAM_MAX) {
            return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                             "cpu: Invalid argument, %s axis %d has kernel %lld, stride %lld, "
                             "dilation %lld, padding %lld/%lld (kernel, stride and dilation must "
                             "be >= 1, padding >= 0)",
                             c->name, ax, (long long)w->k[ax], (long long)w->s[ax],
                             (long long)w->d[ax], (long long)w->pb[ax], (long long)w->pa[ax]);
        }
        w->out[ax] = out_size(w, ax);
        if (w->out[ax] < 0) {
            return cpu_error(LAM_ERR_SHAPE,
                             "cpu: Shape mismatch, %s window of %lld (dilation %lld) is larger "
                             "than axis %d of %lld plus padding %lld/%lld",
                             c->name, (long long)w->k[ax], (long long)w->d[ax], ax,
                             (long long)w->in[ax], (long long)w->pb[ax], (long long)w->pa[ax]);
        }
    }
    return LAM_OK;
}

static lam_status expect_dims(const cpu_call *c, const char *what, const cpu_view *v, uint32_t nd,
                              const int64_t *want) {
    int ok = v->ndim == nd;
    for (uint32_t d = 0; ok && d < nd; d++) {
        ok = v->dims[d] == want[d];
    }
    if (ok) {
        return LAM_OK;
    }
    char got[160];
    char exp[160];
    return cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s %s has dims %s, expected %s", c->name,
                     what, lam_dims_format(got, sizeof got, v->ndim, v->dims),
                     lam_dims_format(exp, sizeof exp, nd, want));
}

static lam_status expect_f32(const cpu_call *c, const char *what, const cpu_view *v) {
    if (v->dtype != LAM_DTYPE_F32) {
        return cpu_error(LAM_ERR_DTYPE, "cpu: Unsupported dtype, %s %s has dtype %d, not float32",
                         c->name, what, (int)v->dtype);
    }
    return LAM_OK;
}

static lam_status expect_4d(const cpu_call *c, const char *what, const cpu_view *v) {
    if (v->ndim != 4) {
        char got[160];
        return cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s needs a 4-D %s, got dims %s",
                         c->name, what, lam_dims_format(got, sizeof got, v->ndim, v->dims));
    }
    return LAM_OK;
}

/* First input position of window o along axis ax (may lie in the padding). */
static inline int64_t start(const win *w, int ax, int64_t o) {
    return o * w->s[ax] - w->pb[ax];
}

/* Taps of window (oh, ow) inside [lo, hi) per axis: the average's divisor. */
static int64_t taps_inside(const win *w, int64_t oh, int64_t ow, int include_pad) {
    int64_t n[2];
    const int64_t o[2] = {oh, ow};
    for (int ax = 0; ax < 2; ax++) {
        const int64_t lo = include_pad ? -w->pb[ax] : 0;
        const int64_t hi = include_pad ? w->in[ax] + w->pa[ax] : w->in[ax];
        n[ax] = 0;
        for (int64_t i = 0; i < w->k[ax]; i++) {
            const int64_t at = start(w, ax, o[ax]) + i * w->d[ax];
            n[ax] += at >= lo && at < hi;
        }
    }
    return n[0] * n[1];
}

/* x (N, C, H, W) <-> columns (N, C*KH*KW, OH*OW); col2im accumulates in column order. */
/*
 * The range [lo, hi) of k in [0, n) for which first + k * step lies in [0, size): the output
 * positions along one axis whose tap reads the input (step >= 1), so loops run without a test
 * per element.
 */
static void inside(int64_t first, int64_t step, int64_t size, int64_t n, int64_t *lo, int64_t *hi) {
    int64_t l = first >= 0 ? 0 : (-first + step - 1) / step;
    int64_t h = first <= size - 1 ? (size - 1 - first) / step + 1 : 0;
    l = l < n ? l : n;
    h = h < n ? h : n;
    *lo = l;
    *hi = h > l ? h : l;
}

/* Planes [p0, p1) of n * C + c. */
static void im2col(const win *w, const cpu_view *x, const cpu_view *col, int64_t cc, int64_t p0,
                   int64_t p1) {
    const float *xb = cpu_f32(x);
    float *cb = cpu_f32(col);
    const int64_t ow_n = w->out[1], cs = col->st[2], xs3 = x->st[3];
    for (int64_t pl = p0; pl < p1; pl++) {
        const int64_t n = pl / cc, c = pl % cc;
        {
            const float *xc = xb + n * x->st[0] + c * x->st[1];
            for (int64_t i = 0; i < w->k[0]; i++) {
                int64_t oh_lo, oh_hi;
                inside(i * w->d[0] - w->pb[0], w->s[0], w->in[0], w->out[0], &oh_lo, &oh_hi);
                for (int64_t j = 0; j < w->k[1]; j++) {
                    const int64_t row = (c * w->k[0] + i) * w->k[1] + j;
                    float *cr = cb + n * col->st[0] + row * col->st[1];
                    const int64_t w0 = j * w->d[1] - w->pb[1];
                    int64_t lo, hi;
                    inside(w0, w->s[1], w->in[1], ow_n, &lo, &hi);
                    for (int64_t oh = 0; oh < w->out[0]; oh++) {
                        float *co = cr + oh * ow_n * cs;
                        if (oh < oh_lo || oh >= oh_hi) {
                            for (int64_t ow = 0; ow < ow_n; ow++) {
                                co[ow * cs] = 0.0f;
                            }
                            continue;
                        }
                        /* integer offsets: the row's first tap may lie before the plane */
                        const int64_t base = (start(w, 0, oh) + i * w->d[0]) * x->st[2] + w0 * xs3;
                        const int64_t step = w->s[1] * xs3;
                        if (cs == 1 && step == 1) { /* dense rows: the common stride-1 case */
                            /* loops, not memset/memcpy calls: rows are short (a call per
                             * 10-30 floats cost more than the copy in LeNet's profile), and
                             * this file is built without loop-to-call distribution */
                            const float *src = xc + base;
                            for (int64_t k = 0; k < lo; k++) {
                                co[k] = 0.0f;
                            }
                            for (int64_t k = lo; k < hi; k++) {
                                co[k] = src[k];
                            }
                            for (int64_t k = hi; k < ow_n; k++) {
                                co[k] = 0.0f;
                            }
                            continue;
                        }
                        for (int64_t ow = 0; ow < lo; ow++) {
                            co[ow * cs] = 0.0f;
                        }
                        for (int64_t ow = lo; ow < hi; ow++) {
                            co[ow * cs] = xc[base + ow * step];
                        }
                        for (int64_t ow = hi; ow < ow_n; ow++) {
                            co[ow * cs] = 0.0f;
                        }
                    }
                }
            }
        }
    }
}

/* Zeroes planes [p0, p1) of n * C + c. */
static void zero_planes(const cpu_view *v, int64_t p0, int64_t p1) {
    float *b = cpu_f32(v);
    const int dense_plane = v->st[3] == 1 && v->st[2] == v->dims[3];
    for (int64_t pl = p0; pl < p1; pl++) {
        const int64_t n = pl / v->dims[1], c = pl % v->dims[1];
        if (dense_plane) {
            memset(b + n * v->st[0] + c * v->st[1], 0,
                   (size_t)(v->dims[2] * v->dims[3]) * sizeof *b);
        } else {
            for (int64_t h = 0; h < v->dims[2]; h++) {
                for (int64_t x = 0; x < v->dims[3]; x++) {
                    b[n * v->st[0] + c * v->st[1] + h * v->st[2] + x * v->st[3]] = 0.0f;
                }
            }
        }
    }
}

/*
 * col2im: taps walked row by row with i and j DEscending, so that each output element, whose
 * window row oh grows as i shrinks (and column ow as j shrinks), receives its terms in
 * increasing column order as plugin.h requires, while the innermost loop runs along a row.
 */
static void col2im(const win *w, const cpu_view *col, const cpu_view *out, int64_t cc, int64_t p0,
                   int64_t p1) {
    const float *cb = cpu_f32(col);
    float *ob = cpu_f32(out);
    const int64_t ow_n = w->out[1], cs = col->st[2], os2 = out->st[2], os3 = out->st[3];
    zero_planes(out, p0, p1);
    for (int64_t pl = p0; pl < p1; pl++) {
        const int64_t n = pl / cc, c = pl % cc;
        {
            float *oc = ob + n * out->st[0] + c * out->st[1];
            for (int64_t i = w->k[0] - 1; i >= 0; i--) {
                int64_t oh_lo, oh_hi;
                inside(i * w->d[0] - w->pb[0], w->s[0], w->in[0], w->out[0], &oh_lo, &oh_hi);
                for (int64_t j = w->k[1] - 1; j >= 0; j--) {
                    const int64_t row = (c * w->k[0] + i) * w->k[1] + j;
                    const float *cr = cb + n * col->st[0] + row * col->st[1];
                    const int64_t w0 = j * w->d[1] - w->pb[1];
                    int64_t lo, hi;
                    inside(w0, w->s[1], w->in[1], ow_n, &lo, &hi);
                    const int64_t step = w->s[1] * os3;
                    for (int64_t oh = oh_lo; oh < oh_hi; oh++) {
                        const float *crow = cr + oh * ow_n * cs;
                        const int64_t base = (start(w, 0, oh) + i * w->d[0]) * os2 + w0 * os3;
                        if (cs == 1 && step == 1) {
                            float *d = oc + base + lo;
                            const float *src = crow + lo;
                            for (int64_t k = 0; k < hi - lo; k++) {
                                d[k] += src[k];
                            }
                            continue;
                        }
                        for (int64_t ow = lo; ow < hi; ow++) {
                            oc[base + ow * step] += crow[ow * cs];
                        }
                    }
                }
            }
        }
    }
}

/* Window (oh, ow) in general: the taps inside the input, the first maximum, the first NaN. */
static void max_window(const win *w, const float *xp, int64_t sh, int64_t sw, int64_t h0,
                       int64_t i0, int64_t i1, int64_t ow, float *ov, int32_t *iv) {
    const int64_t k1 = w->k[1], d1 = w->d[1];
    const int64_t w0 = start(w, 1, ow);
    int64_t j0 = 0, j1 = k1;
    if (w0 < 0 || w0 + (k1 - 1) * d1 >= w->in[1]) {
        inside(w0, d1, w->in[1], k1, &j0, &j1); /* the row's ends: padding */
    }
    /* Row-major window order; the first maximum wins, and the first NaN. */
    float best = 0.0f;
    int64_t at = -1;
    for (int64_t i = i0; i < i1; i++) {
        const int64_t h = h0 + i * w->d[0];
        const float *r = xp + h * sh;
        for (int64_t j = j0; j < j1; j++) {
            const int64_t wi = w0 + j * d1;
            const float v = r[wi * sw];
            if (at < 0 || v > best || (isnan(v) && !isnan(best))) {
                best = v;
                at = h * w->in[1] + wi;
            }
        }
    }
    *ov = best;
    if (iv != NULL) {
        *iv = (int32_t)at;
    }
}

/* Whether v takes the window's maximum from b: larger, or the first NaN. */
#define MAX_TAKES(v, b) (((v) > (b)) | (((v) != (v)) & ((b) == (b))))

/*
 * Windows [lo, hi) of output row oh, every tap inside the input, unit strides along the row:
 * tap by tap over the whole row instead of window by window, the same comparison made without
 * branches, so that the loop over the windows vectorizes (a compare per tap whose outcome the
 * branch predictor cannot know cost ~12 cycles per tap in LeNet's profile). Same taps in the
 * same order as max_window: the same maxima, indices and NaNs. Indices in 32-bit unsigned
 * arithmetic: the same bits as max_window's (int32_t) conversion.
 */
static inline void max_row_inside(const win *w, const float *xp, int64_t sh, int64_t h0, int64_t lo,
                                  int64_t hi, int64_t s1, float *restrict orow,
                                  int32_t *restrict irow) {
    const int64_t n = hi - lo, c0 = start(w, 1, lo), in1 = w->in[1];
    float *restrict ob = orow + lo;
    const float *r = xp + h0 * sh + c0;
    for (int64_t q = 0; q < n; q++) {
        ob[q] = r[q * s1];
    }
    int32_t *restrict ib = irow != NULL ? irow + lo : NULL;
    if (ib != NULL) {
        const uint32_t p = (uint32_t)(h0 * in1 + c0);
        for (int64_t q = 0; q < n; q++) {
            ib[q] = (int32_t)(p + (uint32_t)q * (uint32_t)s1);
        }
    }
    for (int64_t i = 0; i < w->k[0]; i++) {
        const int64_t h = h0 + i * w->d[0];
        for (int64_t j = i == 0 ? 1 : 0; j < w->k[1]; j++) {
            const int64_t col = c0 + j * w->d[1];
            const float *t = xp + h * sh + col;
            if (ib == NULL) {
                for (int64_t q = 0; q < n; q++) {
                    const float v = t[q * s1], b = ob[q];
                    const int take = MAX_TAKES(v, b);
                    ob[q] = take ? v : b;
                }
                continue;
            }
            const uint32_t p = (uint32_t)(h * in1 + col);
            for (int64_t q = 0; q < n; q++) {
                const float v = t[q * s1], b = ob[q];
                const int take = MAX_TAKES(v, b);
                ob[q] = take ? v : b;
                ib[q] = take ? (int32_t)(p + (uint32_t)q * (uint32_t)s1) : ib[q];
            }
        }
    }
}

/* GCC vector types (GCC and clang; SSE2 on x86-64, as cpu_gemm.c uses them). */
typedef float nn_v4sf __attribute__((vector_size(16)));
typedef int32_t nn_v4si __attribute__((vector_size(16)));
typedef uint32_t nn_v4su __attribute__((vector_size(16)));

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define NN_SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#endif
#endif
#ifndef NN_SHUF
#define NN_SHUF(a, b, ...) __builtin_shuffle(a, b, (nn_v4si){__VA_ARGS__})
#endif

/* MAX_TAKES on four lanes: all ones where v takes the maximum from b. */
static inline nn_v4si takes4(nn_v4sf v, nn_v4sf b) {
    return (v > b) | ((v != v) & (b == b));
}

static inline nn_v4sf pick4(nn_v4si take, nn_v4sf v, nn_v4sf b) {
    return (nn_v4sf)(((nn_v4si)v & take) | ((nn_v4si)b & ~take));
}

/*
 * Four 2 x 2 windows at stride 2 along the row, no dilation, from q: the taps of rows r0 and r1
 * (columns 2 q .. 2 q + 7 of each) split into their even and odd columns, then compared in the
 * windows' row-major order (a, b, c, d) as max_window does; the index is p0 + 2 q + the winning
 * tap's offset (0, 1, W, W + 1).
 */
static inline void max4_2x2(const float *r0, const float *r1, int64_t q, uint32_t p0, int32_t in1,
                            float *ob, int32_t *ib) {
    nn_v4sf l0, h0, l1, h1;
    memcpy(&l0, r0 + 2 * q, sizeof l0);
    memcpy(&h0, r0 + 2 * q + 4, sizeof h0);
    memcpy(&l1, r1 + 2 * q, sizeof l1);
    memcpy(&h1, r1 + 2 * q + 4, sizeof h1);
    const nn_v4sf a = NN_SHUF(l0, h0, 0, 2, 4, 6), b = NN_SHUF(l0, h0, 1, 3, 5, 7);
    const nn_v4sf c = NN_SHUF(l1, h1, 0, 2, 4, 6), d = NN_SHUF(l1, h1, 1, 3, 5, 7);
    nn_v4sf best = a;
    nn_v4si at = {0, 0, 0, 0};
    nn_v4si t = takes4(b, best);
    best = pick4(t, b, best);
    at = (t & 1) | (at & ~t);
    t = takes4(c, best);
    best = pick4(t, c, best);
    at = (t & in1) | (at & ~t);
    t = takes4(d, best);
    best = pick4(t, d, best);
    at = (t & (in1 + 1)) | (at & ~t);
    memcpy(ob + q, &best, sizeof best);
    if (ib != NULL) {
        const nn_v4su idx = (nn_v4su)at + (p0 + 2u * (uint32_t)q) + (nn_v4su){0, 2, 4, 6};
        memcpy(ib + q, &idx, sizeof idx);
    }
}

/*
 * Windows [0, n), n >= 4, of a 2 x 2 stride-2 row (LeNet's pooling and most CNNs'): four at a
 * time, the last four ending at n (they may overlap the previous four: recomputed from the
 * input, the same values and indices again), so short rows (LeNet's 14 and 5) need no
 * one-by-one tail.
 */
static void max_row_2x2(const float *r0, const float *r1, int64_t n, uint32_t p0, uint32_t in1,
                        float *ob, int32_t *ib) {
    for (int64_t q = 0;; q += 4) {
        if (q > n - 4) {
            q = n - 4;
        }
        max4_2x2(r0, r1, q, p0, (int32_t)in1, ob, ib);
        if (q == n - 4) {
            return;
        }
    }
}

/* Max pooling: first maximum in row-major window order, the first NaN wins, padding never. */
static void max_pool(const win *w, const cpu_view *x, const cpu_view *o, const cpu_view *idx,
                     int64_t p0, int64_t p1) {
    const float *xb = cpu_f32(x);
    float *ob = cpu_f32(o);
    int32_t *ib = idx != NULL ? (int32_t *)(void *)idx->data : NULL;
    const int64_t sh = x->st[2], sw = x->st[3], ow_n = w->out[1];
    /* the windows whose taps all lie inside the row: first and last tap inside */
    int64_t lo, hi, lo2, hi2;
    inside(-w->pb[1], w->s[1], w->in[1], ow_n, &lo, &hi);
    inside((w->k[1] - 1) * w->d[1] - w->pb[1], w->s[1], w->in[1], ow_n, &lo2, &hi2);
    lo = lo > lo2 ? lo : lo2;
    hi = hi < hi2 ? hi : hi2;
    const int rows_fast = sw == 1 && o->st[3] == 1 && (ib == NULL || idx->st[3] == 1) && hi > lo;
    const int two_by_two = w->k[0] == 2 && w->k[1] == 2 && w->d[0] == 1 && w->d[1] == 1 &&
                           w->s[1] == 2 && hi - lo >= 4;
    for (int64_t pl = p0; pl < p1; pl++) {
        const int64_t n = pl / x->dims[1], c = pl % x->dims[1];
        const float *xp = xb + n * x->st[0] + c * x->st[1];
        for (int64_t oh = 0; oh < w->out[0]; oh++) {
            int64_t i0, i1; /* the window's rows inside the input, once per output row */
            const int64_t h0 = start(w, 0, oh);
            inside(h0, w->d[0], w->in[0], w->k[0], &i0, &i1);
            float *orow = ob + n * o->st[0] + c * o->st[1] + oh * o->st[2];
            int32_t *irow =
                ib != NULL ? ib + n * idx->st[0] + c * idx->st[1] + oh * idx->st[2] : NULL;
            const int fast = rows_fast && i0 == 0 && i1 == w->k[0];
            for (int64_t ow = 0; ow < ow_n; ow++) {
                if (fast && ow == lo && two_by_two) {
                    const int64_t c0 = start(w, 1, lo);
                    const float *r0 = xp + h0 * sh + c0;
                    max_row_2x2(r0, r0 + sh, hi - lo, (uint32_t)(h0 * w->in[1] + c0),
                                (uint32_t)w->in[1], orow + lo, irow != NULL ? irow + lo : NULL);
                    ow = hi - 1;
                    continue;
                }
                if (fast && ow == lo) {
                    if (w->s[1] == 2) { /* the usual 2 x 2 / 3 x 3 stride-2 pooling */
                        max_row_inside(w, xp, sh, h0, lo, hi, 2, orow, irow);
                    } else {
                        max_row_inside(w, xp, sh, h0, lo, hi, w->s[1], orow, irow);
                    }
                    ow = hi - 1;
                    continue;
                }
                max_window(w, xp, sh, sw, h0, i0, i1, ow, orow + ow * o->st[3],
                           irow != NULL ? irow + ow * idx->st[3] : NULL);
            }
        }
    }
}

/* Index `at` of gradient element (n, ch, oh, ow) outside the plane: the caller's error, named. */
static lam_status bad_index(const cpu_call *c, int64_t n, int64_t ch, int64_t oh, int64_t ow,
                            int64_t at, int64_t plane) {
    return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                     "cpu: Index out of range, %s index at (%lld, %lld, %lld, %lld) is %lld, "
                     "outside [0, %lld)",
                     c->name, (long long)n, (long long)ch, (long long)oh, (long long)ow,
                     (long long)at, (long long)plane);
}

/*
 * Max pooling's gradient, plane by plane: each output plane zeroed just before its terms are
 * added (it is still in cache when they land), the terms in increasing output order; contiguous
 * planes (the usual case) walked with one flat index.
 */
static lam_status max_pool_backward(const cpu_call *c, const cpu_view *g, const cpu_view *idx,
                                    const cpu_view *out) {
    const int64_t plane = out->dims[2] * out->dims[3], gw = g->dims[3];
    const int64_t gplane = g->dims[2] * gw;
    const float *gb = cpu_f32(g);
    const int32_t *ib = (const int32_t *)(const void *)idx->data;
    float *ob = cpu_f32(out);
    const int dense_plane = out->st[3] == 1 && out->st[2] == out->dims[3];
    const int dense_g = dense_plane && g->st[3] == 1 && g->st[2] == gw && idx->st[3] == 1 &&
                        idx->st[2] == idx->dims[3];
    for (int64_t n = 0; n < g->dims[0]; n++) {
        for (int64_t ch = 0; ch < g->dims[1]; ch++) {
            const int64_t pl = n * out->dims[1] + ch;
            zero_planes(out, pl, pl + 1);
            const float *gp = gb + n * g->st[0] + ch * g->st[1];
            const int32_t *ip = ib + n * idx->st[0] + ch * idx->st[1];
            float *op = ob + n * out->st[0] + ch * out->st[1];
            if (dense_g) { /* the index is the offset: no division */
                for (int64_t q = 0; q < gplane; q++) {
                    const int64_t at = ip[q];
                    if (at < 0 || at >= plane) {
                        return bad_index(c, n, ch, q / gw, q % gw, at, plane);
                    }
                    op[at] += gp[q];
                }
                continue;
            }
            for (int64_t oh = 0; oh < g->dims[2]; oh++) {
                for (int64_t ow = 0; ow < gw; ow++) {
                    const int64_t at = ip[oh * idx->st[2] + ow * idx->st[3]];
                    if (at < 0 || at >= plane) {
                        return bad_index(c, n, ch, oh, ow, at, plane);
                    }
                    const float gv = gp[oh * g->st[2] + ow * g->st[3]];
                    if (dense_plane) {
                        op[at] += gv;
                    } else {
                        const int64_t h = at / out->dims[3], wi = at % out->dims[3];
                        op[h * out->st[2] + wi * out->st[3]] += gv;
                    }
                }
            }
        }
    }
    return LAM_OK;
}

/* Average pooling (backward: spreads each gradient over its taps, in output order). */
static void avg_pool(const win *w, const cpu_view *src, const cpu_view *dst, int backward,
                     int64_t p0, int64_t p1) {
    const int include_pad = (w->flags & LAM_WINDOW_COUNT_INCLUDE_PAD) != 0;
    const cpu_view *big = backward ? dst : src; /* the (N, C, H, W) side */
    const cpu_view *small = backward ? src : dst;
    float *bb = cpu_f32(big);
    float *sb = cpu_f32(small);
    if (backward) {
        zero_planes(dst, p0, p1);
    }
    for (int64_t pl = p0; pl < p1; pl++) {
        const int64_t n = pl / big->dims[1], c = pl % big->dims[1];
        {
            float *bp = bb + n * big->st[0] + c * big->st[1];
            for (int64_t oh = 0; oh < w->out[0]; oh++) {
                for (int64_t ow = 0; ow < w->out[1]; ow++) {
                    const int64_t cnt = taps_inside(w, oh, ow, include_pad);
                    float *sv = sb + n * small->st[0] + c * small->st[1] + oh * small->st[2] +
                                ow * small->st[3];
                    const float share = cnt > 0 ? *sv / (float)cnt : 0.0f;
                    double sum = 0.0;
                    int64_t i0, i1, j0, j1;
                    inside(start(w, 0, oh), w->d[0], w->in[0], w->k[0], &i0, &i1);
                    inside(start(w, 1, ow), w->d[1], w->in[1], w->k[1], &j0, &j1);
                    for (int64_t i = i0; i < i1; i++) {
                        const int64_t h = start(w, 0, oh) + i * w->d[0];
                        for (int64_t j = j0; j < j1; j++) {
                            const int64_t wi = start(w, 1, ow) + j * w->d[1];
                            float *e = bp + h * big->st[2] + wi * big->st[3];
                            if (backward) {
                                *e += share;
                            } else {
                                sum += (double)*e;
                            }
                        }
                    }
                    if (!backward) {
                        *sv = cnt > 0 ? (float)(sum / (double)cnt) : 0.0f;
                    }
                }
            }
        }
    }
}

/* A window op over planes of n * C + c, each task owning its output planes. */
typedef struct win_job {
    const cpu_call *c;
    const win *w;
    int64_t cc;
} win_job;

static void win_tasks(void *arg, int64_t p0, int64_t p1) {
    const win_job *j = arg;
    const cpu_call *c = j->c;
    switch (c->op) {
    case LAM_OP_IM2COL:
        im2col(j->w, &c->in[0], &c->out[0], j->cc, p0, p1);
        break;
    case LAM_OP_COL2IM:
        col2im(j->w, &c->in[0], &c->out[0], j->cc, p0, p1);
        break;
    case LAM_OP_MAX_POOL:
        max_pool(j->w, &c->in[0], &c->out[0], c->n_out == 2 ? &c->out[1] : NULL, p0, p1);
        break;
    default:
        avg_pool(j->w, &c->in[0], &c->out[0], c->op == LAM_OP_AVG_POOL_BACKWARD, p0, p1);
        break;
    }
}

/* A window lying wholly in the padding (MAX_POOL has no value for it). */
static lam_status check_no_empty_window(const cpu_call *c, const win *w) {
    for (int ax = 0; ax < 2; ax++) {
        for (int64_t o = 0; o < w->out[ax]; o++) {
            int any = 0;
            for (int64_t i = 0; i < w->k[ax] && !any; i++) {
                const int64_t at = start(w, ax, o) + i * w->d[ax];
                any = at >= 0 && at < w->in[ax];
            }
            if (!any) {
                return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                                 "cpu: Invalid argument, %s window %lld of axis %d lies wholly in "
                                 "the padding",
                                 c->name, (long long)o, ax);
            }
        }
    }
    return LAM_OK;
}

lam_status cpu_window(const cpu_call *c) {
    const lam_op op = c->op;
    const cpu_view *x = &c->in[0];
    const cpu_view *o = &c->out[0];
    /* The (N, C, H, W) operand: the input, or the output of COL2IM and the backward ops. */
    const int img_out =
        op == LAM_OP_COL2IM || op == LAM_OP_MAX_POOL_BACKWARD || op == LAM_OP_AVG_POOL_BACKWARD;
    const cpu_view *img = img_out ? o : x;
    lam_status st = expect_f32(c, "input 0", x);
    if (st == LAM_OK) {
        st = expect_f32(c, "output 0", o);
    }
    if (st == LAM_OK) {
        st = expect_4d(c, img_out ? "output" : "input", img);
    }
    if (st != LAM_OK) {
        return st;
    }
    const int64_t nn = img->dims[0], cc = img->dims[1];
    if (op == LAM_OP_MAX_POOL_BACKWARD) {
        const cpu_view *idx = &c->in[1];
        if (idx->dtype != LAM_DTYPE_I32) {
            return cpu_error(LAM_ERR_DTYPE,
                             "cpu: Unsupported dtype, %s indices have dtype %d, not int32", c->name,
                             (int)idx->dtype);
        }
        st = expect_4d(c, "input 0", x);
        if (st == LAM_OK) {
            st = expect_dims(c, "input 1 (indices)", idx, 4, x->dims);
        }
        if (st == LAM_OK && (x->dims[0] != nn || x->dims[1] != cc)) {
            const int64_t want[4] = {nn, cc, x->dims[2], x->dims[3]};
            st = expect_dims(c, "input 0", x, 4, want);
        }
        if (st != LAM_OK || c->dry) {
            return st;
        }
        return max_pool_backward(c, x, idx, o);
    }
    win w = {0};
    st = make_win(c, img->dims[2], img->dims[3], &w);
    if (st != LAM_OK) {
        return st;
    }
    const int64_t pooled[4] = {nn, cc, w.out[0], w.out[1]};
    int64_t rows = 0;
    int64_t ncols = 0;
    if (__builtin_mul_overflow(cc, w.k[0] * w.k[1], &rows) ||
        __builtin_mul_overflow(w.out[0], w.out[1], &ncols)) {
        return cpu_error(LAM_ERR_SHAPE, "cpu: Invalid shape, %s has too many columns or rows",
                         c->name);
    }
    const int64_t cols[3] = {nn, rows, ncols};
    switch (op) {
    case LAM_OP_IM2COL:
        st = expect_dims(c, "output", o, 3, cols);
        break;
    case LAM_OP_COL2IM:
        st = expect_dims(c, "input", x, 3, cols);
        break;
    case LAM_OP_MAX_POOL:
        st = expect_dims(c, "output 0", o, 4, pooled);
        if (st == LAM_OK && c->n_out == 2) {
            if (c->out[1].dtype != LAM_DTYPE_I32) {
                return cpu_error(LAM_ERR_DTYPE,
                                 "cpu: Unsupported dtype, %s output 1 (indices) has dtype %d, not "
                                 "int32",
                                 c->name, (int)c->out[1].dtype);
            }
            st = expect_dims(c, "output 1 (indices)", &c->out[1], 4, pooled);
        }
        if (st == LAM_OK) {
            st = check_no_empty_window(c, &w);
        }
        break;
    case LAM_OP_AVG_POOL:
        st = expect_dims(c, "output", o, 4, pooled);
        break;
    default: /* AVG_POOL_BACKWARD */
        st = expect_dims(c, "input", x, 4, pooled);
        break;
    }
    if (st != LAM_OK || c->dry) {
        return st;
    }
    win_job j = {c, &w, cc};
    /* work: the larger side's elements times the window's taps (im2col/col2im: the columns) */
    const int64_t work = nn * rows * ncols;
    cpu_parallel_for(nn * cc, work, win_tasks, &j);
    return LAM_OK;
}
