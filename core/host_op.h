/*
 * The generic host op entry of the plugin ABI (host_op.c). Private to core/.
 */
#ifndef LAMINA_CORE_HOST_OP_H
#define LAMINA_CORE_HOST_OP_H

#include "lamina/plugin.h"

/* lam_host_api.op: checks the call, runs the op through core's front ends (autograd
 * included) and sets call->outputs[i] to new references (NULL on failure). */
lam_status lam__host_op(const lam_host_op *call);

#endif
