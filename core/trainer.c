/* Optimizers over a parameter list (Gluon's Trainer): SGD with momentum and weight decay, Adam.
 * Updates are written with front-end ops, so they run where the parameters live. */
#define _POSIX_C_SOURCE 200809L
#include "error.h"
#include "kv.h"
#include "ops.h"
#include "param.h"
#include "util.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum kind { SGD = 1, ADAM = 2 } kind;

typedef struct slot {
    lam_param *param;
    lam_tensor *m; /* SGD momentum buffer / Adam first moment */
    lam_tensor *v; /* Adam second moment */
} slot;

struct lam_trainer {
    kind kind;
    float lr, momentum, wd, beta1, beta2, eps;
    int64_t t; /* steps taken (Adam's bias correction) */
    slot *slots;
    size_t n;
};

typedef struct option {
    const char *name;
    float *value;
    float lo; /* values must be >= lo (and < hi when hi > lo) */
    float hi;
} option;

#define MAX_OPTIONS 8

static void option_expect(const void *ctx, size_t k, lam__strbuf *sb) {
    (void)ctx;
    (void)k;
    lam__strbuf_printf(sb, "a number");
}

/* The option string through the shared key=value parser (kv.c), then each value's range. */
static lam_status parse_options(const char *optimizer, const char *text, option *opts,
                                size_t n_opts) {
    assert(n_opts <= MAX_OPTIONS);
    const char *keys[MAX_OPTIONS];
    lam__kv_span vals[MAX_OPTIONS];
    for (size_t k = 0; k < n_opts; k++) {
        keys[k] = opts[k].name;
    }
    lam__kv_schema s = {.subject = optimizer,
                        .what = "option",
                        .keys = keys,
                        .n_keys = n_opts,
                        .expect = option_expect};
    lam_status st = lam__kv_parse(&s, lam__kv_span_of(text), vals);
    for (size_t k = 0; st == LAM_OK && k < n_opts; k++) {
        double v = 0.0;
        if (vals[k].p == NULL) {
            continue;
        }
        bool ok = lam__kv_double(vals[k], &v) && isfinite(v) && v >= opts[k].lo &&
                  (opts[k].hi <= opts[k].lo || v < opts[k].hi);
        if (!ok) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid value for '%s', got '%.*s'",
                              optimizer, opts[k].name, (int)vals[k].len, vals[k].p);
        }
        *opts[k].value = (float)v;
    }
    return st;
}

lam_status lam_trainer_create(const lam_param_list *params, const char *optimizer,
                              const char *options, lam_trainer **out) {
    if (out == NULL || params == NULL || optimizer == NULL) {
        if (out) {
            *out = NULL;
        }
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_trainer_create: Invalid argument, NULL params, optimizer or out");
    }
    *out = NULL;
    lam_trainer *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_trainer_create: Out of memory");
    }
    lam_status st;
    if (strcmp(optimizer, "sgd") == 0) {
        t->kind = SGD;
        t->lr = 0.01f;
        option o[] = {{"learning_rate", &t->lr, 0, 0},
                      {"momentum", &t->momentum, 0, 1},
                      {"wd", &t->wd, 0, 0}};
        st = parse_options("sgd", options, o, sizeof o / sizeof o[0]);
    } else if (strcmp(optimizer, "adam") == 0) {
        t->kind = ADAM;
        t->lr = 0.001f;
        t->beta1 = 0.9f;
        t->beta2 = 0.999f;
        t->eps = 1e-8f;
        option o[] = {{"learning_rate", &t->lr, 0, 0},
                      {"beta1", &t->beta1, 0, 1},
                      {"beta2", &t->beta2, 0, 1},
                      {"epsilon", &t->eps, 0, 0},
                      {"wd", &t->wd, 0, 0}};
        st = parse_options("adam", options, o, sizeof o / sizeof o[0]);
    } else {
        st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                        "lam_trainer_create: Unknown optimizer '%s', expected sgd or adam",
                        optimizer);
    }
    size_t n = lam_param_list_count(params);
    if (st == LAM_OK && (t->slots = calloc(n ? n : 1, sizeof *t->slots)) == NULL) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_trainer_create: Out of memory");
    }
    if (st != LAM_OK) {
        free(t);
        return st;
    }
    for (size_t i = 0; i < n; i++) {
        t->slots[i].param = lam__param_retain(lam_param_list_get(params, i));
    }
    t->n = n;
    *out = t;
    return LAM_OK;
}

void lam_trainer_destroy(lam_trainer *t) {
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        lam__param_release(t->slots[i].param);
        lam_tensor_release(t->slots[i].m);
        lam_tensor_release(t->slots[i].v);
    }
    free(t->slots);
    free(t);
}

float lam_trainer_learning_rate(const lam_trainer *t) {
    return t ? t->lr : 0.0f;
}

void lam_trainer_set_learning_rate(lam_trainer *t, float lr) {
    if (t) {
        t->lr = lr;
    }
}

/* Replaces *x with f(*x, ...) results: releases the old tensor. */
#define UPDATE(x, call)                                                                            \
    do {                                                                                           \
        lam_tensor *next_ = NULL;                                                                  \
        if (st == LAM_OK && (st = (call)) == LAM_OK) {                                             \
            lam_tensor_release(x);                                                                 \
            x = next_;                                                                             \
        }                                                                                          \
    } while (0)

static lam_status step_one(lam_trainer *t, slot *s, float scale) {
    lam_param *p = s->param;
    if (p->data == NULL) {
        lam_tensor *unused;
        return lam_param_data(p, &unused);
    }
    lam_status st = LAM_OK;
    float lr = t->lr * p->lr_mult, wd = t->wd * p->wd_mult;
    lam_tensor *w = p->data;
    if (t->kind == SGD) {
        /* With g = scale*grad + wd*w, each update is one fused a*x + b*y in place:
         *   no momentum: w = (1 - lr*wd) w - lr*scale grad
         *   momentum:    v = momentum v + scale grad (+ wd w);  w = w - lr v */
        if (t->momentum == 0.0f) {
            st = lam__axpby_inplace(w, 1.0f - lr * wd, p->grad, -lr * scale);
        } else {
            if (s->m == NULL) {
                st = lam_tensor_create(lam_tensor_ctx(w), &p->shape, &s->m);
            }
            if (st == LAM_OK) {
                st = lam__axpby_inplace(s->m, t->momentum, p->grad, scale);
            }
            if (st == LAM_OK && wd != 0.0f) {
                st = lam__axpby_inplace(s->m, 1.0f, w, wd);
            }
            if (st == LAM_OK) {
                st = lam__axpby_inplace(w, 1.0f, s->m, -lr);
            }
        }
        if (st != LAM_OK) {
            return lam__error_prefix(st, "%s", p->name);
        }
        return LAM_OK;
    }
    lam_tensor *g = NULL, *tmp = NULL, *upd = NULL;
    st = lam_op_mul_scalar(p->grad, scale, &g);
    if (wd != 0.0f) {
        UPDATE(tmp, lam_op_mul_scalar(w, wd, &next_));
        UPDATE(g, lam_op_add(g, tmp, &next_));
    }
    if (st == LAM_OK && s->m == NULL) {
        st = lam_tensor_create(lam_tensor_ctx(w), &p->shape, &s->m);
        if (st == LAM_OK) {
            st = lam_tensor_create(lam_tensor_ctx(w), &p->shape, &s->v);
        }
    }
    /* m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2 */
    if (st == LAM_OK) {
        st = lam__axpby_inplace(s->m, t->beta1, g, 1.0f - t->beta1);
    }
    UPDATE(tmp, lam_op_square(g, &next_));
    if (st == LAM_OK) {
        st = lam__axpby_inplace(s->v, t->beta2, tmp, 1.0f - t->beta2);
    }
    /* w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) */
    double c1 = 1.0 - pow(t->beta1, (double)t->t), c2 = 1.0 - pow(t->beta2, (double)t->t);
    UPDATE(tmp, lam_op_mul_scalar(s->v, (float)(1.0 / c2), &next_));
    UPDATE(tmp, lam_op_sqrt(tmp, &next_));
    UPDATE(tmp, lam_op_add_scalar(tmp, t->eps, &next_));
    UPDATE(upd, lam_op_div(s->m, tmp, &next_));
    if (st == LAM_OK) {
        st = lam__axpby_inplace(w, 1.0f, upd, (float)(-lr / c1));
    }
    lam_tensor_release(g);
    lam_tensor_release(tmp);
    lam_tensor_release(upd);
    if (st != LAM_OK) {
        return lam__error_prefix(st, "%s", p->name);
    }
    return LAM_OK;
}

lam_status lam_trainer_step(lam_trainer *t, int64_t batch_size) {
    if (t == NULL || batch_size <= 0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "trainer step: Invalid argument, %s",
                          t == NULL ? "NULL trainer" : "batch_size must be positive");
    }
    int was = lam_autograd_record_begin(0);
    t->t++;
    lam_status st = LAM_OK;
    for (size_t i = 0; st == LAM_OK && i < t->n; i++) {
        lam_param *p = t->slots[i].param;
        if ((p->flags & LAM_PARAM_CONSTANT) || p->grad_req == LAM_GRAD_NULL) {
            continue;
        }
        st = step_one(t, &t->slots[i], 1.0f / (float)batch_size);
    }
    lam_autograd_record_end(was);
    return st;
}

lam_status lam_param_list_zero_grad(const lam_param_list *list) {
    for (size_t i = 0; i < lam_param_list_count(list); i++) {
        lam_param *p = lam_param_list_get(list, i);
        if (p->grad != NULL) {
            lam_status st = lam_op_fill(p->grad, 0.0f);
            if (st != LAM_OK) {
                return st;
            }
        }
    }
    return LAM_OK;
}
