/*
 * vk_exec.c - supports_op and execute: checks every op call, then records its dispatches.
 *
 * Every view is checked against its buffer before anything is recorded (a bad call gets an
 * error, never an out-of-bounds access on the device). Each operand is bound as the window of
 * its buffer that the view touches, aligned down to minStorageBufferOffsetAlignment and no
 * longer than maxStorageBufferRange; the shader gets the view's offset and strides relative to
 * that window. Grid sizes, binding ranges and per-invocation loop counts are checked here on
 * the host against the device limits and lavapipe's loop limit (VK_MAX_LOOP_ITERS).
 */
#include "vk_internal.h"

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

/* ---- binding windows and dispatches ---- */

/* Binds elements [lo, hi] of buf. */
lam_status vk_bind_range(vk_device *d, vk_buffer *buf, int64_t lo, int64_t hi, const char *opname,
                         const char *what, vk_bind *out) {
    const VkPhysicalDeviceLimits *l = &d->phys->props.limits;
    VkDeviceSize align =
        l->minStorageBufferOffsetAlignment > 4 ? l->minStorageBufferOffsetAlignment : 4;
    VkDeviceSize abs_lo = buf->offset + (VkDeviceSize)lo * 4u;
    VkDeviceSize start = abs_lo - abs_lo % align;
    VkDeviceSize end = buf->offset + (VkDeviceSize)(hi + 1) * 4u;
    out->buf = buf;
    out->offset = start;
    out->range = end - start;
    /* may be negative: the window can start before the buffer (both are multiples of 4) */
    out->base = (int64_t)(start / 4u) - (int64_t)(buf->offset / 4u);
    if (out->range > l->maxStorageBufferRange) {
        return vk_error(LAM_ERR_UNSUPPORTED,
                        "vulkan: Unsupported size, %s %s spans %llu bytes, more than the device's "
                        "maxStorageBufferRange (%u bytes)",
                        opname, what, (unsigned long long)out->range, l->maxStorageBufferRange);
    }
    return LAM_OK;
}

lam_status vk_bind_view(vk_device *d, const vk_view *v, const char *opname, const char *what,
                        vk_bind *out) {
    return vk_bind_range(d, v->buf, v->lo, v->hi, opname, what, out);
}

/* An element offset (from the buffer start) relative to a window, as the shader's int. */
lam_status vk_rel(const vk_bind *b, int64_t elem, int32_t *out) {
    int64_t r = elem - b->base;
    if (r < 0 || r > INT32_MAX) {
        return vk_error(LAM_ERR_INTERNAL, "vulkan: Internal error, offset %lld outside its window",
                        (long long)r);
    }
    *out = (int32_t)r;
    return LAM_OK;
}

lam_status vk_to_i32(int64_t v, int32_t *out, const char *opname) {
    if (v < INT32_MIN || v > INT32_MAX) {
        return vk_error(LAM_ERR_UNSUPPORTED, "vulkan: Unsupported size, %s needs %lld in 32 bits",
                        opname, (long long)v);
    }
    *out = (int32_t)v;
    return LAM_OK;
}

/* Splits `groups` workgroups over x and y within the device limits. */
lam_status vk_grid_2d(vk_device *d, uint64_t groups, uint32_t *gx, uint32_t *gy,
                      const char *opname) {
    const uint32_t *maxc = d->phys->props.limits.maxComputeWorkGroupCount;
    if (groups == 0) {
        *gx = *gy = 0;
        return LAM_OK;
    }
    uint64_t x = groups < maxc[0] ? groups : maxc[0];
    uint64_t y = (groups + x - 1) / x;
    if (y > maxc[1]) {
        return vk_error(LAM_ERR_UNSUPPORTED,
                        "vulkan: Unsupported size, %s needs %llu workgroups, more than the "
                        "device's maxComputeWorkGroupCount allows",
                        opname, (unsigned long long)groups);
    }
    *gx = (uint32_t)x;
    *gy = (uint32_t)y;
    return LAM_OK;
}

lam_status vk_dispatch(vk_device *d, vk_shader_id shader, const vk_bind binds[3], const void *push,
                       uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
    if (gx == 0 || gy == 0 || gz == 0) {
        return LAM_OK;
    }
    const uint32_t *maxc = d->phys->props.limits.maxComputeWorkGroupCount;
    if (gx > maxc[0] || gy > maxc[1] || gz > maxc[2]) {
        return vk_error(LAM_ERR_INTERNAL,
                        "vulkan: Internal error, dispatch (%u, %u, %u) beyond the device limits",
                        gx, gy, gz);
    }
    VkPipeline pipeline;
    lam_status st = vk_pipeline(d, shader, &pipeline);
    if (st != LAM_OK) {
        return st;
    }
    vk_batch *b;
    st = vk_batch_current(d, &b);
    if (st != LAM_OK) {
        return st;
    }
    if (b->sets_used >= VK_SETS_PER_POOL) {
        st = vk_flush(d);
        if (st == LAM_OK) {
            st = vk_batch_current(d, &b);
        }
        if (st != LAM_OK) {
            return st;
        }
    }
    vk_access acc[3];
    for (int i = 0; i < 3; i++) {
        acc[i].buffer = binds[i].buf->block->buffer;
        acc[i].lo = binds[i].offset;
        acc[i].hi = binds[i].offset + binds[i].range;
        acc[i].write = i == 0;
    }
    st = vk_track(d, b, acc, 3);
    if (st != LAM_OK) {
        return st;
    }
    VkDescriptorSetAllocateInfo ai;
    memset(&ai, 0, sizeof ai);
    ai.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
    ai.descriptorPool = b->pool;
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &d->set_layout;
    VkDescriptorSet set;
    VkResult r = vkf.vkAllocateDescriptorSets(d->device, &ai, &set);
    if (r != VK_SUCCESS) {
        return vk_error(LAM_ERR_BACKEND, "vulkan: vkAllocateDescriptorSets failed: %s",
                        vk_result_string(r));
    }
    b->sets_used++;
    VkDescriptorBufferInfo bi[3];
    VkWriteDescriptorSet w[3];
    memset(w, 0, sizeof w);
    for (uint32_t i = 0; i < 3; i++) {
        bi[i].buffer = binds[i].buf->block->buffer;
        bi[i].offset = binds[i].offset;
        bi[i].range = binds[i].range;
        w[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
        w[i].dstSet = set;
        w[i].dstBinding = i;
        w[i].descriptorCount = 1;
        w[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        w[i].pBufferInfo = &bi[i];
    }
    vkf.vkUpdateDescriptorSets(d->device, 3, w, 0, NULL);
    vkf.vkCmdBindPipeline(b->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
    vkf.vkCmdBindDescriptorSets(b->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, d->pipe_layout, 0, 1, &set,
                                0, NULL);
    vkf.vkCmdPushConstants(b->cmd, d->pipe_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes,
                           push);
    vkf.vkCmdDispatch(b->cmd, gx, gy, gz);
    for (int i = 0; i < 3; i++) {
        vk_buffer_touch(d, binds[i].buf);
    }
    return LAM_OK;
}

/* ---- elementwise ---- */

typedef struct ew_push {
    uint32_t op;
    uint32_t count;
    float t; /* second scalar (AXPBY) */
    float s;
    int32_t dims[4];
    int32_t st[3][4]; /* out, x, y */
    int32_t off[3];
} ew_push;

#define EW_OPERANDS 3

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

/*
 * Elementwise ops: the plan's innermost (up to) 4 dims go to the shader, outer ones are looped
 * here. When an operand's window would exceed maxStorageBufferRange (lavapipe: 128 MiB), fewer
 * dims go to the shader and the first of them is cut into chunks, each bound on its own.
 */
static lam_status run_elementwise(vk_device *d, const lam_op_call *call, const char *opname,
                                  const vk_view *vo, const vk_view *vin) {
    static const int64_t zero_strides[LAM_MAX_DIMS];
    (void)vo;
    const lam_tensor_view *out = call->output;
    const int64_t *st[EW_OPERANDS] = {out->strides, zero_strides, zero_strides};
    vk_buffer *bufs[EW_OPERANDS] = {out->buffer, out->buffer, out->buffer};
    int64_t offs[EW_OPERANDS] = {(int64_t)out->offset, (int64_t)out->offset, (int64_t)out->offset};
    for (uint32_t i = 0; i < call->n_inputs && i < 2; i++) {
        st[i + 1] = call->inputs[i].strides;
        bufs[i + 1] = vin[i].buf;
        offs[i + 1] = (int64_t)call->inputs[i].offset;
    }
    ew_plan p;
    if (!plan_make(&p, out, st)) {
        return LAM_OK;
    }
    const VkPhysicalDeviceLimits *lim = &d->phys->props.limits;
    /* elements a window may hold, less what aligning its start down can add */
    const int64_t max_elems =
        ((int64_t)lim->maxStorageBufferRange - (int64_t)lim->minStorageBufferOffsetAlignment) / 4;
    int inner_nd = p.nd < 4 ? p.nd : 4;
    for (;;) {
        int fits = 1;
        for (int k = 0; k < EW_OPERANDS; k++) {
            fits = fits && span_from(&p, k, p.nd - inner_nd + 1, -1) <= max_elems;
        }
        if (fits || inner_nd == 1) {
            break;
        }
        inner_nd--;
    }
    const int first = p.nd - inner_nd;
    int64_t chunk = p.dims[first];
    for (int k = 0; k < EW_OPERANDS; k++) {
        int64_t rest = span_from(&p, k, first + 1, -1);
        int64_t sf = p.st[k][first] < 0 ? -p.st[k][first] : p.st[k][first];
        if (sf > 0 && rest <= max_elems) {
            int64_t c = (max_elems - rest) / sf + 1;
            chunk = c < chunk ? c : chunk;
        }
    }
    if (chunk < 1) {
        chunk = 1;
    }
    ew_push push;
    memset(&push, 0, sizeof push);
    push.op = (uint32_t)call->op;
    push.s = (float)call->scalars[0];
    push.t = (float)call->scalars[1];
    lam_status s = LAM_OK;
    int64_t idx[LAM_MAX_DIMS] = {0};
    int64_t off[EW_OPERANDS] = {offs[0], offs[1], offs[2]};
    for (;;) {
        for (int64_t r0 = 0; r0 < p.dims[first] && s == LAM_OK; r0 += chunk) {
            const int64_t len = p.dims[first] - r0 < chunk ? p.dims[first] - r0 : chunk;
            int64_t count = 1;
            for (int i = 0; i < 4 && s == LAM_OK; i++) {
                int src = p.nd - 4 + i;
                int64_t dim = src < first ? 1 : src == first ? len : p.dims[src];
                count *= dim;
                s = vk_to_i32(dim, &push.dims[i], opname);
                for (int k = 0; k < EW_OPERANDS && s == LAM_OK; k++) {
                    s = vk_to_i32(src >= first ? p.st[k][src] : 0, &push.st[k][i], opname);
                }
            }
            vk_bind binds[EW_OPERANDS];
            for (int k = 0; k < EW_OPERANDS && s == LAM_OK; k++) {
                const int64_t o = off[k] + r0 * p.st[k][first];
                int64_t lo = o, hi = o;
                for (int i = first; i < p.nd; i++) {
                    int64_t sp = ((i == first ? len : p.dims[i]) - 1) * p.st[k][i];
                    if (sp > 0) {
                        hi += sp;
                    } else {
                        lo += sp;
                    }
                }
                if (k > 0 && (uint32_t)(k - 1) >= call->n_inputs) {
                    binds[k] = binds[0]; /* no such operand: any valid window */
                    push.off[k] = 0;
                    continue;
                }
                s = vk_bind_range(d, bufs[k], lo, hi, opname,
                                  k == 0   ? "output"
                                  : k == 1 ? "input 0"
                                           : "input 1",
                                  &binds[k]);
                if (s == LAM_OK) {
                    s = vk_rel(&binds[k], o, &push.off[k]);
                }
            }
            uint32_t gx = 0, gy = 0;
            if (s == LAM_OK && count > UINT32_MAX) {
                s = vk_error(LAM_ERR_UNSUPPORTED, "vulkan: Unsupported size, %s of %lld elements",
                             opname, (long long)count);
            }
            if (s == LAM_OK) {
                push.count = (uint32_t)count;
                s = vk_grid_2d(d, ((uint64_t)count + 255) / 256, &gx, &gy, opname);
            }
            if (s == LAM_OK) {
                s = vk_dispatch(d, VK_SHADER_EW, binds, &push, sizeof push, gx, gy, 1);
            }
        }
        if (s != LAM_OK) {
            return s;
        }
        int dd = first - 1;
        for (; dd >= 0; dd--) {
            for (int k = 0; k < EW_OPERANDS; k++) {
                off[k] += p.st[k][dd];
            }
            if (++idx[dd] < p.dims[dd]) {
                break;
            }
            for (int k = 0; k < EW_OPERANDS; k++) {
                off[k] -= p.st[k][dd] * p.dims[dd];
            }
            idx[dd] = 0;
        }
        if (dd < 0) {
            return LAM_OK;
        }
    }
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
        lam_status st = run_elementwise(d, &copy, opname, vo, &vin[2]);
        if (st != LAM_OK) {
            return st;
        }
        g.scalars[1] = 1.0;
    }
    return vk_run_gemm(d, &g, opname, vo, &vin[0], &vin[1], (int32_t)call->ints[2]);
}

/* ---- execute ---- */

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
    uint32_t arity = lam_op_form_inputs(kind);
    if (kind == LAM_OP_FORM_LINEAR && call->n_inputs == 2) {
        arity = 2; /* no bias */
    }
    if (call->n_inputs != arity || (arity > 0 && call->inputs == NULL) || call->output == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, %s takes %u input%s and an output, got %u "
                        "input%s%s%s",
                        opname, (unsigned)arity, arity == 1 ? "" : "s", (unsigned)call->n_inputs,
                        call->n_inputs == 1 ? "" : "s",
                        arity > 0 && call->inputs == NULL ? ", inputs NULL" : "",
                        call->output == NULL ? ", output NULL" : "");
    }
    static const char *const input_names[3] = {"input 0", "input 1", "input 2 (bias)"};
    vk_view vo;
    vk_view vin[3];
    memset(vin, 0, sizeof vin);
    lam_status st = check_view(d, call->output, opname, "output", &vo);
    for (uint32_t i = 0; i < arity && st == LAM_OK; i++) {
        st = check_view(d, &call->inputs[i], opname, input_names[i], &vin[i]);
    }
    if (st != LAM_OK) {
        return st;
    }
    const lam_tensor_view *out = call->output;
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
    case LAM_OP_FORM_LINEAR: {
        const lam_tensor_view *a = &call->inputs[0];
        const lam_tensor_view *b = &call->inputs[1];
        st = check_rank(opname, "input 0 (A)", a, 2);
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
                            "vulkan: Shape mismatch, %s of A %s%s and B %s%s into output %s",
                            opname, lam_dims_format(da, sizeof da, 2, a->dims),
                            ta ? " transposed" : "", lam_dims_format(db, sizeof db, 2, b->dims),
                            tb ? " transposed" : "", lam_dims_format(dc, sizeof dc, 2, out->dims));
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
        break;
    }
    case LAM_OP_FORM_REDUCE:
        st = check_rank(opname, "input", &call->inputs[0], 3);
        if (st == LAM_OK) {
            st = check_rank(opname, "output", out, 3);
        }
        if (st == LAM_OK && (out->dims[0] != call->inputs[0].dims[0] || out->dims[1] != 1 ||
                             out->dims[2] != call->inputs[0].dims[2])) {
            char want[160], got[160];
            const int64_t *xd = call->inputs[0].dims;
            const int64_t expect[3] = {xd[0], 1, xd[2]};
            st = vk_error(LAM_ERR_SHAPE,
                          "vulkan: Shape mismatch, %s output has dims %s, expected %s", opname,
                          lam_dims_format(got, sizeof got, 3, out->dims),
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
    st = vk_check_sticky(d);
    if (st != LAM_OK) {
        return st;
    }
    if (vo.empty) {
        return LAM_OK;
    }
    uint64_t before = vk_validation_count();
    vk_validation_set_op(opname);
    switch (kind) {
    case LAM_OP_FORM_GEMM:
        st = vk_run_gemm(d, call, opname, &vo, &vin[0], &vin[1], 0);
        break;
    case LAM_OP_FORM_LINEAR:
        st = run_linear(d, call, opname, &vo, vin);
        break;
    case LAM_OP_FORM_REDUCE:
        st = vk_run_reduce(d, call, opname);
        break;
    case LAM_OP_FORM_SOFTMAX:
        st = vk_run_softmax(d, call, opname, &vo, &vin[0]);
        break;
    default:
        st = run_elementwise(d, call, opname, &vo, vin);
        break;
    }
    if (st == LAM_OK) {
        st = vk_check_validation(d, before, opname);
    }
    vk_validation_set_op(NULL);
    lam_status done = vk_batch_done_op(d, opname);
    return st != LAM_OK ? st : done;
}
