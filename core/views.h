/*
 * Slices and permutations (views.c): lam_tensor_slice and lam_tensor_permute of lamina.h.
 * Private to core/; nothing else is declared here.
 */
#ifndef LAMINA_CORE_VIEWS_H
#define LAMINA_CORE_VIEWS_H

#include "lamina/lamina.h"

#endif
