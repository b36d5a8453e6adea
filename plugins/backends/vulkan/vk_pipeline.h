/*
 * vk_pipeline.h - the descriptor and pipeline layouts, the compute pipelines (made on first
 * use), binding windows of buffers, and recording one dispatch. Above vk_queue; the kernels
 * are written with these.
 */
#ifndef LAMINA_VK_PIPELINE_H
#define LAMINA_VK_PIPELINE_H

#include "vk_device.h"

/* Makes the descriptor set layout (VK_BINDINGS storage buffers) and the pipeline layout (128 bytes
 * of push constants). */
lam_status vk_pipeline_init(vk_device *d);
/* Destroys the pipelines and layouts (the device is idle). */
void vk_pipeline_fini(vk_device *d);
/* The compute pipeline of a shader, made on first use. */
lam_status vk_pipeline(vk_device *d, vk_shader_id id, VkPipeline *out);

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

/* As vk_dispatch with n_binds (<= VK_BINDINGS) bindings; bit i of write_mask marks binding i
 * as written (for the barriers). */
lam_status vk_dispatch_n(vk_device *d, vk_shader_id shader, const vk_bind *binds, uint32_t n_binds,
                         uint32_t write_mask, const void *push, uint32_t push_bytes, uint32_t gx,
                         uint32_t gy, uint32_t gz);
/* Records a dispatch of any pipeline whose set layout has n_slots (<= VK_MAX_SLOTS) storage
 * buffers: binds[0..n_binds) fill the first slots, the rest repeat binds[0]. */
lam_status vk_record(vk_device *d, VkPipeline pipeline, VkPipelineLayout layout,
                     VkDescriptorSetLayout set_layout, uint32_t n_slots, const vk_bind *binds,
                     uint32_t n_binds, uint32_t write_mask, const void *push, uint32_t push_bytes,
                     uint32_t gx, uint32_t gy, uint32_t gz);

#endif /* LAMINA_VK_PIPELINE_H */
