/*
 * The optimizers' update rules (optim.c): SGD with momentum and weight decay, Adam, AdamW and
 * RMSProp as PyTorch's, written with front-end ops so they run where the parameters live; the
 * names of the optimizers and of their state tensors. Private to core/.
 */
#ifndef LAMINA_CORE_OPTIM_H
#define LAMINA_CORE_OPTIM_H

#include "trainer_types.h"

#include "lamina/lamina.h"

/* The optimizers' names ("sgd", "adam", "adamw", "rmsprop"), by lam__optim. */
extern const char *const lam__optim_names[];
/* Each optimizer's state tensors, PyTorch's names (NULL: slot unused), by lam__optim. */
extern const char *const lam__optim_state_names[][LAM__N_STATE];

/* One parameter's update at learning rate lr_now (before its lr_mult) from the gradient
 * pd->g times pd->gs: fills pd->s (new state tensors, sl's unchanged), pd->u, pd->a and pd->b
 * so that committing is w = a w + b u. Reads t's kind, hyperparameters and step count. */
lam_status lam__optim_compute(const lam_trainer *t, const lam__slot *sl, lam__pending *pd,
                              double lr_now);

#endif
