/*
 * Shapes (shape.c): the checked element count and whether all dims are known. The formatter
 * is the public lam_shape_format. Private to core/.
 */
#ifndef LAMINA_CORE_SHAPE_H
#define LAMINA_CORE_SHAPE_H

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * The number of elements of a shape whose dims are all known, checked: LAM_ERR_SHAPE naming
 * `subject` and the shape when a dim is negative or the count exceeds LAM__MAX_NUMEL (so that
 * the byte count of any float tensor fits in int64_t and size_t). For every shape product
 * (tensors, parameters, files).
 */
#define LAM__MAX_NUMEL ((int64_t)1 << 60)
lam_status lam__shape_numel(const char *subject, const lam_shape *shape, int64_t *out);
/* Multiplies the running bound by d, zero dims left out (they make the count 0 but not the
 * strides); false beyond LAM__MAX_NUMEL. */
bool lam__shape_bound_mul(int64_t *bound, int64_t d);
/* True when no dim is unknown (negative). */
bool lam__shape_known(const lam_shape *s);
/* "float32", "int32", ... ("invalid dtype" for anything else). */
const char *lam__dtype_name(lam_dtype dtype);

#endif
