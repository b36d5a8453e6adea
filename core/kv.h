/*
 * key=value lists (kv.c): the one parser behind layer attributes ("units=256, activation=relu"),
 * optimizer options ("learning_rate=0.1, momentum=0.9") and initializer arguments
 * ("xavier(gaussian, magnitude=2)"), with one message grammar. Private to core/.
 *
 * A list is items separated by commas; spaces around items, keys and values are dropped; a
 * comma inside (), [] or {} does not split, so "kernel=(3,3)" is one item with the value
 * "(3,3)". An item is "key=value" (split at its first '=' outside brackets) or, where the
 * caller allows it, a bare value (positional). Blank text is an empty list; one trailing comma
 * is allowed ("units=3,"), other empty items are errors.
 *
 * Messages are `<subject>: <Problem>, <details>`, with the caller's subject (a layer type, an
 * optimizer, a function) and word for an item (attribute, option, argument), and, when the
 * caller gives it, the whole text as " in '<where>'":
 *   <subject>: Unknown <what> 'k'[ in '<where>'], valid <what>s: a, b
 *   <subject>: Repeated <what> 'k'[ in '<where>']
 *   <subject>: Missing value for <what> 'k'[ in '<where>'][, expected <expect>]
 *   <subject>: Missing <what> name in '=v'[ in '<where>'], expected name=value
 *   <subject>: Invalid <what> 'v'[ in '<where>'], expected name=value
 *   <subject>: Empty <what>[ in '<where>'], nothing before the first ','
 *   <subject>: Empty <what>[ in '<where>'], nothing after 'k=v,'   (before another ',')
 *   <subject>: Unbalanced brackets in <what> 'k=(1'[ in '<where>'], '(' is not closed
 *   <subject>: Too many <what>s[ in '<where>'], at most N allowed
 *   <subject>: Positional <what> 'v'[ in '<where>'], positional ones come before named ones
 * All of them are LAM_ERR_INVALID_ARGUMENT; when memory for a message's details runs out, the
 * details are left out.
 */
#ifndef LAMINA_CORE_KV_H
#define LAMINA_CORE_KV_H

#include "lamina/lamina.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A piece of a caller's text (not NUL-terminated); p == NULL means absent. */
typedef struct lam__kv_span {
    const char *p;
    size_t len;
} lam__kv_span;

/* One item: key and value trimmed; key.p is NULL for a positional item; text is the whole
 * item, trimmed (for messages). */
typedef struct lam__kv_item {
    lam__kv_span key;
    lam__kv_span value;
    lam__kv_span text;
} lam__kv_item;

/* What a list may hold and how its messages read. */
typedef struct lam__kv_schema {
    const char *subject; /* message subject */
    const char *what;    /* one item: "attribute", "option", "argument" */
    lam__kv_span where;  /* optional: the whole text, quoted in messages */
    const char *const *keys;
    size_t n_keys;
    /* Bare values allowed: the i-th fills keys[i], before any named item. */
    bool positional;
    /* "k=" gives k an empty value, for the caller to judge (a free string may be empty; it calls
     * lam__kv_missing otherwise), instead of the missing-value error. */
    bool empty_values;
    /* Optional: appends what keys[key]'s value should be ("an integer"), for the missing-value
     * message; appending nothing leaves the message without it. */
    void (*expect)(const void *ctx, size_t key, lam__strbuf *sb);
    const void *expect_ctx;
} lam__kv_schema;

/* The span of a C string (NULL gives an empty one), and a span with spaces trimmed. */
lam__kv_span lam__kv_span_of(const char *s);
lam__kv_span lam__kv_trim(lam__kv_span s);
/* True when the span is exactly `word` (case-insensitive when `nocase`). */
bool lam__kv_span_is(lam__kv_span s, const char *word, bool nocase);
/* A NUL-terminated copy (malloc), NULL on out of memory. */
char *lam__kv_span_dup(lam__kv_span s);
/* The whole span as a number (strtod syntax; inf and nan are numbers, the caller judges range)
 * or a base-10 integer fitting int64_t; false on anything else, including an empty span. */
bool lam__kv_double(lam__kv_span s, double *out);
bool lam__kv_int(lam__kv_span s, int64_t *out);

/*
 * The tokenizer: reads the item of `text` that starts at *pos (0 for the first) and moves *pos
 * past it. *got is false, with LAM_OK, when the list has no more items. Reports empty items,
 * unbalanced brackets, a missing key or value, and a bare value where the schema allows none;
 * keys are not looked up (s->keys, n_keys and expect are not used).
 */
lam_status lam__kv_next(const lam__kv_schema *s, lam__kv_span text, size_t *pos, lam__kv_item *item,
                        bool *got);

/*
 * The whole list against the schema's keys: values[k] (n_keys entries, set to absent first) is
 * keys[k]'s value when given. On top of the tokenizer's errors: unknown keys (case-sensitive,
 * reported before a missing value), repeated keys (a positional value and a named one for the
 * same key included), too many positional values, a positional value after a named one. The
 * first error in the text is the one reported.
 */
lam_status lam__kv_parse(const lam__kv_schema *s, lam__kv_span text, lam__kv_span *values);

/* The missing-value error for keys[key] (with s->expect's words): for a caller that took an
 * empty value (empty_values) its type does not allow. */
lam_status lam__kv_missing(const lam__kv_schema *s, size_t key);

/*
 * The closing bracket matching the opening one at text.p[open] (one of "([{"): its index, or
 * text.len when the text ends first or brackets are crossed ("(]").
 */
size_t lam__kv_close(lam__kv_span text, size_t open);

#endif
