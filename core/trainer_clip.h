/*
 * Clipping by global norm (trainer_clip.c): inside a trainer's step, and of a parameter list's
 * gradients (lam_param_list_clip_global_norm). Private to core/.
 */
#ifndef LAMINA_CORE_TRAINER_CLIP_H
#define LAMINA_CORE_TRAINER_CLIP_H

#include "trainer_types.h"

#include "lamina/lamina.h"

#include <stddef.h>

/* Clipping inside a step: each active pending gradient gs G becomes gs G * factor (scale 1),
 * factor = min(1, max_norm / (norm + 1e-6)); *norm_out receives the global norm (a new scalar
 * tensor). On failure pd is unchanged. */
lam_status lam__clip_pending(lam__pending *pd, size_t n, double max_norm, lam_tensor **norm_out);

#endif
