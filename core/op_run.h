/*
 * One op on whole tensors with the host's CPU fallback (op_run.c). Private to core/.
 */
#ifndef LAMINA_CORE_OP_RUN_H
#define LAMINA_CORE_OP_RUN_H

#include "lamina/plugin.h"

/*
 * Runs `op` with contiguous views of the tensors (outputs allocated by the caller, read by ops
 * that read their output) on ctx's backend when it supports the call, else on the CPU backend
 * with the operands staged (copied there and the outputs copied back). Not recorded: the
 * front ends record. Errors: LAM_ERR_UNSUPPORTED when neither backend runs the call; the
 * backend's errors prefixed with the op and context.
 */
lam_status lam__run_op(lam_op op, lam_ctx *ctx, lam_tensor *const *in, uint32_t n_in,
                       lam_tensor *const *out, uint32_t n_out, const void *params);

#endif
