/*
 * conform_layer_contract.c - layer checks of the calling contract rather than the maths:
 * success leaves no error behind, inputs are not modified, and every attribute of the schema
 * has an effect (or is declared cosmetic).
 */
#define _GNU_SOURCE
#include "conform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A layer may declare an attribute that changes neither outputs nor parameters (a label, a
 * verbosity) by starting its schema doc with this marker; attrs.effect then skips it. */
#define CF_COSMETIC "(cosmetic)"

/* ---- errors: a successful call sets no error ---- */

/* Forward (recorded) and backward (fused when the layer has one) of one input; with the
 * thread's message cleared before each, a call that returns LAM_OK must leave it empty. */
void cf_check_errors(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    lam_block *b = NULL;
    lam_tensor *x = NULL, *y = NULL;
    lam_status st = cf_make_layer(c, NULL, ctx, NULL, &b);
    if (st == LAM_OK) {
        st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 20, -1.0f, 1.0f, &x);
    }
    if (st == LAM_OK) {
        st = lam_tensor_attach_grad(x);
    }
    if (st != LAM_OK) {
        cf_fail(c, "%s", cf_errtext(st));
        goto done;
    }
    lam_autograd_set_fused_backward(1);
    int was = lam_autograd_set_recording(1);
    lam_clear_error();
    st = cf_forward1(c, b, x, &y);
    lam_autograd_set_recording(was);
    if (st != LAM_OK) {
        if (!cf_require_message(c, st, "forward")) {
            cf_fail(c, "forward failed: %s", cf_errtext(st));
        }
        goto done;
    }
    if (lam_last_error()[0] != '\0') {
        cf_fail(c, "forward returned LAM_OK but set an error message");
        cf_expect(c, "LAM_OK leaves lam_last_error() as it was (empty here): an error is "
                     "reported by returning its status");
        cf_found(c, "LAM_OK and \"%s\"", lam_last_error());
        goto done;
    }
    lam_clear_error();
    cf_note(c, "in backward of %s%s", lam_block_name(b), c->layer->has_backward ? " (fused)" : "");
    st = lam_autograd_backward(y, NULL);
    cf_note(c, "after backward");
    if (st != LAM_OK) {
        if (!cf_require_message(c, st, "backward")) {
            cf_fail(c, "backward failed: %s", cf_errtext(st));
        }
        goto done;
    }
    if (lam_last_error()[0] != '\0') {
        cf_fail(c, "backward%s returned LAM_OK but set an error message",
                c->layer->has_backward ? " (fused)" : "");
        cf_expect(c, "LAM_OK leaves lam_last_error() empty");
        cf_found(c, "LAM_OK and \"%s\"", lam_last_error());
        goto done;
    }
    cf_pass(c, "forward and %s backward return LAM_OK without setting an error",
            c->layer->has_backward ? "fused" : "differentiated");
done:
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

/* ---- inputs are left unchanged ---- */

static int same_bits(const float *a, const float *b, size_t n, size_t *at) {
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            *at = i;
            return 0;
        }
    }
    return 1;
}

void cf_check_inputs_unchanged(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    lam_block *b = NULL;
    lam_tensor *x = NULL, *y = NULL;
    float *before = NULL, *after = NULL;
    size_t n = 0, n2 = 0;
    lam_status st = cf_make_layer(c, NULL, ctx, NULL, &b);
    if (st == LAM_OK) {
        st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 21, -1.0f, 1.0f, &x);
    }
    if (st == LAM_OK) {
        st = lam_tensor_attach_grad(x);
    }
    if (st == LAM_OK) {
        before = cf_host_copy(x, &n);
        int was = lam_autograd_set_recording(1);
        st = cf_forward1(c, b, x, &y);
        lam_autograd_set_recording(was);
    }
    if (st != LAM_OK || before == NULL) {
        cf_fail(c, "forward failed: %s", cf_errtext(st));
        goto done;
    }
    size_t at = 0;
    after = cf_host_copy(x, &n2);
    if (after == NULL || n2 != n || !same_bits(before, after, n, &at)) {
        cf_fail(c, "forward modified its input");
        cf_expect(c, "input[%zu] = %.9g, as given", at, (double)before[at]);
        cf_found(c, "%.9g after forward", after ? (double)after[at] : 0.0);
        goto done;
    }
    cf_note(c, "in backward of %s", lam_block_name(b));
    st = lam_autograd_backward(y, NULL);
    free(after);
    after = cf_host_copy(x, &n2);
    if (st != LAM_OK) {
        cf_fail(c, "backward failed: %s", cf_errtext(st));
    } else if (after == NULL || n2 != n || !same_bits(before, after, n, &at)) {
        cf_fail(c, "backward modified the layer's input");
        cf_expect(c, "input[%zu] = %.9g, as given", at, (double)before[at]);
        cf_found(c, "%.9g after backward", after ? (double)after[at] : 0.0);
    } else {
        cf_pass(c, "%zu input element(s) bit-identical after forward and backward", n);
    }
done:
    free(before);
    free(after);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

/* ---- every attribute has an effect ---- */

/* What an instance does: its declared parameter shapes, its output and its parameters after
 * a forward of the same input with the same seed. */
typedef struct footprint {
    char shapes[600];
    float *out;
    size_t n_out;
    float *params;
    size_t n_params;
} footprint;

static void footprint_free(footprint *f) {
    free(f->out);
    free(f->params);
    memset(f, 0, sizeof *f);
}

/* Some attributes act only on other ranks (Dense's flatten on (N, A, B)): a fresh instance's
 * output for the input with an axis of 2 inserted after the batch axis joins the footprint
 * (its status when it fails). */
static void extra_rank(cf_ctx *c, const char *attrs, footprint *f) {
    const lam_shape *in = &c->layer->inputs[0];
    if (in->ndim < 1 || in->ndim >= LAM_MAX_DIMS) {
        return;
    }
    lam_shape ext = {.ndim = in->ndim + 1};
    ext.dims[0] = in->dims[0];
    ext.dims[1] = 2;
    for (uint32_t i = 1; i < in->ndim; i++) {
        ext.dims[i + 1] = in->dims[i];
    }
    lam_ctx *ctx = cf_cpu_ctx();
    lam_block *b = NULL;
    lam_tensor *x = NULL, *y = NULL;
    lam_seed(c->opt->seed);
    lam_status st = cf_make_layer(c, attrs, ctx, NULL, &b);
    if (st == LAM_OK) {
        st = cf_rand_tensor(c, ctx, &ext, 23, -1.0f, 1.0f, &x);
    }
    if (st == LAM_OK) {
        st = cf_forward1(c, b, x, &y);
    }
    size_t len = strlen(f->shapes);
    char s[160];
    snprintf(
        f->shapes + len, sizeof f->shapes - len, "; on %s: %s", lam_shape_format(&ext, s, sizeof s),
        st == LAM_OK ? lam_shape_format(lam_tensor_shape(y), s, sizeof s) : lam_status_string(st));
    if (st == LAM_OK) {
        size_t n = 0;
        float *v = cf_host_copy(y, &n);
        float *all = v ? realloc(f->out, (f->n_out + n + 1) * sizeof *all) : NULL;
        if (all != NULL) {
            memcpy(all + f->n_out, v, n * sizeof *v);
            f->out = all;
            f->n_out += n;
        }
        free(v);
    }
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
}

static void append_floats(float **all, size_t *n_all, const lam_tensor *t) {
    size_t n = 0;
    float *v = cf_host_copy(t, &n);
    float *grown = v ? realloc(*all, (*n_all + n + 1) * sizeof *grown) : NULL;
    if (grown != NULL) {
        memcpy(grown + *n_all, v, n * sizeof *v);
        *all = grown;
        *n_all += n;
    }
    free(v);
}

/* Some attributes act only in training (BatchNorm's momentum, use_global_stats): a fresh
 * instance's training output, its inference output after it and its parameters then (running
 * statistics) join the footprint. Not for a stochastic layer, whose training outputs differ
 * between instances anyway. */
static void train_forward(cf_ctx *c, const char *attrs, footprint *f) {
    if (c->layer->flags & LAM_LAYER_STOCHASTIC) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    lam_block *b = NULL;
    lam_tensor *x = NULL, *y = NULL, *y2 = NULL;
    lam_param_list *l = NULL;
    lam_seed(c->opt->seed);
    lam_status st = cf_make_layer(c, attrs, ctx, NULL, &b);
    if (st == LAM_OK) {
        st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 24, -1.0f, 1.0f, &x);
    }
    if (st == LAM_OK) {
        int mode = lam_autograd_train_mode_begin(1);
        st = cf_forward1(c, b, x, &y);
        lam_autograd_train_mode_end(mode);
    }
    if (st == LAM_OK) {
        int mode = lam_autograd_train_mode_begin(0);
        st = cf_forward1(c, b, x, &y2);
        lam_autograd_train_mode_end(mode);
    }
    size_t len = strlen(f->shapes);
    snprintf(f->shapes + len, sizeof f->shapes - len, "; in training: %s", lam_status_string(st));
    if (st == LAM_OK) {
        append_floats(&f->out, &f->n_out, y);
        append_floats(&f->out, &f->n_out, y2);
        st = lam_block_params(b, &l);
    }
    for (size_t i = 0; st == LAM_OK && i < lam_param_list_count(l); i++) {
        lam_tensor *d = NULL;
        if (lam_param_data(lam_param_list_get(l, i), &d) == LAM_OK) {
            append_floats(&f->params, &f->n_params, d);
        }
        lam_tensor_release(d);
    }
    lam_param_list_destroy(l);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_tensor_release(y2);
    lam_block_release(b);
}

static lam_status take_footprint(cf_ctx *c, const char *attrs, footprint *f) {
    memset(f, 0, sizeof *f);
    lam_ctx *ctx = cf_cpu_ctx();
    lam_block *b = NULL;
    lam_tensor *x = NULL, *y = NULL;
    lam_param_list *l = NULL;
    lam_seed(c->opt->seed);
    lam_status st = lam_layer_create(c->layer->name, attrs, &b);
    if (st == LAM_OK) {
        st = lam_block_params(b, &l);
    }
    for (size_t i = 0; st == LAM_OK && i < lam_param_list_count(l); i++) {
        char s[160];
        size_t len = strlen(f->shapes);
        snprintf(f->shapes + len, sizeof f->shapes - len, "%s%s%s", len ? ", " : "",
                 lam_param_list_key(l, i),
                 lam_shape_format(lam_param_shape(lam_param_list_get(l, i)), s, sizeof s));
    }
    lam_param_list_destroy(l);
    l = NULL;
    if (st == LAM_OK) {
        st = lam_block_initialize(b, NULL, ctx, 0);
    }
    if (st == LAM_OK) {
        st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 22, -1.0f, 1.0f, &x);
    }
    if (st == LAM_OK) {
        st = cf_forward1(c, b, x, &y);
    }
    if (st == LAM_OK) {
        f->out = cf_host_copy(y, &f->n_out);
        st = lam_block_params(b, &l);
    }
    for (size_t i = 0; st == LAM_OK && i < lam_param_list_count(l); i++) {
        lam_tensor *d = NULL;
        if (lam_param_data(lam_param_list_get(l, i), &d) != LAM_OK) {
            continue;
        }
        size_t n = 0;
        float *v = cf_host_copy(d, &n);
        float *all = v ? realloc(f->params, (f->n_params + n + 1) * sizeof *all) : NULL;
        if (all != NULL) {
            memcpy(all + f->n_params, v, n * sizeof *v);
            f->params = all;
            f->n_params += n;
        }
        free(v);
        lam_tensor_release(d);
    }
    lam_param_list_destroy(l);
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
    if (st == LAM_OK) {
        extra_rank(c, attrs, f);
        train_forward(c, attrs, f);
    }
    return st;
}

static int footprints_differ(const footprint *a, const footprint *b) {
    return strcmp(a->shapes, b->shapes) != 0 || a->n_out != b->n_out ||
           a->n_params != b->n_params ||
           (a->n_out && memcmp(a->out, b->out, a->n_out * sizeof(float)) != 0) ||
           (a->n_params && memcmp(a->params, b->params, a->n_params * sizeof(float)) != 0);
}

/* The value attrs gives `name` ("" when it is not spelled out). */
static void value_in(const char *attrs, const char *name, char *out, size_t cap) {
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = attrs; p && *p;) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *e = strchr(p, ',');
            snprintf(out, cap, "%.*s", (int)(e ? e - (p + nl + 1) : (long)strlen(p + nl + 1)),
                     p + nl + 1);
            return;
        }
        p = strchr(p, ',');
    }
}

/* Other valid values of an attribute than `cur`, '\n'-separated, most telling first. */
static void other_values(const cf_attr *a, const char *cur, int64_t features, char *out,
                         size_t cap) {
    out[0] = '\0';
    switch (a->type) {
    case LAM_ATTR_INT: {
        long long v = strtoll(cur, NULL, 10);
        snprintf(out, cap, "%lld\n%lld\n%lld\n1\n3\n%lld", (long long)features, v + 1, 2 * v + 2,
                 v > 1 ? v - 1 : 5);
        break;
    }
    case LAM_ATTR_FLOAT: {
        double v = strtod(cur, NULL);
        snprintf(out, cap, "%g\n%g\n0.25\n0.75\n%g", v + 0.5, v * 2 + 0.25, v / 2);
        break;
    }
    case LAM_ATTR_BOOL: {
        int on = strcmp(cur, "true") == 0 || strcmp(cur, "1") == 0;
        snprintf(out, cap, "%s", on ? "false" : "true");
        break;
    }
    case LAM_ATTR_ENUM:
        for (const char *ch = a->choices; *ch;) {
            const char *bar = strchr(ch, '|');
            int len = bar ? (int)(bar - ch) : (int)strlen(ch);
            size_t n = strlen(out);
            snprintf(out + n, cap - n, "%.*s\n", len, ch);
            ch += len + (bar ? 1 : 0);
        }
        break;
    default:
        break;
    }
}

void cf_check_attr_effect(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    footprint base;
    lam_status st = take_footprint(c, c->layer->attr_text, &base);
    if (st != LAM_OK) {
        cf_fail(c, "forward with the setup's attributes failed: %s", cf_errtext(st));
        footprint_free(&base);
        return;
    }
    const lam_shape *in = &c->layer->inputs[0];
    int64_t features = in->ndim ? in->dims[in->ndim - 1] : 1;
    char effective[600] = "", skipped[900] = "";
    for (uint32_t i = 0; i < c->layer->n_attrs && !cf_failed(c); i++) {
        const cf_attr *a = &c->layer->attrs[i];
        size_t sl = strlen(skipped);
        if (strncmp(a->doc, CF_COSMETIC, strlen(CF_COSMETIC)) == 0) {
            snprintf(skipped + sl, sizeof skipped - sl, "%s%s (declared cosmetic)", sl ? "; " : "",
                     a->name);
            continue;
        }
        if (a->type == LAM_ATTR_STRING) {
            snprintf(skipped + sl, sizeof skipped - sl, "%s%s (STRING: no other value known)",
                     sl ? "; " : "", a->name);
            continue;
        }
        char cur[160];
        value_in(c->layer->attr_text, a->name, cur, sizeof cur);
        if (cur[0] == '\0') {
            snprintf(cur, sizeof cur, "%s", a->def);
        }
        char cands[600];
        other_values(a, cur, features, cands, sizeof cands);
        int worked = 0, changed = 0;
        char tried_ok[300] = "";
        for (char *v = cands; *v && !changed;) {
            char *nl = strchr(v, '\n');
            if (nl) {
                *nl = '\0';
            }
            if (strcmp(v, cur) != 0) {
                char attrs[1400];
                cf_attrs_with(c->layer->attr_text, a->name, v, attrs, sizeof attrs);
                footprint f;
                cf_note(c, "in %s(%s) (attribute effect)", c->layer->name, attrs);
                if (take_footprint(c, attrs, &f) == LAM_OK) {
                    worked++;
                    changed = footprints_differ(&base, &f);
                    size_t tl = strlen(tried_ok);
                    snprintf(tried_ok + tl, sizeof tried_ok - tl, "%s%s=%s", tl ? ", " : "",
                             a->name, v);
                }
                footprint_free(&f);
            }
            v = nl ? nl + 1 : v + strlen(v);
        }
        if (changed) {
            size_t el = strlen(effective);
            snprintf(effective + el, sizeof effective - el, "%s%s", el ? ", " : "", a->name);
        } else if (worked && (c->layer->flags & LAM_LAYER_STOCHASTIC)) {
            /* Outside training a stochastic layer may be the identity (Dropout), and training
             * outputs of two instances draw from two random streams: not judged. */
            snprintf(skipped + sl, sizeof skipped - sl,
                     "%s%s (stochastic layer: no effect outside training, and two instances "
                     "never share random numbers)",
                     sl ? "; " : "", a->name);
        } else if (worked) {
            cf_fail(c,
                    "attribute '%s' has no effect: %s gives the same parameters and output as "
                    "%s=%s",
                    a->name, tried_ok, a->name, cur);
            cf_expect(c,
                      "another output or parameter set for another value of '%s' (or a schema "
                      "doc starting with \"" CF_COSMETIC "\")",
                      a->name);
            cf_found(c, "bit-identical parameter shapes, initial values and output");
        } else {
            snprintf(skipped + sl, sizeof skipped - sl, "%s%s (no other value works here)",
                     sl ? "; " : "", a->name);
        }
    }
    footprint_free(&base);
    if (cf_failed(c)) {
        return;
    }
    if (effective[0] == '\0' && skipped[0] == '\0') {
        cf_skip(c, "the layer has no attributes");
    } else if (effective[0] == '\0') {
        cf_skip(c, "no attribute could be judged: %s", skipped);
    } else {
        cf_pass(c, "each changes the output or the parameters: %s%s%s", effective,
                skipped[0] ? "; not judged: " : "", skipped);
    }
}
