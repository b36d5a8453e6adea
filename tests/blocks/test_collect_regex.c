/*
 * collect_params with hostile regular expressions: patterns that crashed glibc's regcomp (deep
 * nesting, megabytes of alternatives) or hung it (nested bounded repetitions) are refused
 * quickly with a message; the pattern is compiled as given, so it cannot close the anchoring
 * group and escape it; a match counts only when it starts at the first character (re.match).
 */
#include "block_util.h"

#include <time.h>

TestSuite(collect_regex, .fini = bu_fini);

/* Sequential[Dense(4, in 3), Dense(2, in 4)]: dense<i>_weight, dense<i>_bias, twice. */
static lam_block *two_dense(void) {
    lam_block *net = bu_sequential();
    bu_add_layer(net, "Dense", "units=4, in_units=3");
    bu_add_layer(net, "Dense", "units=2, in_units=4");
    return net;
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A pattern of `n` copies of `unit`, between `head` and `tail`; the caller frees it. */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail) {
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *p = malloc(hl + ul * n + tl + 1);
    cr_assert_not_null(p);
    memcpy(p, head, hl);
    for (size_t i = 0; i < n; i++) {
        memcpy(p + hl + i * ul, unit, ul);
    }
    memcpy(p + hl + ul * n, tail, tl + 1);
    return p;
}

/* collect_params(net, pattern) fails with INVALID_ARGUMENT and exactly `msg`, within a second. */
static void assert_refused(lam_block *net, const char *pattern, const char *msg, const char *what) {
    lam_param_list *l = (lam_param_list *)(void *)&l;
    double t0 = seconds();
    lam_status st = lam_block_collect_params(net, pattern, &l);
    double dt = seconds() - t0;
    bu_assert_error(st, LAM_ERR_INVALID_ARGUMENT, msg, what);
    cr_assert_null(l, "%s: *out not NULL on failure", what);
    cr_assert(dt < 1.0, "%s: took %.2f s to refuse", what, dt);
}

Test(collect_regex, refuses_30k_nested_parentheses) {
    lam_block *net = two_dense();
    char *open = repeat("", "(", 30000, "");
    char *p = repeat(open, ")", 30000, ""); /* "((...(" then "))...)": 60000 bytes */
    assert_refused(net, p, "collect_params: Regular expression too long, 60000 bytes, at most 1024",
                   "30k nested parentheses");
    free(open);
    free(p);
    /* Short but deep: 33 levels. */
    char *deep_open = repeat("", "(", 33, "dense");
    char *deep = repeat(deep_open, ")", 33, "");
    assert_refused(net, deep,
                   "collect_params: Regular expression nested too deep, more than 32 levels of "
                   "parentheses",
                   "33 nested parentheses");
    free(deep_open);
    free(deep);
    /* 32 levels are fine and still match. */
    deep_open = repeat("", "(", 32, "dense");
    deep = repeat(deep_open, ")", 32, ".*");
    lam_param_list *l = NULL;
    BU_OK(lam_block_collect_params(net, deep, &l));
    cr_assert_eq(lam_param_list_count(l), 4);
    lam_param_list_destroy(l);
    free(deep_open);
    free(deep);
    lam_block_release(net);
}

Test(collect_regex, refuses_a_10_megabyte_alternation) {
    lam_block *net = two_dense();
    size_t n = (size_t)5 << 20; /* "a|" five mebi times, then "b": 10 MiB + 1 */
    char *p = repeat("", "a|", n, "b");
    assert_refused(
        net, p,
        bu_fmt("collect_params: Regular expression too long, %zu bytes, at most 1024", 2 * n + 1),
        "10 MB alternation");
    free(p);
    lam_block_release(net);
}

Test(collect_regex, refuses_nested_repetitions_quickly) {
    lam_block *net = two_dense();
    const char *msg = "collect_params: Regular expression too complex, its repetitions expand to "
                      "more than 1024 elements";
    assert_refused(net, "((((a{1,100}){1,100}){1,100}){1,100})", msg, "4 nested {1,100}");
    assert_refused(net, "(a{1,100}){1,100}", msg, "2 nested {1,100}");
    assert_refused(net, "(((((((((((x+)+)+)+)+)+)+)+)+)+)+)", msg, "11 nested +");
    assert_refused(net, "a{2000}", msg, "a{2000}");
    /* Within the limit: compiled and used. */
    lam_param_list *l = NULL;
    BU_OK(lam_block_collect_params(net, "[a-z]{1,100}[0-9]{1,5}_(weight|bias){1}", &l));
    cr_assert_eq(lam_param_list_count(l), 4);
    lam_param_list_destroy(l);
    lam_block_release(net);
}

Test(collect_regex, pattern_cannot_escape_the_start_anchor) {
    lam_block *net = two_dense();
    /* Spliced into "^(%s)" this became "^(zzz)|(.*bias)", selecting both biases. As given, its
     * '(' is never closed. */
    lam_param_list *l = (lam_param_list *)(void *)&l;
    bu_assert_error_prefix(
        lam_block_collect_params(net, "zzz)|(.*bias", &l), LAM_ERR_INVALID_ARGUMENT,
        "collect_params: Invalid regular expression 'zzz)|(.*bias', ", "zzz)|(.*bias");
    cr_assert_null(l);
    /* An unmatched ')' is an ordinary character in POSIX ERE: "zzz)" or ".*bias". */
    BU_OK(lam_block_collect_params(net, "zzz)|.*bias", &l));
    cr_assert_eq(lam_param_list_count(l), 2);
    cr_assert_str_eq(lam_param_list_key(l, 0), "0.bias");
    cr_assert_str_eq(lam_param_list_key(l, 1), "1.bias");
    lam_param_list_destroy(l);
    lam_block_release(net);
}

Test(collect_regex, a_match_must_start_at_the_first_character) {
    lam_block *net = two_dense();
    const char *d1 = lam_block_name(lam_block_child_at(net, 1));
    lam_param_list *l = NULL;
    /* "_bias" occurs in every bias name, never at its start. */
    BU_OK(lam_block_collect_params(net, "_bias", &l));
    cr_assert_eq(lam_param_list_count(l), 0);
    lam_param_list_destroy(l);
    /* Only the first alternative can match at 0. */
    BU_OK(lam_block_collect_params(net, bu_fmt("_weight|%s_b", d1), &l));
    cr_assert_eq(lam_param_list_count(l), 1);
    cr_assert_str_eq(lam_param_list_key(l, 0), "1.bias");
    lam_param_list_destroy(l);
    /* Not anchored at the end: a prefix selects (re.match, not re.fullmatch). */
    BU_OK(lam_block_collect_params(net, bu_fmt("%s_w", d1), &l));
    cr_assert_eq(lam_param_list_count(l), 1);
    cr_assert_str_eq(lam_param_list_key(l, 0), "1.weight");
    lam_param_list_destroy(l);
    lam_block_release(net);
}

Test(collect_regex, back_references_are_refused) {
    lam_block *net = two_dense();
    assert_refused(net, "(dense)\\1",
                   "collect_params: Unsupported regular expression, back reference \\1",
                   "(dense)\\1");
    /* Inside a bracket expression a backslash is an ordinary character. */
    lam_param_list *l = NULL;
    BU_OK(lam_block_collect_params(net, "dense[\\0-9]", &l));
    cr_assert_eq(lam_param_list_count(l), 4);
    lam_param_list_destroy(l);
    lam_block_release(net);
}
