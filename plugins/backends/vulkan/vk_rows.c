/*
 * vk_rows.c - GATHER_ROWS and SCATTER_ADD_ROWS with I32 indices.
 *
 * Bounds: an index outside [0, V) lowers a per-op word of the device's error buffer to its
 * position (atomicMin: the first bad position, whatever the invocation order), and a one-
 * invocation RECORD dispatch after the op turns it into the device's error (position, value,
 * op, bound) unless an earlier op's error is already there. Nothing waits: buffer_read and
 * synchronize read the error buffer afterwards (vk_buffers_check_errors).
 *
 * Scatter is deterministic: one invocation per (row of out, 16 columns) adds the matching x
 * rows in increasing m, over ranges of m short enough for lavapipe's loop limit. Level 6.
 */
#include "vk_rows.h"

#include "vk_buffers.h"
#include "vk_memory.h"

#include <string.h>

typedef struct rows_push {
    uint32_t mode, count;
    int32_t v, dcols, m, m0, m1;
    int32_t os0, os1, xs0, xs1;
    int32_t oo, ox, oi;
    int32_t op;
} rows_push;

enum { ROWS_GATHER = 0, ROWS_SCATTER = 1, ROWS_CHECK = 2, ROWS_RECORD = 3, ROWS_CAST = 4 };

/* m per scatter dispatch: (1 + 16) loop iterations per m stay below ~51,000. */
#define ROWS_SCATTER_CHUNK 3000

/* The device's error buffer, made (and initialized in stream order) on first use. */
static lam_status error_buffer(vk_device *d, const char *opname, vk_bind *out) {
    if (d->err == NULL) {
        lam_status st = vk_alloc(d, VK_ERR_WORDS * sizeof(uint32_t), 0, &d->err);
        if (st != LAM_OK) {
            return st;
        }
        st = vk_buffer_write(d, d->err, 0, vk_err_init, sizeof vk_err_init);
        if (st != LAM_OK) {
            vk_release(d, d->err);
            d->err = NULL;
            return st;
        }
    }
    return vk_bind_range(d, d->err, 0, VK_ERR_WORDS - 1, opname, "error word", out);
}

static lam_status dispatch(vk_device *d, const vk_bind *binds, rows_push *p, uint64_t count,
                           const char *opname) {
    uint32_t gx = 0, gy = 0;
    p->count = (uint32_t)count;
    lam_status s = vk_grid_2d(d, (count + 255) / 256, &gx, &gy, opname);
    if (s == LAM_OK) {
        s = vk_dispatch_n(d, VK_SHADER_ROWS, binds, 4, 1u | 8u, p, sizeof *p, gx, gy, 1);
    }
    return s;
}

lam_status vk_run_rows(vk_device *d, const vk_call *call, const char *opname, const vk_view *vo,
                       const vk_view *vin) {
    const int gather = call->op == LAM_OP_GATHER_ROWS;
    const lam_tensor_view *table = gather ? &call->in[0] : &call->out[0];
    const lam_tensor_view *rows = gather ? &call->out[0] : &call->in[0];
    const lam_tensor_view *out = &call->out[0], *x = &call->in[0], *iv = &call->in[1];
    const int64_t v = table->dims[0], dcols = table->dims[1], m = iv->dims[0];
    rows_push p;
    memset(&p, 0, sizeof p);
    const int64_t vals[] = {
        v, dcols, m, out->strides[0], out->strides[1], x->strides[0], x->strides[1]};
    int32_t *dst[] = {&p.v, &p.dcols, &p.m, &p.os0, &p.os1, &p.xs0, &p.xs1};
    lam_status s = LAM_OK;
    for (size_t i = 0; i < sizeof vals / sizeof vals[0] && s == LAM_OK; i++) {
        s = vk_to_i32(vals[i], dst[i], opname);
    }
    (void)rows;
    vk_bind binds[4];
    if (s == LAM_OK) {
        s = vk_bind_view(d, &vo[0], opname, "output", &binds[0]);
    }
    if (s == LAM_OK && !vin[0].empty) {
        s = vk_bind_view(d, &vin[0], opname, "input 0", &binds[1]);
    } else if (s == LAM_OK) {
        binds[1] = binds[0];
    }
    if (s == LAM_OK && m > 0) {
        s = vk_bind_view(d, &vin[1], opname, "indices", &binds[2]);
    } else if (s == LAM_OK) {
        return LAM_OK; /* no index, nothing to do */
    }
    if (s == LAM_OK) {
        s = error_buffer(d, opname, &binds[3]);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[0], (int64_t)out->offset, &p.oo);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[1], vin[0].empty ? binds[1].base : (int64_t)x->offset, &p.ox);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[2], (int64_t)iv->offset, &p.oi);
    }
    if (s != LAM_OK) {
        return s;
    }
    p.op = (int32_t)call->op;
    d->err_pending = 1;
    if (gather) {
        p.mode = ROWS_GATHER;
        s = dispatch(d, binds, &p, (uint64_t)(m * dcols), opname);
    } else {
        p.mode = ROWS_CHECK;
        s = dispatch(d, binds, &p, (uint64_t)m, opname);
    }
    if (s == LAM_OK) {
        /* the op's first bad index becomes the device's error */
        const vk_bind rec[4] = {binds[3], binds[3], binds[2], binds[3]};
        rows_push r = p;
        r.mode = ROWS_RECORD;
        s = dispatch(d, rec, &r, 1, opname);
    }
    const int64_t tiles = (dcols + 15) / 16;
    for (int64_t m0 = 0; !gather && m0 < m && s == LAM_OK; m0 += ROWS_SCATTER_CHUNK) {
        p.mode = ROWS_SCATTER;
        p.m0 = (int32_t)m0;
        p.m1 = (int32_t)(m - m0 < ROWS_SCATTER_CHUNK ? m : m0 + ROWS_SCATTER_CHUNK);
        s = dispatch(d, binds, &p, (uint64_t)(v * tiles), opname);
    }
    return s;
}

lam_status vk_cast_check(vk_device *d, const vk_call *call, const char *opname,
                         const vk_view *vin) {
    const int64_t n = vin[0].hi - vin[0].lo + 1; /* contiguous (vk_check): span is size */
    rows_push p;
    memset(&p, 0, sizeof p);
    p.mode = ROWS_CAST;
    p.op = (int32_t)call->op;
    vk_bind binds[4];
    lam_status s = vk_bind_view(d, &vin[0], opname, "input", &binds[1]);
    if (s == LAM_OK) {
        s = error_buffer(d, opname, &binds[3]);
    }
    if (s == LAM_OK) {
        s = vk_rel(&binds[1], (int64_t)call->in[0].offset, &p.ox);
    }
    if (s != LAM_OK) {
        return s;
    }
    binds[0] = binds[3];
    binds[2] = binds[1];
    d->err_pending = 1;
    s = dispatch(d, binds, &p, (uint64_t)n, opname);
    if (s == LAM_OK) {
        /* RECORD reads the value's bits through the index binding: x */
        const vk_bind rec[4] = {binds[3], binds[3], binds[1], binds[3]};
        rows_push r = p;
        r.mode = ROWS_RECORD;
        r.oi = p.ox;
        s = dispatch(d, rec, &r, 1, opname);
    }
    return s;
}
