/*
 * vk_kernels.c - recording the reductions (sum, mean, max, min, argmax), softmax / log-softmax
 * and GEMM on a call that vk_execute checked.
 *
 * Reductions run one invocation per output for short axes and one workgroup per (output,
 * segment) for long ones, with partial results reduced by further passes, so that no shader
 * invocation loops anywhere near lavapipe's limit. Softmax is a maximum pass, a sum-of-exp
 * pass and an elementwise pass. GEMM splits K into dispatches of bounded depth and the tile
 * grid into dispatches within maxComputeWorkGroupCount. Level 6: above vk_pipeline.
 */
#include "vk_kernels.h"

#include "vk_elementwise.h"
#include "vk_memory.h"
#include "vk_queue.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/*
 * lavapipe stops a shader invocation silently after 65,535 non-unrolled loop iterations in
 * total. Every shader's loops are bounded on the host so that no invocation gets near it.
 */
#define VK_MAX_LOOP_ITERS 60000u

/* Reduction shader modes (reduce_common.glsl). */
enum {
    RED_SUM = 0,
    RED_MAX = 1,
    RED_MIN = 2,
    RED_ARGMAX = 3,
    RED_SUMEXP = 4,
    RED_ARGMAX_PART = 5,
    RED_SQDEV = 6
};

/* Axes up to this long are reduced by one invocation per output (reduce_row.comp). */
#define ROW_MAX_N 2048
/* Axis elements per workgroup segment of reduce_wg.comp: 1024 per invocation. */
#define WG_SEGMENT (256 * 1024)
/* GEMM (gemm.comp): depth of one shared-memory slice, output tile, loop iterations per slice
 * and outside the slices. The shader loops once per slice (the depth steps are unrolled in the
 * source); 18 per slice is what it would take if a compiler re-rolled them, and keeps each
 * dispatch's K below ~53,000. */
#define GEMM_TK          16
#define GEMM_TILE        64
#define GEMM_ITERS_SLICE 18
#define GEMM_ITERS_FIXED 128

/* ---- reductions ---- */

typedef struct red_push {
    uint32_t op;
    int32_t n;
    int32_t inner;
    uint32_t count;
    int32_t xs0, xs1, xs2, xoff;
    int32_t os0, os1, os2, ooff;
    int32_t moff;
    float scale;
    int32_t xidx;
    int32_t oidx;
    int32_t seglen;
} red_push;

/* A 3-D operand of a reduction pass: buffer, element offset and strides. */
typedef struct rview {
    vk_buffer *buf;
    int64_t off;
    int64_t s0, s1, s2;
} rview;

/* Elements [lo, hi] of a (outer, n, inner) view; n may be 0 (then just its first element). */
static void rview_span(const rview *v, int64_t outer, int64_t n, int64_t inner, int64_t *lo,
                       int64_t *hi) {
    const int64_t dims[3] = {outer, n > 0 ? n : 1, inner};
    const int64_t strides[3] = {v->s0, v->s1, v->s2};
    *lo = *hi = v->off;
    for (int i = 0; i < 3; i++) {
        int64_t span = (dims[i] - 1) * strides[i];
        if (span > 0) {
            *hi += span;
        } else {
            *lo += span;
        }
    }
}

/* The sizes, strides and offsets of one reduction pass as the shader's ints; offsets are
 * relative to the windows bound in binds (output, input, maxima). */
static lam_status reduce_push(red_push *p, const vk_bind binds[3], uint32_t mode, int64_t n,
                              int64_t inner, int64_t count, const rview *x, int64_t xidx,
                              const rview *m, const rview *dst, int64_t oidx, const char *opname) {
    int32_t t32;
    lam_status s = vk_to_i32(n, &p->n, opname);
    if (s == LAM_OK) {
        s = vk_to_i32(inner, &p->inner, opname);
    }
    if (s == LAM_OK && count > UINT32_MAX) {
        s = vk_error(LAM_ERR_UNSUPPORTED, "vulkan: Unsupported size, %s with %lld outputs", opname,
                     (long long)count);
    }
    p->count = (uint32_t)count;
    if (s == LAM_OK) {
        s = vk_to_i32(x->s0, &p->xs0, opname);
    }
    if (s == LAM_OK) {
        s = vk_to_i32(x->s1, &p->xs1, opname);
    }
    if (s == LAM_OK) {
        s = vk_to_i32(x->s2, &p->xs2, opname);
    }
    if (s == LAM_OK) {
        s = n == 0 ? LAM_OK : vk_rel(&binds[1], x->off, &p->xoff);
    }
    if (s == LAM_OK && mode == RED_ARGMAX_PART) {
        s = vk_rel(&binds[1], xidx, &p->xidx);
    }
    if (s == LAM_OK) {
        s = vk_to_i32(dst->s0, &p->os0, opname);
    }
    if (s == LAM_OK) {
        s = vk_to_i32(dst->s1, &p->os1, opname);
    }
    if (s == LAM_OK) {
        s = vk_to_i32(dst->s2, &p->os2, opname);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[0], dst->off, &p->ooff);
    }
    if (s == LAM_OK && oidx >= 0) {
        s = vk_rel(&binds[0], oidx, &t32);
        p->oidx = t32;
    } else {
        p->oidx = -1;
    }
    if (s == LAM_OK && (mode == RED_SUMEXP || mode == RED_SQDEV)) {
        s = vk_rel(&binds[2], m->off, &p->moff);
    }
    return s;
}

/*
 * Reduces x (outer, n, inner) along n into out (outer, 1, inner) with mode `mode`; `xidx` is
 * the element offset of partial argmax indices in x's buffer (RED_ARGMAX_PART), `m` the line
 * maxima (RED_SUMEXP, dense (outer, inner)); `scale` multiplies sums in the final pass.
 */
static lam_status reduce_run(vk_device *d, uint32_t mode, int64_t outer, int64_t n, int64_t inner,
                             const rview *x, int64_t xidx, const rview *m, const rview *out,
                             float scale, const char *opname) {
    const int64_t count = outer * inner;
    if (count == 0) {
        return LAM_OK;
    }
    int wg = n > ROW_MAX_N;
    int64_t nseg = wg ? (n + WG_SEGMENT - 1) / WG_SEGMENT : 1;
    /* lavapipe's loop limit, checked rather than hoped for */
    const int64_t iters = wg ? WG_SEGMENT / 256 + 8 : n;
    if (iters > (int64_t)VK_MAX_LOOP_ITERS) {
        return vk_error(LAM_ERR_INTERNAL,
                        "vulkan: Internal error, %s would loop %lld times per invocation", opname,
                        (long long)iters);
    }
    if (nseg > d->phys->props.limits.maxComputeWorkGroupCount[2]) {
        return vk_error(LAM_ERR_UNSUPPORTED, "vulkan: Unsupported size, %s over an axis of %lld",
                        opname, (long long)n);
    }
    int partial = nseg > 1;
    vk_buffer *tmp = NULL;
    rview dst = *out;
    int64_t oidx = -1;
    lam_status s = LAM_OK;
    int arg = mode == RED_ARGMAX || mode == RED_ARGMAX_PART;
    if (partial) {
        int64_t elems = outer * nseg * inner * (arg ? 2 : 1);
        s = vk_alloc(d, (size_t)elems * sizeof(float), 0, &tmp);
        if (s != LAM_OK) {
            return s;
        }
        dst = (rview){tmp, 0, nseg * inner, inner, 1};
        oidx = arg ? outer * nseg * inner : -1;
    }
    vk_bind binds[3];
    int64_t lo, hi;
    if (partial) {
        lo = 0;
        hi = outer * nseg * inner * (arg ? 2 : 1) - 1;
    } else {
        rview_span(&dst, outer, 1, inner, &lo, &hi);
    }
    s = vk_bind_range(d, dst.buf, lo, hi, opname, "output", &binds[0]);
    if (s == LAM_OK) {
        rview_span(x, outer, n, inner, &lo, &hi);
        if (mode == RED_ARGMAX_PART) {
            hi = xidx + (hi - x->off);
        }
        if (n == 0) {
            binds[1] = binds[0];
        } else {
            s = vk_bind_range(d, x->buf, lo, hi, opname, "input", &binds[1]);
        }
    }
    if (s == LAM_OK) {
        if (mode == RED_SUMEXP || mode == RED_SQDEV) {
            s = vk_bind_range(d, m->buf, m->off, m->off + count - 1, opname, "maxima", &binds[2]);
        } else {
            binds[2] = binds[1];
        }
    }
    red_push p;
    memset(&p, 0, sizeof p);
    p.op = mode;
    p.scale = partial ? 1.0f : scale;
    p.seglen = WG_SEGMENT;
    if (s == LAM_OK) {
        s = reduce_push(&p, binds, mode, n, inner, count, x, xidx, m, &dst, oidx, opname);
    }
    uint32_t gx = 0, gy = 0;
    if (s == LAM_OK) {
        s = vk_grid_2d(d, wg ? (uint64_t)count : ((uint64_t)count + 63) / 64, &gx, &gy, opname);
    }
    if (s == LAM_OK) {
        s = vk_dispatch(d, wg ? VK_SHADER_REDUCE_WG : VK_SHADER_REDUCE_ROW, binds, &p, sizeof p, gx,
                        gy, (uint32_t)nseg);
    }
    if (s == LAM_OK && partial) {
        uint32_t next = (mode == RED_SUMEXP || mode == RED_SQDEV) ? RED_SUM
                        : arg                                     ? RED_ARGMAX_PART
                                                                  : mode;
        s = reduce_run(d, next, outer, nseg, inner, &dst, oidx, NULL, out, scale, opname);
    }
    if (tmp != NULL) {
        vk_free_deferred(d, tmp);
    }
    return s;
}

lam_status vk_run_reduce(vk_device *d, const vk_call *call, const char *opname) {
    const lam_tensor_view *xv = &call->in[0];
    const lam_tensor_view *ov = (&call->out[0]);
    const int64_t outer = xv->dims[0], n = xv->dims[1], inner = xv->dims[2];
    if (outer == 0 || inner == 0) {
        return LAM_OK;
    }
    if (call->op == LAM_OP_ARGMAX && n == 0) {
        char dims[160];
        return vk_error(LAM_ERR_SHAPE, "vulkan: Empty axis, argmax of an input with dims %s",
                        lam_dims_format(dims, sizeof dims, 3, xv->dims));
    }
    if (call->op == LAM_OP_ARGMAX && n > (1 << 24)) {
        return vk_error(LAM_ERR_UNSUPPORTED,
                        "vulkan: Unsupported size, argmax over an axis of %lld (at most 2^24)",
                        (long long)n);
    }
    rview x = {xv->buffer, (int64_t)xv->offset, xv->strides[0], xv->strides[1], xv->strides[2]};
    rview o = {ov->buffer, (int64_t)ov->offset, ov->strides[0], 0, ov->strides[2]};
    uint32_t mode = RED_SUM;
    float scale = 1.0f;
    switch (call->op) {
    case LAM_OP_REDUCE_MEAN:
        scale = n > 0 ? (float)(1.0 / (double)n) : NAN;
        break;
    case LAM_OP_REDUCE_MAX:
        mode = RED_MAX;
        break;
    case LAM_OP_REDUCE_MIN:
        mode = RED_MIN;
        break;
    case LAM_OP_ARGMAX:
        mode = RED_ARGMAX;
        break;
    default:
        break;
    }
    return reduce_run(d, mode, outer, n, inner, &x, 0, NULL, &o, scale, opname);
}

/* MOMENTS: the mean into a dense temporary (a sum scaled by 1/n), the variance as the mean of
 * squared deviations from it (two passes), then the mean copied to outputs[0]. */
lam_status vk_run_moments(vk_device *d, const vk_call *call, const char *opname) {
    const lam_tensor_view *xv = &call->in[0];
    const int64_t outer = xv->dims[0], n = xv->dims[1], inner = xv->dims[2];
    const int64_t lines = outer * inner;
    if (lines == 0) {
        return LAM_OK;
    }
    vk_buffer *tmp = NULL;
    lam_status s = vk_alloc(d, (size_t)lines * sizeof(float), 0, &tmp);
    if (s != LAM_OK) {
        return s;
    }
    const float scale = n > 0 ? (float)(1.0 / (double)n) : NAN;
    rview x = {xv->buffer, (int64_t)xv->offset, xv->strides[0], xv->strides[1], xv->strides[2]};
    rview mean = {tmp, 0, inner, 0, 1};
    const lam_tensor_view *o1 = &call->out[1];
    rview var = {o1->buffer, (int64_t)o1->offset, o1->strides[0], 0, o1->strides[2]};
    s = reduce_run(d, RED_SUM, outer, n, inner, &x, 0, NULL, &mean, scale, opname);
    if (s == LAM_OK) {
        s = reduce_run(d, RED_SQDEV, outer, n, inner, &x, 0, &mean, &var, scale, opname);
    }
    if (s == LAM_OK) {
        vk_call copy = *call;
        copy.op = LAM_OP_COPY;
        copy.n_inputs = 1;
        copy.n_outputs = 1;
        copy.in[0] = call->out[0];
        copy.in[0].buffer = tmp;
        copy.in[0].offset = 0;
        copy.in[0].strides[0] = inner;
        copy.in[0].strides[1] = 0;
        copy.in[0].strides[2] = 1;
        vk_view tv = {tmp, 0, 0, lines - 1};
        s = vk_run_elementwise(d, &copy, opname, &tv);
    }
    vk_free_deferred(d, tmp);
    return s;
}

typedef struct sm_push {
    uint32_t count;
    int32_t n, inner, as_log;
    int32_t xs0, xs1, xs2, xoff;
    int32_t os0, os1, os2, ooff;
    int32_t moff, soff;
} sm_push;

lam_status vk_run_softmax(vk_device *d, const vk_call *call, const char *opname, const vk_view *vo,
                          const vk_view *vx) {
    const lam_tensor_view *xv = &call->in[0];
    const lam_tensor_view *ov = (&call->out[0]);
    const int64_t outer = xv->dims[0], n = xv->dims[1], inner = xv->dims[2];
    const int64_t lines = outer * inner;
    if (lines == 0 || n == 0) {
        return LAM_OK;
    }
    vk_buffer *tmp = NULL;
    lam_status s = vk_alloc(d, (size_t)(2 * lines) * sizeof(float), 0, &tmp);
    if (s != LAM_OK) {
        return s;
    }
    rview x = {xv->buffer, (int64_t)xv->offset, xv->strides[0], xv->strides[1], xv->strides[2]};
    rview mview = {tmp, 0, inner, 0, 1};
    rview sview = {tmp, lines, inner, 0, 1};
    s = reduce_run(d, RED_MAX, outer, n, inner, &x, 0, NULL, &mview, 1.0f, opname);
    if (s == LAM_OK) {
        s = reduce_run(d, RED_SUMEXP, outer, n, inner, &x, 0, &mview, &sview, 1.0f, opname);
    }
    vk_bind binds[3];
    if (s == LAM_OK) {
        s = vk_bind_view(d, vo, opname, "output", &binds[0]);
    }
    if (s == LAM_OK) {
        s = vk_bind_view(d, vx, opname, "input", &binds[1]);
    }
    if (s == LAM_OK) {
        s = vk_bind_range(d, tmp, 0, 2 * lines - 1, opname, "temporary", &binds[2]);
    }
    sm_push p;
    memset(&p, 0, sizeof p);
    p.as_log = call->op == LAM_OP_LOG_SOFTMAX;
    int64_t count = lines * n;
    if (s == LAM_OK && count > UINT32_MAX) {
        s = vk_error(LAM_ERR_UNSUPPORTED, "vulkan: Unsupported size, %s of %lld elements", opname,
                     (long long)count);
    }
    p.count = (uint32_t)count;
    const int64_t vals[] = {n,
                            inner,
                            xv->strides[0],
                            xv->strides[1],
                            xv->strides[2],
                            ov->strides[0],
                            ov->strides[1],
                            ov->strides[2]};
    int32_t *dst[] = {&p.n, &p.inner, &p.xs0, &p.xs1, &p.xs2, &p.os0, &p.os1, &p.os2};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0] && s == LAM_OK; i++) {
        s = vk_to_i32(vals[i], dst[i], opname);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[1], (int64_t)xv->offset, &p.xoff);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[0], (int64_t)ov->offset, &p.ooff);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[2], 0, &p.moff);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[2], lines, &p.soff);
    }
    uint32_t gx = 0, gy = 0;
    if (s == LAM_OK) {
        s = vk_grid_2d(d, ((uint64_t)count + 255) / 256, &gx, &gy, opname);
    }
    if (s == LAM_OK) {
        s = vk_dispatch(d, VK_SHADER_SOFTMAX, binds, &p, sizeof p, gx, gy, 1);
    }
    vk_free_deferred(d, tmp);
    return s;
}

/* ---- GEMM ---- */

typedef struct gemm_push {
    int32_t M, N, K;
    int32_t aoff, a_rs, a_cs;
    int32_t boff, b_rs, b_cs;
    int32_t coff, c_rs, c_cs;
    float alpha, beta;
    int32_t tile_m0, tile_n0;
    int32_t act;
    int32_t a_bs, b_bs, c_bs; /* batch strides (GEMM_BATCHED; 0: shared) */
    int32_t batch0;           /* batch of workgroup z = 0 */
} gemm_push;

/* An operand's batch stride: 0 for a batch of 1 (shared by every batch). */
static int64_t batch_stride(const lam_tensor_view *v, int batched) {
    return batched && v->dims[0] > 1 ? v->strides[0] : 0;
}

lam_status vk_run_gemm(vk_device *d, const vk_call *call, const char *opname, const vk_view *vc,
                       const vk_view *va, const vk_view *vb, int32_t act) {
    const lam_tensor_view *av = &call->in[0];
    const lam_tensor_view *bv = &call->in[1];
    const lam_tensor_view *cv = (&call->out[0]);
    const int ta = (call->gemm_flags & LAM_GEMM_TRANS_A) != 0;
    const int tb = (call->gemm_flags & LAM_GEMM_TRANS_B) != 0;
    const int batched = call->op == LAM_OP_GEMM_BATCHED;
    const uint32_t o = batched ? 1 : 0; /* first matrix axis */
    const int64_t batch = batched ? cv->dims[0] : 1;
    const int64_t m = cv->dims[o];
    const int64_t n = cv->dims[o + 1];
    int64_t k = ta ? av->dims[o] : av->dims[o + 1];
    const float alpha = (float)call->alpha;
    const float beta = (float)call->beta;
    if (m == 0 || n == 0 || batch == 0) {
        return LAM_OK;
    }
    if (alpha == 0.0f) {
        k = 0; /* A and B are not read (as BLAS does) */
    }
    vk_bind binds[3];
    lam_status s = vk_bind_view(d, vc, opname, "output", &binds[0]);
    if (s == LAM_OK && k > 0) {
        s = vk_bind_view(d, va, opname, "input 0 (A)", &binds[1]);
        if (s == LAM_OK) {
            s = vk_bind_view(d, vb, opname, "input 1 (B)", &binds[2]);
        }
    } else if (s == LAM_OK) {
        binds[1] = binds[2] = binds[0];
    }
    gemm_push p;
    memset(&p, 0, sizeof p);
    const int64_t *as = av->strides + o, *bs = bv->strides + o, *cs = cv->strides + o;
    const int64_t vals[] = {m,
                            n,
                            ta ? as[1] : as[0],
                            ta ? as[0] : as[1],
                            tb ? bs[1] : bs[0],
                            tb ? bs[0] : bs[1],
                            cs[0],
                            cs[1],
                            k > 0 ? batch_stride(av, batched) : 0,
                            k > 0 ? batch_stride(bv, batched) : 0,
                            batch_stride(cv, batched)};
    int32_t *dst[] = {&p.M,    &p.N,    &p.a_rs, &p.a_cs, &p.b_rs, &p.b_cs,
                      &p.c_rs, &p.c_cs, &p.a_bs, &p.b_bs, &p.c_bs};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0] && s == LAM_OK; i++) {
        s = vk_to_i32(vals[i], dst[i], opname);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[0], (int64_t)cv->offset, &p.coff);
    }
    if (s != LAM_OK) {
        return s;
    }
    /* K per dispatch so that no invocation loops near lavapipe's limit. */
    const int64_t slices = ((int64_t)VK_MAX_LOOP_ITERS - GEMM_ITERS_FIXED) / GEMM_ITERS_SLICE;
    const int64_t kchunk = slices * GEMM_TK;
    const uint32_t *maxc = d->phys->props.limits.maxComputeWorkGroupCount;
    const int64_t tiles_m = (m + GEMM_TILE - 1) / GEMM_TILE;
    const int64_t tiles_n = (n + GEMM_TILE - 1) / GEMM_TILE;
    if (tiles_m > INT32_MAX || tiles_n > INT32_MAX) {
        return vk_error(LAM_ERR_UNSUPPORTED, "vulkan: Unsupported size, %s too large", opname);
    }
    p.alpha = alpha;
    int64_t k0 = 0;
    do {
        const int64_t kk = k - k0 < kchunk ? k - k0 : kchunk;
        if ((kk + GEMM_TK - 1) / GEMM_TK * GEMM_ITERS_SLICE + GEMM_ITERS_FIXED >
            (int64_t)VK_MAX_LOOP_ITERS) {
            return vk_error(LAM_ERR_INTERNAL, "vulkan: Internal error, %s K chunk %lld too long",
                            opname, (long long)kk);
        }
        p.K = (int32_t)kk;
        p.beta = k0 == 0 ? beta : 1.0f;
        p.act = k0 + kk >= k ? act : 0; /* the activation sees the complete sum only */
        if (kk > 0) {
            s = vk_rel(&binds[1], (int64_t)av->offset + k0 * (ta ? as[0] : as[1]), &p.aoff);
            if (s == LAM_OK) {
                s = vk_rel(&binds[2], (int64_t)bv->offset + k0 * (tb ? bs[1] : bs[0]), &p.boff);
            }
        } else {
            p.aoff = p.boff = 0;
        }
        for (int64_t b0 = 0; b0 < batch && s == LAM_OK; b0 += maxc[2]) {
            p.batch0 = (int32_t)b0;
            uint32_t gz = (uint32_t)(batch - b0 < maxc[2] ? batch - b0 : maxc[2]);
            for (int64_t tm = 0; tm < tiles_m && s == LAM_OK; tm += maxc[1]) {
                for (int64_t tn = 0; tn < tiles_n && s == LAM_OK; tn += maxc[0]) {
                    p.tile_m0 = (int32_t)tm;
                    p.tile_n0 = (int32_t)tn;
                    uint32_t gy = (uint32_t)(tiles_m - tm < maxc[1] ? tiles_m - tm : maxc[1]);
                    uint32_t gx = (uint32_t)(tiles_n - tn < maxc[0] ? tiles_n - tn : maxc[0]);
                    s = vk_dispatch(d, VK_SHADER_GEMM, binds, &p, sizeof p, gx, gy, gz);
                }
            }
        }
        k0 += kk;
    } while (s == LAM_OK && k0 < k);
    return s;
}
