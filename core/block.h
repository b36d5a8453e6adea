/*
 * Blocks (block.c): the block structure and class vtable shared by custom blocks, Sequential
 * and layer blocks; display names, children and parameters. Private to core/.
 */
#ifndef LAMINA_CORE_BLOCK_H
#define LAMINA_CORE_BLOCK_H

#include "param.h"

#include "lamina/lamina.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lam__strbuf;

typedef struct lam__child {
    char *name;
    struct lam_block *block;
} lam__child;

typedef struct lam__own_param {
    char *local;
    lam_param *param;
} lam__own_param;

/*
 * A block class: what differs between kinds of blocks (custom blocks in block_custom.c,
 * Sequential in sequential.c, plugin layers in layer.c). A new kind of block is a new file
 * with its own class, not a case in block.c.
 */
typedef struct lam__block_class {
    /* Runs the block on inputs that lam_block_forward checked (non-NULL, parameters ready). */
    lam_status (*forward)(lam_block *b, uint32_t n_inputs, lam_tensor *const *inputs,
                          lam_tensor **output);
    /* Appends the block's summary at nesting depth `indent`; NULL: the generic
     * "Type(children)" summary (lam__block_summarize). */
    void (*describe)(const lam_block *b, struct lam__strbuf *sb, int indent);
    /* Frees b->impl; called once when the last reference goes, after the children and the
     * parameters were released. NULL: nothing to free. */
    void (*destroy)(lam_block *b);
    /* Why blocks of this class take no infer-shape callback, the end of
     * lam_block_set_infer_shape's message ("a layer infers its shapes itself"); NULL for
     * custom blocks, which take one. */
    const char *no_infer_shape;
    /* At shutdown, while plugins are still loaded: drops what the block holds from a plugin
     * (lam__blocks_detach_all). NULL: nothing. */
    void (*detach)(lam_block *b);
    /* Optional: a block with several outputs (a plugin layer declaring n_outputs > 1) runs
     * here for lam_block_forward_outputs, writing n_outputs new references; NULL: the block
     * has one output (forward). */
    lam_status (*forward_outputs)(lam_block *b, uint32_t n_inputs, lam_tensor *const *inputs,
                                  uint32_t n_outputs, lam_tensor **outputs);
    /* Optional: how many outputs the block gives; NULL: one. */
    uint32_t (*n_outputs)(const lam_block *b);
} lam__block_class;

#define LAM__BLOCK_LIVE 0x4c424c4bu
#define LAM__BLOCK_DEAD 0x4c424444u

struct lam_block {
    uint32_t magic;       /* LAM__BLOCK_LIVE until freed: a second release is detected */
    atomic_long refcount; /* atomic: a shared model is retained from any thread */
    const lam__block_class *cls;
    void *impl; /* the class's own data */
    char *type; /* "Dense", "Sequential", "MLP" */
    char *name; /* "dense0" */
    lam__child *children;
    size_t n_children;
    lam__own_param *params;
    size_t n_params;
    bool detached; /* lam_shutdown ran the class's detach: forward fails, summary is "Type()" */
    struct lam_block *live_prev, *live_next; /* every block alive, for lam_shutdown */
    atomic_bool params_ready; /* a forward of it succeeded: its parameters are all ready */
};

/* Allocates a block of class cls with a display name from the per-prefix counter. */
lam_status lam__block_alloc(const lam__block_class *cls, const char *type, const char *prefix,
                            lam_block **out);
lam_status lam__block_add_param(lam_block *b, const char *local, lam_param *p);
/* Appends b's summary (its class's describe, or the generic one) at nesting depth indent. */
void lam__block_summarize(const lam_block *b, struct lam__strbuf *sb, int indent);
/* At shutdown, while plugins are still loaded: runs the class's detach on every block still
 * alive (layer blocks destroy their plugin state). Such a block can still be released; a
 * forward fails with LAM_ERR_STATE. */
void lam__blocks_detach_all(void);

/* An observer of the calling thread's block forwards (lam_block_summary_table, summary.c):
 * begin before a block's forward runs, end after it returned (outputs valid when st is LAM_OK;
 * n_outputs as asked for). */
typedef struct lam__forward_observer {
    void (*begin)(void *user, lam_block *b);
    void (*end)(void *user, lam_block *b, lam_status st, uint32_t n_outputs,
                lam_tensor *const *outputs);
    void *user;
} lam__forward_observer;
/* Sets the calling thread's observer (NULL: none) and returns the previous one. */
const lam__forward_observer *lam__block_set_observer(const lam__forward_observer *obs);

#endif
