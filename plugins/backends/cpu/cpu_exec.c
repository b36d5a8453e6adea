/*
 * cpu_exec.c - supports_op and execute: checks every op call before any kernel touches memory.
 *
 * The host is expected to hand over well-formed calls, but a backend is also what the
 * conformance kit throws bad input at, so every view is checked against the buffer it points
 * into: a wrong call is answered with an error, never with an out-of-bounds access.
 */
#include "cpu_internal.h"

#include <stdio.h>

/*
 * One past the last op this plugin implements. The host's enum may have grown since (ops are
 * appended): newer ops are answered as unsupported, never looked up in the tables below.
 */
#define CPU_OP_END ((int64_t)LAM_OP_LINEAR + 1)

/* The op as a signed number: the enum is 32 bits wide, and a negative op must read negative. */
static int64_t op_number(lam_op op) {
    return (int64_t)(int32_t)op;
}

/* Nonzero for the ops this plugin implements. */
static int op_known(lam_op op) {
    return op_number(op) > (int64_t)LAM_OP_INVALID && op_number(op) < CPU_OP_END;
}

int32_t cpu_supports_op(void *dev, lam_op op, const lam_op_call *call) {
    (void)dev;
    if (!op_known(op)) {
        return 0;
    }
    if (call == NULL) {
        return 1;
    }
    if (call->output != NULL && call->output->dtype != LAM_DTYPE_F32) {
        return 0;
    }
    if (call->inputs != NULL) {
        for (uint32_t i = 0; i < call->n_inputs && i < 2; i++) { /* no op takes more */
            if (call->inputs[i].dtype != LAM_DTYPE_F32) {
                return 0;
            }
        }
    }
    return 1;
}

/* Checks one view: dtype, rank, dims, buffer handle, and that every element lies inside. */
static lam_status check_view(const lam_tensor_view *v, const char *opname, const char *what) {
    if (v->dtype != LAM_DTYPE_F32) {
        return cpu_error(LAM_ERR_DTYPE,
                         "cpu: Unsupported dtype, %s %s has dtype %d; the cpu backend computes "
                         "float32 only",
                         opname, what, (int)v->dtype);
    }
    if (v->ndim > LAM_MAX_DIMS) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, %s %s has ndim %u > %d",
                         opname, what, (unsigned)v->ndim, LAM_MAX_DIMS);
    }
    const cpu_buffer *b = v->buffer;
    if (b == NULL || b->magic != CPU_BUFFER_MAGIC) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s %s does not point to a live cpu buffer", opname,
                         what);
    }
    int empty = 0;
    int64_t count = 1;
    for (uint32_t d = 0; d < v->ndim; d++) {
        if (v->dims[d] < 0) {
            char dims[160];
            return cpu_error(LAM_ERR_SHAPE, "cpu: Invalid shape, %s %s has dims %s", opname, what,
                             lam_dims_format(dims, sizeof dims, v->ndim, v->dims));
        }
        if (v->dims[d] == 0) {
            empty = 1;
        } else if (__builtin_mul_overflow(count, v->dims[d], &count)) {
            return cpu_error(LAM_ERR_SHAPE, "cpu: Invalid shape, %s %s has too many elements",
                             opname, what);
        }
    }
    if (empty) {
        return LAM_OK; /* no element is touched */
    }
    /* Lowest and highest element reached, with overflow checks (strides may be negative). */
    int64_t lo = 0;
    int64_t hi = 0;
    int bad = v->offset > (uint64_t)INT64_MAX;
    if (!bad) {
        lo = hi = (int64_t)v->offset;
    }
    for (uint32_t d = 0; d < v->ndim && !bad; d++) {
        int64_t span;
        if (__builtin_mul_overflow(v->dims[d] - 1, v->strides[d], &span)) {
            bad = 1;
        } else if (span > 0) {
            bad = __builtin_add_overflow(hi, span, &hi);
        } else {
            bad = __builtin_add_overflow(lo, span, &lo);
        }
    }
    uint64_t capacity = (uint64_t)(b->bytes / sizeof(float));
    if (bad || lo < 0 || (uint64_t)hi >= capacity) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Out of bounds, %s %s (offset %llu) reaches outside its %zu-byte "
                         "buffer",
                         opname, what, (unsigned long long)v->offset, b->bytes);
    }
    return LAM_OK;
}

static lam_status shape_error(const char *opname, const char *what, const lam_tensor_view *v,
                              const char *expected_what, const lam_tensor_view *e) {
    char got[160];
    char want[160];
    return cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s %s has dims %s, %s has %s", opname,
                     what, lam_dims_format(got, sizeof got, v->ndim, v->dims), expected_what,
                     lam_dims_format(want, sizeof want, e->ndim, e->dims));
}

static int same_dims(const lam_tensor_view *a, const lam_tensor_view *b) {
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

static lam_status check_rank(const char *opname, const char *what, const lam_tensor_view *v,
                             uint32_t ndim) {
    if (v->ndim != ndim) {
        char dims[160];
        return cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s needs a %u-D %s, got dims %s",
                         opname, (unsigned)ndim, what,
                         lam_dims_format(dims, sizeof dims, v->ndim, v->dims));
    }
    return LAM_OK;
}

static lam_status check_gemm(const lam_op_call *call, const char *opname) {
    const lam_tensor_view *a = &call->inputs[0];
    const lam_tensor_view *b = &call->inputs[1];
    const lam_tensor_view *c = call->output;
    lam_status st = check_rank(opname, "input 0 (A)", a, 2);
    if (st == LAM_OK) {
        st = check_rank(opname, "input 1 (B)", b, 2);
    }
    if (st == LAM_OK) {
        st = check_rank(opname, "output", c, 2);
    }
    if (st != LAM_OK) {
        return st;
    }
    int ta = call->ints[0] != 0;
    int tb = call->ints[1] != 0;
    int64_t m = ta ? a->dims[1] : a->dims[0];
    int64_t ka = ta ? a->dims[0] : a->dims[1];
    int64_t kb = tb ? b->dims[1] : b->dims[0];
    int64_t n = tb ? b->dims[0] : b->dims[1];
    if (ka != kb || m != c->dims[0] || n != c->dims[1]) {
        char da[64];
        char db[64];
        char dc[64];
        return cpu_error(LAM_ERR_SHAPE,
                         "cpu: Shape mismatch, %s of A %s%s and B %s%s into output %s", opname,
                         lam_dims_format(da, sizeof da, 2, a->dims), ta ? " transposed" : "",
                         lam_dims_format(db, sizeof db, 2, b->dims), tb ? " transposed" : "",
                         lam_dims_format(dc, sizeof dc, 2, c->dims));
    }
    return LAM_OK;
}

lam_status cpu_execute(void *dev, const lam_op_call *call) {
    if (dev == NULL || ((const cpu_device *)dev)->magic != CPU_DEVICE_MAGIC) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT, "cpu: Invalid argument, not a cpu device");
    }
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
    const char *opname = lam_op_name(call->op);
    lam_op_form kind = lam_op_form_of(call->op);
    uint32_t arity = lam_op_form_inputs(kind);
    if (kind == LAM_OP_FORM_LINEAR && call->n_inputs == 2) {
        arity = 2; /* no bias */
    }
    if (call->n_inputs != arity || (arity > 0 && call->inputs == NULL) || call->output == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, %s takes %u input%s and an output, got %u "
                         "input%s%s%s",
                         opname, (unsigned)arity, arity == 1 ? "" : "s", (unsigned)call->n_inputs,
                         call->n_inputs == 1 ? "" : "s",
                         arity > 0 && call->inputs == NULL ? ", inputs NULL" : "",
                         call->output == NULL ? ", output NULL" : "");
    }
    static const char *const input_names[3] = {"input 0", "input 1", "input 2 (bias)"};
    lam_status st = check_view(call->output, opname, "output");
    for (uint32_t i = 0; i < arity && st == LAM_OK; i++) {
        st = check_view(&call->inputs[i], opname, input_names[i]);
    }
    if (st != LAM_OK) {
        return st;
    }
    const lam_tensor_view *out = call->output;
    switch (kind) {
    case LAM_OP_FORM_INVALID:
    case LAM_OP_FORM_MAX_ENUM: /* op_known() admits only ops this plugin implements */
        return cpu_error(LAM_ERR_INTERNAL, "cpu: Internal error, op %lld has no form",
                         (long long)op_number(call->op));
    case LAM_OP_FORM_FILL:
        break;
    case LAM_OP_FORM_UNARY:
    case LAM_OP_FORM_BINARY:
        for (uint32_t i = 0; i < arity; i++) {
            if (!same_dims(&call->inputs[i], out)) {
                return shape_error(opname, input_names[i], &call->inputs[i], "output", out);
            }
        }
        break;
    case LAM_OP_FORM_GEMM:
        st = check_gemm(call, opname);
        break;
    case LAM_OP_FORM_LINEAR:
        st = check_gemm(call, opname);
        if (st == LAM_OK && arity == 3 &&
            (call->inputs[2].ndim != 1 || call->inputs[2].dims[0] != out->dims[1])) {
            st = cpu_error(LAM_ERR_SHAPE,
                           "cpu: Shape mismatch, %s bias has %u dims (%lld), "
                           "expected 1 dim of %lld",
                           opname, (unsigned)call->inputs[2].ndim,
                           (long long)(call->inputs[2].ndim ? call->inputs[2].dims[0] : 0),
                           (long long)out->dims[1]);
        }
        if (st == LAM_OK) {
            int64_t act = call->ints[2];
            if (act != LAM_OP_INVALID && act != LAM_OP_RELU && act != LAM_OP_SIGMOID &&
                act != LAM_OP_TANH && act != LAM_OP_SOFTRELU) {
                st = cpu_error(LAM_ERR_INVALID_ARGUMENT,
                               "cpu: Invalid argument, %s activation %lld is not none, relu, "
                               "sigmoid, tanh or softrelu",
                               opname, (long long)act);
            }
        }
        break;
    case LAM_OP_FORM_REDUCE:
        st = check_rank(opname, "input", &call->inputs[0], 3);
        if (st == LAM_OK) {
            st = check_rank(opname, "output", out, 3);
        }
        if (st == LAM_OK && (out->dims[0] != call->inputs[0].dims[0] || out->dims[1] != 1 ||
                             out->dims[2] != call->inputs[0].dims[2])) {
            char want[160];
            char got[160];
            const int64_t *xd = call->inputs[0].dims;
            const int64_t expect[3] = {xd[0], 1, xd[2]};
            st = cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s output has dims %s, expected %s",
                           opname, lam_dims_format(got, sizeof got, 3, out->dims),
                           lam_dims_format(want, sizeof want, 3, expect));
        }
        break;
    case LAM_OP_FORM_SOFTMAX:
        st = check_rank(opname, "input", &call->inputs[0], 3);
        if (st == LAM_OK && !same_dims(&call->inputs[0], out)) {
            st = shape_error(opname, "input", &call->inputs[0], "output", out);
        }
        break;
    }
    if (st != LAM_OK) {
        return st;
    }
    switch (kind) {
    case LAM_OP_FORM_GEMM:
        return cpu_gemm(dev, call);
    case LAM_OP_FORM_LINEAR: {
        lam_op_call g = *call;
        g.op = LAM_OP_GEMM;
        g.n_inputs = 2;
        g.scalars[0] = 1.0;
        g.scalars[1] = 0.0;
        st = cpu_gemm(dev, &g);
        return st == LAM_OK ? cpu_linear_epilogue(call) : st;
    }
    case LAM_OP_FORM_REDUCE:
    case LAM_OP_FORM_SOFTMAX:
        return cpu_reduce(call);
    default:
        return cpu_elementwise(call);
    }
}
