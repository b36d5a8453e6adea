/* Lazy start-up through the function runtime.c installs (see start.h). */
#include "start.h"
#include "error.h"

#include <stdatomic.h>
#include <stddef.h>

static lam__start_fn start_fn;
static atomic_bool ready;

void lam__start_install(lam__start_fn start) {
    start_fn = start;
}

lam_status lam__ensure_started(void) {
    if (atomic_load_explicit(&ready, memory_order_acquire)) {
        return LAM_OK;
    }
    if (start_fn == NULL) {
        return lam__error(LAM_ERR_INTERNAL, "lamina: Internal error, the runtime has no start "
                                            "function (runtime.c was not initialized)");
    }
    return start_fn();
}

void lam__start_mark(bool is_ready) {
    atomic_store_explicit(&ready, is_ready, memory_order_release);
}

bool lam__started(void) {
    return atomic_load_explicit(&ready, memory_order_acquire);
}
