/*
 * Plugin layers as blocks (layer.c): the layer block class (created by lam_layer_create) and the
 * layer-facing functions of the host table. Private to core/.
 */
#ifndef LAMINA_CORE_LAYER_H
#define LAMINA_CORE_LAYER_H

#include "lamina/lamina.h"

#include <stdint.h>

/* The layer-facing functions of the host table. */
void lam__host_table_init_layers(lam_host_api *host);

#endif
