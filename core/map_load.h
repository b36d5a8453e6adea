/*
 * Zero-copy loading (map_load.c): the float32 tensors of a safetensors file as views of a
 * private mapping of it. Private to core/.
 */
#ifndef LAMINA_CORE_MAP_LOAD_H
#define LAMINA_CORE_MAP_LOAD_H

#include "lamina/lamina.h"
#include "safetensors.h"

#include <stdbool.h>

/* A private (copy-on-write) mapping of a whole file, shared by the tensors over it. */
typedef struct lam__file_map lam__file_map;

/*
 * Maps the file behind fd (f's header already validated) whole, readable and writable,
 * MAP_PRIVATE, without populating it (pages are read when first touched; populating a writable
 * private mapping would copy every page). *out is NULL (and LAM_OK returned) for a file larger
 * than the address space: its tensors are then all copied. Release with lam__map_release.
 * Errors: LAM_ERR_IO (mmap failed), LAM_ERR_OUT_OF_MEMORY.
 */
lam_status lam__map_file(const lam__st_file *f, int fd, lam__file_map **out);
/* The first byte of the file in the mapping (m not NULL). */
const uint8_t *lam__map_base(const lam__file_map *m);
/* Drops the caller's reference (m NULL: nothing): the mapping goes with the last reference. */
void lam__map_release(lam__file_map *m);

/*
 * Makes tensors[i] a tensor over the bytes of every entry of f that can be wrapped without a
 * copy (float32, little-endian host, not empty, its data at a multiple of 8 bytes, a backend
 * that wraps host memory), each holding a reference to m; every other entry (all of them when
 * m is NULL) gets copy[i] = true and tensors[i] NULL, for the caller to read. On failure every
 * tensor made here is released and the error is set.
 */
/* Entry i of f as a tensor over m on ctx (holding a reference to m), or *out NULL (LAM_OK)
 * when it cannot be wrapped without a copy (as for lam__map_tensors; m NULL: never). */
lam_status lam__map_tensor(const lam__st_file *f, lam__file_map *m, size_t i, lam_ctx *ctx,
                           lam_tensor **out);
lam_status lam__map_tensors(const lam__st_file *f, lam__file_map *m, lam_ctx *ctx,
                            lam_tensor **tensors, bool *copy);

#endif
