/*
 * cpu_layernorm.c - LAYER_NORM and LAYER_NORM_BACKWARD (ABI 2.2): the checks and the driver;
 * the row loops are in cpu_ln_impl.h, compiled per instruction set.
 *
 * Rows are the tasks the pool's threads share (a row is never split). The backward's dgamma
 * and dbeta are sums over rows: each block of LN_BLOCK_ROWS rows adds its terms into its own
 * partial row, and the partials are added in block order at the end, so the result does not
 * depend on the thread count either.
 */
#include "cpu_internal.h"

#include <stdlib.h>
#include <string.h>

/* Rows whose dgamma and dbeta terms one partial sum takes (float), before the blocks' partials
 * are added in double. */
#define LN_BLOCK_ROWS 32

static lam_status expect_dims(const cpu_call *c, const char *what, const cpu_view *v, uint32_t ndim,
                              int64_t d0, int64_t d1) {
    if (v->dtype != LAM_DTYPE_F32) {
        return cpu_error(LAM_ERR_DTYPE,
                         "cpu: Unsupported dtype, %s %s has dtype %d; the cpu backend takes "
                         "float32 there",
                         c->name, what, (int)v->dtype);
    }
    if (v->ndim != ndim || v->dims[0] != d0 || (ndim == 2 && v->dims[1] != d1)) {
        char got[160];
        char want[160];
        const int64_t e[2] = {d0, d1};
        return cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s %s has dims %s, expected %s",
                         c->name, what, lam_dims_format(got, sizeof got, v->ndim, v->dims),
                         lam_dims_format(want, sizeof want, ndim, e));
    }
    return LAM_OK;
}

typedef struct ln_job {
    const cpu_ln_args *a;
    const cpu_kern *kern;
    float *part; /* backward: 2n floats per block (pg, pb), or NULL */
} ln_job;

static void fwd_tasks(void *arg, int64_t r0, int64_t r1) {
    const ln_job *j = arg;
    j->kern->ln_forward(j->a, r0, r1);
}

static void bwd_tasks(void *arg, int64_t r0, int64_t r1) {
    const ln_job *j = arg;
    j->kern->ln_backward(j->a, r0, r1, NULL, NULL);
}

/* Blocks [b0, b1) of LN_BLOCK_ROWS rows, each with its partial dgamma and dbeta. */
static void bwd_blocks(void *arg, int64_t b0, int64_t b1) {
    const ln_job *j = arg;
    const int64_t m = j->a->m, n = j->a->n;
    for (int64_t b = b0; b < b1; b++) {
        float *pg = j->part + b * 2 * n;
        memset(pg, 0, (size_t)(2 * n) * sizeof *pg);
        const int64_t r1 = (b + 1) * LN_BLOCK_ROWS < m ? (b + 1) * LN_BLOCK_ROWS : m;
        j->kern->ln_backward(j->a, b * LN_BLOCK_ROWS, r1, pg, pg + n);
    }
}

static lam_status forward(const cpu_call *c) {
    const cpu_view *x = &c->in[0];
    lam_status st = x->ndim == 2 ? LAM_OK : expect_dims(c, "input 0 (x)", x, 2, 0, 0);
    const int64_t m = x->dims[0], n = x->dims[1];
    if (st == LAM_OK) {
        st = expect_dims(c, "input 0 (x)", x, 2, m, n);
    }
    if (st == LAM_OK) {
        st = expect_dims(c, "input 1 (gamma)", &c->in[1], 1, n, 0);
    }
    if (st == LAM_OK) {
        st = expect_dims(c, "input 2 (beta)", &c->in[2], 1, n, 0);
    }
    if (st == LAM_OK) {
        st = expect_dims(c, "output 0 (y)", &c->out[0], 2, m, n);
    }
    if (st == LAM_OK && c->n_out == 2) {
        st = cpu_error(LAM_ERR_INVALID_ARGUMENT,
                       "cpu: Invalid argument, %s writes 1 output (y) or 3 (y, mean, rstd), got 2",
                       c->name);
    }
    for (uint32_t i = 1; i < c->n_out && st == LAM_OK; i++) {
        st = expect_dims(c, i == 1 ? "output 1 (mean)" : "output 2 (rstd)", &c->out[i], 1, m, 0);
    }
    const lam_scalar_params *p = lam_op_params(c, lam_scalar_params);
    if (st == LAM_OK && p == NULL) {
        st = cpu_error(LAM_ERR_INVALID_ARGUMENT,
                       "cpu: Invalid argument, %s needs its parameters (lam_scalar_params, "
                       "struct_size set)",
                       c->name);
    }
    if (st != LAM_OK || c->dry || m == 0) {
        return st;
    }
    const int stats = c->n_out == 3;
    cpu_ln_args a = {
        .m = m,
        .n = n,
        .eps = (float)p->a,
        .x = cpu_f32(x),
        .gamma = cpu_f32(&c->in[1]),
        .beta = cpu_f32(&c->in[2]),
        .y = cpu_f32(&c->out[0]),
        .mean = stats ? cpu_f32(&c->out[1]) : NULL,
        .rstd = stats ? cpu_f32(&c->out[2]) : NULL,
        .xs0 = x->st[0],
        .xs1 = x->st[1],
        .ys0 = c->out[0].st[0],
        .ys1 = c->out[0].st[1],
        .gs = c->in[1].st[0],
        .bs = c->in[2].st[0],
        .ms = stats ? c->out[1].st[0] : 0,
        .rs = stats ? c->out[2].st[0] : 0,
    };
    ln_job j = {&a, cpu_kern_pick(), NULL};
    cpu_parallel_for(m, m * n * 4, fwd_tasks, &j);
    return LAM_OK;
}

static lam_status backward(const cpu_call *c) {
    const cpu_view *x = &c->in[1];
    lam_status st = x->ndim == 2 ? LAM_OK : expect_dims(c, "input 1 (x)", x, 2, 0, 0);
    const int64_t m = x->dims[0], n = x->dims[1];
    const char *const what[5] = {"input 0 (dy)", "input 1 (x)", "input 2 (mean)", "input 3 (rstd)",
                                 "input 4 (gamma)"};
    const uint32_t nd[5] = {2, 2, 1, 1, 1};
    const int64_t d0[5] = {m, m, m, m, n};
    for (int i = 0; i < 5 && st == LAM_OK; i++) {
        st = expect_dims(c, what[i], &c->in[i], nd[i], d0[i], n);
    }
    if (st == LAM_OK) {
        st = expect_dims(c, "output 0 (dx)", &c->out[0], 2, m, n);
    }
    if (st == LAM_OK && c->n_out == 2) {
        st = cpu_error(LAM_ERR_INVALID_ARGUMENT,
                       "cpu: Invalid argument, %s writes 1 output (dx) or 3 (dx, dgamma, dbeta), "
                       "got 2",
                       c->name);
    }
    for (uint32_t i = 1; i < c->n_out && st == LAM_OK; i++) {
        st = expect_dims(c, i == 1 ? "output 1 (dgamma)" : "output 2 (dbeta)", &c->out[i], 1, n, 0);
    }
    if (st != LAM_OK || c->dry) {
        return st;
    }
    cpu_ln_args a = {
        .m = m,
        .n = n,
        .dy = cpu_f32(&c->in[0]),
        .x = cpu_f32(x),
        .mean_in = cpu_f32(&c->in[2]),
        .rstd_in = cpu_f32(&c->in[3]),
        .gamma = cpu_f32(&c->in[4]),
        .y = cpu_f32(&c->out[0]),
        .dys0 = c->in[0].st[0],
        .dys1 = c->in[0].st[1],
        .xs0 = x->st[0],
        .xs1 = x->st[1],
        .ms = c->in[2].st[0],
        .rs = c->in[3].st[0],
        .gs = c->in[4].st[0],
        .ys0 = c->out[0].st[0],
        .ys1 = c->out[0].st[1],
    };
    ln_job j = {&a, cpu_kern_pick(), NULL};
    if (c->n_out == 1) {
        if (m > 0) {
            cpu_parallel_for(m, m * n * 4, bwd_tasks, &j);
        }
        return LAM_OK;
    }
    /* dgamma and dbeta: the blocks' partials, then their sum in block order (zeros for m 0). */
    const int64_t blocks = (m + LN_BLOCK_ROWS - 1) / LN_BLOCK_ROWS;
    const size_t n_part = (size_t)(blocks * 2 * n), n_acc = (size_t)(2 * n);
    void *mem = malloc(n_acc * sizeof(double) + n_part * sizeof(float) + 1);
    if (mem == NULL) {
        return cpu_error(LAM_ERR_OUT_OF_MEMORY,
                         "cpu: Out of memory, %s needs %zu bytes for its partial sums", c->name,
                         n_acc * sizeof(double) + n_part * sizeof(float));
    }
    double *acc = mem;
    j.part = (float *)(void *)(acc + n_acc);
    if (blocks > 0) {
        cpu_parallel_for(blocks, m * n * 5, bwd_blocks, &j);
    }
    memset(acc, 0, n_acc * sizeof *acc);
    for (int64_t b = 0; b < blocks; b++) {
        const float *pb = j.part + b * 2 * n;
        for (int64_t k = 0; k < 2 * n; k++) {
            acc[k] += (double)pb[k];
        }
    }
    float *dg = cpu_f32(&c->out[1]), *db = cpu_f32(&c->out[2]);
    const int64_t gst = c->out[1].st[0], bst = c->out[2].st[0];
    for (int64_t k = 0; k < n; k++) {
        dg[k * gst] = (float)acc[k];
        db[k * bst] = (float)acc[n + k];
    }
    free(mem);
    return LAM_OK;
}

lam_status cpu_layer_norm(const cpu_call *c) {
    return c->op == LAM_OP_LAYER_NORM ? forward(c) : backward(c);
}
