/*
 * Plugin layers as blocks (layer.c): forward, fused backward, description, and the
 * layer-facing functions of the host table. Private to core/.
 */
#ifndef LAMINA_CORE_LAYER_H
#define LAMINA_CORE_LAYER_H

#include "autograd.h"
#include "block.h"
#include "util.h"

#include "lamina/lamina.h"

#include <stdint.h>

typedef struct lam__attrs lam__attrs;

lam_status lam__layer_forward(lam_block *b, uint32_t n, lam_tensor *const *inputs,
                              lam_tensor **out);
/* The fused backward of a layer node (LAM__G_LAYER), called by the autograd walk. */
lam_status lam__layer_backward(lam__node *n, lam_tensor *g);
void lam__layer_destroy(lam_block *b);
/* Summary of a layer block ("Dense(20 -> 256, Activation(relu))"). */
void lam__layer_describe(const lam_block *b, lam__strbuf *sb);
/* The layer-facing functions of the host table. */
void lam__host_table_init_layers(lam_host_api *host);

#endif
