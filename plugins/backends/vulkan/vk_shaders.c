/*
 * vk_shaders.c - the table of embedded SPIR-V shaders. The arrays themselves are generated at
 * build time (shader_<name>.c, from shaders/<name>.comp through glslc and embed_spirv.cmake).
 */
#include "vk_shaders.h"

#define VK_SPV(name)                                                                               \
    extern const uint32_t vk_spv_##name[];                                                         \
    extern const size_t vk_spv_##name##_bytes;
VK_SPV(ew)
VK_SPV(reduce_wg)
VK_SPV(reduce_row)
VK_SPV(softmax)
VK_SPV(gemm)
VK_SPV(window)
VK_SPV(random)
VK_SPV(rows)
#undef VK_SPV

vk_shader_code vk_shader_get(vk_shader_id id) {
    vk_shader_code c = {"?", NULL, 0};
    switch (id) {
    case VK_SHADER_EW:
        c = (vk_shader_code){"ew", vk_spv_ew, vk_spv_ew_bytes};
        break;
    case VK_SHADER_REDUCE_WG:
        c = (vk_shader_code){"reduce_wg", vk_spv_reduce_wg, vk_spv_reduce_wg_bytes};
        break;
    case VK_SHADER_REDUCE_ROW:
        c = (vk_shader_code){"reduce_row", vk_spv_reduce_row, vk_spv_reduce_row_bytes};
        break;
    case VK_SHADER_SOFTMAX:
        c = (vk_shader_code){"softmax", vk_spv_softmax, vk_spv_softmax_bytes};
        break;
    case VK_SHADER_GEMM:
        c = (vk_shader_code){"gemm", vk_spv_gemm, vk_spv_gemm_bytes};
        break;
    case VK_SHADER_WINDOW:
        c = (vk_shader_code){"window", vk_spv_window, vk_spv_window_bytes};
        break;
    case VK_SHADER_RANDOM:
        c = (vk_shader_code){"random", vk_spv_random, vk_spv_random_bytes};
        break;
    case VK_SHADER_ROWS:
        c = (vk_shader_code){"rows", vk_spv_rows, vk_spv_rows_bytes};
        break;
    default:
        break;
    }
    return c;
}
