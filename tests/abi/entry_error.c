/* The entry fails with its own message: refused with that message. */
#include "fixture.h"

LAM_PLUGIN_ENTRY {
    (void)plugin;
    return host->set_error(LAM_ERR_BACKEND, "entry_error: Initialization failed, license file "
                                            "/etc/fixture.lic missing");
}
