/*
 * vk_exec.c - supports_op and execute: checks every op call, then records its dispatches.
 *
 * Every view is checked against its buffer before anything is recorded (a bad call gets an
 * error, never an out-of-bounds access on the device); then the kernel of the op's form
 * records it (vk_elementwise.c, vk_kernels.c), binding each operand as the window of its
 * buffer that it touches (vk_pipeline.c). Level 7: above the kernels, below vk_backend.
 */
#include "vk_exec.h"

#include "vk_elementwise.h"
#include "vk_kernels.h"
#include "vk_queue.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define VK_OP_END ((int64_t)LAM_OP_LINEAR + 1)

static int64_t op_number(lam_op op) {
    return (int64_t)(int32_t)op;
}

static int op_known(lam_op op) {
    return op_number(op) > (int64_t)LAM_OP_INVALID && op_number(op) < VK_OP_END;
}

int32_t vk_supports_op(void *dev, lam_op op, const lam_op_call *call) {
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
        for (uint32_t i = 0; i < call->n_inputs && i < 2; i++) {
            if (call->inputs[i].dtype != LAM_DTYPE_F32) {
                return 0;
            }
        }
    }
    return 1;
}

/* ---- checking views ---- */

static lam_status check_view(vk_device *d, const lam_tensor_view *v, const char *opname,
                             const char *what, vk_view *out) {
    memset(out, 0, sizeof *out);
    if (v->dtype != LAM_DTYPE_F32) {
        return vk_error(LAM_ERR_DTYPE,
                        "vulkan: Unsupported dtype, %s %s has dtype %d; the vulkan backend "
                        "computes float32 only",
                        opname, what, (int)v->dtype);
    }
    if (v->ndim > LAM_MAX_DIMS) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, %s %s has ndim %u > %d", opname, what,
                        (unsigned)v->ndim, LAM_MAX_DIMS);
    }
    vk_buffer *b = v->buffer;
    if (b == NULL || b->magic != VK_BUFFER_MAGIC || b->dev != d) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, %s %s does not point to a live buffer of "
                        "this vulkan device",
                        opname, what);
    }
    out->buf = b;
    int64_t count = 1;
    for (uint32_t i = 0; i < v->ndim; i++) {
        if (v->dims[i] < 0) {
            char dims[160];
            return vk_error(LAM_ERR_SHAPE, "vulkan: Invalid shape, %s %s has dims %s", opname, what,
                            lam_dims_format(dims, sizeof dims, v->ndim, v->dims));
        }
        if (v->dims[i] == 0) {
            out->empty = 1;
        } else if (__builtin_mul_overflow(count, v->dims[i], &count)) {
            return vk_error(LAM_ERR_SHAPE, "vulkan: Invalid shape, %s %s has too many elements",
                            opname, what);
        }
    }
    if (out->empty) {
        return LAM_OK;
    }
    int64_t lo = 0, hi = 0;
    int bad = v->offset > (uint64_t)INT64_MAX;
    if (!bad) {
        lo = hi = (int64_t)v->offset;
    }
    for (uint32_t i = 0; i < v->ndim && !bad; i++) {
        int64_t span;
        if (__builtin_mul_overflow(v->dims[i] - 1, v->strides[i], &span)) {
            bad = 1;
        } else if (span > 0) {
            bad = __builtin_add_overflow(hi, span, &hi);
        } else {
            bad = __builtin_add_overflow(lo, span, &lo);
        }
    }
    uint64_t capacity = (uint64_t)(b->bytes / sizeof(float));
    if (bad || lo < 0 || (uint64_t)hi >= capacity) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Out of bounds, %s %s (offset %llu) reaches outside its %zu-byte "
                        "buffer",
                        opname, what, (unsigned long long)v->offset, b->bytes);
    }
    out->lo = lo;
    out->hi = hi;
    return LAM_OK;
}

static lam_status shape_error(const char *opname, const char *what, const lam_tensor_view *v,
                              const char *expected_what, const lam_tensor_view *e) {
    char got[160];
    char want[160];
    return vk_error(LAM_ERR_SHAPE, "vulkan: Shape mismatch, %s %s has dims %s, %s has %s", opname,
                    what, lam_dims_format(got, sizeof got, v->ndim, v->dims), expected_what,
                    lam_dims_format(want, sizeof want, e->ndim, e->dims));
}

static int same_dims(const lam_tensor_view *a, const lam_tensor_view *b) {
    if (a->ndim != b->ndim) {
        return 0;
    }
    for (uint32_t i = 0; i < a->ndim; i++) {
        if (a->dims[i] != b->dims[i]) {
            return 0;
        }
    }
    return 1;
}

static lam_status check_rank(const char *opname, const char *what, const lam_tensor_view *v,
                             uint32_t ndim) {
    if (v->ndim != ndim) {
        char dims[160];
        return vk_error(LAM_ERR_SHAPE, "vulkan: Shape mismatch, %s needs a %u-D %s, got dims %s",
                        opname, (unsigned)ndim, what,
                        lam_dims_format(dims, sizeof dims, v->ndim, v->dims));
    }
    return LAM_OK;
}

/* LINEAR: the bias is copied into every row of the output, then GEMM adds the product to it
 * (beta = 1) and applies the activation as it stores each value. */
static lam_status run_linear(vk_device *d, const lam_op_call *call, const char *opname,
                             const vk_view *vo, const vk_view *vin) {
    lam_op_call g = *call;
    g.op = LAM_OP_GEMM;
    g.n_inputs = 2;
    g.scalars[0] = 1.0;
    g.scalars[1] = 0.0;
    if (call->n_inputs == 3) {
        lam_tensor_view bias = call->inputs[2];
        bias.ndim = 2;
        bias.dims[0] = call->output->dims[0];
        bias.dims[1] = call->output->dims[1];
        bias.strides[1] = call->inputs[2].strides[0];
        bias.strides[0] = 0; /* every row reads the same bias */
        lam_op_call copy = *call;
        copy.op = LAM_OP_COPY;
        copy.n_inputs = 1;
        copy.inputs = &bias;
        lam_status st = vk_run_elementwise(d, &copy, opname, &vin[2]);
        if (st != LAM_OK) {
            return st;
        }
        g.scalars[1] = 1.0;
    }
    return vk_run_gemm(d, &g, opname, vo, &vin[0], &vin[1], (int32_t)call->ints[2]);
}

/* ---- execute ---- */

/* The call's inputs and output are there, as many as the op's form takes. */
static lam_status check_arity(const lam_op_call *call, const char *opname, lam_op_form kind,
                              uint32_t *arity_out) {
    uint32_t arity = lam_op_form_inputs(kind);
    if (kind == LAM_OP_FORM_LINEAR && call->n_inputs == 2) {
        arity = 2; /* no bias */
    }
    *arity_out = arity;
    if (call->n_inputs != arity || (arity > 0 && call->inputs == NULL) || call->output == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, %s takes %u input%s and an output, got %u "
                        "input%s%s%s",
                        opname, (unsigned)arity, arity == 1 ? "" : "s", (unsigned)call->n_inputs,
                        call->n_inputs == 1 ? "" : "s",
                        arity > 0 && call->inputs == NULL ? ", inputs NULL" : "",
                        call->output == NULL ? ", output NULL" : "");
    }
    return LAM_OK;
}

/* GEMM and LINEAR: 2-D operands of agreeing sizes, a bias of N, a known activation. */
static lam_status check_gemm(const lam_op_call *call, const char *opname, lam_op_form kind,
                             uint32_t arity) {
    const lam_tensor_view *out = call->output;
    const lam_tensor_view *a = &call->inputs[0];
    const lam_tensor_view *b = &call->inputs[1];
    lam_status st = check_rank(opname, "input 0 (A)", a, 2);
    if (st == LAM_OK) {
        st = check_rank(opname, "input 1 (B)", b, 2);
    }
    if (st == LAM_OK) {
        st = check_rank(opname, "output", out, 2);
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
    if (ka != kb || m != out->dims[0] || n != out->dims[1]) {
        char da[64], db[64], dc[64];
        return vk_error(LAM_ERR_SHAPE,
                        "vulkan: Shape mismatch, %s of A %s%s and B %s%s into output %s", opname,
                        lam_dims_format(da, sizeof da, 2, a->dims), ta ? " transposed" : "",
                        lam_dims_format(db, sizeof db, 2, b->dims), tb ? " transposed" : "",
                        lam_dims_format(dc, sizeof dc, 2, out->dims));
    }
    if (kind == LAM_OP_FORM_LINEAR && arity == 3 &&
        (call->inputs[2].ndim != 1 || call->inputs[2].dims[0] != n)) {
        return vk_error(LAM_ERR_SHAPE,
                        "vulkan: Shape mismatch, %s bias has %u dims, expected "
                        "1 dim of %lld",
                        opname, (unsigned)call->inputs[2].ndim, (long long)n);
    }
    if (kind == LAM_OP_FORM_LINEAR) {
        int64_t act = call->ints[2];
        if (act != LAM_OP_INVALID && act != LAM_OP_RELU && act != LAM_OP_SIGMOID &&
            act != LAM_OP_TANH && act != LAM_OP_SOFTRELU) {
            return vk_error(LAM_ERR_INVALID_ARGUMENT,
                            "vulkan: Invalid argument, %s activation %lld is not none, relu, "
                            "sigmoid, tanh or softrelu",
                            opname, (long long)act);
        }
    }
    return LAM_OK;
}

/* REDUCE: a 3-D input (outer, n, inner) into a (outer, 1, inner) output. */
static lam_status check_reduce(const lam_op_call *call, const char *opname) {
    const lam_tensor_view *out = call->output;
    lam_status st = check_rank(opname, "input", &call->inputs[0], 3);
    if (st == LAM_OK) {
        st = check_rank(opname, "output", out, 3);
    }
    if (st == LAM_OK && (out->dims[0] != call->inputs[0].dims[0] || out->dims[1] != 1 ||
                         out->dims[2] != call->inputs[0].dims[2])) {
        char want[160], got[160];
        const int64_t *xd = call->inputs[0].dims;
        const int64_t expect[3] = {xd[0], 1, xd[2]};
        st = vk_error(LAM_ERR_SHAPE, "vulkan: Shape mismatch, %s output has dims %s, expected %s",
                      opname, lam_dims_format(got, sizeof got, 3, out->dims),
                      lam_dims_format(want, sizeof want, 3, expect));
    }
    return st;
}

/* The shapes the op's form asks for. */
static lam_status check_shapes(const lam_op_call *call, const char *opname, lam_op_form kind,
                               uint32_t arity, const char *const input_names[]) {
    const lam_tensor_view *out = call->output;
    lam_status st = LAM_OK;
    switch (kind) {
    case LAM_OP_FORM_INVALID:
    case LAM_OP_FORM_MAX_ENUM: /* op_known() admits only ops this plugin implements */
        return vk_error(LAM_ERR_INTERNAL, "vulkan: Internal error, op %lld has no form",
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
    case LAM_OP_FORM_LINEAR:
        st = check_gemm(call, opname, kind, arity);
        break;
    case LAM_OP_FORM_REDUCE:
        st = check_reduce(call, opname);
        break;
    case LAM_OP_FORM_SOFTMAX:
        st = check_rank(opname, "input", &call->inputs[0], 3);
        if (st == LAM_OK && !same_dims(&call->inputs[0], out)) {
            st = shape_error(opname, "input", &call->inputs[0], "output", out);
        }
        break;
    }
    return st;
}

/* Records a checked call with the kernel of its form. */
static lam_status record(vk_device *d, const lam_op_call *call, const char *opname,
                         lam_op_form kind, const vk_view *vo, const vk_view *vin) {
    switch (kind) {
    case LAM_OP_FORM_GEMM:
        return vk_run_gemm(d, call, opname, vo, &vin[0], &vin[1], 0);
    case LAM_OP_FORM_LINEAR:
        return run_linear(d, call, opname, vo, vin);
    case LAM_OP_FORM_REDUCE:
        return vk_run_reduce(d, call, opname);
    case LAM_OP_FORM_SOFTMAX:
        return vk_run_softmax(d, call, opname, vo, &vin[0]);
    default:
        return vk_run_elementwise(d, call, opname, vin);
    }
}

lam_status vk_execute(void *dev, const lam_op_call *call) {
    vk_device *d = dev;
    if (d == NULL || d->magic != VK_DEVICE_MAGIC) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, not a vulkan device");
    }
    if (call == NULL || call->struct_size < sizeof(lam_op_call)) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, op call is NULL or has struct_size %u < %zu",
                        call != NULL ? (unsigned)call->struct_size : 0u, sizeof(lam_op_call));
    }
    if (!op_known(call->op)) {
        if (op_number(call->op) >= VK_OP_END) {
            return vk_error(LAM_ERR_UNSUPPORTED,
                            "vulkan: Unsupported op, op %lld is newer than this plugin (it knows "
                            "ops 1 to %lld)",
                            (long long)op_number(call->op), (long long)VK_OP_END - 1);
        }
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, unknown op %lld",
                        (long long)op_number(call->op));
    }
    const char *opname = lam_op_name(call->op);
    lam_op_form kind = lam_op_form_of(call->op);
    uint32_t arity = 0;
    lam_status st = check_arity(call, opname, kind, &arity);
    if (st != LAM_OK) {
        return st;
    }
    static const char *const input_names[3] = {"input 0", "input 1", "input 2 (bias)"};
    vk_view vo;
    vk_view vin[3];
    memset(vin, 0, sizeof vin);
    st = check_view(d, call->output, opname, "output", &vo);
    for (uint32_t i = 0; i < arity && st == LAM_OK; i++) {
        st = check_view(d, &call->inputs[i], opname, input_names[i], &vin[i]);
    }
    if (st == LAM_OK) {
        st = check_shapes(call, opname, kind, arity, input_names);
    }
    if (st == LAM_OK) {
        st = vk_check_sticky(d);
    }
    if (st != LAM_OK || vo.empty) {
        return st;
    }
    uint64_t before = vk_validation_count();
    vk_validation_set_op(opname);
    st = record(d, call, opname, kind, &vo, vin);
    if (st == LAM_OK) {
        st = vk_check_validation(d, before, opname);
    }
    vk_validation_set_op(NULL);
    lam_status done = vk_batch_done_op(d, opname);
    return st != LAM_OK ? st : done;
}
