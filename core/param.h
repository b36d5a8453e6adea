/*
 * Parameters and parameter lists (param.c). Private to core/.
 */
#ifndef LAMINA_CORE_PARAM_H
#define LAMINA_CORE_PARAM_H

#include "lamina/lamina.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lam_param {
    atomic_long refcount; /* atomic: a shared model's parameters are retained from any thread */
    char *name;           /* display name, "dense0_weight" */
    char *local;          /* local name in its block, "weight" */
    char *key;            /* structural key from the last initialize/collect, NULL before */
    lam_shape shape;
    lam_initializer *init; /* declared default, NULL: the block's */
    uint32_t flags;        /* LAM_PARAM_CONSTANT */
    lam_grad_req grad_req;
    float lr_mult, wd_mult;
    lam_tensor *data, *grad;
    float *const_values; /* constants: the value, kept on the host */
    /* Deferred initialization: requested, waiting for the shape. */
    bool deferred;
    lam_initializer *deferred_init;
    lam_ctx *deferred_ctx;
};

lam_status lam__param_create(const char *name, const char *local, const lam_shape *shape,
                             const lam_initializer *init, uint32_t flags, lam_param **out);
lam_param *lam__param_retain(lam_param *p);
void lam__param_release(lam_param *p);
/* Initialization from a block: `fallback` is the block's initializer (NULL: Uniform(0.07)). */
lam_status lam__param_initialize(lam_param *p, const lam_initializer *fallback, lam_ctx *ctx,
                                 bool force, const char *key);
/* Completes a deferred initialization once the shape is known (no-op otherwise). */
lam_status lam__param_finish_deferred(lam_param *p);
/* Merges an inferred full shape into the parameter's shape; the subject names the block. */
lam_status lam__param_infer_shape(lam_param *p, const char *subject, const lam_shape *inferred);
/* Loading a parameter in two steps, so that a failed load of a model changes nothing:
 * lam__param_stage allocates everything the new values need (data on ctx, a gradient buffer,
 * a constant's host copy) and changes nothing; lam__param_commit cannot fail: the values go
 * into the current data tensor (its buffer is exchanged, so holders see them) or replace it,
 * the shape becomes theirs, a deferred initialization counts as done, the gradient follows. */
typedef struct lam__param_staged {
    lam_tensor *data;
    lam_tensor *grad;    /* a new gradient buffer; NULL when the current one fits or none */
    float *const_values; /* constants: the new host copy */
    bool swap;           /* exchange buffers with the current data tensor */
} lam__param_staged;
/* values NULL: data and const_values are left uninitialized for the caller to fill (a load
 * streaming the file in pieces). */
lam_status lam__param_stage(lam_param *p, lam_ctx *ctx, const lam_shape *shape, const float *values,
                            size_t count, lam__param_staged *out);
/* The same with a tensor that already holds the values (a view of a mapped file): data, whose
 * reference is taken (released by lam__param_staged_fini on failure), becomes the parameter's
 * data tensor at the commit, never exchanging buffers (holders of the old tensor keep its
 * values). Not for constants (LAM_ERR_INVALID_ARGUMENT). */
lam_status lam__param_stage_tensor(lam_param *p, lam_tensor *data, lam__param_staged *out);
void lam__param_commit(lam_param *p, lam__param_staged *s);
/* Releases what a stage holds (after a commit: nothing). */
void lam__param_staged_fini(lam__param_staged *s);
lam_status lam__param_list_create(const char *regex, lam_param_list **out);
lam_status lam__param_list_add(lam_param_list *l, const char *key, lam_param *p);

#endif
