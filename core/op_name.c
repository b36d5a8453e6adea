/* Op names in messages: one table, the SDK's (lam_op_name), with the front-end names where
 * they differ. */
#include "op_name.h"

const char *lam__op_name(lam_op op) {
    switch (op) {
    case LAM_OP_GEMM:
        return "matmul";
    case LAM_OP_REDUCE_SUM:
        return "sum";
    case LAM_OP_REDUCE_MEAN:
        return "mean";
    case LAM_OP_REDUCE_MAX:
        return "max";
    case LAM_OP_REDUCE_MIN:
        return "min";
    default:
        return (op > 0 && op < LAM_OP_COUNT) ? lam_op_name(op) : "invalid";
    }
}
