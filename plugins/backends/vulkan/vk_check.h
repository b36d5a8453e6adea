/*
 * vk_check.h - checking an ABI 2.0 op call and converting it to a vk_call (views in element
 * units, parameters copied out), and the device limits a call must fit. Level 6: above
 * vk_pipeline (whose vk_view it fills), beside the kernels.
 */
#ifndef LAMINA_VK_CHECK_H
#define LAMINA_VK_CHECK_H

#include "vk_call.h"
#include "vk_pipeline.h"

/*
 * Checks the call (op implemented, arity, parameters, every view's dtype, byte alignment and
 * bounds, the shapes the op's semantics ask for) and fills vc, vo (one per output) and vin (one
 * per input). Errors: LAM_ERR_UNSUPPORTED for an op or dtype this backend does not run,
 * LAM_ERR_INVALID_ARGUMENT, LAM_ERR_SHAPE, LAM_ERR_DTYPE, each with a message.
 */
lam_status vk_check_call(vk_device *d, const lam_op_call *call, vk_call *vc, vk_view *vo,
                         vk_view *vin);
/* LAM_ERR_UNSUPPORTED when a checked call exceeds what the shaders can address on this device
 * (a window over maxStorageBufferRange, a size beyond 32 bits). */
lam_status vk_check_limits(const vk_device *d, const vk_call *vc, const vk_view *vo,
                           const vk_view *vin);
/* Nonzero when the call has nothing to compute (an output with no elements). */
int vk_call_empty(const vk_call *vc, const vk_view *vo);

#endif /* LAMINA_VK_CHECK_H */
