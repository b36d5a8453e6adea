/*
 * vk_elementwise.h - recording the elementwise ops (fill, unary, binary, copy) on a call that
 * vk_execute checked. Above vk_pipeline, beside vk_kernels.
 */
#ifndef LAMINA_VK_ELEMENTWISE_H
#define LAMINA_VK_ELEMENTWISE_H

#include "vk_call.h"
#include "vk_pipeline.h"

/* vin holds the checked views of the call's inputs (up to 2 are read). */
lam_status vk_run_elementwise(vk_device *d, const vk_call *call, const char *opname,
                              const vk_view *vin);

#endif /* LAMINA_VK_ELEMENTWISE_H */
