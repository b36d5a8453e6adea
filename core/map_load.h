/*
 * Zero-copy loading (map_load.c): the float32 tensors of a safetensors file as views of a
 * private mapping of it. Private to core/.
 */
#ifndef LAMINA_CORE_MAP_LOAD_H
#define LAMINA_CORE_MAP_LOAD_H

#include "lamina/lamina.h"
#include "safetensors.h"

#include <stdbool.h>

/*
 * Maps the file behind fd (f's header already validated) copy-on-write and makes tensors[i]
 * a tensor over the bytes of every entry that can be wrapped without a copy (float32,
 * little-endian host, not empty, its data at a multiple of 8 bytes, a backend that wraps host
 * memory); every other entry gets copy[i] = true and tensors[i] NULL, for the caller to read.
 * The mapping goes when the last of its tensors does. On failure every tensor made here is
 * released and the error is set.
 */
lam_status lam__map_tensors(const lam__st_file *f, int fd, lam_ctx *ctx, lam_tensor **tensors,
                            bool *copy);

#endif
