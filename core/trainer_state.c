/* The trainer's state saved and loaded: a safetensors file of each parameter's state tensors
 * (`<key>.<state name>`, PyTorch's names) with the optimizer, the step and the base learning rate
 * in its metadata. Loading checks and stages everything before the trainer changes. */
#define _POSIX_C_SOURCE 200809L
#include "error.h"
#include "kv.h"
#include "optim.h"
#include "param.h"
#include "safetensors.h"
#include "tensor.h"
#include "trainer_types.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_OPTIMIZER "lamina.optimizer"
#define META_STEP      "lamina.step"
#define META_LR        "lamina.learning_rate"

static char *state_key(const char *key, const char *name) {
    size_t n = strlen(key) + strlen(name) + 2;
    char *s = malloc(n);
    if (s != NULL) {
        snprintf(s, n, "%s.%s", key, name);
    }
    return s;
}

static lam_status fill_state(void *user, size_t i, size_t first, float *dst, size_t count) {
    lam_tensor *const *tensors = user;
    return lam__tensor_read_at(tensors[i], first, dst, count);
}

lam_status lam_trainer_save(const lam_trainer *t, const char *path) {
    if (t == NULL || path == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_trainer_save: Invalid argument, NULL trainer or path");
    }
    size_t cap = t->n * LAM__N_STATE, n = 0;
    char **names = calloc(cap ? cap : 1, sizeof *names);
    lam_tensor **tensors = calloc(cap ? cap : 1, sizeof *tensors);
    const lam_shape **shapes = calloc(cap ? cap : 1, sizeof *shapes);
    lam_status st = names && tensors && shapes
                        ? LAM_OK
                        : lam__error(LAM_ERR_OUT_OF_MEMORY, "saving '%s': Out of memory", path);
    for (size_t i = 0; st == LAM_OK && i < t->n; i++) {
        for (int k = 0; st == LAM_OK && k < LAM__N_STATE; k++) {
            if (t->slots[i].s[k] == NULL) {
                continue;
            }
            names[n] = state_key(t->slots[i].key, lam__optim_state_names[t->kind][k]);
            if (names[n] == NULL) {
                st = lam__error(LAM_ERR_OUT_OF_MEMORY, "saving '%s': Out of memory", path);
                break;
            }
            tensors[n] = t->slots[i].s[k];
            shapes[n] = lam_tensor_shape(tensors[n]);
            n++;
        }
    }
    char step[32], lr[40];
    snprintf(step, sizeof step, "%" PRId64, t->t);
    snprintf(lr, sizeof lr, "%.17g", t->h.lr);
    const char *mk[4] = {LAM__ST_META_KIND, META_OPTIMIZER, META_STEP, META_LR};
    const char *mv[4] = {"trainer", lam__optim_names[t->kind], step, lr};
    if (st == LAM_OK) {
        st = lam__st_write(path, n, (const char *const *)names, shapes, fill_state, tensors, 4, mk,
                           mv);
    }
    for (size_t i = 0; names != NULL && i < n; i++) {
        free(names[i]);
    }
    free(names);
    free(tensors);
    free(shapes);
    return st;
}

/* The metadata: a trainer state of t's optimizer, with a step and a learning rate. */
static lam_status check_meta(const lam_trainer *t, const lam_tensor_dict *d, const char *path,
                             int64_t *step, double *lr) {
    const char *kind_meta = lam_tensor_dict_metadata(d, LAM__ST_META_KIND);
    const char *opt = lam_tensor_dict_metadata(d, META_OPTIMIZER);
    const char *step_text = lam_tensor_dict_metadata(d, META_STEP);
    const char *lr_text = lam_tensor_dict_metadata(d, META_LR);
    if (kind_meta == NULL || strcmp(kind_meta, "trainer") != 0 || opt == NULL ||
        step_text == NULL || lr_text == NULL) {
        return lam__error(LAM_ERR_FORMAT,
                          "loading '%s': Not a trainer state, the metadata lacks lamina.kind "
                          "\"trainer\", lamina.optimizer, lamina.step or lamina.learning_rate",
                          path);
    }
    if (strcmp(opt, lam__optim_names[t->kind]) != 0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "loading '%s': Optimizer mismatch, the file holds %s state, the trainer "
                          "is %s",
                          path, opt, lam__optim_names[t->kind]);
    }
    if (!lam__kv_int(lam__kv_span_of(step_text), step) || *step < 0 ||
        !lam__kv_double(lam__kv_span_of(lr_text), lr) || !isfinite(*lr) || *lr <= 0) {
        return lam__error(LAM_ERR_FORMAT,
                          "loading '%s': Bad metadata, lamina.step '%s', lamina.learning_rate '%s'",
                          path, step_text, lr_text);
    }
    return LAM_OK;
}

/* Each state tensor of t found in d, checked against its parameter and on its context, into
 * staged[i * LAM__N_STATE + k]; *used counts the tensors of d taken. */
static lam_status stage(const lam_trainer *t, const lam_tensor_dict *d, const char *path,
                        lam_tensor **staged, size_t *used) {
    lam_status st = LAM_OK;
    for (size_t i = 0; st == LAM_OK && i < t->n; i++) {
        lam_param *p = t->slots[i].param;
        for (size_t k = 0; st == LAM_OK && k < LAM__N_STATE; k++) {
            if (lam__optim_state_names[t->kind][k] == NULL) {
                continue;
            }
            char *name = state_key(t->slots[i].key, lam__optim_state_names[t->kind][k]);
            if (name == NULL) {
                st = lam__error(LAM_ERR_OUT_OF_MEMORY, "loading '%s': Out of memory", path);
                break;
            }
            lam_tensor *x = lam_tensor_dict_find(d, name);
            if (x != NULL) {
                (*used)++;
                char b1[160], b2[160];
                if (p->data == NULL || !lam_shape_equal(lam_tensor_shape(x), &p->shape)) {
                    st =
                        lam__error(LAM_ERR_INVALID_ARGUMENT,
                                   "loading '%s': Shape mismatch, '%s' is %s, the parameter %s",
                                   path, name, lam_shape_format(lam_tensor_shape(x), b1, sizeof b1),
                                   p->data == NULL ? "is not initialized"
                                                   : lam_shape_format(&p->shape, b2, sizeof b2));
                } else if (lam_tensor_ctx(x) != lam_tensor_ctx(p->data)) {
                    st = lam_tensor_copyto(x, lam_tensor_ctx(p->data),
                                           &staged[i * LAM__N_STATE + k]);
                } else {
                    staged[i * LAM__N_STATE + k] = lam_tensor_retain(x);
                }
            }
            free(name);
        }
    }
    return st;
}

/* A tensor of d that is no state of t (the file is another model's, or another optimizer's). */
static lam_status check_unexpected(const lam_trainer *t, const lam_tensor_dict *d,
                                   const char *path) {
    for (size_t j = 0; j < lam_tensor_dict_count(d); j++) {
        const char *name = lam_tensor_dict_name(d, j);
        bool known = false;
        for (size_t i = 0; !known && i < t->n; i++) {
            size_t kl = strlen(t->slots[i].key);
            for (int k = 0; !known && k < LAM__N_STATE; k++) {
                const char *sn = lam__optim_state_names[t->kind][k];
                known = sn != NULL && strncmp(name, t->slots[i].key, kl) == 0 && name[kl] == '.' &&
                        strcmp(name + kl + 1, sn) == 0;
            }
        }
        if (!known) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "loading '%s': Unexpected tensor '%s', the trainer has no such %s "
                              "state",
                              path, name, lam__optim_names[t->kind]);
        }
    }
    return LAM_OK;
}

lam_status lam_trainer_load(lam_trainer *t, const char *path) {
    if (t == NULL || path == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_trainer_load: Invalid argument, NULL trainer or path");
    }
    lam_ctx *ctx = NULL;
    for (size_t i = 0; ctx == NULL && i < t->n; i++) {
        if (t->slots[i].param->data != NULL) {
            ctx = lam_tensor_ctx(t->slots[i].param->data);
        }
    }
    lam_tensor_dict *d = NULL;
    lam_status st = lam_load(path, ctx, &d);
    if (st != LAM_OK) {
        return st;
    }
    int64_t step = 0;
    double lr = 0.0;
    st = check_meta(t, d, path, &step, &lr);
    /* Everything staged and checked before t changes. */
    lam_tensor **staged = calloc(t->n ? t->n * LAM__N_STATE : 1, sizeof *staged);
    if (st == LAM_OK && staged == NULL) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "loading '%s': Out of memory", path);
    }
    size_t used = 0;
    if (st == LAM_OK) {
        st = stage(t, d, path, staged, &used);
    }
    if (st == LAM_OK && used != lam_tensor_dict_count(d)) {
        st = check_unexpected(t, d, path);
    }
    if (st == LAM_OK) {
        for (size_t i = 0; i < t->n; i++) {
            for (size_t k = 0; k < LAM__N_STATE; k++) {
                lam_tensor *old = t->slots[i].s[k];
                t->slots[i].s[k] = staged[i * LAM__N_STATE + k];
                staged[i * LAM__N_STATE + k] = old;
            }
        }
        t->t = step;
        t->h.lr = lr;
    }
    for (size_t i = 0; staged != NULL && i < t->n * LAM__N_STATE; i++) {
        lam_tensor_release(staged[i]);
    }
    free(staged);
    lam_tensor_dict_destroy(d);
    return st;
}
