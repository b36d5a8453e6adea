/*
 * The MPI communicator's non-blocking allreduce and the algorithm it picks (lamina_comm_mpi.so,
 * "the non-blocking allreduce's algorithm"), run by ctest under `mpirun --oversubscribe -np N`
 * (N = 2 and 3). The application starts MPI itself and reads Open MPI's control variable
 * coll_libnbc_iallreduce_algorithm through the MPI tool interface, as any application could:
 *  - a start of 64 KiB and more, with libnbc left to decide (0), logs (debug) that the plugin
 *    asked for reduce-scatter + allgather; below 64 KiB nothing is chosen;
 *  - the variable reads 0 again while the reduction is still in flight: the choice was for
 *    Lamina's call only, the application's own MPI_Iallreduce keeps Open MPI's choice;
 *  - a value the application set (2, binomial) is kept, and the plugin says so;
 *  - every sum is exact: rank r holds a[i] = (r + 1) * (i % 1000 + 1) + 0.25, so the sum over
 *    N ranks is (i % 1000 + 1) * N (N + 1) / 2 + 0.25 N (exact in float32), with element
 *    counts that N does not divide.
 * A CPU tensor is reduced where it lies; under LAMINA_BACKEND=vulkan the tensors are staged
 * through host memory, which changes nothing here.
 */
#include "lamina/lamina.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank = -1;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "rank %d: FAIL %s:%d: ", rank, __FILE__, __LINE__);                    \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " (last error: %s)\n", lam_last_error());                              \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
        }                                                                                          \
    } while (0)

static char logged[4096];

static void on_log(lam_log_level level, const char *message, void *user) {
    (void)level;
    (void)user;
    if (strncmp(message, "mpi: MPI_Iallreduce", 19) == 0) {
        size_t have = strlen(logged);
        snprintf(logged + have, sizeof logged - have, "%s\n", message);
    }
}

static MPI_T_cvar_handle alg;

static int alg_value(void) {
    int v = -1;
    CHECK(MPI_T_cvar_read(alg, &v) == MPI_SUCCESS, "MPI_T_cvar_read");
    return v;
}

static void set_alg(int v) {
    CHECK(MPI_T_cvar_write(alg, &v) == MPI_SUCCESS, "MPI_T_cvar_write %d", v);
}

/* Starts the sum of n floats, checks the variable while it is in flight, waits, checks the
 * sum. */
static void sum_once(lam_comm *c, lam_ctx *ctx, int64_t n, int want_alg, const char *what) {
    int size = lam_comm_size(c);
    lam_shape s;
    lam_shape_init(&s, 1, &n);
    lam_tensor *t = NULL;
    float *v = malloc((size_t)n * sizeof *v);
    CHECK(v != NULL && lam_tensor_create(ctx, &s, &t) == LAM_OK, "create %lld", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        v[i] = (float)(rank + 1) * (float)(i % 1000 + 1) + 0.25f;
    }
    CHECK(lam_tensor_write(t, v, (size_t)n) == LAM_OK, "write");
    lam_comm_request *r = NULL;
    CHECK(lam_comm_allreduce_start(c, t, &r) == LAM_OK, "start %s", what);
    CHECK(alg_value() == want_alg,
          "%s: coll_libnbc_iallreduce_algorithm reads %d in flight, "
          "want %d",
          what, alg_value(), want_alg);
    CHECK(lam_comm_wait(r) == LAM_OK, "wait %s", what);
    CHECK(lam_tensor_read(t, v, (size_t)n) == LAM_OK, "read");
    for (int64_t i = 0; i < n; i++) {
        double want = (double)(i % 1000 + 1) * size * (size + 1) / 2 + 0.25 * size;
        CHECK((double)v[i] == want, "%s: element %lld of %lld is %.9g, want %.9g", what,
              (long long)i, (long long)n, (double)v[i], want);
    }
    lam_tensor_release(t);
    free(v);
}

int main(int argc, char **argv) {
    int provided = 0, index = -1, count = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    CHECK(MPI_T_init_thread(MPI_THREAD_SERIALIZED, &provided) == MPI_SUCCESS, "MPI_T_init");
    if (MPI_T_cvar_get_index("coll_libnbc_iallreduce_algorithm", &index) != MPI_SUCCESS) {
        if (rank == 0) {
            printf("skipped: this MPI has no coll_libnbc_iallreduce_algorithm (not Open MPI's "
                   "libnbc), the plugin keeps MPI's own algorithm\n");
        }
        MPI_T_finalize();
        MPI_Finalize();
        return 77;
    }
    CHECK(MPI_T_cvar_handle_alloc(index, NULL, &alg, &count) == MPI_SUCCESS && count == 1,
          "cvar handle");
    CHECK(alg_value() == 0, "the test starts with libnbc deciding, the variable is %d",
          alg_value());
    lam_log_set_callback(on_log, NULL, LAM_LOG_DEBUG);
    lam_comm *c = NULL;
    lam_ctx *ctx = NULL;
    CHECK(lam_comm_open("mpi", &c) == LAM_OK, "lam_comm_open");
    CHECK(lam_ctx_default(&ctx) == LAM_OK, "context");

    /* Below 64 KiB (16383 floats): libnbc's own choice, nothing said. */
    sum_once(c, ctx, 16383, 0, "16383 floats");
    CHECK(logged[0] == '\0', "nothing chosen below 64 KiB, logged: %s", logged);
    /* 64 KiB and more: chosen for the call, 0 again as soon as it is started. */
    sum_once(c, ctx, 16384, 0, "16384 floats");
    CHECK(strstr(logged, "reduce-scatter + allgather") != NULL &&
              strstr(logged, "coll_libnbc_iallreduce_algorithm 3") != NULL,
          "the choice is logged, got: '%s'", logged);
    sum_once(c, ctx, 300001, 0, "300001 floats");
    sum_once(c, ctx, 65537, 0, "65537 floats");

    /* The application's own choice is kept (and said, once, on a fresh communicator). */
    lam_comm *c2 = NULL;
    CHECK(lam_comm_open("mpi", &c2) == LAM_OK, "second lam_comm_open");
    logged[0] = '\0';
    set_alg(2);
    sum_once(c2, ctx, 300001, 2, "300001 floats, binomial set by the application");
    CHECK(strstr(logged, "keeps coll_libnbc_iallreduce_algorithm 2, set by the user") != NULL,
          "the user's value is kept and said, got: '%s'", logged);
    set_alg(0);

    CHECK(lam_comm_close(c2) == LAM_OK, "close 2");
    CHECK(lam_comm_close(c) == LAM_OK, "close");
    CHECK(alg_value() == 0, "the variable after close is %d", alg_value());
    lam_log_set_callback(NULL, NULL, LAM_LOG_ERROR);
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    printf("rank %d of %d: non-blocking allreduce algorithm checks passed on %s\n", rank, size,
           lam_ctx_name(ctx));
    MPI_T_cvar_handle_free(&alg);
    MPI_T_finalize();
    lam_shutdown();
    MPI_Finalize();
    return 0;
}
