/* The log callback: the library never prints, it hands messages to the application. */
#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

/* Set from any thread, read by every thread that logs: the level is an atomic so that the
 * common case (nothing to log) costs one load; the callback and its user pointer change
 * together under the lock, so a message never goes to one callback with another's pointer. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static lam_log_fn log_fn;
static void *log_user;
static atomic_int log_max = LAM_LOG_WARN;
static atomic_bool log_on;

void lam_log_set_callback(lam_log_fn fn, void *user, lam_log_level max_level) {
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_user = user;
    atomic_store_explicit(&log_max, (int)max_level, memory_order_relaxed);
    atomic_store_explicit(&log_on, fn != NULL, memory_order_relaxed);
    pthread_mutex_unlock(&log_lock);
}

void lam__vlog(lam_log_level level, const char *fmt, va_list ap) {
    if (!atomic_load_explicit(&log_on, memory_order_relaxed) ||
        (int)level > atomic_load_explicit(&log_max, memory_order_relaxed)) {
        return;
    }
    pthread_mutex_lock(&log_lock);
    lam_log_fn fn = log_fn;
    void *user = log_user;
    pthread_mutex_unlock(&log_lock);
    if (fn == NULL) {
        return;
    }
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fn(level, msg, user);
}

void lam__log(lam_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lam__vlog(level, fmt, ap);
    va_end(ap);
}
