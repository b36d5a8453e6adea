/* A backend whose name has characters outside [a-z0-9_]: refused. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_backend_desc d = fx_backend("Bad Name!");
    return host->register_backend(plugin, &d);
}
