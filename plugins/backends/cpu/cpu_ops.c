/*
 * cpu_ops.c - elementwise ops (fill, copy, arithmetic, unary math, maximum/minimum, step,
 * comparisons, axpby, clamp): the driver. The row loops are in cpu_kern_impl.h, compiled per
 * instruction set.
 *
 * One driver walks any strided N-d layout: it first drops size-1 dims and merges dims that are
 * contiguous in every operand, so a dense tensor becomes one long row and a bias broadcast
 * becomes rows of the bias. Each kernel then handles one innermost row and has a dense path
 * the compiler vectorizes, a path for one operand broadcast along the row, and a strided one.
 * Large ops are split across the pool's threads (cpu_pool.c): by rows, or, when there are fewer
 * rows than pieces, by pieces of rows. No -ffast-math: NaN and infinity must come out as IEEE
 * 754 says.
 */
#include "cpu_internal.h"

#include <pthread.h>

static pthread_once_t g_kern_once = PTHREAD_ONCE_INIT;
static const cpu_kern *g_kern = &cpu_kern_base;

static void kern_init(void) {
    switch (cpu_gemm_pick_isa()) {
    case CPU_ISA_AVX512:
        g_kern = &cpu_kern_avx512;
        break;
    case CPU_ISA_AVX2:
        g_kern = &cpu_kern_avx2;
        break;
    default:
        g_kern = &cpu_kern_base;
        break;
    }
}

const cpu_kern *cpu_kern_pick(void) {
    pthread_once(&g_kern_once, kern_init);
    return g_kern;
}

/* Operand 0 is the output, 1 is x, 2 is y. */
#define EW_OPERANDS 3

/* A layout reduced to the fewest dims: size-1 dims dropped, jointly contiguous dims merged. */
typedef struct ew_plan {
    int nd;
    int64_t dims[LAM_MAX_DIMS];
    int64_t st[EW_OPERANDS][LAM_MAX_DIMS];
} ew_plan;

/* Returns 0 when the output has no elements. */
static int plan_make(ew_plan *p, uint32_t ndim, const int64_t *dims, const int64_t *const st[]) {
    int nd = 0;
    for (uint32_t d = 0; d < ndim; d++) {
        if (dims[d] == 0) {
            return 0;
        }
        if (dims[d] == 1) {
            continue;
        }
        if (nd > 0) {
            int merge = 1;
            for (int k = 0; k < EW_OPERANDS; k++) {
                merge = merge && p->st[k][nd - 1] == st[k][d] * dims[d];
            }
            if (merge) {
                p->dims[nd - 1] *= dims[d];
                for (int k = 0; k < EW_OPERANDS; k++) {
                    p->st[k][nd - 1] = st[k][d];
                }
                continue;
            }
        }
        p->dims[nd] = dims[d];
        for (int k = 0; k < EW_OPERANDS; k++) {
            p->st[k][nd] = st[k][d];
        }
        nd++;
    }
    if (nd == 0) { /* a single element */
        p->dims[0] = 1;
        for (int k = 0; k < EW_OPERANDS; k++) {
            p->st[k][0] = 1;
        }
        nd = 1;
    }
    p->nd = nd;
    return 1;
}

/* One row of a copy of any dtype (element size es), strides in elements. */
static void copy_row(ptrdiff_t n, char *o, ptrdiff_t os, const char *x, ptrdiff_t xs, size_t es) {
    switch (es) {
    case 1:
        for (ptrdiff_t i = 0; i < n; i++) {
            o[i * os] = x[i * xs];
        }
        break;
    case 2:
        for (ptrdiff_t i = 0; i < n; i++) {
            ((uint16_t *)(void *)o)[i * os] = ((const uint16_t *)(const void *)x)[i * xs];
        }
        break;
    case 4:
        for (ptrdiff_t i = 0; i < n; i++) {
            ((uint32_t *)(void *)o)[i * os] = ((const uint32_t *)(const void *)x)[i * xs];
        }
        break;
    default:
        for (ptrdiff_t i = 0; i < n; i++) {
            ((uint64_t *)(void *)o)[i * os] = ((const uint64_t *)(const void *)x)[i * xs];
        }
        break;
    }
}

/* A planned op split into tasks: task t is piece t % pieces of row t / pieces. */
typedef struct ew_job {
    const ew_plan *p;
    cpu_ew_row kernel; /* NULL: copy_row of element size es */
    char *base[EW_OPERANDS];
    size_t es;
    float s, t;
    int64_t pieces;
    int64_t plen; /* elements per piece (the last may be shorter) */
} ew_job;

/* Element offsets of row r's first element. */
static void row_offsets(const ew_plan *p, int64_t r, int64_t off[EW_OPERANDS],
                        int64_t idx[LAM_MAX_DIMS]) {
    for (int k = 0; k < EW_OPERANDS; k++) {
        off[k] = 0;
    }
    for (int d = p->nd - 2; d >= 0; d--) {
        idx[d] = r % p->dims[d];
        r /= p->dims[d];
        for (int k = 0; k < EW_OPERANDS; k++) {
            off[k] += idx[d] * p->st[k][d];
        }
    }
}

static void run_piece(const ew_job *j, const int64_t off[EW_OPERANDS], int64_t c0, int64_t n) {
    const ew_plan *p = j->p;
    const int inner = p->nd - 1;
    int64_t o[EW_OPERANDS];
    for (int k = 0; k < EW_OPERANDS; k++) {
        o[k] = off[k] + c0 * p->st[k][inner];
    }
    if (j->kernel != NULL) {
        j->kernel(n, (float *)(void *)j->base[0] + o[0], p->st[0][inner],
                  (const float *)(const void *)j->base[1] + o[1], p->st[1][inner],
                  (const float *)(const void *)j->base[2] + o[2], p->st[2][inner], j->s, j->t);
    } else {
        copy_row(n, j->base[0] + (size_t)o[0] * j->es, p->st[0][inner],
                 j->base[1] + (size_t)o[1] * j->es, p->st[1][inner], j->es);
    }
}

/* Tasks [t0, t1): whole rows are walked with carries (offsets, not pointers: they may step
 * outside a row while carrying); pieces of rows each find their row's offsets. */
static void ew_tasks(void *arg, int64_t t0, int64_t t1) {
    const ew_job *j = arg;
    const ew_plan *p = j->p;
    const int inner = p->nd - 1;
    const int64_t n = p->dims[inner];
    int64_t off[EW_OPERANDS];
    int64_t idx[LAM_MAX_DIMS] = {0};
    if (j->pieces > 1) {
        for (int64_t t = t0; t < t1; t++) {
            row_offsets(p, t / j->pieces, off, idx);
            const int64_t c0 = (t % j->pieces) * j->plen;
            const int64_t len = n - c0 < j->plen ? n - c0 : j->plen;
            run_piece(j, off, c0, len);
        }
        return;
    }
    row_offsets(p, t0, off, idx);
    for (int64_t r = t0; r < t1; r++) {
        run_piece(j, off, 0, n);
        for (int d = inner - 1; d >= 0; d--) {
            for (int k = 0; k < EW_OPERANDS; k++) {
                off[k] += p->st[k][d];
            }
            if (++idx[d] < p->dims[d]) {
                break;
            }
            for (int k = 0; k < EW_OPERANDS; k++) {
                off[k] -= p->st[k][d] * p->dims[d];
            }
            idx[d] = 0;
        }
    }
}

/* Runs a plan, across the pool's threads when large: by rows when there are enough of them,
 * else by pieces of CPU_PAR_MIN_WORK / 4 elements or more (multiples of 64). */
static void run_plan(const ew_plan *p, cpu_ew_row kernel, char *const base[EW_OPERANDS], size_t es,
                     float s, float t, int64_t work_per_elem) {
    const int64_t n = p->dims[p->nd - 1];
    if (p->nd == 1 && kernel != NULL && n * work_per_elem < CPU_PAR_MIN_WORK) {
        /* One row below the pool's threshold (most ops of a small model): the kernel at once,
         * exactly the call the task below would make. */
        kernel(n, (float *)(void *)base[0], p->st[0][0], (const float *)(const void *)base[1],
               p->st[1][0], (const float *)(const void *)base[2], p->st[2][0], s, t);
        return;
    }
    if (p->nd == 2 && kernel != NULL && p->dims[0] * n * work_per_elem < CPU_PAR_MIN_WORK) {
        /* Rows of a broadcast below the threshold (a bias added to a small batch): the kernel
         * on each row at once, the calls ew_tasks would make, in the same order. */
        float *o = (float *)(void *)base[0];
        const float *a = (const float *)(const void *)base[1];
        const float *b = (const float *)(const void *)base[2];
        for (int64_t r = 0; r < p->dims[0]; r++) {
            kernel(n, o + r * p->st[0][0], p->st[0][1], a + r * p->st[1][0], p->st[1][1],
                   b + r * p->st[2][0], p->st[2][1], s, t);
        }
        return;
    }
    ew_job j = {p, kernel, {base[0], base[1], base[2]}, es, s, t, 1, 0};
    int64_t rows = 1;
    for (int d = 0; d < p->nd - 1; d++) {
        rows *= p->dims[d];
    }
    const int64_t work = rows * n * work_per_elem;
    const int threads = cpu_threads();
    if (threads > 1 && work >= CPU_PAR_MIN_WORK && rows < 2 * (int64_t)threads) {
        int64_t plen = n / (2 * (int64_t)threads);
        const int64_t min_len = CPU_PAR_MIN_WORK / 4 / work_per_elem;
        plen = plen < min_len ? min_len : plen;
        plen = (plen + 63) & ~(int64_t)63;
        j.plen = plen;
        j.pieces = (n + plen - 1) / plen;
    }
    j.plen = j.pieces > 1 ? j.plen : n;
    cpu_parallel_for(rows * j.pieces, work, ew_tasks, &j);
}

/* Work per element, in units of a simple add: the polynomial ops cost about ten. */
static int64_t op_cost(lam_op op) {
    switch (op) {
    case LAM_OP_EXP:
    case LAM_OP_LOG:
    case LAM_OP_TANH:
    case LAM_OP_SIGMOID:
    case LAM_OP_SOFTRELU:
    case LAM_OP_POW_SCALAR:
        return 8;
    default:
        return 1;
    }
}

lam_status cpu_elementwise(const cpu_call *call) {
    /* Strides of an operand the op does not have: zero, over a dummy element. */
    static const int64_t zero_strides[LAM_MAX_DIMS];
    static const uint64_t dummy;
    const cpu_view *out = &call->out[0];
    char *base[EW_OPERANDS] = {out->data, (char *)(uintptr_t)&dummy, (char *)(uintptr_t)&dummy};
    const int64_t *st[EW_OPERANDS] = {out->st, zero_strides, zero_strides};
    for (uint32_t i = 0; i < call->n_in && i < 2; i++) {
        base[i + 1] = call->in[i].data;
        st[i + 1] = call->in[i].st;
    }
    const int typed_copy = call->op == LAM_OP_COPY && out->dtype != LAM_DTYPE_F32;
    cpu_ew_row kernel = typed_copy ? NULL : cpu_kern_pick()->ew_row(call->op);
    if (kernel == NULL && !typed_copy) {
        return cpu_error(LAM_ERR_INTERNAL, "cpu: Internal error, op %d is not elementwise",
                         (int)call->op);
    }
    ew_plan p;
    if (!plan_make(&p, out->ndim, out->dims, st)) {
        return LAM_OK;
    }
    const lam_scalar_params *sp = lam_op_params(call, lam_scalar_params);
    const float s = sp != NULL ? (float)sp->a : 0.0f;
    const float t = sp != NULL ? (float)sp->b : 0.0f;
    run_plan(&p, kernel, base, out->esize, s, t, op_cost(call->op));
    return LAM_OK;
}

/* LINEAR after its GEMM: out = act(out + bias), by the elementwise row kernels. */
lam_status cpu_linear_epilogue(const cpu_call *call, lam_op act) {
    const cpu_view *out = &call->out[0];
    const cpu_kern *kern = cpu_kern_pick();
    ew_plan p;
    static const int64_t zero_strides[LAM_MAX_DIMS];
    static const uint64_t dummy;
    const int has_act =
        act == LAM_OP_RELU || act == LAM_OP_SIGMOID || act == LAM_OP_TANH || act == LAM_OP_SOFTRELU;
    if (call->n_in == 3) { /* out = act(out + bias) (bias broadcast along rows), one pass */
        const int64_t bias_st[2] = {0, call->in[2].st[0]};
        char *base[EW_OPERANDS] = {out->data, out->data, call->in[2].data};
        const int64_t *st[EW_OPERANDS] = {out->st, out->st, bias_st};
        if (plan_make(&p, 2, out->dims, st)) {
            run_plan(&p, kern->bias_act(has_act ? act : LAM_OP_INVALID), base, sizeof(float), 0.0f,
                     0.0f, has_act ? op_cost(act) : 1);
        }
        return LAM_OK;
    }
    if (has_act) {
        char *base[EW_OPERANDS] = {out->data, out->data, (char *)(uintptr_t)&dummy};
        const int64_t *st[EW_OPERANDS] = {out->st, out->st, zero_strides};
        if (plan_make(&p, 2, out->dims, st)) {
            run_plan(&p, kern->ew_row(act), base, sizeof(float), 0.0f, 0.0f, op_cost(act));
        }
    }
    return LAM_OK;
}
