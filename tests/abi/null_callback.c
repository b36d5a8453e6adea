/* A layer without its forward callback: refused naming the callback. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_layer_desc d = fx_layer("NullForward");
    d.forward = NULL;
    return host->register_layer(plugin, &d);
}
