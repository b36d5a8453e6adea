/*
 * Plugin discovery (registry_scan.c): the plugin path and the built-in directory, walked in
 * search order. Private to core/.
 */
#ifndef LAMINA_CORE_REGISTRY_SCAN_H
#define LAMINA_CORE_REGISTRY_SCAN_H

#include "lamina/lamina.h"

#include <stdbool.h>

/* Loads the plugins found in plugin_path (':'-separated files and directories; NULL: none)
 * and then, unless skip_builtin, in the built-in directory; each gets a report row. `host` is
 * the table the plugins' entries receive. */
lam_status lam__registry_load(const lam_host_api *host, const char *plugin_path, bool skip_builtin);

#endif
