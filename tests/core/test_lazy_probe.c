/*
 * Backends are probed on first use: a program that only uses the CPU loads the Vulkan plugin
 * (every plugin is loaded at start) but never wakes it, so the Vulkan loader (libvulkan) and
 * its drivers (lavapipe pulls in libLLVM) stay out of the process. Seen from outside, in
 * /proc/self/maps; Criterion runs each test in a fresh process. The control half probes the
 * Vulkan backend and checks that the loader then is mapped, so the check can see it.
 */
#define _GNU_SOURCE /* setenv, unsetenv */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/lamina.h"

TestSuite(lazy_probe, .fini = lam_shutdown);

/* Whether a mapping of this process names a file whose path contains `needle`. */
static bool mapped(const char *needle) {
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f, "cannot read /proc/self/maps");
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        found = strstr(line, needle) != NULL;
    }
    fclose(f);
    return found;
}

/* Probes the Vulkan backend (lam_backend_get does) and returns why it has no device ("" when
 * it has one). */
static const char *probe_vulkan(void) {
    for (size_t i = 0; i < lam_backend_count(); i++) {
        const char *name = NULL, *why = NULL;
        uint32_t n = 0;
        cr_assert_eq(lam_backend_get(i, &name, &n, &why), LAM_OK, "%s", lam_last_error());
        if (strcmp(name, "vulkan") == 0) {
            return n > 0 ? "" : why;
        }
    }
    cr_assert_fail("the Vulkan plugin is mapped but registered no 'vulkan' backend");
    return NULL;
}

/* What the program did before probing left the loader unmapped; the probe then maps it (or
 * the machine has no loader, and the test cannot tell). */
static void check_then_probe(bool loader_before) {
    const char *why = probe_vulkan();
    if (strncmp(why, "no Vulkan loader", 16) == 0) {
        cr_skip("no Vulkan loader installed (%s): nothing to keep unloaded", why);
    }
    cr_assert_not(loader_before, "a CPU-only program mapped the Vulkan loader before any "
                                 "Vulkan context, device query or plugin report asked for it");
    cr_assert(mapped("libvulkan.so"), "probing the Vulkan backend (%s) did not map libvulkan",
              why[0] ? why : "it has a device");
}

static void skip_without_vulkan_plugin(void) {
    if (!mapped("lamina_backend_vulkan.so")) {
        cr_skip("the Vulkan plugin was not built or not loaded");
    }
}

Test(lazy_probe, cpu_context_tensor_and_op_leave_the_vulkan_loader_unmapped) {
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "%s", lam_last_error());
    skip_without_vulkan_plugin();
    lam_shape shape;
    int64_t dims[2] = {2, 3};
    lam_shape_init(&shape, 2, dims);
    const float a[6] = {1, 2, 3, 4, 5, 6};
    const float b[6] = {0.5f, -1, 2, 0, 10, -6};
    lam_tensor *ta = NULL, *tb = NULL, *sum = NULL;
    cr_assert_eq(lam_tensor_from_data(ctx, &shape, a, 6, &ta), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_from_data(ctx, &shape, b, 6, &tb), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_op_add(ta, tb, &sum), LAM_OK, "%s", lam_last_error());
    float got[6];
    cr_assert_eq(lam_tensor_read(sum, got, 6), LAM_OK, "%s", lam_last_error());
    const float want[6] = {1.5f, 1, 5, 4, 15, 0}; /* by hand */
    for (int i = 0; i < 6; i++) {
        cr_assert_float_eq(got[i], want[i], 0, "element %d", i);
    }
    cr_assert_eq(lam_waitall(), LAM_OK, "%s", lam_last_error());
    lam_tensor_release(sum);
    lam_tensor_release(tb);
    lam_tensor_release(ta);
    check_then_probe(mapped("libvulkan.so"));
}

/* The default context (LAMINA_BACKEND unset means cpu) chooses without probing the others. */
Test(lazy_probe, default_context_leaves_the_vulkan_loader_unmapped) {
    unsetenv("LAMINA_BACKEND"); /* CI's Vulkan pass sets it; this test is about the default */
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_ctx_default(&ctx), LAM_OK, "%s", lam_last_error());
    cr_assert_str_eq(lam_ctx_name(ctx), "cpu(0)");
    skip_without_vulkan_plugin();
    lam_tensor *t = NULL;
    lam_shape shape;
    int64_t dims[1] = {4};
    lam_shape_init(&shape, 1, dims);
    cr_assert_eq(lam_tensor_create(NULL, &shape, &t), LAM_OK, "%s", lam_last_error());
    lam_tensor_release(t);
    check_then_probe(mapped("libvulkan.so"));
}

/* LAMINA_BACKEND=cpu, set explicitly, is the same choice. */
Test(lazy_probe, lamina_backend_cpu_leaves_the_vulkan_loader_unmapped) {
    setenv("LAMINA_BACKEND", "cpu", 1);
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_ctx_default(&ctx), LAM_OK, "%s", lam_last_error());
    cr_assert_str_eq(lam_ctx_name(ctx), "cpu(0)");
    skip_without_vulkan_plugin();
    check_then_probe(mapped("libvulkan.so"));
}

/* The plugin report and the backend list read without probing (lam_plugin_report_peek*,
 * lam_backend_peek, what `lamina plugins` uses by default) leave the loader unmapped and say
 * the Vulkan backend was not probed; after a probe, peek gives what lam_backend_get gives. */
Test(lazy_probe, peeking_at_the_report_and_backends_probes_nothing) {
    unsetenv("LAMINA_BACKEND");
    size_t n = lam_plugin_report_peek_count();
    cr_assert_gt(n, 0);
    for (size_t i = 0; i < n; i++) {
        lam_plugin_record r = LAM_PLUGIN_RECORD_INIT;
        cr_assert_eq(lam_plugin_report_peek(i, &r), LAM_OK, "%s", lam_last_error());
        cr_expect_neq(r.reason, LAM_REASON_NO_DEVICE, "%s: no-device before any probe", r.path);
    }
    lam_plugin_record r = LAM_PLUGIN_RECORD_INIT;
    cr_expect_eq(lam_plugin_report_peek(n, &r), LAM_ERR_NOT_FOUND);
    cr_expect_eq(lam_backend_peek(lam_backend_count(), NULL, NULL, NULL, NULL), LAM_ERR_NOT_FOUND);
    cr_expect(strstr(lam_last_error(), "lam_backend_peek: Not found") != NULL, "%s",
              lam_last_error());
    skip_without_vulkan_plugin();
    size_t vk = lam_backend_count();
    for (size_t i = 0; i < lam_backend_count(); i++) {
        const char *name = NULL, *why = NULL;
        int probed = -1;
        uint32_t nd = 7;
        cr_assert_eq(lam_backend_peek(i, &name, &probed, &nd, &why), LAM_OK, "%s",
                     lam_last_error());
        cr_expect_eq(probed, 0, "%s was probed by a peek", name);
        cr_expect_eq(nd, 0);
        cr_expect_str_eq(why, "");
        if (strcmp(name, "vulkan") == 0) {
            vk = i;
        }
    }
    cr_assert_lt(vk, lam_backend_count(), "no 'vulkan' backend");
    check_then_probe(mapped("libvulkan.so"));
    const char *why = NULL, *peek_why = NULL;
    uint32_t nd = 0, peek_nd = 99;
    int probed = 0;
    cr_assert_eq(lam_backend_get(vk, NULL, &nd, &why), LAM_OK);
    cr_assert_eq(lam_backend_peek(vk, NULL, &probed, &peek_nd, &peek_why), LAM_OK);
    cr_expect_eq(probed, 1);
    cr_expect_eq(peek_nd, nd);
    cr_expect_str_eq(peek_why, why);
}
