/* Registers layer "Dup" too: refused as a duplicate when dup_a loaded first. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_layer_desc d = fx_layer("Dup");
    d.version = "0.0.2";
    return host->register_layer(plugin, &d);
}
