/*
 * One op to a backend (execute.c). Private to core/.
 */
#ifndef LAMINA_CORE_EXECUTE_H
#define LAMINA_CORE_EXECUTE_H

#include "lamina/plugin.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * Runs one op on the backend of ctx. Views are as the ABI has them (byte offset and strides,
 * struct_size set, as lam__tensor_view makes them); the backend sees them as they are.
 * lam__execute takes the 1.0-style (scalars, ints) of core's front ends and builds the op's
 * parameter struct; lam__execute_ops takes any number of outputs and the parameter struct.
 */
lam_status lam__execute_ops(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs,
                            uint32_t n_inputs, const lam_tensor_view *outputs, uint32_t n_outputs,
                            const void *params, uint32_t flags);
bool lam__supports_ops(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs, uint32_t n_inputs,
                       const lam_tensor_view *outputs, uint32_t n_outputs, const void *params,
                       uint32_t flags);
bool lam__supports(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs, uint32_t n_inputs,
                   const lam_tensor_view *output, const double *scalars, const int64_t *ints);
lam_status lam__execute(lam_ctx *ctx, lam_op op, const lam_tensor_view *inputs, uint32_t n_inputs,
                        lam_tensor_view *output, const double *scalars, const int64_t *ints);

#endif
