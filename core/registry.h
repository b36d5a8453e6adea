/*
 * The plugin registry (registry.c): plugin discovery and loading, the tables of backends and
 * layer types, and the plugin report. Private to core/.
 */
#ifndef LAMINA_CORE_REGISTRY_H
#define LAMINA_CORE_REGISTRY_H

#include "registry_types.h"

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lam_plugin;

void lam__registry_unload(void);
/* Loads one candidate plugin file and makes its report row: accepted whole (everything it
 * registered stays) or refused whole (rolled back and unloaded). `host` is the table its entry
 * receives. */
void lam__registry_load_one(const lam_host_api *host, const char *path);
/* A report row for a candidate that is not loaded (a skip with its reason). */
void lam__registry_skip(const char *path, lam_plugin_reason reason, const char *message);
/* The registration functions of the host table; only allowed during the plugin's entry. */
lam_status lam__host_register_backend(lam_plugin *p, const lam_backend_desc *desc);
lam_status lam__host_register_layer(lam_plugin *p, const lam_layer_desc *desc);
lam_status lam__host_register_kernel(lam_plugin *p, const lam_kernel_desc *desc);
/* Registered kernels (plugin order); find returns NULL for an unknown name. */
size_t lam__kernel_count(void);
const lam__kernel *lam__kernel_at(size_t index);
const lam__kernel *lam__kernel_find(const char *name);

/* The tables, in registration order. */
size_t lam__backend_count(void);
lam__backend *lam__backend_at(size_t index);
size_t lam__layer_type_count(void);
const lam__layer_type *lam__layer_type_at(size_t index);
lam__backend *lam__backend_find(const char *name);
const lam__layer_type *lam__layer_type_find(const char *name);
/* lam__plugin_status (callback.h) for a backend callback, without a subject: the caller prefixes
 * its own
 * ("add on cpu(0)") as usual. */
lam_status lam__backend_status(lam_status st, uint64_t mark, const lam__backend *b,
                               const char *callback);

/* Probes a backend once (devices, or why there are none); later calls do nothing. */
void lam__backend_probe(lam__backend *b);
void lam__backends_probe_all(void);
/* The plugin report (lam_plugin_report_count / _get), probing every backend first or not
 * (lam_plugin_report_peek_*: a backend not probed yet reads as loaded without remark). */
size_t lam__report_count(bool probe);
lam_status lam__report_get(size_t index, lam_plugin_record *record, bool probe);

#endif
