/* Exports no lamina_plugin_entry (a misspelt one, hidden by the version script anyway). */
#include "fixture.h"

LAM_EXPORT int lamina_plugin_entri(void);
LAM_EXPORT int lamina_plugin_entri(void) {
    return 0;
}
