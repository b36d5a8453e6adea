/*
 * dist_bench.c - data-parallel training figures (issue 16), driven by bench/run_dist under
 * mpirun. Every rank runs the same case; rank 0 prints one JSON line of medians.
 *
 *   dist_bench allreduce bytes=N bucket=B reps=R [cold=1]
 *       Summing N bytes of float32 over the ranks: raw MPI_Allreduce on one buffer (in place)
 *       against Lamina's way, lam_comm_allreduce_start on buckets of B bytes, then
 *       lam_comm_wait on each; the two alternate (which goes first alternates too), R samples
 *       each. cold=1 writes 64 MiB of other memory before each (the caches a step leaves).
 *   dist_bench sweep reps=R max=BYTES
 *       Raw MPI_Allreduce from 4 bytes to max by factors of 4: medians for the latency and
 *       bandwidth fit of bench/SCALING.md.
 *   dist_bench step batch=256 bucket=B steps=S [layers=784,1024,1024,10] [local=1]
 *       Training steps of an MLP (default the 784-1024-1024-10 one (relu, softmax cross-entropy,
 * SGD), batch per rank: the step's time and its phases (forward, backward with the buckets'
 *       reductions started inside it, lam_trainer_step = the wait and the update), medians
 *       over S steps after 3 warm-up steps; local=1 is one process without a communicator.
 *
 * The raw baseline calls MPI directly: the communicator plugin initialized MPI in this process
 * (lam_comm_open), and MPI_COMM_WORLD is the communicator it reduces over.
 */
#define _POSIX_C_SOURCE 200809L
#include <lamina/lamina.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static const char *arg(int argc, char **argv, const char *key, const char *def) {
    size_t k = strlen(key);
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=') {
            return argv[i] + k + 1;
        }
    }
    return def;
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != LAM_OK) {                                                                    \
            fprintf(stderr, "dist_bench: %s: %s\n", #call, lam_last_error());                      \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static int allreduce_case(lam_comm *comm, int argc, char **argv) {
    size_t bytes = (size_t)atoll(arg(argc, argv, "bytes", "7454760"));
    size_t bucket = (size_t)atoll(arg(argc, argv, "bucket", "26214400"));
    int reps = atoi(arg(argc, argv, "reps", "15"));
    /* cold=1: 64 MiB of other memory written before each timed reduction, so that it starts
     * from the caches a training step leaves (its products stream through far more than the
     * gradients), not from the gradients the previous repetition left in cache. */
    int cold = atoi(arg(argc, argv, "cold", "0"));
    size_t n = bytes / sizeof(float), per = bucket / sizeof(float);
    size_t nb = (n + per - 1) / per;
    size_t flush_bytes = cold ? (size_t)64 << 20 : 0;
    char *flush = cold ? malloc(flush_bytes) : NULL;
    float *raw = malloc(n * sizeof *raw);
    lam_tensor **b = calloc(nb, sizeof *b);
    lam_comm_request **rq = calloc(nb, sizeof *rq);
    for (size_t i = 0; i < n; i++) {
        raw[i] = (float)(i % 97) * 0.01f;
    }
    for (size_t k = 0; k < nb; k++) {
        int64_t len = (int64_t)(k + 1 < nb ? per : n - k * per);
        lam_shape s;
        lam_shape_init(&s, 1, &len);
        CHECK(lam_tensor_from_data(NULL, &s, raw + k * per, (size_t)len, &b[k]));
    }
    double *tr = malloc((size_t)reps * sizeof *tr), *tb = malloc((size_t)reps * sizeof *tb);
    /* Two warm-up rounds; the order of the two alternates from round to round, so neither
     * always runs on the caches the other left. */
    for (int r = -2; r < reps; r++) {
        double traw = 0, tbuck = 0;
        for (int half = 0; half < 2; half++) {
            if (flush != NULL) {
                memset(flush, r + half, flush_bytes);
            }
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = now();
            if ((half ^ (r & 1)) == 0) {
                MPI_Allreduce(MPI_IN_PLACE, raw, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                traw = now() - t0;
            } else {
                for (size_t k = 0; k < nb; k++) {
                    CHECK(lam_comm_allreduce_start(comm, b[k], &rq[k]));
                }
                for (size_t k = 0; k < nb; k++) {
                    CHECK(lam_comm_wait(rq[k]));
                }
                tbuck = now() - t0;
            }
        }
        if (r >= 0) {
            tr[r] = traw;
            tb[r] = tbuck;
        }
    }
    /* The slowest rank's time counts: a collective is done when every rank is. */
    double mr = median(tr, reps), mb = median(tb, reps), g[2] = {mr, mb};
    MPI_Allreduce(MPI_IN_PLACE, g, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (lam_comm_rank(comm) == 0) {
        printf("{\"case\":\"allreduce\",\"ranks\":%d,\"bytes\":%zu,\"bucket\":%zu,\"buckets\":%zu,"
               "\"raw_s\":%.6g,\"bucketed_s\":%.6g,\"raw_GBps\":%.4g,\"bucketed_GBps\":%.4g,"
               "\"ratio\":%.4g}\n",
               lam_comm_size(comm), bytes, bucket, nb, g[0], g[1], (double)bytes / g[0] / 1e9,
               (double)bytes / g[1] / 1e9, g[0] / g[1]);
    }
    for (size_t k = 0; k < nb; k++) {
        lam_tensor_release(b[k]);
    }
    free(raw);
    free(flush);
    free(b);
    free(rq);
    free(tr);
    free(tb);
    return 0;
}

/* Raw MPI_Allreduce times from 4 bytes to 64 MiB (the α-β fit of bench/SCALING.md). */
static int sweep_case(lam_comm *comm, int argc, char **argv) {
    int reps = atoi(arg(argc, argv, "reps", "15"));
    size_t top = (size_t)atoll(arg(argc, argv, "max", "67108864"));
    float *buf = calloc(top / sizeof(float) + 1, sizeof *buf);
    double *t = malloc((size_t)reps * sizeof *t);
    for (size_t bytes = 4; bytes <= top; bytes *= 4) {
        int n = (int)(bytes / sizeof(float));
        for (int r = -2; r < reps; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = now();
            MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            if (r >= 0) {
                t[r] = now() - t0;
            }
        }
        double m = median(t, reps);
        MPI_Allreduce(MPI_IN_PLACE, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (lam_comm_rank(comm) == 0) {
            printf("{\"case\":\"sweep\",\"ranks\":%d,\"bytes\":%zu,\"raw_s\":%.6g}\n",
                   lam_comm_size(comm), bytes, m);
        }
    }
    free(buf);
    free(t);
    return 0;
}

static int step_case(lam_comm *comm, int argc, char **argv) {
    int64_t batch = atoll(arg(argc, argv, "batch", "256"));
    size_t bucket = (size_t)atoll(arg(argc, argv, "bucket", "0"));
    int steps = atoi(arg(argc, argv, "steps", "15"));
    int rank = comm ? lam_comm_rank(comm) : 0, size = comm ? lam_comm_size(comm) : 1;
    /* layers=784,1024,1024,10: Dense layers with relu between, the last without. */
    int64_t w[8];
    int nw = 0;
    for (char *p = (char *)arg(argc, argv, "layers", "784,1024,1024,10"); *p && nw < 8;) {
        w[nw++] = strtoll(p, &p, 10);
        p += *p == ',';
    }
    lam_block *net, *l;
    CHECK(lam_sequential_create(&net));
    for (int i = 1; i < nw; i++) {
        char a[96];
        snprintf(a, sizeof a, "units=%lld, in_units=%lld%s", (long long)w[i], (long long)w[i - 1],
                 i + 1 < nw ? ", activation=relu" : "");
        CHECK(lam_layer_create("Dense", a, &l));
        CHECK(lam_sequential_add(net, l));
        lam_block_release(l);
    }
    CHECK(lam_block_initialize(net, NULL, NULL, 0));
    lam_param_list *ps;
    CHECK(lam_block_collect_params(net, NULL, &ps));
    lam_trainer *t;
    CHECK(lam_trainer_create(ps, "sgd", "learning_rate=0.01, momentum=0.9", &t));
    if (comm) {
        CHECK(lam_trainer_set_comm(t, comm, bucket));
    }
    float *xb = malloc((size_t)(batch * w[0]) * sizeof *xb), *yb = malloc((size_t)batch * 4);
    for (int64_t i = 0; i < batch * w[0]; i++) {
        xb[i] = (float)((i * 7919 + rank * 31) % 255) / 255.0f;
    }
    for (int64_t i = 0; i < batch; i++) {
        yb[i] = (float)((i + rank) % w[nw - 1]);
    }
    int64_t xd[2] = {batch, w[0]};
    lam_shape xs, ys;
    lam_shape_init(&xs, 2, xd);
    lam_shape_init(&ys, 1, &batch);
    lam_tensor *x, *y;
    CHECK(lam_tensor_from_data(NULL, &xs, xb, (size_t)(batch * w[0]), &x));
    CHECK(lam_tensor_from_data(NULL, &ys, yb, (size_t)batch, &y));
    /* Wall times of the step and its phases, then CPU times: this thread's over the step, and
     * the process's minus this thread's (the trainer's progress thread, MPI's own threads). */
    double *ts = malloc((size_t)steps * 6 * sizeof *ts);
    for (int s = -3; s < steps; s++) {
        if (comm) {
            CHECK(lam_comm_barrier(comm));
        }
        lam_tensor *out, *loss;
        double t0 = now(), c0 = cpu(CLOCK_THREAD_CPUTIME_ID), p0 = cpu(CLOCK_PROCESS_CPUTIME_ID);
        lam_autograd_set_recording(1);
        CHECK(lam_block_call(net, x, &out));
        CHECK(lam_loss_softmax_cross_entropy(out, y, &loss));
        lam_autograd_set_recording(0);
        double t1 = now();
        CHECK(lam_autograd_backward(loss, NULL));
        double t2 = now();
        CHECK(lam_trainer_step(t, batch));
        double t3 = now(), c3 = cpu(CLOCK_THREAD_CPUTIME_ID), p3 = cpu(CLOCK_PROCESS_CPUTIME_ID);
        lam_tensor_release(out);
        lam_tensor_release(loss);
        if (s >= 0) {
            ts[s] = t3 - t0;
            ts[steps + s] = t1 - t0;
            ts[2 * steps + s] = t2 - t1;
            ts[3 * steps + s] = t3 - t2;
            ts[4 * steps + s] = c3 - c0;
            ts[5 * steps + s] = (p3 - p0) - (c3 - c0);
        }
    }
    double m[6];
    for (int k = 0; k < 6; k++) {
        m[k] = median(ts + k * steps, steps);
    }
    if (comm) { /* the slowest rank */
        MPI_Allreduce(MPI_IN_PLACE, m, 6, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    }
    if (rank == 0) {
        printf("{\"case\":\"step\",\"ranks\":%d,\"batch\":%lld,\"bucket\":%zu,\"step_s\":%.6g,"
               "\"forward_s\":%.6g,\"backward_s\":%.6g,\"trainer_step_s\":%.6g,"
               "\"cpu_main_s\":%.6g,\"cpu_other_s\":%.6g,\"samples_per_s\":%.6g}\n",
               size, (long long)batch, comm ? (bucket ? bucket : LAM_TRAINER_BUCKET_BYTES) : 0,
               m[0], m[1], m[2], m[3], m[4], m[5], (double)(batch * size) / m[0]);
    }
    lam_tensor_release(x);
    lam_tensor_release(y);
    free(xb);
    free(yb);
    free(ts);
    lam_trainer_destroy(t);
    lam_param_list_destroy(ps);
    lam_block_release(net);
    return 0;
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    int local = atoi(arg(argc, argv, "local", "0"));
    lam_comm *comm = NULL;
    if (!local) {
        CHECK(lam_comm_open(NULL, &comm));
    }
    int rc = 2;
    if (strcmp(what, "allreduce") == 0 && comm) {
        rc = allreduce_case(comm, argc, argv);
    } else if (strcmp(what, "sweep") == 0 && comm) {
        rc = sweep_case(comm, argc, argv);
    } else if (strcmp(what, "step") == 0) {
        rc = step_case(comm, argc, argv);
    } else {
        fprintf(stderr, "usage: dist_bench allreduce bytes=N bucket=B reps=R | sweep reps=R "
                        "max=BYTES | step batch=N bucket=B steps=S [local=1]\n");
    }
    if (comm) {
        CHECK(lam_comm_close(comm));
    }
    lam_shutdown();
    return rc;
}
