/*
 * vk_internal.h - what the files of the Vulkan backend plugin share. Nothing here is exported:
 * the plugin's only public symbol is lamina_plugin_entry (see vk_backend.c).
 *
 * The plugin never links libvulkan: vk_loader.c dlopen()s libvulkan.so.1 at probe time and
 * fills the function table below, so the plugin always loads and reports why it has no device.
 */
#ifndef LAMINA_VK_INTERNAL_H
#define LAMINA_VK_INTERNAL_H

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include "lamina/plugin.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Vulkan entry points, loaded at run time ---- */

#define VK_GLOBAL_FUNCS(X)                                                                         \
    X(vkCreateInstance)                                                                            \
    X(vkEnumerateInstanceLayerProperties)                                                          \
    X(vkEnumerateInstanceExtensionProperties)

#define VK_INSTANCE_FUNCS(X)                                                                       \
    X(vkDestroyInstance)                                                                           \
    X(vkEnumeratePhysicalDevices)                                                                  \
    X(vkGetPhysicalDeviceProperties)                                                               \
    X(vkGetPhysicalDeviceQueueFamilyProperties)                                                    \
    X(vkGetPhysicalDeviceMemoryProperties)                                                         \
    X(vkCreateDevice)                                                                              \
    X(vkGetDeviceProcAddr)

/* Optional instance-level functions (NULL when absent). */
#define VK_INSTANCE_OPT_FUNCS(X)                                                                   \
    X(vkGetPhysicalDeviceProperties2)                                                              \
    X(vkCreateDebugUtilsMessengerEXT)                                                              \
    X(vkDestroyDebugUtilsMessengerEXT)

#define VK_DEVICE_FUNCS(X)                                                                         \
    X(vkDestroyDevice)                                                                             \
    X(vkGetDeviceQueue)                                                                            \
    X(vkDeviceWaitIdle)                                                                            \
    X(vkAllocateMemory)                                                                            \
    X(vkFreeMemory)                                                                                \
    X(vkMapMemory)                                                                                 \
    X(vkUnmapMemory)                                                                               \
    X(vkCreateBuffer)                                                                              \
    X(vkDestroyBuffer)                                                                             \
    X(vkGetBufferMemoryRequirements)                                                               \
    X(vkBindBufferMemory)                                                                          \
    X(vkCreateShaderModule)                                                                        \
    X(vkDestroyShaderModule)                                                                       \
    X(vkCreateDescriptorSetLayout)                                                                 \
    X(vkDestroyDescriptorSetLayout)                                                                \
    X(vkCreatePipelineLayout)                                                                      \
    X(vkDestroyPipelineLayout)                                                                     \
    X(vkCreateComputePipelines)                                                                    \
    X(vkDestroyPipeline)                                                                           \
    X(vkCreateDescriptorPool)                                                                      \
    X(vkDestroyDescriptorPool)                                                                     \
    X(vkResetDescriptorPool)                                                                       \
    X(vkAllocateDescriptorSets)                                                                    \
    X(vkUpdateDescriptorSets)                                                                      \
    X(vkCreateCommandPool)                                                                         \
    X(vkDestroyCommandPool)                                                                        \
    X(vkAllocateCommandBuffers)                                                                    \
    X(vkResetCommandBuffer)                                                                        \
    X(vkBeginCommandBuffer)                                                                        \
    X(vkEndCommandBuffer)                                                                          \
    X(vkCmdBindPipeline)                                                                           \
    X(vkCmdBindDescriptorSets)                                                                     \
    X(vkCmdPushConstants)                                                                          \
    X(vkCmdDispatch)                                                                               \
    X(vkCmdPipelineBarrier)                                                                        \
    X(vkCmdCopyBuffer)                                                                             \
    X(vkCreateFence)                                                                               \
    X(vkDestroyFence)                                                                              \
    X(vkResetFences)                                                                               \
    X(vkWaitForFences)                                                                             \
    X(vkQueueSubmit)

typedef struct vk_funcs {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
#define VK_DECLARE(name) PFN_##name name;
    VK_GLOBAL_FUNCS(VK_DECLARE)
    VK_INSTANCE_FUNCS(VK_DECLARE)
    VK_INSTANCE_OPT_FUNCS(VK_DECLARE)
    VK_DEVICE_FUNCS(VK_DECLARE)
#undef VK_DECLARE
} vk_funcs;

/* The loaded entry points. Device-level ones come from the first device opened (every device
 * of one loader dispatches through the same trampolines, so they are valid for all). */
extern vk_funcs vkf;

/* ---- shaders (generated vk_shaders.c) ---- */

typedef enum vk_shader_id {
    VK_SHADER_EW = 0,
    VK_SHADER_REDUCE_WG = 1,
    VK_SHADER_REDUCE_ROW = 2,
    VK_SHADER_SOFTMAX = 3,
    VK_SHADER_GEMM = 4,
    VK_SHADER_COUNT = 5
} vk_shader_id;

typedef struct vk_shader_code {
    const char *name;
    const uint32_t *words;
    size_t bytes;
} vk_shader_code;

/* SPIR-V of every shader, compiled from shaders/<name>.comp at build time. */
vk_shader_code vk_shader_get(vk_shader_id id);

/* ---- physical devices (vk_backend.c) ---- */

typedef struct vk_physical {
    VkPhysicalDevice pd;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem;
    uint32_t queue_family;
    char driver[128];
    int host_visible_device_local; /* a DEVICE_LOCAL | HOST_VISIBLE | HOST_COHERENT type */
} vk_physical;

/* ---- device ---- */

#define VK_DEVICE_MAGIC 0x4c616d56756c6b44ULL
#define VK_BUFFER_MAGIC 0x4c616d56756c6b42ULL

/* Block size of the sub-allocator; larger requests get a block of their own. */
#define VK_BLOCK_BYTES ((VkDeviceSize)64 << 20)
/* Command buffers in the ring, dispatches per submitted batch. */
#define VK_RING          3
#define VK_BATCH_OPS     64
#define VK_SETS_PER_POOL (VK_BATCH_OPS * 4)

/*
 * lavapipe stops a shader invocation silently after 65,535 non-unrolled loop iterations in
 * total. Every shader's loops are bounded on the host so that no invocation gets near it.
 */
#define VK_MAX_LOOP_ITERS 60000u

typedef struct vk_block vk_block;

/* One contiguous free or used range of a block. */
typedef struct vk_range {
    VkDeviceSize offset;
    VkDeviceSize size;
    struct vk_range *next;
} vk_range;

struct vk_block {
    VkDeviceMemory memory;
    VkBuffer buffer;
    VkDeviceSize size;
    void *mapped;      /* host pointer when the memory is host visible and mapped */
    vk_range *free;    /* sorted by offset, coalesced */
    VkDeviceSize used; /* bytes handed out */
    int host;          /* staging block (host visible, transfer only) */
    int dedicated;     /* one large allocation, freed with its buffer */
    vk_block *next;
};

typedef struct vk_device vk_device;

/* A buffer handed to the host: a range of one block. */
typedef struct vk_buffer {
    uint64_t magic;
    vk_device *dev;
    vk_block *block;
    VkDeviceSize offset; /* bytes from the start of the block */
    VkDeviceSize size;   /* bytes reserved (rounded up) */
    size_t bytes;        /* bytes requested */
    uint64_t last_use;   /* serial of the last batch that used it */
} vk_buffer;

/* A byte range of a VkBuffer touched by recorded work since the last barrier. */
typedef struct vk_access {
    VkBuffer buffer;
    VkDeviceSize lo;
    VkDeviceSize hi; /* exclusive */
    int write;
} vk_access;

/* A buffer freed while work that may use it is still pending: released after that batch. */
typedef struct vk_deferred {
    vk_buffer *buf;
    struct vk_deferred *next;
} vk_deferred;

typedef struct vk_batch {
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorPool pool;
    uint32_t sets_used;
    uint32_t n_ops;
    int recording; /* begun, not yet submitted */
    int in_flight; /* submitted, fence not yet waited for */
    uint64_t serial;
    vk_deferred *deferred;
    char ops[160]; /* names of the ops recorded, for error messages */
    /* staging copies to run on the host once the batch finishes (buffer reads) */
} vk_batch;

struct vk_device {
    uint64_t magic;
    uint32_t index;
    const vk_physical *phys;
    VkDevice device;
    VkQueue queue;
    VkCommandPool cmd_pool;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout pipe_layout;
    VkPipeline pipelines[VK_SHADER_COUNT];
    uint32_t mem_type_device; /* memory type index of compute buffers */
    uint32_t mem_type_host;   /* host visible type for staging */
    int direct;               /* compute buffers are host visible: map them, no staging */
    VkDeviceSize align;       /* sub-allocation alignment */
    vk_block *blocks;
    vk_batch ring[VK_RING];
    uint32_t cur; /* the batch being recorded */
    uint64_t next_serial;
    uint64_t done_serial; /* every batch with serial <= done_serial has finished */
    vk_access *acc;
    size_t n_acc, cap_acc;
    lam_status sticky; /* device lost: every later call fails */
    char sticky_msg[512];
    char async_msg[1024]; /* an asynchronous error waiting for the next synchronizing call */
    lam_status async_status;
};

/* ---- vk_backend.c ---- */

extern const lam_host_api *vk_host;
lam_status vk_error(lam_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vk_log(lam_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *vk_result_string(VkResult r);

/*
 * Validation messages (LAMINA_VULKAN_VALIDATION=1). vk_validation_take copies the oldest
 * unreported message into buf (and forgets it) and returns nonzero when there was one.
 * vk_validation_count is the number recorded so far (to see whether an op raised one).
 */
int vk_validation_take(char *buf, size_t cap, int consume);
uint64_t vk_validation_count(void);
/* Names the op being recorded, so a validation message can say which op raised it. */
void vk_validation_set_op(const char *op);

/* The compute pipeline of a shader, made on first use. */
lam_status vk_pipeline(vk_device *d, vk_shader_id id, VkPipeline *out);

/* ---- vk_memory.c ---- */

lam_status vk_memory_init(vk_device *d);
void vk_memory_fini(vk_device *d);
/* Reserves `bytes` from a compute block (host=0) or a staging block (host=1). */
lam_status vk_alloc(vk_device *d, size_t bytes, int host, vk_buffer **out);
/* Returns the range to its block now (the caller made sure no pending work uses it). */
void vk_release(vk_device *d, vk_buffer *b);
/* Frees now when no pending batch may use b, else after the current batch finishes. */
void vk_free_deferred(vk_device *d, vk_buffer *b);

lam_status vk_buffer_alloc(void *dev, size_t bytes, void **buffer);
void vk_buffer_free(void *dev, void *buffer);
lam_status vk_buffer_write(void *dev, void *buffer, size_t offset, const void *src, size_t bytes);
lam_status vk_buffer_read(void *dev, const void *buffer, size_t offset, void *dst, size_t bytes);
lam_status vk_buffer_copy(void *dev, void *dst, size_t dst_offset, const void *src,
                          size_t src_offset, size_t bytes);

/* ---- vk_queue.c ---- */

lam_status vk_queue_init(vk_device *d);
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
/* LAM_OK, or the sticky device-lost error. */
lam_status vk_check_sticky(vk_device *d);
/* After an op was recorded: a validation message raised while recording fails the op. */
lam_status vk_check_validation(vk_device *d, uint64_t before, const char *op);

/* ---- vk_exec.c ---- */

int32_t vk_supports_op(void *dev, lam_op op, const lam_op_call *call);
lam_status vk_execute(void *dev, const lam_op_call *call);

/* A checked view: its buffer and the lowest and highest element it reaches. */
typedef struct vk_view {
    vk_buffer *buf;
    int empty;
    int64_t lo, hi; /* elements from the start of the buffer, inclusive */
} vk_view;

/* One operand bound to the shader: a window of a block's VkBuffer. */
typedef struct vk_bind {
    vk_buffer *buf;
    VkDeviceSize offset; /* bytes into the block's VkBuffer, aligned */
    VkDeviceSize range;
    int64_t base; /* element of the buffer at the window's start */
} vk_bind;

/* Binds elements [lo, hi] of buf (aligned down, at most maxStorageBufferRange bytes). */
lam_status vk_bind_range(vk_device *d, vk_buffer *buf, int64_t lo, int64_t hi, const char *opname,
                         const char *what, vk_bind *out);
/* Binds what a checked view touches. */
lam_status vk_bind_view(vk_device *d, const vk_view *v, const char *opname, const char *what,
                        vk_bind *out);
/* An element offset (from the buffer start) relative to a window, as the shader's int. */
lam_status vk_rel(const vk_bind *b, int64_t elem, int32_t *out);
/* v as a 32-bit shader int, or an error naming the op. */
lam_status vk_to_i32(int64_t v, int32_t *out, const char *opname);
/* Splits `groups` workgroups over x and y within maxComputeWorkGroupCount. */
lam_status vk_grid_2d(vk_device *d, uint64_t groups, uint32_t *gx, uint32_t *gy,
                      const char *opname);
/* Records one dispatch of `shader` with bindings out, x, y and push constants (barriers,
 * descriptor set, and the buffers marked as used by the batch). */
lam_status vk_dispatch(vk_device *d, vk_shader_id shader, const vk_bind binds[3], const void *push,
                       uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz);

/* ---- vk_kernels.c ---- */

lam_status vk_run_reduce(vk_device *d, const lam_op_call *call, const char *opname);
lam_status vk_run_softmax(vk_device *d, const lam_op_call *call, const char *opname,
                          const vk_view *vo, const vk_view *vx);
/* GEMM; act (a lam_op number, 0 none) is applied to each stored value after the last K range. */
lam_status vk_run_gemm(vk_device *d, const lam_op_call *call, const char *opname, const vk_view *vc,
                       const vk_view *va, const vk_view *vb, int32_t act);

#endif /* LAMINA_VK_INTERNAL_H */
