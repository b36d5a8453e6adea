/*
 * cpu_diag.c - errors and log lines of the CPU backend, through the host table.
 *
 * The bottom of the plugin: every other file calls these, and this file calls none of them, so
 * the files form levels (diag, features; blas, ops, reduce; gemm; exec; backend) without cycles.
 */
#include "cpu_internal.h"

#include <stdarg.h>
#include <stdio.h>

const lam_host_api *cpu_host;

lam_status cpu_error(lam_status status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cpu_host != NULL && cpu_host->set_error != NULL) {
        return cpu_host->set_error(status, "%s", msg);
    }
    return status;
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
    cpu_host->log(level, "%s", msg);
}
