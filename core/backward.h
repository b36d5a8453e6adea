/*
 * The backward pass (backward.c): lam_autograd_backward and gradient accumulation. Private to
 * core/.
 */
#ifndef LAMINA_CORE_BACKWARD_H
#define LAMINA_CORE_BACKWARD_H

#include "lamina/lamina.h"

/* Adds g into leaf's gradient of the backward pass running now (a closure's inputs, a fused
 * layer's parameters); the shapes must be equal (LAM_ERR_SHAPE naming both otherwise). */
lam_status lam__grad_accumulate(lam_tensor *leaf, const lam_tensor *g);

#endif
