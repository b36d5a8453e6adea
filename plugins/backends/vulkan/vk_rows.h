/*
 * vk_rows.h - recording GATHER_ROWS and SCATTER_ADD_ROWS (rows.comp) on a call that vk_check
 * checked. A bad index is recorded on the device in the error word (vk_device.err) and
 * reported by the next synchronizing call (vk_buffers_check_errors). Level 6.
 */
#ifndef LAMINA_VK_ROWS_H
#define LAMINA_VK_ROWS_H

#include "vk_call.h"
#include "vk_pipeline.h"

lam_status vk_run_rows(vk_device *d, const vk_call *call, const char *opname, const vk_view *vo,
                       const vk_view *vin);

/* CAST float32 -> int32: checks a contiguous x on the device (NaN, out of range) into the
 * error buffer, as the rows' bad indices; the caller waits for the verdict (CAST's errors are
 * synchronous). The conversion itself is the elementwise kernel's. */
lam_status vk_cast_check(vk_device *d, const vk_call *call, const char *opname, const vk_view *vin);

#endif /* LAMINA_VK_ROWS_H */
