/*
 * vk_elementwise.c - recording the elementwise ops (fill, unary, binary, copy).
 *
 * Size-1 dims are dropped and dims contiguous in every operand merged; the plan's innermost
 * (up to) 4 dims go to the shader, outer ones are looped here. When an operand's window would
 * exceed maxStorageBufferRange (lavapipe: 128 MiB), fewer dims go to the shader and the first
 * of them is cut into chunks, each bound on its own. Level 6: above vk_pipeline.
 */
#include "vk_elementwise.h"

#include <string.h>

typedef struct ew_push {
    uint32_t op;
    uint32_t count;
    float t; /* second scalar (AXPBY) */
    float s;
    int32_t dims[4];
    int32_t st[4][4]; /* out, inputs 0..2 */
    int32_t off[4];
} ew_push;

#define EW_OPERANDS 4

typedef struct ew_plan {
    int nd;
    int64_t dims[LAM_MAX_DIMS];
    int64_t st[EW_OPERANDS][LAM_MAX_DIMS];
} ew_plan;

/* Drops size-1 dims and merges dims contiguous in every operand (as the CPU backend does). */
static int plan_make(ew_plan *p, const lam_tensor_view *out, const int64_t *const st[]) {
    int nd = 0;
    for (uint32_t dd = 0; dd < out->ndim; dd++) {
        if (out->dims[dd] == 0) {
            return 0;
        }
        if (out->dims[dd] == 1) {
            continue;
        }
        if (nd > 0) {
            int merge = 1;
            for (int k = 0; k < EW_OPERANDS; k++) {
                merge = merge && p->st[k][nd - 1] == st[k][dd] * out->dims[dd];
            }
            if (merge) {
                p->dims[nd - 1] *= out->dims[dd];
                for (int k = 0; k < EW_OPERANDS; k++) {
                    p->st[k][nd - 1] = st[k][dd];
                }
                continue;
            }
        }
        p->dims[nd] = out->dims[dd];
        for (int k = 0; k < EW_OPERANDS; k++) {
            p->st[k][nd] = st[k][dd];
        }
        nd++;
    }
    if (nd == 0) {
        p->dims[0] = 1;
        for (int k = 0; k < EW_OPERANDS; k++) {
            p->st[k][0] = 1;
        }
        nd = 1;
    }
    p->nd = nd;
    return 1;
}

/* Elements an operand spans over plan dims [from, nd): sum of |(dim - 1) * stride|, plus one. */
static int64_t span_from(const ew_plan *p, int k, int from, int64_t first_len) {
    int64_t span = 1;
    for (int i = from; i < p->nd; i++) {
        int64_t len = i == from && first_len >= 0 ? first_len : p->dims[i];
        int64_t st = p->st[k][i] < 0 ? -p->st[k][i] : p->st[k][i];
        span += (len - 1) * st;
    }
    return span;
}

/* One elementwise call being recorded: its plan and where each operand lives. */
typedef struct ew_job {
    vk_device *d;
    const vk_call *call;
    const char *opname;
    ew_plan p;
    int first;     /* first plan dim given to the shader; the dims before it are looped here */
    int64_t chunk; /* elements of dim `first` per dispatch */
    vk_buffer *bufs[EW_OPERANDS];
} ew_job;

/* Chooses how many inner dims go to the shader and how dim `first` is cut so that every
 * operand's window fits in maxStorageBufferRange. */
static void ew_fit(ew_job *j) {
    const ew_plan *p = &j->p;
    const VkPhysicalDeviceLimits *lim = &j->d->phys->props.limits;
    /* elements a window may hold, less what aligning its start down can add */
    const int64_t max_elems =
        ((int64_t)lim->maxStorageBufferRange - (int64_t)lim->minStorageBufferOffsetAlignment) / 4;
    int inner_nd = p->nd < 4 ? p->nd : 4;
    for (;;) {
        int fits = 1;
        for (int k = 0; k < EW_OPERANDS; k++) {
            fits = fits && span_from(p, k, p->nd - inner_nd + 1, -1) <= max_elems;
        }
        if (fits || inner_nd == 1) {
            break;
        }
        inner_nd--;
    }
    const int first = p->nd - inner_nd;
    int64_t chunk = p->dims[first];
    for (int k = 0; k < EW_OPERANDS; k++) {
        int64_t rest = span_from(p, k, first + 1, -1);
        int64_t sf = p->st[k][first] < 0 ? -p->st[k][first] : p->st[k][first];
        if (sf > 0 && rest <= max_elems) {
            int64_t c = (max_elems - rest) / sf + 1;
            chunk = c < chunk ? c : chunk;
        }
    }
    j->first = first;
    j->chunk = chunk < 1 ? 1 : chunk;
}

/* Binds operand k's window for elements [r0, r0 + len) of dim `first`, from element o. */
static lam_status ew_bind(const ew_job *j, int k, int64_t o, int64_t len, vk_bind *bind,
                          int32_t *rel) {
    static const char *const names[EW_OPERANDS] = {"output", "input 0", "input 1", "input 2"};
    const ew_plan *p = &j->p;
    int64_t lo = o, hi = o;
    for (int i = j->first; i < p->nd; i++) {
        int64_t sp = ((i == j->first ? len : p->dims[i]) - 1) * p->st[k][i];
        if (sp > 0) {
            hi += sp;
        } else {
            lo += sp;
        }
    }
    lam_status s = vk_bind_range(j->d, j->bufs[k], lo, hi, j->opname, names[k], bind);
    if (s == LAM_OK) {
        s = vk_rel(bind, o, rel);
    }
    return s;
}

/* Records the dispatch of elements [r0, r0 + len) of dim `first` at operand offsets off. */
static lam_status ew_dispatch_chunk(const ew_job *j, ew_push *push, const int64_t off[], int64_t r0,
                                    int64_t len) {
    const ew_plan *p = &j->p;
    const int first = j->first;
    lam_status s = LAM_OK;
    int64_t count = 1;
    for (int i = 0; i < 4 && s == LAM_OK; i++) {
        int src = p->nd - 4 + i;
        int64_t dim = src < first ? 1 : src == first ? len : p->dims[src];
        count *= dim;
        s = vk_to_i32(dim, &push->dims[i], j->opname);
        for (int k = 0; k < EW_OPERANDS && s == LAM_OK; k++) {
            s = vk_to_i32(src >= first ? p->st[k][src] : 0, &push->st[k][i], j->opname);
        }
    }
    vk_bind binds[EW_OPERANDS];
    for (int k = 0; k < EW_OPERANDS && s == LAM_OK; k++) {
        if (k > 0 && (uint32_t)(k - 1) >= j->call->n_inputs) {
            binds[k] = binds[0]; /* no such operand: any valid window */
            push->off[k] = 0;
            continue;
        }
        s = ew_bind(j, k, off[k] + r0 * p->st[k][first], len, &binds[k], &push->off[k]);
    }
    uint32_t gx = 0, gy = 0;
    if (s == LAM_OK && count > UINT32_MAX) {
        s = vk_error(LAM_ERR_UNSUPPORTED, "vulkan: Unsupported size, %s of %lld elements",
                     j->opname, (long long)count);
    }
    if (s == LAM_OK) {
        push->count = (uint32_t)count;
        s = vk_grid_2d(j->d, ((uint64_t)count + 255) / 256, &gx, &gy, j->opname);
    }
    if (s == LAM_OK) {
        s = vk_dispatch_n(j->d, VK_SHADER_EW, binds, EW_OPERANDS, 1u, push, sizeof *push, gx, gy,
                          1);
    }
    return s;
}

lam_status vk_run_elementwise(vk_device *d, const vk_call *call, const char *opname,
                              const vk_view *vin) {
    static const int64_t zero_strides[LAM_MAX_DIMS];
    const lam_tensor_view *out = (&call->out[0]);
    ew_job j;
    memset(&j, 0, sizeof j);
    j.d = d;
    j.call = call;
    j.opname = opname;
    const int64_t *st[EW_OPERANDS] = {out->strides, zero_strides, zero_strides, zero_strides};
    int64_t off[EW_OPERANDS];
    for (int k = 0; k < EW_OPERANDS; k++) {
        j.bufs[k] = out->buffer;
        off[k] = (int64_t)out->offset;
    }
    for (uint32_t i = 0; i < call->n_inputs && i < EW_OPERANDS - 1; i++) {
        st[i + 1] = call->in[i].strides;
        j.bufs[i + 1] = vin[i].buf;
        off[i + 1] = (int64_t)call->in[i].offset;
    }
    if (!plan_make(&j.p, out, st)) {
        return LAM_OK;
    }
    ew_fit(&j);
    const ew_plan *p = &j.p;
    const int first = j.first;
    ew_push push;
    memset(&push, 0, sizeof push);
    push.op = (uint32_t)call->op;
    if (call->op == LAM_OP_CAST) {
        /* the shader's cast modes (ew.comp) */
        lam_dtype from = call->in[0].dtype, to = out->dtype;
        push.op = from == to ? 100u : from == LAM_DTYPE_I32 ? 101u : 102u;
    }
    push.s = (float)call->a;
    push.t = (float)call->b;
    int64_t idx[LAM_MAX_DIMS] = {0};
    for (;;) {
        for (int64_t r0 = 0; r0 < p->dims[first]; r0 += j.chunk) {
            const int64_t len = p->dims[first] - r0 < j.chunk ? p->dims[first] - r0 : j.chunk;
            lam_status s = ew_dispatch_chunk(&j, &push, off, r0, len);
            if (s != LAM_OK) {
                return s;
            }
        }
        /* the next index of the dims looped here, last fastest */
        int dd = first - 1;
        for (; dd >= 0; dd--) {
            for (int k = 0; k < EW_OPERANDS; k++) {
                off[k] += p->st[k][dd];
            }
            if (++idx[dd] < p->dims[dd]) {
                break;
            }
            for (int k = 0; k < EW_OPERANDS; k++) {
                off[k] -= p->st[k][dd] * p->dims[dd];
            }
            idx[dd] = 0;
        }
        if (dd < 0) {
            return LAM_OK;
        }
    }
}
