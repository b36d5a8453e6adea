/*
 * lamina/version.h - the Lamina release version this header belongs to.
 *
 * The one place the release version is written: CMake reads these three lines for
 * project(VERSION), liblamina is built from them and reports them through lam_version()
 * (lamina.h), lamina.pc and the CMake package carry the same number. The release version is
 * independent of the plugin ABI version (LAM_ABI_VERSION_MAJOR/MINOR in lamina/common.h).
 *
 * Compare at compile time with LAMINA_VERSION_NUMBER, at run time with lam_version():
 *   #if LAMINA_VERSION_NUMBER >= 1000   // 0.10.0 or later
 */
#ifndef LAMINA_VERSION_H
#define LAMINA_VERSION_H

#define LAMINA_VERSION_MAJOR 0
#define LAMINA_VERSION_MINOR 1
#define LAMINA_VERSION_PATCH 0

/* Turns a number into a string literal after expanding it. */
#define LAMINA_VERSION_STR_(x) #x
#define LAMINA_VERSION_STR(x)  LAMINA_VERSION_STR_(x)

/* "MAJOR.MINOR.PATCH", e.g. "0.1.0". */
#define LAMINA_VERSION_STRING                                                                      \
    LAMINA_VERSION_STR(LAMINA_VERSION_MAJOR)                                                       \
    "." LAMINA_VERSION_STR(LAMINA_VERSION_MINOR) "." LAMINA_VERSION_STR(LAMINA_VERSION_PATCH)

/* MAJOR * 10000 + MINOR * 100 + PATCH, e.g. 100 for 0.1.0 (minor and patch stay below 100). */
#define LAMINA_VERSION_NUMBER                                                                      \
    (LAMINA_VERSION_MAJOR * 10000 + LAMINA_VERSION_MINOR * 100 + LAMINA_VERSION_PATCH)

#endif
