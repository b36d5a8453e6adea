/* Sequential: children run one after another, each one's output the next one's input. */
#include "block.h"
#include "error.h"

#include <stdio.h>

static lam_status sequential_forward(lam_block *b, uint32_t n_inputs, lam_tensor *const *inputs,
                                     lam_tensor **output) {
    if (b->n_children == 0) {
        if (n_inputs != 1) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Empty Sequential passes one input through, got %u", b->name,
                              n_inputs);
        }
        *output = lam_tensor_retain(inputs[0]);
        return LAM_OK;
    }
    lam_tensor *cur = NULL;
    for (size_t i = 0; i < b->n_children; i++) {
        lam_tensor *next;
        lam_status st = i == 0 ? lam_block_forward(b->children[i].block, n_inputs, inputs, &next)
                               : lam_block_forward(b->children[i].block, 1, &cur, &next);
        lam_tensor_release(cur);
        if (st != LAM_OK) {
            return st;
        }
        cur = next;
    }
    *output = cur;
    return LAM_OK;
}

static const lam__block_class sequential_class = {
    .forward = sequential_forward,
    .describe = NULL,
    .destroy = NULL,
    .no_infer_shape = "a Sequential's children infer their own shapes",
};

lam_status lam_sequential_create(lam_block **out) {
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_sequential_create: Invalid argument, out is NULL");
    }
    return lam__block_alloc(&sequential_class, "Sequential", "sequential", out);
}

lam_status lam_sequential_add(lam_block *seq, lam_block *child) {
    if (seq == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_sequential_add: Invalid argument, NULL "
                                                    "block");
    }
    char name[32];
    snprintf(name, sizeof name, "%zu", seq->n_children);
    return lam_block_register_child(seq, name, child);
}
