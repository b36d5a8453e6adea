/* Same version and size, but built against a different layout: refused by fingerprint. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_layer_desc d = fx_layer("BadFingerprint");
    d.abi_fingerprint = LAM_ABI_FINGERPRINT ^ 0x1ULL;
    return host->register_layer(plugin, &d);
}
