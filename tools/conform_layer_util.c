/*
 * conform_layer_util.c - what the layer check files share: making instances, inputs and host
 * copies, a forward that supplies a layer's other inputs, and the error-message rule. It calls
 * only conform_diag.c and the library.
 */
#define _GNU_SOURCE
#include "conform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lam_ctx *cf_cpu_ctx(void) {
    lam_ctx *x = NULL;
    return lam_ctx_get("cpu", &x) == LAM_OK ? x : NULL;
}

const char *cf_errtext(lam_status st) {
    static char buf[1200];
    snprintf(buf, sizeof buf, "%s: %s", lam_status_string(st), lam_last_error());
    return buf;
}

static char *fmt_shape(const lam_shape *s, char *buf, size_t cap) {
    return lam_shape_format(s, buf, cap);
}

/* A tensor of `shape` on ctx with values from U(lo, hi) of stream `stream`. */
lam_status cf_rand_tensor(const cf_ctx *c, lam_ctx *ctx, const lam_shape *shape, uint64_t stream,
                          float lo, float hi, lam_tensor **out) {
    int64_t n = lam_shape_numel(shape);
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (v == NULL) {
        return lam_set_error(LAM_ERR_OUT_OF_MEMORY, "lamina conform: Out of memory, input data");
    }
    cf_rng r;
    cf_rng_init(&r, c->opt->seed, stream);
    for (int64_t i = 0; i < n; i++) {
        v[i] = cf_rng_uniform(&r, lo, hi);
    }
    lam_status st = lam_tensor_from_data(ctx, shape, v, (size_t)n, out);
    free(v);
    return st;
}

/* A malloc'ed host copy of t's elements. */
float *cf_host_copy(const lam_tensor *t, size_t *count) {
    int64_t n = lam_tensor_numel(t);
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (v != NULL && lam_tensor_read(t, v, (size_t)n) != LAM_OK) {
        free(v);
        v = NULL;
    }
    *count = (size_t)n;
    return v;
}

/* Creates an instance with the setup's attributes (or `attrs`) and initializes it on ctx. */
lam_status cf_make_layer(const cf_ctx *c, const char *attrs, lam_ctx *ctx,
                         const lam_initializer *init, lam_block **out) {
    lam_status st = lam_layer_create(c->layer->name, attrs ? attrs : c->layer->attr_text, out);
    if (st == LAM_OK) {
        st = lam_block_initialize(*out, init, ctx, 0);
        if (st != LAM_OK) {
            lam_block_release(*out);
            *out = NULL;
        }
    }
    return st;
}

int cf_need_setup(cf_ctx *c) {
    if (!c->layer->have_input) {
        cf_skip(c, "no working instance and input (see %s.setup)", c->layer->name);
        return -1;
    }
    return cf_start(c);
}

/* Forward with x as input 0 (the others made here); the host compares the produced shape
 * with infer_shape's. */
lam_status cf_forward1(cf_ctx *c, lam_block *b, lam_tensor *x, lam_tensor **y) {
    char s[160];
    uint32_t n = c->layer->n_inputs > 1 ? c->layer->n_inputs : 1;
    lam_tensor *xs[CF_MAX_INPUTS] = {x};
    lam_status st = LAM_OK;
    int same = lam_shape_equal(lam_tensor_shape(x), &c->layer->inputs[0]);
    for (uint32_t i = 1; i < n && st == LAM_OK; i++) {
        const lam_shape *sh = same ? &c->layer->inputs[i] : lam_tensor_shape(x);
        st = cf_rand_tensor(c, lam_tensor_ctx(x), sh, 1000 + i, -1.0f, 1.0f, &xs[i]);
    }
    if (st == LAM_OK) {
        cf_note(c, "in forward of %s on input %s%s", lam_block_name(b),
                fmt_shape(lam_tensor_shape(x), s, sizeof s), n > 1 ? " and others" : "");
        st = lam_block_forward(b, n, xs, y);
        cf_note(c, "after forward");
    }
    for (uint32_t i = 1; i < n; i++) {
        lam_tensor_release(xs[i]);
    }
    return st;
}

/* The host's stand-ins for a message a plugin did not set (the core's wording has been
 * "No message, the <plugin> plugin's <callback> returned <status>"; issue 12 words it
 * "<layer>: <status> (the plugin set no message)"): either means the plugin set none. */
static int host_stand_in(const char *m) {
    return strstr(m, "(the plugin set no message)") != NULL ||
           (strstr(m, "No message, the ") != NULL && strstr(m, " returned ") != NULL);
}

int cf_require_message(cf_ctx *c, lam_status st, const char *what) {
    const char *m = lam_last_error();
    if (st == LAM_OK || (m[0] != '\0' && !host_stand_in(m))) {
        return 0;
    }
    cf_fail(c, "%s: %s returned without an error message", what, lam_status_string(st));
    cf_expect(c, "an error status with a message set through host->set_error, \"<layer>: "
                 "<Problem>, <details>\"");
    cf_found(c, "%s and %s", lam_status_string(st), m[0] ? m : "an empty lam_last_error()");
    return 1;
}

void cf_attrs_with(const char *attrs, const char *name, const char *value, char *out, size_t cap) {
    snprintf(out, cap, "%s=%s", name, value);
    size_t nl = strlen(name);
    const char *p = attrs;
    while (p != NULL && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        if (len > 0 && !(len > nl && strncmp(p, name, nl) == 0 && (p[nl] == '=' || p[nl] == ' '))) {
            size_t n = strlen(out);
            snprintf(out + n, cap - n, ", %.*s", (int)len, p);
        }
        p += len + (comma ? 1 : 0);
    }
}
