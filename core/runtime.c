/* Runtime start and shutdown: the registry, contexts and live tensors live between them. */
#define _GNU_SOURCE /* secure_getenv */
#include "runtime.h"
#include "block.h"
#include "context.h"
#include "error.h"
#include "host.h"
#include "registry.h"
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

lam__runtime lam__rt;

lam_status lam_init(const lam_init_options *options) {
    if (lam__rt.started) {
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
    memset(&lam__rt, 0, sizeof lam__rt);
    lam__host_table_init(&lam__rt.host);
    lam__rt.started = true;
    const char *path = options && options->plugin_path ? options->plugin_path
                                                       : secure_getenv("LAMINA_PLUGIN_PATH");
    bool skip = options && options->skip_builtin_dir;
    lam_status st = lam__registry_load(path, skip);
    if (st != LAM_OK) {
        lam_shutdown();
    }
    return st;
}

lam_status lam__ensure_started(void) {
    if (lam__rt.started) {
        return LAM_OK;
    }
    return lam_init(NULL);
}

void lam_shutdown(void) {
    if (!lam__rt.started) {
        return;
    }
    /* Plugin state first (a layer may hold tensors), while the plugins are loaded. */
    lam__blocks_detach_all();
    lam__tensors_reclaim_all();
    lam__contexts_close_all();
    lam__registry_unload();
    lam__tensor_pool_flush();
    memset(&lam__rt, 0, sizeof lam__rt);
}
