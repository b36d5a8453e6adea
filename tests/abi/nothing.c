/* Registers nothing: refused. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    (void)host, (void)plugin;
    return LAM_OK;
}
