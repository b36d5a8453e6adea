/*
 * lamina_bench_comm: allreduce through lam_comm against raw MPI on the same bytes, in one run.
 *
 *   mpirun -np 2 build/bin/lamina_bench_comm [--smoke] [--samples N]
 *
 * For each size, rank 0 picks an iteration count that lasts >= 50 ms (broadcast, so every rank
 * runs the same number), then the samples alternate: lam_comm_allreduce on a CPU tensor,
 * MPI_Allreduce(MPI_IN_PLACE) on a float array of the same size, then the non-blocking pair
 * (lam_comm_allreduce_start + lam_comm_wait, MPI_Iallreduce + MPI_Wait). Prints, on rank 0,
 * the median time per call of each and the ratio Lamina / MPI (below 1.00: Lamina faster), one
 * line per size, and a JSON line at the end for scripts. The application starts MPI itself
 * here (MPI_Init_thread before lam_comm_open), the case where the plugin neither starts nor
 * ends MPI. The bucketed trainer's allreduce bench is a separate case (issue 16, item 2).
 * --smoke: tiny sizes, 1 sample, few iterations (checks that it runs; ctest bench_comm_smoke).
 */
#include "lamina/lamina.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LAM_BLOCKING, MPI_BLOCKING, LAM_NONBLOCKING, MPI_NONBLOCKING, N_KINDS };
static const char *const kind_names[N_KINDS] = {"lam_comm_allreduce", "MPI_Allreduce",
                                                "lam_comm_allreduce_start+wait",
                                                "MPI_Iallreduce+MPI_Wait"};

static int fail(const char *what) {
    fprintf(stderr, "lamina_bench_comm: %s: %s\n", what, lam_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
}

/* Seconds for `iters` calls of one kind (the slowest rank's time: each rank measures between
 * two barriers, and the maximum is taken). */
static double run(int kind, int iters, lam_comm *c, lam_tensor *t, float *raw, int n) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < iters; i++) {
        switch (kind) {
        case LAM_BLOCKING:
            if (lam_comm_allreduce(c, t) != LAM_OK) {
                return fail("lam_comm_allreduce");
            }
            break;
        case MPI_BLOCKING:
            MPI_Allreduce(MPI_IN_PLACE, raw, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            break;
        case LAM_NONBLOCKING: {
            lam_comm_request *r = NULL;
            if (lam_comm_allreduce_start(c, t, &r) != LAM_OK || lam_comm_wait(r) != LAM_OK) {
                return fail("lam_comm_allreduce_start");
            }
            break;
        }
        default: {
            MPI_Request r;
            MPI_Iallreduce(MPI_IN_PLACE, raw, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r);
            MPI_Wait(&r, MPI_STATUS_IGNORE);
            break;
        }
        }
    }
    double dt = MPI_Wtime() - t0, worst = 0;
    MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int smoke = 0, samples = 7;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0) {
            smoke = 1;
        } else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc) {
            samples = atoi(argv[++i]);
        }
    }
    if (smoke) {
        samples = 1;
    }
    if (samples < 1 || samples > 99) {
        samples = 7;
    }
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    lam_comm *c = NULL;
    lam_ctx *ctx = NULL;
    if (lam_comm_open("mpi", &c) != LAM_OK) {
        return fail("lam_comm_open");
    }
    if (lam_ctx_get("cpu", &ctx) != LAM_OK) {
        return fail("lam_ctx_get");
    }
    int rank = lam_comm_rank(c), size = lam_comm_size(c);
    static const int full_sizes[] = {256, 65536, 1 << 20, 1 << 23}; /* floats: 1 KiB .. 32 MiB */
    static const int smoke_sizes[] = {16, 4096};
    const int *sizes = smoke ? smoke_sizes : full_sizes;
    int n_sizes = smoke ? 2 : 4;
    if (rank == 0) {
        printf("allreduce (sum, float32, in place) over %d ranks: median of %d samples, seconds "
               "per call; ratio = Lamina / MPI\n",
               size, samples);
        printf("%12s  %-30s %12s  %-24s %12s  %6s\n", "bytes", "lamina", "time", "mpi", "time",
               "ratio");
    }
    char json[4096];
    int jl = snprintf(json, sizeof json, "{\"ranks\": %d, \"cases\": [", size);
    for (int s = 0; s < n_sizes; s++) {
        int n = sizes[s];
        int64_t dim = n;
        lam_shape shape;
        lam_shape_init(&shape, 1, &dim);
        lam_tensor *t = NULL;
        if (lam_tensor_create(ctx, &shape, &t) != LAM_OK) {
            return fail("lam_tensor_create");
        }
        float *raw = calloc((size_t)n, sizeof *raw);
        float *init = calloc((size_t)n, sizeof *init);
        if (raw == NULL || init == NULL || lam_tensor_write(t, init, (size_t)n) != LAM_OK) {
            return fail("setup");
        }
        /* Iterations for >= 50 ms of the raw call, decided by rank 0 for every rank. */
        int iters = 1;
        if (!smoke) {
            while (iters < (1 << 20)) {
                double dt = run(MPI_BLOCKING, iters, c, t, raw, n);
                if (dt >= 0.05) {
                    break;
                }
                iters *= 2;
            }
        } else {
            iters = 3;
        }
        MPI_Bcast(&iters, 1, MPI_INT, 0, MPI_COMM_WORLD);
        double times[N_KINDS][99];
        for (int k = 0; k < samples; k++) {
            for (int j = 0; j < N_KINDS; j++) {
                int kind = (j + k) % N_KINDS; /* the order rotates each round */
                times[kind][k] = run(kind, iters, c, t, raw, n) / iters;
            }
        }
        double med[N_KINDS];
        for (int kind = 0; kind < N_KINDS; kind++) {
            qsort(times[kind], (size_t)samples, sizeof(double), cmp_double);
            med[kind] = times[kind][samples / 2];
        }
        size_t bytes = (size_t)n * sizeof(float);
        if (rank == 0) {
            for (int pair = 0; pair < 2; pair++) {
                int l = 2 * pair, m = 2 * pair + 1;
                printf("%12zu  %-30s %12.3e  %-24s %12.3e  %6.2f\n", bytes, kind_names[l], med[l],
                       kind_names[m], med[m], med[l] / med[m]);
            }
        }
        jl += snprintf(json + jl, sizeof json - (size_t)jl,
                       "%s{\"bytes\": %zu, \"lamina\": %.6e, \"mpi\": %.6e, \"lamina_nb\": %.6e, "
                       "\"mpi_nb\": %.6e}",
                       s ? ", " : "", bytes, med[0], med[1], med[2], med[3]);
        free(raw);
        free(init);
        lam_tensor_release(t);
    }
    if (rank == 0) {
        printf("JSON %s]}\n", json);
    }
    lam_comm_close(c);
    lam_shutdown();
    MPI_Finalize();
    return 0;
}
