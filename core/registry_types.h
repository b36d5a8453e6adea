/*
 * What the registry holds (registry.c): backends, layer types, report rows, loaded plugins.
 * Private to core/.
 */
#ifndef LAMINA_CORE_REGISTRY_TYPES_H
#define LAMINA_CORE_REGISTRY_TYPES_H

#include "lamina/lamina.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lam__backend {
    lam_backend_desc desc; /* copied; fields past the plugin's struct_size are zero; its strings
                              point into `strings`, the host's own copy */
    char *strings;
    struct lam_plugin *plugin;
    atomic_bool probed; /* probe runs once, on first use: lam__backend_probe */
    uint32_t n_devices;
    char why[512];
    _Atomic(lam_ctx *) *ctxs; /* n_devices entries, opened lazily (once, under a lock) */
} lam__backend;

typedef struct lam__layer_type {
    lam_layer_desc desc; /* copied; its strings and attrs point into `owned`, the host's copy;
                            desc.attrs[i] are full-size host copies of the plugin's attributes */
    struct lam_plugin *plugin;
    void *owned;
} lam__layer_type;

typedef struct lam__kernel {
    lam_kernel_desc desc; /* copied; strings in `owned`; impls kept as given (see plugin.h) */
    struct lam_plugin *plugin;
    void *owned;
} lam__kernel;

typedef struct lam__comm_type {
    lam_comm_desc desc; /* copied; fields past the plugin's struct_size are zero; its strings
                           point into `strings`, the host's own copy */
    char *strings;
    struct lam_plugin *plugin;
} lam__comm_type;

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

#endif
