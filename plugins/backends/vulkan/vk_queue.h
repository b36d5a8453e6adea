/*
 * vk_queue.h - recording and submitting work: the ring of command batches, barriers from the
 * access tracking, deferred frees, sticky and asynchronous errors. Above vk_memory.
 */
#ifndef LAMINA_VK_QUEUE_H
#define LAMINA_VK_QUEUE_H

#include "vk_device.h"

lam_status vk_queue_init(vk_device *d);
/* Releases the ring (the device is idle: vkDeviceWaitIdle ran). */
void vk_queue_fini(vk_device *d);
/* The batch being recorded, begun if needed (waits for a ring slot when all are in flight). */
lam_status vk_batch_current(vk_device *d, vk_batch **out);
/*
 * Declares the buffer ranges the next command touches; inserts a pipeline barrier when one of
 * them overlaps a range written (or, for a write, read) by earlier commands of this batch.
 */
lam_status vk_track(vk_device *d, vk_batch *b, const vk_access *acc, size_t n);
/* Counts one recorded command (op name for messages); submits when the batch is full. */
lam_status vk_batch_done_op(vk_device *d, const char *op);
/* Submits the batch being recorded (if any) without waiting. */
lam_status vk_flush(vk_device *d);
/* Submits and waits for everything; reports an asynchronous error (and clears it). */
lam_status vk_wait_all(vk_device *d);
/* Submits and waits for everything; asynchronous errors stay for the next synchronizing
 * call. Returns only the sticky device-lost error. */
lam_status vk_wait_quiet(vk_device *d);
/* Nonzero when work recorded or submitted may still use b. */
int vk_buffer_busy(const vk_device *d, const vk_buffer *b);
/* Marks b as used by the batch being recorded. */
void vk_buffer_touch(vk_device *d, vk_buffer *b);
/* Frees now when no pending batch may use b, else after the batch that last used it. */
void vk_free_deferred(vk_device *d, vk_buffer *b);
/* LAM_OK, or the sticky device-lost error. */
lam_status vk_check_sticky(vk_device *d);
/* After an op was recorded: a validation message raised while recording fails the op. */
lam_status vk_check_validation(vk_device *d, uint64_t before, const char *op);

#endif /* LAMINA_VK_QUEUE_H */
