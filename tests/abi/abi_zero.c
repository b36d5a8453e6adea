/* Descriptor with abi_version 0 (never filled in): refused as major 0. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_layer_desc d = fx_layer("AbiZero");
    d.abi_version = 0;
    return host->register_layer(plugin, &d);
}
