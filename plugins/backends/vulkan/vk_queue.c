/*
 * vk_queue.c - recording and submitting work: a ring of command buffers, each submitted as one
 * batch with its fence, barriers only where a command touches a range an earlier command of
 * the batch wrote (or writes a range it read), deferred frees, and asynchronous errors.
 *
 * Ops are recorded into the current command buffer and submitted when VK_BATCH_OPS are pending
 * or at a synchronizing call (buffer_read, synchronize). Each command buffer starts with a
 * barrier against everything submitted before it, since the access tracking is per batch.
 *
 * Level 4: above vk_memory (a deferred free returns its range with vk_release once the batch
 * that last used it has finished).
 */
#include "vk_queue.h"

#include "vk_memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const VkAccessFlags ACCESS_ALL_WRITE =
    VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
static const VkAccessFlags ACCESS_ALL = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                        VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
static const VkPipelineStageFlags STAGES =
    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;

static void barrier(VkCommandBuffer cmd, VkPipelineStageFlags dst_stage, VkAccessFlags dst) {
    VkMemoryBarrier mb;
    memset(&mb, 0, sizeof mb);
    mb.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
    mb.srcAccessMask = ACCESS_ALL_WRITE;
    mb.dstAccessMask = dst;
    vkf.vkCmdPipelineBarrier(cmd, STAGES, dst_stage, 0, 1, &mb, 0, NULL, 0, NULL);
}

lam_status vk_queue_init(vk_device *d) {
    VkCommandPoolCreateInfo pi;
    memset(&pi, 0, sizeof pi);
    pi.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
    pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pi.queueFamilyIndex = d->phys->queue_family;
    VkResult r = vkf.vkCreateCommandPool(d->device, &pi, NULL, &d->cmd_pool);
    for (int i = 0; i < VK_RING && r == VK_SUCCESS; i++) {
        vk_batch *b = &d->ring[i];
        VkCommandBufferAllocateInfo ai;
        memset(&ai, 0, sizeof ai);
        ai.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
        ai.commandPool = d->cmd_pool;
        ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
        ai.commandBufferCount = 1;
        r = vkf.vkAllocateCommandBuffers(d->device, &ai, &b->cmd);
        if (r != VK_SUCCESS) {
            break;
        }
        VkFenceCreateInfo fi;
        memset(&fi, 0, sizeof fi);
        fi.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
        r = vkf.vkCreateFence(d->device, &fi, NULL, &b->fence);
        if (r != VK_SUCCESS) {
            break;
        }
        VkDescriptorPoolSize ps;
        ps.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        ps.descriptorCount = VK_DESCS_PER_POOL;
        VkDescriptorPoolCreateInfo di;
        memset(&di, 0, sizeof di);
        di.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
        di.maxSets = VK_SETS_PER_POOL;
        di.poolSizeCount = 1;
        di.pPoolSizes = &ps;
        r = vkf.vkCreateDescriptorPool(d->device, &di, NULL, &b->pool);
    }
    if (r != VK_SUCCESS) {
        return vk_error(LAM_ERR_BACKEND, "vulkan: Creating command buffers failed: %s",
                        vk_result_string(r));
    }
    return LAM_OK;
}

static void release_deferred(vk_device *d, vk_batch *b) {
    vk_deferred *n = b->deferred;
    b->deferred = NULL;
    while (n != NULL) {
        vk_deferred *next = n->next;
        /* still used by a later batch? then it moves there */
        n->buf->magic = VK_BUFFER_MAGIC;
        if (n->buf->last_use > b->serial) {
            vk_free_deferred(d, n->buf);
        } else {
            vk_release(d, n->buf);
        }
        free(n);
        n = next;
    }
}

void vk_queue_fini(vk_device *d) {
    for (int i = 0; i < VK_RING; i++) {
        vk_batch *b = &d->ring[i];
        if (b->deferred != NULL) {
            d->done_serial = d->next_serial; /* the device is idle (vkDeviceWaitIdle) */
            release_deferred(d, b);
        }
        if (b->fence != VK_NULL_HANDLE) {
            vkf.vkDestroyFence(d->device, b->fence, NULL);
        }
        if (b->pool != VK_NULL_HANDLE) {
            vkf.vkDestroyDescriptorPool(d->device, b->pool, NULL);
        }
    }
    if (d->cmd_pool != VK_NULL_HANDLE) {
        vkf.vkDestroyCommandPool(d->device, d->cmd_pool, NULL);
    }
    free(d->acc);
    d->acc = NULL;
    d->n_acc = d->cap_acc = 0;
}

lam_status vk_check_sticky(vk_device *d) {
    if (d->sticky != LAM_OK) {
        return vk_error(d->sticky, "vulkan: %s", d->sticky_msg);
    }
    return LAM_OK;
}

static void set_async(vk_device *d, lam_status st, const char *what, const char *ops, VkResult r) {
    if (d->async_status == LAM_OK) {
        d->async_status = st;
        snprintf(d->async_msg, sizeof d->async_msg, "%s %.400s failed: %s", what, ops,
                 vk_result_string(r));
    }
}

/* Waits for one submitted batch and recycles it. */
static void wait_batch(vk_device *d, vk_batch *b) {
    if (!b->in_flight) {
        return;
    }
    VkResult r;
    do {
        r = vkf.vkWaitForFences(d->device, 1, &b->fence, VK_TRUE, UINT64_C(10000000000));
    } while (r == VK_TIMEOUT);
    if (r == VK_ERROR_DEVICE_LOST) {
        d->sticky = LAM_ERR_BACKEND;
        snprintf(d->sticky_msg, sizeof d->sticky_msg,
                 "Device lost (VK_ERROR_DEVICE_LOST) while running %.400s", b->ops);
    } else if (r != VK_SUCCESS) {
        set_async(d, LAM_ERR_BACKEND, "Waiting for", b->ops, r);
    }
    vkf.vkResetFences(d->device, 1, &b->fence);
    b->in_flight = 0;
    if (b->serial > d->done_serial) {
        d->done_serial = b->serial;
    }
    release_deferred(d, b);
}

lam_status vk_batch_current(vk_device *d, vk_batch **out) {
    *out = NULL;
    lam_status st = vk_check_sticky(d);
    if (st != LAM_OK) {
        return st;
    }
    vk_batch *b = &d->ring[d->cur];
    if (b->recording) {
        *out = b;
        return LAM_OK;
    }
    wait_batch(d, b);
    st = vk_check_sticky(d);
    if (st != LAM_OK) {
        return st;
    }
    vkf.vkResetDescriptorPool(d->device, b->pool, 0);
    vkf.vkResetCommandBuffer(b->cmd, 0);
    VkCommandBufferBeginInfo bi;
    memset(&bi, 0, sizeof bi);
    bi.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    VkResult r = vkf.vkBeginCommandBuffer(b->cmd, &bi);
    if (r != VK_SUCCESS) {
        return vk_error(LAM_ERR_BACKEND, "vulkan: vkBeginCommandBuffer failed: %s",
                        vk_result_string(r));
    }
    /* Work of earlier batches is complete before this batch touches anything. */
    barrier(b->cmd, STAGES, ACCESS_ALL);
    b->recording = 1;
    b->n_ops = 0;
    b->sets_used = 0;
    b->descs_used = 0;
    b->ops[0] = '\0';
    b->serial = ++d->next_serial;
    d->n_acc = 0;
    *out = b;
    return LAM_OK;
}

static int overlaps(const vk_access *a, const vk_access *b) {
    return a->buffer == b->buffer && a->lo < b->hi && b->lo < a->hi && (a->write || b->write);
}

lam_status vk_track(vk_device *d, vk_batch *b, const vk_access *acc, size_t n) {
    int conflict = 0;
    for (size_t i = 0; i < n && !conflict; i++) {
        for (size_t j = 0; j < d->n_acc && !conflict; j++) {
            conflict = overlaps(&acc[i], &d->acc[j]);
        }
    }
    if (conflict) {
        barrier(b->cmd, STAGES, ACCESS_ALL);
        d->n_acc = 0;
    }
    if (d->n_acc + n > d->cap_acc) {
        size_t cap = d->cap_acc ? d->cap_acc * 2 : 64;
        while (cap < d->n_acc + n) {
            cap *= 2;
        }
        vk_access *na = realloc(d->acc, cap * sizeof *na);
        if (na == NULL) {
            /* cannot remember: a barrier makes forgetting safe */
            barrier(b->cmd, STAGES, ACCESS_ALL);
            d->n_acc = 0;
            return LAM_OK;
        }
        d->acc = na;
        d->cap_acc = cap;
    }
    memcpy(d->acc + d->n_acc, acc, n * sizeof *acc);
    d->n_acc += n;
    return LAM_OK;
}

lam_status vk_flush(vk_device *d) {
    lam_status st = vk_check_sticky(d);
    if (st != LAM_OK) {
        return st;
    }
    vk_batch *b = &d->ring[d->cur];
    if (!b->recording || b->n_ops == 0) {
        return LAM_OK;
    }
    /* Device writes become visible to the host once the fence signals. */
    barrier(b->cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT | VK_ACCESS_HOST_WRITE_BIT);
    VkResult r = vkf.vkEndCommandBuffer(b->cmd);
    b->recording = 0;
    if (r == VK_SUCCESS) {
        VkSubmitInfo si;
        memset(&si, 0, sizeof si);
        si.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
        si.commandBufferCount = 1;
        si.pCommandBuffers = &b->cmd;
        vk_validation_set_op(b->ops);
        r = vkf.vkQueueSubmit(d->queue, 1, &si, b->fence);
        vk_validation_set_op(NULL);
    }
    d->n_acc = 0;
    if (r != VK_SUCCESS) {
        if (r == VK_ERROR_DEVICE_LOST) {
            d->sticky = LAM_ERR_BACKEND;
            snprintf(d->sticky_msg, sizeof d->sticky_msg,
                     "Device lost (VK_ERROR_DEVICE_LOST) submitting %.400s", b->ops);
        } else {
            set_async(d, LAM_ERR_BACKEND, "Submitting", b->ops, r);
        }
        /* Nothing of this batch runs; its deferred frees can go now. */
        d->done_serial = b->serial > d->done_serial ? b->serial : d->done_serial;
        release_deferred(d, b);
        return vk_check_sticky(d);
    }
    b->in_flight = 1;
    d->cur = (d->cur + 1) % VK_RING;
    return LAM_OK;
}

lam_status vk_batch_done_op(vk_device *d, const char *op) {
    vk_batch *b = &d->ring[d->cur];
    if (!b->recording) {
        return LAM_OK;
    }
    size_t len = strlen(b->ops);
    if (len + strlen(op) + 3 < sizeof b->ops) {
        snprintf(b->ops + len, sizeof b->ops - len, "%s%s", len ? ", " : "", op);
    } else if (len + 5 < sizeof b->ops && strcmp(b->ops + len - 3, "...") != 0) {
        snprintf(b->ops + len, sizeof b->ops - len, ", ...");
    }
    b->n_ops++;
    if (b->n_ops >= VK_BATCH_OPS || b->sets_used + 8 > VK_SETS_PER_POOL) {
        return vk_flush(d);
    }
    return LAM_OK;
}

/* Flushes and waits for every submitted batch; asynchronous errors stay recorded. */
static void wait_idle(vk_device *d) {
    vk_flush(d);
    /* oldest first */
    for (int i = 1; i <= VK_RING; i++) {
        wait_batch(d, &d->ring[(d->cur + (uint32_t)i) % VK_RING]);
    }
}

lam_status vk_wait_all(vk_device *d) {
    wait_idle(d);
    lam_status st = vk_check_sticky(d);
    if (st != LAM_OK) {
        return st;
    }
    char msg[1024];
    if (vk_validation_take(msg, sizeof msg, 1)) {
        return vk_error(LAM_ERR_BACKEND, "vulkan: %s", msg);
    }
    if (d->async_status != LAM_OK) {
        st = d->async_status;
        d->async_status = LAM_OK;
        return vk_error(st, "vulkan: %s", d->async_msg);
    }
    return LAM_OK;
}

int vk_buffer_busy(const vk_device *d, const vk_buffer *b) {
    return b->last_use > d->done_serial;
}

void vk_buffer_touch(vk_device *d, vk_buffer *b) {
    const vk_batch *bt = &d->ring[d->cur];
    if (bt->recording && bt->serial > b->last_use) {
        b->last_use = bt->serial;
    }
}

lam_status vk_check_validation(vk_device *d, uint64_t before, const char *op) {
    if (vk_validation_count() == before) {
        return LAM_OK;
    }
    char msg[1024];
    if (!vk_validation_take(msg, sizeof msg, 0)) {
        snprintf(msg, sizeof msg, "a validation message was raised");
    }
    (void)d;
    (void)op; /* the message names the op */
    return vk_error(LAM_ERR_BACKEND, "vulkan: %s", msg);
}

lam_status vk_wait_quiet(vk_device *d) {
    wait_idle(d);
    return vk_check_sticky(d);
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
