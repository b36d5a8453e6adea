/*
 * cpu_exec.c - supports, execute and run_kernel: every op call is checked before any kernel
 * touches memory, in full or cheaply (a validation layer, switched by LAMINA_VALIDATION).
 *
 * The host hands over well-formed calls: it builds every view from a tensor it owns. A backend
 * is also what the conformance kit throws bad input at, so on the validating device (opened
 * with LAMINA_VALIDATION=1, as conform, the sanitizer suite and the tests of this backend do)
 * every view is checked against the buffer it points into (byte offset and strides multiples
 * of the element size, every element inside, outputs not read-only) and turned into a cpu_view
 * with element strides; a wrong call is answered with an error, never with an out-of-bounds
 * access. On the default device execute keeps the checks that cost no loop over axes: the
 * call's struct, op, arity and operand pointers, each view's struct_size, rank and dtype, a
 * live buffer of this backend, a writable output, and every op's dtype, shape and parameter
 * checks; the per-axis checks (dims, strides, offset, bounds) are left to validation, as
 * Vulkan leaves them to its validation layer. supports() and run_kernel (plugin kernels' views
 * come from plugin code) always check in full; supports() runs without memory and without
 * messages, so it answers for the whole call (dtypes, shapes, parameters).
 */
#include "cpu_internal.h"

#include <stdio.h>
#include <string.h>

/* One past the last op this plugin implements; newer ops (a newer host's) are unsupported. */
#define CPU_OP_END ((int64_t)LAM_OP_LAYER_NORM_BACKWARD + 1)

/* The op as a signed number: the enum is 32 bits wide, and a negative op must read negative. */
static int64_t op_number(lam_op op) {
    return (int64_t)(int32_t)op;
}

static int op_known(lam_op op) {
    return op_number(op) > (int64_t)LAM_OP_INVALID && op_number(op) < CPU_OP_END;
}

/* Inputs (min..max) and outputs (min..max) each op takes. */
typedef struct arity {
    uint8_t in_min, in_max, out_min, out_max;
} arity;

static arity op_arity(lam_op op) {
    switch (op) {
    case LAM_OP_LAYER_NORM:
        return (arity){3, 3, 1, 3}; /* y, or y, mean, rstd */
    case LAM_OP_LAYER_NORM_BACKWARD:
        return (arity){5, 5, 1, 3}; /* dx, or dx, dgamma, dbeta */
    case LAM_OP_FILL:
    case LAM_OP_RANDOM:
        return (arity){0, 0, 1, 1};
    case LAM_OP_LINEAR:
        return (arity){2, 3, 1, 1};
    case LAM_OP_MAX_POOL:
        return (arity){1, 1, 1, 2}; /* the indices are optional (inference) */
    case LAM_OP_MOMENTS:
        return (arity){1, 1, 2, 2};
    case LAM_OP_CONV:
        return (arity){2, 3, 1, 1};
    case LAM_OP_CONV_BACKWARD_DATA:
        return (arity){2, 2, 1, 1};
    case LAM_OP_CONV_BACKWARD_WEIGHT:
        return (arity){2, 2, 1, 2};
    case LAM_OP_WHERE:
        return (arity){3, 3, 1, 1};
    case LAM_OP_GEMM_BATCHED:
    case LAM_OP_MAX_POOL_BACKWARD:
    case LAM_OP_GATHER_ROWS:
    case LAM_OP_SCATTER_ADD_ROWS:
        return (arity){2, 2, 1, 1};
    case LAM_OP_IM2COL:
    case LAM_OP_COL2IM:
    case LAM_OP_AVG_POOL:
    case LAM_OP_AVG_POOL_BACKWARD:
    case LAM_OP_PAD:
    case LAM_OP_CAST:
        return (arity){1, 1, 1, 1};
    default: {
        const uint8_t n = (uint8_t)lam_op_form_inputs(lam_op_form_of(op));
        return (arity){n, n, 1, 1};
    }
    }
}

static const char *const in_names[CPU_MAX_IN] = {"input 0", "input 1", "input 2", "input 3",
                                                 "input 4"};
static const char *const out_names[CPU_MAX_OUT] = {"output 0", "output 1", "output 2"};

/*
 * Checks one view and fills v: known dtype, rank, dims, byte offset and strides multiples of
 * the element size, and (with memory) a live buffer holding every element, writable for an
 * output. In a dry call a view without a buffer is checked for everything but memory.
 */
static lam_status make_view_checked(const lam_tensor_view *lv, cpu_view *v, const char *opname,
                                    const char *what, int dry, int output);

/*
 * The same checks for the common case, in one pass without branches per check: a view with
 * memory, no empty axis, every check passed. Anything else (an error, a dry call without a
 * buffer, an empty view) goes to make_view_checked, which finds and names the problem. Every
 * operand of every op passes here, so it is kept small (no stack frame for messages).
 */
/* Zeroes every axis of v (the kernels read only ndim of them; the rest stays defined) with
 * fixed 16-byte stores: a loop or a memset of this size becomes a `rep stos`, whose start-up
 * costs more than the stores, for every operand of every op. */
static inline void zero_axes(cpu_view *v) {
    static const int64_t zero[2] = {0, 0};
    _Static_assert(LAM_MAX_DIMS == 8, "zero_axes writes 8 axes");
    char *d = (char *)v->dims;
    char *s = (char *)v->st;
    memcpy(d, zero, 16);
    memcpy(d + 16, zero, 16);
    memcpy(d + 32, zero, 16);
    memcpy(d + 48, zero, 16);
    memcpy(s, zero, 16);
    memcpy(s + 16, zero, 16);
    memcpy(s + 32, zero, 16);
    memcpy(s + 48, zero, 16);
}

static inline lam_status make_view(const lam_tensor_view *lv, cpu_view *v, const char *opname,
                                   const char *what, int dry, int output, int full) {
    if (__builtin_expect(lv == NULL || lv->struct_size < sizeof(lam_tensor_view) ||
                             lv->ndim > LAM_MAX_DIMS,
                         0)) {
        return make_view_checked(lv, v, opname, what, dry, output);
    }
    const size_t esize = lam_dtype_size(lv->dtype);
    const cpu_buffer *b = lv->buffer;
    if (__builtin_expect(esize == 0 || b == NULL || b->magic != CPU_BUFFER_MAGIC ||
                             (output && b->read_only),
                         0)) {
        return make_view_checked(lv, v, opname, what, dry, output);
    }
    const int eshift = __builtin_ctzll((unsigned long long)esize);
    const uint32_t nd = lv->ndim;
    zero_axes(v);
    v->dtype = lv->dtype;
    v->ndim = nd;
    v->esize = esize;
    if (!full) { /* the cheap checks above; dims, strides and bounds are validation's */
        for (uint32_t d = 0; d < nd; d++) {
            v->dims[d] = lv->dims[d];
            v->st[d] = lv->strides[d] >> eshift;
        }
        v->data = b->data + lv->offset;
        return LAM_OK;
    }
    const uint64_t emask = (uint64_t)esize - 1;
    uint64_t end = lv->offset;
    int64_t count = 1;
    int bad = (end & emask) != 0 || end > (uint64_t)INT64_MAX;
    for (uint32_t d = 0; d < nd; d++) {
        const int64_t n = lv->dims[d];
        const int64_t s = lv->strides[d];
        int64_t span;
        bad |= (n <= 0) | (s < 0) | (((uint64_t)s & emask) != 0);
        bad |= __builtin_mul_overflow(count, n, &count);
        bad |= __builtin_mul_overflow(n - 1, s, &span);
        bad |= __builtin_add_overflow(end, (uint64_t)span, &end);
        v->dims[d] = n;
        v->st[d] = s >> eshift;
    }
    bad |= __builtin_add_overflow(end, (uint64_t)esize, &end);
    if (__builtin_expect(bad || end > b->bytes, 0)) {
        return make_view_checked(lv, v, opname, what, dry, output);
    }
    v->data = b->data + lv->offset;
    return LAM_OK;
}

__attribute__((noinline, cold)) static lam_status make_view_checked(const lam_tensor_view *lv,
                                                                    cpu_view *v, const char *opname,
                                                                    const char *what, int dry,
                                                                    int output) {
    if (lv == NULL || lv->struct_size < sizeof(lam_tensor_view)) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s %s is NULL or has struct_size %u < %zu", opname,
                         what, lv != NULL ? (unsigned)lv->struct_size : 0u,
                         sizeof(lam_tensor_view));
    }
    v->data = NULL;
    zero_axes(v);
    v->dtype = lv->dtype;
    v->esize = lam_dtype_size(lv->dtype);
    if (v->esize == 0) {
        return cpu_error(LAM_ERR_DTYPE, "cpu: Unsupported dtype, %s %s has dtype %d", opname, what,
                         (int)lv->dtype);
    }
    if (lv->ndim > LAM_MAX_DIMS) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, %s %s has ndim %u > %d",
                         opname, what, (unsigned)lv->ndim, LAM_MAX_DIMS);
    }
    v->ndim = lv->ndim;
    const int64_t es = (int64_t)v->esize;
    /* Element sizes are powers of two: masks and shifts instead of 64-bit divisions (this runs
     * for every operand of every op). */
    const int64_t emask = es - 1;
    const int eshift = __builtin_ctzll((unsigned long long)es);
    int empty = 0;
    int64_t count = 1;
    for (uint32_t d = 0; d < lv->ndim; d++) {
        v->dims[d] = lv->dims[d];
        if (lv->dims[d] < 0) {
            char dims[160];
            return cpu_error(LAM_ERR_SHAPE, "cpu: Invalid shape, %s %s has dims %s", opname, what,
                             lam_dims_format(dims, sizeof dims, lv->ndim, lv->dims));
        }
        if (lv->strides[d] < 0 || (lv->strides[d] & emask) != 0) {
            return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                             "cpu: Invalid stride, %s %s has byte stride %lld on axis %u, not a "
                             "non-negative multiple of its element size %lld",
                             opname, what, (long long)lv->strides[d], (unsigned)d, (long long)es);
        }
        v->st[d] = lv->strides[d] >> eshift;
        if (lv->dims[d] == 0) {
            empty = 1;
        } else if (__builtin_mul_overflow(count, lv->dims[d], &count)) {
            return cpu_error(LAM_ERR_SHAPE, "cpu: Invalid shape, %s %s has too many elements",
                             opname, what);
        }
    }
    if ((lv->offset & (uint64_t)emask) != 0) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid offset, %s %s has byte offset %llu, not a multiple of its "
                         "element size %lld",
                         opname, what, (unsigned long long)lv->offset, (long long)es);
    }
    const cpu_buffer *b = lv->buffer;
    if (dry && b == NULL) {
        return LAM_OK;
    }
    if (b == NULL || b->magic != CPU_BUFFER_MAGIC) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s %s does not point to a live cpu buffer", opname,
                         what);
    }
    if (output && b->read_only) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Read-only buffer, %s %s lies in a buffer over read-only host "
                         "memory",
                         opname, what);
    }
    /* The byte just past the highest element, with overflow checks. */
    uint64_t end = lv->offset;
    int bad = end > (uint64_t)INT64_MAX;
    for (uint32_t d = 0; d < lv->ndim && !bad && !empty; d++) {
        int64_t span;
        bad = __builtin_mul_overflow(lv->dims[d] - 1, lv->strides[d], &span) ||
              __builtin_add_overflow(end, (uint64_t)span, &end);
    }
    if (!empty && !bad) {
        bad = __builtin_add_overflow(end, (uint64_t)es, &end);
    }
    if (!empty && (bad || end > b->bytes)) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Out of bounds, %s %s (offset %llu) reaches outside its %zu-byte "
                         "buffer",
                         opname, what, (unsigned long long)lv->offset, b->bytes);
    }
    v->data = b->data + lv->offset;
    return LAM_OK;
}

static lam_status dims_error(const cpu_call *c, const char *what, const cpu_view *v,
                             const char *expected_what, const cpu_view *e) {
    char got[160];
    char want[160];
    return cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s %s has dims %s, %s has %s", c->name,
                     what, lam_dims_format(got, sizeof got, v->ndim, v->dims), expected_what,
                     lam_dims_format(want, sizeof want, e->ndim, e->dims));
}

static int same_dims(const cpu_view *a, const cpu_view *b) {
    if (a->ndim != b->ndim) {
        return 0;
    }
    for (uint32_t d = 0; d < a->ndim; d++) {
        if (a->dims[d] != b->dims[d]) {
            return 0;
        }
    }
    return 1;
}

static lam_status check_rank(const cpu_call *c, const char *what, const cpu_view *v,
                             uint32_t ndim) {
    if (v->ndim != ndim) {
        char dims[160];
        return cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s needs a %u-D %s, got dims %s",
                         c->name, (unsigned)ndim, what,
                         lam_dims_format(dims, sizeof dims, v->ndim, v->dims));
    }
    return LAM_OK;
}

static lam_status dtype_error(const cpu_call *c, const char *what, const cpu_view *v,
                              const char *allowed) {
    return cpu_error(LAM_ERR_DTYPE,
                     "cpu: Unsupported dtype, %s %s has dtype %d; the cpu backend takes %s there",
                     c->name, what, (int)v->dtype, allowed);
}

/* Every operand F32, except COPY (any dtype, the same in and out) and ARGMAX's output. */
static lam_status check_dtypes_v1(const cpu_call *c) {
    for (uint32_t i = 0; i < c->n_in; i++) {
        if (c->op == LAM_OP_COPY) {
            if (c->in[0].dtype != c->out[0].dtype) {
                return dtype_error(c, "input 0", &c->in[0], "the output's dtype");
            }
        } else if (c->in[i].dtype != LAM_DTYPE_F32) {
            return dtype_error(c, in_names[i], &c->in[i], "float32");
        }
    }
    const lam_dtype od = c->out[0].dtype;
    if (c->op == LAM_OP_ARGMAX) {
        if (od != LAM_DTYPE_F32 && od != LAM_DTYPE_I32 && od != LAM_DTYPE_I64) {
            return dtype_error(c, "output", &c->out[0], "float32, int32 or int64");
        }
    } else if (c->op != LAM_OP_COPY && od != LAM_DTYPE_F32) {
        return dtype_error(c, "output", &c->out[0], "float32");
    }
    return LAM_OK;
}

static lam_status missing_params(const cpu_call *c, const char *type) {
    return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                     "cpu: Invalid argument, %s needs its parameters (%s, struct_size set)",
                     c->name, type);
}

/* op(A) op(B) into C on 2-D views (rank and dims). */
static lam_status check_gemm_dims(const cpu_call *c, const cpu_view *a, const cpu_view *b,
                                  const cpu_view *o, int ta, int tb) {
    const int64_t m = ta ? a->dims[1] : a->dims[0];
    const int64_t ka = ta ? a->dims[0] : a->dims[1];
    const int64_t kb = tb ? b->dims[1] : b->dims[0];
    const int64_t n = tb ? b->dims[0] : b->dims[1];
    if (ka != kb || m != o->dims[0] || n != o->dims[1]) {
        char da[64];
        char db[64];
        char dc[64];
        return cpu_error(LAM_ERR_SHAPE,
                         "cpu: Shape mismatch, %s of A %s%s and B %s%s into output %s", c->name,
                         lam_dims_format(da, sizeof da, 2, a->dims), ta ? " transposed" : "",
                         lam_dims_format(db, sizeof db, 2, b->dims), tb ? " transposed" : "",
                         lam_dims_format(dc, sizeof dc, 2, o->dims));
    }
    return LAM_OK;
}

/* The 2-D matrix `index` of a 3-D view along its first axis. */
static cpu_view batch_slice(const cpu_view *v, int64_t index) {
    cpu_view s = *v;
    s.ndim = 2;
    s.dims[0] = v->dims[1];
    s.dims[1] = v->dims[2];
    s.st[0] = v->st[1];
    s.st[1] = v->st[2];
    if (s.data != NULL) {
        s.data += (size_t)(index * v->st[0]) * v->esize;
    }
    return s;
}

static lam_status gemm_family(const cpu_device *dev, const cpu_call *c) {
    const lam_gemm_params *p = lam_op_params(c, lam_gemm_params);
    if (p == NULL) {
        return missing_params(c, "lam_gemm_params");
    }
    for (uint32_t i = 0; i < c->n_in; i++) {
        if (c->in[i].dtype != LAM_DTYPE_F32) {
            return dtype_error(c, in_names[i], &c->in[i], "float32");
        }
    }
    if (c->out[0].dtype != LAM_DTYPE_F32) {
        return dtype_error(c, "output", &c->out[0], "float32");
    }
    const int ta = (p->flags & LAM_GEMM_TRANS_A) != 0;
    const int tb = (p->flags & LAM_GEMM_TRANS_B) != 0;
    const uint32_t rank = c->op == LAM_OP_GEMM_BATCHED ? 3 : 2;
    lam_status st = check_rank(c, "input 0 (A)", &c->in[0], rank);
    if (st == LAM_OK) {
        st = check_rank(c, "input 1 (B)", &c->in[1], rank);
    }
    if (st == LAM_OK) {
        st = check_rank(c, "output", &c->out[0], rank);
    }
    if (st != LAM_OK) {
        return st;
    }
    if (c->op == LAM_OP_GEMM_BATCHED) {
        const int64_t batch = c->out[0].dims[0];
        /* A batch of 1 is shared like a batch stride of 0 (as the Vulkan backend takes it). */
        cpu_view av = c->in[0];
        cpu_view bv = c->in[1];
        av.st[0] = av.dims[0] == 1 ? 0 : av.st[0];
        bv.st[0] = bv.dims[0] == 1 ? 0 : bv.st[0];
        if ((av.dims[0] != batch && av.dims[0] != 1) || (bv.dims[0] != batch && bv.dims[0] != 1)) {
            return cpu_error(LAM_ERR_SHAPE,
                             "cpu: Shape mismatch, %s batch sizes differ: A %lld, B %lld, output "
                             "%lld",
                             c->name, (long long)av.dims[0], (long long)bv.dims[0],
                             (long long)batch);
        }
        const cpu_view a0 = batch_slice(&av, 0);
        const cpu_view b0 = batch_slice(&bv, 0);
        const cpu_view o0 = batch_slice(&c->out[0], 0);
        st = check_gemm_dims(c, &a0, &b0, &o0, ta, tb);
        if (st != LAM_OK || c->dry) {
            return st;
        }
        /* One GEMM per batch element: batches never mix, so a NaN stays in its own. */
        for (int64_t i = 0; i < batch && st == LAM_OK; i++) {
            const cpu_view a = batch_slice(&av, i);
            const cpu_view b = batch_slice(&bv, i);
            const cpu_view o = batch_slice(&c->out[0], i);
            st = cpu_gemm(dev, ta, tb, (float)p->alpha, (float)p->beta, &a, &b, &o);
        }
        return st;
    }
    st = check_gemm_dims(c, &c->in[0], &c->in[1], &c->out[0], ta, tb);
    if (st != LAM_OK) {
        return st;
    }
    if (c->op == LAM_OP_GEMM) {
        return c->dry ? LAM_OK
                      : cpu_gemm(dev, ta, tb, (float)p->alpha, (float)p->beta, &c->in[0], &c->in[1],
                                 &c->out[0]);
    }
    if (c->n_in == 3 && (c->in[2].ndim != 1 || c->in[2].dims[0] != c->out[0].dims[1])) {
        return cpu_error(LAM_ERR_SHAPE,
                         "cpu: Shape mismatch, %s bias has %u dims (%lld), expected 1 dim of %lld",
                         c->name, (unsigned)c->in[2].ndim,
                         (long long)(c->in[2].ndim ? c->in[2].dims[0] : 0),
                         (long long)c->out[0].dims[1]);
    }
    const lam_op act = p->act;
    if (act != LAM_OP_INVALID && act != LAM_OP_RELU && act != LAM_OP_SIGMOID &&
        act != LAM_OP_TANH && act != LAM_OP_SOFTRELU) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s activation %lld is not none, relu, sigmoid, "
                         "tanh or softrelu",
                         c->name, (long long)op_number(act));
    }
    if (c->dry) {
        return LAM_OK;
    }
    st = cpu_gemm(dev, ta, tb, 1.0f, 0.0f, &c->in[0], &c->in[1], &c->out[0]);
    return st == LAM_OK ? cpu_linear_epilogue(c, act) : st;
}

/* FILL, the *_SCALAR ops, AXPBY and CLAMP read lam_scalar_params. */
static int needs_scalars(lam_op op) {
    return op == LAM_OP_FILL || (op >= LAM_OP_ADD_SCALAR && op <= LAM_OP_POW_SCALAR) ||
           op == LAM_OP_AXPBY || op == LAM_OP_CLAMP;
}

/* The 1.0 forms other than GEMM and LINEAR: dims by form, then the op's loops. */
static lam_status form_family(const cpu_call *c, lam_op_form form) {
    lam_status st = check_dtypes_v1(c);
    if (st != LAM_OK) {
        return st;
    }
    const cpu_view *out = &c->out[0];
    switch (form) {
    case LAM_OP_FORM_FILL:
    case LAM_OP_FORM_UNARY:
    case LAM_OP_FORM_BINARY:
        for (uint32_t i = 0; i < c->n_in; i++) {
            if (!same_dims(&c->in[i], out)) {
                return dims_error(c, in_names[i], &c->in[i], "output", out);
            }
        }
        if (needs_scalars(c->op) && lam_op_params(c, lam_scalar_params) == NULL) {
            return missing_params(c, "lam_scalar_params");
        }
        return c->dry ? LAM_OK : cpu_elementwise(c);
    case LAM_OP_FORM_REDUCE:
        st = check_rank(c, "input", &c->in[0], 3);
        if (st == LAM_OK) {
            st = check_rank(c, "output", out, 3);
        }
        if (st == LAM_OK && (out->dims[0] != c->in[0].dims[0] || out->dims[1] != 1 ||
                             out->dims[2] != c->in[0].dims[2])) {
            char want[160];
            char got[160];
            const int64_t *xd = c->in[0].dims;
            const int64_t expect[3] = {xd[0], 1, xd[2]};
            st = cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s output has dims %s, expected %s",
                           c->name, lam_dims_format(got, sizeof got, 3, out->dims),
                           lam_dims_format(want, sizeof want, 3, expect));
        }
        break;
    case LAM_OP_FORM_SOFTMAX:
        st = check_rank(c, "input", &c->in[0], 3);
        if (st == LAM_OK && !same_dims(&c->in[0], out)) {
            st = dims_error(c, "input", &c->in[0], "output", out);
        }
        break;
    default:
        return cpu_error(LAM_ERR_INTERNAL, "cpu: Internal error, %s has no form", c->name);
    }
    if (st != LAM_OK || c->dry) {
        return st;
    }
    return cpu_reduce(c);
}

/* MOMENTS: F32, x (outer, n, inner), both outputs (outer, 1, inner). */
static lam_status moments_family(const cpu_call *c) {
    lam_status st = LAM_OK;
    const char *const what[3] = {"input", "output 0 (mean)", "output 1 (variance)"};
    const cpu_view *v[3] = {&c->in[0], &c->out[0], &c->out[1]};
    for (int i = 0; i < 3 && st == LAM_OK; i++) {
        if (v[i]->dtype != LAM_DTYPE_F32) {
            return dtype_error(c, what[i], v[i], "float32");
        }
        st = check_rank(c, what[i], v[i], 3);
    }
    for (int i = 1; i < 3 && st == LAM_OK; i++) {
        if (v[i]->dims[0] != v[0]->dims[0] || v[i]->dims[1] != 1 ||
            v[i]->dims[2] != v[0]->dims[2]) {
            char want[160];
            char got[160];
            const int64_t expect[3] = {v[0]->dims[0], 1, v[0]->dims[2]};
            st = cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s %s has dims %s, expected %s",
                           c->name, what[i], lam_dims_format(got, sizeof got, 3, v[i]->dims),
                           lam_dims_format(want, sizeof want, 3, expect));
        }
    }
    if (st != LAM_OK || c->dry) {
        return st;
    }
    return cpu_reduce(c);
}

/* Builds the checked call (arity, views) and runs the op's family (checks only when dry). */
static lam_status run_call(const cpu_device *dev, const lam_op_call *call, int dry) {
    if (call == NULL || call->struct_size < sizeof(lam_op_call)) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, op call is NULL or has struct_size %u < %zu",
                         call != NULL ? (unsigned)call->struct_size : 0u, sizeof(lam_op_call));
    }
    if (!op_known(call->op)) {
        if (op_number(call->op) >= CPU_OP_END) {
            return cpu_error(LAM_ERR_UNSUPPORTED,
                             "cpu: Unsupported op, op %lld is newer than this plugin (it knows "
                             "ops 1 to %lld)",
                             (long long)op_number(call->op), (long long)CPU_OP_END - 1);
        }
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, unknown op %lld",
                         (long long)op_number(call->op));
    }
    cpu_call c; /* the operand views are filled (and zeroed) by make_view as they are used */
    c.n_in = c.n_out = 0;
    c.op = call->op;
    c.flags = call->flags;
    c.name = lam_op_name(call->op);
    c.dry = dry;
    c.params = call->params;
    const arity ar = op_arity(call->op);
    if (call->n_inputs < ar.in_min || call->n_inputs > ar.in_max || call->n_outputs < ar.out_min ||
        call->n_outputs > ar.out_max || (call->n_inputs > 0 && call->inputs == NULL) ||
        call->outputs == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s takes %u to %u inputs and %u to %u outputs, "
                         "got %u and %u%s%s",
                         c.name, (unsigned)ar.in_min, (unsigned)ar.in_max, (unsigned)ar.out_min,
                         (unsigned)ar.out_max, (unsigned)call->n_inputs, (unsigned)call->n_outputs,
                         call->n_inputs > 0 && call->inputs == NULL ? ", inputs NULL" : "",
                         call->outputs == NULL ? ", outputs NULL" : "");
    }
    c.n_in = call->n_inputs;
    c.n_out = call->n_outputs;
    lam_status st = LAM_OK;
    const int full = dry || dev->validate;
    for (uint32_t i = 0; i < c.n_out && st == LAM_OK; i++) {
        st = make_view(call->outputs[i], &c.out[i], c.name, out_names[i], dry, 1, full);
    }
    for (uint32_t i = 0; i < c.n_in && st == LAM_OK; i++) {
        st = make_view(call->inputs[i], &c.in[i], c.name, in_names[i], dry, 0, full);
    }
    if (st != LAM_OK) {
        return st;
    }
    switch (call->op) {
    case LAM_OP_LAYER_NORM:
    case LAM_OP_LAYER_NORM_BACKWARD:
        return cpu_layer_norm(&c);
    case LAM_OP_GEMM:
    case LAM_OP_LINEAR:
    case LAM_OP_GEMM_BATCHED:
        return gemm_family(dev, &c);
    case LAM_OP_IM2COL:
    case LAM_OP_COL2IM:
    case LAM_OP_MAX_POOL:
    case LAM_OP_MAX_POOL_BACKWARD:
    case LAM_OP_AVG_POOL:
    case LAM_OP_AVG_POOL_BACKWARD:
        return cpu_window(&c);
    case LAM_OP_GATHER_ROWS:
    case LAM_OP_SCATTER_ADD_ROWS:
    case LAM_OP_WHERE:
    case LAM_OP_PAD:
    case LAM_OP_CAST:
        return cpu_index(&c);
    case LAM_OP_RANDOM:
        return cpu_random(&c);
    case LAM_OP_MOMENTS:
        return moments_family(&c);
    case LAM_OP_CONV:
    case LAM_OP_CONV_BACKWARD_DATA:
    case LAM_OP_CONV_BACKWARD_WEIGHT:
        return cpu_conv(&c);
    default:
        return form_family(&c, lam_op_form_of(call->op));
    }
}

int32_t cpu_supports(void *dev, const lam_op_call *call) {
    if (dev == NULL || ((const cpu_device *)dev)->magic != CPU_DEVICE_MAGIC || call == NULL) {
        return 0;
    }
    const int was = cpu_quiet(1);
    const lam_status st = run_call(dev, call, 1);
    cpu_quiet(was);
    return st == LAM_OK;
}

lam_status cpu_execute(void *dev, const lam_op_call *call) {
    lam_status st = cpu_check_dev(dev);
    return st == LAM_OK ? run_call(dev, call, 0) : st;
}

/* Kernel operands whose `data` this backend sets; at most this many per run. */
#define CPU_KERNEL_OPERANDS 16

static lam_status kernel_operands(const char *impl_name, const lam_kernel_operand *const *src,
                                  uint32_t n, int output, lam_kernel_operand *dst,
                                  const lam_kernel_operand **ptrs) {
    for (uint32_t i = 0; i < n; i++) {
        if (src == NULL || src[i] == NULL || src[i]->view == NULL) {
            return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                             "cpu: Invalid argument, kernel %s %s %u has no view", impl_name,
                             output ? "output" : "input", (unsigned)i);
        }
        cpu_view v;
        v.data = NULL;
        char what[32];
        snprintf(what, sizeof what, "%s %u", output ? "output" : "input", (unsigned)i);
        lam_status st = make_view(src[i]->view, &v, "kernel", what, 0, output, 1);
        if (st != LAM_OK) {
            return st;
        }
        dst[i] = *src[i];
        dst[i].struct_size = (uint32_t)sizeof(lam_kernel_operand);
        dst[i].data = v.data;
        ptrs[i] = &dst[i];
    }
    return LAM_OK;
}

lam_status cpu_run_kernel(void *dev, const struct lam_kernel_impl *impl, void *user,
                          const void *params, const lam_kernel_args *args) {
    lam_status st = cpu_check_dev(dev);
    if (st != LAM_OK) {
        return st;
    }
    if (impl == NULL || impl->struct_size < offsetof(lam_kernel_impl, spirv) || impl->run == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, kernel implementation is NULL or has no run");
    }
    if (args == NULL || args->n_inputs > CPU_KERNEL_OPERANDS ||
        args->n_outputs > CPU_KERNEL_OPERANDS) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, kernel arguments are NULL or have more than %d "
                         "inputs or outputs",
                         CPU_KERNEL_OPERANDS);
    }
    lam_kernel_operand in[CPU_KERNEL_OPERANDS];
    lam_kernel_operand out[CPU_KERNEL_OPERANDS];
    const lam_kernel_operand *in_ptrs[CPU_KERNEL_OPERANDS];
    const lam_kernel_operand *out_ptrs[CPU_KERNEL_OPERANDS];
    const char *name = impl->backend != NULL ? impl->backend : "cpu";
    st = kernel_operands(name, args->inputs, args->n_inputs, 0, in, in_ptrs);
    if (st == LAM_OK) {
        st = kernel_operands(name, args->outputs, args->n_outputs, 1, out, out_ptrs);
    }
    if (st != LAM_OK) {
        return st;
    }
    lam_kernel_args hosted = *args;
    hosted.struct_size = (uint32_t)sizeof(lam_kernel_args);
    hosted.inputs = in_ptrs;
    hosted.outputs = out_ptrs;
    return impl->run(user, params, &hosted);
}
