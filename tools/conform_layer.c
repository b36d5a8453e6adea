/*
 * conform_layer.c - the checks of a layer plugin, run by `lamina conform` (see conform.c).
 *
 * Every check builds its own instances through the public API (lam_layer_create with the
 * attributes found by the setup check, lam_block_initialize, lam_block_forward) on a runtime
 * that loaded the plugin and the built-in backends, and releases everything it made: the
 * runner then checks that lam_tensor_live_count() is back where it started.
 *
 * Tolerances (float32 throughout):
 *  - gradients against central finite differences: step h = 1e-2 on inputs and parameters
 *    drawn from U(-1, 1) / U(-0.5, 0.5); an element passes when |g - fd| <= 1e-2 + 1e-2 |fd|.
 *    When it does not, the difference is taken again with h = 1e-3; if the two differences
 *    disagree with each other the point sits on a kink (relu at 0, ...) and is not judged.
 *  - fused backward against the differentiated forward: |a - b| <= 1e-4 max(1, max|b|) +
 *    1e-3 |b| (both are float32 computations of the same quantity in another order).
 *  - other backends against cpu: |x - ref| <= 1e-4 + 1e-3 |ref| for outputs and gradients;
 *    initial weights must be bit-identical (they come from the seeded counter-based RNG).
 *  - save -> load: bit-exact.
 */
#define _GNU_SOURCE
#include "conform.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Serialization is being added to the core; until liblamina has it, the reference is weak and
 * the round-trip check skips. */
#pragma weak lam_block_save_parameters
#pragma weak lam_block_load_parameters

/* ---- helpers ---- */

static char *fmt_shape(const lam_shape *s, char *buf, size_t cap) {
    return lam_shape_format(s, buf, cap);
}

/* ---- setup: attributes and an input the layer accepts ---- */

/* Nonzero when the "name=value, ..." text sets `name`. */
static int text_sets(const char *a, const char *name) {
    size_t n = strlen(name);
    while (a != NULL && *a) {
        while (*a == ' ' || *a == ',') {
            a++;
        }
        if (strncmp(a, name, n) == 0 && (a[n] == '=' || a[n] == ' ')) {
            return 1;
        }
        a = strchr(a, ',');
    }
    return 0;
}

static int user_sets(const cf_ctx *c, const char *name) {
    return text_sets(c->opt->attrs, name);
}

/* A valid value for an attribute of this type (INT 3, FLOAT 0.5, BOOL true, first choice). */
static void synth_value(const cf_attr *a, char *buf, size_t cap) {
    switch (a->type) {
    case LAM_ATTR_INT:
        snprintf(buf, cap, "3");
        break;
    case LAM_ATTR_FLOAT:
        snprintf(buf, cap, "0.5");
        break;
    case LAM_ATTR_BOOL:
        snprintf(buf, cap, "true");
        break;
    case LAM_ATTR_ENUM: {
        const char *bar = strchr(a->choices, '|');
        int len = bar ? (int)(bar - a->choices) : (int)strlen(a->choices);
        snprintf(buf, cap, "%.*s", len, a->choices);
        break;
    }
    default:
        snprintf(buf, cap, "%s", a->def);
        break;
    }
}

/* The user's attributes, then the descriptor's example_attrs they do not override, plus a
 * synthesized value for each required one still left out. */
static void required_attrs(const cf_ctx *c, char *out, size_t cap) {
    snprintf(out, cap, "%s", c->opt->attrs ? c->opt->attrs : "");
    for (const char *p = c->layer->example_attrs; *p;) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        char name[64];
        size_t nl = eq ? (size_t)(eq - p) : 0;
        while (nl > 0 && p[nl - 1] == ' ') {
            nl--;
        }
        snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), p);
        if (len > 0 && nl > 0 && !user_sets(c, name)) {
            size_t n = strlen(out);
            snprintf(out + n, cap - n, "%s%.*s", n ? ", " : "", (int)len, p);
        }
        p += len;
    }
    for (uint32_t i = 0; i < c->layer->n_attrs; i++) {
        const cf_attr *a = &c->layer->attrs[i];
        if (!a->required || user_sets(c, a->name) || text_sets(c->layer->example_attrs, a->name)) {
            continue;
        }
        char v[128];
        synth_value(a, v, sizeof v);
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s=%s", n ? ", " : "", a->name, v);
    }
}

/*
 * How input shapes are chosen: --shape (one per input) when given; otherwise (2, F) for every
 * positive integer F among the attribute values (in_units=5 suggests 5 features), then
 * (2, F) for F in 3, 5, 4, 2, 1, 8, 16, then (F), (2, 3, 4) and (2, 3, 4, 5); the first shape
 * a forward accepts is used by every check. A layer of more inputs (--inputs N, or tried
 * with 1, 2, then 3 inputs) gets the same shape for each.
 */
static void check_setup(cf_ctx *c) {
    char attrs[1024];
    required_attrs(c, attrs, sizeof attrs);
    snprintf(c->res->attr_text, sizeof c->res->attr_text, "%s", attrs);
    if (cf_start(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    const cf_options *o = c->opt;
    /* Candidate feature sizes: integers among the attributes first (in_units=5), then a few. */
    int64_t feats[32];
    int nf = 0;
    for (const char *p = attrs; *p && nf < 24; p++) {
        if (*p == '=') {
            char *end;
            long long v = strtoll(p + 1, &end, 10);
            if (end != p + 1 && v > 0 && v < 100000) {
                feats[nf++] = v;
            }
        }
    }
    const int64_t more[] = {3, 5, 4, 2, 1, 8, 16};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        feats[nf++] = more[i];
    }
    lam_shape cands[64];
    int nc = 0;
    /* The descriptor's example inputs, when it gives them, instead of guessing. */
    const cf_layer *lay = c->layer;
    int use_examples = o->n_shapes == 0 && lay->n_examples > 0;
    if (o->n_shapes > 0) {
        cands[nc++] = o->shapes[0];
    } else if (use_examples) {
        lam_shape ex = {.ndim = lay->examples[0].ndim};
        memcpy(ex.dims, lay->examples[0].dims, sizeof ex.dims);
        cands[nc++] = ex;
    } else {
        for (int i = 0; i < nf; i++) {
            cands[nc++] = (lam_shape){.ndim = 2, .dims = {2, feats[i]}};
        }
        cands[nc++] = (lam_shape){.ndim = 1, .dims = {feats[0]}};
        cands[nc++] = (lam_shape){.ndim = 3, .dims = {2, 3, 4}};
        cands[nc++] = (lam_shape){.ndim = 4, .dims = {2, 3, 4, 5}};
    }
    /* The descriptor's arity (ABI 2.0: 0 and 0 mean exactly one), tried from its low end. */
    uint32_t arity_lo = lay->min_inputs ? lay->min_inputs : 1;
    uint32_t arity_hi = lay->max_inputs ? lay->max_inputs : arity_lo;
    arity_hi = arity_hi > CF_MAX_INPUTS ? CF_MAX_INPUTS : arity_hi < arity_lo ? arity_lo : arity_hi;
    if (o->n_inputs > 0) {
        arity_lo = arity_hi = o->n_inputs;
    } else if (o->n_shapes > 1) {
        arity_lo = arity_hi = o->n_shapes;
    } else if (use_examples) {
        arity_lo = arity_hi = lay->n_examples > arity_lo ? lay->n_examples : arity_lo;
    }
    cf_layer probe = *c->layer;
    const cf_layer *real = c->layer;
    c->layer = &probe;
    char tried[1024] = "";
    char last[1200] = "";
    for (uint32_t n_in = arity_lo; n_in <= arity_hi; n_in++) {
        for (int i = 0; i < nc; i++) {
            probe.n_inputs = n_in;
            for (uint32_t k = 0; k < CF_MAX_INPUTS; k++) {
                probe.inputs[k] = o->n_shapes > k ? o->shapes[k] : cands[i];
                if (use_examples && k < lay->n_examples) {
                    probe.inputs[k].ndim = lay->examples[k].ndim;
                    memcpy(probe.inputs[k].dims, lay->examples[k].dims,
                           sizeof probe.inputs[k].dims);
                }
            }
            lam_block *b = NULL;
            lam_tensor *x = NULL, *y = NULL;
            cf_note(c, "creating %s(%s)", real->name, attrs);
            lam_status st = cf_make_layer(c, attrs, ctx, NULL, &b);
            if (st != LAM_OK) {
                c->layer = real;
                cf_fail(c, "cannot create %s with attributes \"%s\": %s", real->name, attrs,
                        cf_errtext(st));
                cf_expect(c, "an instance (pass --attrs \"name=value, ...\" to choose the values)");
                cf_found(c, "%s", cf_errtext(st));
                return;
            }
            st = cf_rand_tensor(c, ctx, &probe.inputs[0], 1, -1.0f, 1.0f, &x);
            if (st == LAM_OK) {
                st = cf_forward1(c, b, x, &y);
            }
            int accepted = st == LAM_OK || (st == LAM_ERR_INTERNAL &&
                                            strstr(lam_last_error(), "differs from the inferred"));
            if (st != LAM_OK) {
                snprintf(last, sizeof last, "%s", cf_errtext(st));
            }
            lam_tensor_release(y);
            lam_tensor_release(x);
            lam_block_release(b);
            char sh[160];
            fmt_shape(&probe.inputs[0], sh, sizeof sh);
            size_t n = strlen(tried);
            if (n_in == arity_lo || n_in > 1) {
                snprintf(tried + n, sizeof tried - n, "%s%s%s", n ? " " : "", sh,
                         n_in > 1 ? (n_in == 2 ? "x2" : "x3") : "");
            }
            if (accepted) {
                c->layer = real;
                c->res->have_input = 1;
                c->res->n_inputs = n_in;
                memcpy(c->res->inputs, probe.inputs, sizeof c->res->inputs);
                if (n_in == 1) {
                    cf_pass(c, "%s(%s) takes input %s", real->name, attrs, sh);
                } else {
                    char all[600] = "";
                    for (uint32_t k = 0; k < n_in; k++) {
                        size_t len = strlen(all);
                        snprintf(all + len, sizeof all - len, "%s%s", k ? ", " : "",
                                 fmt_shape(&probe.inputs[k], sh, sizeof sh));
                    }
                    cf_pass(c, "%s(%s) takes %u inputs %s", real->name, attrs, n_in, all);
                }
                return;
            }
        }
    }
    c->layer = real;
    cf_fail(c, "no input shape accepted by %s(%s)", real->name, attrs);
    cf_expect(c,
              "a forward that succeeds on one of %s (choose with --shape \"(2,3,8,8)\" and "
              "--inputs N)",
              tried);
    cf_found(c, "last error %s", last);
}

/* ---- attribute schema ---- */

static void check_attr_defaults(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    /* Only the required attributes, then every attribute spelled out at its default: the two
     * instances must be the same layer (same parameter shapes, same output for one seed). */
    char full[2048];
    snprintf(full, sizeof full, "%s", c->layer->attr_text);
    int n_opt = 0;
    for (uint32_t i = 0; i < c->layer->n_attrs; i++) {
        const cf_attr *a = &c->layer->attrs[i];
        /* Set by the user or by the descriptor's example_attrs (both are in attr_text):
         * spelling the default out as well would repeat the attribute. */
        if (a->required || user_sets(c, a->name) || text_sets(c->layer->attr_text, a->name)) {
            continue;
        }
        /* A STRING default with a comma outside parentheses cannot be spelled in the text. */
        if (a->type == LAM_ATTR_STRING && strchr(a->def, ',') != NULL) {
            continue;
        }
        size_t n = strlen(full);
        snprintf(full + n, sizeof full - n, "%s%s=%s", n ? ", " : "", a->name, a->def);
        n_opt++;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    lam_block *b1 = NULL, *b2 = NULL;
    lam_tensor *x = NULL, *y1 = NULL, *y2 = NULL;
    lam_seed(c->opt->seed);
    lam_status st = cf_make_layer(c, NULL, ctx, NULL, &b1);
    if (st != LAM_OK) {
        cf_fail(c, "create with only the required attributes failed: %s", cf_errtext(st));
        goto done;
    }
    st = cf_make_layer(c, full, ctx, NULL, &b2);
    if (st != LAM_OK) {
        cf_fail(c, "create with every default spelled out failed: %s", cf_errtext(st));
        cf_expect(c, "\"%s\" is accepted", full);
        cf_found(c, "%s", cf_errtext(st));
        goto done;
    }
    st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 2, -1.0f, 1.0f, &x);
    if (st == LAM_OK) {
        st = cf_forward1(c, b1, x, &y1);
    }
    if (st == LAM_OK) {
        st = cf_forward1(c, b2, x, &y2);
    }
    if (st != LAM_OK) {
        cf_fail(c, "forward failed: %s", cf_errtext(st));
        goto done;
    }
    size_t n1, n2;
    float *v1 = cf_host_copy(y1, &n1), *v2 = cf_host_copy(y2, &n2);
    int same = v1 && v2 && n1 == n2 && memcmp(v1, v2, n1 * sizeof *v1) == 0;
    free(v1);
    free(v2);
    if (!same) {
        cf_fail(c, "defaults do not apply: leaving attributes out gives another result than "
                   "spelling out their defaults");
        cf_expect(c, "%s(%s) == %s(%s)", c->layer->name, c->layer->attr_text, c->layer->name, full);
        cf_found(c, "different outputs for the same seed and input");
        goto done;
    }
    cf_pass(c, "only required attributes work; %d default(s) apply", n_opt);
done:
    lam_tensor_release(x);
    lam_tensor_release(y1);
    lam_tensor_release(y2);
    lam_block_release(b1);
    lam_block_release(b2);
}

static void check_attr_unknown(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    char attrs[1200];
    snprintf(attrs, sizeof attrs, "%s%sconform_no_such_attribute=1", c->layer->attr_text,
             c->layer->attr_text[0] ? ", " : "");
    lam_block *b = NULL;
    lam_status st = lam_layer_create(c->layer->name, attrs, &b);
    if (st == LAM_OK) {
        lam_block_release(b);
        cf_fail(c, "an unknown attribute was accepted");
        cf_expect(c, "LAM_ERR_INVALID_ARGUMENT listing the valid attributes");
        cf_found(c, "LAM_OK for \"%s\"", attrs);
        return;
    }
    const char *msg = lam_last_error();
    for (uint32_t i = 0; i < c->layer->n_attrs; i++) {
        if (strstr(msg, c->layer->attrs[i].name) == NULL) {
            cf_fail(c, "the error does not list the valid attribute '%s'", c->layer->attrs[i].name);
            cf_expect(c, "a message naming every valid attribute");
            cf_found(c, "%s", cf_errtext(st));
            return;
        }
    }
    if (st != LAM_ERR_INVALID_ARGUMENT || strstr(msg, "conform_no_such_attribute") == NULL) {
        cf_fail(c, "wrong error for an unknown attribute");
        cf_expect(c, "invalid argument naming 'conform_no_such_attribute'");
        cf_found(c, "%s", cf_errtext(st));
        return;
    }
    cf_pass(c, "rejected: %s", msg);
}

static void check_attr_bad_value(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    int tested = 0;
    for (uint32_t i = 0; i < c->layer->n_attrs; i++) {
        const cf_attr *a = &c->layer->attrs[i];
        const char *bad = a->type == LAM_ATTR_INT     ? "2.5x"
                          : a->type == LAM_ATTR_FLOAT ? "not_a_number"
                          : a->type == LAM_ATTR_BOOL  ? "maybe"
                          : a->type == LAM_ATTR_ENUM  ? "conform_no_such_choice"
                                                      : NULL;
        if (bad == NULL) {
            continue;
        }
        /* The attribute's bad value, then the other attributes (the first value wins a
         * repeat, so a user's value for this attribute is dropped). */
        char attrs[1400];
        snprintf(attrs, sizeof attrs, "%s=%s", a->name, bad);
        const char *p = c->layer->attr_text;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            while (len > 0 && *p == ' ') {
                p++;
                len--;
            }
            size_t nl = strlen(a->name);
            if (!(len > nl && strncmp(p, a->name, nl) == 0 && (p[nl] == '=' || p[nl] == ' '))) {
                size_t n = strlen(attrs);
                snprintf(attrs + n, sizeof attrs - n, ", %.*s", (int)len, p);
            }
            p += len + (comma ? 1 : 0);
        }
        lam_block *b = NULL;
        lam_status st = lam_layer_create(c->layer->name, attrs, &b);
        tested++;
        if (st == LAM_OK) {
            lam_block_release(b);
            cf_fail(c, "bad value for '%s' accepted", a->name);
            cf_expect(c, "LAM_ERR_INVALID_ARGUMENT for %s=%s", a->name, bad);
            cf_found(c, "LAM_OK for \"%s\"", attrs);
            return;
        }
        if (st != LAM_ERR_INVALID_ARGUMENT) {
            cf_fail(c, "wrong status for a bad value of '%s'", a->name);
            cf_expect(c, "invalid argument");
            cf_found(c, "%s", cf_errtext(st));
            return;
        }
    }
    if (tested == 0) {
        cf_skip(c, "no INT, FLOAT, BOOL or ENUM attribute to give a bad value");
        return;
    }
    cf_pass(c, "%d bad value(s) rejected", tested);
}

/* Every choice of every ENUM attribute makes a working instance. */
static void check_attr_enum(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    int tested = 0;
    for (uint32_t i = 0; i < c->layer->n_attrs && !cf_failed(c); i++) {
        const cf_attr *a = &c->layer->attrs[i];
        if (a->type != LAM_ATTR_ENUM || user_sets(c, a->name)) {
            continue;
        }
        const char *ch = a->choices;
        while (*ch && !cf_failed(c)) {
            const char *bar = strchr(ch, '|');
            int len = bar ? (int)(bar - ch) : (int)strlen(ch);
            char attrs[1400];
            snprintf(attrs, sizeof attrs, "%s=%.*s", a->name, len, ch);
            const char *p = c->layer->attr_text;
            size_t nl = strlen(a->name);
            while (*p) {
                const char *comma = strchr(p, ',');
                size_t l2 = comma ? (size_t)(comma - p) : strlen(p);
                while (l2 > 0 && *p == ' ') {
                    p++;
                    l2--;
                }
                if (!(l2 > nl && strncmp(p, a->name, nl) == 0 && (p[nl] == '=' || p[nl] == ' '))) {
                    size_t n = strlen(attrs);
                    snprintf(attrs + n, sizeof attrs - n, ", %.*s", (int)l2, p);
                }
                p += l2 + (comma ? 1 : 0);
            }
            lam_block *b = NULL;
            lam_tensor *x = NULL, *y = NULL;
            lam_status st = cf_make_layer(c, attrs, ctx, NULL, &b);
            if (st == LAM_OK) {
                st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 3, -1.0f, 1.0f, &x);
            }
            if (st == LAM_OK) {
                st = cf_forward1(c, b, x, &y);
            }
            if (st != LAM_OK) {
                cf_fail(c, "choice %s=%.*s does not work", a->name, len, ch);
                cf_expect(c, "create and forward succeed with \"%s\"", attrs);
                cf_found(c, "%s", cf_errtext(st));
            }
            tested++;
            lam_tensor_release(x);
            lam_tensor_release(y);
            lam_block_release(b);
            ch += len + (bar ? 1 : 0);
        }
    }
    if (!cf_failed(c)) {
        if (tested == 0) {
            cf_skip(c, "no ENUM attribute");
        } else {
            cf_pass(c, "%d enum choice(s) each create a working instance", tested);
        }
    }
}

/* ---- parameters ---- */

static void check_params(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_block *b1 = NULL, *b2 = NULL;
    lam_param_list *l1 = NULL, *l2 = NULL;
    lam_status st = lam_layer_create(c->layer->name, c->layer->attr_text, &b1);
    if (st == LAM_OK) {
        st = lam_layer_create(c->layer->name, c->layer->attr_text, &b2);
    }
    if (st == LAM_OK) {
        st = lam_block_params(b1, &l1);
    }
    if (st == LAM_OK) {
        st = lam_block_params(b2, &l2);
    }
    if (st != LAM_OK) {
        cf_fail(c, "%s", cf_errtext(st));
        goto done;
    }
    size_t n = lam_param_list_count(l1);
    if (n != lam_param_list_count(l2)) {
        cf_fail(c, "two instances declare different numbers of parameters");
        cf_expect(c, "%zu", n);
        cf_found(c, "%zu", lam_param_list_count(l2));
        goto done;
    }
    char names[1024] = "";
    for (size_t i = 0; i < n; i++) {
        const char *k1 = lam_param_list_key(l1, i), *k2 = lam_param_list_key(l2, i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(k1, lam_param_list_key(l1, j)) == 0) {
                cf_fail(c, "parameter name '%s' declared twice", k1);
                goto done;
            }
        }
        if (strcmp(k1, k2) != 0) {
            cf_fail(c, "parameter names are not stable across instances");
            cf_expect(c, "parameter %zu named '%s' in both instances", i, k1);
            cf_found(c, "'%s' in the second", k2);
            goto done;
        }
        const char *d1 = lam_param_name(lam_param_list_get(l1, i));
        const char *d2 = lam_param_name(lam_param_list_get(l2, i));
        if (strcmp(d1, d2) == 0) {
            cf_fail(c, "two instances share the display name %s", d1);
            goto done;
        }
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", k1);
    }
    cf_pass(c, "%zu parameter(s), unique and stable: %s", n, n ? names : "none");
done:
    lam_param_list_destroy(l1);
    lam_param_list_destroy(l2);
    lam_block_release(b1);
    lam_block_release(b2);
}

/* ---- shapes ---- */

/* Copies the parenthesized shape text at p ("(2, 3)") into buf. */
static void paren(const char *p, char *buf, size_t cap) {
    const char *e = p != NULL && *p == '(' ? strchr(p, ')') : NULL;
    if (e != NULL) {
        snprintf(buf, cap, "%.*s", (int)(e - p + 1), p);
    }
}

static void check_shape(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    const lam_shape base = c->layer->inputs[0];
    lam_shape shapes[8];
    int n = 0;
    const int64_t batches[] = {1, 2, 7};
    for (int i = 0; i < 3; i++) {
        shapes[n] = base;
        shapes[n].dims[0] = base.ndim > 1 ? batches[i] : base.dims[0];
        if (base.ndim == 1 && i > 0) {
            continue;
        }
        n++;
    }
    int must = n; /* the base rank must work; other ranks only when the layer takes them */
    if (base.ndim + 1 <= LAM_MAX_DIMS) {
        lam_shape s = base;
        s.ndim = base.ndim + 1;
        s.dims[base.ndim] = s.dims[base.ndim - 1];
        s.dims[base.ndim - 1] = 2;
        shapes[n++] = s;
    }
    if (base.ndim > 1) {
        lam_shape s = {.ndim = base.ndim - 1};
        for (uint32_t i = 0; i + 1 < base.ndim; i++) {
            s.dims[i] = base.dims[i + 1];
        }
        shapes[n++] = s;
    }
    char ok_list[600] = "";
    for (int i = 0; i < n && !cf_failed(c); i++) {
        lam_block *b = NULL;
        lam_tensor *x = NULL, *y = NULL;
        char s1[160];
        fmt_shape(&shapes[i], s1, sizeof s1);
        lam_status st = cf_make_layer(c, NULL, ctx, NULL, &b);
        if (st == LAM_OK) {
            st = cf_rand_tensor(c, ctx, &shapes[i], 4, -1.0f, 1.0f, &x);
        }
        if (st == LAM_OK) {
            st = cf_forward1(c, b, x, &y);
        }
        if (st == LAM_ERR_INTERNAL && strstr(lam_last_error(), "differs from the inferred")) {
            /* "<name>: Output shape (a) differs from the inferred (b) ..." */
            const char *m = lam_last_error();
            const char *o = strstr(m, "Output shape ");
            const char *inf = strstr(m, "the inferred ");
            char found[200] = "?", expected[200] = "?";
            paren(o ? o + 13 : NULL, found, sizeof found);
            paren(inf ? inf + 13 : NULL, expected, sizeof expected);
            cf_fail(c, "output shape inference disagrees with forward for input %s", s1);
            cf_expect(c, "infer_shape %s (what forward must produce)", expected);
            cf_found(c, "forward produced %s", found);
        } else if (st != LAM_OK && i < must) {
            cf_fail(c, "forward failed on input %s", s1);
            cf_expect(c, "an output");
            cf_found(c, "%s", cf_errtext(st));
        } else if (st == LAM_OK) {
            char s2[160];
            size_t len = strlen(ok_list);
            snprintf(ok_list + len, sizeof ok_list - len, "%s%s->%s", len ? ", " : "", s1,
                     fmt_shape(lam_tensor_shape(y), s2, sizeof s2));
        }
        lam_tensor_release(x);
        lam_tensor_release(y);
        lam_block_release(b);
    }
    if (!cf_failed(c)) {
        cf_pass(c, "inferred shape == forward's: %s", ok_list);
    }
}

static void check_deferred(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    lam_block *b = NULL;
    lam_param_list *l = NULL;
    lam_tensor *x = NULL, *y = NULL;
    lam_status st = cf_make_layer(c, NULL, ctx, NULL, &b);
    if (st == LAM_OK) {
        st = lam_block_params(b, &l);
    }
    if (st != LAM_OK) {
        cf_fail(c, "%s", cf_errtext(st));
        goto done;
    }
    int deferred = 0;
    for (size_t i = 0; i < lam_param_list_count(l); i++) {
        lam_param *p = lam_param_list_get(l, i);
        if (lam_shape_numel(lam_param_shape(p)) >= 0) {
            continue;
        }
        deferred++;
        lam_tensor *d = NULL;
        cf_note(c, "reading deferred parameter %s", lam_param_name(p));
        st = lam_param_data(p, &d);
        if (st != LAM_ERR_DEFERRED_INIT) {
            lam_tensor_release(d);
            cf_fail(c, "reading %s before the first forward did not fail cleanly",
                    lam_param_name(p));
            cf_expect(c, "LAM_ERR_DEFERRED_INIT");
            cf_found(c, "%s", st == LAM_OK ? "LAM_OK" : cf_errtext(st));
            goto done;
        }
    }
    if (deferred == 0) {
        cf_skip(c, "no parameter has unknown dims with these attributes");
        goto done;
    }
    st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 5, -1.0f, 1.0f, &x);
    if (st == LAM_OK) {
        st = cf_forward1(c, b, x, &y);
    }
    if (st != LAM_OK) {
        cf_fail(c, "the first forward failed: %s", cf_errtext(st));
        goto done;
    }
    for (size_t i = 0; i < lam_param_list_count(l); i++) {
        lam_param *p = lam_param_list_get(l, i);
        lam_tensor *d = NULL;
        st = lam_param_data(p, &d);
        char s[160];
        if (st != LAM_OK || lam_shape_numel(lam_param_shape(p)) < 0 ||
            !lam_shape_equal(lam_tensor_shape(d), lam_param_shape(p))) {
            cf_fail(c, "%s not initialized by the first forward", lam_param_name(p));
            cf_expect(c, "data of a known shape");
            cf_found(c, "shape %s, %s", fmt_shape(lam_param_shape(p), s, sizeof s),
                     st == LAM_OK ? "data of another shape" : cf_errtext(st));
            lam_tensor_release(d);
            goto done;
        }
        lam_tensor_release(d);
    }
    cf_pass(c, "%d deferred parameter(s) refused before the first forward, initialized by it",
            deferred);
done:
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_param_list_destroy(l);
    lam_block_release(b);
}

/* Forward once (completing deferred init) and copy every parameter's data. */
static lam_status params_after_forward(cf_ctx *c, lam_block *b, lam_ctx *ctx, float ***vals,
                                       size_t **counts, size_t *n) {
    lam_tensor *x = NULL, *y = NULL;
    lam_param_list *l = NULL;
    lam_status st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 6, -1.0f, 1.0f, &x);
    if (st == LAM_OK) {
        st = cf_forward1(c, b, x, &y);
    }
    if (st == LAM_OK) {
        st = lam_block_params(b, &l);
    }
    *n = st == LAM_OK ? lam_param_list_count(l) : 0;
    *vals = calloc(*n + 1, sizeof **vals);
    *counts = calloc(*n + 1, sizeof **counts);
    for (size_t i = 0; st == LAM_OK && i < *n; i++) {
        lam_tensor *d = NULL;
        st = lam_param_data(lam_param_list_get(l, i), &d);
        if (st == LAM_OK) {
            (*vals)[i] = cf_host_copy(d, &(*counts)[i]);
        }
        lam_tensor_release(d);
    }
    lam_param_list_destroy(l);
    lam_tensor_release(x);
    lam_tensor_release(y);
    return st;
}

static void free_vals(float **v, size_t *counts, size_t n) {
    for (size_t i = 0; v && i < n; i++) {
        free(v[i]);
    }
    free(v);
    free(counts);
}

static void check_init_deterministic(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    lam_block *b1 = NULL, *b2 = NULL;
    float **v1 = NULL, **v2 = NULL;
    size_t *c1 = NULL, *c2 = NULL, n1 = 0, n2 = 0;
    lam_seed(c->opt->seed);
    lam_status st = cf_make_layer(c, NULL, ctx, NULL, &b1);
    if (st == LAM_OK) {
        st = params_after_forward(c, b1, ctx, &v1, &c1, &n1);
    }
    lam_seed(c->opt->seed + 1); /* something else in between must not matter */
    lam_seed(c->opt->seed);
    if (st == LAM_OK) {
        st = cf_make_layer(c, NULL, ctx, NULL, &b2);
    }
    if (st == LAM_OK) {
        st = params_after_forward(c, b2, ctx, &v2, &c2, &n2);
    }
    if (st != LAM_OK) {
        cf_fail(c, "%s", cf_errtext(st));
    } else if (n1 == 0) {
        cf_skip(c, "the layer has no parameters");
    } else {
        for (size_t i = 0; i < n1 && !cf_failed(c); i++) {
            if (i >= n2 || c1[i] != c2[i] || !v1[i] || !v2[i] ||
                memcmp(v1[i], v2[i], c1[i] * sizeof(float)) != 0) {
                size_t k = 0;
                while (i < n2 && v1[i] && v2[i] && k < c1[i] && k < c2[i] &&
                       memcmp(&v1[i][k], &v2[i][k], sizeof(float)) == 0) {
                    k++;
                }
                cf_fail(c,
                        "initial values of parameter %zu differ between two instances with "
                        "seed %llu",
                        i, (unsigned long long)c->opt->seed);
                cf_expect(c, "element %zu = %.9g (first instance)", k,
                          v1[i] && k < c1[i] ? (double)v1[i][k] : 0.0);
                cf_found(c, "%.9g (second instance)",
                         i < n2 && v2[i] && k < c2[i] ? (double)v2[i][k] : 0.0);
            }
        }
        if (!cf_failed(c)) {
            cf_pass(c, "%zu parameter(s) bit-identical for seed %llu", n1,
                    (unsigned long long)c->opt->seed);
        }
    }
    free_vals(v1, c1, n1);
    free_vals(v2, c2, n2);
    lam_block_release(b1);
    lam_block_release(b2);
}

/* ---- serialization ---- */

static void check_serialize(cf_ctx *c) {
    if (lam_block_save_parameters == NULL || lam_block_load_parameters == NULL) {
        cf_skip(c, "serialization not available in this build");
        return;
    }
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0') {
        tmp = "/tmp";
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/lamina-conform-XXXXXX", tmp);
    int fd = mkstemp(path);
    if (fd < 0) {
        cf_skip(c, "cannot make a temporary file in %s (TMPDIR): %s", tmp, strerror(errno));
        return;
    }
    close(fd);
    lam_block *b1 = NULL, *b2 = NULL;
    lam_tensor *x = NULL, *y1 = NULL, *y2 = NULL;
    float **v1 = NULL, **v2 = NULL;
    size_t *c1 = NULL, *c2 = NULL, n1 = 0, n2 = 0;
    lam_seed(c->opt->seed);
    lam_status st = cf_make_layer(c, NULL, ctx, NULL, &b1);
    if (st == LAM_OK) {
        st = params_after_forward(c, b1, ctx, &v1, &c1, &n1);
    }
    if (st == LAM_OK) {
        cf_note(c, "in lam_block_save_parameters");
        st = lam_block_save_parameters(b1, path);
    }
    lam_seed(c->opt->seed + 12345); /* the fresh instance starts from other values */
    if (st == LAM_OK) {
        st = cf_make_layer(c, NULL, ctx, NULL, &b2);
    }
    if (st == LAM_OK) {
        cf_note(c, "in lam_block_load_parameters");
        lam_load_options lo = LAM_LOAD_OPTIONS_INIT;
        st = lam_block_load_parameters(b2, path, &lo);
    }
    if (st == LAM_OK) {
        st = params_after_forward(c, b2, ctx, &v2, &c2, &n2);
    }
    if (st == LAM_OK) {
        st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 10, -1.0f, 1.0f, &x);
    }
    if (st == LAM_OK) {
        st = cf_forward1(c, b1, x, &y1);
    }
    if (st == LAM_OK) {
        st = cf_forward1(c, b2, x, &y2);
    }
    if (st != LAM_OK) {
        cf_fail(c, "save -> load failed: %s", cf_errtext(st));
        goto done;
    }
    for (size_t i = 0; i < n1 && !cf_failed(c); i++) {
        if (i >= n2 || c1[i] != c2[i] || !v1[i] || !v2[i] ||
            memcmp(v1[i], v2[i], c1[i] * sizeof(float)) != 0) {
            cf_fail(c, "parameter %zu differs after save -> load", i);
            cf_expect(c, "bit-identical data");
            cf_found(c, "different data");
        }
    }
    if (!cf_failed(c)) {
        size_t na, nb;
        float *a = cf_host_copy(y1, &na), *bb = cf_host_copy(y2, &nb);
        if (!a || !bb || na != nb || memcmp(a, bb, na * sizeof *a) != 0) {
            cf_fail(c, "outputs differ after save -> load");
            cf_expect(c, "bit-identical outputs");
            cf_found(c, "different outputs");
        }
        free(a);
        free(bb);
    }
    if (!cf_failed(c)) {
        cf_pass(c, "%zu parameter(s) and the output bit-exact after save -> load", n1);
    }
done:
    unlink(path);
    free_vals(v1, c1, n1);
    free_vals(v2, c2, n2);
    lam_tensor_release(x);
    lam_tensor_release(y1);
    lam_tensor_release(y2);
    lam_block_release(b1);
    lam_block_release(b2);
}

/* ---- bad inputs ---- */

/* An initialized instance (first forward done), then a forward of `bad`. */
static lam_status bad_forward(cf_ctx *c, const lam_shape *bad, int nan, lam_tensor **y,
                              lam_block **bo) {
    lam_ctx *ctx = cf_cpu_ctx();
    lam_block *b = NULL;
    lam_tensor *x0 = NULL, *y0 = NULL, *x = NULL;
    lam_status st = cf_make_layer(c, NULL, ctx, NULL, &b);
    if (st == LAM_OK) {
        st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 11, -1.0f, 1.0f, &x0);
    }
    if (st == LAM_OK) {
        st = cf_forward1(c, b, x0, &y0);
    }
    if (st != LAM_OK) {
        cf_fail(c, "forward of a good input failed: %s", cf_errtext(st));
    } else {
        st = cf_rand_tensor(c, ctx, bad, 12, -1.0f, 1.0f, &x);
        if (st == LAM_OK && nan) {
            size_t n;
            float *v = cf_host_copy(x, &n);
            if (v != NULL && n > 0) {
                v[0] = NAN;
                st = lam_tensor_write(x, v, n);
            }
            free(v);
        }
        if (st == LAM_OK) {
            lam_clear_error();
            st = cf_forward1(c, b, x, y);
        } else {
            cf_fail(c, "cannot make the input: %s", cf_errtext(st));
        }
    }
    lam_tensor_release(x0);
    lam_tensor_release(y0);
    lam_tensor_release(x);
    *bo = b;
    return st;
}

static void check_bad_rank(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    const lam_shape base = c->layer->inputs[0];
    lam_shape shapes[3];
    int n = 0;
    shapes[n++] = (lam_shape){.ndim = 0};
    if (base.ndim != 1) {
        shapes[n++] = (lam_shape){.ndim = 1, .dims = {base.dims[base.ndim - 1]}};
    }
    lam_shape big = {.ndim = LAM_MAX_DIMS};
    for (int i = 0; i < LAM_MAX_DIMS; i++) {
        big.dims[i] = i < 2 ? 2 : 1;
    }
    big.dims[LAM_MAX_DIMS - 1] = base.dims[base.ndim - 1];
    shapes[n++] = big;
    char summary[800] = "";
    for (int i = 0; i < n && !cf_failed(c); i++) {
        lam_tensor *y = NULL;
        lam_block *b = NULL;
        char s[160];
        fmt_shape(&shapes[i], s, sizeof s);
        lam_status st = bad_forward(c, &shapes[i], 0, &y, &b);
        char what[200];
        snprintf(what, sizeof what, "forward of an input of rank %u %s", shapes[i].ndim, s);
        if (!cf_failed(c) && cf_require_message(c, st, what)) {
            /* failed */
        } else if (!cf_failed(c) && st == LAM_ERR_INTERNAL) {
            cf_fail(c, "input of rank %u %s: internal error (a plugin bug)", shapes[i].ndim, s);
            cf_expect(c, "a shape error or an output");
            cf_found(c, "%s", cf_errtext(st));
        }
        size_t len = strlen(summary);
        snprintf(summary + len, sizeof summary - len, "%s%s: %.200s", len ? "; " : "", s,
                 st == LAM_OK ? "accepted" : lam_last_error());
        lam_tensor_release(y);
        lam_block_release(b);
    }
    if (!cf_failed(c)) {
        cf_pass(c, "%s", summary);
    }
}

static void check_bad_features(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_shape bad = c->layer->inputs[0];
    int64_t f = bad.dims[bad.ndim - 1];
    bad.dims[bad.ndim - 1] = f + 1;
    lam_tensor *y = NULL;
    lam_block *b = NULL;
    lam_param_list *l = NULL;
    lam_status st = bad_forward(c, &bad, 0, &y, &b);
    if (cf_failed(c)) {
        goto done;
    }
    /* Must the layer refuse it? When a parameter has a dimension equal to the feature size. */
    int tied = 0;
    if (lam_block_params(b, &l) == LAM_OK) {
        for (size_t i = 0; i < lam_param_list_count(l); i++) {
            const lam_shape *ps = lam_param_shape(lam_param_list_get(l, i));
            for (uint32_t d = 0; d < ps->ndim; d++) {
                tied = tied || ps->dims[d] == f;
            }
        }
    }
    char s[160];
    fmt_shape(&bad, s, sizeof s);
    char what[200];
    snprintf(what, sizeof what, "forward of input %s after %lld features", s, (long long)f);
    if (cf_require_message(c, st, what)) {
        /* failed */
    } else if (st == LAM_ERR_INTERNAL) {
        cf_fail(c, "input %s after initializing with %lld features: internal error", s,
                (long long)f);
        cf_expect(c, "a shape error naming the parameter");
        cf_found(c, "%s", cf_errtext(st));
    } else if (st == LAM_OK && tied) {
        cf_fail(c, "input %s accepted after the parameters were shaped for %lld features", s,
                (long long)f);
        cf_expect(c, "LAM_ERR_SHAPE");
        cf_found(c, "LAM_OK");
    } else {
        cf_pass(c, "input %s after %lld features: %s", s, (long long)f,
                st == LAM_OK ? "accepted (no parameter depends on it)" : lam_last_error());
    }
done:
    lam_param_list_destroy(l);
    lam_tensor_release(y);
    lam_block_release(b);
}

static void check_zero_batch(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_shape zero = c->layer->inputs[0];
    zero.dims[0] = 0;
    lam_tensor *y = NULL;
    lam_block *b = NULL;
    lam_status st = bad_forward(c, &zero, 0, &y, &b);
    if (!cf_failed(c)) {
        char s[160], s2[160];
        if (cf_require_message(c, st, "forward of a zero-size batch")) {
            /* failed */
        } else if (st == LAM_ERR_INTERNAL) {
            cf_fail(c, "zero-size batch %s: internal error", fmt_shape(&zero, s, sizeof s));
            cf_expect(c, "an error or an empty output");
            cf_found(c, "%s", cf_errtext(st));
        } else if (st == LAM_OK && lam_tensor_numel(y) != 0 && zero.ndim > 1) {
            cf_fail(c, "zero-size batch %s gave a non-empty output", fmt_shape(&zero, s, sizeof s));
            cf_expect(c, "an output with 0 elements");
            cf_found(c, "%s", fmt_shape(lam_tensor_shape(y), s2, sizeof s2));
        } else {
            cf_pass(c, "%s: %s", fmt_shape(&zero, s, sizeof s),
                    st == LAM_OK ? fmt_shape(lam_tensor_shape(y), s2, sizeof s2)
                                 : lam_status_string(st));
        }
    }
    lam_tensor_release(y);
    lam_block_release(b);
}

static void check_nan(cf_ctx *c) {
    if (cf_input_is_index(c->layer, 0)) {
        cf_skip(c, "not judged: input 0 holds integer indices (its example says so), no NaN");
        return;
    }
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_tensor *y = NULL;
    lam_block *b = NULL;
    lam_status st = bad_forward(c, &c->layer->inputs[0], 1, &y, &b);
    if (!cf_failed(c) && !cf_require_message(c, st, "forward of a NaN input")) {
        if (st == LAM_ERR_INTERNAL) {
            cf_fail(c, "NaN input: internal error");
            cf_expect(c, "an error or an output");
            cf_found(c, "%s", cf_errtext(st));
        } else if (st != LAM_OK) {
            cf_pass(c, "NaN input refused: %s", lam_last_error());
        } else {
            size_t n;
            float *v = cf_host_copy(y, &n);
            int nans = 0;
            for (size_t i = 0; v && i < n; i++) {
                nans += isnan(v[i]) != 0;
            }
            free(v);
            if (nans == 0 && n > 0) {
                /* A NaN that vanishes hides a broken input: the result looks valid. */
                cf_fail(c, "NaN input gives an output without any NaN");
                cf_expect(c, "NaN in the output (propagated) or an error");
                cf_found(c, "%zu finite element(s), no NaN", n);
            } else {
                cf_pass(c, "NaN input gives an output with %d NaN element(s) of %zu", nans, n);
            }
        }
    }
    lam_tensor_release(y);
    lam_block_release(b);
}

void cf_layer_checks(const cf_layer *layer) {
    static const struct {
        const char *suffix;
        cf_fn fn;
    } list[] = {
        {"setup", check_setup},
        {"attrs.defaults", check_attr_defaults},
        {"attrs.unknown", check_attr_unknown},
        {"attrs.bad_value", check_attr_bad_value},
        {"attrs.enum_choices", check_attr_enum},
        {"attrs.effect", cf_check_attr_effect},
        {"params.names", check_params},
        {"shape.infer", check_shape},
        {"deferred_init", check_deferred},
        {"init.deterministic", check_init_deterministic},
        {"errors", cf_check_errors},
        {"inputs_unchanged", cf_check_inputs_unchanged},
        {"grad.finite_diff", cf_check_grad_fd},
        {"grad.fused", cf_check_grad_fused},
        {"serialize.roundtrip", check_serialize},
        {"bad_input.rank", check_bad_rank},
        {"bad_input.features", check_bad_features},
        {"bad_input.zero_batch", check_zero_batch},
        {"bad_input.nan", check_nan},
        {"backends", cf_check_backends},
        {"leaks", cf_check_leaks},
        {"leaks.alloc_failure", cf_check_alloc_sweep},
        {"bounds", cf_check_bounds},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s.%s", layer->name, list[i].suffix);
        cf_add(name, list[i].fn, layer, NULL, 0);
    }
}
