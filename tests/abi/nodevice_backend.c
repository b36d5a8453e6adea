/* A valid backend plugin whose probe finds no device: loaded, listed with its reason. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_backend_desc d = fx_backend("nodevice");
    return host->register_backend(plugin, &d);
}
