/*
 * One op on whole tensors, with the host's fallback: the op runs on the tensors' backend when
 * it supports the call, else on the CPU backend with the operands staged through host memory
 * (copied to the CPU and the results copied back), so a backend can start with the 1.0 ops.
 */
#include "op_run.h"
#include "execute.h"
#include "context.h"
#include "error.h"
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

#define RUN_MAX 8

static lam_status check(const char *fn, uint32_t n_in, uint32_t n_out) {
    if (n_in > RUN_MAX || n_out == 0 || n_out > RUN_MAX) {
        return lam__error(LAM_ERR_INTERNAL, "%s: %u inputs and %u outputs (at most %d)", fn,
                          (unsigned)n_in, (unsigned)n_out, RUN_MAX);
    }
    return LAM_OK;
}

static void views(lam_tensor *const *t, uint32_t n, lam_tensor_view *v) {
    for (uint32_t i = 0; i < n; i++) {
        lam__tensor_view(t[i], &v[i]);
    }
}

lam_status lam__run_op(lam_op op, lam_ctx *ctx, lam_tensor *const *in, uint32_t n_in,
                       lam_tensor *const *out, uint32_t n_out, const void *params) {
    lam_status st = check(lam_op_name(op), n_in, n_out);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor_view vi[RUN_MAX], vo[RUN_MAX];
    views(in, n_in, vi);
    views(out, n_out, vo);
    if (lam__supports_ops(ctx, op, vi, n_in, vo, n_out, params, 0)) {
        return lam__execute_ops(ctx, op, vi, n_in, vo, n_out, params, 0);
    }
    lam_ctx *cpu = NULL;
    st = lam_ctx_get("cpu", &cpu);
    if (st != LAM_OK || cpu == ctx) {
        return lam__error(LAM_ERR_UNSUPPORTED, "%s: Unsupported on %s for these operands%s",
                          lam_op_name(op), ctx->name,
                          cpu == ctx ? "" : ", and no CPU backend to fall back on");
    }
    /* Staging: copies on the CPU, the op there, the outputs copied back. */
    lam_tensor *ci[RUN_MAX] = {NULL}, *co[RUN_MAX] = {NULL};
    for (uint32_t i = 0; st == LAM_OK && i < n_in; i++) {
        st = lam_tensor_copyto(in[i], cpu, &ci[i]);
    }
    for (uint32_t i = 0; st == LAM_OK && i < n_out; i++) {
        st = lam_tensor_copyto(out[i], cpu, &co[i]); /* ops may read their output */
    }
    if (st == LAM_OK) {
        views(ci, n_in, vi);
        views(co, n_out, vo);
        st = lam__supports_ops(cpu, op, vi, n_in, vo, n_out, params, 0)
                 ? lam__execute_ops(cpu, op, vi, n_in, vo, n_out, params, 0)
                 : lam__error(LAM_ERR_UNSUPPORTED,
                              "%s: Unsupported on %s and on %s for these "
                              "operands",
                              lam_op_name(op), ctx->name, cpu->name);
    }
    /* Back through host memory: out lives on ctx and co on the CPU, so no op can copy it. */
    for (uint32_t i = 0; st == LAM_OK && i < n_out; i++) {
        size_t bytes = (size_t)co[i]->numel * lam_dtype_size(co[i]->dtype);
        void *tmp = malloc(bytes ? bytes : 1);
        st = tmp == NULL ? lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory staging %zu bytes",
                                      lam_op_name(op), bytes)
                         : lam_tensor_read_bytes(co[i], tmp, bytes);
        if (st == LAM_OK) {
            st = lam_tensor_write_bytes(out[i], tmp, bytes);
        }
        free(tmp);
    }
    for (uint32_t i = 0; i < RUN_MAX; i++) {
        lam_tensor_release(ci[i]);
        lam_tensor_release(co[i]);
    }
    return st;
}
