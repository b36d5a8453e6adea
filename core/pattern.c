/* Regular expressions given by users (collect_params filters): checked against limits before
 * glibc's regcomp sees them, compiled as given, and matched at the start of the subject. */
#define _POSIX_C_SOURCE 200809L
#include "pattern.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

/*
 * glibc's regcomp recurses once per nesting level (30k parentheses overflow the stack), builds
 * one node per character of the pattern, and expands a bounded repetition x{m,n} into n copies
 * of x, so nested repetitions multiply: ((((a{1,100}){1,100}){1,100}){1,100}) hangs. Compiling
 * and matching cost grows with the expanded size (measured with glibc 2.3x: at 1024 nodes of
 * optional atoms, 0.3 s to compile and 0.1-0.3 s per name matched; ordinary filters take
 * microseconds). Parameter filters are short; these limits leave every reasonable one alone.
 * lamina.h documents them (lam_block_collect_params).
 */
#define PATTERN_MAX_LEN   1024
#define PATTERN_MAX_DEPTH 32
#define PATTERN_MAX_SIZE  1024 /* nodes after expanding repetitions, roughly */

/* Saturating arithmetic on sizes: everything above the limit counts as limit + 1. */
static uint64_t sat(uint64_t x) {
    return x > PATTERN_MAX_SIZE ? PATTERN_MAX_SIZE + 1 : x;
}

/* Parses "{m}", "{m,}" or "{m,n}" at p; returns its length (0 when it is not a bound) and the
 * number of copies regcomp makes of the repeated atom. */
static size_t parse_bound(const char *p, uint64_t *copies) {
    const char *q = p + 1;
    uint64_t m = 0, n = 0;
    bool has_m = false, comma = false, has_n = false;
    while (*q >= '0' && *q <= '9') {
        m = sat(m * 10 + (uint64_t)(*q++ - '0'));
        has_m = true;
    }
    if (*q == ',') {
        comma = true;
        q++;
        while (*q >= '0' && *q <= '9') {
            n = sat(n * 10 + (uint64_t)(*q++ - '0'));
            has_n = true;
        }
    }
    if (*q != '}' || (!has_m && !has_n)) {
        return 0;
    }
    if (!comma) {
        *copies = m;
    } else if (!has_n) {
        *copies = m + 1; /* x{m,} is m copies and a star */
    } else {
        *copies = n > m ? n : m;
    }
    *copies = *copies ? *copies : 1;
    return (size_t)(q - p) + 1;
}

/* Length of the bracket expression starting at p ('['), or 0 when it is not closed. */
static size_t bracket_len(const char *p) {
    const char *q = p + 1;
    if (*q == '^') {
        q++;
    }
    if (*q == ']') { /* a ']' first is literal */
        q++;
    }
    while (*q && *q != ']') {
        if (*q == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
            char close = q[1];
            const char *e = q + 2;
            while (*e && !(e[0] == close && e[1] == ']')) {
                e++;
            }
            if (!*e) {
                return 0;
            }
            q = e + 2;
        } else {
            q++;
        }
    }
    return *q == ']' ? (size_t)(q - p) + 1 : 0;
}

/*
 * Checks the limits: length, nesting depth, the size after expanding repetitions; back
 * references are refused (their matching is exponential in glibc). Syntax errors are left to
 * regcomp, which reports them.
 */
static lam_status check_pattern(const char *subject, const char *pattern) {
    size_t len = strnlen(pattern, PATTERN_MAX_LEN + 1);
    if (len > PATTERN_MAX_LEN) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Regular expression too long, %zu bytes, at most %d", subject,
                          strlen(pattern), PATTERN_MAX_LEN);
    }
    /* Per open group: the size of what it holds so far and of its last atom (which a following
     * repetition multiplies). Level 0 is the whole pattern. */
    uint64_t total[PATTERN_MAX_DEPTH + 1], last[PATTERN_MAX_DEPTH + 1];
    int depth = 0;
    total[0] = last[0] = 0;
    for (const char *p = pattern; *p;) {
        size_t step = 1;
        switch (*p) {
        case '(':
            if (depth == PATTERN_MAX_DEPTH) {
                return lam__error(LAM_ERR_INVALID_ARGUMENT,
                                  "%s: Regular expression nested too deep, more than %d levels "
                                  "of parentheses",
                                  subject, PATTERN_MAX_DEPTH);
            }
            total[depth] = sat(total[depth] + last[depth]);
            last[depth] = 0;
            depth++;
            total[depth] = last[depth] = 0;
            break;
        case ')':
            if (depth > 0) {
                uint64_t group = sat(total[depth] + last[depth] + 1);
                depth--;
                last[depth] = group;
            } else { /* an unmatched ')' is an ordinary character in POSIX ERE */
                total[depth] = sat(total[depth] + last[depth]);
                last[depth] = 1;
            }
            break;
        case '*':
        case '?':
            break;
        case '+': /* x+ is x x* */
            last[depth] = sat(last[depth] * 2);
            break;
        case '{': {
            uint64_t copies;
            size_t n = parse_bound(p, &copies);
            if (n > 0) {
                last[depth] = sat(last[depth] * copies);
                step = n;
            } else {
                total[depth] = sat(total[depth] + last[depth]);
                last[depth] = 1;
            }
            break;
        }
        case '[': {
            size_t n = bracket_len(p);
            total[depth] = sat(total[depth] + last[depth]);
            last[depth] = 1;
            step = n > 0 ? n : 1;
            break;
        }
        case '\\':
            if (p[1] >= '1' && p[1] <= '9') {
                return lam__error(LAM_ERR_INVALID_ARGUMENT,
                                  "%s: Unsupported regular expression, back reference \\%c",
                                  subject, p[1]);
            }
            total[depth] = sat(total[depth] + last[depth]);
            last[depth] = 1;
            step = p[1] ? 2 : 1;
            break;
        case '|':
            total[depth] = sat(total[depth] + last[depth] + 1);
            last[depth] = 0;
            break;
        default:
            total[depth] = sat(total[depth] + last[depth]);
            last[depth] = 1;
            break;
        }
        if (sat(total[depth] + last[depth]) > PATTERN_MAX_SIZE) {
            break;
        }
        p += step;
    }
    uint64_t size = 0;
    for (int d = depth; d >= 0; d--) {
        size = sat(size + total[d] + last[d]);
    }
    if (size > PATTERN_MAX_SIZE) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "%s: Regular expression too complex, its repetitions expand to more "
                          "than %d elements",
                          subject, PATTERN_MAX_SIZE);
    }
    return LAM_OK;
}

lam_status lam__pattern_compile(const char *subject, const char *pattern, regex_t *out) {
    lam_status st = check_pattern(subject, pattern);
    if (st != LAM_OK) {
        return st;
    }
    /* Compiled as given: wrapping it as "^(...)" would let "x)|(.*" escape the anchor. */
    int rc = regcomp(out, pattern, REG_EXTENDED);
    if (rc != 0) {
        char msg[200];
        regerror(rc, out, msg, sizeof msg);
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid regular expression '%s', %s",
                          subject, pattern, msg);
    }
    return LAM_OK;
}

bool lam__pattern_match_start(const regex_t *re, const char *text) {
    /* The leftmost match starts at 0 exactly when some match does, so this is re.match. */
    regmatch_t m;
    return regexec(re, text, 1, &m, 0) == 0 && m.rm_so == 0;
}
