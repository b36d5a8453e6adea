/*
 * vk_memory.h - device memory: blocks sub-allocated first-fit. Below the queue: it never waits
 * for work; whoever frees a buffer that pending work may use goes through vk_free_deferred
 * (vk_queue.h).
 */
#ifndef LAMINA_VK_MEMORY_H
#define LAMINA_VK_MEMORY_H

#include "vk_device.h"

/* Picks the memory types and alignment of a newly created device. */
lam_status vk_memory_init(vk_device *d);
/* Frees every block (the device is idle). */
void vk_memory_fini(vk_device *d);
/* Reserves `bytes` from a compute block (host=0) or a staging block (host=1). */
lam_status vk_alloc(vk_device *d, size_t bytes, int host, vk_buffer **out);
/* Returns the range to its block now (the caller made sure no pending work uses it). */
void vk_release(vk_device *d, vk_buffer *b);

#endif /* LAMINA_VK_MEMORY_H */
