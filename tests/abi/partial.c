/* Registers a good backend, then a bad layer, and ignores the error: the whole plugin is
 * refused and the good backend rolled back. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_backend_desc b = fx_backend("partialgood");
    host->register_backend(plugin, &b);
    lam_layer_desc l = fx_layer("PartialBad");
    l.create = NULL;
    (void)host->register_layer(plugin, &l);
    return LAM_OK;
}
