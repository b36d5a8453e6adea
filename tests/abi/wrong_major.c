/* Built for ABI 3.0 (the next major): refused by this 2.0 host, naming both versions. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_layer_desc d = fx_layer("WrongMajor");
    d.abi_version = LAM_MAKE_VERSION(LAM_ABI_VERSION_MAJOR + 1, 0);
    return host->register_layer(plugin, &d);
}
