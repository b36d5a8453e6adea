/*
 * Lazy start-up (start.c). Public calls that may be a program's first (lam_ctx_get,
 * lam_backend_*, the plugin report, layer types) start the runtime through
 * lam__ensure_started. The start itself lives at the top (runtime.c: it needs the host table,
 * which names functions of every level), which installs it here when the library is loaded,
 * so no file below calls up to it.
 */
#ifndef LAMINA_CORE_START_H
#define LAMINA_CORE_START_H

#include "lamina/lamina.h"

#include <stdbool.h>

typedef lam_status (*lam__start_fn)(void);

/* Sets the function lam__ensure_started calls (runtime.c, once, when the library is loaded). */
void lam__start_install(lam__start_fn start);
/* Starts the runtime with default options if it is not started: one acquire load when it is,
 * else the installed start function (which serializes concurrent first calls). */
lam_status lam__ensure_started(void);
/* Set (release) by runtime.c once the registry is fully loaded, cleared when it stops. */
void lam__start_mark(bool is_ready);
/* True when the runtime is started and its plugins loaded (without starting it). */
bool lam__started(void);

#endif
