/*
 * Section 4.6, GPU computing (the chapter times 3000 x 3000; 512 keeps the test suite fast on
 * CPU Vulkan drivers): contexts, copyto / as_in_context, ops refusing to mix contexts,
 * parameters initialized on a context, and timing a large matrix product correctly: execution
 * may be asynchronous, so the clock is read only after lam_waitall().
 *
 * Facts that hold on every machine go to stdout (checked by the test suite); which devices
 * exist and how long things took go to stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include "example_util.h"

#include <math.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Every context with a device: cpu(0) first, then each device of the other backends. */
static size_t contexts(lam_ctx **out, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < lam_backend_count() && n < cap; i++) {
        const char *name, *why;
        uint32_t devices;
        CHECK(lam_backend_get(i, &name, &devices, &why));
        if (devices == 0) {
            fprintf(stderr, "%s: no device (%s)\n", name, why);
        }
        for (uint32_t d = 0; d < devices && n < cap; d++) {
            char spec[80];
            snprintf(spec, sizeof spec, "%s:%u", name, d);
            if (lam_ctx_get(spec, &out[n]) == LAM_OK) {
                n++;
            } else {
                fprintf(stderr, "%s: %s\n", spec, lam_last_error());
            }
        }
    }
    return n;
}

int main(void) {
    lam_seed(0);
    CHECK(lam_scope_begin()); /* every tensor below is released by lam_scope_end */
    lam_ctx *ctx[8], *cpu;
    size_t n = contexts(ctx, 8);
    CHECK(lam_ctx_get("cpu", &cpu));
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "context %s\n", lam_ctx_name(ctx[i]));
    }
    lam_ctx *other = n > 1 ? (ctx[0] == cpu ? ctx[1] : ctx[0]) : cpu;

    printf("== copyto and as_in_context\n");
    lam_tensor *x = example_uniform(2, 3, 0.0f, 1.0f, 1), *y, *z;
    CHECK(lam_tensor_copyto(x, other, &y));
    CHECK(lam_tensor_as_in_context(y, other, &z));
    float a[6], b[6];
    CHECK(lam_tensor_read(x, a, 6));
    CHECK(lam_tensor_read(y, b, 6));
    printf("copyto makes a new tensor with the same values: %s\n",
           y != x && memcmp(a, b, sizeof a) == 0 ? "yes" : "no");
    printf("as_in_context on its own context returns the tensor itself: %s\n",
           z == y ? "yes" : "no");
    if (other != cpu) {
        lam_tensor *sum;
        if (lam_op_add(x, y, &sum) != LAM_OK) {
            fprintf(stderr, "x + y across contexts: %s\n", lam_last_error());
        }
    } else {
        fprintf(stderr, "only one context: mixing contexts cannot be shown here\n");
    }

    printf("== a model initialized on each context\n");
    x = example_uniform(2, 20, 0.0f, 1.0f, 2);
    float ref[20];
    int agree = 1;
    for (size_t i = 0; i < n; i++) {
        lam_block *net, *d0, *d1;
        CHECK(lam_sequential_create(&net));
        CHECK(lam_layer_create("Dense", "units=256, activation=relu", &d0));
        CHECK(lam_layer_create("Dense", "units=10", &d1));
        CHECK(lam_sequential_add(net, d0));
        CHECK(lam_sequential_add(net, d1));
        lam_block_release(d0);
        lam_block_release(d1);
        CHECK(lam_block_initialize(net, NULL, ctx[i], 0)); /* same seed: same weights */
        lam_tensor *xi, *out;
        CHECK(lam_tensor_as_in_context(x, ctx[i], &xi));
        CHECK(lam_block_call(net, xi, &out));
        float v[20];
        CHECK(lam_tensor_read(out, v, 20));
        for (int k = 0; k < 20; k++) {
            if (i == 0) {
                ref[k] = v[k];
            } else if (fabsf(v[k] - ref[k]) > 1e-4f + 1e-3f * fabsf(ref[k])) {
                agree = 0;
            }
        }
        lam_block_release(net);
    }
    printf("the same model gives the same output on every context: %s\n", agree ? "yes" : "no");

    printf("== a 512 x 512 matrix product, timed after synchronizing\n");
    lam_tensor *m = example_uniform(512, 512, -1.0f, 1.0f, 3);
    float first = 0;
    agree = 1;
    for (size_t i = 0; i < n; i++) {
        lam_tensor *mi, *p;
        CHECK(lam_tensor_as_in_context(m, ctx[i], &mi));
        CHECK(lam_waitall());
        double t0 = now();
        CHECK(lam_op_matmul(mi, mi, 0, 0, &p));
        double queued = now() - t0;
        CHECK(lam_waitall()); /* without this the clock would stop before the work is done */
        double done = now() - t0;
        float v;
        lam_tensor *s;
        CHECK(lam_op_sum(p, NULL, 0, 0, &s));
        CHECK(lam_tensor_scalar(s, &v));
        if (i == 0) {
            first = v;
        } else if (fabsf(v - first) > 1e-2f * fabsf(first) + 1.0f) {
            agree = 0;
        }
        fprintf(stderr,
                "%s: matmul returned after %.2f ms, finished after %.2f ms (%.1f GFLOP/s)\n",
                lam_ctx_name(ctx[i]), queued * 1e3, done * 1e3, 2.0 * 512 * 512 * 512 / done / 1e9);
    }
    printf("sum of the product agrees on every context: %s\n", agree ? "yes" : "no");
    CHECK(lam_scope_end());
    lam_shutdown();
    return 0;
}
