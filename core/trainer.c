/* Optimizers over a parameter list (Gluon's Trainer): SGD with momentum and weight decay, Adam,
 * AdamW and RMSProp as PyTorch's, learning-rate schedules, clipping by global norm, and the
 * state saved and loaded. Updates are written with front-end ops, so they run where the
 * parameters live.
 *
 * A step has three phases, so that a failure changes nothing:
 *   1. gradients: each trainable parameter's gradient and its scale (1/batch); this is where
 *      gradients from other processes would be reduced before anything reads them;
 *   2. clipping by global norm (optional), on the device;
 *   3. the update computed in full (new state tensors, one update tensor per parameter), then
 *      committed: w = a w + b u in place (the fused op), the new state swapped in. */
#define _POSIX_C_SOURCE 200809L
#include "distributed.h"
#include "error.h"
#include "kv.h"
#include "ops.h"
#include "param.h"
#include "safetensors.h"
#include "tensor.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAM_PI 3.14159265358979323846

typedef enum kind { SGD = 0, ADAM = 1, ADAMW = 2, RMSPROP = 3 } kind;

static const char *const kind_names[] = {"sgd", "adam", "adamw", "rmsprop"};

/* Per-parameter state tensors, PyTorch's names; NULL until the first step writes them. */
#define N_STATE 3
static const char *const state_names[][N_STATE] = {
    [SGD] = {"momentum_buffer", NULL, NULL},
    [ADAM] = {"exp_avg", "exp_avg_sq", NULL},
    [ADAMW] = {"exp_avg", "exp_avg_sq", NULL},
    [RMSPROP] = {"square_avg", "momentum_buffer", "grad_avg"},
};

typedef struct slot {
    lam_param *param;
    char *key; /* the structural key in the list the trainer was made from */
    lam_tensor *s[N_STATE];
} slot;

typedef struct hyper {
    double lr, momentum, wd, beta1, beta2, eps, alpha, clip;
    int centered;
} hyper;

struct lam_trainer {
    kind kind;
    hyper h;
    bool has_schedule;
    lam_lr_schedule sched;
    int64_t t; /* steps taken: bias correction and the schedule's position */
    lam_tensor *last_norm;
    slot *slots;
    size_t n;
    lam__dist *dist; /* data-parallel over a communicator (distributed.c), NULL: local */
};

/* ---- options ---- */

typedef struct option {
    const char *name;
    double *value;
    double lo; /* values must be >= lo (and < hi when hi > lo); lo_open: > lo */
    double hi;
    bool lo_open;
} option;

#define MAX_OPTIONS 8

static bool in_range(const option *o, double v) {
    return isfinite(v) && (o->lo_open ? v > o->lo : v >= o->lo) && (o->hi <= o->lo || v < o->hi);
}

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
        if (!lam__kv_double(vals[k], &v) || !in_range(&opts[k], v)) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid value for '%s', got '%.*s'",
                              optimizer, opts[k].name, (int)vals[k].len, vals[k].p);
        }
        *opts[k].value = v;
    }
    return st;
}

/* The typed form's values, checked against the same ranges. */
static lam_status check_options(const char *optimizer, const option *opts, size_t n_opts) {
    for (size_t k = 0; k < n_opts; k++) {
        if (!in_range(&opts[k], *opts[k].value)) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid value for '%s', got %.17g",
                              optimizer, opts[k].name, *opts[k].value);
        }
    }
    return LAM_OK;
}

/* The options of each optimizer: names (the string form's), where they go, their ranges. */
static size_t options_of(kind k, hyper *h, bool typed, option *o) {
    const char *wd = typed ? "weight_decay" : "wd";
    size_t n = 0;
    o[n++] = (option){"learning_rate", &h->lr, 0, 0, true};
    switch (k) {
    case SGD:
        o[n++] = (option){"momentum", &h->momentum, 0, 1, false};
        o[n++] = (option){wd, &h->wd, 0, 0, false};
        break;
    case ADAM:
    case ADAMW:
        o[n++] = (option){"beta1", &h->beta1, 0, 1, false};
        o[n++] = (option){"beta2", &h->beta2, 0, 1, false};
        o[n++] = (option){"epsilon", &h->eps, 0, 0, true};
        o[n++] = (option){wd, &h->wd, 0, 0, false};
        break;
    case RMSPROP:
        o[n++] = (option){"alpha", &h->alpha, 0, 1, false};
        o[n++] = (option){"epsilon", &h->eps, 0, 0, true};
        o[n++] = (option){wd, &h->wd, 0, 0, false};
        o[n++] = (option){"momentum", &h->momentum, 0, 1, false};
        break;
    }
    o[n++] = (option){"clip_global_norm", &h->clip, 0, 0, false};
    return n;
}

static hyper defaults(kind k) {
    hyper h = {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .alpha = 0.99};
    if (k == ADAM || k == ADAMW) {
        h.lr = 0.001;
    }
    if (k == ADAMW) {
        h.wd = 0.01;
    }
    return h;
}

static lam_status create(const lam_param_list *params, kind k, const hyper *h, lam_trainer **out) {
    lam_trainer *t = calloc(1, sizeof *t);
    size_t n = lam_param_list_count(params);
    lam_status st = LAM_OK;
    if (t == NULL || (t->slots = calloc(n ? n : 1, sizeof *t->slots)) == NULL) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_trainer_create: Out of memory");
    }
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        const char *key = lam_param_list_key(params, i);
        t->slots[i].key = lam__strdup(key ? key : lam_param_list_get(params, i)->name);
        if (t->slots[i].key == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_trainer_create: Out of memory");
        }
    }
    if (st != LAM_OK) {
        for (size_t i = 0; t != NULL && t->slots != NULL && i < n; i++) {
            free(t->slots[i].key);
        }
        if (t != NULL) {
            free(t->slots);
        }
        free(t);
        return st;
    }
    for (size_t i = 0; i < n; i++) {
        t->slots[i].param = lam__param_retain(lam_param_list_get(params, i));
    }
    t->n = n;
    t->kind = k;
    t->h = *h;
    *out = t;
    return LAM_OK;
}

static lam_status null_create(const char *fn, lam_trainer **out) {
    if (out) {
        *out = NULL;
    }
    return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL params or out", fn);
}

/* A typed options struct must be this library's size: smaller is an older layout this first
 * version never had, larger a newer header than the library. */
static lam_status struct_size_ok(const char *fn, uint32_t given, size_t size) {
    if (given != size) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid argument, struct_size is %" PRIu32 ", expected %zu (start "
                          "from the _INIT macro)",
                          fn, given, size);
    }
    return LAM_OK;
}

static lam_status create_typed(const char *fn, const lam_param_list *params, kind k, hyper *h,
                               lam_trainer **out) {
    option o[MAX_OPTIONS];
    size_t n = options_of(k, h, true, o);
    lam_status st = check_options(kind_names[k], o, n);
    return st == LAM_OK ? create(params, k, h, out) : lam__error_prefix(st, "%s", fn);
}

lam_status lam_trainer_create_sgd(const lam_param_list *params, const lam_sgd_options *options,
                                  lam_trainer **out) {
    const char *fn = "lam_trainer_create_sgd";
    if (out == NULL || params == NULL) {
        return null_create(fn, out);
    }
    *out = NULL;
    lam_sgd_options o = LAM_SGD_OPTIONS_INIT;
    if (options != NULL) {
        lam_status st = struct_size_ok(fn, options->struct_size, sizeof o);
        if (st != LAM_OK) {
            return st;
        }
        o = *options;
    }
    hyper h = defaults(SGD);
    h.lr = o.learning_rate;
    h.momentum = o.momentum;
    h.wd = o.weight_decay;
    h.clip = o.clip_global_norm;
    return create_typed(fn, params, SGD, &h, out);
}

static lam_status create_adam(const char *fn, kind k, const lam_param_list *params,
                              const lam_adam_options *options, lam_trainer **out) {
    if (out == NULL || params == NULL) {
        return null_create(fn, out);
    }
    *out = NULL;
    lam_adam_options o = LAM_ADAM_OPTIONS_INIT;
    if (k == ADAMW) {
        o = (lam_adam_options)LAM_ADAMW_OPTIONS_INIT;
    }
    if (options != NULL) {
        lam_status st = struct_size_ok(fn, options->struct_size, sizeof o);
        if (st != LAM_OK) {
            return st;
        }
        o = *options;
    }
    hyper h = defaults(k);
    h.lr = o.learning_rate;
    h.beta1 = o.beta1;
    h.beta2 = o.beta2;
    h.eps = o.epsilon;
    h.wd = o.weight_decay;
    h.clip = o.clip_global_norm;
    return create_typed(fn, params, k, &h, out);
}

lam_status lam_trainer_create_adam(const lam_param_list *params, const lam_adam_options *options,
                                   lam_trainer **out) {
    return create_adam("lam_trainer_create_adam", ADAM, params, options, out);
}

lam_status lam_trainer_create_adamw(const lam_param_list *params, const lam_adam_options *options,
                                    lam_trainer **out) {
    return create_adam("lam_trainer_create_adamw", ADAMW, params, options, out);
}

lam_status lam_trainer_create_rmsprop(const lam_param_list *params,
                                      const lam_rmsprop_options *options, lam_trainer **out) {
    const char *fn = "lam_trainer_create_rmsprop";
    if (out == NULL || params == NULL) {
        return null_create(fn, out);
    }
    *out = NULL;
    lam_rmsprop_options o = LAM_RMSPROP_OPTIONS_INIT;
    if (options != NULL) {
        lam_status st = struct_size_ok(fn, options->struct_size, sizeof o);
        if (st != LAM_OK) {
            return st;
        }
        o = *options;
    }
    if (o.centered != 0 && o.centered != 1) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: rmsprop: Invalid value for 'centered', got %" PRId32
                          ", expected 0 or 1",
                          fn, o.centered);
    }
    hyper h = defaults(RMSPROP);
    h.lr = o.learning_rate;
    h.alpha = o.alpha;
    h.eps = o.epsilon;
    h.wd = o.weight_decay;
    h.momentum = o.momentum;
    h.clip = o.clip_global_norm;
    h.centered = o.centered;
    return create_typed(fn, params, RMSPROP, &h, out);
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
    kind k = SGD;
    while (k <= RMSPROP && strcmp(optimizer, kind_names[k]) != 0) {
        k++;
    }
    if (k > RMSPROP) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_trainer_create: Unknown optimizer '%s', expected sgd, adam, adamw "
                          "or rmsprop",
                          optimizer);
    }
    hyper h = defaults(k);
    double centered = 0.0;
    option o[MAX_OPTIONS];
    size_t n = options_of(k, &h, false, o);
    if (k == RMSPROP) {
        o[n++] = (option){"centered", &centered, 0, 0, false};
    }
    lam_status st = parse_options(optimizer, options, o, n);
    if (st == LAM_OK && centered != 0.0 && centered != 1.0) {
        st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                        "rmsprop: Invalid value for 'centered', got %g, expected 0 or 1", centered);
    }
    h.centered = centered != 0.0;
    return st == LAM_OK ? create(params, k, &h, out) : st;
}

void lam_trainer_destroy(lam_trainer *t) {
    if (t == NULL) {
        return;
    }
    lam__dist_destroy(t->dist);
    for (size_t i = 0; i < t->n; i++) {
        lam__param_release(t->slots[i].param);
        free(t->slots[i].key);
        for (int k = 0; k < N_STATE; k++) {
            lam_tensor_release(t->slots[i].s[k]);
        }
    }
    lam_tensor_release(t->last_norm);
    free(t->slots);
    free(t);
}

/* ---- learning rate and schedules ---- */

static double main_schedule(const lam_lr_schedule *s, double base, int64_t pos) {
    switch (s->kind) {
    case LAM_LR_STEP:
        return base * pow(s->gamma, (double)(pos / s->step_size));
    case LAM_LR_COSINE:
        return s->eta_min +
               (base - s->eta_min) * (1.0 + cos(LAM_PI * (double)pos / (double)s->t_max)) / 2.0;
    case LAM_LR_CONSTANT:
    default:
        return base;
    }
}

static double scheduled(const lam_trainer *t, int64_t pos) {
    if (!t->has_schedule) {
        return t->h.lr;
    }
    const lam_lr_schedule *s = &t->sched;
    if (pos < s->warmup_steps) {
        double f = s->warmup_start_factor;
        return t->h.lr * (f + (1.0 - f) * (double)pos / (double)s->warmup_steps);
    }
    return main_schedule(s, t->h.lr, pos - s->warmup_steps);
}

double lam_trainer_learning_rate(const lam_trainer *t) {
    return t ? scheduled(t, t->t) : 0.0;
}

void lam_trainer_set_learning_rate(lam_trainer *t, double lr) {
    if (t) {
        t->h.lr = lr;
    }
}

int64_t lam_trainer_step_count(const lam_trainer *t) {
    return t ? t->t : 0;
}

lam_status lam_trainer_set_schedule(lam_trainer *t, const lam_lr_schedule *s) {
    const char *fn = "lam_trainer_set_schedule";
    if (t == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, NULL trainer", fn);
    }
    if (s == NULL) {
        t->has_schedule = false;
        return LAM_OK;
    }
    lam_status st = struct_size_ok(fn, s->struct_size, sizeof *s);
    if (st != LAM_OK) {
        return st;
    }
    const char *bad = NULL;
    if (s->kind != LAM_LR_CONSTANT && s->kind != LAM_LR_STEP && s->kind != LAM_LR_COSINE) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid schedule kind %d, expected LAM_LR_CONSTANT, LAM_LR_STEP or "
                          "LAM_LR_COSINE",
                          fn, (int)s->kind);
    }
    if (s->kind == LAM_LR_STEP && s->step_size < 1) {
        bad = "step_size must be >= 1";
    } else if (s->kind == LAM_LR_STEP && !(isfinite(s->gamma) && s->gamma > 0)) {
        bad = "gamma must be > 0";
    } else if (s->kind == LAM_LR_COSINE && s->t_max < 1) {
        bad = "t_max must be >= 1";
    } else if (s->kind == LAM_LR_COSINE && !(isfinite(s->eta_min) && s->eta_min >= 0)) {
        bad = "eta_min must be >= 0";
    } else if (s->warmup_steps < 0) {
        bad = "warmup_steps must be >= 0";
    } else if (s->warmup_steps > 0 &&
               !(s->warmup_start_factor > 0 && s->warmup_start_factor <= 1)) {
        bad = "warmup_start_factor must be in (0, 1]";
    }
    if (bad != NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid schedule, %s", fn, bad);
    }
    t->sched = *s;
    t->has_schedule = true;
    return LAM_OK;
}

/* ---- one step ---- */

/* Replaces *x with the result of `call` (which writes next_): releases the old tensor. */
#define UPDATE(x, call)                                                                            \
    do {                                                                                           \
        lam_tensor *next_ = NULL;                                                                  \
        if (st == LAM_OK && (st = (call)) == LAM_OK) {                                             \
            lam_tensor_release(x);                                                                 \
            x = next_;                                                                             \
        }                                                                                          \
    } while (0)

/* What a step computes for one parameter before anything is written: the new state, and the
 * update w = a w + b u. */
typedef struct pending {
    lam_tensor *g; /* the gradient the update reads (a new reference) */
    float gs;      /* ... times this scale */
    lam_tensor *s[N_STATE];
    lam_tensor *u;
    float a, b;
    bool active;
} pending;

static void pending_fini(pending *p) {
    lam_tensor_release(p->g);
    lam_tensor_release(p->u);
    for (int k = 0; k < N_STATE; k++) {
        lam_tensor_release(p->s[k]);
    }
}

/* out = a old + b y as a new tensor, old unchanged (NULL: zeros, so b y): the fused update
 * on a copy, the same arithmetic as updating old in place. */
static lam_status upd(const lam_tensor *old, float a, const lam_tensor *y, float b,
                      lam_tensor **out) {
    if (old == NULL) {
        return lam_op_mul_scalar(y, b, out);
    }
    lam_status st = lam_op_copy(old, out);
    if (st == LAM_OK && (st = lam__axpby_inplace(*out, a, y, b)) != LAM_OK) {
        lam_tensor_release(*out);
        *out = NULL;
    }
    return st;
}

static lam_status compute(const lam_trainer *t, const slot *sl, pending *pd, double lr_now) {
    lam_param *p = sl->param;
    const hyper *h = &t->h;
    double lr = lr_now * p->lr_mult, wd = h->wd * p->wd_mult;
    lam_tensor *w = p->data, *g = NULL, *tmp = NULL;
    lam_status st = LAM_OK;
    bool l2 = wd != 0.0 && t->kind != ADAMW; /* L2 decay: g += wd w (AdamW decouples it) */
    if (t->kind == SGD) {
        if (h->momentum == 0.0) {
            /* w = (1 - lr wd) w - lr gs G: one fused update of w */
            pd->u = lam_tensor_retain(pd->g);
            pd->a = (float)(1.0 - lr * wd);
            pd->b = (float)(-lr) * pd->gs;
            return LAM_OK;
        }
        /* v = momentum v + gs G (+ wd w); w -= lr v */
        st = upd(sl->s[0], (float)h->momentum, pd->g, pd->gs, &pd->s[0]);
        if (st == LAM_OK && l2) {
            st = lam__axpby_inplace(pd->s[0], 1.0f, w, (float)wd);
        }
        if (st == LAM_OK) {
            pd->u = lam_tensor_retain(pd->s[0]);
            pd->a = 1.0f;
            pd->b = (float)-lr;
        }
        return st;
    }
    /* g = gs G (+ wd w) */
    st = lam_op_mul_scalar(pd->g, pd->gs, &g);
    if (st == LAM_OK && l2) {
        st = lam__axpby_inplace(g, 1.0f, w, (float)wd);
    }
    if (t->kind == ADAM || t->kind == ADAMW) {
        /* m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
         * w = (1 - lr wd [AdamW]) w - lr/c1 m / (sqrt(v)/sqrt(c2) + eps) */
        double step = (double)(t->t + 1);
        double c1 = 1.0 - pow(h->beta1, step), c2 = 1.0 - pow(h->beta2, step);
        if (st == LAM_OK) {
            st = upd(sl->s[0], (float)h->beta1, g, (float)(1.0 - h->beta1), &pd->s[0]);
        }
        UPDATE(tmp, lam_op_square(g, &next_));
        if (st == LAM_OK) {
            st = upd(sl->s[1], (float)h->beta2, tmp, (float)(1.0 - h->beta2), &pd->s[1]);
        }
        UPDATE(tmp, lam_op_sqrt(pd->s[1], &next_));
        UPDATE(tmp, lam_op_div_scalar(tmp, (float)sqrt(c2), &next_));
        UPDATE(tmp, lam_op_add_scalar(tmp, (float)h->eps, &next_));
        if (st == LAM_OK) {
            st = lam_op_div(pd->s[0], tmp, &pd->u);
        }
        pd->a = t->kind == ADAMW ? (float)(1.0 - lr * wd) : 1.0f;
        pd->b = (float)(-lr / c1);
    } else {
        /* RMSProp: s = alpha s + (1-alpha) g^2; [centered: m = alpha m + (1-alpha) g, s - m^2];
         * d = sqrt(.) + eps; [momentum: b = momentum b + g/d, w -= lr b] else w -= lr g/d */
        float al = (float)h->alpha, one_al = (float)(1.0 - h->alpha);
        lam_tensor *avg = NULL;
        UPDATE(tmp, lam_op_square(g, &next_));
        if (st == LAM_OK) {
            st = upd(sl->s[0], al, tmp, one_al, &pd->s[0]);
        }
        if (h->centered) {
            if (st == LAM_OK) {
                st = upd(sl->s[2], al, g, one_al, &pd->s[2]);
            }
            UPDATE(tmp, lam_op_square(pd->s[2], &next_));
            UPDATE(tmp, lam_op_sub(pd->s[0], tmp, &next_));
            UPDATE(avg, lam_op_sqrt(tmp, &next_));
        } else {
            UPDATE(avg, lam_op_sqrt(pd->s[0], &next_));
        }
        UPDATE(avg, lam_op_add_scalar(avg, (float)h->eps, &next_));
        UPDATE(tmp, lam_op_div(g, avg, &next_));
        lam_tensor_release(avg);
        if (h->momentum > 0.0) {
            if (st == LAM_OK) {
                st = upd(sl->s[1], (float)h->momentum, tmp, 1.0f, &pd->s[1]);
            }
            if (st == LAM_OK) {
                pd->u = lam_tensor_retain(pd->s[1]);
            }
        } else if (st == LAM_OK) {
            pd->u = lam_tensor_retain(tmp);
        }
        pd->a = 1.0f;
        pd->b = (float)-lr;
    }
    lam_tensor_release(g);
    lam_tensor_release(tmp);
    return st;
}

static bool trainable(const lam_param *p) {
    return !(p->flags & LAM_PARAM_CONSTANT) && p->grad_req != LAM_GRAD_NULL;
}

/* The global norm of the gradients gs_i G_i (a new scalar tensor on the device), and the
 * factor min(1, max_norm / (norm + 1e-6)) each gradient is multiplied by. */
static lam_status global_norm(lam_tensor *const *grads, const float *gs, size_t n, double max_norm,
                              lam_tensor **norm, lam_tensor **factor) {
    lam_tensor *total = NULL, *sq = NULL, *part = NULL;
    lam_status st = LAM_OK;
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        if (grads[i] == NULL) {
            continue;
        }
        UPDATE(sq, lam_op_square(grads[i], &next_));
        UPDATE(part, lam_op_sum(sq, NULL, 0, 0, &next_));
        if (gs[i] != 1.0f) {
            UPDATE(part, lam_op_mul_scalar(part, gs[i] * gs[i], &next_));
        }
        if (total == NULL) {
            total = part;
            part = NULL;
        } else {
            UPDATE(total, lam_op_add(total, part, &next_));
        }
    }
    lam_tensor *f = NULL;
    if (st == LAM_OK && total == NULL) { /* no gradient: norm 0 */
        lam_ctx *ctx = NULL;
        st = lam_ctx_default(&ctx);
        if (st == LAM_OK) {
            st = lam_tensor_full(ctx, &(lam_shape){.ndim = 0}, 0.0f, &total);
        }
    }
    UPDATE(total, lam_op_sqrt(total, &next_));
    UPDATE(f, lam_op_add_scalar(total, 1e-6f, &next_));
    UPDATE(f, lam_op_rdiv_scalar(f, (float)max_norm, &next_));
    UPDATE(f, lam_op_clamp(f, 0.0f, 1.0f, &next_));
    lam_tensor_release(sq);
    lam_tensor_release(part);
    if (st != LAM_OK) {
        lam_tensor_release(total);
        lam_tensor_release(f);
        return st;
    }
    *norm = total;
    *factor = f;
    return LAM_OK;
}

/* Clipping inside a step: each pending gradient becomes gs G * factor (scale 1). */
static lam_status clip_pending(pending *pd, size_t n, double max_norm, lam_tensor **norm_out) {
    lam_tensor **grads = calloc(n ? n : 1, sizeof *grads);
    float *gs = calloc(n ? n : 1, sizeof *gs);
    lam_tensor *norm = NULL, *factor = NULL;
    lam_status st = grads && gs ? LAM_OK : lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory");
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        grads[i] = pd[i].active ? pd[i].g : NULL;
        gs[i] = pd[i].gs;
    }
    if (st == LAM_OK) {
        st = global_norm(grads, gs, n, max_norm, &norm, &factor);
    }
    lam_tensor **scaled = grads; /* reused: the clipped gradients */
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        scaled[i] = NULL;
        if (pd[i].active) {
            st = lam_op_mul(pd[i].g, factor, &scaled[i]);
            if (st == LAM_OK && pd[i].gs != 1.0f) {
                UPDATE(scaled[i], lam_op_mul_scalar(scaled[i], pd[i].gs, &next_));
            }
        }
    }
    for (size_t i = 0; grads != NULL && i < n; i++) {
        if (st == LAM_OK && pd[i].active) {
            lam_tensor_release(pd[i].g);
            pd[i].g = scaled[i];
            pd[i].gs = 1.0f;
        } else {
            lam_tensor_release(scaled[i]);
        }
    }
    lam_tensor_release(factor);
    if (st == LAM_OK) {
        *norm_out = norm;
    } else {
        lam_tensor_release(norm);
    }
    free(grads);
    free(gs);
    return st;
}

lam_status lam_trainer_step(lam_trainer *t, int64_t batch_size) {
    if (t == NULL || batch_size <= 0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "trainer step: Invalid argument, %s",
                          t == NULL ? "NULL trainer" : "batch_size must be positive");
    }
    for (size_t i = 0; i < t->n; i++) {
        lam_param *p = t->slots[i].param;
        if (trainable(p) && p->data == NULL) {
            lam_tensor *unused;
            return lam_param_data(p, &unused);
        }
    }
    if (t->dist != NULL) { /* the gradients summed over the ranks, the global batch */
        lam_status st = lam__dist_reduce(t->dist, batch_size, &batch_size);
        if (st != LAM_OK) {
            return st;
        }
    }
    pending *pd = calloc(t->n ? t->n : 1, sizeof *pd);
    if (pd == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "trainer step: Out of memory");
    }
    int was = lam_autograd_record_begin(0);
    lam_status st = LAM_OK;
    /* 1. the gradients and their scale */
    for (size_t i = 0; st == LAM_OK && i < t->n; i++) {
        lam_param *p = t->slots[i].param;
        if (!trainable(p)) {
            continue;
        }
        if (p->grad == NULL) {
            st = lam__error(LAM_ERR_STATE, "%s: No gradient, the parameter has no gradient buffer",
                            p->name);
            break;
        }
        pd[i].active = true;
        pd[i].g = lam_tensor_retain(p->grad);
        pd[i].gs = 1.0f / (float)batch_size;
    }
    /* 2. clipping by global norm */
    lam_tensor *norm = NULL;
    if (st == LAM_OK && t->h.clip > 0.0) {
        st = clip_pending(pd, t->n, t->h.clip, &norm);
        if (st != LAM_OK) {
            st = lam__error_prefix(st, "trainer step: clipping");
        }
    }
    /* 3. the update, computed in full, then committed */
    double lr = scheduled(t, t->t);
    for (size_t i = 0; st == LAM_OK && i < t->n; i++) {
        if (pd[i].active && (st = compute(t, &t->slots[i], &pd[i], lr)) != LAM_OK) {
            st = lam__error_prefix(st, "%s", t->slots[i].param->name);
        }
    }
    for (size_t i = 0; st == LAM_OK && i < t->n; i++) {
        if (pd[i].active) {
            lam_param *p = t->slots[i].param;
            st = lam__axpby_inplace(p->data, pd[i].a, pd[i].u, pd[i].b);
            if (st != LAM_OK) {
                /* A backend with the fused AXPBY allocates nothing here, so only the device
                 * itself failing (or a backend without AXPBY, whose basic-op fallback allocates)
                 * gets here: parameters before i are updated already. */
                st = lam__error_prefix(st, "%s", p->name);
            }
        }
    }
    if (st == LAM_OK) {
        for (size_t i = 0; i < t->n; i++) {
            for (int k = 0; pd[i].active && k < N_STATE; k++) {
                if (pd[i].s[k] != NULL) {
                    lam_tensor *old = t->slots[i].s[k];
                    t->slots[i].s[k] = pd[i].s[k];
                    pd[i].s[k] = old;
                }
            }
        }
        if (norm != NULL) {
            lam_tensor *old = t->last_norm;
            t->last_norm = norm;
            norm = old;
        }
        t->t++;
    }
    lam_tensor_release(norm);
    for (size_t i = 0; i < t->n; i++) {
        pending_fini(&pd[i]);
    }
    free(pd);
    lam_autograd_record_end(was);
    return st;
}

lam_status lam_trainer_set_comm(lam_trainer *t, lam_comm *comm, size_t bucket_bytes) {
    if (t == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "lam_trainer_set_comm: Invalid argument, "
                                                    "NULL trainer");
    }
    lam__dist_destroy(t->dist);
    t->dist = NULL;
    if (comm == NULL) {
        return LAM_OK;
    }
    lam_param **ps = malloc((t->n ? t->n : 1) * sizeof *ps);
    if (ps == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_trainer_set_comm: Out of memory");
    }
    for (size_t i = 0; i < t->n; i++) {
        ps[i] = t->slots[i].param;
    }
    lam_status st = lam__dist_create(comm, ps, t->n, bucket_bytes, &t->dist);
    free(ps);
    return st;
}

lam_status lam_trainer_last_grad_norm(const lam_trainer *t, float *norm) {
    if (t == NULL || norm == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_trainer_last_grad_norm: Invalid argument, NULL trainer or norm");
    }
    if (t->last_norm == NULL) {
        return lam__error(LAM_ERR_STATE,
                          "lam_trainer_last_grad_norm: No norm, no step with clip_global_norm "
                          "ran yet");
    }
    return lam_tensor_scalar(t->last_norm, norm);
}

lam_status lam_param_list_clip_global_norm(const lam_param_list *list, double max_norm,
                                           float *norm_out) {
    const char *fn = "lam_param_list_clip_global_norm";
    if (list == NULL || !(isfinite(max_norm) && max_norm > 0.0)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, %s", fn,
                          list == NULL ? "NULL list" : "max_norm must be > 0");
    }
    size_t n = lam_param_list_count(list);
    lam_tensor **grads = calloc(n ? n : 1, sizeof *grads), **clipped = NULL;
    float *gs = calloc(n ? n : 1, sizeof *gs);
    lam_tensor *norm = NULL, *factor = NULL;
    lam_status st = LAM_OK;
    if (grads == NULL || gs == NULL || (clipped = calloc(n ? n : 1, sizeof *clipped)) == NULL) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory"); /* prefixed below */
    }
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        lam_param *p = lam_param_list_get(list, i);
        grads[i] = trainable(p) && p->data != NULL ? p->grad : NULL;
        gs[i] = 1.0f;
    }
    int was = lam_autograd_record_begin(0);
    if (st == LAM_OK) {
        st = global_norm(grads, gs, n, max_norm, &norm, &factor);
    }
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        if (grads[i] != NULL) {
            st = lam_op_mul(grads[i], factor, &clipped[i]);
        }
    }
    float value = 0.0f;
    if (st == LAM_OK && norm_out != NULL) {
        st = lam_tensor_scalar(norm, &value);
    }
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        if (grads[i] != NULL) {
            st = lam_op_assign(grads[i], clipped[i]);
        }
    }
    lam_autograd_record_end(was);
    if (st == LAM_OK && norm_out != NULL) {
        *norm_out = value;
    }
    for (size_t i = 0; clipped != NULL && i < n; i++) {
        lam_tensor_release(clipped[i]);
    }
    lam_tensor_release(norm);
    lam_tensor_release(factor);
    free(grads);
    free(gs);
    free(clipped);
    return st == LAM_OK ? LAM_OK : lam__error_prefix(st, "%s", fn);
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

/* ---- state saved and loaded ---- */

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
    size_t cap = t->n * N_STATE, n = 0;
    char **names = calloc(cap ? cap : 1, sizeof *names);
    lam_tensor **tensors = calloc(cap ? cap : 1, sizeof *tensors);
    const lam_shape **shapes = calloc(cap ? cap : 1, sizeof *shapes);
    lam_status st = names && tensors && shapes
                        ? LAM_OK
                        : lam__error(LAM_ERR_OUT_OF_MEMORY, "saving '%s': Out of memory", path);
    for (size_t i = 0; st == LAM_OK && i < t->n; i++) {
        for (int k = 0; st == LAM_OK && k < N_STATE; k++) {
            if (t->slots[i].s[k] == NULL) {
                continue;
            }
            names[n] = state_key(t->slots[i].key, state_names[t->kind][k]);
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
    const char *mv[4] = {"trainer", kind_names[t->kind], step, lr};
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
    const char *kind_meta = lam_tensor_dict_metadata(d, LAM__ST_META_KIND);
    const char *opt = lam_tensor_dict_metadata(d, META_OPTIMIZER);
    const char *step_text = lam_tensor_dict_metadata(d, META_STEP);
    const char *lr_text = lam_tensor_dict_metadata(d, META_LR);
    int64_t step = 0;
    double lr = 0.0;
    if (kind_meta == NULL || strcmp(kind_meta, "trainer") != 0 || opt == NULL ||
        step_text == NULL || lr_text == NULL) {
        st = lam__error(LAM_ERR_FORMAT,
                        "loading '%s': Not a trainer state, the metadata lacks lamina.kind "
                        "\"trainer\", lamina.optimizer, lamina.step or lamina.learning_rate",
                        path);
    } else if (strcmp(opt, kind_names[t->kind]) != 0) {
        st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                        "loading '%s': Optimizer mismatch, the file holds %s state, the trainer "
                        "is %s",
                        path, opt, kind_names[t->kind]);
    } else if (!lam__kv_int(lam__kv_span_of(step_text), &step) || step < 0 ||
               !lam__kv_double(lam__kv_span_of(lr_text), &lr) || !isfinite(lr) || lr <= 0) {
        st = lam__error(LAM_ERR_FORMAT,
                        "loading '%s': Bad metadata, lamina.step '%s', lamina.learning_rate '%s'",
                        path, step_text, lr_text);
    }
    /* Everything staged and checked before t changes. */
    lam_tensor **staged = calloc(t->n ? t->n * N_STATE : 1, sizeof *staged);
    if (st == LAM_OK && staged == NULL) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "loading '%s': Out of memory", path);
    }
    size_t used = 0;
    for (size_t i = 0; st == LAM_OK && i < t->n; i++) {
        lam_param *p = t->slots[i].param;
        for (size_t k = 0; st == LAM_OK && k < N_STATE; k++) {
            if (state_names[t->kind][k] == NULL) {
                continue;
            }
            char *name = state_key(t->slots[i].key, state_names[t->kind][k]);
            if (name == NULL) {
                st = lam__error(LAM_ERR_OUT_OF_MEMORY, "loading '%s': Out of memory", path);
                break;
            }
            lam_tensor *x = lam_tensor_dict_find(d, name);
            if (x != NULL) {
                used++;
                char b1[160], b2[160];
                if (p->data == NULL || !lam_shape_equal(lam_tensor_shape(x), &p->shape)) {
                    st =
                        lam__error(LAM_ERR_INVALID_ARGUMENT,
                                   "loading '%s': Shape mismatch, '%s' is %s, the parameter %s",
                                   path, name, lam_shape_format(lam_tensor_shape(x), b1, sizeof b1),
                                   p->data == NULL ? "is not initialized"
                                                   : lam_shape_format(&p->shape, b2, sizeof b2));
                } else if (lam_tensor_ctx(x) != lam_tensor_ctx(p->data)) {
                    st = lam_tensor_copyto(x, lam_tensor_ctx(p->data), &staged[i * N_STATE + k]);
                } else {
                    staged[i * N_STATE + k] = lam_tensor_retain(x);
                }
            }
            free(name);
        }
    }
    if (st == LAM_OK && used != lam_tensor_dict_count(d)) {
        for (size_t j = 0; j < lam_tensor_dict_count(d); j++) {
            const char *name = lam_tensor_dict_name(d, j);
            bool known = false;
            for (size_t i = 0; !known && i < t->n; i++) {
                size_t kl = strlen(t->slots[i].key);
                for (int k = 0; !known && k < N_STATE; k++) {
                    const char *sn = state_names[t->kind][k];
                    known = sn != NULL && strncmp(name, t->slots[i].key, kl) == 0 &&
                            name[kl] == '.' && strcmp(name + kl + 1, sn) == 0;
                }
            }
            if (!known) {
                st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                                "loading '%s': Unexpected tensor '%s', the trainer has no such %s "
                                "state",
                                path, name, kind_names[t->kind]);
                break;
            }
        }
    }
    if (st == LAM_OK) {
        for (size_t i = 0; i < t->n; i++) {
            for (size_t k = 0; k < N_STATE; k++) {
                lam_tensor *old = t->slots[i].s[k];
                t->slots[i].s[k] = staged[i * N_STATE + k];
                staged[i * N_STATE + k] = old;
            }
        }
        t->t = step;
        t->h.lr = lr;
    }
    for (size_t i = 0; staged != NULL && i < t->n * N_STATE; i++) {
        lam_tensor_release(staged[i]);
    }
    free(staged);
    lam_tensor_dict_destroy(d);
    return st;
}
