/*
 * The key=value parser (core/kv.c) behind layer attributes, optimizer options and initializer
 * arguments: items, brackets, positional values, key lookup and the one message grammar.
 *
 * Built from kv.c, error.c and util.c instead of linking liblamina (its functions are
 * internal). Every expected item and message is written out by hand from the text parsed.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kv.h"

TestSuite(kv);

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *const dense_keys[] = {"units", "activation", "use_bias"};

static void dense_expect(const void *ctx, size_t k, lam__strbuf *sb) {
    (void)ctx;
    static const char *const what[] = {"an integer", "one of none|relu", NULL};
    if (what[k] != NULL) {
        lam__strbuf_printf(sb, "%s", what[k]);
    }
}

/* Layer-like: named items only, no where. */
static lam__kv_schema dense(void) {
    lam__kv_schema s = {.subject = "Dense",
                        .what = "attribute",
                        .keys = dense_keys,
                        .n_keys = 3,
                        .expect = dense_expect};
    return s;
}

static const char *const xavier_keys[] = {"rnd_type", "factor_type", "magnitude"};

/* Initializer-like: positional values allowed, the whole text quoted. */
static lam__kv_schema xavier(const char *where) {
    lam__kv_schema s = {.subject = "lam_init_parse",
                        .what = "argument",
                        .where = lam__kv_span_of(where),
                        .keys = xavier_keys,
                        .n_keys = 3,
                        .positional = true};
    return s;
}

static void assert_span(lam__kv_span sp, const char *want, const char *what) {
    if (want == NULL) {
        cr_assert_null(sp.p, "%s: expected absent, got '%.*s'", what, (int)sp.len,
                       sp.p ? sp.p : "");
        return;
    }
    cr_assert_not_null(sp.p, "%s: expected '%s', got absent", what, want);
    cr_assert(sp.len == strlen(want) && memcmp(sp.p, want, sp.len) == 0,
              "%s: expected '%s', got '%.*s'", what, want, (int)sp.len, sp.p);
}

/* Reads every item of text: keys[i] (NULL for positional) and values[i], n of them. */
static void assert_items(const lam__kv_schema *s, const char *text, size_t n,
                         const char *const *keys, const char *const *values) {
    lam__kv_span t = lam__kv_span_of(text);
    size_t pos = 0, i = 0;
    lam__kv_item it;
    bool got;
    for (;;) {
        lam_status st = lam__kv_next(s, t, &pos, &it, &got);
        cr_assert_eq(st, LAM_OK, "'%s' item %zu: %s", text, i, lam_last_error());
        if (!got) {
            break;
        }
        cr_assert(i < n, "'%s': more than %zu items", text, n);
        assert_span(it.key, keys[i], text);
        assert_span(it.value, values[i], text);
        i++;
    }
    cr_assert_eq(i, n, "'%s': %zu items, expected %zu", text, i, n);
    /* Exhausted stays exhausted. */
    cr_assert_eq(lam__kv_next(s, t, &pos, &it, &got), LAM_OK);
    cr_assert(!got);
}

/* The tokenizer's first error on text. */
static void assert_next_error(const lam__kv_schema *s, const char *text, const char *msg) {
    lam__kv_span t = lam__kv_span_of(text);
    size_t pos = 0;
    lam__kv_item it;
    bool got = true;
    lam_status st = LAM_OK;
    while (st == LAM_OK && got) {
        st = lam__kv_next(s, t, &pos, &it, &got);
    }
    cr_assert_eq(st, LAM_ERR_INVALID_ARGUMENT, "'%s': status %d", text, (int)st);
    cr_assert_str_eq(lam_last_error(), msg, "'%s'", text);
}

static void assert_parse_error(const lam__kv_schema *s, const char *text, const char *msg) {
    lam__kv_span vals[3];
    lam_status st = lam__kv_parse(s, lam__kv_span_of(text), vals);
    cr_assert_eq(st, LAM_ERR_INVALID_ARGUMENT, "'%s': status %d", text, (int)st);
    cr_assert_str_eq(lam_last_error(), msg, "'%s'", text);
}

/* ---- items -------------------------------------------------------------------------------- */

Test(kv, items_are_split_at_commas_and_trimmed) {
    lam__kv_schema s = dense();
    assert_items(&s, "units=256, activation=relu", 2, (const char *[]){"units", "activation"},
                 (const char *[]){"256", "relu"});
    assert_items(&s, "  a = 1 ,\tb=  x y  \n", 2, (const char *[]){"a", "b"},
                 (const char *[]){"1", "x y"});
    /* Only the first '=' splits. */
    assert_items(&s, "a=b=c", 1, (const char *[]){"a"}, (const char *[]){"b=c"});
}

Test(kv, one_trailing_comma_is_allowed) {
    lam__kv_schema s = dense();
    assert_items(&s, "units=3,", 1, (const char *[]){"units"}, (const char *[]){"3"});
    assert_items(&s, "  units = 3 ,use_bias = FALSE,  ", 2, (const char *[]){"units", "use_bias"},
                 (const char *[]){"3", "FALSE"});
    lam__kv_schema x = xavier("xavier(gaussian,)");
    assert_items(&x, "gaussian,", 1, (const char *[]){NULL}, (const char *[]){"gaussian"});
}

Test(kv, blank_text_is_an_empty_list) {
    lam__kv_schema s = dense();
    assert_items(&s, "", 0, NULL, NULL);
    assert_items(&s, " \t\n ", 0, NULL, NULL);
    assert_items(&s, NULL, 0, NULL, NULL);
    lam__kv_span vals[3];
    cr_assert_eq(lam__kv_parse(&s, lam__kv_span_of("  "), vals), LAM_OK);
    for (int k = 0; k < 3; k++) {
        cr_assert_null(vals[k].p);
    }
}

Test(kv, commas_inside_brackets_do_not_split) {
    lam__kv_schema s = dense();
    assert_items(&s, "kernel=(3,3), strides=[1, 2], pad={0,1}", 3,
                 (const char *[]){"kernel", "strides", "pad"},
                 (const char *[]){"(3,3)", "[1, 2]", "{0,1}"});
    assert_items(&s, "weight_initializer=xavier(gaussian, in, 2), units=3", 2,
                 (const char *[]){"weight_initializer", "units"},
                 (const char *[]){"xavier(gaussian, in, 2)", "3"});
    /* Nested, and an '=' inside brackets belongs to the value. */
    assert_items(&s, "k=((1,2),[3,(4,5)]), f=g(a=1, b=2)", 2, (const char *[]){"k", "f"},
                 (const char *[]){"((1,2),[3,(4,5)])", "g(a=1, b=2)"});
}

Test(kv, positional_values_where_allowed) {
    lam__kv_schema s = xavier("xavier(gaussian, (1,2), magnitude=2)");
    assert_items(&s, "gaussian, (1,2), magnitude=2", 3, (const char *[]){NULL, NULL, "magnitude"},
                 (const char *[]){"gaussian", "(1,2)", "2"});
    /* An '=' only inside brackets: still positional. */
    assert_items(&s, "(a=1)", 1, (const char *[]){NULL}, (const char *[]){"(a=1)"});
}

/* ---- the tokenizer's errors --------------------------------------------------------------- */

Test(kv, bare_value_where_names_are_required) {
    lam__kv_schema s = dense();
    assert_next_error(&s, "units", "Dense: Invalid attribute 'units', expected name=value");
    assert_next_error(&s, "units=2, relu", "Dense: Invalid attribute 'relu', expected name=value");
}

Test(kv, empty_items_are_errors) {
    lam__kv_schema s = dense();
    assert_next_error(&s, "a=1,,b=2", "Dense: Empty attribute, nothing after 'a=1,'");
    assert_next_error(&s, ",a=1", "Dense: Empty attribute, nothing before the first ','");
    assert_next_error(&s, "a=1, ,", "Dense: Empty attribute, nothing after 'a=1,'");
    assert_next_error(&s, " , ", "Dense: Empty attribute, nothing before the first ','");
    assert_next_error(&s, ",", "Dense: Empty attribute, nothing before the first ','");
    /* The item before is found past the comma inside its brackets. */
    assert_next_error(&s, "x=1, k=(1,2), ,b=1", "Dense: Empty attribute, nothing after 'k=(1,2),'");
    lam__kv_schema x = xavier("xavier(,)");
    assert_next_error(
        &x, ",", "lam_init_parse: Empty argument in 'xavier(,)', nothing before the first ','");
}

Test(kv, missing_key_or_value) {
    lam__kv_schema s = dense();
    assert_next_error(&s, "=5", "Dense: Missing attribute name in '=5', expected name=value");
    assert_next_error(&s, "units=2, = relu",
                      "Dense: Missing attribute name in '= relu', expected name=value");
    /* The tokenizer does not look keys up, so it cannot say what the value should be. */
    assert_next_error(&s, "units=", "Dense: Missing value for attribute 'units'");
    assert_next_error(&s, "a=1, units =  ", "Dense: Missing value for attribute 'units'");
}

Test(kv, unbalanced_brackets) {
    lam__kv_schema s = dense();
    assert_next_error(&s, "kernel=(3,3, activation=relu",
                      "Dense: Unbalanced brackets in attribute 'kernel=(3,3, activation=relu', "
                      "'(' is not closed");
    assert_next_error(&s, "kernel=3,3), units=1",
                      "Dense: Unbalanced brackets in attribute '3)', ')' has no '('");
    assert_next_error(&s, "kernel=(3,3], units=1",
                      "Dense: Unbalanced brackets in attribute 'kernel=(3,3]', '(' is closed by "
                      "']'");
    assert_next_error(&s, "k=[(1]",
                      "Dense: Unbalanced brackets in attribute 'k=[(1]', '(' is "
                      "closed by ']'");
    lam__kv_schema x = xavier("xavier(gaussian, {)");
    assert_next_error(&x, "gaussian, {",
                      "lam_init_parse: Unbalanced brackets in argument '{' in 'xavier(gaussian, "
                      "{)', '{' is not closed");
}

Test(kv, nesting_is_bounded) {
    char text[200] = "k=";
    for (int i = 0; i < 65; i++) {
        strcat(text, "(");
    }
    lam__kv_schema s = dense();
    lam__kv_span vals[3];
    cr_assert_eq(lam__kv_parse(&s, lam__kv_span_of(text), vals), LAM_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(lam_last_error(), "Dense: Nesting too deep in attribute 'k=((") ==
                  lam_last_error(),
              "%s", lam_last_error());
    cr_assert(strstr(lam_last_error(), ", at most 64 levels of brackets") != NULL, "%s",
              lam_last_error());
    /* 64 levels are fine. */
    char ok[200] = "units=";
    for (int i = 0; i < 64; i++) {
        strcat(ok, "(");
    }
    for (int i = 0; i < 64; i++) {
        strcat(ok, ")");
    }
    cr_assert_eq(lam__kv_parse(&s, lam__kv_span_of(ok), vals), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(vals[0].len, 128);
}

/* ---- a list against its keys -------------------------------------------------------------- */

Test(kv, values_land_on_their_keys) {
    lam__kv_schema s = dense();
    lam__kv_span vals[3];
    cr_assert_eq(lam__kv_parse(&s, lam__kv_span_of("activation = relu , units=3"), vals), LAM_OK);
    assert_span(vals[0], "3", "units");
    assert_span(vals[1], "relu", "activation");
    assert_span(vals[2], NULL, "use_bias");

    lam__kv_schema x = xavier("xavier(gaussian, magnitude = 2)");
    cr_assert_eq(lam__kv_parse(&x, lam__kv_span_of("gaussian, magnitude = 2"), vals), LAM_OK);
    assert_span(vals[0], "gaussian", "rnd_type");
    assert_span(vals[1], NULL, "factor_type");
    assert_span(vals[2], "2", "magnitude");
}

Test(kv, list_value_stays_one_value) {
    static const char *const keys[] = {"kernel", "strides"};
    lam__kv_schema s = {.subject = "Conv2D", .what = "attribute", .keys = keys, .n_keys = 2};
    lam__kv_span vals[2];
    cr_assert_eq(lam__kv_parse(&s, lam__kv_span_of("kernel=(3,3), strides=(1, 2)"), vals), LAM_OK);
    assert_span(vals[0], "(3,3)", "kernel");
    assert_span(vals[1], "(1, 2)", "strides");
}

Test(kv, unknown_key_lists_valid_ones) {
    lam__kv_schema s = dense();
    assert_parse_error(&s, "unit=3",
                       "Dense: Unknown attribute 'unit', valid attributes: units, activation, "
                       "use_bias");
    /* Keys are case-sensitive. */
    assert_parse_error(&s, "Units=3",
                       "Dense: Unknown attribute 'Units', valid attributes: units, activation, "
                       "use_bias");
    /* An unknown key is named before its missing value. */
    assert_parse_error(&s, "unit=",
                       "Dense: Unknown attribute 'unit', valid attributes: units, activation, "
                       "use_bias");
    lam__kv_schema none = {.subject = "Centered", .what = "attribute"};
    assert_parse_error(&none, "axis=1",
                       "Centered: Unknown attribute 'axis', valid attributes: none");
    lam__kv_schema x = xavier("xavier(size=1)");
    assert_parse_error(&x, "size=1",
                       "lam_init_parse: Unknown argument 'size' in 'xavier(size=1)', valid "
                       "arguments: rnd_type, factor_type, magnitude");
}

Test(kv, repeated_key_is_an_error) {
    lam__kv_schema s = dense();
    assert_parse_error(&s, "units=1, units=2", "Dense: Repeated attribute 'units'");
    /* The first error in the text wins. */
    assert_parse_error(&s, "units=1, units=2, bogus=3", "Dense: Repeated attribute 'units'");
    assert_parse_error(&s, "bogus=3, units=1, units=2",
                       "Dense: Unknown attribute 'bogus', valid attributes: units, activation, "
                       "use_bias");
    /* A positional value and a named one for the same key. */
    lam__kv_schema x = xavier("xavier(gaussian, rnd_type=uniform)");
    assert_parse_error(&x, "gaussian, rnd_type=uniform",
                       "lam_init_parse: Repeated argument 'rnd_type' in 'xavier(gaussian, "
                       "rnd_type=uniform)'");
}

Test(kv, missing_value_says_what_is_expected) {
    lam__kv_schema s = dense();
    assert_parse_error(&s, "units=",
                       "Dense: Missing value for attribute 'units', expected an "
                       "integer");
    assert_parse_error(&s, "units=2, activation =",
                       "Dense: Missing value for attribute 'activation', expected one of "
                       "none|relu");
    /* Nothing to say about use_bias: no details. */
    assert_parse_error(&s, "use_bias=", "Dense: Missing value for attribute 'use_bias'");
}

Test(kv, empty_values_left_to_the_caller_where_asked) {
    lam__kv_schema s = dense();
    s.empty_values = true;
    lam__kv_span vals[3];
    cr_assert_eq(lam__kv_parse(&s, lam__kv_span_of("units=, use_bias = "), vals), LAM_OK, "%s",
                 lam_last_error());
    assert_span(vals[0], "", "units");
    assert_span(vals[1], NULL, "activation");
    assert_span(vals[2], "", "use_bias");
    /* The caller reports the one its type does not allow, in the same words. */
    cr_assert_eq(lam__kv_missing(&s, 0), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(lam_last_error(),
                     "Dense: Missing value for attribute 'units', expected an integer");
    /* A missing key is still an error. */
    assert_parse_error(&s, "=1", "Dense: Missing attribute name in '=1', expected name=value");
}

Test(kv, positional_values_are_bounded_and_come_first) {
    lam__kv_schema x = xavier("xavier(1, 2, 3, 4)");
    assert_parse_error(&x, "1, 2, 3, 4",
                       "lam_init_parse: Too many arguments in 'xavier(1, 2, 3, 4)', at most 3 "
                       "allowed");
    lam__kv_schema zeros = {.subject = "lam_init_parse",
                            .what = "argument",
                            .where = lam__kv_span_of("zeros(1)"),
                            .positional = true};
    assert_parse_error(&zeros, "1",
                       "lam_init_parse: Too many arguments in 'zeros(1)', none allowed");
    lam__kv_schema y = xavier("xavier(magnitude=2, gaussian)");
    assert_parse_error(&y, "magnitude=2, gaussian",
                       "lam_init_parse: Positional argument 'gaussian' in 'xavier(magnitude=2, "
                       "gaussian)', positional ones come before named ones");
}

/* ---- helpers for values ------------------------------------------------------------------- */

Test(kv, numbers) {
    double d = -1.0;
    cr_assert(lam__kv_double(lam__kv_span_of("1e-3"), &d));
    cr_assert_eq(d, 0.001);
    cr_assert(lam__kv_double(lam__kv_span_of("-2.5"), &d));
    cr_assert_eq(d, -2.5);
    cr_assert(lam__kv_double(lam__kv_span_of("inf"), &d));
    cr_assert(isinf(d) && d > 0);
    cr_assert(lam__kv_double(lam__kv_span_of("1e999"), &d));
    cr_assert(isinf(d), "an overflow reads as inf, for the caller to reject");
    cr_assert(!lam__kv_double(lam__kv_span_of(""), &d));
    cr_assert(!lam__kv_double(lam__kv_span_of("1x"), &d));
    cr_assert(!lam__kv_double(lam__kv_span_of(" 1"), &d));
    cr_assert(!lam__kv_double(lam__kv_span_of("fast"), &d));
    /* A span is read to its end only: "12" out of "123". */
    lam__kv_span twelve = {"123", 2};
    cr_assert(lam__kv_double(twelve, &d));
    cr_assert_eq(d, 12.0);

    int64_t i = 0;
    cr_assert(lam__kv_int(lam__kv_span_of("-42"), &i));
    cr_assert_eq(i, -42);
    cr_assert(lam__kv_int(lam__kv_span_of("9223372036854775807"), &i));
    cr_assert_eq(i, INT64_MAX);
    cr_assert(!lam__kv_int(lam__kv_span_of("9223372036854775808"), &i));
    cr_assert(!lam__kv_int(lam__kv_span_of("2.5"), &i));
    cr_assert(!lam__kv_int(lam__kv_span_of("ten"), &i));
    cr_assert(!lam__kv_int(lam__kv_span_of(""), &i));
    lam__kv_span four = {"42", 1};
    cr_assert(lam__kv_int(four, &i));
    cr_assert_eq(i, 4);
}

Test(kv, spans) {
    lam__kv_span t = lam__kv_trim(lam__kv_span_of("  ab c\t"));
    assert_span(t, "ab c", "trim");
    cr_assert(lam__kv_span_is(lam__kv_span_of("Gaussian"), "gaussian", true));
    cr_assert(!lam__kv_span_is(lam__kv_span_of("Gaussian"), "gaussian", false));
    cr_assert(!lam__kv_span_is(lam__kv_span_of("gauss"), "gaussian", true));
    char *d = lam__kv_span_dup((lam__kv_span){"relu, x", 4});
    cr_assert_str_eq(d, "relu");
    free(d);
    lam__kv_span all = lam__kv_span_of("(a(b)[c])d");
    cr_assert_eq(lam__kv_close(all, 0), 8);
    cr_assert_eq(lam__kv_close(all, 2), 4);
    cr_assert_eq(lam__kv_close(lam__kv_span_of("(a]"), 0), 3, "crossed: no match");
    cr_assert_eq(lam__kv_close(lam__kv_span_of("(a"), 0), 2, "unclosed: no match");
    cr_assert_eq(lam__kv_close(lam__kv_span_of("x(a)"), 0), 4, "not a bracket");
}
