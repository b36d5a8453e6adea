/*
 * Plugin layers as blocks (layer.c): the layer block class (created by lam_layer_create) and the
 * layer-facing functions of the host table. Private to core/.
 */
#ifndef LAMINA_CORE_LAYER_H
#define LAMINA_CORE_LAYER_H

#include "layer_attrs.h"
#include "lamina/lamina.h"

#include <stdint.h>

/* The layer-facing functions of the host table (see lam_host_api in plugin.h). */
lam_status lam__host_declare_param(lam_layer *layer, const char *name, const lam_shape *shape,
                                   const char *init, uint32_t flags);
lam_status lam__host_param_infer_shape(lam_layer *layer, const char *name, const lam_shape *shape);
const lam_shape *lam__host_param_shape(lam_layer *layer, const char *name);
lam_status lam__host_param_data(lam_layer *layer, const char *name, const lam_tensor *like,
                                lam_tensor **data);
lam_status lam__host_param_add_grad(lam_layer *layer, const char *name, const lam_tensor *grad);
int32_t lam__host_input_needs_grad(const lam_layer *layer, uint32_t index);
const char *lam__host_layer_name(const lam_layer *layer);
lam_status lam__host_param_assign(lam_layer *layer, const char *name, const lam_tensor *value);
lam_status lam__host_layer_rng(lam_layer *layer, uint64_t count, lam_rng_key *key);

#endif
