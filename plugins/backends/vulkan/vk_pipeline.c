/*
 * vk_pipeline.c - layouts and compute pipelines, binding windows of buffers, and recording one
 * dispatch into the current batch.
 *
 * Each operand is bound as the window of its buffer that a dispatch touches, aligned down to
 * minStorageBufferOffsetAlignment and no longer than maxStorageBufferRange; the shader gets
 * offsets relative to that window. Level 5: above vk_queue.
 */
#include "vk_pipeline.h"

#include "vk_queue.h"

#include <string.h>

lam_status vk_pipeline_init(vk_device *d) {
    VkDescriptorSetLayoutBinding b[VK_BINDINGS];
    memset(b, 0, sizeof b);
    for (uint32_t i = 0; i < VK_BINDINGS; i++) {
        b[i].binding = i;
        b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        b[i].descriptorCount = 1;
        b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    }
    VkDescriptorSetLayoutCreateInfo li;
    memset(&li, 0, sizeof li);
    li.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
    li.bindingCount = VK_BINDINGS;
    li.pBindings = b;
    VkResult r = vkf.vkCreateDescriptorSetLayout(d->device, &li, NULL, &d->set_layout);
    if (r != VK_SUCCESS) {
        return vk_error(LAM_ERR_BACKEND, "vulkan: Descriptor set layout failed, %s",
                        vk_result_string(r));
    }
    VkPushConstantRange pr;
    pr.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    pr.offset = 0;
    pr.size = 128;
    VkPipelineLayoutCreateInfo pi;
    memset(&pi, 0, sizeof pi);
    pi.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
    pi.setLayoutCount = 1;
    pi.pSetLayouts = &d->set_layout;
    pi.pushConstantRangeCount = 1;
    pi.pPushConstantRanges = &pr;
    r = vkf.vkCreatePipelineLayout(d->device, &pi, NULL, &d->pipe_layout);
    if (r != VK_SUCCESS) {
        return vk_error(LAM_ERR_BACKEND, "vulkan: Pipeline layout failed, %s", vk_result_string(r));
    }
    return LAM_OK;
}

void vk_pipeline_fini(vk_device *d) {
    for (int i = 0; i < VK_SHADER_COUNT; i++) {
        if (d->pipelines[i] != VK_NULL_HANDLE) {
            vkf.vkDestroyPipeline(d->device, d->pipelines[i], NULL);
            d->pipelines[i] = VK_NULL_HANDLE;
        }
    }
    if (d->pipe_layout != VK_NULL_HANDLE) {
        vkf.vkDestroyPipelineLayout(d->device, d->pipe_layout, NULL);
        d->pipe_layout = VK_NULL_HANDLE;
    }
    if (d->set_layout != VK_NULL_HANDLE) {
        vkf.vkDestroyDescriptorSetLayout(d->device, d->set_layout, NULL);
        d->set_layout = VK_NULL_HANDLE;
    }
}

lam_status vk_pipeline(vk_device *d, vk_shader_id id, VkPipeline *out) {
    /* Made on first use: compiling every shader at device open would cost each process that
     * opens the device the compile time of shaders it never runs (lavapipe compiles here). */
    if (d->pipelines[id] != VK_NULL_HANDLE) {
        *out = d->pipelines[id];
        return LAM_OK;
    }
    const vk_shader_code code = vk_shader_get(id);
    VkShaderModuleCreateInfo si;
    memset(&si, 0, sizeof si);
    si.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
    si.codeSize = code.bytes;
    si.pCode = code.words;
    VkShaderModule mod;
    VkResult r = vkf.vkCreateShaderModule(d->device, &si, NULL, &mod);
    if (r != VK_SUCCESS) {
        return vk_error(LAM_ERR_BACKEND, "vulkan: Shader module %s failed, %s", code.name,
                        vk_result_string(r));
    }
    VkComputePipelineCreateInfo ci;
    memset(&ci, 0, sizeof ci);
    ci.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
    ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    ci.stage.module = mod;
    ci.stage.pName = "main";
    ci.layout = d->pipe_layout;
    r = vkf.vkCreateComputePipelines(d->device, VK_NULL_HANDLE, 1, &ci, NULL, &d->pipelines[id]);
    vkf.vkDestroyShaderModule(d->device, mod, NULL);
    if (r != VK_SUCCESS) {
        d->pipelines[id] = VK_NULL_HANDLE;
        return vk_error(LAM_ERR_BACKEND, "vulkan: Compute pipeline %s failed, %s", code.name,
                        vk_result_string(r));
    }
    *out = d->pipelines[id];
    return LAM_OK;
}

/* Binds elements [lo, hi] of buf. */
lam_status vk_bind_range(vk_device *d, vk_buffer *buf, int64_t lo, int64_t hi, const char *opname,
                         const char *what, vk_bind *out) {
    const VkPhysicalDeviceLimits *l = &d->phys->props.limits;
    VkDeviceSize align =
        l->minStorageBufferOffsetAlignment > 4 ? l->minStorageBufferOffsetAlignment : 4;
    VkDeviceSize abs_lo = buf->offset + (VkDeviceSize)lo * 4u;
    VkDeviceSize start = abs_lo - abs_lo % align;
    VkDeviceSize end = buf->offset + (VkDeviceSize)(hi + 1) * 4u;
    out->buf = buf;
    out->offset = start;
    out->range = end - start;
    /* may be negative: the window can start before the buffer (both are multiples of 4) */
    out->base = (int64_t)(start / 4u) - (int64_t)(buf->offset / 4u);
    if (out->range > l->maxStorageBufferRange) {
        return vk_error(LAM_ERR_UNSUPPORTED,
                        "vulkan: Unsupported size, %s %s spans %llu bytes, more than the device's "
                        "maxStorageBufferRange (%u bytes)",
                        opname, what, (unsigned long long)out->range, l->maxStorageBufferRange);
    }
    return LAM_OK;
}

lam_status vk_bind_view(vk_device *d, const vk_view *v, const char *opname, const char *what,
                        vk_bind *out) {
    return vk_bind_range(d, v->buf, v->lo, v->hi, opname, what, out);
}

/* An element offset (from the buffer start) relative to a window, as the shader's int. */
lam_status vk_rel(const vk_bind *b, int64_t elem, int32_t *out) {
    int64_t r = elem - b->base;
    if (r < 0 || r > INT32_MAX) {
        return vk_error(LAM_ERR_INTERNAL, "vulkan: Internal error, offset %lld outside its window",
                        (long long)r);
    }
    *out = (int32_t)r;
    return LAM_OK;
}

lam_status vk_to_i32(int64_t v, int32_t *out, const char *opname) {
    if (v < INT32_MIN || v > INT32_MAX) {
        return vk_error(LAM_ERR_UNSUPPORTED, "vulkan: Unsupported size, %s needs %lld in 32 bits",
                        opname, (long long)v);
    }
    *out = (int32_t)v;
    return LAM_OK;
}

/* Splits `groups` workgroups over x and y within the device limits. */
lam_status vk_grid_2d(vk_device *d, uint64_t groups, uint32_t *gx, uint32_t *gy,
                      const char *opname) {
    const uint32_t *maxc = d->phys->props.limits.maxComputeWorkGroupCount;
    if (groups == 0) {
        *gx = *gy = 0;
        return LAM_OK;
    }
    uint64_t x = groups < maxc[0] ? groups : maxc[0];
    uint64_t y = (groups + x - 1) / x;
    if (y > maxc[1]) {
        return vk_error(LAM_ERR_UNSUPPORTED,
                        "vulkan: Unsupported size, %s needs %llu workgroups, more than the "
                        "device's maxComputeWorkGroupCount allows",
                        opname, (unsigned long long)groups);
    }
    *gx = (uint32_t)x;
    *gy = (uint32_t)y;
    return LAM_OK;
}

lam_status vk_dispatch(vk_device *d, vk_shader_id shader, const vk_bind binds[3], const void *push,
                       uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
    return vk_dispatch_n(d, shader, binds, 3, 1u, push, push_bytes, gx, gy, gz);
}

lam_status vk_dispatch_n(vk_device *d, vk_shader_id shader, const vk_bind *binds, uint32_t n_binds,
                         uint32_t write_mask, const void *push, uint32_t push_bytes, uint32_t gx,
                         uint32_t gy, uint32_t gz) {
    if (gx == 0 || gy == 0 || gz == 0) {
        return LAM_OK;
    }
    VkPipeline pipeline = VK_NULL_HANDLE;
    lam_status st = vk_pipeline(d, shader, &pipeline);
    if (st != LAM_OK) {
        return st;
    }
    return vk_record(d, pipeline, d->pipe_layout, d->set_layout, VK_BINDINGS, binds, n_binds,
                     write_mask, push, push_bytes, gx, gy, gz);
}

lam_status vk_record(vk_device *d, VkPipeline pipeline, VkPipelineLayout layout,
                     VkDescriptorSetLayout set_layout, uint32_t n_slots, const vk_bind *binds,
                     uint32_t n_binds, uint32_t write_mask, const void *push, uint32_t push_bytes,
                     uint32_t gx, uint32_t gy, uint32_t gz) {
    if (gx == 0 || gy == 0 || gz == 0) {
        return LAM_OK;
    }
    const uint32_t *maxc = d->phys->props.limits.maxComputeWorkGroupCount;
    if (gx > maxc[0] || gy > maxc[1] || gz > maxc[2] || n_binds == 0 || n_binds > n_slots ||
        n_slots > VK_MAX_SLOTS) {
        return vk_error(LAM_ERR_INTERNAL,
                        "vulkan: Internal error, dispatch (%u, %u, %u) of %u bindings beyond the "
                        "device limits",
                        gx, gy, gz, (unsigned)n_binds);
    }
    vk_batch *b;
    lam_status st = vk_batch_current(d, &b);
    if (st != LAM_OK) {
        return st;
    }
    if (b->sets_used >= VK_SETS_PER_POOL || b->descs_used + n_slots > VK_DESCS_PER_POOL) {
        st = vk_flush(d);
        if (st == LAM_OK) {
            st = vk_batch_current(d, &b);
        }
        if (st != LAM_OK) {
            return st;
        }
    }
    vk_access acc[VK_MAX_SLOTS];
    for (uint32_t i = 0; i < n_binds; i++) {
        acc[i].buffer = binds[i].buf->block->buffer;
        acc[i].lo = binds[i].offset;
        acc[i].hi = binds[i].offset + binds[i].range;
        acc[i].write = (write_mask >> i) & 1u;
    }
    st = vk_track(d, b, acc, n_binds);
    if (st != LAM_OK) {
        return st;
    }
    VkDescriptorSetAllocateInfo ai;
    memset(&ai, 0, sizeof ai);
    ai.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
    ai.descriptorPool = b->pool;
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &set_layout;
    VkDescriptorSet set;
    VkResult r = vkf.vkAllocateDescriptorSets(d->device, &ai, &set);
    if (r != VK_SUCCESS) {
        return vk_error(LAM_ERR_BACKEND, "vulkan: vkAllocateDescriptorSets failed: %s",
                        vk_result_string(r));
    }
    b->sets_used++;
    b->descs_used += n_slots;
    /* every slot of the layout gets a buffer; slots past n_binds repeat the first */
    VkDescriptorBufferInfo bi[VK_MAX_SLOTS];
    VkWriteDescriptorSet w[VK_MAX_SLOTS];
    memset(w, 0, sizeof w);
    for (uint32_t i = 0; i < n_slots; i++) {
        const vk_bind *bd = i < n_binds ? &binds[i] : &binds[0];
        bi[i].buffer = bd->buf->block->buffer;
        bi[i].offset = bd->offset;
        bi[i].range = bd->range;
        w[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
        w[i].dstSet = set;
        w[i].dstBinding = i;
        w[i].descriptorCount = 1;
        w[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        w[i].pBufferInfo = &bi[i];
    }
    vkf.vkUpdateDescriptorSets(d->device, n_slots, w, 0, NULL);
    vkf.vkCmdBindPipeline(b->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
    vkf.vkCmdBindDescriptorSets(b->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &set, 0,
                                NULL);
    if (push_bytes > 0) {
        vkf.vkCmdPushConstants(b->cmd, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
    }
    vkf.vkCmdDispatch(b->cmd, gx, gy, gz);
    for (uint32_t i = 0; i < n_binds; i++) {
        vk_buffer_touch(d, binds[i].buf);
    }
    return LAM_OK;
}
