/*
 * The host table given to plugins, and the checks of what plugin callbacks return (host.c).
 * Private to core/.
 */
#ifndef LAMINA_CORE_HOST_H
#define LAMINA_CORE_HOST_H

#include "context.h"

#include "lamina/lamina.h"

#include <stdint.h>

struct lam_plugin;

void lam__host_table_init(lam_host_api *host);
/*
 * Checks the status a plugin callback returned (host.c), given lam__error_mark() from just
 * before the call. A status that is no lam_status (positive, or a negative the host does not
 * know) becomes LAM_ERR_INTERNAL with a message naming the subject, the callback and the
 * plugin; an error without a message (or with an empty one) keeps its status and gets
 * "<subject>: <status string> (the plugin set no message)". `subject` is what the user sees
 * (a layer instance "dense0"; NULL: none, the caller prefixes one); `who` names the plugin's
 * part ("layer type 'Dense'", "backend 'cpu'"). LAM_OK passes through.
 */
lam_status lam__plugin_status(lam_status st, uint64_t mark, const struct lam_plugin *plugin,
                              const char *who, const char *subject, const char *callback);
/* lam__plugin_status for a backend callback, without a subject: the caller prefixes its own
 * ("add on cpu(0)") as usual. */
lam_status lam__backend_status(lam_status st, uint64_t mark, const lam__backend *b,
                               const char *callback);

#endif
