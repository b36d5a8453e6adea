/* The CNN's layers as custom blocks over core ops (cnn_core_layers.c), used by `lamina train
 * --model cnn` where a layer plugin is not installed. */
#ifndef LAMINA_CNN_CORE_LAYERS_H
#define LAMINA_CNN_CORE_LAYERS_H

#include "lamina/lamina.h"

/* k x k convolution, stride 1, `pad` zeros each side: weight (out_c, in_c, k, k), bias. */
lam_status cl_conv(int64_t in_c, int64_t out_c, int64_t k, int64_t pad, lam_block **out);
/* 2 x 2 max pooling, stride 2. */
lam_status cl_maxpool(lam_block **out);
/* (N, ...) -> (N, rest). */
lam_status cl_flatten(lam_block **out);

#endif
