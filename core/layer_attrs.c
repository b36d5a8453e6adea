/*
 * A layer instance's attributes (layer_attrs.c): the attribute string parsed with the shared
 * key=value parser (kv.c), each value checked against the schema, defaults filled in; and the
 * host functions that read them (attr_int, attr_float, attr_bool, attr_string, attr_ints).
 */
#define _POSIX_C_SOURCE 200809L
#include "layer_attrs.h"
#include "error.h"
#include "kv.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void lam__attrs_free(lam__attrs *a) {
    if (a == NULL) {
        return;
    }
    for (uint32_t i = 0; a->values && i < a->desc->n_attrs; i++) {
        free(a->values[i]);
    }
    free(a->values);
    free(a);
}

static bool parse_bool(const char *v, int32_t *out) {
    if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
        return true;
    }
    if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = 0;
        return true;
    }
    return false;
}

static bool parse_int(const char *v, int64_t *out) {
    return lam__kv_int(lam__kv_span_of(v), out);
}

static bool parse_float(const char *v, double *out) {
    double x;
    if (!lam__kv_double(lam__kv_span_of(v), &x) || !isfinite(x)) {
        return false;
    }
    *out = x;
    return true;
}

/* "(3, 3)", "(3,)", "3": up to cap integers into v (NULL: only count); false when malformed. */
static bool parse_ints(const char *text, int64_t *v, uint32_t cap, uint32_t *count) {
    const char *p = text;
    while (isspace((unsigned char)*p)) {
        p++;
    }
    bool paren = *p == '(';
    p += paren;
    uint32_t n = 0;
    for (;;) {
        while (isspace((unsigned char)*p)) {
            p++;
        }
        if (paren && *p == ')' && n > 0) {
            p++;
            break;
        }
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno != 0) {
            return false;
        }
        if (v != NULL && n < cap) {
            v[n] = x;
        }
        n++;
        p = end;
        while (isspace((unsigned char)*p)) {
            p++;
        }
        if (*p == ',') {
            p++;
            continue;
        }
        if (paren && *p == ')') {
            p++;
            break;
        }
        if (!paren) {
            break;
        }
        return false;
    }
    while (isspace((unsigned char)*p)) {
        p++;
    }
    *count = n;
    return *p == '\0' && n <= 64;
}

static bool enum_has(const char *choices, const char *v) {
    size_t n = strlen(v);
    const char *c = choices;
    while (*c) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, v, n) == 0) {
            return true;
        }
        c += len + (bar ? 1 : 0);
    }
    return false;
}

/* What attribute k's value should be, for messages (nothing for a free string). */
static void attr_expect(const void *desc, size_t k, lam__strbuf *sb) {
    const lam_attr_desc *a = ((const lam_layer_desc *)desc)->attrs[k];
    switch (a->type) {
    case LAM_ATTR_INT:
        lam__strbuf_printf(sb, "an integer");
        break;
    case LAM_ATTR_FLOAT:
        lam__strbuf_printf(sb, "a number");
        break;
    case LAM_ATTR_BOOL:
        lam__strbuf_printf(sb, "true or false");
        break;
    case LAM_ATTR_INTS:
        if (a->count != 0) {
            lam__strbuf_printf(sb, "%u integers such as (3, 3), or one integer for all",
                               (unsigned)a->count);
        } else {
            lam__strbuf_printf(sb, "integers such as (3, 3)");
        }
        break;
    case LAM_ATTR_ENUM:
        lam__strbuf_printf(sb, "one of %s", a->choices);
        break;
    default:
        break;
    }
}

static lam_status check_value(const lam__kv_schema *s, const lam_layer_desc *d, uint32_t k,
                              const char *v) {
    const lam_attr_desc *a = d->attrs[k];
    int64_t i;
    double f;
    int32_t b;
    uint32_t n = 0;
    bool ok = a->type == LAM_ATTR_INTS
                  ? parse_ints(v, NULL, 0, &n) && (a->count == 0 || n == 1 || n == a->count)
              : a->type == LAM_ATTR_INT   ? parse_int(v, &i)
              : a->type == LAM_ATTR_FLOAT ? parse_float(v, &f)
              : a->type == LAM_ATTR_BOOL  ? parse_bool(v, &b)
              : a->type == LAM_ATTR_ENUM  ? enum_has(a->choices, v)
                                          : true;
    if (ok) {
        return LAM_OK;
    }
    if (v[0] == '\0') {
        return lam__kv_missing(s, k);
    }
    lam__strbuf want = {0};
    attr_expect(d, k, &want);
    lam_status st =
        lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid value for '%s', expected %s, got '%s'",
                   d->name, a->name, want.data ? want.data : "another value", v);
    lam__strbuf_fini(&want);
    return st;
}

/* The attribute string through the shared key=value parser (kv.c), then each value checked
 * against its type, defaults filled in. */
lam_status lam__attrs_parse(const lam_layer_desc *d, const char *text, lam__attrs **out) {
    *out = NULL;
    size_t n = d->n_attrs;
    lam__attrs *a = calloc(1, sizeof *a);
    const char **keys = calloc(n + 1, sizeof *keys);
    lam__kv_span *vals = calloc(n + 1, sizeof *vals);
    if (a == NULL || keys == NULL || vals == NULL ||
        (n > 0 && (a->values = calloc(n, sizeof *a->values)) == NULL)) {
        free(a);
        free(keys);
        free(vals);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", d->name);
    }
    a->desc = d;
    for (uint32_t i = 0; i < n; i++) {
        keys[i] = d->attrs[i]->name;
    }
    lam__kv_schema s = {.subject = d->name,
                        .what = "attribute",
                        .keys = keys,
                        .n_keys = n,
                        .empty_values = true, /* a string attribute may be empty */
                        .expect = attr_expect,
                        .expect_ctx = d};
    lam_status st = lam__kv_parse(&s, lam__kv_span_of(text), vals);
    /* The values given first, then what is missing. */
    for (uint32_t i = 0; st == LAM_OK && i < n; i++) {
        if (vals[i].p == NULL) {
            continue;
        }
        if ((a->values[i] = lam__kv_span_dup(vals[i])) == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", d->name);
        } else {
            st = check_value(&s, d, i, a->values[i]);
        }
    }
    for (uint32_t i = 0; st == LAM_OK && i < n; i++) {
        if (a->values[i] != NULL) {
            continue;
        }
        if (d->attrs[i]->default_value == NULL) {
            st = lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Missing attribute '%s' (required)",
                            d->name, d->attrs[i]->name);
        } else if ((a->values[i] = lam__strdup(d->attrs[i]->default_value)) == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory", d->name);
        }
    }
    free(keys);
    free(vals);
    if (st != LAM_OK) {
        lam__attrs_free(a);
        return st;
    }
    *out = a;
    return LAM_OK;
}

/* ---- attribute getters for plugins ---- */

static lam_status find_attr(const lam_attrs *attrs, const char *fn, const char *name,
                            lam_attr_type want, const char **value) {
    const lam__attrs *a = (const lam__attrs *)attrs;
    if (a == NULL || name == NULL || value == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Invalid argument, NULL attrs, name or "
                          "value",
                          fn);
    }
    for (uint32_t i = 0; i < a->desc->n_attrs; i++) {
        const lam_attr_desc *d = a->desc->attrs[i];
        if (strcmp(d->name, name) == 0) {
            bool ok = d->type == want || (want == LAM_ATTR_STRING && d->type == LAM_ATTR_ENUM);
            if (!ok) {
                return lam__error(LAM_ERR_INVALID_ARGUMENT,
                                  "%s: Type mismatch, attribute '%s' of %s is not of the type "
                                  "asked for",
                                  fn, name, a->desc->name);
            }
            *value = a->values[i];
            return LAM_OK;
        }
    }
    return lam__error(LAM_ERR_NOT_FOUND, "%s: Not found, '%s' is not an attribute of %s", fn, name,
                      a->desc->name);
}

lam_status lam__host_attr_int(const lam_attrs *attrs, const char *name, int64_t *value) {
    const char *v;
    lam_status st = find_attr(attrs, "attr_int", name, LAM_ATTR_INT, &v);
    if (st == LAM_OK) {
        parse_int(v, value);
    }
    return st;
}

lam_status lam__host_attr_float(const lam_attrs *attrs, const char *name, double *value) {
    const char *v;
    lam_status st = find_attr(attrs, "attr_float", name, LAM_ATTR_FLOAT, &v);
    if (st == LAM_OK) {
        parse_float(v, value);
    }
    return st;
}

lam_status lam__host_attr_bool(const lam_attrs *attrs, const char *name, int32_t *value) {
    const char *v;
    lam_status st = find_attr(attrs, "attr_bool", name, LAM_ATTR_BOOL, &v);
    if (st == LAM_OK) {
        parse_bool(v, value);
    }
    return st;
}

lam_status lam__host_attr_string(const lam_attrs *attrs, const char *name, const char **value) {
    return find_attr(attrs, "attr_string", name, LAM_ATTR_STRING, value);
}

lam_status lam__host_attr_ints(const lam_attrs *attrs, const char *name, int64_t *values,
                               uint32_t cap, uint32_t *count) {
    const char *v;
    lam_status st = find_attr(attrs, "attr_ints", name, LAM_ATTR_INTS, &v);
    if (st != LAM_OK) {
        return st;
    }
    const lam_attr_desc *d = NULL;
    const lam__attrs *a = (const lam__attrs *)attrs;
    for (uint32_t i = 0; i < a->desc->n_attrs; i++) {
        if (strcmp(a->desc->attrs[i]->name, name) == 0) {
            d = a->desc->attrs[i];
        }
    }
    uint32_t n = 0;
    int64_t buf[64];
    if (!parse_ints(v, buf, 64, &n)) {
        return lam__error(LAM_ERR_INTERNAL, "attr_ints: '%s' does not parse", v);
    }
    if (n == 1 && d != NULL && d->count > 1) { /* one value stands for all (kernel_size=3) */
        for (uint32_t i = 1; i < d->count; i++) {
            buf[i] = buf[0];
        }
        n = d->count;
    }
    for (uint32_t i = 0; values != NULL && i < n && i < cap; i++) {
        values[i] = buf[i];
    }
    if (count != NULL) {
        *count = n;
    }
    return LAM_OK;
}
