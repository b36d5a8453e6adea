/* key=value lists: one tokenizer, one key lookup and one message grammar for layer attributes,
 * optimizer options and initializer arguments (kv.h has the grammar). */
#include "kv.h"
#include "error.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- spans -------------------------------------------------------------------------------- */

lam__kv_span lam__kv_span_of(const char *s) {
    lam__kv_span sp = {s != NULL ? s : "", s != NULL ? strlen(s) : 0};
    return sp;
}

lam__kv_span lam__kv_trim(lam__kv_span s) {
    while (s.len > 0 && isspace((unsigned char)s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && isspace((unsigned char)s.p[s.len - 1])) {
        s.len--;
    }
    return s;
}

bool lam__kv_span_is(lam__kv_span s, const char *word, bool nocase) {
    size_t n = strlen(word);
    if (s.p == NULL || s.len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char a = s.p[i], b = word[i];
        if (nocase ? tolower((unsigned char)a) != tolower((unsigned char)b) : a != b) {
            return false;
        }
    }
    return true;
}

char *lam__kv_span_dup(lam__kv_span s) {
    char *d = malloc(s.len + 1);
    if (d != NULL) {
        if (s.len > 0) {
            memcpy(d, s.p, s.len);
        }
        d[s.len] = '\0';
    }
    return d;
}

/* strtod and strtoll need a terminated string; numbers longer than this are not numbers. */
#define NUMBER_MAX 127

static bool number_text(lam__kv_span s, char *buf) {
    if (s.p == NULL || s.len == 0 || s.len > NUMBER_MAX || isspace((unsigned char)s.p[0])) {
        return false;
    }
    memcpy(buf, s.p, s.len);
    buf[s.len] = '\0';
    return true;
}

bool lam__kv_double(lam__kv_span s, double *out) {
    char buf[NUMBER_MAX + 1], *end;
    if (!number_text(s, buf)) {
        return false;
    }
    double v = strtod(buf, &end);
    if (end != buf + s.len) {
        return false;
    }
    *out = v;
    return true;
}

bool lam__kv_int(lam__kv_span s, int64_t *out) {
    char buf[NUMBER_MAX + 1], *end;
    if (!number_text(s, buf)) {
        return false;
    }
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (end != buf + s.len || errno != 0) {
        return false;
    }
    *out = v;
    return true;
}

/* ---- brackets ----------------------------------------------------------------------------- */

enum { WALK_OK, WALK_UNCLOSED, WALK_STRAY, WALK_CROSSED, WALK_DEEP };
#define WALK_MAX_DEPTH 64

typedef struct walk {
    size_t stop; /* the ',' or closing bracket found, or t.len */
    int problem;
    char open, close; /* the brackets a problem is about */
} walk;

static char closer_of(char c) {
    return c == '(' ? ')' : c == '[' ? ']' : c == '{' ? '}' : '\0';
}

/* Walks t from i to the first ',' outside brackets (when `comma`), or to the bracket closing
 * the one at i (when not). */
static walk walk_from(lam__kv_span t, size_t i, bool comma) {
    char stack[WALK_MAX_DEPTH];
    size_t depth = 0;
    walk w = {t.len, WALK_OK, 0, 0};
    for (; i < t.len; i++) {
        char c = t.p[i];
        if (closer_of(c) != '\0') {
            if (depth == WALK_MAX_DEPTH) {
                w.stop = i;
                w.problem = WALK_DEEP;
                return w;
            }
            stack[depth++] = c;
        } else if (c == ')' || c == ']' || c == '}') {
            if (depth == 0 || closer_of(stack[depth - 1]) != c) {
                w.stop = i;
                w.problem = depth == 0 ? WALK_STRAY : WALK_CROSSED;
                w.open = depth == 0 ? 0 : stack[depth - 1];
                w.close = c;
                return w;
            }
            if (--depth == 0 && !comma) {
                w.stop = i;
                return w;
            }
        } else if (c == ',' && comma && depth == 0) {
            w.stop = i;
            return w;
        }
    }
    if (depth > 0) {
        w.problem = WALK_UNCLOSED;
        w.open = stack[depth - 1];
    }
    return w;
}

size_t lam__kv_close(lam__kv_span text, size_t open) {
    if (open >= text.len || closer_of(text.p[open]) == '\0') {
        return text.len;
    }
    walk w = walk_from(text, open, false);
    return w.problem == WALK_OK ? w.stop : text.len;
}

/* ---- messages ----------------------------------------------------------------------------- */

static int ilen(size_t n) {
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* "<subject>: <problem>" is in sb; adds " in '<where>'" and the details, and sets the error. */
static lam_status fail(const lam__kv_schema *s, lam__strbuf *sb, const char *details) {
    if (s->where.p != NULL) {
        lam__strbuf_printf(sb, " in '%.*s'", ilen(s->where.len), s->where.p);
    }
    if (details != NULL && details[0] != '\0') {
        lam__strbuf_printf(sb, ", %s", details);
    }
    lam_status st = sb->data != NULL ? lam__error(LAM_ERR_INVALID_ARGUMENT, "%s", sb->data)
                                     : lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid %s",
                                                  s->subject, s->what);
    lam__strbuf_fini(sb);
    return st;
}

/* "<subject>: <Problem> <what> '<x>'" followed by where and details. */
static lam_status fail_item(const lam__kv_schema *s, const char *problem, lam__kv_span x,
                            const char *details) {
    lam__strbuf sb = {0};
    lam__strbuf_printf(&sb, "%s: %s %s '%.*s'", s->subject, problem, s->what, ilen(x.len), x.p);
    return fail(s, &sb, details);
}

static lam_status fail_unbalanced(const lam__kv_schema *s, lam__kv_span text, size_t start,
                                  walk w) {
    /* The item as written: up to the next comma after the fault, or the end. */
    size_t end = w.stop;
    while (end < text.len && text.p[end] != ',') {
        end++;
    }
    lam__kv_span item = lam__kv_trim((lam__kv_span){text.p + start, end - start});
    lam__strbuf sb = {0}, det = {0};
    lam__strbuf_printf(&sb, "%s: %s in %s '%.*s'", s->subject,
                       w.problem == WALK_DEEP ? "Nesting too deep" : "Unbalanced brackets", s->what,
                       ilen(item.len), item.p);
    if (w.problem == WALK_DEEP) {
        lam__strbuf_printf(&det, "at most %d levels of brackets", WALK_MAX_DEPTH);
    } else if (w.problem == WALK_UNCLOSED) {
        lam__strbuf_printf(&det, "'%c' is not closed", w.open);
    } else if (w.problem == WALK_STRAY) {
        lam__strbuf_printf(&det, "'%c' has no '%c'", w.close,
                           w.close == ')'   ? '('
                           : w.close == ']' ? '['
                                            : '{');
    } else {
        lam__strbuf_printf(&det, "'%c' is closed by '%c'", w.open, w.close);
    }
    lam_status st = fail(s, &sb, det.data);
    lam__strbuf_fini(&det);
    return st;
}

/* An empty item starting at `start`: names the item before it (or says it is the first). */
static lam_status fail_empty(const lam__kv_schema *s, lam__kv_span text, size_t start) {
    lam__strbuf sb = {0}, det = {0};
    lam__strbuf_printf(&sb, "%s: Empty %s", s->subject, s->what);
    if (start == 0) {
        lam__strbuf_printf(&det, "nothing before the first ','");
    } else {
        /* The previous item's brackets are balanced (it was read), so a depth count finds the
         * comma before it. */
        size_t b = start - 1; /* the ',' ending the previous item */
        int depth = 0;
        while (b > 0) {
            char c = text.p[b - 1];
            depth += (c == ')' || c == ']' || c == '}') - (c == '(' || c == '[' || c == '{');
            if (c == ',' && depth == 0) {
                break;
            }
            b--;
        }
        lam__kv_span prev = lam__kv_trim((lam__kv_span){text.p + b, start - 1 - b});
        lam__strbuf_printf(&det, "nothing after '%.*s,'", ilen(prev.len), prev.p);
    }
    lam_status st = fail(s, &sb, det.data);
    lam__strbuf_fini(&det);
    return st;
}

static lam_status fail_missing_value(const lam__kv_schema *s, lam__kv_span key, size_t k) {
    lam__strbuf sb = {0}, want = {0}, det = {0};
    lam__strbuf_printf(&sb, "%s: Missing value for %s '%.*s'", s->subject, s->what, ilen(key.len),
                       key.p);
    if (s->expect != NULL && k < s->n_keys) {
        s->expect(s->expect_ctx, k, &want);
    }
    if (want.len > 0) {
        lam__strbuf_printf(&det, "expected %s", want.data);
    }
    lam_status st = fail(s, &sb, det.data);
    lam__strbuf_fini(&want);
    lam__strbuf_fini(&det);
    return st;
}

static lam_status fail_unknown(const lam__kv_schema *s, lam__kv_span key) {
    lam__strbuf det = {0};
    lam__strbuf_printf(&det, "valid %ss: ", s->what);
    for (size_t i = 0; i < s->n_keys; i++) {
        lam__strbuf_printf(&det, "%s%s", i ? ", " : "", s->keys[i]);
    }
    if (s->n_keys == 0) {
        lam__strbuf_printf(&det, "none");
    }
    lam_status st = fail_item(s, "Unknown", key, det.data);
    lam__strbuf_fini(&det);
    return st;
}

/* ---- the tokenizer ------------------------------------------------------------------------ */

/* The tokenizer without the missing-value check (which lam__kv_parse makes after the key
 * lookup, so that an unknown key is named first). */
static lam_status next_item(const lam__kv_schema *s, lam__kv_span text, size_t *pos,
                            lam__kv_item *item, bool *got) {
    *got = false;
    memset(item, 0, sizeof *item);
    if (*pos > text.len || (*pos == 0 && lam__kv_trim(text).len == 0)) {
        *pos = text.len + 1;
        return LAM_OK;
    }
    size_t start = *pos;
    walk w = walk_from(text, start, true);
    if (w.problem != WALK_OK) {
        return fail_unbalanced(s, text, start, w);
    }
    *pos = w.stop + 1; /* past the ',', or past the end */
    lam__kv_span it = lam__kv_trim((lam__kv_span){text.p + start, w.stop - start});
    if (it.len == 0 && start > 0 && w.stop == text.len) {
        return LAM_OK; /* one trailing comma, as in C and Python lists */
    }
    if (it.len == 0) {
        return fail_empty(s, text, start);
    }
    item->text = it;
    /* The first '=' outside brackets (the item's brackets are balanced). */
    size_t eq = 0;
    for (int depth = 0; eq < it.len && !(it.p[eq] == '=' && depth == 0); eq++) {
        char c = it.p[eq];
        depth += (c == '(' || c == '[' || c == '{') - (c == ')' || c == ']' || c == '}');
    }
    if (eq == it.len) {
        if (!s->positional) {
            return fail_item(s, "Invalid", it, "expected name=value");
        }
        item->value = it;
    } else {
        item->key = lam__kv_trim((lam__kv_span){it.p, eq});
        item->value = lam__kv_trim((lam__kv_span){it.p + eq + 1, it.len - eq - 1});
        if (item->key.len == 0) {
            lam__strbuf sb = {0};
            lam__strbuf_printf(&sb, "%s: Missing %s name in '%.*s'", s->subject, s->what,
                               ilen(it.len), it.p);
            return fail(s, &sb, "expected name=value");
        }
    }
    *got = true;
    return LAM_OK;
}

lam_status lam__kv_next(const lam__kv_schema *s, lam__kv_span text, size_t *pos, lam__kv_item *item,
                        bool *got) {
    lam_status st = next_item(s, text, pos, item, got);
    if (st == LAM_OK && *got && item->key.p != NULL && item->value.len == 0) {
        *got = false;
        return fail_missing_value(s, item->key, SIZE_MAX);
    }
    return st;
}

/* ---- a list against its keys -------------------------------------------------------------- */

lam_status lam__kv_parse(const lam__kv_schema *s, lam__kv_span text, lam__kv_span *values) {
    for (size_t k = 0; k < s->n_keys; k++) {
        values[k] = (lam__kv_span){NULL, 0};
    }
    size_t pos = 0, n_positional = 0;
    bool named = false, got;
    lam__kv_item it;
    for (;;) {
        lam_status st = next_item(s, text, &pos, &it, &got);
        if (st != LAM_OK || !got) {
            return st;
        }
        size_t k = 0;
        if (it.key.p == NULL) {
            if (named) {
                return fail_item(s, "Positional", it.value,
                                 "positional ones come before named ones");
            }
            if (n_positional == s->n_keys) {
                lam__strbuf sb = {0}, det = {0};
                lam__strbuf_printf(&sb, "%s: Too many %ss", s->subject, s->what);
                if (s->n_keys == 0) {
                    lam__strbuf_printf(&det, "none allowed");
                } else {
                    lam__strbuf_printf(&det, "at most %zu allowed", s->n_keys);
                }
                st = fail(s, &sb, det.data);
                lam__strbuf_fini(&det);
                return st;
            }
            k = n_positional++;
        } else {
            named = true;
            while (k < s->n_keys && !lam__kv_span_is(it.key, s->keys[k], false)) {
                k++;
            }
            if (k == s->n_keys) {
                return fail_unknown(s, it.key);
            }
        }
        if (values[k].p != NULL) {
            return fail_item(s, "Repeated", lam__kv_span_of(s->keys[k]), NULL);
        }
        if (it.key.p != NULL && it.value.len == 0 && !s->empty_values) {
            return fail_missing_value(s, it.key, k);
        }
        values[k] = it.value;
    }
}

lam_status lam__kv_missing(const lam__kv_schema *s, size_t key) {
    return fail_missing_value(s, lam__kv_span_of(key < s->n_keys ? s->keys[key] : ""), key);
}
