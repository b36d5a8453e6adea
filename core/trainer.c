/* The trainer (Gluon's Trainer): an optimizer over a parameter list, its options (a string or a
 * typed struct per optimizer), learning-rate schedules, and the step. The update rules are in
 * optim.c, clipping in trainer_clip.c, the state files in trainer_state.c.
 *
 * A step has three phases, so that a failure changes nothing:
 *   1. gradients: each trainable parameter's gradient and its scale (1/batch); this is where
 *      gradients from other processes would be reduced before anything reads them;
 *   2. clipping by global norm (optional), on the device;
 *   3. the update computed in full (new state tensors, one update tensor per parameter), then
 *      committed: w = a w + b u in place (the fused op), the new state swapped in. */
#define _POSIX_C_SOURCE 200809L
#include "trainer_types.h"
#include "distributed.h"
#include "error.h"
#include "kv.h"
#include "ops.h"
#include "optim.h"
#include "param.h"
#include "tensor.h"
#include "trainer_clip.h"
#include "util.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define LAM_PI 3.14159265358979323846

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
static size_t options_of(lam__optim k, lam__hyper *h, bool typed, option *o) {
    const char *wd = typed ? "weight_decay" : "wd";
    size_t n = 0;
    o[n++] = (option){"learning_rate", &h->lr, 0, 0, true};
    switch (k) {
    case LAM__SGD:
        o[n++] = (option){"momentum", &h->momentum, 0, 1, false};
        o[n++] = (option){wd, &h->wd, 0, 0, false};
        break;
    case LAM__ADAM:
    case LAM__ADAMW:
        o[n++] = (option){"beta1", &h->beta1, 0, 1, false};
        o[n++] = (option){"beta2", &h->beta2, 0, 1, false};
        o[n++] = (option){"epsilon", &h->eps, 0, 0, true};
        o[n++] = (option){wd, &h->wd, 0, 0, false};
        break;
    case LAM__RMSPROP:
        o[n++] = (option){"alpha", &h->alpha, 0, 1, false};
        o[n++] = (option){"epsilon", &h->eps, 0, 0, true};
        o[n++] = (option){wd, &h->wd, 0, 0, false};
        o[n++] = (option){"momentum", &h->momentum, 0, 1, false};
        break;
    }
    o[n++] = (option){"clip_global_norm", &h->clip, 0, 0, false};
    return n;
}

static lam__hyper defaults(lam__optim k) {
    lam__hyper h = {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .alpha = 0.99};
    if (k == LAM__ADAM || k == LAM__ADAMW) {
        h.lr = 0.001;
    }
    if (k == LAM__ADAMW) {
        h.wd = 0.01;
    }
    return h;
}

static lam_status create(const lam_param_list *params, lam__optim k, const lam__hyper *h,
                         lam_trainer **out) {
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

static lam_status create_typed(const char *fn, const lam_param_list *params, lam__optim k,
                               lam__hyper *h, lam_trainer **out) {
    option o[MAX_OPTIONS];
    size_t n = options_of(k, h, true, o);
    lam_status st = check_options(lam__optim_names[k], o, n);
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
    lam__hyper h = defaults(LAM__SGD);
    h.lr = o.learning_rate;
    h.momentum = o.momentum;
    h.wd = o.weight_decay;
    h.clip = o.clip_global_norm;
    return create_typed(fn, params, LAM__SGD, &h, out);
}

static lam_status create_adam(const char *fn, lam__optim k, const lam_param_list *params,
                              const lam_adam_options *options, lam_trainer **out) {
    if (out == NULL || params == NULL) {
        return null_create(fn, out);
    }
    *out = NULL;
    lam_adam_options o = LAM_ADAM_OPTIONS_INIT;
    if (k == LAM__ADAMW) {
        o = (lam_adam_options)LAM_ADAMW_OPTIONS_INIT;
    }
    if (options != NULL) {
        lam_status st = struct_size_ok(fn, options->struct_size, sizeof o);
        if (st != LAM_OK) {
            return st;
        }
        o = *options;
    }
    lam__hyper h = defaults(k);
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
    return create_adam("lam_trainer_create_adam", LAM__ADAM, params, options, out);
}

lam_status lam_trainer_create_adamw(const lam_param_list *params, const lam_adam_options *options,
                                    lam_trainer **out) {
    return create_adam("lam_trainer_create_adamw", LAM__ADAMW, params, options, out);
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
    lam__hyper h = defaults(LAM__RMSPROP);
    h.lr = o.learning_rate;
    h.alpha = o.alpha;
    h.eps = o.epsilon;
    h.wd = o.weight_decay;
    h.momentum = o.momentum;
    h.clip = o.clip_global_norm;
    h.centered = o.centered;
    return create_typed(fn, params, LAM__RMSPROP, &h, out);
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
    lam__optim k = LAM__SGD;
    while (k <= LAM__RMSPROP && strcmp(optimizer, lam__optim_names[k]) != 0) {
        k++;
    }
    if (k > LAM__RMSPROP) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_trainer_create: Unknown optimizer '%s', expected sgd, adam, adamw "
                          "or rmsprop",
                          optimizer);
    }
    lam__hyper h = defaults(k);
    double centered = 0.0;
    option o[MAX_OPTIONS];
    size_t n = options_of(k, &h, false, o);
    if (k == LAM__RMSPROP) {
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
        for (int k = 0; k < LAM__N_STATE; k++) {
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

static void pending_fini(lam__pending *p) {
    lam_tensor_release(p->g);
    lam_tensor_release(p->u);
    for (int k = 0; k < LAM__N_STATE; k++) {
        lam_tensor_release(p->s[k]);
    }
}

lam_status lam_trainer_step(lam_trainer *t, int64_t batch_size) {
    if (t == NULL || batch_size <= 0) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "trainer step: Invalid argument, %s",
                          t == NULL ? "NULL trainer" : "batch_size must be positive");
    }
    for (size_t i = 0; i < t->n; i++) {
        lam_param *p = t->slots[i].param;
        if (lam__trainable(p) && p->data == NULL) {
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
    lam__pending *pd = calloc(t->n ? t->n : 1, sizeof *pd);
    if (pd == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "trainer step: Out of memory");
    }
    int was = lam_autograd_record_begin(0);
    lam_status st = LAM_OK;
    /* 1. the gradients and their scale */
    for (size_t i = 0; st == LAM_OK && i < t->n; i++) {
        lam_param *p = t->slots[i].param;
        if (!lam__trainable(p)) {
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
        st = lam__clip_pending(pd, t->n, t->h.clip, &norm);
        if (st != LAM_OK) {
            st = lam__error_prefix(st, "trainer step: clipping");
        }
    }
    /* 3. the update, computed in full, then committed */
    double lr = scheduled(t, t->t);
    for (size_t i = 0; st == LAM_OK && i < t->n; i++) {
        if (pd[i].active && (st = lam__optim_compute(t, &t->slots[i], &pd[i], lr)) != LAM_OK) {
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
            for (int k = 0; pd[i].active && k < LAM__N_STATE; k++) {
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
