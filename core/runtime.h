/*
 * Runtime start and shutdown (runtime.c): the process-wide state between lam_init and
 * lam_shutdown. Private to core/.
 */
#ifndef LAMINA_CORE_RUNTIME_H
#define LAMINA_CORE_RUNTIME_H

#include "context.h"
#include "registry.h"

#include "lamina/lamina.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct lam__runtime {
    bool started;
    lam_host_api host;
    lam__record *records;
    size_t n_records;
    struct lam_plugin **plugins;
    size_t n_plugins;
    lam__backend **backends;
    size_t n_backends;
    lam__layer_type **layers;
    size_t n_layers;
} lam__runtime;

extern lam__runtime lam__rt;

/* Starts the runtime with default options if it is not started. */
lam_status lam__ensure_started(void);
/* True when the runtime is started and its plugins loaded (without starting it). */
bool lam__started(void);

#endif
