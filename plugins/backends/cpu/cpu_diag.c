/*
 * cpu_diag.c - errors and log lines of the CPU backend, through the host table.
 *
 * The bottom of the plugin: every other file calls these, and this file calls none of them, so
 * the files form levels (diag, features; blas, ops, reduce, nn, index, random; gemm; exec;
 * buffer, backend) without cycles.
 */
#include "cpu_internal.h"

#include <stdarg.h>
#include <stdio.h>

const lam_host_api *cpu_host;

static _Thread_local int g_quiet;

int cpu_quiet(int quiet) {
    int was = g_quiet;
    g_quiet = quiet;
    return was;
}

lam_status cpu_error(lam_status status, const char *fmt, ...) {
    if (g_quiet || cpu_host == NULL || cpu_host->set_error == NULL) {
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
