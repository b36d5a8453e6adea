/* Registers layer "Dup"; loads. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_layer_desc d = fx_layer("Dup");
    return host->register_layer(plugin, &d);
}
