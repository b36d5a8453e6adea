/*
 * vk_memory.c - device memory: large blocks sub-allocated first-fit (the buffer callbacks that
 * use them are in vk_buffers.c).
 *
 * Each block is one VkDeviceMemory with one VkBuffer bound over all of it; a tensor's buffer is
 * (block, offset). Requests larger than half a block get a block of their own. When the device
 * has host-visible device-local memory (lavapipe, UMA, ReBAR) blocks are mapped once and the
 * host reads and writes them directly; otherwise transfers go through host-visible staging
 * blocks and vkCmdCopyBuffer (LAMINA_VULKAN_FORCE_STAGING=1 forces that path for testing).
 *
 * Level 3: calls vk_loader's function table and vk_diag only; it never waits for the queue.
 */
#include "vk_memory.h"

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
    int forced = vk_env_on("LAMINA_VULKAN_FORCE_STAGING");
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
