/*
 * Ops (ops.c, ops_linalg.c): the forms the host table gives plugins, op names, and the fused
 * in-place update. Private to core/.
 */
#ifndef LAMINA_CORE_OPS_H
#define LAMINA_CORE_OPS_H

#include "lamina/lamina.h"

#include <stdint.h>

/* LAM_OK when t is float32, else LAM_ERR_DTYPE: "<fn>: Dtype mismatch, <which> is int32,
 * expected float32". */
lam_status lam__need_f32(const char *fn, const lam_tensor *t, const char *which);
lam_status lam__op_unary(lam_op op, const lam_tensor *a, lam_tensor **out);
lam_status lam__op_scalar(lam_op op, const lam_tensor *a, float s, lam_tensor **out);
lam_status lam__op_reduce(lam_op op, const lam_tensor *a, const int32_t *axes, uint32_t n_axes,
                          int32_t keepdims, lam_tensor **out);
lam_status lam__op_softmax(const lam_tensor *a, int32_t axis, int32_t log, lam_tensor **out);
/* x = a*x + b*y in place (same shape and context), through the backend's fused op when it has
 * one. Not recorded. */
lam_status lam__axpby_inplace(lam_tensor *x, float a, const lam_tensor *y, float b);

#endif
