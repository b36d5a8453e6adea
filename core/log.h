/*
 * Logging (log.c): messages to the user's log callback. Private to core/.
 */
#ifndef LAMINA_CORE_LOG_H
#define LAMINA_CORE_LOG_H

#include "lamina/lamina.h"

#include <stdarg.h>

void lam__log(lam_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lam__vlog(lam_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
