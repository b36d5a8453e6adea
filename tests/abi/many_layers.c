/* A plugin registering 100,000 layer types, L000000 .. L099999: loading stays linear. */
#include "fixture.h"

#include <stdio.h>

#define N_LAYERS 100000

static char names[N_LAYERS][8];

LAM_PLUGIN_ENTRY {
    fx_host = host;
    lam_status st = lam_plugin_check_host(host);
    for (int i = 0; st == LAM_OK && i < N_LAYERS; i++) {
        snprintf(names[i], sizeof names[i], "L%06d", i);
        lam_layer_desc d = fx_layer(names[i]);
        st = host->register_layer(plugin, &d);
    }
    return st;
}
