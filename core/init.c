/*
 * Initializers: immutable, reference-counted values saying how to fill a parameter (MXNet's
 * Zero, One, Constant, Uniform, Normal, Xavier and user callbacks), their text form and parser,
 * and lam__init_fill, which draws every value from the parameter's own Philox stream.
 */
#include "init.h"
#include "error.h"
#include "shape.h"
#include "kv.h"
#include "rng.h"
#include "util.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum init_kind {
    KIND_ZERO = 1,
    KIND_ONE = 2,
    KIND_CONSTANT = 3,
    KIND_UNIFORM = 4,
    KIND_NORMAL = 5,
    KIND_XAVIER = 6,
    KIND_CUSTOM = 7
} init_kind;

struct lam_initializer {
    atomic_long refcount; /* atomic: shared by the parameters of models on any thread */
    init_kind kind;
    float value; /* constant value, uniform scale, normal sigma or Xavier magnitude */
    lam_xavier_rnd rnd;
    lam_xavier_factor factor;
    lam_init_fn fn;
    void *user;
    char *desc; /* lam_initializer_describe text; the label of a custom initializer */
};

static const char *rnd_name(lam_xavier_rnd rnd) {
    return rnd == LAM_XAVIER_GAUSSIAN ? "gaussian" : "uniform";
}

static const char *factor_name(lam_xavier_factor factor) {
    switch (factor) {
    case LAM_XAVIER_IN:
        return "in";
    case LAM_XAVIER_OUT:
        return "out";
    default:
        return "avg";
    }
}

/* The shortest "%g" text that reads back as the same float, so describe and parse round trip. */
static void format_float(char *buf, size_t cap, float v) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) {
            return;
        }
    }
}

static lam_status make(const char *fn, init_kind kind, float value, lam_xavier_rnd rnd,
                       lam_xavier_factor factor, const char *label, lam_initializer **out) {
    lam_initializer *init = calloc(1, sizeof *init);
    if (init == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", fn);
    }
    init->refcount = 1;
    init->kind = kind;
    init->value = value;
    init->rnd = rnd;
    init->factor = factor;
    char num[32];
    format_float(num, sizeof num, value);
    lam__strbuf sb = {0};
    bool ok = true;
    switch (kind) {
    case KIND_ZERO:
        ok = lam__strbuf_printf(&sb, "Zero()");
        break;
    case KIND_ONE:
        ok = lam__strbuf_printf(&sb, "One()");
        break;
    case KIND_CONSTANT:
        ok = lam__strbuf_printf(&sb, "Constant(value=%s)", num);
        break;
    case KIND_UNIFORM:
        ok = lam__strbuf_printf(&sb, "Uniform(scale=%s)", num);
        break;
    case KIND_NORMAL:
        ok = lam__strbuf_printf(&sb, "Normal(sigma=%s)", num);
        break;
    case KIND_XAVIER:
        ok = lam__strbuf_printf(&sb, "Xavier(rnd_type=%s, factor_type=%s, magnitude=%s)",
                                rnd_name(rnd), factor_name(factor), num);
        break;
    case KIND_CUSTOM:
        ok = lam__strbuf_printf(&sb, "%s", label);
        break;
    }
    if (!ok) {
        lam__strbuf_fini(&sb);
        free(init);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", fn);
    }
    init->desc = sb.data;
    *out = init;
    return LAM_OK;
}

/* `where` (the parsed text, or NULL) is quoted in the message when given. */
static lam_status check_positive(const char *fn, const char *what, float v, const char *where,
                                 int where_len) {
    if (v > 0.0f && isfinite(v)) {
        return LAM_OK;
    }
    char num[32];
    format_float(num, sizeof num, v);
    if (where != NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid %s %s in '%.*s', must be positive and finite", fn, what, num,
                          where_len, where);
    }
    return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid %s %s, must be positive and finite",
                      fn, what, num);
}

static lam_status check_out(const char *fn, lam_initializer **out) {
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, out is NULL", fn);
    }
    *out = NULL;
    return LAM_OK;
}

lam_status lam_init_zero(lam_initializer **out) {
    lam_status st = check_out("lam_init_zero", out);
    if (st != LAM_OK) {
        return st;
    }
    return make("lam_init_zero", KIND_ZERO, 0.0f, LAM_XAVIER_RND_INVALID, LAM_XAVIER_FACTOR_INVALID,
                NULL, out);
}

lam_status lam_init_one(lam_initializer **out) {
    lam_status st = check_out("lam_init_one", out);
    if (st != LAM_OK) {
        return st;
    }
    return make("lam_init_one", KIND_ONE, 1.0f, LAM_XAVIER_RND_INVALID, LAM_XAVIER_FACTOR_INVALID,
                NULL, out);
}

lam_status lam_init_constant(float value, lam_initializer **out) {
    lam_status st = check_out("lam_init_constant", out);
    if (st != LAM_OK) {
        return st;
    }
    if (!isfinite(value)) {
        char num[32];
        format_float(num, sizeof num, value);
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_init_constant: Invalid value %s, must be finite", num);
    }
    return make("lam_init_constant", KIND_CONSTANT, value, LAM_XAVIER_RND_INVALID,
                LAM_XAVIER_FACTOR_INVALID, NULL, out);
}

lam_status lam_init_uniform(float scale, lam_initializer **out) {
    lam_status st = check_out("lam_init_uniform", out);
    if (st == LAM_OK) {
        st = check_positive("lam_init_uniform", "scale", scale, NULL, 0);
    }
    if (st != LAM_OK) {
        return st;
    }
    return make("lam_init_uniform", KIND_UNIFORM, scale, LAM_XAVIER_RND_INVALID,
                LAM_XAVIER_FACTOR_INVALID, NULL, out);
}

lam_status lam_init_normal(float sigma, lam_initializer **out) {
    lam_status st = check_out("lam_init_normal", out);
    if (st == LAM_OK) {
        st = check_positive("lam_init_normal", "sigma", sigma, NULL, 0);
    }
    if (st != LAM_OK) {
        return st;
    }
    return make("lam_init_normal", KIND_NORMAL, sigma, LAM_XAVIER_RND_INVALID,
                LAM_XAVIER_FACTOR_INVALID, NULL, out);
}

lam_status lam_init_xavier(lam_xavier_rnd rnd, lam_xavier_factor factor, float magnitude,
                           lam_initializer **out) {
    const char *fn = "lam_init_xavier";
    lam_status st = check_out(fn, out);
    if (st != LAM_OK) {
        return st;
    }
    if (rnd != LAM_XAVIER_UNIFORM && rnd != LAM_XAVIER_GAUSSIAN) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid rnd_type %d, expected LAM_XAVIER_UNIFORM or "
                          "LAM_XAVIER_GAUSSIAN",
                          fn, (int)rnd);
    }
    if (factor != LAM_XAVIER_AVG && factor != LAM_XAVIER_IN && factor != LAM_XAVIER_OUT) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid factor_type %d, expected LAM_XAVIER_AVG, LAM_XAVIER_IN or "
                          "LAM_XAVIER_OUT",
                          fn, (int)factor);
    }
    st = check_positive(fn, "magnitude", magnitude, NULL, 0);
    if (st != LAM_OK) {
        return st;
    }
    return make(fn, KIND_XAVIER, magnitude, rnd, factor, NULL, out);
}

lam_status lam_init_custom(const char *label, lam_init_fn fn, void *user, lam_initializer **out) {
    lam_status st = check_out("lam_init_custom", out);
    if (st != LAM_OK) {
        return st;
    }
    if (fn == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_init_custom: Invalid argument, fn is NULL");
    }
    st = make("lam_init_custom", KIND_CUSTOM, 0.0f, LAM_XAVIER_RND_INVALID,
              LAM_XAVIER_FACTOR_INVALID, label != NULL ? label : "Custom", out);
    if (st == LAM_OK) {
        (*out)->fn = fn;
        (*out)->user = user;
    }
    return st;
}

const char *lam_initializer_describe(const lam_initializer *init) {
    return init != NULL ? init->desc : "";
}

lam_initializer *lam_initializer_retain(lam_initializer *init) {
    if (init != NULL) {
        init->refcount++;
    }
    return init;
}

void lam_initializer_release(lam_initializer *init) {
    if (init == NULL || --init->refcount > 0) {
        return;
    }
    free(init->desc);
    free(init);
}

/* ---- parsing ------------------------------------------------------------------------------ */

#define PARSE_MAX_ARGS 3

typedef struct parse_spec {
    const char *name; /* canonical spelling, used in messages */
    const char *alias;
    init_kind kind;
    uint32_t min_args, max_args;
    const char *params[PARSE_MAX_ARGS]; /* keyword names, in positional order */
    const char *expect[PARSE_MAX_ARGS]; /* what each value should be, for messages */
    float fallback;                     /* the numeric argument's default */
} parse_spec;

/* "zero", "one" and the capitalized names are accepted so describe's output parses back. */
static const parse_spec parse_specs[] = {
    {"zeros", "zero", KIND_ZERO, 0, 0, {NULL, NULL, NULL}, {NULL, NULL, NULL}, 0.0f},
    {"ones", "one", KIND_ONE, 0, 0, {NULL, NULL, NULL}, {NULL, NULL, NULL}, 0.0f},
    {"constant", NULL, KIND_CONSTANT, 1, 1, {"value", NULL, NULL}, {"a number", NULL, NULL}, 0.0f},
    {"uniform", NULL, KIND_UNIFORM, 0, 1, {"scale", NULL, NULL}, {"a number", NULL, NULL}, 0.07f},
    {"normal", NULL, KIND_NORMAL, 0, 1, {"sigma", NULL, NULL}, {"a number", NULL, NULL}, 0.01f},
    {"xavier",
     NULL,
     KIND_XAVIER,
     0,
     3,
     {"rnd_type", "factor_type", "magnitude"},
     {"uniform or gaussian", "avg, in or out", "a number"},
     3.0f},
};

#define PARSE_EXPECTED                                                                             \
    "expected zeros, ones, constant(v), uniform[(scale)], normal[(sigma)] or "                     \
    "xavier[(rnd, factor, magnitude)]"

static void arg_expect(const void *spec, size_t k, lam__strbuf *sb) {
    lam__strbuf_printf(sb, "%s", ((const parse_spec *)spec)->expect[k]);
}

/* "name" or "name(arguments)": the initializer named, and the text between the parentheses
 * (empty without them). */
static lam_status parse_head(const char *fn, lam__kv_span all, const parse_spec **spec,
                             lam__kv_span *args) {
    size_t n = 0;
    while (n < all.len && (isalpha((unsigned char)all.p[n]) || all.p[n] == '_')) {
        n++;
    }
    lam__kv_span name = {all.p, n};
    *spec = NULL;
    for (size_t i = 0; i < sizeof parse_specs / sizeof parse_specs[0] && *spec == NULL; i++) {
        if (lam__kv_span_is(name, parse_specs[i].name, true) ||
            (parse_specs[i].alias != NULL && lam__kv_span_is(name, parse_specs[i].alias, true))) {
            *spec = &parse_specs[i];
        }
    }
    if (*spec == NULL) {
        lam__kv_span shown = n > 0 ? name : all;
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Unknown initializer '%.*s', %s", fn,
                          (int)shown.len, shown.p, PARSE_EXPECTED);
    }
    lam__kv_span rest = lam__kv_trim((lam__kv_span){all.p + n, all.len - n});
    *args = (lam__kv_span){rest.p, 0};
    if (rest.len == 0) {
        return LAM_OK;
    }
    if (rest.p[0] != '(') {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Syntax error in '%.*s', expected '('", fn,
                          (int)all.len, all.p);
    }
    size_t close = lam__kv_close(rest, 0);
    if (close + 1 != rest.len) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Syntax error in '%.*s', expected one ')' at the end", fn,
                          (int)all.len, all.p);
    }
    *args = (lam__kv_span){rest.p + 1, close - 1};
    return LAM_OK;
}

/* The numeric argument k: a number a float holds. */
static lam_status arg_number(const char *fn, const parse_spec *spec, lam__kv_span all,
                             const lam__kv_span *vals, uint32_t k, float *num) {
    double d;
    if (!lam__kv_double(vals[k], &d)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Bad value '%.*s' for %s in '%.*s', expected a number", fn,
                          (int)vals[k].len, vals[k].p, spec->params[k], (int)all.len, all.p);
    }
    if (!isfinite(d) || fabs(d) > FLT_MAX) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid %s '%.*s' in '%.*s', must be finite and at most %g in "
                          "magnitude (float range)",
                          fn, spec->params[k], (int)vals[k].len, vals[k].p, (int)all.len, all.p,
                          (double)FLT_MAX);
    }
    *num = (float)d;
    return LAM_OK;
}

/* One of `words` (case-insensitive), its index in *choice; absent keeps *choice. */
static lam_status arg_choice(const char *fn, const parse_spec *spec, lam__kv_span all,
                             const lam__kv_span *vals, uint32_t k, const char *const *words,
                             int *choice) {
    if (vals[k].p == NULL) {
        return LAM_OK;
    }
    for (int i = 0; words[i] != NULL; i++) {
        if (lam__kv_span_is(vals[k], words[i], true)) {
            *choice = i;
            return LAM_OK;
        }
    }
    return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Bad %s '%.*s' in '%.*s', expected %s", fn,
                      spec->params[k], (int)vals[k].len, vals[k].p, (int)all.len, all.p,
                      spec->expect[k]);
}

/* The initializer from its checked arguments (vals: spec->max_args entries, absent ones NULL). */
static lam_status parse_build(const char *fn, const parse_spec *spec, lam__kv_span all,
                              const lam__kv_span *vals, lam_initializer **out) {
    static const char *const rnds[] = {"uniform", "gaussian", NULL};
    static const char *const factors[] = {"avg", "in", "out", NULL};
    static const lam_xavier_factor factor_of[] = {LAM_XAVIER_AVG, LAM_XAVIER_IN, LAM_XAVIER_OUT};
    uint32_t k = spec->kind == KIND_XAVIER ? 2 : 0; /* the numeric argument */
    float num = spec->fallback;
    int rnd = 0, factor = 0;
    lam_status st = LAM_OK;
    if (k < spec->max_args && vals[k].p != NULL) {
        st = arg_number(fn, spec, all, vals, k, &num);
    }
    if (st == LAM_OK && spec->kind == KIND_XAVIER) {
        st = arg_choice(fn, spec, all, vals, 0, rnds, &rnd);
        st = st != LAM_OK ? st : arg_choice(fn, spec, all, vals, 1, factors, &factor);
    }
    if (st == LAM_OK && spec->kind != KIND_CONSTANT && k < spec->max_args) {
        st = check_positive(fn, spec->params[k], num, all.p, (int)all.len);
    }
    if (st != LAM_OK) {
        return st;
    }
    switch (spec->kind) {
    case KIND_ZERO:
        return lam_init_zero(out);
    case KIND_ONE:
        return lam_init_one(out);
    case KIND_CONSTANT:
        return lam_init_constant(num, out);
    case KIND_UNIFORM:
        return lam_init_uniform(num, out);
    case KIND_NORMAL:
        return lam_init_normal(num, out);
    case KIND_XAVIER:
        return lam_init_xavier(rnd == 1 ? LAM_XAVIER_GAUSSIAN : LAM_XAVIER_UNIFORM,
                               factor_of[factor], num, out);
    case KIND_CUSTOM:
        break;
    }
    return lam__error(LAM_ERR_INTERNAL, "%s: Internal error, unhandled initializer kind", fn);
}

/* The name and parentheses here, the argument list through the shared key=value parser (kv.c),
 * the values in parse_build. */
lam_status lam_init_parse(const char *text, lam_initializer **out) {
    const char *fn = "lam_init_parse";
    lam_status st = check_out(fn, out);
    if (st != LAM_OK) {
        return st;
    }
    if (text == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, text is NULL", fn);
    }
    lam__kv_span all = lam__kv_trim(lam__kv_span_of(text)), args;
    const parse_spec *spec;
    if ((st = parse_head(fn, all, &spec, &args)) != LAM_OK) {
        return st;
    }
    lam__kv_span vals[PARSE_MAX_ARGS];
    lam__kv_schema s = {.subject = fn,
                        .what = "argument",
                        .where = all,
                        .keys = spec->params,
                        .n_keys = spec->max_args,
                        .positional = true,
                        .expect = arg_expect,
                        .expect_ctx = spec};
    if ((st = lam__kv_parse(&s, args, vals)) != LAM_OK) {
        return st;
    }
    for (uint32_t k = 0; k < spec->min_args; k++) {
        if (vals[k].p == NULL) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Missing argument in '%.*s', %s needs a %s", fn, (int)all.len,
                              all.p, spec->name, spec->params[k]);
        }
    }
    return parse_build(fn, spec, all, vals, out);
}

/* ---- filling ------------------------------------------------------------------------------ */

static lam_status fill_xavier(const lam_initializer *init, const char *subject,
                              const lam_shape *shape, float *data, size_t count, lam_rng *rng) {
    if (shape->ndim < 2) {
        char sb[160];
        return lam__error(LAM_ERR_SHAPE,
                          "%s: Cannot initialize, Xavier needs at least 2 dims, "
                          "shape is %s",
                          subject, lam_shape_format(shape, sb, sizeof sb));
    }
    if (count == 0) {
        return LAM_OK; /* a zero dim would make the scale infinite; nothing to draw anyway */
    }
    double hw = 1.0;
    for (uint32_t i = 2; i < shape->ndim; i++) {
        hw *= (double)shape->dims[i];
    }
    double fan_in = (double)shape->dims[1] * hw, fan_out = (double)shape->dims[0] * hw;
    double factor = init->factor == LAM_XAVIER_IN    ? fan_in
                    : init->factor == LAM_XAVIER_OUT ? fan_out
                                                     : (fan_in + fan_out) / 2.0;
    float scale = (float)sqrt((double)init->value / factor);
    if (init->rnd == LAM_XAVIER_GAUSSIAN) {
        for (size_t i = 0; i < count; i++) {
            data[i] = lam_rng_normal(rng, 0.0f, scale);
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            data[i] = lam_rng_uniform(rng, -scale, scale);
        }
    }
    return LAM_OK;
}

static lam_status fill_custom(const lam_initializer *init, const char *subject,
                              const lam_shape *shape, float *data, size_t count, lam_rng *rng) {
    /* Marked first so a callback that fails without a message is not blamed for an old one. */
    uint64_t mark = lam__error_mark();
    lam_status st = init->fn(subject, shape, data, count, rng, init->user);
    if (st == LAM_OK) {
        return LAM_OK;
    }
    char why[1024];
    snprintf(why, sizeof why, "%s", lam__error_set_since(mark) ? lam_last_error() : "");
    if (why[0] == '\0') {
        snprintf(why, sizeof why, "%s", lam_status_string(st));
    }
    if ((int)st > 0) {
        st = LAM_ERR_INTERNAL; /* not a lam_status error; keep the result negative */
    }
    return lam__error(st, "%s: Initializer '%s' failed, %s", subject, init->desc, why);
}

lam_status lam__init_fill(const lam_initializer *init, const char *name, const char *key,
                          const lam_shape *shape, float *data, size_t count) {
    const char *subject = name != NULL ? name : key != NULL ? key : "parameter";
    if (init == NULL || shape == NULL || (data == NULL && count > 0)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Cannot initialize, %s is NULL", subject,
                          init == NULL    ? "initializer"
                          : shape == NULL ? "shape"
                                          : "data");
    }
    if (shape->ndim > LAM_MAX_DIMS) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Cannot initialize, shape has %u dims, at most %d", subject,
                          shape->ndim, LAM_MAX_DIMS);
    }
    char sb[160];
    bool has_zero = false;
    for (uint32_t i = 0; i < shape->ndim; i++) {
        if (shape->dims[i] < 0) {
            return lam__error(LAM_ERR_DEFERRED_INIT,
                              "%s: Cannot initialize, shape %s is not fully known", subject,
                              lam_shape_format(shape, sb, sizeof sb));
        }
        has_zero = has_zero || shape->dims[i] == 0;
    }
    /* A product that overflows must not wrap around to a small count. */
    uint64_t numel = has_zero ? 0 : 1;
    bool overflow = false;
    for (uint32_t i = 0; i < shape->ndim && !has_zero; i++) {
        uint64_t d = (uint64_t)shape->dims[i];
        overflow = overflow || numel > UINT64_MAX / d;
        numel *= d;
    }
    if (overflow || numel != (uint64_t)count) {
        return lam__error(LAM_ERR_SHAPE,
                          "%s: Cannot initialize, shape %s does not match a buffer of %zu floats",
                          subject, lam_shape_format(shape, sb, sizeof sb), count);
    }

    lam_rng rng;
    lam__rng_init(&rng, lam_seed_get(), key);
    switch (init->kind) {
    case KIND_ZERO:
    case KIND_ONE:
    case KIND_CONSTANT:
        for (size_t i = 0; i < count; i++) {
            data[i] = init->value;
        }
        return LAM_OK;
    case KIND_UNIFORM:
        for (size_t i = 0; i < count; i++) {
            data[i] = lam_rng_uniform(&rng, -init->value, init->value);
        }
        return LAM_OK;
    case KIND_NORMAL:
        for (size_t i = 0; i < count; i++) {
            data[i] = lam_rng_normal(&rng, 0.0f, init->value);
        }
        return LAM_OK;
    case KIND_XAVIER:
        return fill_xavier(init, subject, shape, data, count, &rng);
    case KIND_CUSTOM:
        return fill_custom(init, subject, shape, data, count, &rng);
    }
    return lam__error(LAM_ERR_INTERNAL, "%s: Internal error, unknown initializer kind", subject);
}
