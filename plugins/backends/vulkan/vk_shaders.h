/*
 * vk_shaders.h - the SPIR-V of the backend's compute shaders, embedded at build time. Data
 * only: the bottom level, beside vk_diag.
 */
#ifndef LAMINA_VK_SHADERS_H
#define LAMINA_VK_SHADERS_H

#include <stddef.h>
#include <stdint.h>

typedef enum vk_shader_id {
    VK_SHADER_EW = 0,
    VK_SHADER_REDUCE_WG = 1,
    VK_SHADER_REDUCE_ROW = 2,
    VK_SHADER_SOFTMAX = 3,
    VK_SHADER_GEMM = 4,
    VK_SHADER_WINDOW = 5,
    VK_SHADER_RANDOM = 6,
    VK_SHADER_ROWS = 7,
    VK_SHADER_COUNT = 8
} vk_shader_id;

typedef struct vk_shader_code {
    const char *name;
    const uint32_t *words;
    size_t bytes;
} vk_shader_code;

/* SPIR-V of every shader, compiled from shaders/<name>.comp at build time. */
vk_shader_code vk_shader_get(vk_shader_id id);

#endif /* LAMINA_VK_SHADERS_H */
