/* Built for ABI 2.0: refused, naming both versions. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_layer_desc d = fx_layer("WrongMajor");
    d.abi_version = LAM_MAKE_VERSION(2, 0);
    return host->register_layer(plugin, &d);
}
