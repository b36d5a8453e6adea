/*
 * vk_memory.c - device memory: large blocks sub-allocated first-fit, and the buffer callbacks.
 *
 * Each block is one VkDeviceMemory with one VkBuffer bound over all of it; a tensor's buffer is
 * (block, offset). Requests larger than half a block get a block of their own. When the device
 * has host-visible device-local memory (lavapipe, UMA, ReBAR) blocks are mapped once and the
 * host reads and writes them directly; otherwise transfers go through host-visible staging
 * blocks and vkCmdCopyBuffer (LAMINA_VULKAN_FORCE_STAGING=1 forces that path for testing).
 */
#include "vk_internal.h"

#include <stdlib.h>
#include <string.h>

static VkDeviceSize round_up(VkDeviceSize v, VkDeviceSize a) {
    return (v + a - 1) / a * a;
}

static void block_destroy(vk_device *d, vk_block *b) {
    if (b == NULL) {
        return;
    }
    if (b->buffer != VK_NULL_HANDLE) {
        vkf.vkDestroyBuffer(d->device, b->buffer, NULL);
    }
    if (b->memory != VK_NULL_HANDLE) {
        if (b->mapped != NULL) {
            vkf.vkUnmapMemory(d->device, b->memory);
        }
        vkf.vkFreeMemory(d->device, b->memory, NULL);
    }
    vk_range *r = b->free;
    while (r != NULL) {
        vk_range *n = r->next;
        free(r);
        r = n;
    }
    free(b);
}

static lam_status make_vk_buffer(vk_device *d, VkDeviceSize size, VkBuffer *out) {
    VkBufferCreateInfo bi;
    memset(&bi, 0, sizeof bi);
    bi.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
    bi.size = size;
    bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
               VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VkResult r = vkf.vkCreateBuffer(d->device, &bi, NULL, out);
    if (r != VK_SUCCESS) {
        *out = VK_NULL_HANDLE;
        return vk_error(r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY
                            ? LAM_ERR_OUT_OF_MEMORY
                            : LAM_ERR_BACKEND,
                        "vulkan: Out of memory, vkCreateBuffer of %llu bytes: %s",
                        (unsigned long long)size, vk_result_string(r));
    }
    return LAM_OK;
}

static lam_status block_new(vk_device *d, VkDeviceSize size, int host, int dedicated,
                            vk_block **out) {
    *out = NULL;
    vk_block *b = calloc(1, sizeof *b);
    vk_range *fr = calloc(1, sizeof *fr);
    if (b == NULL || fr == NULL) {
        free(b);
        free(fr);
        return vk_error(LAM_ERR_OUT_OF_MEMORY, "vulkan: Out of memory");
    }
    b->size = size;
    b->host = host;
    b->dedicated = dedicated;
    fr->offset = 0;
    fr->size = size;
    b->free = fr;
    lam_status st = make_vk_buffer(d, size, &b->buffer);
    if (st != LAM_OK) {
        block_destroy(d, b);
        return st;
    }
    VkMemoryRequirements req;
    vkf.vkGetBufferMemoryRequirements(d->device, b->buffer, &req);
    uint32_t type = host ? d->mem_type_host : d->mem_type_device;
    if ((req.memoryTypeBits & (1u << type)) == 0) {
        block_destroy(d, b);
        return vk_error(LAM_ERR_BACKEND, "vulkan: Memory type %u not allowed for buffers",
                        (unsigned)type);
    }
    VkMemoryAllocateInfo ai;
    memset(&ai, 0, sizeof ai);
    ai.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = type;
    VkResult r = vkf.vkAllocateMemory(d->device, &ai, NULL, &b->memory);
    if (r != VK_SUCCESS) {
        b->memory = VK_NULL_HANDLE;
        block_destroy(d, b);
        return vk_error(LAM_ERR_OUT_OF_MEMORY,
                        "vulkan: Out of memory, allocating a %llu-byte block: %s",
                        (unsigned long long)req.size, vk_result_string(r));
    }
    r = vkf.vkBindBufferMemory(d->device, b->buffer, b->memory, 0);
    if (r == VK_SUCCESS && (host || d->direct)) {
        r = vkf.vkMapMemory(d->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped);
        if (r != VK_SUCCESS) {
            b->mapped = NULL;
        }
    }
    if (r != VK_SUCCESS) {
        block_destroy(d, b);
        return vk_error(LAM_ERR_BACKEND, "vulkan: Binding or mapping a block failed: %s",
                        vk_result_string(r));
    }
    b->next = d->blocks;
    d->blocks = b;
    *out = b;
    return LAM_OK;
}

/* First fit inside one block; returns 1 and the offset on success. */
static int block_take(vk_block *b, VkDeviceSize size, VkDeviceSize *offset) {
    vk_range **pp = &b->free;
    while (*pp != NULL) {
        vk_range *r = *pp;
        if (r->size >= size) {
            *offset = r->offset;
            r->offset += size;
            r->size -= size;
            if (r->size == 0) {
                *pp = r->next;
                free(r);
            }
            b->used += size;
            return 1;
        }
        pp = &r->next;
    }
    return 0;
}

static int block_give(vk_block *b, VkDeviceSize offset, VkDeviceSize size) {
    vk_range *prev = NULL;
    vk_range *cur = b->free;
    while (cur != NULL && cur->offset < offset) {
        prev = cur;
        cur = cur->next;
    }
    b->used -= size;
    if (prev != NULL && prev->offset + prev->size == offset) {
        prev->size += size;
        if (cur != NULL && prev->offset + prev->size == cur->offset) {
            prev->size += cur->size;
            prev->next = cur->next;
            free(cur);
        }
        return 1;
    }
    if (cur != NULL && offset + size == cur->offset) {
        cur->offset = offset;
        cur->size += size;
        return 1;
    }
    vk_range *n = malloc(sizeof *n);
    if (n == NULL) {
        return 0; /* the range is lost until the block is freed; nothing breaks */
    }
    n->offset = offset;
    n->size = size;
    n->next = cur;
    if (prev != NULL) {
        prev->next = n;
    } else {
        b->free = n;
    }
    return 1;
}

static uint64_t heap_size(const vk_device *d, uint32_t type) {
    const VkPhysicalDeviceMemoryProperties *m = &d->phys->mem;
    return m->memoryHeaps[m->memoryTypes[type].heapIndex].size;
}

lam_status vk_alloc(vk_device *d, size_t bytes, int host, vk_buffer **out) {
    *out = NULL;
    VkDeviceSize want = bytes > 0 ? (VkDeviceSize)bytes : 4;
    uint32_t type = host ? d->mem_type_host : d->mem_type_device;
    /* Refused up front: a driver may "succeed" with an absurd size and fail later. */
    if (want > heap_size(d, type) || want > (VkDeviceSize)1 << 46) {
        return vk_error(LAM_ERR_OUT_OF_MEMORY,
                        "vulkan: Out of memory, allocating %zu bytes, more than the "
                        "device's %llu-byte heap",
                        bytes, (unsigned long long)heap_size(d, type));
    }
    VkDeviceSize size = round_up(want, d->align);
    vk_buffer *buf = calloc(1, sizeof *buf);
    if (buf == NULL) {
        return vk_error(LAM_ERR_OUT_OF_MEMORY, "vulkan: Out of memory");
    }
    vk_block *blk = NULL;
    VkDeviceSize off = 0;
    if (size > VK_BLOCK_BYTES / 2) {
        lam_status st = block_new(d, size, host, 1, &blk);
        if (st != LAM_OK) {
            free(buf);
            return st;
        }
        block_take(blk, size, &off);
    } else {
        for (vk_block *b = d->blocks; b != NULL && blk == NULL; b = b->next) {
            if (!b->dedicated && b->host == host && block_take(b, size, &off)) {
                blk = b;
            }
        }
        if (blk == NULL) {
            lam_status st = block_new(d, VK_BLOCK_BYTES, host, 0, &blk);
            if (st != LAM_OK) {
                free(buf);
                return st;
            }
            block_take(blk, size, &off);
        }
    }
    buf->magic = VK_BUFFER_MAGIC;
    buf->dev = d;
    buf->block = blk;
    buf->offset = off;
    buf->size = size;
    buf->bytes = bytes;
    *out = buf;
    return LAM_OK;
}

void vk_release(vk_device *d, vk_buffer *buf) {
    vk_block *b = buf->block;
    block_give(b, buf->offset, buf->size);
    buf->magic = 0;
    free(buf);
    if (b->used != 0) {
        return;
    }
    /* Keep one empty shared block of each kind for the next allocations; free the rest. */
    int keep = !b->dedicated;
    if (keep) {
        for (vk_block *o = d->blocks; o != NULL; o = o->next) {
            if (o != b && !o->dedicated && o->host == b->host && o->used == 0) {
                keep = 0;
                break;
            }
        }
    }
    if (keep) {
        return;
    }
    vk_block **pp = &d->blocks;
    while (*pp != NULL && *pp != b) {
        pp = &(*pp)->next;
    }
    if (*pp == b) {
        *pp = b->next;
    }
    block_destroy(d, b);
}

void vk_free_deferred(vk_device *d, vk_buffer *buf) {
    if (!vk_buffer_busy(d, buf)) {
        vk_release(d, buf);
        return;
    }
    for (int i = 0; i < VK_RING; i++) {
        vk_batch *bt = &d->ring[i];
        if ((bt->recording || bt->in_flight) && bt->serial == buf->last_use) {
            vk_deferred *n = malloc(sizeof *n);
            if (n == NULL) {
                break; /* wait instead of leaking */
            }
            n->buf = buf;
            n->next = bt->deferred;
            bt->deferred = n;
            buf->magic = 0; /* the handle is dead for the host from now on */
            return;
        }
    }
    vk_wait_quiet(d);
    vk_release(d, buf);
}

lam_status vk_memory_init(vk_device *d) {
    const VkPhysicalDeviceMemoryProperties *m = &d->phys->mem;
    VkDeviceSize a = d->phys->props.limits.minStorageBufferOffsetAlignment;
    d->align = a > 256 ? a : 256;
    VkBuffer probe;
    lam_status st = make_vk_buffer(d, 1024, &probe);
    if (st != LAM_OK) {
        return st;
    }
    VkMemoryRequirements req;
    vkf.vkGetBufferMemoryRequirements(d->device, probe, &req);
    vkf.vkDestroyBuffer(d->device, probe, NULL);
    if (req.alignment > d->align) {
        d->align = req.alignment;
    }
    const VkMemoryPropertyFlags dl = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    const VkMemoryPropertyFlags hv =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    const char *force = getenv("LAMINA_VULKAN_FORCE_STAGING");
    int forced = force != NULL && force[0] != '\0' && strcmp(force, "0") != 0;
    int dev_type = -1, host_type = -1, direct_type = -1;
    for (uint32_t t = 0; t < m->memoryTypeCount; t++) {
        if ((req.memoryTypeBits & (1u << t)) == 0) {
            continue;
        }
        VkMemoryPropertyFlags f = m->memoryTypes[t].propertyFlags;
        if (direct_type < 0 && (f & (dl | hv)) == (dl | hv)) {
            direct_type = (int)t;
        }
        if (dev_type < 0 && (f & dl) == dl) {
            dev_type = (int)t;
        }
        /* prefer cached host memory for staging: reads back are much faster */
        if ((f & hv) == hv && (host_type < 0 || ((f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) &&
                                                 !(m->memoryTypes[host_type].propertyFlags &
                                                   VK_MEMORY_PROPERTY_HOST_CACHED_BIT)))) {
            host_type = (int)t;
        }
    }
    if (host_type < 0) {
        return vk_error(LAM_ERR_DEVICE_UNAVAILABLE,
                        "vulkan: Device unavailable, no host-visible memory for buffers");
    }
    if (dev_type < 0) {
        dev_type = host_type;
    }
    if (direct_type >= 0 && !forced) {
        d->direct = 1;
        d->mem_type_device = (uint32_t)direct_type;
    } else {
        d->direct = 0;
        d->mem_type_device = (uint32_t)dev_type;
    }
    d->mem_type_host = (uint32_t)host_type;
    return LAM_OK;
}

void vk_memory_fini(vk_device *d) {
    vk_block *b = d->blocks;
    while (b != NULL) {
        vk_block *n = b->next;
        block_destroy(d, b);
        b = n;
    }
    d->blocks = NULL;
}

/* ---- buffer callbacks ---- */

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
        return st;
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
    return st;
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
