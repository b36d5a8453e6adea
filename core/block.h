/*
 * Blocks (block.c): the block structure shared by custom blocks, Sequential and layer blocks,
 * display names, children and parameters. Private to core/.
 */
#ifndef LAMINA_CORE_BLOCK_H
#define LAMINA_CORE_BLOCK_H

#include "param.h"

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stddef.h>

struct lam__attrs;
struct lam__layer_type;

struct lam_layer {
    struct lam_block *block;
};

typedef enum lam__block_kind {
    LAM__BLOCK_CUSTOM = 1,
    LAM__BLOCK_SEQUENTIAL,
    LAM__BLOCK_LAYER
} lam__block_kind;

typedef struct lam__child {
    char *name;
    struct lam_block *block;
} lam__child;

typedef struct lam__own_param {
    char *local;
    lam_param *param;
} lam__own_param;

#define LAM__BLOCK_LIVE 0x4c424c4bu
#define LAM__BLOCK_DEAD 0x4c424444u

struct lam_block {
    uint32_t magic; /* LAM__BLOCK_LIVE until freed: a second release is detected */
    long refcount;
    lam__block_kind kind;
    char *type; /* "Dense", "Sequential", "MLP" */
    char *name; /* "dense0" */
    lam__child *children;
    size_t n_children;
    lam__own_param *params;
    size_t n_params;
    /* custom */
    lam_forward_fn forward;
    lam_infer_shape_fn infer_shape; /* NULL: the block declares no unknown dims it can fill */
    void *state;
    void (*free_state)(void *state);
    /* layer */
    const struct lam__layer_type *layer_type;
    void *layer_state;
    struct lam__attrs *attrs;
    struct lam_layer layer;
    struct lam_block *share; /* while creating a shared layer */
    bool creating;
    struct lam_block *live_prev, *live_next; /* every block alive, for lam_shutdown */
};

/* Allocates a block with a display name from the per-type counter. */
lam_status lam__block_alloc(lam__block_kind kind, const char *type, const char *prefix,
                            lam_block **out);
lam_status lam__block_add_param(lam_block *b, const char *local, lam_param *p);
/* At shutdown, while plugins are still loaded: destroys the plugin state of every layer block
 * still alive. Such a block can still be released; a forward fails with LAM_ERR_STATE. */
void lam__blocks_detach_all(void);

#endif
