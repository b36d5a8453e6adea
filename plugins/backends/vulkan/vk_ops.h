/*
 * vk_ops.h - recording RANDOM (random.comp) and PAD (a fill and a copy through the elementwise
 * kernel) on a call that vk_check checked. Level 6: above vk_pipeline, beside the kernels.
 */
#ifndef LAMINA_VK_OPS_H
#define LAMINA_VK_OPS_H

#include "vk_call.h"
#include "vk_pipeline.h"

lam_status vk_run_random(vk_device *d, const vk_call *call, const char *opname, const vk_view *vo);
lam_status vk_run_pad(vk_device *d, const vk_call *call, const char *opname, const vk_view *vin);

#endif /* LAMINA_VK_OPS_H */
