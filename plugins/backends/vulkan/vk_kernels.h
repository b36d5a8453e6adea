/*
 * vk_kernels.h - recording reductions, softmax / log-softmax and GEMM on a call that
 * vk_execute checked. Above vk_pipeline.
 */
#ifndef LAMINA_VK_KERNELS_H
#define LAMINA_VK_KERNELS_H

#include "vk_call.h"
#include "vk_pipeline.h"

lam_status vk_run_reduce(vk_device *d, const vk_call *call, const char *opname);
lam_status vk_run_moments(vk_device *d, const vk_call *call, const char *opname);
lam_status vk_run_softmax(vk_device *d, const vk_call *call, const char *opname, const vk_view *vo,
                          const vk_view *vx);
/* GEMM; act (a lam_op number, 0 none) is applied to each stored value after the last K range. */
lam_status vk_run_gemm(vk_device *d, const vk_call *call, const char *opname, const vk_view *vc,
                       const vk_view *va, const vk_view *vb, int32_t act);

#endif /* LAMINA_VK_KERNELS_H */
