/*
 * vk_custom.c - plugin kernels on the Vulkan backend (lam_backend_desc.run_kernel).
 *
 * The pipeline of an implementation (its own set layout of n_inputs + n_outputs storage
 * buffers and a 128-byte push-constant range) is made on first use and cached per impl
 * pointer (with its SPIR-V pointer and size, so a reloaded plugin whose impl landed at the same
 * address is not confused with the old one). Operands are bound from their view's first
 * element; a first element whose address is not a multiple of minStorageBufferOffsetAlignment
 * cannot be bound there, so that operand goes through a temporary (copied in before an input
 * is read, copied back after an output is written). Level 6.
 */
#include "vk_custom.h"

#include "vk_buffers.h"
#include "vk_memory.h"
#include "vk_queue.h"

#include <stdlib.h>
#include <string.h>

#define VK_PUSH_BYTES   128
#define VK_PUSH_HEADER  16 /* uint32 n, pad[3] */
#define VK_KERNEL_SLOTS VK_MAX_SLOTS

struct vk_custom {
    const lam_kernel_impl *impl;
    const uint32_t *spirv;
    size_t spirv_size;
    uint32_t n_slots;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
    struct vk_custom *next;
};

static void custom_destroy(vk_device *d, struct vk_custom *c) {
    if (c->pipeline != VK_NULL_HANDLE) {
        vkf.vkDestroyPipeline(d->device, c->pipeline, NULL);
    }
    if (c->layout != VK_NULL_HANDLE) {
        vkf.vkDestroyPipelineLayout(d->device, c->layout, NULL);
    }
    if (c->set_layout != VK_NULL_HANDLE) {
        vkf.vkDestroyDescriptorSetLayout(d->device, c->set_layout, NULL);
    }
    free(c);
}

void vk_custom_fini(vk_device *d) {
    while (d->customs != NULL) {
        struct vk_custom *c = d->customs;
        d->customs = c->next;
        custom_destroy(d, c);
    }
}

static lam_status vk_fail(const char *what, const char *backend_call, VkResult r) {
    return vk_error(LAM_ERR_BACKEND, "vulkan: Kernel pipeline failed, %s: %s %s", what,
                    backend_call, vk_result_string(r));
}

static lam_status custom_make(vk_device *d, const lam_kernel_impl *impl, uint32_t n_slots,
                              struct vk_custom **out) {
    struct vk_custom *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return vk_error(LAM_ERR_OUT_OF_MEMORY, "vulkan: Out of memory, kernel pipeline");
    }
    c->impl = impl;
    c->spirv = impl->spirv;
    c->spirv_size = impl->spirv_size;
    c->n_slots = n_slots;
    VkDescriptorSetLayoutBinding b[VK_KERNEL_SLOTS];
    memset(b, 0, sizeof b);
    for (uint32_t i = 0; i < n_slots; i++) {
        b[i].binding = i;
        b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        b[i].descriptorCount = 1;
        b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    }
    VkDescriptorSetLayoutCreateInfo li;
    memset(&li, 0, sizeof li);
    li.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
    li.bindingCount = n_slots;
    li.pBindings = b;
    VkResult r = vkf.vkCreateDescriptorSetLayout(d->device, &li, NULL, &c->set_layout);
    lam_status st =
        r == VK_SUCCESS ? LAM_OK : vk_fail("set layout", "vkCreateDescriptorSetLayout", r);
    if (st == LAM_OK) {
        VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, VK_PUSH_BYTES};
        VkPipelineLayoutCreateInfo pi;
        memset(&pi, 0, sizeof pi);
        pi.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
        pi.setLayoutCount = 1;
        pi.pSetLayouts = &c->set_layout;
        pi.pushConstantRangeCount = 1;
        pi.pPushConstantRanges = &pr;
        r = vkf.vkCreatePipelineLayout(d->device, &pi, NULL, &c->layout);
        st = r == VK_SUCCESS ? LAM_OK : vk_fail("layout", "vkCreatePipelineLayout", r);
    }
    VkShaderModule mod = VK_NULL_HANDLE;
    if (st == LAM_OK) {
        VkShaderModuleCreateInfo si;
        memset(&si, 0, sizeof si);
        si.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
        si.codeSize = impl->spirv_size;
        si.pCode = impl->spirv;
        r = vkf.vkCreateShaderModule(d->device, &si, NULL, &mod);
        st = r == VK_SUCCESS ? LAM_OK : vk_fail("SPIR-V", "vkCreateShaderModule", r);
    }
    if (st == LAM_OK) {
        VkComputePipelineCreateInfo ci;
        memset(&ci, 0, sizeof ci);
        ci.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
        ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
        ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
        ci.stage.module = mod;
        ci.stage.pName = impl->spirv_entry != NULL ? impl->spirv_entry : "main";
        ci.layout = c->layout;
        r = vkf.vkCreateComputePipelines(d->device, VK_NULL_HANDLE, 1, &ci, NULL, &c->pipeline);
        if (r != VK_SUCCESS) {
            c->pipeline = VK_NULL_HANDLE;
            st = vk_fail("pipeline", "vkCreateComputePipelines", r);
        }
    }
    if (mod != VK_NULL_HANDLE) {
        vkf.vkDestroyShaderModule(d->device, mod, NULL);
    }
    if (st != LAM_OK) {
        custom_destroy(d, c);
        return st;
    }
    c->next = d->customs;
    d->customs = c;
    *out = c;
    return LAM_OK;
}

static lam_status custom_get(vk_device *d, const lam_kernel_impl *impl, uint32_t n_slots,
                             struct vk_custom **out) {
    for (struct vk_custom *c = d->customs; c != NULL; c = c->next) {
        if (c->impl == impl && c->spirv == impl->spirv && c->spirv_size == impl->spirv_size &&
            c->n_slots == n_slots) {
            *out = c;
            return LAM_OK;
        }
    }
    return custom_make(d, impl, n_slots, out);
}

/* One operand: its buffer, byte range, and the temporary it goes through when misaligned. */
typedef struct kop {
    vk_buffer *buf;
    uint64_t offset; /* bytes into buf */
    uint64_t bytes;
    vk_buffer *tmp;
} kop;

static lam_status operand(vk_device *d, const lam_kernel_operand *o, uint32_t i, kop *k,
                          uint64_t *elements) {
    const lam_tensor_view *v =
        o != NULL && o->struct_size >= sizeof(lam_kernel_operand) ? o->view : NULL;
    if (v == NULL || v->struct_size < sizeof(lam_tensor_view) || v->ndim > LAM_MAX_DIMS) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, kernel operand %u has no valid view",
                        (unsigned)i);
    }
    vk_buffer *b = v->buffer;
    if (b == NULL || b->magic != VK_BUFFER_MAGIC || b->dev != d) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, kernel operand %u is not a live buffer of this "
                        "vulkan device",
                        (unsigned)i);
    }
    uint64_t esize = lam_dtype_size(v->dtype), n = 1;
    for (uint32_t k2 = 0; k2 < v->ndim; k2++) {
        n *= (uint64_t)(v->dims[k2] < 0 ? 0 : v->dims[k2]);
    }
    k->buf = b;
    k->offset = v->offset;
    k->bytes = n * esize;
    k->tmp = NULL;
    *elements = n;
    if (esize == 0 || v->offset > b->bytes || k->bytes > b->bytes - v->offset) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, kernel operand %u (dtype %d, byte offset "
                        "%llu, %llu bytes) does not fit its %zu-byte buffer",
                        (unsigned)i, (int)v->dtype, (unsigned long long)v->offset,
                        (unsigned long long)k->bytes, b->bytes);
    }
    if (k->bytes > d->phys->props.limits.maxStorageBufferRange) {
        return vk_error(LAM_ERR_UNSUPPORTED,
                        "vulkan: Unsupported size, kernel operand %u spans %llu bytes, more than "
                        "the device's maxStorageBufferRange (%u bytes)",
                        (unsigned)i, (unsigned long long)k->bytes,
                        d->phys->props.limits.maxStorageBufferRange);
    }
    return LAM_OK;
}

static lam_status check_impl(const lam_kernel_impl *impl, const lam_kernel_args *args) {
    if (impl == NULL || impl->struct_size < sizeof(lam_kernel_impl) || impl->spirv == NULL ||
        impl->spirv_size == 0 || impl->spirv_size % 4 != 0 || impl->local_size_x == 0) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, kernel implementation without SPIR-V (code, a "
                        "size that is a multiple of 4, local_size_x)");
    }
    if (args == NULL || args->struct_size < sizeof(lam_kernel_args) || args->n_outputs == 0 ||
        args->n_inputs + args->n_outputs > VK_KERNEL_SLOTS ||
        (args->n_inputs > 0 && args->inputs == NULL) || args->outputs == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, kernel arguments need 1 to %d operands with "
                        "at least one output",
                        VK_KERNEL_SLOTS);
    }
    if (args->params_size > VK_PUSH_BYTES - VK_PUSH_HEADER) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, kernel parameters of %u bytes (at most %d fit "
                        "the push constants)",
                        (unsigned)args->params_size, VK_PUSH_BYTES - VK_PUSH_HEADER);
    }
    return LAM_OK;
}

/* Binds every operand, copying misaligned inputs into temporaries first. */
static lam_status bind_all(vk_device *d, const lam_kernel_args *args, kop *ops, vk_bind *binds,
                           uint32_t n, uint64_t *n_out) {
    const VkDeviceSize align = d->phys->props.limits.minStorageBufferOffsetAlignment;
    lam_status st = LAM_OK;
    for (uint32_t i = 0; i < n && st == LAM_OK; i++) {
        int is_in = i < args->n_inputs;
        const lam_kernel_operand *o = is_in ? args->inputs[i] : args->outputs[i - args->n_inputs];
        uint64_t elems = 0;
        st = operand(d, o, i, &ops[i], &elems);
        if (i == args->n_inputs) {
            *n_out = elems;
        }
    }
    for (uint32_t i = 0; i < n && st == LAM_OK; i++) {
        kop *k = &ops[i];
        VkDeviceSize at = k->buf->offset + k->offset;
        if (k->bytes == 0) {
            continue;
        }
        if (align > 1 && at % align != 0) {
            st = vk_alloc(d, (size_t)k->bytes, 0, &k->tmp);
            if (st == LAM_OK && i < args->n_inputs) {
                st = vk_buffer_copy(d, k->tmp, 0, k->buf, (size_t)k->offset, (size_t)k->bytes);
            }
            if (st != LAM_OK) {
                break;
            }
            at = k->tmp->offset;
        }
        binds[i].buf = k->tmp != NULL ? k->tmp : k->buf;
        binds[i].offset = at;
        binds[i].range = k->bytes;
        binds[i].base = 0;
    }
    /* an empty operand is bound to any valid window (the shader must not touch it) */
    for (uint32_t i = 0; i < n && st == LAM_OK; i++) {
        if (ops[i].bytes == 0) {
            binds[i] = binds[args->n_inputs];
        }
    }
    return st;
}

lam_status vk_run_kernel(vk_device *d, const lam_kernel_impl *impl, const void *params,
                         const lam_kernel_args *args) {
    lam_status st = check_impl(impl, args);
    if (st == LAM_OK) {
        st = vk_check_sticky(d);
    }
    if (st != LAM_OK) {
        return st;
    }
    const uint32_t n = args->n_inputs + args->n_outputs;
    kop ops[VK_KERNEL_SLOTS];
    vk_bind binds[VK_KERNEL_SLOTS];
    memset(ops, 0, sizeof ops);
    memset(binds, 0, sizeof binds);
    uint64_t count = 0;
    uint64_t before = vk_validation_count();
    vk_validation_set_op("kernel");
    st = bind_all(d, args, ops, binds, n, &count);
    if (st == LAM_OK && count > UINT32_MAX) {
        st = vk_error(LAM_ERR_UNSUPPORTED,
                      "vulkan: Unsupported size, kernel output of %llu "
                      "elements",
                      (unsigned long long)count);
    }
    struct vk_custom *c = NULL;
    if (st == LAM_OK && count > 0) {
        st = custom_get(d, impl, n, &c);
    }
    if (st == LAM_OK && count > 0) {
        unsigned char push[VK_PUSH_BYTES];
        memset(push, 0, sizeof push);
        uint32_t n32 = (uint32_t)count;
        memcpy(push, &n32, sizeof n32);
        if (params != NULL && args->params_size > 0) {
            memcpy(push + VK_PUSH_HEADER, params, args->params_size);
        }
        uint32_t gx = 0, gy = 0;
        st = vk_grid_2d(d, (count + impl->local_size_x - 1) / impl->local_size_x, &gx, &gy,
                        "kernel");
        uint32_t writes = ((1u << n) - 1u) & ~((1u << args->n_inputs) - 1u);
        if (st == LAM_OK) {
            st = vk_record(d, c->pipeline, c->layout, c->set_layout, n, binds, n, writes, push,
                           VK_PUSH_BYTES, gx, gy, 1);
        }
    }
    /* outputs that went through a temporary are copied back */
    for (uint32_t i = args->n_inputs; i < n && st == LAM_OK; i++) {
        if (ops[i].tmp != NULL && count > 0) {
            st = vk_buffer_copy(d, ops[i].buf, (size_t)ops[i].offset, ops[i].tmp, 0,
                                (size_t)ops[i].bytes);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (ops[i].tmp != NULL) {
            vk_free_deferred(d, ops[i].tmp);
        }
    }
    if (st == LAM_OK) {
        st = vk_check_validation(d, before, "kernel");
    }
    vk_validation_set_op(NULL);
    lam_status done = vk_batch_done_op(d, "kernel");
    return st != LAM_OK ? st : done;
}
