/*
 * vk_buffers.h - the backend's buffer callbacks (alloc, free, write, read, copy): checked
 * arguments, then direct host access to mapped memory or copies recorded into the queue.
 */
#ifndef LAMINA_VK_BUFFERS_H
#define LAMINA_VK_BUFFERS_H

#include "vk_device.h"

lam_status vk_buffer_alloc(void *dev, size_t bytes, void **buffer);
void vk_buffer_free(void *dev, void *buffer);
lam_status vk_buffer_write(void *dev, void *buffer, size_t offset, const void *src, size_t bytes);
lam_status vk_buffer_read(void *dev, const void *buffer, size_t offset, void *dst, size_t bytes);
lam_status vk_buffer_copy(void *dev, void *dst, size_t dst_offset, const void *src,
                          size_t src_offset, size_t bytes);

/* After a synchronizing wait: reports (and clears) an error an op raised on the device (a
 * bad index: LAM_ERR_INVALID_ARGUMENT naming the op, position and value). */
lam_status vk_buffers_check_errors(vk_device *d);

#endif /* LAMINA_VK_BUFFERS_H */
