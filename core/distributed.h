/*
 * Data-parallel training (distributed.c): what a trainer with a communicator adds to a step.
 * The parameters are checked to be the same model with the same values on every rank at the
 * first step; gradients are summed over the ranks in buckets whose reductions start during
 * the backward pass. Private to core/.
 */
#ifndef LAMINA_CORE_DISTRIBUTED_H
#define LAMINA_CORE_DISTRIBUTED_H

#include "lamina/lamina.h"

#include <stddef.h>

typedef struct lam__dist lam__dist;

/* A data-parallel state for `params` (retained; the trainer's order, which is the model's
 * registration order) over comm (borrowed). bucket_bytes 0: LAM_TRAINER_BUCKET_BYTES. Nothing
 * is exchanged until the first lam__dist_reduce. */
lam_status lam__dist_create(lam_comm *comm, lam_param *const *params, size_t n, size_t bucket_bytes,
                            lam__dist **out);
/* Before an update (collective: every rank calls it once per step): at the first call checks
 * the model and its values across ranks (see lam_trainer_set_comm); then waits until every
 * gradient is summed over the ranks and sets *global_batch to the sum of the ranks' batch.
 * Afterwards the next backward pass starts each bucket's reduction as soon as its gradients
 * are complete. */
lam_status lam__dist_reduce(lam__dist *d, int64_t batch, int64_t *global_batch);
/* Waits for reductions in flight, unhooks the parameters. NULL is a no-op. */
void lam__dist_destroy(lam__dist *d);

#endif
