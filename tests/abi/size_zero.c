/* Descriptor with struct_size 0: refused. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_backend_desc d = fx_backend("sizezero");
    d.struct_size = 0;
    return host->register_backend(plugin, &d);
}
