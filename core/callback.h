/*
 * Checks of what plugin callbacks return (callback.c). Private to core/.
 */
#ifndef LAMINA_CORE_CALLBACK_H
#define LAMINA_CORE_CALLBACK_H

#include "lamina/lamina.h"

#include <stdint.h>

/*
 * Checks the status a plugin callback returned, given lam__error_mark() from just before the
 * call; `plugin_path` is the plugin's file (NULL: unknown). A status that is no lam_status
 * (positive, or a negative the host does not know) becomes LAM_ERR_INTERNAL with a message
 * naming the subject, the callback and the plugin; an error without a message (or with an
 * empty one) keeps its status and gets "<subject>: <status string> (the plugin set no
 * message)". `subject` is what the user sees (a layer instance "dense0"; NULL: none, the
 * caller prefixes one); `who` names the plugin's part ("layer type 'Dense'", "backend
 * 'cpu'"). LAM_OK passes through.
 */
lam_status lam__plugin_status(lam_status st, uint64_t mark, const char *plugin_path,
                              const char *who, const char *subject, const char *callback);

#endif
