/*
 * test_version.c - lam_version() and the LAMINA_VERSION_* macros of lamina/version.h.
 *
 * The references: the header this test is compiled with, and CMake's project version
 * (LAMINA_TEST_PROJECT_VERSION, passed by tests/core/CMakeLists.txt).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "lamina/lamina.h"

Test(version, runtime_equals_header_macros) {
    int major = -1, minor = -1, patch = -1;
    const char *s = lam_version(&major, &minor, &patch);
    cr_assert_not_null(s);
    cr_assert_eq(major, LAMINA_VERSION_MAJOR);
    cr_assert_eq(minor, LAMINA_VERSION_MINOR);
    cr_assert_eq(patch, LAMINA_VERSION_PATCH);
    cr_assert_str_eq(s, LAMINA_VERSION_STRING);
}

Test(version, equals_cmake_project_version) {
    cr_assert_str_eq(lam_version(NULL, NULL, NULL), LAMINA_TEST_PROJECT_VERSION);
    cr_assert_str_eq(LAMINA_VERSION_STRING, LAMINA_TEST_PROJECT_VERSION);
}

Test(version, string_and_number_agree_with_parts) {
    int major = -1, minor = -1, patch = -1;
    const char *s = lam_version(&major, &minor, &patch);
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", major, minor, patch);
    cr_assert_str_eq(s, want);
    cr_assert_eq(LAMINA_VERSION_NUMBER, major * 10000 + minor * 100 + patch);
    cr_assert(minor < 100 && patch < 100,
              "LAMINA_VERSION_NUMBER packs minor and patch in 2 digits");
}

Test(version, null_pointers_are_allowed) {
    int minor = -1;
    cr_assert_str_eq(lam_version(NULL, &minor, NULL), LAMINA_VERSION_STRING);
    cr_assert_eq(minor, LAMINA_VERSION_MINOR);
}
