/*
 * Runtime start and shutdown: the registry, contexts and live tensors live between them. This
 * is the top of core: lam_init hands the host table (host.c) to the registry, and installs
 * the lazy start (start.h) for the levels below, which never call up here.
 */
#define _GNU_SOURCE /* secure_getenv */
#include "block.h"
#include "comm.h"
#include "context.h"
#include "error.h"
#include "host.h"
#include "log.h"
#include "registry.h"
#include "registry_scan.h"
#include "start.h"
#include "tensor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static bool started; /* under start_lock */

/*
 * Start-up is double-checked: the ready flag (start.c, lam__start_mark) is set (release) once the
 * registry is fully loaded, so the common case is one acquire load; the first calls of many threads
 * at once queue on start_lock and all but one find the runtime started. pthread_once would not do,
 * as lam_shutdown may be followed by another start. Plugin loading (registry.c) runs only under
 * this lock. A plugin entry that calls back into the library while it loads runs on the
 * thread holding the lock (`in_start`), where the runtime counts as started.
 */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local bool in_start;

static void shutdown_locked(void) {
    lam__start_mark(false);
    if (!started) {
        return;
    }
    /* Plugin state first (a layer may hold tensors), while the plugins are loaded; open
     * communicators before anything their outstanding requests hold. */
    lam__comms_close_all();
    lam__blocks_detach_all();
    lam__tensors_reclaim_all();
    lam__contexts_close_all();
    lam__registry_unload();
    lam__tensor_pool_flush();
    lam__calls_stopped();
    started = false;
}

static lam_status init_locked(const lam_init_options *options) {
    if (started) {
        return lam__error(LAM_ERR_STATE,
                          "lam_init: Already started, call lam_shutdown() before starting again");
    }
    if (options != NULL &&
        options->struct_size < offsetof(lam_init_options, skip_builtin_dir) + sizeof(int32_t)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_init: Invalid argument, options->struct_size is %u (start from "
                          "LAM_INIT_OPTIONS_INIT)",
                          options->struct_size);
    }
    started = true;
    lam__calls_resume();
    const char *path = options && options->plugin_path ? options->plugin_path
                                                       : secure_getenv("LAMINA_PLUGIN_PATH");
    bool skip = options && options->skip_builtin_dir;
    lam_status st = lam__registry_load(lam__host_table(), path, skip);
    if (st != LAM_OK) {
        shutdown_locked();
        return st;
    }
    lam__start_mark(true);
    return LAM_OK;
}

/* Reported when a plugin's entry (running under start_lock) calls lam_init or lam_shutdown. */
static lam_status reentered(const char *fn) {
    return lam__error(LAM_ERR_STATE,
                      "%s: Invalid state, called while the runtime starts or stops (from a "
                      "plugin's entry point)",
                      fn);
}

lam_status lam_init(const lam_init_options *options) {
    if (in_start) {
        return reentered("lam_init");
    }
    pthread_mutex_lock(&start_lock);
    in_start = true;
    lam_status st = init_locked(options);
    in_start = false;
    pthread_mutex_unlock(&start_lock);
    return st;
}

/* The lazy start lam__ensure_started runs when the runtime is not ready. */
static lam_status start_lazily(void) {
    if (in_start) {
        return LAM_OK; /* a plugin entry calling back while the registry loads */
    }
    pthread_mutex_lock(&start_lock);
    in_start = true;
    lam_status st = started ? LAM_OK : init_locked(NULL);
    in_start = false;
    pthread_mutex_unlock(&start_lock);
    return st;
}

/* Installed when the library is loaded, before any call can need it. */
__attribute__((constructor)) static void install_start(void) {
    lam__start_install(start_lazily);
}

lam_status lam_shutdown_checked(void) {
    if (in_start) {
        lam__log(LAM_LOG_WARN, "lam_shutdown: ignored, called while the runtime starts or stops");
        return reentered("lam_shutdown");
    }
    pthread_mutex_lock(&start_lock);
    in_start = true;
    lam_status st = LAM_OK;
    size_t busy = lam__calls_stop();
    if (busy > 0) {
        st = lam__error(LAM_ERR_STATE,
                        "lam_shutdown: Threads still running, %zu other thread%s inside the "
                        "library (an op, a forward, a backward pass, or making, reading or "
                        "writing a tensor); nothing was shut down",
                        busy, busy == 1 ? " is" : "s are");
    } else {
        shutdown_locked();
    }
    in_start = false;
    pthread_mutex_unlock(&start_lock);
    return st;
}

void lam_shutdown(void) {
    if (lam_shutdown_checked() == LAM_ERR_STATE && !in_start) {
        lam__log(LAM_LOG_ERROR, "%s", lam_last_error());
    }
}
