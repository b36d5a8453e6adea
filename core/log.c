/* The log callback: the library never prints, it hands messages to the application. */
#include "log.h"

#include <stdio.h>

static lam_log_fn log_fn;
static void *log_user;
static lam_log_level log_max = LAM_LOG_WARN;

void lam_log_set_callback(lam_log_fn fn, void *user, lam_log_level max_level) {
    log_fn = fn;
    log_user = user;
    log_max = max_level;
}

void lam__vlog(lam_log_level level, const char *fmt, va_list ap) {
    if (log_fn == NULL || level > log_max) {
        return;
    }
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    log_fn(level, msg, log_user);
}

void lam__log(lam_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lam__vlog(level, fmt, ap);
    va_end(ap);
}
