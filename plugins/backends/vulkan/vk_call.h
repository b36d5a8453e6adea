/*
 * vk_call.h - an op call as the kernels see it (types only): the ABI 2.0 call (views by
 * pointer, BYTE offsets and strides, typed parameter structs) checked and converted by vk_exec.c
 * into views in ELEMENT units (every dtype the backend computes has 4-byte elements) and the
 * parameters of the op copied out of its struct. Level 2, beside vk_device.h.
 */
#ifndef LAMINA_VK_CALL_H
#define LAMINA_VK_CALL_H

#include "lamina/plugin.h"

#include <stdint.h>

#define VK_MAX_INPUTS  3
#define VK_MAX_OUTPUTS 2

typedef struct vk_call {
    lam_op op;
    uint32_t flags;
    uint32_t n_inputs;
    uint32_t n_outputs;
    /* offset and strides in elements (the ABI's bytes divided by the element size) */
    lam_tensor_view in[VK_MAX_INPUTS];
    lam_tensor_view out[VK_MAX_OUTPUTS];
    /* lam_scalar_params a, b (FILL, *_SCALAR, AXPBY, CLAMP) */
    double a, b;
    /* lam_gemm_params (GEMM, GEMM_BATCHED, LINEAR) */
    uint32_t gemm_flags;
    double alpha, beta;
    lam_op act;
    /* the other ops' parameter structs, as given (zero when the op has none) */
    lam_window_params win;
    lam_pad_params pad;
    lam_random_params rnd;
} vk_call;

#endif /* LAMINA_VK_CALL_H */
