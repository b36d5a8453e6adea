/*
 * Initializers (init.c): filling parameter values. Private to core/.
 */
#ifndef LAMINA_CORE_INIT_H
#define LAMINA_CORE_INIT_H

#include "lamina/lamina.h"

#include <stddef.h>

/*
 * Fills `count` floats for a parameter of full shape `shape` with `init`. The random stream is
 * derived from (lam_seed_get(), key), so the values depend on nothing else. `name` is the
 * display name passed to custom callbacks and used in messages.
 */
lam_status lam__init_fill(const lam_initializer *init, const char *name, const char *key,
                          const lam_shape *shape, float *data, size_t count);

#endif
