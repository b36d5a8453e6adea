/*
 * Plugin kernels (lam_kernel_call): a kernel runs on the inputs' backend through its
 * run_kernel callback when the kernel has an implementation for that backend and the
 * implementation says yes; otherwise the host stages the operands through host memory and runs
 * the kernel's reference. Either way one autograd node is recorded, whose gradient is the
 * kernel's backward (written with host ops).
 */
#include "kernel.h"
#include "backward.h"
#include "callback.h"
#include "context.h"
#include "error.h"
#include "execute.h"
#include "registry.h"
#include "shape.h"
#include "tape.h"
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

#define KMAX 16

/* Host copies of the operands for the reference, or backend views for an implementation. */
typedef struct operands {
    lam_tensor_view view[2 * KMAX];
    lam_kernel_operand op[2 * KMAX];
    const lam_kernel_operand *ptr[2 * KMAX];
    void *host[2 * KMAX];
    lam_kernel_args args;
} operands;

static void operands_init(operands *o, uint32_t n_in, uint32_t n_out) {
    memset(o, 0, sizeof *o);
    o->args.struct_size = (uint32_t)sizeof o->args;
    o->args.n_inputs = n_in;
    o->args.n_outputs = n_out;
    o->args.inputs = o->ptr;
    o->args.outputs = o->ptr + n_in;
}

static void operand_set(operands *o, uint32_t i, const lam_tensor *t) {
    lam__tensor_view(t, &o->view[i]);
    o->op[i].struct_size = (uint32_t)sizeof o->op[i];
    o->op[i].view = &o->view[i];
    o->ptr[i] = &o->op[i];
}

static void operands_free(operands *o) {
    for (uint32_t i = 0; i < 2 * KMAX; i++) {
        free(o->host[i]);
    }
}

/* The kernel's implementation for the tensors' backend, if it has one that says yes. */
static const lam_kernel_impl *pick_impl(const lam__kernel *k, lam_ctx *ctx, const void *params,
                                        const operands *o) {
    const lam_backend_desc *bd = &ctx->backend->desc;
    if (bd->run_kernel == NULL) {
        return NULL;
    }
    for (uint32_t i = 0; i < k->desc.n_impls; i++) {
        const lam_kernel_impl *m = k->desc.impls[i];
        if (strcmp(m->backend, bd->name) == 0 &&
            (m->struct_size <= offsetof(lam_kernel_impl, supports) || m->supports == NULL ||
             m->supports(k->desc.user, params, &o->args))) {
            return m;
        }
    }
    return NULL;
}

/* Runs the reference on host copies: inputs read, outputs written back. */
static lam_status run_reference(const lam__kernel *k, const void *params, uint32_t n_in,
                                lam_tensor *const *in, uint32_t n_out, lam_tensor **outs,
                                operands *o) {
    lam_status st = LAM_OK;
    for (uint32_t i = 0; st == LAM_OK && i < n_in + n_out; i++) {
        const lam_tensor *t = i < n_in ? in[i] : outs[i - n_in];
        size_t bytes = (size_t)lam_tensor_numel(t) * lam_dtype_size(lam_tensor_dtype(t));
        o->host[i] = malloc(bytes ? bytes : 1);
        if (o->host[i] == NULL) {
            return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory staging %zu bytes",
                              k->desc.name, bytes);
        }
        o->op[i].data = o->host[i];
        if (i < n_in) {
            st = lam_tensor_read_bytes(t, o->host[i], bytes);
        }
    }
    if (st != LAM_OK) {
        return st;
    }
    uint64_t mark = lam__error_mark();
    st = k->desc.reference(k->desc.user, params, &o->args);
    if (st != LAM_OK) {
        return lam__plugin_status(st, mark, k->plugin->path, "kernel", k->desc.name, "reference");
    }
    for (uint32_t i = 0; st == LAM_OK && i < n_out; i++) {
        size_t bytes =
            (size_t)lam_tensor_numel(outs[i]) * lam_dtype_size(lam_tensor_dtype(outs[i]));
        st = lam_tensor_write_bytes(outs[i], o->host[n_in + i], bytes);
    }
    return st;
}

/* The recorded node's closure: the kernel and a copy of its parameters. */
typedef struct knode {
    const lam__kernel *k;
    uint32_t n_in;
    unsigned char params[96];
} knode;

static lam_status kernel_backward(void *ctx, const lam__node *n, lam_tensor *g) {
    const knode *kn = ctx;
    lam_tensor *grads[KMAX] = {NULL};
    lam_tensor *outs[1] = {n->out};
    const lam_tensor *gouts[1] = {g};
    uint64_t mark = lam__error_mark();
    int was = lam_autograd_record_begin(0);
    lam_status st =
        kn->k->desc.backward(kn->k->desc.user, kn->params, kn->n_in, n->in, 1, outs, gouts, grads);
    lam_autograd_record_end(was);
    if (st != LAM_OK) {
        st = lam__plugin_status(st, mark, kn->k->plugin->path, "kernel", kn->k->desc.name,
                                "backward");
    }
    for (uint32_t i = 0; i < kn->n_in; i++) {
        if (st == LAM_OK && grads[i] != NULL && lam__needs_grad(n->in[i])) {
            if (!lam_shape_equal(lam_tensor_shape(grads[i]), lam_tensor_shape(n->in[i]))) {
                st = lam__error(LAM_ERR_INTERNAL,
                                "%s: Backward gave input %u a gradient of another shape (a bug "
                                "in the kernel's plugin)",
                                kn->k->desc.name, (unsigned)i);
            } else {
                st = lam__grad_accumulate(n->in[i], grads[i]);
            }
        }
        lam_tensor_release(grads[i]);
    }
    return st;
}

static lam_status check_call(const char *name, const lam__kernel *k, uint32_t n_in,
                             lam_tensor *const *in, uint32_t n_out, lam_tensor **outs) {
    if (k == NULL) {
        return lam__error(LAM_ERR_NOT_FOUND, "lam_kernel_call: Not found, no kernel named '%s'",
                          name ? name : "(null)");
    }
    if (n_in != k->desc.n_inputs || n_out != k->desc.n_outputs || in == NULL || outs == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid argument, %u inputs and %u outputs given, it takes %u and "
                          "%u",
                          k->desc.name, (unsigned)n_in, (unsigned)n_out, (unsigned)k->desc.n_inputs,
                          (unsigned)k->desc.n_outputs);
    }
    for (uint32_t i = 0; i < n_in; i++) {
        if (in[i] == NULL || lam_tensor_ctx(in[i]) == NULL ||
            lam_tensor_ctx(in[i]) != lam_tensor_ctx(in[0])) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Invalid argument, input %u is NULL, shut down or on another "
                              "context than input 0",
                              k->desc.name, (unsigned)i);
        }
    }
    return LAM_OK;
}

/* Output infos from the kernel's shape function, as new tensors on the inputs' context. */
static lam_status make_outputs(const lam__kernel *k, const void *params, uint32_t n_in,
                               lam_tensor *const *in, uint32_t n_out, lam_tensor **outs) {
    lam_tensor_info ii[KMAX], oi[KMAX];
    const lam_tensor_info *ip[KMAX];
    lam_tensor_info *op[KMAX];
    for (uint32_t i = 0; i < n_in; i++) {
        const lam_shape *s = lam_tensor_shape(in[i]);
        ii[i] = (lam_tensor_info)LAM_TENSOR_INFO_INIT;
        ii[i].dtype = lam_tensor_dtype(in[i]);
        ii[i].ndim = s->ndim;
        memcpy(ii[i].dims, s->dims, sizeof ii[i].dims);
        ip[i] = &ii[i];
    }
    for (uint32_t i = 0; i < n_out; i++) {
        oi[i] = (lam_tensor_info)LAM_TENSOR_INFO_INIT;
        op[i] = &oi[i];
    }
    uint64_t mark = lam__error_mark();
    lam_status st = k->desc.shape(k->desc.user, params, n_in, ip, n_out, op);
    if (st != LAM_OK) {
        return lam__plugin_status(st, mark, k->plugin->path, "kernel", k->desc.name, "shape");
    }
    for (uint32_t i = 0; st == LAM_OK && i < n_out; i++) {
        lam_shape s = {.ndim = oi[i].ndim};
        if (oi[i].ndim > LAM_MAX_DIMS) {
            return lam__error(LAM_ERR_INTERNAL,
                              "%s: Shape function gave %u dims (a bug in the "
                              "kernel's plugin)",
                              k->desc.name, (unsigned)oi[i].ndim);
        }
        memcpy(s.dims, oi[i].dims, sizeof s.dims);
        st = lam__tensor_alloc_dtype(lam_tensor_ctx(in[0]), oi[i].dtype, &s, &outs[i]);
    }
    return st;
}

lam_status lam_kernel_call(const char *name, const void *params, uint32_t n_inputs,
                           lam_tensor *const *inputs, uint32_t n_outputs, lam_tensor **outputs) {
    const lam__kernel *k = name != NULL ? lam__kernel_find(name) : NULL;
    lam_status st = check_call(name, k, n_inputs, inputs, n_outputs, outputs);
    if (st != LAM_OK) {
        return st;
    }
    for (uint32_t i = 0; i < n_outputs; i++) {
        outputs[i] = NULL;
    }
    bool grad = false;
    for (uint32_t i = 0; i < n_inputs; i++) {
        grad = grad || lam__needs_grad(inputs[i]);
    }
    grad = grad && lam__recording();
    if (grad && (k->desc.backward == NULL || n_outputs != 1)) {
        return lam__error(LAM_ERR_UNSUPPORTED,
                          "%s: Cannot differentiate, the kernel %s, and an input needs a gradient "
                          "(call it with recording off, or detach the input)",
                          k->desc.name,
                          k->desc.backward == NULL ? "has no backward" : "has several outputs");
    }
    st = make_outputs(k, params, n_inputs, inputs, n_outputs, outputs);
    operands *o = st == LAM_OK ? malloc(sizeof *o) : NULL;
    if (st == LAM_OK && o == NULL) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", k->desc.name);
    }
    if (st == LAM_OK) {
        operands_init(o, n_inputs, n_outputs);
        o->args.params_size = params != NULL ? k->desc.params_size : 0;
        for (uint32_t i = 0; i < n_inputs + n_outputs; i++) {
            operand_set(o, i, i < n_inputs ? inputs[i] : outputs[i - n_inputs]);
        }
        lam_ctx *ctx = lam_tensor_ctx(inputs[0]);
        const lam_kernel_impl *m = pick_impl(k, ctx, params, o);
        if (m != NULL) {
            uint64_t mark = lam__error_mark();
            st = ctx->backend->desc.run_kernel(ctx->dev, m, k->desc.user, params, &o->args);
            st = lam__backend_status(st, mark, ctx->backend, "run_kernel");
            if (st != LAM_OK) {
                lam__error_prefix(st, "%s on %s", k->desc.name, ctx->name);
            }
        } else {
            st = run_reference(k, params, n_inputs, inputs, n_outputs, outputs, o);
        }
        operands_free(o);
        free(o);
    }
    if (st == LAM_OK && grad) {
        knode *kn = calloc(1, sizeof *kn);
        if (kn == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory recording", k->desc.name);
        } else {
            kn->k = k;
            kn->n_in = n_inputs;
            if (params != NULL && k->desc.params_size > 0) {
                memcpy(kn->params, params, k->desc.params_size);
            }
            st = lam__record_closure(inputs, n_inputs, &outputs[0],
                                     (lam__closure){kernel_backward, kn, free});
        }
    }
    if (st != LAM_OK) {
        for (uint32_t i = 0; i < n_outputs; i++) {
            lam_tensor_release(outputs[i]);
            outputs[i] = NULL;
        }
    }
    return st;
}
