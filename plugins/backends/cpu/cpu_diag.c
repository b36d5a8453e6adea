/*
 * cpu_diag.c - errors and log lines of the CPU backend, through the host table.
 *
 * The bottom of the plugin: every other file calls these, and this file calls none of them, so
 * the files form levels (diag, features; blas, ops, reduce, nn, index, random; gemm; exec;
 * buffer, backend) without cycles.
 */
#include "cpu_internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

const lam_host_api *cpu_host;

/* Per thread: nonzero while `supports` runs execute's checks (their errors are answers). A
 * pthread key, not _Thread_local: the host dlclose()s plugins at lam_shutdown, and a dlclosed
 * module's static TLS crashed LeakSanitizer's thread scan at exit. Deleted at shutdown. */
static pthread_key_t g_quiet_key;
static pthread_once_t g_quiet_once = PTHREAD_ONCE_INIT;
static int g_quiet_ok;

static void quiet_key_make(void) {
    g_quiet_ok = pthread_key_create(&g_quiet_key, NULL) == 0;
}

int cpu_quiet(int quiet) {
    pthread_once(&g_quiet_once, quiet_key_make);
    if (!g_quiet_ok) {
        return 0; /* no key: messages are set (noise, never a wrong answer) */
    }
    int was = (int)(intptr_t)pthread_getspecific(g_quiet_key);
    pthread_setspecific(g_quiet_key, (void *)(intptr_t)quiet);
    return was;
}

void cpu_diag_fini(void) {
    if (g_quiet_ok) {
        pthread_key_delete(g_quiet_key);
        g_quiet_ok = 0;
    }
}

static int quiet_now(void) {
    return g_quiet_ok ? (int)(intptr_t)pthread_getspecific(g_quiet_key) : 0;
}

lam_status cpu_error(lam_status status, const char *fmt, ...) {
    if (quiet_now() || cpu_host == NULL || cpu_host->set_error == NULL) {
        return status;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cpu_host->set_error(status, msg);
}

void cpu_log(lam_log_level level, const char *fmt, ...) {
    if (cpu_host == NULL || cpu_host->log == NULL) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cpu_host->log(level, msg);
}
