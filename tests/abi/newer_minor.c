/* A plugin from a newer minor (one above the host's) with a larger descriptor: the host refuses it.
 */
#include "fixture.h"

typedef struct layer_desc_2_1 {
    lam_layer_desc base;
    void *appended_in_2_1;
} layer_desc_2_1;

LAM_PLUGIN_ENTRY {
    fx_host = host;
    layer_desc_2_1 d;
    memset(&d, 0, sizeof d);
    d.base = fx_layer("NewerMinor");
    d.base.struct_size = (uint32_t)sizeof d;
    d.base.abi_version = LAM_MAKE_VERSION(LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR + 1);
    return host->register_layer(plugin, &d.base);
}
