/*
 * Index, random, selection and conversion ops (ops_index.c). Private to core/; the public ones
 * are in lamina.h.
 */
#ifndef LAMINA_CORE_OPS_INDEX_H
#define LAMINA_CORE_OPS_INDEX_H

#include "lamina/lamina.h"
#include "lamina/plugin.h"

/* Fills seed, key and offset of p for `count` elements of lam_op_random_*'s stream. */
lam_status lam__random_key(uint64_t count, lam_random_params *p);
/* A random float32 tensor of `shape` on ctx (NULL: default) with the stream and kind in p. */
lam_status lam__random(lam_ctx *ctx, const lam_shape *shape, lam_dtype dtype,
                       const lam_random_params *p, lam_tensor **out);

#endif
