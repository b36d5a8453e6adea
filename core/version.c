/* version.c - lam_version(): the release version liblamina was built as. */
#include "lamina/lamina.h"

/* CMake reads its project version from lamina/version.h; this stops a build where the two were
 * made to disagree (the library would report one version and its package files another). */
#if defined(LAMINA_CMAKE_VERSION_MAJOR) && (LAMINA_CMAKE_VERSION_MAJOR != LAMINA_VERSION_MAJOR ||  \
                                            LAMINA_CMAKE_VERSION_MINOR != LAMINA_VERSION_MINOR ||  \
                                            LAMINA_CMAKE_VERSION_PATCH != LAMINA_VERSION_PATCH)
#error "lamina/version.h and CMake's project version differ"
#endif

const char *lam_version(int *major, int *minor, int *patch) {
    if (major != NULL) {
        *major = LAMINA_VERSION_MAJOR;
    }
    if (minor != NULL) {
        *minor = LAMINA_VERSION_MINOR;
    }
    if (patch != NULL) {
        *patch = LAMINA_VERSION_PATCH;
    }
    return LAMINA_VERSION_STRING;
}
