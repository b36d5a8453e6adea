/*
 * The neural-network ops (ops_window.c, ops_conv.c, ops_moments.c): the forms the generic host
 * op entry needs beyond lamina.h's front ends. Private to core/. Each checks its operands,
 * returns new tensors, runs on the operands' backend (or the CPU one, staged) and records
 * autograd like the public ops.
 */
#ifndef LAMINA_CORE_OPS_NN_H
#define LAMINA_CORE_OPS_NN_H

#include "lamina/lamina.h"

#include <stdint.h>

/*
 * Output sizes of a window op over an (H, W) image with these parameters, by the header's
 * rules (CEIL_MODE included); checks the parameters (n_spatial 2, kernel, stride and dilation
 * >= 1, pads >= 0, known flags) and refuses an empty output (LAM_ERR_SHAPE). `fn` is the
 * subject of the message.
 */
lam_status lam__window_out(const char *fn, const lam_window_params *w, int64_t h, int64_t wd,
                           int64_t *oh, int64_t *ow);

/* IM2COL of x (N, C, H, W) into (N, C*KH*KW, OH*OW); differentiated by COL2IM. */
lam_status lam__op_im2col(const lam_tensor *x, const lam_window_params *w, lam_tensor **out);
/* COL2IM of x (N, C*KH*KW, OH*OW) into an image of `shape` (N, C, H, W); differentiated by
 * IM2COL. */
lam_status lam__op_col2im(const lam_tensor *x, const lam_window_params *w, const lam_shape *shape,
                          lam_tensor **out);
/* MAX_POOL: values (differentiated) and, when indices != NULL, the I32 indices. Refuses a
 * window lying wholly in the padding. */
lam_status lam__op_max_pool(const lam_tensor *x, const lam_window_params *w, lam_tensor **out,
                            lam_tensor **indices);
/* MAX_POOL_BACKWARD: g (N, C, OH, OW), indices as MAX_POOL wrote them, into `shape` (N, C, H,
 * W). Not differentiable: LAM_ERR_UNSUPPORTED when recording and g needs a gradient. */
lam_status lam__op_max_pool_backward(const lam_tensor *g, const lam_tensor *indices,
                                     const lam_window_params *w, const lam_shape *shape,
                                     lam_tensor **out);
/* AVG_POOL and its adjoint AVG_POOL_BACKWARD (into `shape`), each differentiated by the other. */
lam_status lam__op_avg_pool(const lam_tensor *x, const lam_window_params *w, lam_tensor **out);
lam_status lam__op_avg_pool_backward(const lam_tensor *g, const lam_window_params *w,
                                     const lam_shape *shape, lam_tensor **out);
/* PAD with the host op's parameter struct (before/after per axis of x, value): lam_op_pad. */
lam_status lam__op_pad(const lam_tensor *x, const lam_pad_params *p, lam_tensor **out);
/* MOMENTS over `axes` (lam_op_moments), with `fn` as the subject of messages. */
lam_status lam__moments(const char *fn, const lam_tensor *x, const int32_t *axes, uint32_t n_axes,
                        int32_t keepdims, lam_tensor **mean_out, lam_tensor **var_out);
/*
 * LAYER_NORM over x's last axis (n): y (x's shape) differentiated as one node through
 * LAYER_NORM_BACKWARD; gamma and beta float32 (n) on x's context, eps finite and >= 0. With
 * mean and rstd non-NULL (both), also the statistics, shape (rows) (not differentiated). Runs
 * the fused op where x's backend supports it, else its composition of basic ops.
 */
lam_status lam__layer_norm(const char *fn, const lam_tensor *x, const lam_tensor *gamma,
                           const lam_tensor *beta, double eps, lam_tensor **y, lam_tensor **mean,
                           lam_tensor **rstd);
/* LAYER_NORM_BACKWARD: dx and, with dgamma and dbeta non-NULL (both), their gradients. Not
 * differentiable: LAM_ERR_UNSUPPORTED when recording and an operand needs a gradient. */
lam_status lam__layer_norm_backward(const char *fn, const lam_tensor *dy, const lam_tensor *x,
                                    const lam_tensor *mean, const lam_tensor *rstd,
                                    const lam_tensor *gamma, lam_tensor **dx, lam_tensor **dgamma,
                                    lam_tensor **dbeta);

#endif
