/*
 * One op to a backend (execute.c): core builds its views as the ABI has them (byte offsets and
 * strides, struct_size set: lam__tensor_view and the ops' own view builders), so the call the
 * backend sees points at the caller's views as they are: no copy, no conversion per operand.
 */
#include "execute.h"
#include "context.h"
#include "error.h"
#include "op_name.h"
#include "registry.h"
#include "tensor.h"

#include <string.h>

static lam_status shut_down(const char *fn) {
    return lam__error(LAM_ERR_STATE,
                      "%s: Runtime shut down, the tensor's data was freed by lam_shutdown()", fn);
}

/* The 2.0 parameter struct of a core op from the (scalars, ints) the front ends pass. */
typedef union op_params {
    lam_scalar_params scalar;
    lam_gemm_params gemm;
} op_params;

static const void *legacy_params(lam_op op, const double *sc, const int64_t *in, op_params *p) {
    static const double zero[4] = {0, 0, 0, 0};
    static const int64_t izero[4] = {0, 0, 0, 0};
    sc = sc ? sc : zero;
    in = in ? in : izero;
    switch (op) {
    case LAM_OP_FILL:
    case LAM_OP_ADD_SCALAR:
    case LAM_OP_MUL_SCALAR:
    case LAM_OP_RSUB_SCALAR:
    case LAM_OP_DIV_SCALAR:
    case LAM_OP_RDIV_SCALAR:
    case LAM_OP_POW_SCALAR:
    case LAM_OP_AXPBY:
    case LAM_OP_CLAMP:
        p->scalar = (lam_scalar_params)LAM_SCALAR_PARAMS_INIT;
        p->scalar.a = sc[0];
        p->scalar.b = sc[1];
        return &p->scalar;
    case LAM_OP_GEMM:
    case LAM_OP_LINEAR:
        p->gemm = (lam_gemm_params)LAM_GEMM_PARAMS_INIT;
        p->gemm.flags = (in[0] ? LAM_GEMM_TRANS_A : 0u) | (in[1] ? LAM_GEMM_TRANS_B : 0u);
        p->gemm.alpha = op == LAM_OP_GEMM ? sc[0] : 1.0;
        p->gemm.beta = op == LAM_OP_GEMM ? sc[1] : 0.0;
        p->gemm.act = op == LAM_OP_LINEAR ? (lam_op)in[2] : LAM_OP_INVALID;
        return &p->gemm;
    default:
        return NULL;
    }
}

#define EXEC_MAX_OPERANDS 8

/* The backend's view of one call: the caller's views behind pointer arrays. */
typedef struct abi_call {
    lam_op_call call;
    const lam_tensor_view *inp[EXEC_MAX_OPERANDS], *outp[EXEC_MAX_OPERANDS];
} abi_call;

/* Every view in the ABI's form (struct_size set by the builders; a view left in any other form
 * would be read wrongly, so it is refused here, cheaply, before the backend sees it). */
static lam_status build_call(abi_call *c, lam_op op, const lam_tensor_view *inputs,
                             uint32_t n_inputs, const lam_tensor_view *outputs, uint32_t n_outputs,
                             const void *params, uint32_t flags) {
    uint32_t bad = 0;
    for (uint32_t i = 0; i < n_inputs; i++) {
        bad |= inputs[i].struct_size ^ (uint32_t)sizeof(lam_tensor_view);
        c->inp[i] = &inputs[i];
    }
    for (uint32_t i = 0; i < n_outputs; i++) {
        bad |= outputs[i].struct_size ^ (uint32_t)sizeof(lam_tensor_view);
        c->outp[i] = &outputs[i];
    }
    if (bad != 0) {
        return lam__error(LAM_ERR_INTERNAL, "%s: Internal error, a view not in the ABI's form",
                          lam__op_name(op));
    }
    memset(&c->call, 0, sizeof c->call);
    c->call.struct_size = (uint32_t)sizeof c->call;
    c->call.abi_version = LAM_ABI_VERSION;
    c->call.op = op;
    c->call.flags = flags;
    c->call.n_inputs = n_inputs;
    c->call.n_outputs = n_outputs;
    c->call.inputs = n_inputs ? c->inp : NULL;
    c->call.outputs = c->outp;
    c->call.params = params;
    return LAM_OK;
}

lam_status lam__execute_ops(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs,
                            uint32_t n_inputs, const lam_tensor_view *outputs, uint32_t n_outputs,
                            const void *params, uint32_t flags) {
    if (ctx == NULL) {
        return shut_down(lam__op_name(op));
    }
    if (n_inputs > EXEC_MAX_OPERANDS || n_outputs > EXEC_MAX_OPERANDS || n_outputs == 0) {
        return lam__error(LAM_ERR_INTERNAL,
                          "%s: %u inputs and %u outputs (1-8 outputs, at most 8 "
                          "inputs)",
                          lam__op_name(op), (unsigned)n_inputs, (unsigned)n_outputs);
    }
    abi_call c;
    lam_status st = build_call(&c, op, inputs, n_inputs, outputs, n_outputs, params, flags);
    if (st == LAM_OK) {
        st = lam__call_enter(lam__op_name(op));
    }
    if (st != LAM_OK) {
        return st;
    }
    uint64_t mark = lam__error_mark();
    st = ctx->backend->desc.execute(ctx->dev, &c.call);
    lam__call_leave();
    if (st != LAM_OK) {
        st = lam__backend_status(st, mark, ctx->backend, "execute");
        return lam__error_prefix(st, "%s on %s", lam__op_name(op), ctx->name);
    }
    return LAM_OK;
}

bool lam__supports_ops(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs, uint32_t n_inputs,
                       const lam_tensor_view *outputs, uint32_t n_outputs, const void *params,
                       uint32_t flags) {
    if (ctx == NULL || n_inputs > EXEC_MAX_OPERANDS || n_outputs > EXEC_MAX_OPERANDS ||
        n_outputs == 0) {
        return false;
    }
    if (op >= LAM_OP_CONV && LAM_VERSION_MINOR(ctx->backend->desc.abi_version) < 2) {
        return false; /* a backend built before 2.2 does not know the op's number */
    }
    abi_call c;
    if (build_call(&c, op, inputs, n_inputs, outputs, n_outputs, params, flags) != LAM_OK) {
        return false;
    }
    return ctx->backend->desc.supports(ctx->dev, &c.call) != 0;
}

static uint32_t legacy_flags(lam_op op, const lam_tensor_view *inputs, uint32_t n_inputs,
                             const lam_tensor_view *output) {
    for (uint32_t i = 0; i < n_inputs; i++) {
        if (inputs[i].buffer == output->buffer) {
            return op == LAM_OP_AXPBY || lam_op_form_of(op) == LAM_OP_FORM_UNARY ||
                           lam_op_form_of(op) == LAM_OP_FORM_BINARY
                       ? LAM_CALL_IN_PLACE
                       : 0u;
        }
    }
    return 0u;
}

lam_status lam__execute(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs, uint32_t n_inputs,
                        lam_tensor_view *output, const double *scalars, const int64_t *ints) {
    op_params p;
    const void *params = legacy_params(op, scalars, ints, &p);
    return lam__execute_ops(ctx, op, inputs, n_inputs, output, 1, params,
                            legacy_flags(op, inputs, n_inputs, output));
}

bool lam__supports(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs, uint32_t n_inputs,
                   const lam_tensor_view *output, const double *scalars, const int64_t *ints) {
    op_params p;
    const void *params = legacy_params(op, scalars, ints, &p);
    return lam__supports_ops(ctx, op, inputs, n_inputs, output, 1, params,
                             legacy_flags(op, inputs, n_inputs, output));
}
