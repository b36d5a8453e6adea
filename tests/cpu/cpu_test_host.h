/*
 * cpu_test_host.h - a minimal host table for tests that dlopen() the CPU backend alone
 * (register_backend, set_error, set_error_fmt, log, alloc, free): cpu_test_open_backend()
 * registers the plugin and opens its device 0 (skipping when it has none),
 * cpu_test_close_backend() undoes it. Included by one test file each; everything is static.
 *
 * g_dev is the validating device (opened with LAMINA_VALIDATION=1, as the conformance kit
 * opens it): these tests drive the backend's whole contract, every error execute can answer
 * included. cpu_test_open_device() opens one under any setting of the variable.
 */
#ifndef LAMINA_TESTS_CPU_TEST_HOST_H
#define LAMINA_TESTS_CPU_TEST_HOST_H

#include <criterion/criterion.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"

static char g_msg[1024];
static lam_backend_desc g_desc;
static int g_registered;

static lam_status host_set_error_fmt(lam_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return st;
}

static lam_status host_set_error(lam_status st, const char *msg) {
    snprintf(g_msg, sizeof g_msg, "%s", msg);
    return st;
}

static void host_log(lam_log_level level, const char *msg) {
    (void)level;
    (void)msg;
}

static lam_status host_register_backend(lam_plugin *plugin, const lam_backend_desc *desc) {
    (void)plugin;
    cr_assert_geq(desc->struct_size, sizeof(lam_backend_desc));
    g_desc = *desc;
    g_registered = 1;
    return LAM_OK;
}

static void *host_alloc(size_t n) {
    return malloc(n);
}

static void host_free(void *p) {
    free(p);
}

static lam_host_api g_host;
static void *g_lib;
static void *g_dev;

/* Opens device 0 with LAMINA_VALIDATION set to `validation` (NULL: unset) for the open, then
 * puts the variable back as it was. */
static void cpu_test_open_device(const char *validation, void **dev) {
    const char *prev = getenv("LAMINA_VALIDATION");
    char saved[64] = "";
    if (prev != NULL) {
        snprintf(saved, sizeof saved, "%s", prev);
    }
    if (validation != NULL) {
        setenv("LAMINA_VALIDATION", validation, 1);
    } else {
        unsetenv("LAMINA_VALIDATION");
    }
    lam_status st = g_desc.device_open(g_desc.user, 0, dev);
    if (prev != NULL) {
        setenv("LAMINA_VALIDATION", saved, 1);
    } else {
        unsetenv("LAMINA_VALIDATION");
    }
    cr_assert_eq(st, LAM_OK, "%s", g_msg);
}

static void cpu_test_open_backend(void) {
    memset(&g_host, 0, sizeof g_host);
    g_host.struct_size = (uint32_t)sizeof g_host;
    g_host.abi_version = LAM_ABI_VERSION;
    g_host.abi_fingerprint = LAM_ABI_FINGERPRINT;
    g_host.set_error_fmt = host_set_error_fmt;
    g_host.set_error = host_set_error;
    g_host.log = host_log;
    g_host.register_backend = host_register_backend;
    g_host.alloc = host_alloc;
    g_host.free = host_free;
    g_lib = dlopen(LAMINA_TEST_CPU_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(g_lib, "dlopen: %s", dlerror());
    lam_plugin_entry_fn entry = (lam_plugin_entry_fn)dlsym(g_lib, LAM_PLUGIN_ENTRY_NAME);
    cr_assert_not_null(entry);
    cr_assert_eq(entry(&g_host, NULL), LAM_OK, "%s", g_msg);
    cr_assert(g_registered);
    uint32_t n = 0;
    char why[512] = "";
    cr_assert_eq(g_desc.probe(g_desc.user, &n, why, sizeof why), LAM_OK, "%s", g_msg);
    if (n == 0) {
        cr_skip("the cpu backend has no device here: %s", why);
    }
    cpu_test_open_device("1", &g_dev);
}

static void cpu_test_close_backend(void) {
    if (g_dev != NULL) {
        g_desc.device_close(g_dev);
    }
    if (g_desc.shutdown != NULL) {
        g_desc.shutdown(g_desc.user);
    }
    if (g_lib != NULL) {
        dlclose(g_lib);
    }
}

#endif
