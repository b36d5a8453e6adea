/*
 * cpu_reduce.c - reductions, argmax, softmax and moments over the middle axis of a 3-D view
 * (outer, n, inner): the driver. The loops are in cpu_kern_impl.h, compiled per instruction
 * set.
 *
 * Sums accumulate in double so a long sum of floats keeps float accuracy. Two loop shapes:
 * when the inner axis is dense, a block of inner positions is reduced together (the loop over
 * the block vectorizes); otherwise each line along n is reduced on its own, with eight
 * independent accumulators when it is dense so that loop vectorizes too. Lines and blocks are
 * the tasks the pool's threads share; a line is never split, so the result does not depend on
 * the thread count.
 */
#include "cpu_internal.h"

typedef struct red_job {
    const cpu_call *call;
    const cpu_kern *kern;
    int blocked;
} red_job;

static void red_tasks(void *arg, int64_t t0, int64_t t1) {
    const red_job *j = arg;
    j->kern->reduce_tasks(j->call, j->blocked, t0, t1);
}

lam_status cpu_reduce(const cpu_call *call) {
    const cpu_view *xv = &call->in[0];
    const int64_t outer = xv->dims[0];
    const int64_t n = xv->dims[1];
    const int64_t inner = xv->dims[2];
    const lam_op op = call->op;

    switch (op) {
    case LAM_OP_REDUCE_SUM:
    case LAM_OP_REDUCE_MEAN:
    case LAM_OP_REDUCE_MAX:
    case LAM_OP_REDUCE_MIN:
    case LAM_OP_ARGMAX:
    case LAM_OP_MOMENTS:
    case LAM_OP_SOFTMAX:
    case LAM_OP_LOG_SOFTMAX:
        break;
    default:
        return cpu_error(LAM_ERR_INTERNAL, "cpu: Internal error, op %d is no reduction", (int)op);
    }
    if (outer == 0 || inner == 0) {
        return LAM_OK;
    }
    if (op == LAM_OP_ARGMAX && n == 0) {
        char dims[160];
        return cpu_error(LAM_ERR_SHAPE, "cpu: Empty axis, argmax of an input with dims %s",
                         lam_dims_format(dims, sizeof dims, 3, xv->dims));
    }
    /* The blocked loops need the inner axis dense in x; n == 0 takes the line loops. */
    const int blocked =
        inner > 1 && xv->st[2] == 1 && n > 0 &&
        (op == LAM_OP_REDUCE_SUM || op == LAM_OP_REDUCE_MEAN || op == LAM_OP_REDUCE_MAX ||
         op == LAM_OP_REDUCE_MIN || op == LAM_OP_MOMENTS);
    const int64_t per = blocked ? (inner + CPU_RED_BLOCK - 1) / CPU_RED_BLOCK : inner;
    red_job j = {call, cpu_kern_pick(), blocked};
    const int64_t cost = op == LAM_OP_SOFTMAX || op == LAM_OP_LOG_SOFTMAX ? 8 : 1;
    cpu_parallel_for(outer * per, outer * n * inner * cost, red_tasks, &j);
    return LAM_OK;
}
