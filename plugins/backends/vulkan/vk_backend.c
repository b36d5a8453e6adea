/*
 * vk_backend.c - the Vulkan backend plugin: entry point, the backend descriptor, probing and
 * describing devices (through vk_loader.c), opening and closing devices.
 *
 * The top level of the plugin. Its files form levels, each calling only those below it (see
 * LEVELS; tools/check_layers.py checks includes and object-file calls):
 *   vk_diag, vk_shaders  <  vk_loader  <  vk_device.h (types)  <  vk_memory  <  vk_queue
 *   <  vk_buffers, vk_pipeline  <  vk_kernels, vk_elementwise  <  vk_exec  <  vk_backend.
 */
#include "vk_buffers.h"
#include "vk_custom.h"
#include "vk_diag.h"
#include "vk_exec.h"
#include "vk_loader.h"
#include "vk_memory.h"
#include "vk_pipeline.h"
#include "vk_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VK_PLUGIN_VERSION "2.0.0"

static lam_status backend_probe(void *user, uint32_t *n_devices, char *why, size_t why_cap) {
    (void)user;
    if (n_devices == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, n_devices is NULL");
    }
    const char *none = "";
    *n_devices = vk_loader_probe(&none);
    if (why != NULL) {
        vk_copy_str(why, why_cap, *n_devices > 0 ? "" : none);
    }
    return LAM_OK;
}

static lam_status check_index(uint32_t index) {
    const char *why = "";
    uint32_t n = vk_loader_probe(&why);
    if (n == 0) {
        return vk_error(LAM_ERR_DEVICE_UNAVAILABLE, "vulkan: Device unavailable, %s", why);
    }
    if (index >= n) {
        return vk_error(LAM_ERR_NOT_FOUND, "vulkan: Device not found, index %u (there %s %u)",
                        (unsigned)index, n == 1 ? "is" : "are", (unsigned)n);
    }
    return LAM_OK;
}

#define FITS(info, field)                                                                          \
    (offsetof(lam_device_info, field) + sizeof((info)->field) <= (size_t)(info)->struct_size)

static lam_device_kind kind_of(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return LAM_DEVICE_DISCRETE_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return LAM_DEVICE_INTEGRATED_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return LAM_DEVICE_VIRTUAL_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return LAM_DEVICE_CPU;
    default:
        return LAM_DEVICE_OTHER;
    }
}

static lam_status backend_device_info(void *user, uint32_t index, lam_device_info *info) {
    (void)user;
    if (info == NULL || info->struct_size < 2 * sizeof(uint32_t)) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, device_info needs a lam_device_info with "
                        "struct_size set");
    }
    lam_status st = check_index(index);
    if (st != LAM_OK) {
        return st;
    }
    const vk_physical *p = vk_loader_physical(index);
    const VkPhysicalDeviceLimits *l = &p->props.limits;
    if (FITS(info, kind)) {
        info->kind = kind_of(p->props.deviceType);
    }
    if (FITS(info, memory_bytes)) {
        uint64_t mem = 0;
        for (uint32_t h = 0; h < p->mem.memoryHeapCount; h++) {
            if (p->mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) {
                mem += p->mem.memoryHeaps[h].size;
            }
        }
        info->memory_bytes = mem;
    }
    if (FITS(info, compute_units)) {
        info->compute_units = 0; /* Vulkan 1.0 does not say */
    }
    if (FITS(info, name)) {
        vk_copy_str(info->name, sizeof info->name, p->props.deviceName);
    }
    if (FITS(info, driver)) {
        vk_copy_str(info->driver, sizeof info->driver, p->driver);
    }
    if (FITS(info, details)) {
        const uint32_t a = p->props.apiVersion;
        snprintf(info->details, sizeof info->details,
                 "Vulkan %u.%u.%u; maxComputeWorkGroupCount (%u, %u, %u); "
                 "maxComputeWorkGroupSize (%u, %u, %u); maxComputeWorkGroupInvocations %u; "
                 "maxStorageBufferRange %u; minStorageBufferOffsetAlignment %llu; "
                 "maxComputeSharedMemorySize %u; host-visible device-local memory: %s%s%s",
                 VK_API_VERSION_MAJOR(a), VK_API_VERSION_MINOR(a), VK_API_VERSION_PATCH(a),
                 l->maxComputeWorkGroupCount[0], l->maxComputeWorkGroupCount[1],
                 l->maxComputeWorkGroupCount[2], l->maxComputeWorkGroupSize[0],
                 l->maxComputeWorkGroupSize[1], l->maxComputeWorkGroupSize[2],
                 l->maxComputeWorkGroupInvocations, l->maxStorageBufferRange,
                 (unsigned long long)l->minStorageBufferOffsetAlignment,
                 l->maxComputeSharedMemorySize, p->host_visible_device_local ? "yes" : "no",
                 vk_env_on("LAMINA_VULKAN_FORCE_STAGING") ? " (staging forced)" : "",
                 vk_loader_validation() ? "; validation layer on" : "");
    }
    return LAM_OK;
}

static void device_destroy(vk_device *d) {
    if (d == NULL) {
        return;
    }
    if (d->device != VK_NULL_HANDLE) {
        vkf.vkDeviceWaitIdle(d->device);
        if (d->err != NULL) {
            vk_release(d, d->err);
            d->err = NULL;
        }
        vk_queue_fini(d);
        vk_custom_fini(d);
        vk_memory_fini(d);
        vk_pipeline_fini(d);
        vkf.vkDestroyDevice(d->device, NULL);
    }
    d->magic = 0;
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static lam_status backend_device_open(void *user, uint32_t index, void **out) {
    (void)user;
    if (out == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, dev is NULL");
    }
    *out = NULL;
    lam_status st = check_index(index);
    if (st != LAM_OK) {
        return st;
    }
    vk_device *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return vk_error(LAM_ERR_OUT_OF_MEMORY, "vulkan: Out of memory, opening device %u",
                        (unsigned)index);
    }
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        free(d);
        return vk_error(LAM_ERR_OUT_OF_MEMORY, "vulkan: Out of memory, opening device %u",
                        (unsigned)index);
    }
    d->magic = VK_DEVICE_MAGIC;
    d->index = index;
    d->phys = vk_loader_physical(index);
    uint64_t before = vk_validation_count();
    vk_validation_set_op("device_open");
    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qi;
    memset(&qi, 0, sizeof qi);
    qi.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
    qi.queueFamilyIndex = d->phys->queue_family;
    qi.queueCount = 1;
    qi.pQueuePriorities = &prio;
    VkDeviceCreateInfo di;
    memset(&di, 0, sizeof di);
    di.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
    di.queueCreateInfoCount = 1;
    di.pQueueCreateInfos = &qi;
    VkResult r = vkf.vkCreateDevice(d->phys->pd, &di, NULL, &d->device);
    if (r != VK_SUCCESS) {
        d->device = VK_NULL_HANDLE;
        device_destroy(d);
        vk_validation_set_op(NULL);
        return vk_error(LAM_ERR_DEVICE_UNAVAILABLE,
                        "vulkan: Device unavailable, vkCreateDevice: %s", vk_result_string(r));
    }
    vkf.vkGetDeviceQueue(d->device, d->phys->queue_family, 0, &d->queue);
    st = vk_pipeline_init(d);
    if (st == LAM_OK) {
        st = vk_memory_init(d);
    }
    if (st == LAM_OK) {
        st = vk_queue_init(d);
    }
    if (st == LAM_OK) {
        st = vk_check_validation(d, before, "device_open");
    }
    vk_validation_set_op(NULL);
    if (st != LAM_OK) {
        device_destroy(d);
        return st;
    }
    vk_log(LAM_LOG_INFO, "vulkan(%u): %s, %s", (unsigned)index, d->phys->props.deviceName,
           d->phys->driver);
    *out = d;
    return LAM_OK;
}

static void backend_device_close(void *dev) {
    vk_device *d = dev;
    if (d == NULL || d->magic != VK_DEVICE_MAGIC) {
        return;
    }
    vk_wait_all(d);
    device_destroy(d);
}

static lam_status backend_synchronize(void *dev) {
    vk_device *d = dev;
    if (d == NULL || d->magic != VK_DEVICE_MAGIC) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, not a vulkan device");
    }
    lam_status st = vk_wait_all(d);
    return st == LAM_OK ? vk_buffers_check_errors(d) : st;
}

/*
 * The host calls these from any thread, and threads may share a device: each runs under the
 * device's lock, so one thread's op never lands in a batch another thread is recording or
 * submitting. A handle that is no device goes straight through (the callee reports it).
 */
static vk_device *lockable(void *dev) {
    vk_device *d = dev;
    return d != NULL && d->magic == VK_DEVICE_MAGIC ? d : NULL;
}

#define LOCKED(dev, call)                                                                          \
    do {                                                                                           \
        vk_device *ld_ = lockable(dev);                                                            \
        if (ld_ == NULL) {                                                                         \
            return call;                                                                           \
        }                                                                                          \
        pthread_mutex_lock(&ld_->lock);                                                            \
        lam_status lst_ = call;                                                                    \
        pthread_mutex_unlock(&ld_->lock);                                                          \
        return lst_;                                                                               \
    } while (0)

static lam_status locked_buffer_alloc(void *dev, size_t bytes, void **buffer) {
    LOCKED(dev, vk_buffer_alloc(dev, bytes, buffer));
}

static void locked_buffer_free(void *dev, void *buffer) {
    vk_device *d = lockable(dev);
    if (d == NULL) {
        vk_buffer_free(dev, buffer);
        return;
    }
    pthread_mutex_lock(&d->lock);
    vk_buffer_free(dev, buffer);
    pthread_mutex_unlock(&d->lock);
}

static lam_status locked_buffer_write(void *dev, void *buffer, size_t offset, const void *src,
                                      size_t bytes) {
    LOCKED(dev, vk_buffer_write(dev, buffer, offset, src, bytes));
}

static lam_status locked_buffer_read(void *dev, const void *buffer, size_t offset, void *dst,
                                     size_t bytes) {
    LOCKED(dev, vk_buffer_read(dev, buffer, offset, dst, bytes));
}

static lam_status locked_buffer_copy(void *dev, void *dst, size_t dst_offset, const void *src,
                                     size_t src_offset, size_t bytes) {
    LOCKED(dev, vk_buffer_copy(dev, dst, dst_offset, src, src_offset, bytes));
}

/* What vk_alloc can hand out: the heap of the compute memory type (one view's span is further
 * bounded by maxStorageBufferRange, which `supports` checks per call). */
static lam_status backend_device_caps(void *dev, lam_backend_caps *caps) {
    vk_device *d = dev;
    if (d == NULL || d->magic != VK_DEVICE_MAGIC) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, not a vulkan device");
    }
    if (caps == NULL || caps->struct_size < 2 * sizeof(uint32_t)) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, device_caps needs a lam_backend_caps with "
                        "struct_size set");
    }
#define CAPS_FITS(field)                                                                           \
    (offsetof(lam_backend_caps, field) + sizeof(caps->field) <= (size_t)caps->struct_size)
    const VkPhysicalDeviceMemoryProperties *m = &d->phys->mem;
    const uint64_t heap = m->memoryHeaps[m->memoryTypes[d->mem_type_device].heapIndex].size;
    if (CAPS_FITS(flags)) {
        caps->flags = LAM_BACKEND_ASYNC; /* ops are recorded into batches, run later */
    }
    if (CAPS_FITS(max_buffer_bytes)) {
        caps->max_buffer_bytes = heap;
    }
    if (CAPS_FITS(memory_budget)) {
        caps->memory_budget = heap;
    }
    if (CAPS_FITS(buffer_alignment)) {
        caps->buffer_alignment = 0; /* no host_ptr buffers */
    }
    if (CAPS_FITS(dtypes)) {
        caps->dtypes = (1u << LAM_DTYPE_F32) | (1u << LAM_DTYPE_I32);
    }
#undef CAPS_FITS
    return LAM_OK;
}

static lam_status backend_native_handle(void *dev, void *buffer, const char *name, void **handle) {
    vk_device *d = dev;
    if (d == NULL || d->magic != VK_DEVICE_MAGIC || name == NULL || handle == NULL) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT,
                        "vulkan: Invalid argument, native_handle needs a vulkan device, a name "
                        "and a place for the handle");
    }
    *handle = NULL;
    if (buffer == NULL) {
        if (strcmp(name, "VkInstance") == 0) {
            *handle = (void *)vk_loader_instance();
        } else if (strcmp(name, "VkPhysicalDevice") == 0) {
            *handle = (void *)d->phys->pd;
        } else if (strcmp(name, "VkDevice") == 0) {
            *handle = (void *)d->device;
        } else if (strcmp(name, "VkQueue") == 0) {
            *handle = (void *)d->queue;
        }
    } else {
        const vk_buffer *b = buffer;
        if (b->magic != VK_BUFFER_MAGIC || b->dev != d) {
            return vk_error(LAM_ERR_INVALID_ARGUMENT,
                            "vulkan: Invalid argument, native_handle of a buffer that is not a "
                            "live buffer of this vulkan device");
        }
        /* Buffers are ranges of shared blocks: "VkBuffer" and "VkDeviceMemory" are the
         * block's, "VkBufferOffset" the byte offset of this buffer's first byte in both. */
        if (strcmp(name, "VkBuffer") == 0) {
            *handle = (void *)b->block->buffer;
        } else if (strcmp(name, "VkDeviceMemory") == 0) {
            *handle = (void *)b->block->memory;
        } else if (strcmp(name, "VkBufferOffset") == 0) {
            *handle = (void *)(uintptr_t)b->offset;
            return LAM_OK; /* 0 is a valid offset */
        }
    }
    if (*handle == NULL) {
        return vk_error(LAM_ERR_NOT_FOUND,
                        "vulkan: Not found, no native handle named '%.64s'%s (known: VkInstance, "
                        "VkPhysicalDevice, VkDevice, VkQueue; VkBuffer, VkDeviceMemory, "
                        "VkBufferOffset of a buffer)",
                        name, buffer != NULL ? " for a buffer" : "");
    }
    return LAM_OK;
}

static lam_status locked_execute(void *dev, const lam_op_call *call) {
    LOCKED(dev, vk_execute(dev, call));
}

static lam_status run_kernel(void *dev, const lam_kernel_impl *impl, const void *params,
                             const lam_kernel_args *args) {
    vk_device *d = dev; /* the kernel's `user` is for impl->run, which SPIR-V has not */
    if (d == NULL || d->magic != VK_DEVICE_MAGIC) {
        return vk_error(LAM_ERR_INVALID_ARGUMENT, "vulkan: Invalid argument, not a vulkan device");
    }
    return vk_run_kernel(d, impl, params, args);
}

static lam_status locked_run_kernel(void *dev, const lam_kernel_impl *impl, void *user,
                                    const void *params, const lam_kernel_args *args) {
    (void)user;
    LOCKED(dev, run_kernel(dev, impl, params, args));
}

static lam_status locked_synchronize(void *dev) {
    LOCKED(dev, backend_synchronize(dev));
}

static void backend_shutdown(void *user) {
    (void)user;
    vk_loader_unload();
    vk_validation_reset();
    vk_diag_fini();
}

static const lam_backend_desc vk_backend_desc = {
    LAM_BACKEND_DESC_HEADER,
    .name = "vulkan",
    .version = VK_PLUGIN_VERSION,
    .doc = "Vulkan compute backend: GLSL compute shaders compiled to SPIR-V at build time",
    .user = NULL,
    .probe = backend_probe,
    .device_info = backend_device_info,
    .device_open = backend_device_open,
    .device_close = backend_device_close,
    .buffer_alloc = locked_buffer_alloc,
    .buffer_free = locked_buffer_free,
    .buffer_write = locked_buffer_write,
    .buffer_read = locked_buffer_read,
    .buffer_copy = locked_buffer_copy,
    .device_caps = backend_device_caps,
    .supports = vk_supports,
    .execute = locked_execute,
    .synchronize = locked_synchronize,
    .shutdown = backend_shutdown,
    .native_handle = backend_native_handle,
    .run_kernel = locked_run_kernel,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    if (host->register_backend == NULL) {
        return host->set_error(LAM_ERR_ABI, "vulkan: ABI mismatch, host has no register_backend");
    }
    vk_host = host;
    return host->register_backend(plugin, &vk_backend_desc);
}
