/* Thread-local error messages and status names. */
#include "error.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

#define ERROR_CAP 2048

static _Thread_local char last_error[ERROR_CAP];
/* Counts the messages set on this thread, so that the core can tell whether a callback it
 * called set one without clearing the user's last message first (lam_last_error stays valid
 * until the next failing call, successful calls leave it alone). */
static _Thread_local uint64_t error_serial LAM__TLS_FAST;

const char *lam_status_string(lam_status status) {
    switch (status) {
    case LAM_OK:
        return "ok";
    case LAM_ERR_INVALID_ARGUMENT:
        return "invalid argument";
    case LAM_ERR_OUT_OF_MEMORY:
        return "out of memory";
    case LAM_ERR_SHAPE:
        return "shape error";
    case LAM_ERR_DTYPE:
        return "dtype error";
    case LAM_ERR_NOT_FOUND:
        return "not found";
    case LAM_ERR_STATE:
        return "invalid state";
    case LAM_ERR_UNSUPPORTED:
        return "unsupported";
    case LAM_ERR_IO:
        return "i/o error";
    case LAM_ERR_FORMAT:
        return "format error";
    case LAM_ERR_ABI:
        return "ABI error";
    case LAM_ERR_BACKEND:
        return "backend error";
    case LAM_ERR_DEVICE_UNAVAILABLE:
        return "device unavailable";
    case LAM_ERR_DEFERRED_INIT:
        return "deferred initialization";
    case LAM_ERR_INTERNAL:
        return "internal error";
    default:
        return "unknown status";
    }
}

const char *lam_last_error(void) {
    return last_error;
}

void lam_clear_error(void) {
    last_error[0] = '\0';
}

lam_status lam__verror(lam_status status, const char *fmt, va_list ap) {
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    error_serial++;
    return status;
}

uint64_t lam__error_mark(void) {
    return error_serial;
}

bool lam__error_set_since(uint64_t mark) {
    return error_serial != mark && last_error[0] != '\0';
}

lam_status lam__error_from_callback(lam_status status, uint64_t mark, const char *who) {
    if (!lam__error_set_since(mark)) {
        lam__error(status, "No message, the %s returned %s", who, lam_status_string(status));
    }
    return status;
}

lam_status lam__error(lam_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lam__verror(status, fmt, ap);
    va_end(ap);
    return status;
}

lam_status lam__error_prefix(lam_status status, const char *fmt, ...) {
    char prefix[512];
    char old[ERROR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    /* Truncation is fine: the prefix and the start of the old message matter most. */
    size_t np = strlen(prefix), no = strlen(old), cap = sizeof last_error - 1;
    size_t pos = 0;
    memcpy(last_error, prefix, np < cap ? np : cap);
    pos = np < cap ? np : cap;
    if (pos + 2 <= cap) {
        memcpy(last_error + pos, ": ", 2);
        pos += 2;
    }
    size_t take = no < cap - pos ? no : cap - pos;
    memcpy(last_error + pos, old, take);
    last_error[pos + take] = '\0';
    error_serial++;
    return status;
}

lam_status lam_set_error(lam_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lam__verror(status, fmt, ap);
    va_end(ap);
    return status;
}
