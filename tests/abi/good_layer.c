/* A valid layer plugin: loads. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    lam_layer_desc d = fx_layer("GoodLayer");
    return host->register_layer(plugin, &d);
}
