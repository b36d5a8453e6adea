/* Small helpers shared by the chapter's examples: error checking, inputs, printing. */
#ifndef LAMINA_EXAMPLE_UTIL_H
#define LAMINA_EXAMPLE_UTIL_H

#include <lamina/lamina.h>

#include <stdio.h>
#include <stdlib.h>

/* Examples stop at the first error and print the library's message. */
#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != LAM_OK) {                                                                    \
            fprintf(stderr, "%s:%d: error: %s\n", __FILE__, __LINE__, lam_last_error());           \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* In a function returning lam_status: runs `call` only while every call before it succeeded,
 * keeping the first failure in `st`; evaluates to st. */
#define TRY(call) (st = st != LAM_OK ? st : (call))

/* A (rows, cols) tensor uniform in [lo, hi) from a small LCG, so examples need nothing else. */
static inline lam_tensor *example_uniform(int64_t rows, int64_t cols, float lo, float hi,
                                          unsigned seed) {
    int64_t dims[2] = {rows, cols};
    lam_shape s;
    CHECK(lam_shape_init(&s, 2, dims));
    size_t n = (size_t)(rows * cols);
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = lo + (hi - lo) * (float)(seed >> 8) / 16777216.0f;
    }
    lam_tensor *t;
    CHECK(lam_tensor_from_data(NULL, &s, v, n, &t));
    free(v);
    return t;
}

/* Prints "<label> shape (2, 10): v0 v1 v2 v3 ..." (at most `max` values). */
static inline void example_print(const char *label, const lam_tensor *t, int max) {
    int64_t n = lam_tensor_numel(t);
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    CHECK(lam_tensor_read(t, v, (size_t)n));
    char b[64];
    printf("%s shape %s:", label, lam_shape_format(lam_tensor_shape(t), b, sizeof b));
    for (int64_t i = 0; i < n && i < max; i++) {
        printf(" %.4f", v[i]);
    }
    printf("%s\n", n > max ? " ..." : "");
    free(v);
}

/* Prints a parameter's data like example_print (inside a tensor scope). */
static inline void example_print_param(const char *label, lam_param *p, int max) {
    lam_tensor *t;
    CHECK(lam_param_data(p, &t));
    example_print(label, t, max);
}

/* Prints a block's model summary. */
static inline void example_summary(const lam_block *b) {
    char *s = lam_block_summary(b);
    printf("%s\n", s ? s : "(out of memory)");
    free(s);
}

#endif
