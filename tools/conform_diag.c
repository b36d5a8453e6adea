/*
 * conform_diag.c - the bottom of the conformance kit: the list of declared checks, the
 * verdicts a check gives (in its child process, into the shared result page), starting the
 * runtime for a check, and the kit's own random numbers. It calls nothing else of the kit;
 * every other conform file may call it.
 */
#define _GNU_SOURCE
#include "conform.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the list of checks ---- */

static cf_check *checks;
static size_t n_checks, cap_checks;

int cf_add(const char *name, cf_fn fn, const cf_layer *layer, const char *backend, int param) {
    if (n_checks == cap_checks) {
        size_t cap = cap_checks ? 2 * cap_checks : 64;
        cf_check *a = realloc(checks, cap * sizeof *a);
        if (a == NULL) {
            return -1;
        }
        checks = a;
        cap_checks = cap;
    }
    cf_check *k = &checks[n_checks++];
    snprintf(k->name, sizeof k->name, "%s", name);
    k->fn = fn;
    k->layer = layer;
    k->backend = backend;
    k->param = param;
    return 0;
}

size_t cf_check_count(void) {
    return n_checks;
}

cf_check *cf_check_get(size_t i) {
    return i < n_checks ? &checks[i] : NULL;
}

void cf_checks_clear(void) {
    free(checks);
    checks = NULL;
    n_checks = cap_checks = 0;
}

/* ---- verdicts (child side) ---- */

static void vset(char *dst, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void vset(char *dst, size_t cap, const char *fmt, va_list ap) {
    vsnprintf(dst, cap, fmt, ap);
}

#define VERDICT(fnname, value)                                                                     \
    void fnname(cf_ctx *c, const char *fmt, ...) {                                                 \
        if (c->res->outcome != CF_NONE) {                                                          \
            return;                                                                                \
        }                                                                                          \
        c->res->outcome = value;                                                                   \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        vset(c->res->message, sizeof c->res->message, fmt, ap);                                    \
        va_end(ap);                                                                                \
    }
VERDICT(cf_pass, CF_PASS)
VERDICT(cf_skip, CF_SKIP)
VERDICT(cf_fail, CF_FAIL)
#undef VERDICT

void cf_expect(cf_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(c->res->expected, sizeof c->res->expected, fmt, ap);
    va_end(ap);
}

void cf_found(cf_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(c->res->found, sizeof c->res->found, fmt, ap);
    va_end(ap);
}

void cf_note(cf_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(c->res->note, sizeof c->res->note, fmt, ap);
    va_end(ap);
}

int cf_failed(const cf_ctx *c) {
    return c->res->outcome == CF_FAIL;
}

int cf_start(cf_ctx *c) {
    lam_init_options o = LAM_INIT_OPTIONS_INIT;
    o.plugin_path = c->plugin->load_path;
    o.skip_builtin_dir = 1;
    cf_note(c, "in lam_init (loading the plugin)");
    lam_status st = lam_init(&o);
    if (st != LAM_OK) {
        cf_fail(c, "lam_init failed: %s", lam_last_error());
        return -1;
    }
    c->started = 1;
    c->live0 = lam_tensor_live_count();
    return 0;
}

/* ---- random numbers for inputs ---- */

uint64_t cf_rng_next(cf_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void cf_rng_init(cf_rng *r, uint64_t seed, uint64_t stream) {
    r->s = seed * 0x2545F4914F6CDD1DULL + stream * 0x9E3779B97F4A7C15ULL + 1;
    (void)cf_rng_next(r);
}

float cf_rng_uniform(cf_rng *r, float lo, float hi) {
    double u = (double)(cf_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}
