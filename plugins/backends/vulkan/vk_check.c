/*
 * vk_check.c - checking an op call of ABI 2.0 and converting it for the kernels.
 *
 * Every view is checked against its buffer before anything is recorded (a bad call gets an
 * error, never an out-of-bounds access on the device). Byte offsets and strides become element
 * offsets and strides (every dtype this backend computes has 4-byte elements; a byte offset or
 * stride that is not a multiple of 4 is refused). Level 6: above vk_pipeline.
 */
#include "vk_check.h"

#include "vk_window.h"

#include <stddef.h>
#include <string.h>

#define VK_OP_END ((int64_t)LAM_OP_COUNT)

static int64_t op_number(lam_op op) {
    return (int64_t)(int32_t)op;
}

/* The ops this backend records; the others get supports 0 and the host's fallback. */
static int op_implemented(lam_op op) {
    int64_t n = op_number(op);
    if (n > (int64_t)LAM_OP_INVALID && n <= (int64_t)LAM_OP_LINEAR) {
        return 1;
    }
    switch (op) {
    case LAM_OP_GEMM_BATCHED:
    case LAM_OP_IM2COL:
    case LAM_OP_COL2IM:
    case LAM_OP_MAX_POOL:
    case LAM_OP_MAX_POOL_BACKWARD:
    case LAM_OP_AVG_POOL:
    case LAM_OP_AVG_POOL_BACKWARD:
    case LAM_OP_MOMENTS:
    case LAM_OP_GATHER_ROWS:
    case LAM_OP_SCATTER_ADD_ROWS:
    case LAM_OP_RANDOM:
    case LAM_OP_PAD:
    case LAM_OP_WHERE:
    case LAM_OP_GREATER:
    case LAM_OP_LESS:
    case LAM_OP_EQUAL:
    case LAM_OP_CLAMP:
    case LAM_OP_CAST:
        return 1;
    default:
        return 0;
    }
}

/* Inputs (min..max) and outputs an op takes. */
static void op_arity(lam_op op, uint32_t *in_min, uint32_t *in_max, uint32_t *outs) {
    *outs = 1;
    switch (op) {
    case LAM_OP_FILL:
    case LAM_OP_RANDOM:
        *in_min = *in_max = 0;
        return;
    case LAM_OP_LINEAR:
        *in_min = 2;
        *in_max = 3;
        return;
    case LAM_OP_GEMM_BATCHED:
    case LAM_OP_MAX_POOL_BACKWARD:
    case LAM_OP_GATHER_ROWS:
    case LAM_OP_SCATTER_ADD_ROWS:
        *in_min = *in_max = 2;
        return;
    case LAM_OP_WHERE:
        *in_min = *in_max = 3;
        return;
    case LAM_OP_MAX_POOL:
    case LAM_OP_MOMENTS:
        *outs = 2;
        *in_min = *in_max = 1;
        return;
    default:
        *in_min = *in_max = lam_op_form_inputs(lam_op_form_of(op));
        if (lam_op_form_of(op) == LAM_OP_FORM_OWN) {
            *in_min = *in_max = 1; /* IM2COL, COL2IM, the pools, PAD, CAST */
        }
        return;
    }
}

/* The dtype operand (input i, or output i when is_out) must have; CAST takes F32 or I32. */
static int dtype_ok(lam_op op, int is_out, uint32_t i, lam_dtype dt) {
    if (op == LAM_OP_CAST) {
        return dt == LAM_DTYPE_F32 || dt == LAM_DTYPE_I32;
    }
    int want_i32 =
        (op == LAM_OP_MAX_POOL && is_out && i == 1) ||
        (op == LAM_OP_MAX_POOL_BACKWARD && !is_out && i == 1) ||
        ((op == LAM_OP_GATHER_ROWS || op == LAM_OP_SCATTER_ADD_ROWS) && !is_out && i == 1);
    return dt == (want_i32 ? LAM_DTYPE_I32 : LAM_DTYPE_F32);
}

static const char *dtype_name(lam_dtype dt) {
    switch (dt) {
    case LAM_DTYPE_F32:
        return "float32";
    case LAM_DTYPE_I32:
        return "int32";
    case LAM_DTYPE_F16:
        return "float16";
    case LAM_DTYPE_BF16:
        return "bfloat16";
    case LAM_DTYPE_F64:
        return "float64";
    case LAM_DTYPE_I64:
        return "int64";
    case LAM_DTYPE_U8:
        return "uint8";
    default:
        return "invalid";
    }
}

/* ---- views ---- */

/* Converts view v (bytes) to out (elements) and finds the elements it reaches. */
static lam_status check_view(vk_device *d, const lam_op_call *call, int is_out, uint32_t i,
                             lam_tensor_view *out, vk_view *chk) {
    const char *opname = lam_op_name(call->op);
    char what[32];
    snprintf(what, sizeof what, "%s %u", is_out ? "output" : "input", (unsigned)i);
    const lam_tensor_view *v = is_out ? call->outputs[i] : call->inputs[i];
    memset(chk, 0, sizeof *chk);
    if (v == NULL || v->struct_size < sizeof(lam_tensor_view)) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, %s %s is NULL or has struct_size %u < %zu",
                        opname, what, v != NULL ? (unsigned)v->struct_size : 0u,
                        sizeof(lam_tensor_view));
    }
    if (!dtype_ok(call->op, is_out, i, v->dtype)) {
        return vk_error(LAM_ERR_UNSUPPORTED,
                        "vulkan: Unsupported dtype, %s %s has dtype %s, which the vulkan backend "
                        "does not compute there",
                        opname, what, dtype_name(v->dtype));
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
    *out = *v;
    chk->buf = b;
    const int64_t esize = 4;
    if (v->offset % (uint64_t)esize != 0 || v->offset > (uint64_t)INT64_MAX) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, %s %s has byte offset %llu, not a multiple of "
                        "its element size %lld",
                        opname, what, (unsigned long long)v->offset, (long long)esize);
    }
    out->offset = v->offset / (uint64_t)esize;
    int64_t count = 1;
    for (uint32_t k = 0; k < v->ndim; k++) {
        if (v->dims[k] < 0) {
            char dims[160];
            return vk_error(LAM_ERR_SHAPE, "vulkan: Invalid shape, %s %s has dims %s", opname, what,
                            lam_dims_format(dims, sizeof dims, v->ndim, v->dims));
        }
        if (v->strides[k] % esize != 0) {
            return vk_error(LAM_ERR_INVALID_ARGUMENT,
                            "vulkan: Invalid argument, %s %s has byte stride %lld on axis %u, not "
                            "a multiple of its element size %lld",
                            opname, what, (long long)v->strides[k], (unsigned)k, (long long)esize);
        }
        out->strides[k] = v->strides[k] / esize;
        if (v->dims[k] == 0) {
            chk->empty = 1;
        } else if (__builtin_mul_overflow(count, v->dims[k], &count)) {
            return vk_error(LAM_ERR_SHAPE, "vulkan: Invalid shape, %s %s has too many elements",
                            opname, what);
        }
    }
    if (chk->empty) {
        return LAM_OK;
    }
    int64_t lo = (int64_t)out->offset, hi = lo;
    int bad = 0;
    for (uint32_t k = 0; k < v->ndim && !bad; k++) {
        int64_t span;
        if (__builtin_mul_overflow(v->dims[k] - 1, out->strides[k], &span)) {
            bad = 1;
        } else if (span > 0) {
            bad = __builtin_add_overflow(hi, span, &hi);
        } else {
            bad = __builtin_add_overflow(lo, span, &lo);
        }
    }
    uint64_t capacity = (uint64_t)(b->bytes / (size_t)esize);
    if (bad || lo < 0 || (uint64_t)hi >= capacity) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Out of bounds, %s %s (byte offset %llu) reaches outside its "
                        "%zu-byte buffer",
                        opname, what, (unsigned long long)v->offset, b->bytes);
    }
    chk->lo = lo;
    chk->hi = hi;
    return LAM_OK;
}

/* ---- shapes ---- */

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

static lam_status shape_error(const char *opname, const char *what, const lam_tensor_view *v,
                              const char *expected_what, const lam_tensor_view *e) {
    char got[160];
    char want[160];
    return vk_error(LAM_ERR_SHAPE, "vulkan: Shape mismatch, %s %s has dims %s, %s has %s", opname,
                    what, lam_dims_format(got, sizeof got, v->ndim, v->dims), expected_what,
                    lam_dims_format(want, sizeof want, e->ndim, e->dims));
}

static lam_status dims_error(const char *opname, const char *what, const lam_tensor_view *v,
                             uint32_t nd, const int64_t *want) {
    char got[160];
    char exp[160];
    return vk_error(LAM_ERR_SHAPE, "vulkan: Shape mismatch, %s %s has dims %s, expected %s", opname,
                    what, lam_dims_format(got, sizeof got, v->ndim, v->dims),
                    lam_dims_format(exp, sizeof exp, nd, want));
}

/* v has exactly the dims want[0..nd). */
static lam_status expect_dims(const char *opname, const char *what, const lam_tensor_view *v,
                              uint32_t nd, const int64_t *want) {
    int ok = v->ndim == nd;
    for (uint32_t i = 0; ok && i < nd; i++) {
        ok = v->dims[i] == want[i];
    }
    return ok ? LAM_OK : dims_error(opname, what, v, nd, want);
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

/* GEMM, GEMM_BATCHED and LINEAR: operands of agreeing sizes (3-D with a batch for
 * GEMM_BATCHED, whose A and B may have a batch of 1: shared), a bias of N, a known activation. */
static lam_status check_gemm(const vk_call *c, const char *opname) {
    const lam_tensor_view *out = &c->out[0];
    const lam_tensor_view *a = &c->in[0];
    const lam_tensor_view *b = &c->in[1];
    const uint32_t nd = c->op == LAM_OP_GEMM_BATCHED ? 3 : 2;
    const uint32_t o = nd - 2; /* first matrix axis */
    lam_status st = check_rank(opname, "input 0 (A)", a, nd);
    if (st == LAM_OK) {
        st = check_rank(opname, "input 1 (B)", b, nd);
    }
    if (st == LAM_OK) {
        st = check_rank(opname, "output", out, nd);
    }
    if (st != LAM_OK) {
        return st;
    }
    int ta = (c->gemm_flags & LAM_GEMM_TRANS_A) != 0;
    int tb = (c->gemm_flags & LAM_GEMM_TRANS_B) != 0;
    int64_t m = ta ? a->dims[o + 1] : a->dims[o];
    int64_t ka = ta ? a->dims[o] : a->dims[o + 1];
    int64_t kb = tb ? b->dims[o + 1] : b->dims[o];
    int64_t n = tb ? b->dims[o] : b->dims[o + 1];
    int batch_ok = nd == 2 || ((a->dims[0] == out->dims[0] || a->dims[0] == 1) &&
                               (b->dims[0] == out->dims[0] || b->dims[0] == 1));
    if (ka != kb || m != out->dims[o] || n != out->dims[o + 1] || !batch_ok) {
        char da[64], db[64], dc[64];
        return vk_error(LAM_ERR_SHAPE,
                        "vulkan: Shape mismatch, %s of A %s%s and B %s%s into output %s", opname,
                        lam_dims_format(da, sizeof da, nd, a->dims), ta ? " transposed" : "",
                        lam_dims_format(db, sizeof db, nd, b->dims), tb ? " transposed" : "",
                        lam_dims_format(dc, sizeof dc, nd, out->dims));
    }
    if (c->op == LAM_OP_LINEAR && c->n_inputs == 3 &&
        (c->in[2].ndim != 1 || c->in[2].dims[0] != n)) {
        return vk_error(LAM_ERR_SHAPE,
                        "vulkan: Shape mismatch, %s bias has %u dims, expected 1 dim of %lld",
                        opname, (unsigned)c->in[2].ndim, (long long)n);
    }
    if (c->op == LAM_OP_LINEAR && c->act != LAM_OP_INVALID && c->act != LAM_OP_RELU &&
        c->act != LAM_OP_SIGMOID && c->act != LAM_OP_TANH && c->act != LAM_OP_SOFTRELU) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, %s activation %lld is not none, relu, sigmoid, "
                        "tanh or softrelu",
                        opname, (long long)op_number(c->act));
    }
    return LAM_OK;
}

/* REDUCE and MOMENTS: a 3-D input (outer, n, inner) into (outer, 1, inner) outputs. */
static lam_status check_reduce(const vk_call *c, const char *opname) {
    lam_status st = check_rank(opname, "input", &c->in[0], 3);
    const int64_t *xd = c->in[0].dims;
    const int64_t want[3] = {xd[0], 1, xd[2]};
    for (uint32_t i = 0; i < c->n_outputs && st == LAM_OK; i++) {
        st = expect_dims(opname, i == 0 ? "output 0" : "output 1", &c->out[i], 3, want);
    }
    return st;
}

/* ---- sliding windows ---- */

static lam_status check_window_params(const vk_call *c, const char *opname) {
    const lam_window_params *w = &c->win;
    int ok = w->n_spatial == 2 &&
             (w->flags & ~(LAM_WINDOW_CEIL_MODE | LAM_WINDOW_COUNT_INCLUDE_PAD)) == 0;
    for (int i = 0; i < 2 && ok; i++) {
        /* bounded so that every size computed from them stays far inside 64 bits */
        ok = w->kernel[i] >= 1 && w->kernel[i] <= INT32_MAX && w->stride[i] >= 1 &&
             w->stride[i] <= INT32_MAX && w->dilation[i] >= 1 && w->dilation[i] <= INT32_MAX &&
             w->pad_before[i] >= 0 && w->pad_before[i] <= INT32_MAX && w->pad_after[i] >= 0 &&
             w->pad_after[i] <= INT32_MAX;
    }
    if (!ok) {
        return vk_error(
            LAM_ERR_INVALID_ARGUMENT,
            "vulkan: Invalid argument, %s window parameters (n_spatial %u, kernel "
            "(%lld, %lld), stride (%lld, %lld), dilation (%lld, %lld), padding (%lld, "
            "%lld, %lld, %lld), flags %u) are not 2 spatial axes of positive sizes "
            "and non-negative padding",
            opname, (unsigned)w->n_spatial, (long long)w->kernel[0], (long long)w->kernel[1],
            (long long)w->stride[0], (long long)w->stride[1], (long long)w->dilation[0],
            (long long)w->dilation[1], (long long)w->pad_before[0], (long long)w->pad_after[0],
            (long long)w->pad_before[1], (long long)w->pad_after[1], (unsigned)w->flags);
    }
    return LAM_OK;
}

/* The output size of the windows over an input plane of h x w. */
static void window_dims(const lam_window_params *w, int64_t h, int64_t wd, int64_t *oh,
                        int64_t *ow) {
    int ceil_mode = (w->flags & LAM_WINDOW_CEIL_MODE) != 0;
    *oh = vk_window_out(h, w->kernel[0], w->stride[0], w->pad_before[0], w->pad_after[0],
                        w->dilation[0], ceil_mode);
    *ow = vk_window_out(wd, w->kernel[1], w->stride[1], w->pad_before[1], w->pad_after[1],
                        w->dilation[1], ceil_mode);
}

/* IM2COL, COL2IM and the pools: the image side (N, C, H, W) and the window side. */
static lam_status check_window(const vk_call *c, const char *opname) {
    lam_status st = check_window_params(c, opname);
    if (st != LAM_OK) {
        return st;
    }
    const lam_window_params *w = &c->win;
    /* the image is the input of the forward ops, the output of the backward ones */
    int backward = c->op == LAM_OP_COL2IM || c->op == LAM_OP_MAX_POOL_BACKWARD ||
                   c->op == LAM_OP_AVG_POOL_BACKWARD;
    const lam_tensor_view *img = backward ? &c->out[0] : &c->in[0];
    st = check_rank(opname, backward ? "output" : "input", img, 4);
    if (st != LAM_OK) {
        return st;
    }
    int64_t n = img->dims[0], ch = img->dims[1], oh, ow;
    window_dims(w, img->dims[2], img->dims[3], &oh, &ow);
    if (c->op == LAM_OP_IM2COL || c->op == LAM_OP_COL2IM) {
        const int64_t want[3] = {n, ch * w->kernel[0] * w->kernel[1], oh * ow};
        return expect_dims(opname, backward ? "input" : "output", backward ? &c->in[0] : &c->out[0],
                           3, want);
    }
    const int64_t want[4] = {n, ch, oh, ow};
    if (backward) {
        st = expect_dims(opname, "input 0", &c->in[0], 4, want);
        if (st == LAM_OK && c->op == LAM_OP_MAX_POOL_BACKWARD) {
            st = expect_dims(opname, "input 1 (indices)", &c->in[1], 4, want);
        }
        return st;
    }
    for (uint32_t i = 0; i < c->n_outputs && st == LAM_OK; i++) {
        st = expect_dims(opname, i == 0 ? "output 0" : "output 1 (indices)", &c->out[i], 4, want);
    }
    return st;
}

/* GATHER_ROWS and SCATTER_ADD_ROWS: a table (V, D), M contiguous indices, rows (M, D). */
static lam_status check_rows(const vk_call *c, const char *opname) {
    int gather = c->op == LAM_OP_GATHER_ROWS;
    const lam_tensor_view *table = gather ? &c->in[0] : &c->out[0];
    const lam_tensor_view *rows = gather ? &c->out[0] : &c->in[0];
    const lam_tensor_view *idx = &c->in[1];
    lam_status st = check_rank(opname, gather ? "input 0 (table)" : "output (table)", table, 2);
    if (st == LAM_OK) {
        st = check_rank(opname, "input 1 (indices)", idx, 1);
    }
    if (st == LAM_OK) {
        const int64_t want[2] = {idx->dims[0], table->dims[1]};
        st = expect_dims(opname, gather ? "output" : "input 0", rows, 2, want);
    }
    if (st == LAM_OK && idx->dims[0] > 1 && idx->strides[0] != 1) {
        st = vk_error(LAM_ERR_INVALID_ARGUMENT,
                      "vulkan: Invalid argument, %s indices are not contiguous (stride %lld "
                      "elements)",
                      opname, (long long)idx->strides[0]);
    }
    return st;
}

static lam_status check_pad(const vk_call *c, const char *opname) {
    const lam_tensor_view *x = &c->in[0];
    const lam_tensor_view *o = &c->out[0];
    int64_t want[LAM_MAX_DIMS];
    for (uint32_t i = 0; i < x->ndim; i++) {
        if (c->pad.before[i] < 0 || c->pad.after[i] < 0 || c->pad.before[i] > INT32_MAX ||
            c->pad.after[i] > INT32_MAX) {
            return vk_error(LAM_ERR_INVALID_ARGUMENT,
                            "vulkan: Invalid argument, %s padding (%lld, %lld) of axis %u is "
                            "negative or too large",
                            opname, (long long)c->pad.before[i], (long long)c->pad.after[i],
                            (unsigned)i);
        }
        want[i] = x->dims[i] + c->pad.before[i] + c->pad.after[i];
    }
    return expect_dims(opname, "output", o, x->ndim, want);
}

/* The shapes the op asks for. */
static lam_status check_shapes(const vk_call *c, const char *opname) {
    const lam_tensor_view *out = &c->out[0];
    switch (c->op) {
    case LAM_OP_FILL:
        return LAM_OK;
    case LAM_OP_RANDOM: {
        int64_t st = 1;
        for (uint32_t i = out->ndim; i-- > 0;) {
            if (out->dims[i] > 1 && out->strides[i] != st) {
                return vk_error(LAM_ERR_UNSUPPORTED,
                                "vulkan: Unsupported layout, random needs a contiguous output");
            }
            st *= out->dims[i];
        }
        return LAM_OK;
    }
    case LAM_OP_GEMM:
    case LAM_OP_GEMM_BATCHED:
    case LAM_OP_LINEAR:
        return check_gemm(c, opname);
    case LAM_OP_REDUCE_SUM:
    case LAM_OP_REDUCE_MEAN:
    case LAM_OP_REDUCE_MAX:
    case LAM_OP_REDUCE_MIN:
    case LAM_OP_ARGMAX:
    case LAM_OP_MOMENTS:
        return check_reduce(c, opname);
    case LAM_OP_SOFTMAX:
    case LAM_OP_LOG_SOFTMAX: {
        lam_status st = check_rank(opname, "input", &c->in[0], 3);
        if (st == LAM_OK && !same_dims(&c->in[0], out)) {
            st = shape_error(opname, "input", &c->in[0], "output", out);
        }
        return st;
    }
    case LAM_OP_IM2COL:
    case LAM_OP_COL2IM:
    case LAM_OP_MAX_POOL:
    case LAM_OP_MAX_POOL_BACKWARD:
    case LAM_OP_AVG_POOL:
    case LAM_OP_AVG_POOL_BACKWARD:
        return check_window(c, opname);
    case LAM_OP_GATHER_ROWS:
    case LAM_OP_SCATTER_ADD_ROWS:
        return check_rows(c, opname);
    case LAM_OP_PAD:
        return check_pad(c, opname);
    default: /* elementwise: every input has the output's dims */
        for (uint32_t i = 0; i < c->n_inputs; i++) {
            if (!same_dims(&c->in[i], out)) {
                static const char *const names[3] = {"input 0", "input 1", "input 2"};
                return shape_error(opname, names[i], &c->in[i], "output", out);
            }
        }
        return LAM_OK;
    }
}

/* ---- parameters ---- */

static lam_status missing_params(const char *opname, const char *type) {
    return vk_error(LAM_ERR_INVALID_ARGUMENT,
                    "vulkan: Invalid argument, %s needs its parameters (%s) in call->params",
                    opname, type);
}

static lam_status take_params(const lam_op_call *call, vk_call *c, const char *opname) {
    switch (call->op) {
    case LAM_OP_FILL:
    case LAM_OP_ADD_SCALAR:
    case LAM_OP_MUL_SCALAR:
    case LAM_OP_RSUB_SCALAR:
    case LAM_OP_DIV_SCALAR:
    case LAM_OP_RDIV_SCALAR:
    case LAM_OP_POW_SCALAR:
    case LAM_OP_AXPBY:
    case LAM_OP_CLAMP: {
        const lam_scalar_params *p = lam_op_params(call, lam_scalar_params);
        if (p == NULL) {
            return missing_params(opname, "lam_scalar_params");
        }
        c->a = p->a;
        c->b = p->b;
        return LAM_OK;
    }
    case LAM_OP_GEMM:
    case LAM_OP_GEMM_BATCHED:
    case LAM_OP_LINEAR: {
        const lam_gemm_params *p = lam_op_params(call, lam_gemm_params);
        if (p == NULL) {
            return missing_params(opname, "lam_gemm_params");
        }
        c->gemm_flags = p->flags;
        c->alpha = p->alpha;
        c->beta = p->beta;
        c->act = p->act;
        return LAM_OK;
    }
    case LAM_OP_IM2COL:
    case LAM_OP_COL2IM:
    case LAM_OP_MAX_POOL:
    case LAM_OP_MAX_POOL_BACKWARD:
    case LAM_OP_AVG_POOL:
    case LAM_OP_AVG_POOL_BACKWARD: {
        const lam_window_params *p = lam_op_params(call, lam_window_params);
        if (p == NULL) {
            return missing_params(opname, "lam_window_params");
        }
        c->win = *p;
        return LAM_OK;
    }
    case LAM_OP_PAD: {
        const lam_pad_params *p = lam_op_params(call, lam_pad_params);
        if (p == NULL) {
            return missing_params(opname, "lam_pad_params");
        }
        c->pad = *p;
        return LAM_OK;
    }
    case LAM_OP_RANDOM: {
        const lam_random_params *p = lam_op_params(call, lam_random_params);
        if (p == NULL) {
            return missing_params(opname, "lam_random_params");
        }
        c->rnd = *p;
        if (p->kind != LAM_RANDOM_UNIFORM && p->kind != LAM_RANDOM_BERNOULLI &&
            p->kind != LAM_RANDOM_NORMAL) {
            return vk_error(LAM_ERR_INVALID_ARGUMENT,
                            "vulkan: Invalid argument, %s kind %d is not uniform, normal or "
                            "bernoulli",
                            opname, (int)p->kind);
        }
        return LAM_OK;
    }
    default:
        return LAM_OK;
    }
}

/* ---- the call ---- */

lam_status vk_check_call(vk_device *d, const lam_op_call *call, vk_call *vc, vk_view *vo,
                         vk_view *vin) {
    memset(vc, 0, sizeof *vc);
    if (call == NULL || call->struct_size < sizeof(lam_op_call)) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, op call is NULL or has struct_size %u < %zu",
                        call != NULL ? (unsigned)call->struct_size : 0u, sizeof(lam_op_call));
    }
    const char *opname = lam_op_name(call->op);
    if (!op_implemented(call->op)) {
        if (op_number(call->op) >= VK_OP_END) {
            return vk_error(LAM_ERR_UNSUPPORTED,
                            "vulkan: Unsupported op, op %lld is newer than this plugin (it knows "
                            "ops 1 to %lld)",
                            (long long)op_number(call->op), (long long)VK_OP_END - 1);
        }
        if (op_number(call->op) <= 0) {
            return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, unknown op %lld",
                            (long long)op_number(call->op));
        }
        return vk_error(LAM_ERR_UNSUPPORTED,
                        "vulkan: Unsupported op, %s is not implemented by the vulkan backend "
                        "(the host runs its fallback)",
                        opname);
    }
    uint32_t in_min, in_max, outs;
    op_arity(call->op, &in_min, &in_max, &outs);
    if (call->n_inputs < in_min || call->n_inputs > in_max || call->n_outputs != outs ||
        (call->n_inputs > 0 && call->inputs == NULL) || call->outputs == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, %s takes %u input%s and %u output%s, got %u "
                        "input%s and %u output%s%s%s",
                        opname, (unsigned)in_max, in_max == 1 ? "" : "s", (unsigned)outs,
                        outs == 1 ? "" : "s", (unsigned)call->n_inputs,
                        call->n_inputs == 1 ? "" : "s", (unsigned)call->n_outputs,
                        call->n_outputs == 1 ? "" : "s",
                        call->n_inputs > 0 && call->inputs == NULL ? ", inputs NULL" : "",
                        call->outputs == NULL ? ", outputs NULL" : "");
    }
    vc->op = call->op;
    vc->flags = call->flags;
    vc->n_inputs = call->n_inputs;
    vc->n_outputs = call->n_outputs;
    lam_status st = take_params(call, vc, opname);
    for (uint32_t i = 0; i < call->n_outputs && st == LAM_OK; i++) {
        st = check_view(d, call, 1, i, &vc->out[i], &vo[i]);
    }
    for (uint32_t i = 0; i < call->n_inputs && st == LAM_OK; i++) {
        st = check_view(d, call, 0, i, &vc->in[i], &vin[i]);
    }
    if (st == LAM_OK) {
        st = check_shapes(vc, opname);
    }
    if (st == LAM_OK && vc->op == LAM_OP_CAST && vc->in[0].dtype == LAM_DTYPE_F32 &&
        vc->out[0].dtype == LAM_DTYPE_I32 && !vin[0].empty) {
        /* the range check reads x as one contiguous run */
        int64_t run = 1;
        for (uint32_t i = vc->in[0].ndim; i-- > 0 && st == LAM_OK;) {
            if (vc->in[0].dims[i] > 1 && vc->in[0].strides[i] != run) {
                st = vk_error(LAM_ERR_UNSUPPORTED,
                              "vulkan: Unsupported layout, cast from float32 to int32 needs a "
                              "contiguous input");
            }
            run *= vc->in[0].dims[i];
        }
    }
    return st;
}

/* Ops whose kernels bind each operand whole (the elementwise kernel cuts its own windows). */
static int binds_whole(lam_op op) {
    lam_op_form f = lam_op_form_of(op);
    return f != LAM_OP_FORM_FILL && f != LAM_OP_FORM_UNARY && f != LAM_OP_FORM_BINARY &&
           op != LAM_OP_WHERE && op != LAM_OP_CAST;
}

static lam_status fits(const vk_device *d, const vk_view *v, const char *opname, const char *what) {
    const VkPhysicalDeviceLimits *l = &d->phys->props.limits;
    if (v->empty) {
        return LAM_OK;
    }
    /* the window is aligned down to minStorageBufferOffsetAlignment */
    uint64_t bytes = (uint64_t)(v->hi - v->lo + 1) * 4u + l->minStorageBufferOffsetAlignment;
    if (bytes > l->maxStorageBufferRange || v->hi - v->lo >= INT32_MAX) {
        return vk_error(LAM_ERR_UNSUPPORTED,
                        "vulkan: Unsupported size, %s %s spans %llu bytes, more than the "
                        "device's maxStorageBufferRange (%u bytes)",
                        opname, what, (unsigned long long)(v->hi - v->lo + 1) * 4u,
                        l->maxStorageBufferRange);
    }
    return LAM_OK;
}

lam_status vk_check_limits(const vk_device *d, const vk_call *vc, const vk_view *vo,
                           const vk_view *vin) {
    if (!binds_whole(vc->op)) {
        return LAM_OK;
    }
    const char *opname = lam_op_name(vc->op);
    lam_status st = LAM_OK;
    for (uint32_t i = 0; i < vc->n_outputs && st == LAM_OK; i++) {
        st = fits(d, &vo[i], opname, i == 0 ? "output 0" : "output 1");
    }
    for (uint32_t i = 0; i < vc->n_inputs && st == LAM_OK; i++) {
        static const char *const names[3] = {"input 0", "input 1", "input 2"};
        st = fits(d, &vin[i], opname, names[i]);
    }
    return st;
}

int vk_call_empty(const vk_call *vc, const vk_view *vo) {
    for (uint32_t i = 0; i < vc->n_outputs; i++) {
        if (vo[i].empty) {
            return 1;
        }
    }
    return 0;
}
