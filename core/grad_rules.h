/*
 * Gradient rules (grad_rules.c): one per kind of recorded op. Private to core/.
 */
#ifndef LAMINA_CORE_GRAD_RULES_H
#define LAMINA_CORE_GRAD_RULES_H

#include "tape.h"

#include "lamina/lamina.h"

/* The gradients of n's first two inputs (grads[i] a new reference, or NULL when the rule gives
 * input i none) from the gradient g of its output. Not for closure nodes (they apply
 * themselves). On failure both are NULL. */
lam_status lam__grad_rule(lam__node *n, lam_tensor *g, lam_tensor *grads[2]);

#endif
