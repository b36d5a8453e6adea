/*
 * The plugin report's rows: one per candidate plugin file, with its decision, reason and
 * message (lam_plugin_report_get reads them through registry.c). Rows are added and decided
 * while plugins load, under runtime.c's start lock, and when a backend is first probed, under
 * registry.c's probe lock.
 */
#include "registry_report.h"
#include "error.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* The rows, in the order the candidates were met; freed by lam__report_clear. */
static struct {
    lam__record *rows;
    size_t n;
} report;

lam_status lam__report_add(const char *path, lam__record **out) {
    lam__record *r = realloc(report.rows, (report.n + 1) * sizeof *r);
    if (r == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "plugin registry: Out of memory");
    }
    report.rows = r;
    lam__record *rec = &r[report.n];
    memset(rec, 0, sizeof *rec);
    rec->path = lam__strdup(path);
    rec->kind = lam__strdup("-");
    rec->names = lam__strdup("");
    rec->version = lam__strdup("");
    rec->message = lam__strdup("");
    if (!rec->path || !rec->kind || !rec->names || !rec->version || !rec->message) {
        free(rec->path);
        free(rec->kind);
        free(rec->names);
        free(rec->version);
        free(rec->message);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "plugin registry: Out of memory");
    }
    report.n++;
    *out = rec;
    return LAM_OK;
}

void lam__report_set(char **field, const char *value) {
    char *d = lam__strdup(value);
    if (d != NULL) {
        free(*field);
        *field = d;
    }
}

void lam__report_decide(lam__record *rec, lam_plugin_decision d, lam_plugin_reason r,
                        const char *msg) {
    rec->decision = d;
    rec->reason = r;
    lam__report_set(&rec->message, msg);
    const char *base = strrchr(rec->path, '/');
    base = base ? base + 1 : rec->path;
    lam__log(d == LAM_PLUGIN_REFUSED ? LAM_LOG_WARN : LAM_LOG_DEBUG, "%s: %s%s%s", base,
             d == LAM_PLUGIN_LOADED    ? "Loaded"
             : d == LAM_PLUGIN_SKIPPED ? "Skipped"
                                       : "Refused",
             msg[0] ? ", " : "", msg);
}

const char *lam_plugin_reason_string(lam_plugin_reason reason) {
    switch (reason) {
    case LAM_REASON_OK:
        return "ok";
    case LAM_REASON_DLOPEN_FAILED:
        return "dlopen-failed";
    case LAM_REASON_NO_ENTRY:
        return "no-entry";
    case LAM_REASON_ABI_MAJOR:
        return "abi-major";
    case LAM_REASON_ABI_MINOR_NEWER:
        return "abi-minor-newer";
    case LAM_REASON_ABI_FINGERPRINT:
        return "abi-fingerprint";
    case LAM_REASON_STRUCT_SIZE:
        return "struct-size";
    case LAM_REASON_NULL_CALLBACK:
        return "null-callback";
    case LAM_REASON_BAD_DESCRIPTOR:
        return "bad-descriptor";
    case LAM_REASON_DUPLICATE_NAME:
        return "duplicate-name";
    case LAM_REASON_ENTRY_FAILED:
        return "entry-failed";
    case LAM_REASON_NOTHING_REGISTERED:
        return "nothing-registered";
    case LAM_REASON_NO_DEVICE:
        return "no-device";
    case LAM_REASON_SHADOWED:
        return "shadowed";
    case LAM_REASON_NOT_A_FILE:
        return "not-a-file";
    default:
        return "invalid";
    }
}

size_t lam__report_rows(void) {
    return report.n;
}

lam__record *lam__report_row(size_t index) {
    return &report.rows[index];
}

void lam__report_clear(void) {
    for (size_t i = 0; i < report.n; i++) {
        lam__record *r = &report.rows[i];
        free(r->path);
        free(r->kind);
        free(r->names);
        free(r->version);
        free(r->message);
    }
    free(report.rows);
    report.rows = NULL;
    report.n = 0;
}
