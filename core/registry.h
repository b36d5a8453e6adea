/*
 * The plugin registry (registry.c): plugin discovery and loading, the tables of backends and
 * layer types, and the plugin report. Private to core/.
 */
#ifndef LAMINA_CORE_REGISTRY_H
#define LAMINA_CORE_REGISTRY_H

#include "context.h"

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lam__layer_type {
    lam_layer_desc desc; /* copied; its strings and attrs point into `owned`, the host's copy */
    struct lam_plugin *plugin;
    void *owned;
} lam__layer_type;

/* One row of the plugin report. */
typedef struct lam__record {
    char *path;
    char *kind;
    char *names;
    char *version;
    uint32_t plugin_abi;
    lam_plugin_decision decision;
    lam_plugin_reason reason;
    char *message;
} lam__record;

struct lam_plugin {
    char *path;
    void *handle;
    size_t record;            /* index into the report */
    bool loading;             /* registration allowed */
    lam_status refuse_status; /* first refused registration */
    lam_plugin_reason refuse_reason;
    char *refuse_message;
    uint32_t abi_seen;  /* abi_version of the first descriptor */
    char *version_seen; /* copied from the first descriptor with a version */
};

lam_status lam__registry_load(const char *plugin_path, bool skip_builtin);
void lam__registry_unload(void);
lam__backend *lam__backend_find(const char *name);
const lam__layer_type *lam__layer_type_find(const char *name);
/* Probes a backend once (devices, or why there are none); later calls do nothing. */
void lam__backend_probe(lam__backend *b);
void lam__backends_probe_all(void);
/* The registration functions of the host table. */
void lam__host_table_init_registry(lam_host_api *host);

#endif
