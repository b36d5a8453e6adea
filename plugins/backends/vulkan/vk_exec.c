/*
 * vk_exec.c - supports and execute: every op call is checked and converted (vk_check.c), then
 * recorded by the kernel of its op.
 *
 * `supports` runs the very checks execute runs, with messages muted, plus the limits a kernel
 * would only meet while recording (a view's window beyond maxStorageBufferRange, sizes beyond
 * the shaders' 32-bit ints): a call it accepts does not fail for those, and one it refuses is
 * run by the host's fallback. Level 8: above vk_check and the kernels, below vk_backend.
 */
#include "vk_exec.h"

#include "vk_buffers.h"
#include "vk_check.h"
#include "vk_elementwise.h"
#include "vk_kernels.h"
#include "vk_ops.h"
#include "vk_queue.h"
#include "vk_rows.h"
#include "vk_window.h"

#include <string.h>

/* LINEAR: the bias is copied into every row of the output, then GEMM adds the product to it
 * (beta = 1) and applies the activation as it stores each value. */
static lam_status run_linear(vk_device *d, const vk_call *call, const char *opname,
                             const vk_view *vo, const vk_view *vin) {
    vk_call g = *call;
    g.op = LAM_OP_GEMM;
    g.n_inputs = 2;
    g.alpha = 1.0;
    g.beta = 0.0;
    if (call->n_inputs == 3) {
        vk_call copy = *call;
        copy.op = LAM_OP_COPY;
        copy.n_inputs = 1;
        lam_tensor_view *bias = &copy.in[0];
        *bias = call->in[2];
        bias->ndim = 2;
        bias->dims[0] = call->out[0].dims[0];
        bias->dims[1] = call->out[0].dims[1];
        bias->strides[1] = call->in[2].strides[0];
        bias->strides[0] = 0; /* every row reads the same bias */
        lam_status st = vk_run_elementwise(d, &copy, opname, &vin[2]);
        if (st != LAM_OK) {
            return st;
        }
        g.beta = 1.0;
    }
    return vk_run_gemm(d, &g, opname, vo, &vin[0], &vin[1], (int32_t)call->act);
}

/* Records a checked call with the kernel of its op. */
static lam_status record(vk_device *d, const vk_call *call, const char *opname, const vk_view *vo,
                         const vk_view *vin) {
    switch (call->op) {
    case LAM_OP_GEMM:
    case LAM_OP_GEMM_BATCHED:
        return vk_run_gemm(d, call, opname, vo, &vin[0], &vin[1], 0);
    case LAM_OP_LINEAR:
        return run_linear(d, call, opname, vo, vin);
    case LAM_OP_REDUCE_SUM:
    case LAM_OP_REDUCE_MEAN:
    case LAM_OP_REDUCE_MAX:
    case LAM_OP_REDUCE_MIN:
    case LAM_OP_ARGMAX:
        return vk_run_reduce(d, call, opname);
    case LAM_OP_MOMENTS:
        return vk_run_moments(d, call, opname);
    case LAM_OP_RANDOM:
        return vk_run_random(d, call, opname, vo);
    case LAM_OP_PAD:
        return vk_run_pad(d, call, opname, vin);
    case LAM_OP_GATHER_ROWS:
    case LAM_OP_SCATTER_ADD_ROWS:
        return vk_run_rows(d, call, opname, vo, vin);
    case LAM_OP_SOFTMAX:
    case LAM_OP_LOG_SOFTMAX:
        return vk_run_softmax(d, call, opname, vo, &vin[0]);
    case LAM_OP_IM2COL:
    case LAM_OP_COL2IM:
    case LAM_OP_MAX_POOL:
    case LAM_OP_MAX_POOL_BACKWARD:
    case LAM_OP_AVG_POOL:
    case LAM_OP_AVG_POOL_BACKWARD:
        return vk_run_window(d, call, opname, vo, vin);
    case LAM_OP_CAST:
        if (call->in[0].dtype == LAM_DTYPE_F32 && call->out[0].dtype == LAM_DTYPE_I32) {
            lam_status st = vk_cast_check(d, call, opname, vin);
            if (st == LAM_OK) {
                st = vk_run_elementwise(d, call, opname, vin);
            }
            /* CAST's errors are not asynchronous (plugin.h): the op counts in its batch (so the
             * wait below submits it), then the check's verdict is waited for */
            if (st == LAM_OK) {
                st = vk_batch_done_op(d, opname);
            }
            return st == LAM_OK ? vk_buffers_check_errors(d) : st;
        }
        return vk_run_elementwise(d, call, opname, vin);
    default:
        return vk_run_elementwise(d, call, opname, vin);
    }
}

/* The call, checked and converted, and within what the kernels can address. */
static lam_status check(vk_device *d, const lam_op_call *call, vk_call *vc, vk_view *vo,
                        vk_view *vin) {
    lam_status st = vk_check_call(d, call, vc, vo, vin);
    if (st == LAM_OK) {
        st = vk_check_limits(d, vc, vo, vin);
    }
    if (st == LAM_OK && lam_op_form_of(vc->op) == LAM_OP_FORM_OWN && vc->win.n_spatial != 0) {
        st = vk_window_limits(vc, lam_op_name(vc->op));
    }
    return st;
}

static int device_ok(const void *dev) {
    const vk_device *d = dev;
    return d != NULL && d->magic == VK_DEVICE_MAGIC;
}

int32_t vk_supports(void *dev, const lam_op_call *call) {
    if (!device_ok(dev) || call == NULL) {
        return 0;
    }
    vk_device *d = dev;
    vk_call vc;
    vk_view vo[VK_MAX_OUTPUTS];
    vk_view vin[VK_MAX_INPUTS];
    vk_diag_mute(1);
    lam_status st = check(d, call, &vc, vo, vin);
    vk_diag_mute(-1);
    return st == LAM_OK;
}

lam_status vk_execute(void *dev, const lam_op_call *call) {
    if (!device_ok(dev)) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, not a vulkan device");
    }
    vk_device *d = dev;
    vk_call vc;
    vk_view vo[VK_MAX_OUTPUTS];
    vk_view vin[VK_MAX_INPUTS];
    lam_status st = check(d, call, &vc, vo, vin);
    if (st == LAM_OK) {
        st = vk_check_sticky(d);
    }
    if (st != LAM_OK || vk_call_empty(&vc, vo)) {
        return st;
    }
    const char *opname = lam_op_name(vc.op);
    uint64_t before = vk_validation_count();
    vk_validation_set_op(opname);
    st = record(d, &vc, opname, &vo[0], vin);
    if (st == LAM_OK) {
        st = vk_check_validation(d, before, opname);
    }
    vk_validation_set_op(NULL);
    lam_status done = vk_batch_done_op(d, opname);
    return st != LAM_OK ? st : done;
}
