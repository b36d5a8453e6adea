/*
 * conform_backend.c - the checks of a backend plugin, run by `lamina conform` (see conform.c).
 *
 * The child loads the backend itself (dlopen) and drives its lam_backend_desc directly with a
 * minimal host table (set_error, log, register_*), exactly as a host does, next to the
 * built-in CPU backend loaded the same way as the reference. Each op the backend claims
 * (supports_op) runs on seeded random inputs on both; the output buffer has guard elements
 * before and after the output, written through buffer_write and checked afterwards, so an
 * out-of-bounds write is caught; the output itself is poisoned with the same pattern, so an
 * op that returns LAM_OK without writing it is caught; inputs must come back unchanged; NaN and
 * infinities must propagate as they do on the CPU backend.
 */
#define _GNU_SOURCE
#include "conform.h"

#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The reviewed tolerance table: one row per op. nmse = sum((x - ref)^2) / sum(ref^2) over the
 * finite reference elements; max_err bounds |x - ref| / max(1, |ref|) element-wise. Zero means
 * bit-exact: the op involves no rounding (copies, comparisons, sign changes, max/min, argmax).
 * Element-wise arithmetic may differ by the last bit (a GPU's division and transcendental
 * functions are not correctly rounded), GEMM and reductions by the summation order.
 */
typedef enum op_kind { K_FILL, K_UNARY, K_BINARY, K_SCALAR, K_GEMM, K_REDUCE, K_SOFTMAX } op_kind;

typedef struct op_row {
    lam_op op;
    const char *name;
    op_kind kind;
    float xlo, xhi; /* input 0 domain */
    float ylo, yhi; /* input 1 domain */
    double scalar;
    double nmse;
    double max_err;
} op_row;

static const op_row op_table[] = {
    {LAM_OP_FILL, "fill", K_FILL, 0, 0, 0, 0, 2.5, 0, 0},
    {LAM_OP_COPY, "copy", K_UNARY, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_ADD, "add", K_BINARY, -2, 2, -2, 2, 0, 1e-12, 1e-6},
    {LAM_OP_SUB, "sub", K_BINARY, -2, 2, -2, 2, 0, 1e-12, 1e-6},
    {LAM_OP_MUL, "mul", K_BINARY, -2, 2, -2, 2, 0, 1e-12, 1e-6},
    {LAM_OP_DIV, "div", K_BINARY, -2, 2, 0.5f, 2, 0, 1e-10, 1e-5},
    {LAM_OP_ADD_SCALAR, "add_scalar", K_SCALAR, -2, 2, 0, 0, 0.75, 1e-12, 1e-6},
    {LAM_OP_MUL_SCALAR, "mul_scalar", K_SCALAR, -2, 2, 0, 0, -1.25, 1e-12, 1e-6},
    {LAM_OP_RSUB_SCALAR, "rsub_scalar", K_SCALAR, -2, 2, 0, 0, 1.0, 1e-12, 1e-6},
    {LAM_OP_DIV_SCALAR, "div_scalar", K_SCALAR, -2, 2, 0, 0, 1.7, 1e-10, 1e-5},
    {LAM_OP_RDIV_SCALAR, "rdiv_scalar", K_SCALAR, 0.5f, 2, 0, 0, 1.5, 1e-10, 1e-5},
    {LAM_OP_POW_SCALAR, "pow_scalar", K_SCALAR, 0.1f, 2, 0, 0, 1.5, 1e-10, 1e-5},
    {LAM_OP_NEG, "neg", K_UNARY, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_ABS, "abs", K_UNARY, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_SQUARE, "square", K_UNARY, -2, 2, 0, 0, 0, 1e-12, 1e-6},
    {LAM_OP_SQRT, "sqrt", K_UNARY, 0.01f, 4, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_EXP, "exp", K_UNARY, -3, 3, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_LOG, "log", K_UNARY, 0.05f, 4, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_RELU, "relu", K_UNARY, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_SIGMOID, "sigmoid", K_UNARY, -6, 6, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_TANH, "tanh", K_UNARY, -4, 4, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_SOFTRELU, "softrelu", K_UNARY, -6, 6, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_GEMM, "gemm", K_GEMM, -1, 1, -1, 1, 0, 1e-10, 1e-4},
    {LAM_OP_REDUCE_SUM, "reduce_sum", K_REDUCE, -2, 2, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_REDUCE_MEAN, "reduce_mean", K_REDUCE, -2, 2, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_REDUCE_MAX, "reduce_max", K_REDUCE, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_REDUCE_MIN, "reduce_min", K_REDUCE, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_ARGMAX, "argmax", K_REDUCE, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_SOFTMAX, "softmax", K_SOFTMAX, -3, 3, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_LOG_SOFTMAX, "log_softmax", K_SOFTMAX, -3, 3, 0, 0, 0, 1e-10, 1e-5},
    {LAM_OP_MAXIMUM, "maximum", K_BINARY, -2, 2, -2, 2, 0, 0, 0},
    {LAM_OP_MINIMUM, "minimum", K_BINARY, -2, 2, -2, 2, 0, 0, 0},
    {LAM_OP_STEP, "step", K_UNARY, -2, 2, 0, 0, 0, 0, 0},
    {LAM_OP_GREATER_EQUAL, "greater_equal", K_BINARY, -2, 2, -2, 2, 0, 0, 0},
#if LAM_OP_COUNT > 35
    /* s0 = scalar, s1 = AXPBY_S1 (see make_case) */
    {LAM_OP_AXPBY, "axpby", K_BINARY, -2, 2, -2, 2, 0.75, 1e-12, 1e-6},
#endif
};
#define AXPBY_S1 (-1.5)
#define N_OPS    (sizeof op_table / sizeof op_table[0])

/* ---- a backend driven directly ---- */

typedef struct be {
    lam_backend_desc d;
    int have;
    void *dev;
    char file[PATH_MAX];
} be;

static char g_err[1024];
static be *g_into;         /* the slot the next registration fills */
static const char *g_want; /* the backend name to capture */

static lam_status h_set_error(lam_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static lam_status h_set_error(lam_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return status;
}

static void h_log(lam_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void h_log(lam_log_level level, const char *fmt, ...) {
    (void)level;
    (void)fmt;
}

static lam_status h_register_backend(lam_plugin *plugin, const lam_backend_desc *d) {
    (void)plugin;
    if (g_into == NULL || g_into->have || d == NULL || d->name == NULL ||
        strcmp(d->name, g_want) != 0) {
        return LAM_OK;
    }
    size_t n = d->struct_size < sizeof g_into->d ? d->struct_size : sizeof g_into->d;
    memset(&g_into->d, 0, sizeof g_into->d);
    memcpy(&g_into->d, d, n);
    g_into->have = 1;
    return LAM_OK;
}

static lam_status h_register_layer(lam_plugin *plugin, const lam_layer_desc *d) {
    (void)plugin;
    (void)d;
    return LAM_OK;
}

/* The host table outlives the call: plugins keep a pointer to it. */
static lam_host_api g_host;

static int be_load(const char *path, const char *name, be *b, char *err, size_t cap) {
    memset(b, 0, sizeof *b);
    snprintf(b->file, sizeof b->file, "%s", path);
    if (g_host.struct_size == 0) {
        g_host.struct_size = (uint32_t)sizeof g_host;
        g_host.abi_version = LAM_ABI_VERSION;
        g_host.abi_fingerprint = LAM_ABI_FINGERPRINT;
        g_host.set_error = h_set_error;
        g_host.log = h_log;
        g_host.register_backend = h_register_backend;
        g_host.register_layer = h_register_layer;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(err, cap, "dlopen %s: %s", path, dlerror());
        return -1;
    }
    void *sym = dlsym(h, LAM_PLUGIN_ENTRY_NAME);
    if (sym == NULL) {
        snprintf(err, cap, "%s has no %s", path, LAM_PLUGIN_ENTRY_NAME);
        return -1;
    }
    lam_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    g_into = b;
    g_want = name;
    lam_status st = entry(&g_host, (lam_plugin *)(void *)&g_host);
    g_into = NULL;
    if (st != LAM_OK || !b->have) {
        snprintf(err, cap, "%s: entry %s, backend '%s' %s: %s", path, lam_status_string(st), name,
                 b->have ? "registered" : "not registered", g_err);
        return -1;
    }
    return 0;
}

/* Loads the backend under test and the reference; opens device 0 of each. 0, 1 (no device,
 * verdict given) or -1 (failure given). */
static int setup_pair(cf_ctx *c, be *t, be *ref) {
    char err[1400];
    cf_note(c, "loading %s", c->plugin->path);
    if (be_load(c->plugin->path, c->backend, t, err, sizeof err) != 0) {
        cf_fail(c, "%s", err);
        return -1;
    }
    char cpu[PATH_MAX];
    snprintf(cpu, sizeof cpu, "%s/lamina_backend_cpu.so", lam_builtin_plugin_dir());
    if (be_load(cpu, "cpu", ref, err, sizeof err) != 0) {
        cf_skip(c, "no reference cpu backend: %s", err);
        return 1;
    }
    uint32_t n = 0;
    char why[512] = "";
    cf_note(c, "in probe");
    lam_status st = t->d.probe(t->d.user, &n, why, sizeof why);
    if (st != LAM_OK || n == 0) {
        cf_skip(c, "backend %s has no device: %s", c->backend, st != LAM_OK ? g_err : why);
        return 1;
    }
    uint32_t nr = 0;
    if (ref->d.probe(ref->d.user, &nr, why, sizeof why) != LAM_OK || nr == 0) {
        cf_skip(c, "the reference cpu backend has no device");
        return 1;
    }
    cf_note(c, "in device_open");
    st = t->d.device_open(t->d.user, 0, &t->dev);
    if (st != LAM_OK) {
        cf_fail(c, "device_open(0) failed: %s", g_err);
        return -1;
    }
    if (ref->d.device_open(ref->d.user, 0, &ref->dev) != LAM_OK) {
        cf_skip(c, "cannot open the reference cpu device: %s", g_err);
        return 1;
    }
    return 0;
}

/* ---- one op call on host data ---- */

#define GUARD 64                               /* guard elements on each side of an output */
static const uint32_t GUARD_BITS = 0x7fc0dead; /* a quiet NaN no op produces by chance */

typedef struct tcase {
    lam_op op;
    uint32_t n_in;
    lam_tensor_view in[2]; /* buffer filled in at run time */
    float *in_data[2];     /* storage of each input */
    size_t in_count[2];
    lam_tensor_view out;
    size_t out_count;
    float *out_init; /* initial output contents (out_count), NULL: guard pattern */
    double scalars[4];
    int64_t ints[4];
    int alias; /* the output is the very view of input 0 (in-place), contiguous */
    char label[96];
} tcase;

typedef struct run_out {
    lam_status st;
    int unsupported;
    float *out;        /* out_count */
    char problem[600]; /* guard or input damage */
    char err[1024];
} run_out;

static void contiguous(lam_tensor_view *v, uint32_t ndim, const int64_t *dims) {
    v->dtype = LAM_DTYPE_F32;
    v->ndim = ndim;
    int64_t s = 1;
    for (int i = (int)ndim - 1; i >= 0; i--) {
        v->dims[i] = dims[i];
        v->strides[i] = s;
        s *= dims[i];
    }
}

static size_t numel(const lam_tensor_view *v) {
    size_t n = 1;
    for (uint32_t i = 0; i < v->ndim; i++) {
        n *= (size_t)v->dims[i];
    }
    return n;
}

static void run_case(be *b, const tcase *tc, run_out *r) {
    memset(r, 0, sizeof *r);
    void *bufs[3] = {NULL, NULL, NULL};
    size_t total = GUARD + tc->out_count + GUARD;
    float *all = malloc(total * sizeof *all);
    float *back = malloc(total * sizeof *back);
    float *inback = NULL;
    lam_tensor_view in[2];
    lam_tensor_view out = tc->out;
    lam_op_call call = {.struct_size = (uint32_t)sizeof call,
                        .abi_version = LAM_ABI_VERSION,
                        .op = tc->op,
                        .n_inputs = tc->n_in,
                        .inputs = in,
                        .output = &out};
    memcpy(call.scalars, tc->scalars, sizeof call.scalars);
    memcpy(call.ints, tc->ints, sizeof call.ints);
    if (all == NULL || back == NULL) {
        r->st = LAM_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (size_t i = 0; i < total; i++) {
        memcpy(&all[i], &GUARD_BITS, sizeof(float));
    }
    if (tc->alias) {
        memcpy(all + GUARD, tc->in_data[0], tc->out_count * sizeof(float));
    } else if (tc->out_init) {
        memcpy(all + GUARD, tc->out_init, tc->out_count * sizeof(float));
    }
    g_err[0] = '\0';
    r->st = b->d.buffer_alloc(b->dev, total * sizeof(float), &bufs[2]);
    if (r->st == LAM_OK) {
        r->st = b->d.buffer_write(b->dev, bufs[2], 0, all, total * sizeof(float));
    }
    for (uint32_t i = 0; i < tc->n_in && r->st == LAM_OK; i++) {
        in[i] = tc->in[i];
        if (i == 0 && tc->alias) {
            continue; /* set below: the output's own view */
        }
        r->st = b->d.buffer_alloc(b->dev, (tc->in_count[i] ? tc->in_count[i] : 1) * sizeof(float),
                                  &bufs[i]);
        if (r->st == LAM_OK && tc->in_count[i] > 0) {
            r->st = b->d.buffer_write(b->dev, bufs[i], 0, tc->in_data[i],
                                      tc->in_count[i] * sizeof(float));
        }
        in[i].buffer = bufs[i];
    }
    if (r->st != LAM_OK) {
        snprintf(r->err, sizeof r->err, "buffer setup: %.900s", g_err);
        goto done;
    }
    out.buffer = bufs[2];
    out.offset = GUARD;
    if (tc->alias) {
        in[0] = out;
    }
    if (!b->d.supports_op(b->dev, tc->op, &call)) {
        r->unsupported = 1;
        goto done;
    }
    r->st = b->d.execute(b->dev, &call);
    if (r->st == LAM_OK) {
        r->st = b->d.synchronize(b->dev);
    }
    if (r->st != LAM_OK) {
        snprintf(r->err, sizeof r->err, "%s", g_err);
        goto done;
    }
    r->st = b->d.buffer_read(b->dev, bufs[2], 0, back, total * sizeof(float));
    if (r->st != LAM_OK) {
        snprintf(r->err, sizeof r->err, "buffer_read: %.900s", g_err);
        goto done;
    }
    int before = 0, after = 0;
    for (size_t i = 0; i < GUARD; i++) {
        before += memcmp(&back[i], &GUARD_BITS, sizeof(float)) != 0;
        after += memcmp(&back[GUARD + tc->out_count + i], &GUARD_BITS, sizeof(float)) != 0;
    }
    if (before || after) {
        size_t first = 0;
        while (first < GUARD &&
               memcmp(&back[GUARD + tc->out_count + first], &GUARD_BITS, sizeof(float)) == 0) {
            first++;
        }
        snprintf(r->problem, sizeof r->problem,
                 "out-of-bounds write: %d guard element(s) before and %d after the %zu-element "
                 "output overwritten%s",
                 before, after, tc->out_count,
                 after ? " (first one right after the output end)" : "");
        if (after && first > 0) {
            size_t n = strlen(r->problem);
            snprintf(r->problem + n, sizeof r->problem - n, " at +%zu", first);
        }
    }
    if (r->problem[0] == '\0' && !tc->alias && tc->out_init == NULL) {
        /* The output was poisoned with the guard pattern (a NaN no op makes): an element
         * still holding it was never written, however the op returned. */
        size_t unwritten = 0, first = 0;
        for (size_t i = 0; i < tc->out_count; i++) {
            if (memcmp(&back[GUARD + i], &GUARD_BITS, sizeof(float)) == 0 && unwritten++ == 0) {
                first = i;
            }
        }
        if (unwritten > 0) {
            snprintf(r->problem, sizeof r->problem,
                     "output not written: %zu of %zu element(s) still hold the poison bits "
                     "0x%08x stored before the call (the first at [%zu]), although execute "
                     "returned LAM_OK",
                     unwritten, tc->out_count, GUARD_BITS, first);
        }
    }
    r->out = malloc((tc->out_count + 1) * sizeof(float));
    if (r->out) {
        memcpy(r->out, back + GUARD, tc->out_count * sizeof(float));
    }
    for (uint32_t i = 0; i < tc->n_in && r->problem[0] == '\0'; i++) {
        if (tc->in_count[i] == 0 || (i == 0 && tc->alias)) {
            continue;
        }
        free(inback);
        inback = malloc(tc->in_count[i] * sizeof(float));
        if (inback &&
            b->d.buffer_read(b->dev, bufs[i], 0, inback, tc->in_count[i] * sizeof(float)) ==
                LAM_OK &&
            memcmp(inback, tc->in_data[i], tc->in_count[i] * sizeof(float)) != 0) {
            snprintf(r->problem, sizeof r->problem, "input %u was modified by the op", i);
        }
    }
done:
    for (int i = 0; i < 3; i++) {
        if (bufs[i]) {
            b->d.buffer_free(b->dev, bufs[i]);
        }
    }
    free(inback);
    free(all);
    free(back);
}

/* ---- test cases ---- */

static float *rand_fill(cf_rng *r, size_t n, float lo, float hi) {
    float *v = malloc((n + 1) * sizeof *v);
    for (size_t i = 0; v && i < n; i++) {
        v[i] = cf_rng_uniform(r, lo, hi);
    }
    return v;
}

static void tcase_free(tcase *t) {
    free(t->in_data[0]);
    free(t->in_data[1]);
    free(t->out_init);
    memset(t, 0, sizeof *t);
}

/* Variant 0: contiguous; 1: broadcast / transposed / scaled; more for GEMM. `special` puts
 * NaN and infinities into the inputs. Returns 0 when the variant does not exist. */
static int make_case(const op_row *row, int variant, int special, uint64_t seed, tcase *t) {
    memset(t, 0, sizeof *t);
    t->op = row->op;
    t->scalars[0] = row->scalar;
    t->scalars[1] = AXPBY_S1; /* read only by AXPBY */
    cf_rng r;
    cf_rng_init(&r, seed, 100 + (uint64_t)row->op * 16 + (uint64_t)variant);
    const int64_t ew[3] = {4, 33, 5};
    switch (row->kind) {
    case K_FILL:
        if (variant > 0) {
            return 0;
        }
        contiguous(&t->out, 3, ew);
        if (special) {
            t->scalars[0] = NAN;
        }
        snprintf(t->label, sizeof t->label, "fill (4, 33, 5) with %g", t->scalars[0]);
        break;
    case K_UNARY:
    case K_SCALAR:
    case K_BINARY: {
        int inplace = 0;
#if LAM_OP_COUNT > 35
        /* AXPBY may update x in place: variant 2 makes the output x's very view. */
        inplace = row->op == LAM_OP_AXPBY && variant == 2;
#endif
        if (variant > 1 && !inplace) {
            return 0;
        }
        t->n_in = row->kind == K_BINARY ? 2 : 1;
        contiguous(&t->out, 3, ew);
        for (uint32_t i = 0; i < t->n_in; i++) {
            /* Variant 1 broadcasts the last input along the first axis (stride 0). */
            int bcast = variant == 1 && i == t->n_in - 1;
            t->alias = inplace;
            contiguous(&t->in[i], 3, ew);
            if (bcast) {
                t->in[i].strides[0] = 0;
            }
            t->in_count[i] = bcast ? (size_t)(ew[1] * ew[2]) : (size_t)(ew[0] * ew[1] * ew[2]);
            t->in_data[i] =
                rand_fill(&r, t->in_count[i], i ? row->ylo : row->xlo, i ? row->yhi : row->xhi);
        }
        snprintf(t->label, sizeof t->label, "%s (4, 33, 5)%s", row->name,
                 inplace   ? ", in place (output is input 0's view)"
                 : variant ? ", last input broadcast along axis 0 (stride 0)"
                           : ", contiguous");
        break;
    }
    case K_GEMM: {
        if (variant > 4) {
            return 0;
        }
        const int64_t m = 7, k = 13, n = 5;
        int ta = variant == 1 || variant == 3, tb = variant == 2 || variant == 3;
        t->ints[0] = ta;
        t->ints[1] = tb;
        t->scalars[0] = variant == 4 ? 0.5 : 1.0;
        t->scalars[1] = variant == 4 ? 2.0 : 0.0;
        t->n_in = 2;
        int64_t ad[2] = {ta ? k : m, ta ? m : k}, bd[2] = {tb ? n : k, tb ? k : n};
        int64_t od[2] = {m, n};
        contiguous(&t->in[0], 2, ad);
        contiguous(&t->in[1], 2, bd);
        contiguous(&t->out, 2, od);
        t->in_count[0] = (size_t)(m * k);
        t->in_count[1] = (size_t)(k * n);
        t->in_data[0] = rand_fill(&r, t->in_count[0], row->xlo, row->xhi);
        t->in_data[1] = rand_fill(&r, t->in_count[1], row->ylo, row->yhi);
        t->out_init = malloc((size_t)(m * n) * sizeof(float));
        for (int64_t i = 0; t->out_init && i < m * n; i++) {
            /* beta == 0: out must not be read, so NaN there must not show */
            t->out_init[i] = variant == 4 ? cf_rng_uniform(&r, -1, 1) : NAN;
        }
        snprintf(t->label, sizeof t->label, "gemm (7x13)%s x (13x5)%s, alpha %g, beta %g",
                 ta ? "^T" : "", tb ? "^T" : "", t->scalars[0], t->scalars[1]);
        break;
    }
    case K_REDUCE:
    case K_SOFTMAX: {
        if (variant > 1 || (variant == 1 && row->kind == K_SOFTMAX)) {
            return 0;
        }
        const int64_t xd[3] = {3, variant ? 0 : 11, 4};
        const int64_t od[3] = {3, row->kind == K_REDUCE ? 1 : xd[1], 4};
        t->n_in = 1;
        contiguous(&t->in[0], 3, xd);
        contiguous(&t->out, 3, od);
        t->in_count[0] = numel(&t->in[0]);
        t->in_data[0] = rand_fill(&r, t->in_count[0], row->xlo, row->xhi);
        snprintf(t->label, sizeof t->label, "%s over the middle axis of (3, %lld, 4)", row->name,
                 (long long)xd[1]);
        break;
    }
    }
    t->out_count = numel(&t->out);
    if (special) {
        /* NaN, +inf and -inf at fixed places of each input. */
        static const size_t pos[3] = {0, 7, 13};
        const float val[3] = {NAN, INFINITY, -INFINITY};
        for (uint32_t i = 0; i < t->n_in; i++) {
            for (int j = 0; j < 3; j++) {
                size_t p = (pos[j] + 5 * i) % (t->in_count[i] ? t->in_count[i] : 1);
                if (t->in_count[i] > 0) {
                    t->in_data[i][p] = val[j];
                }
            }
        }
        size_t n = strlen(t->label);
        snprintf(t->label + n, sizeof t->label - n, ", with NaN/inf inputs");
    }
    return 1;
}

/* ---- the kit's own reference, for the CPU backend itself ---- */

/*
 * A plain double-precision implementation of every op with the semantics plugin.h documents
 * (NaN propagation included), used as the reference when the backend under test is the CPU
 * backend (comparing it with itself would prove nothing). Returns 0, or -1 for a call the
 * reference refuses as the CPU backend does (argmax of an empty axis).
 */
static double at_in(const tcase *t, uint32_t i, const int64_t *idx) {
    const lam_tensor_view *v = &t->in[i];
    int64_t off = 0;
    for (uint32_t d = 0; d < v->ndim; d++) {
        off += idx[d] * v->strides[d];
    }
    return (double)t->in_data[i][off];
}

static double ref_unary(lam_op op, double x, double y, double s) {
    switch (op) {
    case LAM_OP_FILL:
        return s;
    case LAM_OP_COPY:
        return x;
    case LAM_OP_ADD:
        return x + y;
    case LAM_OP_SUB:
        return x - y;
    case LAM_OP_MUL:
        return x * y;
    case LAM_OP_DIV:
        return x / y;
    case LAM_OP_ADD_SCALAR:
        return x + s;
    case LAM_OP_MUL_SCALAR:
        return x * s;
    case LAM_OP_RSUB_SCALAR:
        return s - x;
    case LAM_OP_DIV_SCALAR:
        return x / s;
    case LAM_OP_RDIV_SCALAR:
        return s / x;
    case LAM_OP_POW_SCALAR:
        return pow(x, s);
    case LAM_OP_NEG:
        return -x;
    case LAM_OP_ABS:
        return fabs(x);
    case LAM_OP_SQUARE:
        return x * x;
    case LAM_OP_SQRT:
        return sqrt(x);
    case LAM_OP_EXP:
        return exp(x);
    case LAM_OP_LOG:
        return log(x);
    case LAM_OP_RELU:
        return isnan(x) ? x : x > 0 ? x : 0.0;
    case LAM_OP_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case LAM_OP_TANH:
        return tanh(x);
    case LAM_OP_SOFTRELU:
        return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case LAM_OP_MAXIMUM:
        return isnan(x) || isnan(y) ? NAN : x > y ? x : y;
    case LAM_OP_MINIMUM:
        return isnan(x) || isnan(y) ? NAN : x < y ? x : y;
    case LAM_OP_STEP:
        return x > 0 ? 1.0 : 0.0;
    case LAM_OP_GREATER_EQUAL:
        return x >= y ? 1.0 : 0.0;
#if LAM_OP_COUNT > 35
    case LAM_OP_AXPBY:
        return s * x + AXPBY_S1 * y;
#endif
    default:
        return NAN;
    }
}

static int ref_execute(const tcase *t, float *out) {
    const lam_tensor_view *o = &t->out;
    if (t->op == LAM_OP_GEMM) {
        int ta = t->ints[0] != 0, tb = t->ints[1] != 0;
        int64_t m = o->dims[0], n = o->dims[1], k = ta ? t->in[0].dims[0] : t->in[0].dims[1];
        for (int64_t i = 0; i < m; i++) {
            for (int64_t j = 0; j < n; j++) {
                double acc = 0.0;
                for (int64_t q = 0; q < k; q++) {
                    int64_t ia[2] = {ta ? q : i, ta ? i : q}, ib[2] = {tb ? j : q, tb ? q : j};
                    acc += at_in(t, 0, ia) * at_in(t, 1, ib);
                }
                double r = t->scalars[0] * acc;
                if (t->scalars[1] != 0.0) {
                    r += t->scalars[1] * (double)t->out_init[i * n + j];
                }
                out[i * n + j] = (float)r;
            }
        }
        return 0;
    }
    if (t->op >= LAM_OP_REDUCE_SUM && t->op <= LAM_OP_LOG_SOFTMAX) {
        const lam_tensor_view *x = &t->in[0];
        int64_t outer = x->dims[0], n = x->dims[1], inner = x->dims[2];
        if (t->op == LAM_OP_ARGMAX && n == 0) {
            return -1;
        }
        for (int64_t a = 0; a < outer; a++) {
            for (int64_t c = 0; c < inner; c++) {
                double sum = 0.0, mx = -INFINITY, mn = INFINITY;
                int nan = 0;
                int64_t arg = -1; /* first maximum; a NaN counts as the maximum (NumPy) */
                for (int64_t b = 0; b < n; b++) {
                    double v = at_in(t, 0, (int64_t[3]){a, b, c});
                    sum += v;
                    if (isnan(v) && !nan) {
                        arg = b;
                    } else if (!nan && (arg < 0 || v > mx)) {
                        arg = b;
                    }
                    nan |= isnan(v) != 0;
                    mx = v > mx ? v : mx;
                    mn = v < mn ? v : mn;
                }
                double r;
                switch (t->op) {
                case LAM_OP_REDUCE_SUM:
                    r = sum;
                    break;
                case LAM_OP_REDUCE_MEAN:
                    r = n > 0 ? sum / (double)n : NAN;
                    break;
                case LAM_OP_REDUCE_MAX:
                    r = nan ? NAN : mx;
                    break;
                case LAM_OP_REDUCE_MIN:
                    r = nan ? NAN : mn;
                    break;
                case LAM_OP_ARGMAX:
                    r = (double)arg;
                    break;
                default: { /* softmax, log-softmax: every element of the line */
                    double m = nan ? NAN : mx, z = 0.0;
                    for (int64_t b = 0; b < n; b++) {
                        z += exp(at_in(t, 0, (int64_t[3]){a, b, c}) - m);
                    }
                    for (int64_t b = 0; b < n; b++) {
                        double e = at_in(t, 0, (int64_t[3]){a, b, c}) - m;
                        out[(a * n + b) * inner + c] =
                            (float)(t->op == LAM_OP_LOG_SOFTMAX ? e - log(z) : exp(e) / z);
                    }
                    continue;
                }
                }
                out[a * inner + c] = (float)r;
            }
        }
        return 0;
    }
    for (size_t i = 0; i < t->out_count; i++) {
        int64_t idx[LAM_MAX_DIMS];
        size_t rem = i;
        for (int d = (int)o->ndim - 1; d >= 0; d--) {
            idx[d] = (int64_t)(rem % (size_t)o->dims[d]);
            rem /= (size_t)o->dims[d];
        }
        double x = t->n_in > 0 ? at_in(t, 0, idx) : 0.0;
        double y = t->n_in > 1 ? at_in(t, 1, idx) : 0.0;
        out[i] = (float)ref_unary(t->op, x, y, t->scalars[0]);
    }
    return 0;
}

/* ---- comparing ---- */

static int fclass(float v) {
    return isnan(v) ? 1 : isinf(v) ? (v > 0 ? 2 : 3) : 0;
}

static const char *class_name(int k) {
    return k == 1 ? "NaN" : k == 2 ? "+inf" : k == 3 ? "-inf" : "finite";
}

/* Compares an output against the reference under the row's thresholds. */
static int compare(cf_ctx *c, const op_row *row, const tcase *t, const float *got, const float *ref,
                   const char *refname) {
    double num = 0.0, den = 0.0, worst = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < t->out_count; i++) {
        int kr = fclass(ref[i]), kg = fclass(got[i]);
        if (kr != kg) {
            cf_fail(c, "%s: NaN/inf propagation differs from %s", t->label, refname);
            cf_expect(c, "out[%zu] = %s (%.7g from %s)", i, class_name(kr), (double)ref[i],
                      refname);
            cf_found(c, "%s (%.7g)", class_name(kg), (double)got[i]);
            return 0;
        }
        if (kr != 0) {
            continue;
        }
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        double e = fabs(d) / fmax(1.0, fabs((double)ref[i]));
        if (e > worst) {
            worst = e;
            worst_i = i;
        }
    }
    double nmse = den > 0 ? num / den : num;
    if (nmse > row->nmse || worst > row->max_err) {
        cf_fail(c, "%s: output differs from %s", t->label, refname);
        cf_expect(c, "nmse <= %g and max error <= %g; out[%zu] = %.9g from %s", row->nmse,
                  row->max_err, worst_i, (double)ref[worst_i], refname);
        cf_found(c, "nmse %.3g, max error %.3g; out[%zu] = %.9g", nmse, worst, worst_i,
                 (double)got[worst_i]);
        return 0;
    }
    return 1;
}

/* ---- checks ---- */

static void check_op(cf_ctx *c) {
    const op_row *row = &op_table[c->param];
    be t, ref;
    int rc = setup_pair(c, &t, &ref);
    if (rc != 0) {
        return;
    }
    if (!t.d.supports_op(t.dev, row->op, NULL)) {
        cf_skip(c, "backend does not support %s", row->name);
        return;
    }
    int ran = 0, unsupported = 0, refused = 0;
    /* The CPU backend itself is compared with the kit's own reference. */
    char r1[PATH_MAX], r2[PATH_MAX];
    int self =
        strcmp(c->backend, "cpu") == 0 ||
        (realpath(t.file, r1) != NULL && realpath(ref.file, r2) != NULL && strcmp(r1, r2) == 0);
    const char *refname = self ? "the kit's double-precision reference" : "cpu";
    for (int special = 0; special < 2 && !cf_failed(c); special++) {
        for (int v = 0; !cf_failed(c); v++) {
            tcase tc;
            if (!make_case(row, v, special, c->opt->seed, &tc)) {
                break;
            }
            run_out a, b;
            cf_note(c, "in execute of %s on %s", tc.label, c->backend);
            run_case(&t, &tc, &a);
            if (self) {
                memset(&b, 0, sizeof b);
                b.out = malloc((tc.out_count + 1) * sizeof(float));
                b.st = b.out != NULL && ref_execute(&tc, b.out) == 0 ? LAM_OK : LAM_ERR_SHAPE;
            } else {
                cf_note(c, "in execute of %s on the cpu reference", tc.label);
                run_case(&ref, &tc, &b);
            }
            cf_note(c, "comparing %s", tc.label);
            if (a.unsupported) {
                unsupported++;
            } else if (a.problem[0]) {
                cf_fail(c, "%s: %s", tc.label, a.problem);
                cf_expect(c,
                          "every output element written, guard elements (bits 0x%08x) around "
                          "the output untouched, inputs unchanged",
                          GUARD_BITS);
                cf_found(c, "%s", a.problem);
            } else if (a.st != LAM_OK && b.st != LAM_OK && !b.unsupported) {
                refused++; /* both refuse the call (e.g. argmax of an empty axis): agreement */
            } else if (a.st != LAM_OK) {
                cf_fail(c, "%s: execute failed although supports_op said yes", tc.label);
                cf_expect(c, "LAM_OK");
                cf_found(c, "%s: %s", lam_status_string(a.st), a.err);
            } else if (b.st != LAM_OK || b.unsupported || b.out == NULL || a.out == NULL) {
                /* the reference cannot run this variant: nothing to compare with */
            } else {
                compare(c, row, &tc, a.out, b.out, refname);
                ran++;
            }
            free(a.out);
            free(b.out);
            tcase_free(&tc);
        }
    }
    if (!cf_failed(c)) {
        if (ran == 0) {
            cf_skip(c, "backend does not support %s for the calls tried", row->name);
        } else {
            cf_pass(c,
                    "%d call(s) match %s (nmse <= %g, max error <= %g), NaN/inf propagate "
                    "alike, guards intact%s%s",
                    ran, refname, row->nmse, row->max_err,
                    unsupported ? "; some variants unsupported" : "",
                    refused ? "; some calls refused by both" : "");
        }
    }
    t.d.device_close(t.dev);
    if (ref.dev != t.dev) {
        ref.d.device_close(ref.dev);
    }
}

static void check_probe(cf_ctx *c) {
    be t;
    char err[1400];
    cf_note(c, "loading %s", c->plugin->path);
    if (be_load(c->plugin->path, c->backend, &t, err, sizeof err) != 0) {
        cf_fail(c, "%s", err);
        return;
    }
    if (t.d.name == NULL || t.d.version == NULL || t.d.version[0] == '\0' || t.d.doc == NULL) {
        cf_fail(c, "descriptor lacks a version or doc string");
        return;
    }
    uint32_t n = 0;
    char why[512];
    memset(why, 0, sizeof why);
    cf_note(c, "in probe");
    lam_status st = t.d.probe(t.d.user, &n, why, sizeof why);
    if (st != LAM_OK) {
        cf_fail(c, "probe failed: %s", g_err);
        return;
    }
    if (n == 0) {
        if (why[0] == '\0') {
            cf_fail(c, "probe found no device and gave no reason");
            cf_expect(c, "a reason in `why`");
            cf_found(c, "an empty string");
        } else {
            cf_skip(c, "backend %s has no device: %s", c->backend, why);
        }
        return;
    }
    char names[600] = "";
    for (uint32_t d = 0; d < n && !cf_failed(c); d++) {
        /* A full struct with bytes after it, then an older, shorter struct: the backend must
         * write only inside struct_size. */
        unsigned char buf[sizeof(lam_device_info) + 64];
        memset(buf, 0xA5, sizeof buf);
        lam_device_info *info = (lam_device_info *)(void *)buf;
        info->struct_size = (uint32_t)sizeof(lam_device_info);
        info->abi_version = LAM_ABI_VERSION;
        cf_note(c, "in device_info(%u)", d);
        st = t.d.device_info(t.d.user, d, info);
        if (st != LAM_OK) {
            cf_fail(c, "device_info(%u) failed: %s", d, g_err);
            break;
        }
        for (size_t i = sizeof(lam_device_info); i < sizeof buf; i++) {
            if (buf[i] != 0xA5) {
                cf_fail(c, "device_info(%u) wrote past struct_size", d);
                cf_expect(c, "nothing written after byte %zu", sizeof(lam_device_info));
                cf_found(c, "byte %zu changed", i);
                return;
            }
        }
        if (memchr(info->name, '\0', sizeof info->name) == NULL ||
            memchr(info->driver, '\0', sizeof info->driver) == NULL ||
            memchr(info->details, '\0', sizeof info->details) == NULL) {
            cf_fail(c, "device_info(%u) left a string without its terminating NUL", d);
            return;
        }
        if (info->name[0] == '\0' || info->kind <= LAM_DEVICE_INVALID ||
            info->kind >= LAM_DEVICE_KIND_COUNT) {
            cf_fail(c, "device %u: empty name or invalid kind", d);
            cf_expect(c, "a name and a kind in 1..%d", LAM_DEVICE_KIND_COUNT - 1);
            cf_found(c, "name '%s', kind %d", info->name, (int)info->kind);
            return;
        }
        size_t len = strlen(names);
        /* Truncation is fine: the names are only echoed in the report. */
        int w = snprintf(names + len, sizeof names - len, "%s%.64s(%u): %.100s", len ? "; " : "",
                         c->backend, d, info->name);
        (void)w;
        /* The header of an ABI 1.0 info only (up to kind): nothing after it may change. */
        memset(buf, 0xA5, sizeof buf);
        info->struct_size = (uint32_t)offsetof(lam_device_info, reserved);
        info->abi_version = LAM_ABI_VERSION;
        st = t.d.device_info(t.d.user, d, info);
        for (size_t i = offsetof(lam_device_info, reserved); i < sizeof buf; i++) {
            if (buf[i] != 0xA5) {
                cf_fail(c, "device_info(%u) with struct_size %zu wrote byte %zu", d,
                        offsetof(lam_device_info, reserved), i);
                cf_expect(c, "fields beyond struct_size left alone");
                cf_found(c, "byte %zu changed (status %s)", i, lam_status_string(st));
                return;
            }
        }
        void *dev = NULL;
        cf_note(c, "in device_open(%u)", d);
        st = t.d.device_open(t.d.user, d, &dev);
        if (st != LAM_OK || dev == NULL) {
            cf_fail(c, "device_open(%u) failed: %s", d, g_err);
            return;
        }
        /* Buffers: a 0-byte one, a write/read round trip at an offset, a copy. */
        void *b1 = NULL, *b2 = NULL, *b0 = NULL;
        float src[16], mid[16], dst[16];
        for (int i = 0; i < 16; i++) {
            src[i] = (float)i * 1.5f - 3.0f;
            dst[i] = 0.0f;
        }
        cf_note(c, "in buffer calls of device %u", d);
        st = t.d.buffer_alloc(dev, 0, &b0);
        if (st == LAM_OK) {
            st = t.d.buffer_alloc(dev, sizeof src, &b1);
        }
        if (st == LAM_OK) {
            st = t.d.buffer_alloc(dev, sizeof src, &b2);
        }
        if (st == LAM_OK) {
            st = t.d.buffer_write(dev, b1, 0, src, sizeof src);
        }
        if (st == LAM_OK) {
            st = t.d.buffer_copy(dev, b2, 4 * sizeof(float), b1, 0, 8 * sizeof(float));
        }
        if (st == LAM_OK) {
            st = t.d.buffer_read(dev, b1, 0, mid, sizeof mid);
        }
        if (st == LAM_OK) {
            st = t.d.buffer_read(dev, b2, 4 * sizeof(float), dst, 8 * sizeof(float));
        }
        if (st == LAM_OK) {
            st = t.d.synchronize(dev);
        }
        if (st != LAM_OK) {
            cf_fail(c, "buffer calls on device %u failed: %s", d, g_err);
        } else if (memcmp(mid, src, sizeof src) != 0 || memcmp(dst, src, 8 * sizeof(float)) != 0) {
            cf_fail(c, "buffer write/copy/read round trip on device %u lost data", d);
            cf_expect(c, "the bytes written");
            cf_found(c, "other bytes");
        }
        t.d.buffer_free(dev, b0);
        t.d.buffer_free(dev, b1);
        t.d.buffer_free(dev, b2);
        t.d.buffer_free(dev, NULL);
        t.d.device_close(dev);
    }
    if (!cf_failed(c)) {
        cf_pass(c, "%u device(s): %s; info within struct_size, buffers round-trip", n, names);
    }
}

/* Ops it does not know are answered as unsupported, never crash. */
static void check_unsupported(cf_ctx *c) {
    be t, ref;
    int rc = setup_pair(c, &t, &ref);
    if (rc != 0) {
        return;
    }
    const lam_op bogus[2] = {(lam_op)LAM_OP_COUNT, (lam_op)(LAM_OP_COUNT + 100)};
    for (int i = 0; i < 2 && !cf_failed(c); i++) {
        cf_note(c, "in supports_op(%d)", (int)bogus[i]);
        if (t.d.supports_op(t.dev, bogus[i], NULL)) {
            cf_fail(c, "supports_op claims op %d, which ABI %u.%u does not define", (int)bogus[i],
                    LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR);
            cf_expect(c, "0");
            cf_found(c, "nonzero");
        }
    }
    if (t.d.supports_op(t.dev, LAM_OP_INVALID, NULL)) {
        cf_fail(c, "supports_op claims LAM_OP_INVALID");
    }
    int n_sup = 0;
    char missing[800] = "";
    for (size_t i = 0; i < N_OPS; i++) {
        if (t.d.supports_op(t.dev, op_table[i].op, NULL)) {
            n_sup++;
        } else {
            size_t len = strlen(missing);
            snprintf(missing + len, sizeof missing - len, "%s%s", len ? ", " : "",
                     op_table[i].name);
        }
    }
    if (!cf_failed(c)) {
        cf_pass(c, "unknown ops refused; supports %d of %zu ops%s%s", n_sup, N_OPS,
                missing[0] ? "; not: " : "", missing);
    }
    t.d.device_close(t.dev);
    if (ref.dev != t.dev) {
        ref.d.device_close(ref.dev);
    }
}

void cf_backend_checks(const char *backend) {
    char name[160];
    snprintf(name, sizeof name, "%s.probe", backend);
    cf_add(name, check_probe, NULL, backend, 0);
    snprintf(name, sizeof name, "%s.unsupported", backend);
    cf_add(name, check_unsupported, NULL, backend, 0);
    for (size_t i = 0; i < N_OPS; i++) {
        snprintf(name, sizeof name, "%s.op.%s", backend, op_table[i].name);
        cf_add(name, check_op, NULL, backend, (int)i);
    }
}
