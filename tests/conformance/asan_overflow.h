/*
 * Force-included (-include) into sdk/template/mylayer.c by sdk/test-asan-plugin.sh: every
 * malloc of the plugin writes one byte past the block it returns, a heap overflow that
 * AddressSanitizer must report when the plugin is conformed with LD_PRELOAD=libasan.so.
 */
#ifndef LAMINA_ASAN_OVERFLOW_H
#define LAMINA_ASAN_OVERFLOW_H

#include <stdlib.h>

static inline void *asan_overflow_malloc(size_t n) {
    char *p = malloc(n);
    if (p != NULL) {
        volatile char *q = p;
        q[n] = 1; /* the defect */
    }
    return p;
}
#define malloc(n) asan_overflow_malloc(n)

#endif
