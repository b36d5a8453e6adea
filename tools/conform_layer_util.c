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

const cf_example *cf_example_of(const cf_layer *l, uint32_t k) {
    return l != NULL && k < l->n_examples && k < CF_MAX_INPUTS ? &l->examples[k] : NULL;
}

int cf_input_is_index(const cf_layer *l, uint32_t k) {
    const cf_example *e = cf_example_of(l, k);
    return e != NULL && (e->domain == LAM_DOMAIN_INDEX || e->dtype == LAM_DTYPE_I32 ||
                         e->dtype == LAM_DTYPE_I64);
}

/* The value of attribute `name` in "a=1, b=2" text, or -1. */
static long long attr_int_in(const char *text, const char *name) {
    size_t n = strlen(name);
    for (const char *p = text; p != NULL && *p;) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        if (strncmp(p, name, n) == 0) {
            const char *q = p + n;
            while (*q == ' ') {
                q++;
            }
            if (*q == '=') {
                return strtoll(q + 1, NULL, 10);
            }
        }
        p = strchr(p, ',');
    }
    return -1;
}

/* An index input's bound: its attribute in the instance's attributes, else `high`; >= 1. */
static int64_t index_bound(const cf_ctx *c, const cf_example *e) {
    long long b = -1;
    if (e->bound_attr[0] != '\0') {
        b = attr_int_in(c->layer->attr_text[0] ? c->layer->attr_text : c->res->attr_text,
                        e->bound_attr);
    }
    if (b <= 0) {
        b = (long long)e->high;
    }
    return b > 0 ? (int64_t)b : 1;
}

/*
 * Input k of `shape` on ctx, values of stream `stream`: as the descriptor's example says when
 * it gives one (LAM_DOMAIN_INDEX: I32 integers in [0, bound); REAL / POSITIVE drawn from
 * [low, high] when the caller asks for the default range -1..1), else F32 from U(lo, hi).
 */
lam_status cf_input_tensor(const cf_ctx *c, lam_ctx *ctx, uint32_t k, const lam_shape *shape,
                           uint64_t stream, float lo, float hi, lam_tensor **out) {
    const cf_example *e = cf_example_of(c->layer, k);
    int64_t n = lam_shape_numel(shape);
    cf_rng r;
    cf_rng_init(&r, c->opt->seed, stream);
    if (cf_input_is_index(c->layer, k)) {
        int64_t bound = index_bound(c, e);
        int32_t *iv = malloc((size_t)(n > 0 ? n : 1) * sizeof *iv);
        if (iv == NULL) {
            return lam_set_error(LAM_ERR_OUT_OF_MEMORY,
                                 "lamina conform: Out of memory, input data");
        }
        for (int64_t i = 0; i < n; i++) {
            iv[i] = (int32_t)(cf_rng_next(&r) % (uint64_t)bound);
        }
        lam_status st = lam_tensor_create_dtype(ctx, LAM_DTYPE_I32, shape, out);
        if (st == LAM_OK) {
            st = lam_tensor_write_bytes(*out, iv, (size_t)n * sizeof *iv);
            if (st != LAM_OK) {
                lam_tensor_release(*out);
                *out = NULL;
            }
        }
        free(iv);
        return st;
    }
    if (e != NULL && lo == -1.0f && hi == 1.0f) {
        if (e->low < e->high) {
            lo = (float)e->low;
            hi = (float)e->high;
        } else if (e->domain == LAM_DOMAIN_POSITIVE) {
            lo = 0.1f;
            hi = 1.0f;
        }
        if (e->domain == LAM_DOMAIN_POSITIVE && lo <= 0.0f) {
            lo = 0.1f;
        }
    }
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (v == NULL) {
        return lam_set_error(LAM_ERR_OUT_OF_MEMORY, "lamina conform: Out of memory, input data");
    }
    for (int64_t i = 0; i < n; i++) {
        v[i] = cf_rng_uniform(&r, lo, hi);
    }
    lam_status st = lam_tensor_from_data(ctx, shape, v, (size_t)n, out);
    free(v);
    return st;
}

/* Input 0 (see cf_input_tensor). */
lam_status cf_rand_tensor(const cf_ctx *c, lam_ctx *ctx, const lam_shape *shape, uint64_t stream,
                          float lo, float hi, lam_tensor **out) {
    return cf_input_tensor(c, ctx, 0, shape, stream, lo, hi, out);
}

/* A malloc'ed host copy of t's elements, as floats (integer tensors converted). */
float *cf_host_copy(const lam_tensor *t, size_t *count) {
    int64_t n = lam_tensor_numel(t);
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    lam_dtype dt = lam_tensor_dtype(t);
    if (v != NULL && dt == LAM_DTYPE_I32) {
        int32_t *iv = malloc((size_t)(n > 0 ? n : 1) * sizeof *iv);
        if (iv == NULL || lam_tensor_read_bytes(t, iv, (size_t)n * sizeof *iv) != LAM_OK) {
            free(v);
            v = NULL;
        }
        for (int64_t i = 0; v != NULL && i < n; i++) {
            v[i] = (float)iv[i];
        }
        free(iv);
    } else if (v != NULL && lam_tensor_read(t, v, (size_t)n) != LAM_OK) {
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
        st = cf_input_tensor(c, lam_tensor_ctx(x), i, sh, 1000 + i, -1.0f, 1.0f, &xs[i]);
    }
    if (st == LAM_OK) {
        cf_note(c, "in forward of %s on input %s%s", lam_block_name(b),
                fmt_shape(lam_tensor_shape(x), s, sizeof s), n > 1 ? " and others" : "");
        if (c->layer->flags & LAM_LAYER_STOCHASTIC) {
            /* Equal RNG state at every forward of an instance (lam_seed restarts its stream),
             * so outputs of a stochastic layer are compared at equal random numbers only. */
            lam_seed(c->opt->seed);
        }
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
