/*
 * vk_buffers.c - the buffer callbacks of the backend: alloc, free, write, read and copy.
 *
 * With host-visible device-local memory the host reads and writes the mapped blocks directly
 * (after waiting for work that may use the range); otherwise writes and reads go through a
 * host-visible staging buffer and a vkCmdCopyBuffer recorded in stream order.
 */
#include "vk_buffers.h"

#include "vk_memory.h"
#include "vk_queue.h"

#include <string.h>

static lam_status check_dev(const void *dev) {
    const vk_device *d = dev;
    if (d == NULL || d->magic != VK_DEVICE_MAGIC) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, not a vulkan device");
    }
    return LAM_OK;
}

static lam_status check_buffer(const vk_device *d, const void *buffer, const char *what) {
    const vk_buffer *b = buffer;
    if (b == NULL || b->magic != VK_BUFFER_MAGIC || b->dev != d) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, %s is not a live buffer of this vulkan device",
                        what);
    }
    return LAM_OK;
}

static lam_status check_range(const vk_buffer *b, size_t offset, size_t bytes, const char *verb) {
    if (offset > b->bytes || bytes > b->bytes - offset) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Out of bounds, %s %zu bytes at offset %zu of a %zu-byte buffer",
                        verb, bytes, offset, b->bytes);
    }
    return LAM_OK;
}

lam_status vk_buffer_alloc(void *dev, size_t bytes, void **buffer) {
    lam_status st = check_dev(dev);
    if (st != LAM_OK) {
        return st;
    }
    if (buffer == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, buffer is NULL");
    }
    *buffer = NULL;
    vk_device *d = dev;
    st = vk_check_sticky(d);
    if (st != LAM_OK) {
        return st;
    }
    vk_buffer *b = NULL;
    st = vk_alloc(d, bytes, 0, &b);
    if (st == LAM_OK) {
        *buffer = b;
    }
    return st;
}

void vk_buffer_free(void *dev, void *buffer) {
    if (buffer == NULL || check_dev(dev) != LAM_OK) {
        return;
    }
    vk_device *d = dev;
    vk_buffer *b = buffer;
    if (b->magic != VK_BUFFER_MAGIC || b->dev != d) {
        return; /* double free or foreign handle: refused, not obeyed */
    }
    vk_free_deferred(d, b);
}

/* Records a buffer-to-buffer copy into the current batch (with barriers as needed). */
static lam_status record_copy(vk_device *d, VkBuffer dst, VkDeviceSize dst_off, VkBuffer src,
                              VkDeviceSize src_off, VkDeviceSize bytes) {
    vk_batch *bt;
    lam_status st = vk_batch_current(d, &bt);
    if (st != LAM_OK) {
        return st;
    }
    vk_access acc[2] = {{src, src_off, src_off + bytes, 0}, {dst, dst_off, dst_off + bytes, 1}};
    st = vk_track(d, bt, acc, 2);
    if (st != LAM_OK) {
        return st;
    }
    VkBufferCopy region;
    region.srcOffset = src_off;
    region.dstOffset = dst_off;
    region.size = bytes;
    vkf.vkCmdCopyBuffer(bt->cmd, src, dst, 1, &region);
    return LAM_OK;
}

lam_status vk_buffer_write(void *dev, void *buffer, size_t offset, const void *src, size_t bytes) {
    lam_status st = check_dev(dev);
    vk_device *d = dev;
    if (st == LAM_OK) {
        st = check_buffer(d, buffer, "buffer");
    }
    if (st == LAM_OK) {
        st = check_range(buffer, offset, bytes, "writing");
    }
    if (st == LAM_OK) {
        st = vk_check_sticky(d);
    }
    if (st != LAM_OK || bytes == 0) {
        return st;
    }
    if (src == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, src is NULL");
    }
    vk_buffer *b = buffer;
    if (d->direct) {
        if (vk_buffer_busy(d, b)) {
            /* Work recorded earlier may still read or write this range: let it finish. The
             * asynchronous error, if any, stays for the next synchronizing call. */
            st = vk_wait_quiet(d);
            if (st != LAM_OK) {
                return st;
            }
        }
        memcpy((char *)b->block->mapped + b->offset + offset, src, bytes);
        return LAM_OK;
    }
    /* Staging: copy into host memory now, onto the device in stream order. */
    vk_buffer *stage = NULL;
    st = vk_alloc(d, bytes, 1, &stage);
    if (st != LAM_OK) {
        return st;
    }
    memcpy((char *)stage->block->mapped + stage->offset, src, bytes);
    vk_validation_set_op("buffer_write");
    uint64_t before = vk_validation_count();
    st = record_copy(d, b->block->buffer, b->offset + offset, stage->block->buffer, stage->offset,
                     bytes);
    if (st == LAM_OK) {
        vk_buffer_touch(d, b);
        vk_buffer_touch(d, stage);
        st = vk_check_validation(d, before, "buffer_write");
    }
    vk_validation_set_op(NULL);
    vk_free_deferred(d, stage);
    if (st == LAM_OK) {
        st = vk_batch_done_op(d, "buffer_write");
    }
    return st;
}

lam_status vk_buffer_read(void *dev, const void *buffer, size_t offset, void *dst, size_t bytes) {
    lam_status st = check_dev(dev);
    vk_device *d = dev;
    if (st == LAM_OK) {
        st = check_buffer(d, buffer, "buffer");
    }
    if (st == LAM_OK) {
        st = check_range(buffer, offset, bytes, "reading");
    }
    if (st != LAM_OK) {
        return st;
    }
    if (bytes > 0 && dst == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, dst is NULL");
    }
    const vk_buffer *b = buffer;
    if (d->direct || bytes == 0) {
        st = vk_wait_all(d); /* a read synchronizes, and reports asynchronous errors */
        if (st == LAM_OK && bytes > 0) {
            memcpy(dst, (const char *)b->block->mapped + b->offset + offset, bytes);
        }
        return st == LAM_OK ? vk_buffers_check_errors(d) : st;
    }
    vk_buffer *stage = NULL;
    st = vk_alloc(d, bytes, 1, &stage);
    if (st != LAM_OK) {
        return st;
    }
    vk_validation_set_op("buffer_read");
    st = record_copy(d, stage->block->buffer, stage->offset, b->block->buffer, b->offset + offset,
                     bytes);
    vk_validation_set_op(NULL);
    if (st == LAM_OK) {
        vk_buffer_touch(d, stage);
        st = vk_batch_done_op(d, "buffer_read");
    }
    lam_status ws = vk_wait_all(d);
    if (st == LAM_OK) {
        st = ws;
    }
    if (st == LAM_OK) {
        memcpy(dst, (const char *)stage->block->mapped + stage->offset, bytes);
    }
    vk_free_deferred(d, stage);
    return st == LAM_OK ? vk_buffers_check_errors(d) : st;
}

lam_status vk_buffers_check_errors(vk_device *d) {
    if (!d->err_pending || d->err == NULL) {
        return LAM_OK;
    }
    d->err_pending = 0; /* before the read below, which comes back here */
    uint32_t w[VK_ERR_WORDS];
    lam_status st = vk_buffer_read(d, d->err, 0, w, sizeof w);
    if (st != LAM_OK || w[2] == 0) {
        return st;
    }
    st = vk_buffer_write(d, d->err, 0, vk_err_init, sizeof vk_err_init);
    if (st != LAM_OK) {
        return st;
    }
    if (w[2] == (uint32_t)LAM_OP_CAST) {
        float v;
        memcpy(&v, &w[1], sizeof v);
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid value, cast element %u is %g, not representable in int32",
                        (unsigned)w[0], (double)v);
    }
    return vk_error(LAM_ERR_INVALID_ARGUMENT,
                    "vulkan: Index out of range, %s index at position %u is %d, outside [0, %u)",
                    lam_op_name((lam_op)w[2]), (unsigned)w[0], (int)(int32_t)w[1], (unsigned)w[3]);
}

lam_status vk_buffer_copy(void *dev, void *dst, size_t dst_offset, const void *src,
                          size_t src_offset, size_t bytes) {
    lam_status st = check_dev(dev);
    vk_device *d = dev;
    if (st == LAM_OK) {
        st = check_buffer(d, dst, "dst");
    }
    if (st == LAM_OK) {
        st = check_buffer(d, src, "src");
    }
    if (st == LAM_OK) {
        st = check_range(src, src_offset, bytes, "reading");
    }
    if (st == LAM_OK) {
        st = check_range(dst, dst_offset, bytes, "writing");
    }
    if (st == LAM_OK) {
        st = vk_check_sticky(d);
    }
    if (st != LAM_OK || bytes == 0) {
        return st;
    }
    vk_buffer *db = dst;
    vk_buffer *sb = (vk_buffer *)(uintptr_t)src;
    VkDeviceSize so = sb->offset + src_offset;
    VkDeviceSize dof = db->offset + dst_offset;
    uint64_t before = vk_validation_count();
    vk_validation_set_op("buffer_copy");
    int overlap = sb->block == db->block && so < dof + bytes && dof < so + bytes;
    if (!overlap) {
        st = record_copy(d, db->block->buffer, dof, sb->block->buffer, so, bytes);
        vk_buffer_touch(d, db);
        vk_buffer_touch(d, sb);
    } else {
        /* vkCmdCopyBuffer forbids overlapping regions: go through a temporary. */
        vk_buffer *tmp = NULL;
        st = vk_alloc(d, bytes, 0, &tmp);
        if (st == LAM_OK) {
            st = record_copy(d, tmp->block->buffer, tmp->offset, sb->block->buffer, so, bytes);
            vk_buffer_touch(d, tmp);
            vk_buffer_touch(d, sb);
            if (st == LAM_OK) {
                st = record_copy(d, db->block->buffer, dof, tmp->block->buffer, tmp->offset, bytes);
                vk_buffer_touch(d, tmp);
                vk_buffer_touch(d, db);
            }
            vk_free_deferred(d, tmp);
        }
    }
    if (st == LAM_OK) {
        st = vk_check_validation(d, before, "buffer_copy");
    }
    vk_validation_set_op(NULL);
    if (st == LAM_OK) {
        st = vk_batch_done_op(d, "buffer_copy");
    }
    return st;
}
