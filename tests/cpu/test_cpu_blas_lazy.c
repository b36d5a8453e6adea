/*
 * test_cpu_blas_lazy.c - the CPU backend loads OpenBLAS on the first GEMM that needs it
 * (plugins/backends/cpu/cpu_blas.c), so a libopenblas.so.0 that dlopen finds but cannot load is
 * reported by that GEMM instead of by the probe.
 *
 * ctest runs this with LD_LIBRARY_PATH naming a directory whose libopenblas.so.0 is a text file
 * (tests/cpu/CMakeLists.txt): dlopen looks there first, so the probe sees OpenBLAS where dlopen
 * will look and offers the device. Everything that needs no OpenBLAS works (an add, a small
 * product in the backend's own loops, with LAMINA_CPU_ISA=base set there too); the first
 * product that needs OpenBLAS fails with the backend's "Device unavailable" and dlopen's
 * reason, and so do the next one and a description of the device. (The loader reads
 * LD_LIBRARY_PATH when the process starts: it cannot be set from inside the test.)
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/lamina.h"

TestSuite(cpu_blas_lazy, .fini = lam_shutdown);

/* A product through the cpu backend; LAM_OK with out filled, or the op's status. */
static lam_status product(lam_ctx *ctx, int64_t n, const float *a, const float *b, float *out) {
    lam_shape s;
    const int64_t dims[2] = {n, n};
    lam_shape_init(&s, 2, dims);
    lam_tensor *ta = NULL, *tb = NULL, *tc = NULL;
    cr_assert_eq(lam_tensor_from_data(ctx, &s, a, (size_t)(n * n), &ta), LAM_OK, "%s",
                 lam_last_error());
    cr_assert_eq(lam_tensor_from_data(ctx, &s, b, (size_t)(n * n), &tb), LAM_OK, "%s",
                 lam_last_error());
    lam_status st = lam_op_matmul(ta, tb, 0, 0, &tc);
    if (st == LAM_OK) {
        st = lam_tensor_read(tc, out, (size_t)(n * n));
    }
    lam_tensor_release(ta);
    lam_tensor_release(tb);
    lam_tensor_release(tc);
    return st;
}

/* Asserts that the last error is the backend's: unavailable, naming the stand-in file. */
static void expect_unavailable(lam_status st, const char *what) {
    cr_assert_eq(st, LAM_ERR_DEVICE_UNAVAILABLE, "%s: got %s (%s)", what, lam_status_string(st),
                 lam_last_error());
    const char *msg = lam_last_error();
    cr_assert_not_null(strstr(msg, "cpu: Device unavailable, no OpenBLAS: " LAMINA_TEST_NOT_BLAS
                                   "/libopenblas.so.0: "),
                       "%s: '%s'", what, msg);
}

Test(cpu_blas_lazy, a_library_dlopen_cannot_load_is_reported_by_the_first_gemm_needing_it) {
    const char *llp = getenv("LD_LIBRARY_PATH");
    if (llp == NULL || strncmp(llp, LAMINA_TEST_NOT_BLAS, strlen(LAMINA_TEST_NOT_BLAS)) != 0) {
        cr_skip("LD_LIBRARY_PATH does not start with the stand-in's directory (run it by ctest)");
    }
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "the probe refused the device: %s",
                 lam_last_error());
    /* A 2x2 product in the backend's baseline loops: [[1,2],[3,4]] [[5,6],[7,8]] by hand. */
    const float a2[4] = {1, 2, 3, 4}, b2[4] = {5, 6, 7, 8}, want2[4] = {19, 22, 43, 50};
    float out2[4];
    cr_assert_eq(product(ctx, 2, a2, b2, out2), LAM_OK, "%s", lam_last_error());
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(out2[i], want2[i], "element %d is %g, want %g", i, (double)out2[i],
                     (double)want2[i]);
    }
    /* 64x64: 2^18 multiply-adds, past the backend's own loops: OpenBLAS's. */
    static float a[64 * 64], b[64 * 64], out[64 * 64];
    for (int i = 0; i < 64 * 64; i++) {
        a[i] = 1.0f;
        b[i] = 2.0f;
    }
    expect_unavailable(product(ctx, 64, a, b, out), "first product");
    expect_unavailable(product(ctx, 64, a, b, out), "second product");
    size_t cpu = lam_backend_count();
    for (size_t i = 0; i < lam_backend_count(); i++) {
        const char *name = NULL;
        if (lam_backend_peek(i, &name, NULL, NULL, NULL) == LAM_OK && strcmp(name, "cpu") == 0) {
            cpu = i;
        }
    }
    cr_assert_lt(cpu, lam_backend_count(), "no cpu backend");
    lam_device_info info = LAM_DEVICE_INFO_INIT;
    expect_unavailable(lam_backend_device_info(cpu, 0, &info), "device info");
}
