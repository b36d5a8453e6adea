/*
 * What the trainer (trainer.c) holds, as its parts see it: the optimizer kinds, the per-parameter
 * slots and their state tensors, the hyperparameters, and what a step computes for one parameter
 * before anything is written. The update rules (optim.c), clipping (trainer_clip.c) and the state
 * files (trainer_state.c) work on these. Private to core/.
 */
#ifndef LAMINA_CORE_TRAINER_TYPES_H
#define LAMINA_CORE_TRAINER_TYPES_H

#include "distributed.h"
#include "param.h"

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lam__optim {
    LAM__SGD = 0,
    LAM__ADAM = 1,
    LAM__ADAMW = 2,
    LAM__RMSPROP = 3
} lam__optim;

/* Per-parameter state tensors (names: lam__optim_state_names); NULL until the first step
 * writes them. */
#define LAM__N_STATE 3

typedef struct lam__slot {
    lam_param *param;
    char *key; /* the structural key in the list the trainer was made from */
    lam_tensor *s[LAM__N_STATE];
} lam__slot;

typedef struct lam__hyper {
    double lr, momentum, wd, beta1, beta2, eps, alpha, clip;
    int centered;
} lam__hyper;

struct lam_trainer {
    lam__optim kind;
    lam__hyper h;
    bool has_schedule;
    lam_lr_schedule sched;
    int64_t t; /* steps taken: bias correction and the schedule's position */
    lam_tensor *last_norm;
    lam__slot *slots;
    size_t n;
    lam__dist *dist; /* data-parallel over a communicator (distributed.c), NULL: local */
};

/* What a step computes for one parameter before anything is written: the new state, and the
 * update w = a w + b u. */
typedef struct lam__pending {
    lam_tensor *g; /* the gradient the update reads (a new reference) */
    float gs;      /* ... times this scale */
    lam_tensor *s[LAM__N_STATE];
    lam_tensor *u;
    float a, b;
    bool active;
} lam__pending;

/* Replaces *x with the result of `call` (which writes next_): releases the old tensor. Needs a
 * lam_status st in scope; does nothing once st is an error. */
#define LAM__UPDATE(x, call)                                                                       \
    do {                                                                                           \
        lam_tensor *next_ = NULL;                                                                  \
        if (st == LAM_OK && (st = (call)) == LAM_OK) {                                             \
            lam_tensor_release(x);                                                                 \
            x = next_;                                                                             \
        }                                                                                          \
    } while (0)

/* A parameter the trainer updates (not constant, gradient requested). */
static inline bool lam__trainable(const lam_param *p) {
    return !(p->flags & LAM_PARAM_CONSTANT) && p->grad_req != LAM_GRAD_NULL;
}

#endif
