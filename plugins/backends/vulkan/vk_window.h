/*
 * vk_window.h - recording the sliding-window ops (IM2COL, COL2IM, MAX_POOL(_BACKWARD),
 * AVG_POOL(_BACKWARD)) on a call that vk_check checked. Level 6: above vk_pipeline.
 */
#ifndef LAMINA_VK_WINDOW_H
#define LAMINA_VK_WINDOW_H

#include "vk_call.h"
#include "vk_pipeline.h"

lam_status vk_run_window(vk_device *d, const vk_call *call, const char *opname, const vk_view *vo,
                         const vk_view *vin);
/* Output size of a sliding window along one axis, as lam_window_params defines it (0 when
 * not even one window fits). */
int64_t vk_window_out(int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pa, int64_t dil,
                      int ceil_mode);
/* LAM_ERR_UNSUPPORTED when the window's loops or coordinates exceed what the shader does. */
lam_status vk_window_limits(const vk_call *call, const char *opname);

#endif /* LAMINA_VK_WINDOW_H */
