/*
 * JSON text <-> jansson values for safetensors headers. Jansson's value API reports every
 * allocation failure, but its parser and dumper (2.14) do not: the lexer drops a character it
 * cannot save and then reads past its buffer, and json_dumps loses an object key's closing
 * quote and still succeeds. A save must never write a broken header and a load must never
 * corrupt the heap, so the text is read and written here, on top of the value API.
 */
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper than any safetensors header needs, shallow enough for the recursion. */
#define MAX_DEPTH 64

typedef struct reader {
    const char *p, *start, *end;
    lam__st_json_error *err;
} reader;

static bool fail(reader *r, const char *text) {
    if (!r->err->oom && r->err->text[0] == '\0') {
        r->err->position = (size_t)(r->p - r->start);
        snprintf(r->err->text, sizeof r->err->text, "%s", text);
    }
    return false;
}

static bool out_of_memory(reader *r) {
    r->err->oom = true;
    return false;
}

static void skip_space(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) {
        r->p++;
    }
}

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at r->p (on its opening quote) into a new NUL-terminated buffer. */
static bool read_string(reader *r, char **out) {
    *out = NULL;
    const char *s = ++r->p;
    /* The decoded text is never longer than the source. */
    const char *q = s;
    while (q < r->end && *q != '"') {
        q += (*q == '\\' && q + 1 < r->end) ? 2 : 1;
    }
    if (q >= r->end) {
        return fail(r, "premature end of input in a string");
    }
    char *buf = malloc((size_t)(q - s) + 1), *w = buf;
    if (buf == NULL) {
        return out_of_memory(r);
    }
    while (r->p < q) {
        unsigned char c = (unsigned char)*r->p;
        if (c < 0x20) {
            free(buf);
            return fail(r, "control character in a string");
        }
        if (c != '\\') {
            *w++ = (char)c;
            r->p++;
            continue;
        }
        char e = r->p[1];
        r->p += 2;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            *w++ = e;
            break;
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'u': {
            int v = q - r->p >= 4 ? hex4(r->p) : -1;
            if (v < 0) {
                free(buf);
                return fail(r, "invalid \\u escape");
            }
            r->p += 4;
            uint32_t cp = (uint32_t)v;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = q - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u' ? hex4(r->p + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    free(buf);
                    return fail(r, "invalid Unicode surrogate pair");
                }
                r->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(buf);
                return fail(r, "invalid Unicode surrogate");
            } else if (cp == 0) {
                free(buf);
                return fail(r, "\\u0000 is not allowed");
            }
            w += put_utf8(cp, w);
            break;
        }
        default:
            free(buf);
            return fail(r, "invalid escape");
        }
    }
    *w = '\0';
    r->p = q + 1;
    if (!lam__st_utf8_valid(buf)) {
        free(buf);
        return fail(r, "invalid UTF-8 in a string");
    }
    *out = buf;
    return true;
}

static bool read_number(reader *r, json_t **out) {
    const char *s = r->p, *p = s;
    bool integer = true;
    if (p < r->end && *p == '-') {
        p++;
    }
    if (p < r->end && *p == '0') {
        p++;
    } else if (p < r->end && *p >= '1' && *p <= '9') {
        while (p < r->end && *p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return fail(r, "invalid number");
    }
    if (p < r->end && *p == '.') {
        integer = false;
        p++;
        if (p >= r->end || *p < '0' || *p > '9') {
            return fail(r, "invalid number");
        }
        while (p < r->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        integer = false;
        p++;
        if (p < r->end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= r->end || *p < '0' || *p > '9') {
            return fail(r, "invalid number");
        }
        while (p < r->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    char text[64];
    if ((size_t)(p - s) >= sizeof text) {
        return fail(r, integer ? "too big integer" : "number too long");
    }
    memcpy(text, s, (size_t)(p - s));
    text[p - s] = '\0';
    errno = 0;
    if (integer) {
        long long v = strtoll(text, NULL, 10);
        if (errno == ERANGE) {
            return fail(r, "too big integer");
        }
        *out = json_integer((json_int_t)v);
    } else {
        double v = strtod(text, NULL);
        if (errno == ERANGE && (v > 1.0 || v < -1.0)) {
            return fail(r, "real number overflow");
        }
        *out = json_real(v);
    }
    r->p = p;
    return *out != NULL || out_of_memory(r);
}

static bool read_value(reader *r, json_t **out, int depth);

static bool read_object(reader *r, json_t *obj, int depth) {
    r->p++; /* '{' */
    skip_space(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return true;
    }
    for (;;) {
        skip_space(r);
        if (r->p >= r->end || *r->p != '"') {
            return fail(r, "string or '}' expected");
        }
        char *key;
        if (!read_string(r, &key)) {
            return false;
        }
        if (json_object_get(obj, key) != NULL) {
            free(key);
            return fail(r, "duplicate object key");
        }
        skip_space(r);
        if (r->p >= r->end || *r->p != ':') {
            free(key);
            return fail(r, "':' expected");
        }
        r->p++;
        json_t *v;
        if (!read_value(r, &v, depth + 1)) {
            free(key);
            return false;
        }
        int rc = json_object_set_new_nocheck(obj, key, v);
        free(key);
        if (rc != 0) {
            return out_of_memory(r);
        }
        skip_space(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == '}') {
            r->p++;
            return true;
        }
        return fail(r, "',' or '}' expected");
    }
}

static bool read_array(reader *r, json_t *arr, int depth) {
    r->p++; /* '[' */
    skip_space(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return true;
    }
    for (;;) {
        json_t *v;
        if (!read_value(r, &v, depth + 1)) {
            return false;
        }
        if (json_array_append_new(arr, v) != 0) {
            return out_of_memory(r);
        }
        skip_space(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == ']') {
            r->p++;
            return true;
        }
        return fail(r, "',' or ']' expected");
    }
}

static bool word(reader *r, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) >= n && memcmp(r->p, w, n) == 0) {
        r->p += n;
        return true;
    }
    return false;
}

static bool read_value(reader *r, json_t **out, int depth) {
    *out = NULL;
    if (depth > MAX_DEPTH) {
        return fail(r, "maximum nesting depth reached");
    }
    skip_space(r);
    if (r->p >= r->end) {
        return fail(r, "premature end of input");
    }
    char c = *r->p;
    if (c == '{' || c == '[') {
        json_t *v = c == '{' ? json_object() : json_array();
        if (v == NULL) {
            return out_of_memory(r);
        }
        if (!(c == '{' ? read_object(r, v, depth) : read_array(r, v, depth))) {
            json_decref(v);
            return false;
        }
        *out = v;
        return true;
    }
    if (c == '"') {
        char *s;
        if (!read_string(r, &s)) {
            return false;
        }
        *out = json_string_nocheck(s);
        free(s);
        return *out != NULL || out_of_memory(r);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        return read_number(r, out);
    }
    if (word(r, "true")) {
        *out = json_true();
    } else if (word(r, "false")) {
        *out = json_false();
    } else if (word(r, "null")) {
        *out = json_null();
    } else {
        return fail(r, "invalid token");
    }
    return true;
}

json_t *lam__st_json_parse(const char *text, size_t len, lam__st_json_error *err) {
    memset(err, 0, sizeof *err);
    reader r = {text, text, text + len, err};
    skip_space(&r);
    if (r.p >= r.end || (*r.p != '{' && *r.p != '[')) {
        fail(&r, "'[' or '{' expected");
        return NULL;
    }
    if (memchr(text, '\0', len) != NULL) {
        r.p = memchr(text, '\0', len);
        fail(&r, "NUL byte in the text");
        return NULL;
    }
    json_t *v;
    if (!read_value(&r, &v, 0)) {
        return NULL;
    }
    skip_space(&r);
    if (r.p != r.end) {
        json_decref(v);
        fail(&r, "end of input expected");
        return NULL;
    }
    return v;
}

/* ---- writing ---- */

static bool write_string(lam__strbuf *sb, const char *s) {
    if (!lam__strbuf_printf(sb, "\"")) {
        return false;
    }
    for (const char *run = s;;) {
        const char *p = run;
        while (*p != '\0' && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) {
            p++;
        }
        if (p > run && !lam__strbuf_printf(sb, "%.*s", (int)(p - run), run)) {
            return false;
        }
        if (*p == '\0') {
            break;
        }
        bool ok = (*p == '"' || *p == '\\') ? lam__strbuf_printf(sb, "\\%c", *p)
                                            : lam__strbuf_printf(sb, "\\u%04x", (unsigned)*p);
        if (!ok) {
            return false;
        }
        run = p + 1;
    }
    return lam__strbuf_printf(sb, "\"");
}

static bool write_value(lam__strbuf *sb, const json_t *v, int depth) {
    if (depth > MAX_DEPTH) {
        return false;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *value;
        bool first = true;
        if (!lam__strbuf_printf(sb, "{")) {
            return false;
        }
        json_object_foreach((json_t *)v, key, value) {
            if ((!first && !lam__strbuf_printf(sb, ",")) || !write_string(sb, key) ||
                !lam__strbuf_printf(sb, ":") || !write_value(sb, value, depth + 1)) {
                return false;
            }
            first = false;
        }
        return lam__strbuf_printf(sb, "}");
    }
    case JSON_ARRAY: {
        if (!lam__strbuf_printf(sb, "[")) {
            return false;
        }
        for (size_t i = 0; i < json_array_size(v); i++) {
            if ((i > 0 && !lam__strbuf_printf(sb, ",")) ||
                !write_value(sb, json_array_get(v, i), depth + 1)) {
                return false;
            }
        }
        return lam__strbuf_printf(sb, "]");
    }
    case JSON_STRING:
        return write_string(sb, json_string_value(v));
    case JSON_INTEGER:
        return lam__strbuf_printf(sb, "%lld", (long long)json_integer_value(v));
    case JSON_REAL:
        return lam__strbuf_printf(sb, "%.17g", json_real_value(v));
    case JSON_TRUE:
        return lam__strbuf_printf(sb, "true");
    case JSON_FALSE:
        return lam__strbuf_printf(sb, "false");
    default:
        return lam__strbuf_printf(sb, "null");
    }
}

char *lam__st_json_dump(const json_t *v) {
    lam__strbuf sb = {0};
    if (!write_value(&sb, v, 0) || sb.data == NULL) {
        lam__strbuf_fini(&sb);
        return NULL;
    }
    return sb.data;
}

/* Jansson's own rule for strings (RFC 3629: no overlong forms, surrogates or values past
 * U+10FFFF), checked here so that a failing jansson call that follows can only mean out of
 * memory. */
bool lam__st_utf8_valid(const char *s) {
    const uint8_t *p = (const uint8_t *)s;
    while (*p) {
        uint8_t c = *p++;
        int extra;
        uint32_t v, min;
        if (c < 0x80) {
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1, v = c & 0x1Fu, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2, v = c & 0x0Fu, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3, v = c & 0x07u, min = 0x10000;
        } else {
            return false;
        }
        for (int i = 0; i < extra; i++, p++) {
            if ((*p & 0xC0u) != 0x80u) {
                return false;
            }
            v = (v << 6) | (*p & 0x3Fu);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
            return false;
        }
    }
    return true;
}
