/*
 * Small helpers (util.c): string copies and growable strings. Private to core/.
 */
#ifndef LAMINA_CORE_UTIL_H
#define LAMINA_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* For the few small thread-local variables the op hot path reads (a flag, a counter, a pointer):
 * one load from the thread pointer instead of a __tls_get_addr call. Keep them small: a library
 * opened with dlopen takes them from the static TLS space glibc keeps in reserve. */
#define LAM__TLS_FAST __attribute__((tls_model("initial-exec")))

char *lam__strdup(const char *s);
/* Appends formatted text to a growable string; returns false on out of memory. */
typedef struct lam__strbuf {
    char *data;
    size_t len;
    size_t cap;
} lam__strbuf;
bool lam__strbuf_printf(lam__strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void lam__strbuf_fini(lam__strbuf *sb);

#endif
