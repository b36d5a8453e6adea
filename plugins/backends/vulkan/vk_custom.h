/*
 * vk_custom.h - run_kernel: dispatching a plugin kernel's SPIR-V (lam_kernel_impl.spirv) with
 * its operands bound as storage buffers 0.. (inputs, then outputs) and the push constants the
 * header specifies; one pipeline per implementation, made on first use. Level 6.
 */
#ifndef LAMINA_VK_CUSTOM_H
#define LAMINA_VK_CUSTOM_H

#include "vk_pipeline.h"

lam_status vk_run_kernel(vk_device *d, const lam_kernel_impl *impl, const void *params,
                         const lam_kernel_args *args);
/* Destroys the cached pipelines (the device is idle). */
void vk_custom_fini(vk_device *d);

#endif /* LAMINA_VK_CUSTOM_H */
