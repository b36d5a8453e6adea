/* Checks of what plugin callbacks return: statuses the host does not know, errors without a
 * message. */
#include "callback.h"
#include "error.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Whether st is a status this host knows (lam_status_string names every one of them). */
static bool known_status(lam_status st) {
    return strcmp(lam_status_string(st), lam_status_string((lam_status)1)) != 0;
}

lam_status lam__plugin_status(lam_status st, uint64_t mark, const char *plugin_path,
                              const char *who, const char *subject, const char *callback) {
    if (st == LAM_OK) {
        return LAM_OK;
    }
    const char *file = plugin_path != NULL ? plugin_path : "(unknown)";
    const char *base = strrchr(file, '/');
    base = base != NULL ? base + 1 : file;
    const char *sep = subject != NULL ? ": " : "";
    subject = subject != NULL ? subject : "";
    if (!known_status(st)) {
        return lam__error(LAM_ERR_INTERNAL,
                          "%s%sInvalid status, %s returned %d, which is not a lam_status (a bug "
                          "in %s of plugin %s)",
                          subject, sep, callback, (int)st, who, base);
    }
    if (!lam__error_set_since(mark)) {
        return lam__error(st, "%s%s%s (the plugin set no message)", subject, sep,
                          lam_status_string(st));
    }
    return st;
}
