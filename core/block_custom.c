/* Custom blocks: a user's forward function and state (lam_block_create). */
#include "block.h"
#include "error.h"
#include "param.h"
#include "shape.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct custom {
    lam_forward_fn forward;
    lam_infer_shape_fn infer_shape; /* NULL: the block declares no unknown dims it can fill */
    void *state;
    void (*free_state)(void *state);
} custom;

/* Restores the shapes saved before a failed inference, so the block keeps waiting for a good
 * first input (as a layer does). */
static void restore_shapes(lam_block *b, const lam_shape *saved) {
    for (size_t i = 0; i < b->n_params; i++) {
        if (b->params[i].param->data == NULL) {
            b->params[i].param->shape = saved[i];
        }
    }
}

/* A custom block whose own parameters still have unknown dims: its infer-shape callback fills
 * them from the input shapes, then deferred initialization completes as for a layer. */
static lam_status custom_infer(lam_block *b, uint32_t n_inputs, lam_tensor *const *inputs) {
    const custom *c = b->impl;
    bool unknown = false;
    for (size_t i = 0; i < b->n_params && !unknown; i++) {
        unknown = !lam__shape_known(&b->params[i].param->shape);
    }
    if (!unknown) {
        for (size_t i = 0; i < b->n_params; i++) {
            lam_status st = lam__param_finish_deferred(b->params[i].param);
            if (st != LAM_OK) {
                return st;
            }
        }
        return LAM_OK;
    }
    char b1[160];
    if (c->infer_shape == NULL) {
        for (size_t i = 0; i < b->n_params; i++) {
            const lam_param *p = b->params[i].param;
            if (!lam__shape_known(&p->shape)) {
                return lam__error(LAM_ERR_DEFERRED_INIT,
                                  "%s: Deferred initialization, %s has shape %s and the block has "
                                  "no infer-shape callback to fill it; set one with "
                                  "lam_block_set_infer_shape, or declare the full shape",
                                  b->name, p->name, lam_shape_format(&p->shape, b1, sizeof b1));
            }
        }
    }
    lam_shape *shapes = malloc((n_inputs ? n_inputs : 1) * sizeof *shapes);
    lam_shape *saved = malloc((b->n_params ? b->n_params : 1) * sizeof *saved);
    if (shapes == NULL || saved == NULL) {
        free(shapes);
        free(saved);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", b->name);
    }
    for (uint32_t i = 0; i < n_inputs; i++) {
        shapes[i] = *lam_tensor_shape(inputs[i]);
    }
    for (size_t i = 0; i < b->n_params; i++) {
        saved[i] = b->params[i].param->shape;
    }
    lam_status st = c->infer_shape(b, c->state, n_inputs, shapes);
    for (size_t i = 0; st == LAM_OK && i < b->n_params; i++) {
        const lam_param *p = b->params[i].param;
        if (!lam__shape_known(&p->shape)) {
            st = lam__error(LAM_ERR_SHAPE,
                            "%s: Shape inference incomplete, %s still has shape %s after the "
                            "infer-shape callback",
                            b->name, p->name, lam_shape_format(&p->shape, b1, sizeof b1));
        }
    }
    if (st != LAM_OK) {
        restore_shapes(b, saved);
    }
    free(shapes);
    free(saved);
    for (size_t i = 0; st == LAM_OK && i < b->n_params; i++) {
        st = lam__param_finish_deferred(b->params[i].param);
    }
    return st;
}

static lam_status custom_forward(lam_block *b, uint32_t n_inputs, lam_tensor *const *inputs,
                                 lam_tensor **output) {
    lam_status st = custom_infer(b, n_inputs, inputs);
    if (st != LAM_OK) {
        return st;
    }
    for (size_t i = 0; i < b->n_params; i++) {
        if (b->params[i].param->data == NULL) {
            lam_tensor *unused;
            return lam_param_data(b->params[i].param, &unused);
        }
    }
    const custom *c = b->impl;
    st = c->forward(b, c->state, n_inputs, inputs, output);
    if (st == LAM_OK && *output == NULL) {
        return lam__error(LAM_ERR_STATE, "%s: Forward returned no output", b->name);
    }
    return st;
}

static void custom_destroy(lam_block *b) {
    custom *c = b->impl;
    if (c != NULL && c->free_state) {
        c->free_state(c->state);
    }
    free(c);
}

static const lam__block_class custom_class = {
    .forward = custom_forward,
    .describe = NULL,
    .destroy = custom_destroy,
    .no_infer_shape = NULL,
};

static bool valid_type(const char *type) {
    if (type == NULL || !isalpha((unsigned char)type[0]) || strlen(type) > 60) {
        return false;
    }
    for (const char *c = type; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '_') {
            return false;
        }
    }
    return true;
}

lam_status lam_block_create(const char *type, lam_forward_fn forward, void *state,
                            void (*free_state)(void *state), lam_block **out) {
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_block_create: Invalid argument, out is NULL");
    }
    *out = NULL;
    if (!valid_type(type)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_block_create: Invalid type name '%s', expected a C identifier "
                          "such as MLP",
                          type ? type : "(null)");
    }
    if (forward == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid argument, a custom block needs a forward function", type);
    }
    custom *c = malloc(sizeof *c);
    if (c == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", type);
    }
    lam_status st = lam__block_alloc(&custom_class, type, type, out);
    if (st != LAM_OK) {
        free(c);
        return st;
    }
    *c = (custom){.forward = forward, .state = state, .free_state = free_state};
    (*out)->impl = c;
    return LAM_OK;
}

lam_status lam_block_set_infer_shape(lam_block *b, lam_infer_shape_fn infer_shape) {
    if (b == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_block_set_infer_shape: Invalid argument, NULL block");
    }
    if (b->cls != &custom_class) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid argument, only a custom block (lam_block_create) takes an "
                          "infer-shape callback; %s",
                          b->name, b->cls->no_infer_shape);
    }
    ((custom *)b->impl)->infer_shape = infer_shape;
    return LAM_OK;
}
