/*
 * Every collective of lam_comm checked on every rank, run by ctest under
 * `mpirun --oversubscribe -np N` (N = 2 and 3). Tensors live on the default context: the CPU
 * (host memory passed directly) or, in CI's Vulkan pass, Vulkan (staged through host memory).
 * Each rank computes what every value must be from the formulas below, worked by hand:
 *   rank r holds a[i] = (r + 1) * (i + 1) + 0.25, so the sum over N ranks is
 *   (i + 1) * N (N + 1) / 2 + 0.25 N (exact in float32 for these sizes);
 *   MAX is rank N-1's value (N * (i + 1) + 0.25), MIN rank 0's ((i + 1) + 0.25).
 * A failed check prints "rank R: FAIL ..." and exits 1, which ends the job (the MPI plugin
 * aborts it with that status).
 */
#include "lamina/lamina.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank = -1, failures, checks;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "rank %d: FAIL %s:%d: ", rank, __FILE__, __LINE__);                    \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " (last error: %s)\n", lam_last_error());                              \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static lam_ctx *ctx;

static lam_tensor *tensor(lam_dtype dtype, int64_t n) {
    lam_shape s;
    lam_shape_init(&s, 1, &n);
    lam_tensor *t = NULL;
    CHECK(lam_tensor_create_dtype(ctx, dtype, &s, &t) == LAM_OK, "create");
    return t;
}

static lam_tensor *f32(int64_t n, float (*fill)(int64_t i)) {
    lam_tensor *t = tensor(LAM_DTYPE_F32, n);
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        v[i] = fill(i);
    }
    CHECK(lam_tensor_write(t, v, (size_t)n) == LAM_OK, "write");
    free(v);
    return t;
}

static float mine(int64_t i) {
    return (float)(rank + 1) * (float)(i + 1) + 0.25f;
}

static void expect_f32(lam_tensor *t, int64_t n, double (*want)(int64_t i, int size), int size,
                       const char *what) {
    float *v = malloc((size_t)n * sizeof *v);
    CHECK(lam_tensor_read(t, v, (size_t)n) == LAM_OK, "read");
    for (int64_t i = 0; i < n; i++) {
        CHECK(v[i] == (float)want(i, size), "%s: element %lld is %.9g, expected %.9g", what,
              (long long)i, (double)v[i], want(i, size));
    }
    free(v);
}

static double sum_of(int64_t i, int n) {
    return (double)(i + 1) * n * (n + 1) / 2 + 0.25 * n;
}
static double max_of(int64_t i, int n) {
    return (double)n * (double)(i + 1) + 0.25;
}
static double min_of(int64_t i, int n) {
    (void)n;
    return (double)(i + 1) + 0.25;
}

int main(void) {
    lam_comm *c = NULL;
    if (lam_comm_open(NULL, &c) != LAM_OK) {
        fprintf(stderr, "lam_comm_open: %s\n", lam_last_error());
        return 1;
    }
    rank = lam_comm_rank(c);
    int size = lam_comm_size(c);
    const char *env_rank = getenv("OMPI_COMM_WORLD_RANK"),
               *env_size = getenv("OMPI_COMM_WORLD_SIZE");
    CHECK(strcmp(lam_comm_name(c), "mpi") == 0, "automatic choice under mpirun is %s",
          lam_comm_name(c));
    CHECK(env_rank && atoi(env_rank) == rank, "rank %d, mpirun says %s", rank, env_rank);
    CHECK(env_size && atoi(env_size) == size, "size %d, mpirun says %s", size, env_size);
    CHECK(lam_ctx_default(&ctx) == LAM_OK, "context");
    CHECK(lam_comm_barrier(c) == LAM_OK, "barrier");

    /* allreduce: sum, max, min, over sizes around the small/large protocol switch */
    const int64_t sizes[] = {1, 7, 1000, 300000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t n = sizes[k];
        lam_tensor *t = f32(n, mine);
        CHECK(lam_comm_allreduce(c, t) == LAM_OK, "allreduce of %lld", (long long)n);
        expect_f32(t, n, sum_of, size, "allreduce sum");
        lam_tensor_release(t);
    }
    lam_tensor *t = f32(5, mine);
    CHECK(lam_comm_allreduce_op(c, t, LAM_COMM_MAX) == LAM_OK, "max");
    expect_f32(t, 5, max_of, size, "allreduce max");
    lam_tensor_release(t);
    t = f32(5, mine);
    CHECK(lam_comm_allreduce_op(c, t, LAM_COMM_MIN) == LAM_OK, "min");
    expect_f32(t, 5, min_of, size, "allreduce min");
    lam_tensor_release(t);

    /* int32 and int64 sums: rank r holds r * 1000 + i (sum: 1000 * N(N-1)/2 + N i) */
    {
        lam_tensor *a = tensor(LAM_DTYPE_I32, 4), *b = tensor(LAM_DTYPE_I64, 4);
        int32_t ai[4];
        int64_t bi[4];
        for (int i = 0; i < 4; i++) {
            ai[i] = rank * 1000 + i;
            bi[i] = (int64_t)rank * 3000000000LL + i;
        }
        CHECK(lam_tensor_write_bytes(a, ai, sizeof ai) == LAM_OK, "write i32");
        CHECK(lam_tensor_write_bytes(b, bi, sizeof bi) == LAM_OK, "write i64");
        CHECK(lam_comm_allreduce(c, a) == LAM_OK, "allreduce i32");
        CHECK(lam_comm_allreduce(c, b) == LAM_OK, "allreduce i64");
        CHECK(lam_tensor_read_bytes(a, ai, sizeof ai) == LAM_OK, "read i32");
        CHECK(lam_tensor_read_bytes(b, bi, sizeof bi) == LAM_OK, "read i64");
        for (int i = 0; i < 4; i++) {
            CHECK(ai[i] == 1000 * size * (size - 1) / 2 + size * i, "i32 sum %d: %d", i, ai[i]);
            CHECK(bi[i] == 3000000000LL * size * (size - 1) / 2 + (int64_t)size * i,
                  "i64 sum %d: %lld", i, (long long)bi[i]);
        }
        lam_tensor_release(a);
        lam_tensor_release(b);
    }

    /* broadcast from the last rank: everyone ends with its values */
    {
        int root = size - 1;
        t = f32(6, mine);
        CHECK(lam_comm_broadcast(c, t, root) == LAM_OK, "broadcast");
        float v[6];
        CHECK(lam_tensor_read(t, v, 6) == LAM_OK, "read");
        for (int i = 0; i < 6; i++) {
            CHECK(v[i] == (float)(root + 1) * (float)(i + 1) + 0.25f, "broadcast %d: %g", i,
                  (double)v[i]);
        }
        CHECK(lam_comm_broadcast(c, t, size) == LAM_ERR_INVALID_ARGUMENT &&
                  strstr(lam_last_error(), "root") != NULL,
              "root out of range");
        lam_tensor_release(t);
    }

    /* allgather: rank r contributes r * 10 + j, j < 3; out is (size, 3) in rank order */
    {
        lam_tensor *in = tensor(LAM_DTYPE_F32, 3);
        float v[3] = {(float)rank * 10, (float)rank * 10 + 1, (float)rank * 10 + 2};
        CHECK(lam_tensor_write(in, v, 3) == LAM_OK, "write");
        int64_t dims[2] = {size, 3};
        lam_shape s;
        lam_shape_init(&s, 2, dims);
        lam_tensor *out = NULL;
        CHECK(lam_tensor_create(ctx, &s, &out) == LAM_OK, "create out");
        CHECK(lam_comm_allgather(c, in, out) == LAM_OK, "allgather");
        float g[3 * 8];
        CHECK(lam_tensor_read(out, g, (size_t)(3 * size)) == LAM_OK, "read");
        for (int r = 0; r < size; r++) {
            for (int j = 0; j < 3; j++) {
                CHECK(g[r * 3 + j] == (float)(r * 10 + j), "allgather [%d,%d] = %g", r, j,
                      (double)g[r * 3 + j]);
            }
        }
        lam_tensor_release(out);
        lam_tensor_release(in);
    }

    /* non-blocking: four outstanding requests on tensors of different sizes, tested while
     * outstanding, waited for in reverse order */
    {
        const int64_t ns[4] = {3, 1000, 50000, 17};
        lam_tensor *ts[4];
        lam_comm_request *rq[4];
        for (int k = 0; k < 4; k++) {
            ts[k] = f32(ns[k], mine);
            CHECK(lam_comm_allreduce_start(c, ts[k], &rq[k]) == LAM_OK, "start %d", k);
        }
        CHECK(lam_comm_allreduce(c, ts[1]) == LAM_ERR_STATE &&
                  strstr(lam_last_error(), "outstanding") != NULL,
              "a tensor in flight is refused");
        CHECK(lam_comm_close(c) == LAM_ERR_STATE, "close with requests outstanding");
        int done = 0;
        CHECK(lam_comm_test(rq[0], &done) == LAM_OK, "test");
        for (int k = 3; k >= 0; k--) {
            CHECK(lam_comm_wait(rq[k]) == LAM_OK, "wait %d", k);
            expect_f32(ts[k], ns[k], sum_of, size, "non-blocking sum");
            lam_tensor_release(ts[k]);
        }
    }

    /* errors: a dtype MPI cannot sum, a wrong allgather size */
    {
        lam_tensor *h = tensor(LAM_DTYPE_F16, 4);
        CHECK(lam_comm_allreduce(c, h) == LAM_ERR_DTYPE &&
                  strstr(lam_last_error(), "lam_comm_allreduce on mpi: ") != NULL,
              "f16 sum refused: %s", lam_last_error());
        lam_tensor_release(h);
        lam_tensor *in = tensor(LAM_DTYPE_F32, 3), *out = tensor(LAM_DTYPE_F32, 4);
        CHECK(lam_comm_allgather(c, in, out) == LAM_ERR_SHAPE, "allgather size");
        lam_tensor_release(in);
        lam_tensor_release(out);
    }

    CHECK(lam_comm_barrier(c) == LAM_OK, "barrier");
    CHECK(lam_comm_close(c) == LAM_OK, "close");
    printf("rank %d of %d: %d checks passed on %s\n", rank, size, checks, lam_ctx_name(ctx));
    lam_shutdown();
    return failures ? 1 : 0;
}
