/*
 * Op names in messages (op_name.c). Private to core/.
 */
#ifndef LAMINA_CORE_OP_NAME_H
#define LAMINA_CORE_OP_NAME_H

#include "lamina/lamina.h"

/* The name messages give an op: the front-end function's ("matmul", "sum"), which is the
 * SDK's lam_op_name except where the backend op has another name (gemm, reduce_*);
 * "invalid" for a value that is no op. */
const char *lam__op_name(lam_op op);

#endif
