/*
 * vk_device.h - the types of an open device: its memory blocks and buffers (filled in by
 * vk_memory.c), its ring of command batches and access tracking (vk_queue.c), its layouts and
 * pipelines (vk_pipeline.c). Types only, no functions: each module's functions are declared in
 * its own header.
 */
#ifndef LAMINA_VK_DEVICE_H
#define LAMINA_VK_DEVICE_H

#include "vk_loader.h"
#include "vk_shaders.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define VK_DEVICE_MAGIC 0x4c616d56756c6b44ULL
#define VK_BUFFER_MAGIC 0x4c616d56756c6b42ULL

/* Block size of the sub-allocator; larger requests get a block of their own. */
#define VK_BLOCK_BYTES ((VkDeviceSize)64 << 20)
/* Command buffers in the ring, dispatches per submitted batch. */
#define VK_RING          3
#define VK_BATCH_OPS     64
#define VK_SETS_PER_POOL (VK_BATCH_OPS * 4)
/* Storage buffers of the backend's own set layout; most a kernel's layout may have. */
#define VK_BINDINGS       4
#define VK_MAX_SLOTS      16
#define VK_DESCS_PER_POOL (VK_SETS_PER_POOL * VK_BINDINGS)

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
    uint32_t descs_used; /* storage-buffer descriptors taken from pool */
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
    /* Threads may share one device (a Lamina context): every entry point that touches the
     * state below (memory blocks, the batch being recorded, the ring) holds this lock
     * (vk_backend.c wraps them). */
    pthread_mutex_t lock;
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
    /* The error buffer of ops that check their operands on the device (vk_rows.c): words 0..3
     * the first error (position, value, op, bound; op 0: none), word 4 the running op's first
     * bad position (0xFFFFFFFF: none). err_pending: such an op was recorded since the last
     * check (vk_buffers_check_errors). */
    struct vk_buffer *err;
    int err_pending;
    struct vk_custom *customs; /* pipelines of plugin kernels (vk_custom.c) */
};

#define VK_ERR_WORDS 8
static const uint32_t vk_err_init[VK_ERR_WORDS] = {0, 0, 0, 0, 0xFFFFFFFFu, 0, 0, 0};

#endif /* LAMINA_VK_DEVICE_H */
