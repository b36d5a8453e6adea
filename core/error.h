/*
 * Error messages (error.c): the thread's last error and the helpers that set it. Private to
 * core/ (lam__ prefix, hidden visibility), like every header here.
 */
#ifndef LAMINA_CORE_ERROR_H
#define LAMINA_CORE_ERROR_H

#include "lamina/lamina.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

lam_status lam__error(lam_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
lam_status lam__verror(lam_status status, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Prefixes the current message with "<prefix>: " and returns status (context on the way up). */
lam_status lam__error_prefix(lam_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Callbacks (plugins, backends, user functions) report errors through lam_set_error or the host
 * table. To tell whether one set a message, take a mark before calling it; never clear the
 * message, as lam_last_error() must survive successful calls:
 *   uint64_t mark = lam__error_mark();
 *   st = callback(...);
 *   if (st != LAM_OK) return lam__error_prefix(lam__error_from_callback(st, mark, "backend"), ..);
 */
uint64_t lam__error_mark(void);
/* True when a non-empty message was set on this thread since `mark`. */
bool lam__error_set_since(uint64_t mark);
/* When nothing set a message since `mark`, sets "No message, the <who> returned <status>" (so
 * context is not put in front of an older message). Returns status. */
lam_status lam__error_from_callback(lam_status status, uint64_t mark, const char *who);

#endif
