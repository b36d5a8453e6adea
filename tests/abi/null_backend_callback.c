/* A backend without execute: refused naming the callback. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_backend_desc d = fx_backend("noexec");
    d.execute = NULL;
    return host->register_backend(plugin, &d);
}
