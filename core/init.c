/*
 * Initializers: immutable, reference-counted values saying how to fill a parameter (MXNet's
 * Zero, One, Constant, Uniform, Normal, Xavier and user callbacks), their text form and parser,
 * and lam__init_fill, which draws every value from the parameter's own Philox stream.
 */
#include "init.h"
#include "error.h"
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

/*
 * Same text as lam_shape_format (tensor.c); kept local so this file depends only on error.c
 * and util.c and can be tested on its own.
 */
static char *format_shape(const lam_shape *shape, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    uint32_t nd = shape->ndim < LAM_MAX_DIMS ? shape->ndim : LAM_MAX_DIMS;
    int w = snprintf(buf, cap, "(");
    len += w > 0 ? (size_t)w : 0;
    for (uint32_t i = 0; i < nd && len < cap; i++) {
        if (shape->dims[i] < 0) {
            w = snprintf(buf + len, cap - len, "%sNone", i ? ", " : "");
        } else {
            w = snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape->dims[i]);
        }
        len += w > 0 ? (size_t)w : 0;
    }
    if (len < cap) {
        snprintf(buf + len, cap - len, "%s", nd == 1 ? ",)" : ")");
    }
    return buf;
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
    const char *takes;                  /* the keyword names, for messages */
} parse_spec;

/* "zero", "one" and the capitalized names are accepted so describe's output parses back. */
static const parse_spec parse_specs[] = {
    {"zeros", "zero", KIND_ZERO, 0, 0, {NULL, NULL, NULL}, "none"},
    {"ones", "one", KIND_ONE, 0, 0, {NULL, NULL, NULL}, "none"},
    {"constant", NULL, KIND_CONSTANT, 1, 1, {"value", NULL, NULL}, "value"},
    {"uniform", NULL, KIND_UNIFORM, 0, 1, {"scale", NULL, NULL}, "scale"},
    {"normal", NULL, KIND_NORMAL, 0, 1, {"sigma", NULL, NULL}, "sigma"},
    {"xavier",
     NULL,
     KIND_XAVIER,
     0,
     3,
     {"rnd_type", "factor_type", "magnitude"},
     "rnd_type, factor_type and magnitude"},
};

#define PARSE_EXPECTED                                                                             \
    "expected zeros, ones, constant(v), uniform[(scale)], normal[(sigma)] or "                     \
    "xavier[(rnd, factor, magnitude)]"

typedef struct span {
    const char *p;
    int len;
} span;

static const char *skip_ws(const char *s, const char *end) {
    while (s < end && isspace((unsigned char)*s)) {
        s++;
    }
    return s;
}

static span trim(const char *begin, const char *end) {
    while (begin < end && isspace((unsigned char)*begin)) {
        begin++;
    }
    while (end > begin && isspace((unsigned char)end[-1])) {
        end--;
    }
    span sp = {begin, (int)(end - begin)};
    return sp;
}

static bool span_is(span sp, const char *word) {
    size_t n = strlen(word);
    if ((size_t)sp.len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (tolower((unsigned char)sp.p[i]) != tolower((unsigned char)word[i])) {
            return false;
        }
    }
    return true;
}

/* Parses a whole span as a float; false when anything but a number is there. */
/* A number; *in_range is false for inf, nan and magnitudes beyond FLT_MAX (which strtof
 * would turn into inf), and *v is then 0. */
static bool span_float(span sp, float *v, bool *in_range) {
    char buf[64];
    if (sp.len <= 0 || (size_t)sp.len >= sizeof buf) {
        return false;
    }
    memcpy(buf, sp.p, (size_t)sp.len);
    buf[sp.len] = '\0';
    char *end = NULL;
    double d = strtod(buf, &end);
    *in_range = isfinite(d) && fabs(d) <= FLT_MAX;
    *v = *in_range ? (float)d : 0.0f;
    return end == buf + sp.len;
}

/* Over 100 lines for now: one pass over `name(args)` with each initializer's argument checks
 * inline. It shrinks when layer.c, trainer.c and init.c share one key=value parser (issue 13,
 * not done yet: the three parsers word their errors differently). */
lam_status lam_init_parse(const char *text, lam_initializer **out) {
    const char *fn = "lam_init_parse";
    lam_status st = check_out(fn, out);
    if (st != LAM_OK) {
        return st;
    }
    if (text == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, text is NULL", fn);
    }
    span all = trim(text, text + strlen(text));
    const char *s = all.p, *end = all.p + all.len;
    const char *name_begin = s;
    while (s < end && (isalpha((unsigned char)*s) || *s == '_')) {
        s++;
    }
    span name = {name_begin, (int)(s - name_begin)};
    const parse_spec *spec = NULL;
    for (size_t i = 0; i < sizeof parse_specs / sizeof parse_specs[0]; i++) {
        if (span_is(name, parse_specs[i].name) ||
            (parse_specs[i].alias != NULL && span_is(name, parse_specs[i].alias))) {
            spec = &parse_specs[i];
            break;
        }
    }
    if (spec == NULL) {
        span shown = name.len > 0 ? name : all;
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Unknown initializer '%.*s', %s", fn,
                          shown.len, shown.p, PARSE_EXPECTED);
    }

    /* Arguments: "(a, b, ...)" after the name, nothing but spaces after ')'. */
    span args[PARSE_MAX_ARGS];
    uint32_t n_args = 0;
    s = skip_ws(s, end);
    if (s < end && *s == '(') {
        const char *close = memchr(s, ')', (size_t)(end - s));
        if (close == NULL || close + 1 != end) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Syntax error in '%.*s', expected one ')' at the end", fn,
                              all.len, all.p);
        }
        const char *a = s + 1;
        bool more = trim(a, close).len > 0; /* "()" has no arguments */
        while (more) {
            const char *comma = memchr(a, ',', (size_t)(close - a));
            const char *stop = comma != NULL ? comma : close;
            span arg = trim(a, stop);
            if (arg.len == 0) {
                return lam__error(LAM_ERR_INVALID_ARGUMENT,
                                  "%s: Syntax error in '%.*s', empty argument", fn, all.len, all.p);
            }
            if (n_args == spec->max_args) {
                if (spec->max_args == 0) {
                    return lam__error(LAM_ERR_INVALID_ARGUMENT,
                                      "%s: Too many arguments in '%.*s', %s takes none", fn,
                                      all.len, all.p, spec->name);
                }
                return lam__error(LAM_ERR_INVALID_ARGUMENT,
                                  "%s: Too many arguments in '%.*s', %s takes at most %u", fn,
                                  all.len, all.p, spec->name, spec->max_args);
            }
            args[n_args++] = arg;
            more = comma != NULL;
            a = stop + 1;
        }
    } else if (s != end) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Syntax error in '%.*s', expected '('", fn,
                          all.len, all.p);
    }

    /* Positional arguments fill params in order; "name=value" fills the named one. */
    span vals[PARSE_MAX_ARGS];
    bool given[PARSE_MAX_ARGS] = {false, false, false};
    for (uint32_t i = 0; i < n_args; i++) {
        span arg = args[i];
        uint32_t slot = i;
        const char *eq = memchr(arg.p, '=', (size_t)arg.len);
        if (eq != NULL) {
            span key = trim(arg.p, eq);
            arg = trim(eq + 1, args[i].p + args[i].len);
            slot = PARSE_MAX_ARGS;
            for (uint32_t k = 0; k < spec->max_args; k++) {
                if (span_is(key, spec->params[k])) {
                    slot = k;
                }
            }
            if (slot == PARSE_MAX_ARGS) {
                return lam__error(LAM_ERR_INVALID_ARGUMENT,
                                  "%s: Unknown argument '%.*s' in '%.*s', %s takes %s", fn, key.len,
                                  key.p, all.len, all.p, spec->name, spec->takes);
            }
        }
        if (given[slot]) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Duplicate argument %s in '%.*s', given twice", fn,
                              spec->params[slot], all.len, all.p);
        }
        given[slot] = true;
        vals[slot] = arg;
    }
    for (uint32_t k = 0; k < spec->min_args; k++) {
        if (!given[k]) {
            return lam__error(LAM_ERR_INVALID_ARGUMENT,
                              "%s: Missing argument in '%.*s', %s needs a %s", fn, all.len, all.p,
                              spec->name, spec->params[k]);
        }
    }

    float num = 0.0f;
    bool in_range = true;
    uint32_t num_slot = spec->kind == KIND_XAVIER ? 2 : 0;
    if (spec->max_args > 0 && given[num_slot] && !span_float(vals[num_slot], &num, &in_range)) {
        return lam__error(
            LAM_ERR_INVALID_ARGUMENT, "%s: Bad value '%.*s' for %s in '%.*s', expected a number",
            fn, vals[num_slot].len, vals[num_slot].p, spec->params[num_slot], all.len, all.p);
    }
    if (!in_range) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid %s '%.*s' in '%.*s', must be finite and at most %g in "
                          "magnitude (float range)",
                          fn, spec->params[num_slot], vals[num_slot].len, vals[num_slot].p, all.len,
                          all.p, (double)FLT_MAX);
    }
    lam_xavier_rnd rnd = LAM_XAVIER_UNIFORM;
    lam_xavier_factor factor = LAM_XAVIER_AVG;
    switch (spec->kind) {
    case KIND_ZERO:
        return lam_init_zero(out);
    case KIND_ONE:
        return lam_init_one(out);
    case KIND_CONSTANT:
        return lam_init_constant(num, out);
    case KIND_UNIFORM:
        num = given[0] ? num : 0.07f;
        st = check_positive(fn, "scale", num, all.p, all.len);
        return st != LAM_OK ? st : lam_init_uniform(num, out);
    case KIND_NORMAL:
        num = given[0] ? num : 0.01f;
        st = check_positive(fn, "sigma", num, all.p, all.len);
        return st != LAM_OK ? st : lam_init_normal(num, out);
    case KIND_XAVIER:
        if (given[0]) {
            if (span_is(vals[0], "gaussian")) {
                rnd = LAM_XAVIER_GAUSSIAN;
            } else if (!span_is(vals[0], "uniform")) {
                return lam__error(LAM_ERR_INVALID_ARGUMENT,
                                  "%s: Bad rnd_type '%.*s' in '%.*s', expected uniform or gaussian",
                                  fn, vals[0].len, vals[0].p, all.len, all.p);
            }
        }
        if (given[1]) {
            if (span_is(vals[1], "in")) {
                factor = LAM_XAVIER_IN;
            } else if (span_is(vals[1], "out")) {
                factor = LAM_XAVIER_OUT;
            } else if (!span_is(vals[1], "avg")) {
                return lam__error(LAM_ERR_INVALID_ARGUMENT,
                                  "%s: Bad factor_type '%.*s' in '%.*s', expected avg, in or out",
                                  fn, vals[1].len, vals[1].p, all.len, all.p);
            }
        }
        num = given[2] ? num : 3.0f;
        st = check_positive(fn, "magnitude", num, all.p, all.len);
        return st != LAM_OK ? st : lam_init_xavier(rnd, factor, num, out);
    case KIND_CUSTOM:
        break;
    }
    return lam__error(LAM_ERR_INTERNAL, "%s: Internal error, unhandled initializer kind", fn);
}

/* ---- filling ------------------------------------------------------------------------------ */

static lam_status fill_xavier(const lam_initializer *init, const char *subject,
                              const lam_shape *shape, float *data, size_t count, lam_rng *rng) {
    if (shape->ndim < 2) {
        char sb[160];
        return lam__error(LAM_ERR_SHAPE,
                          "%s: Cannot initialize, Xavier needs at least 2 dims, "
                          "shape is %s",
                          subject, format_shape(shape, sb, sizeof sb));
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
                              format_shape(shape, sb, sizeof sb));
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
                          subject, format_shape(shape, sb, sizeof sb), count);
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
