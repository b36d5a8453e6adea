/* Claims the host's version but has a larger struct: an unknown size, refused. */
#include "fixture.h"

typedef struct bigger {
    lam_layer_desc base;
    uint64_t extra;
} bigger;

LAM_PLUGIN_ENTRY {
    fx_host = host;
    bigger d;
    memset(&d, 0, sizeof d);
    d.base = fx_layer("UnknownSize");
    d.base.struct_size = (uint32_t)sizeof d;
    return host->register_layer(plugin, &d.base);
}
