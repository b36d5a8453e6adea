/*
 * liblamina_comm_mpi_impl.so: the communicator on MPI (Open MPI on Debian), ABI 2.1 - the part
 * that links MPI. lamina_comm_mpi.so (comm_mpi.c), the plugin, registers the communicator and
 * loads this file, from its own directory, on the first open (loading Open MPI was half of the
 * start of a program that never opens a communicator); lamina_comm_mpi_impl() hands it the
 * descriptor below.
 *
 * Each lam_comm_open duplicates MPI_COMM_WORLD (so Lamina's traffic never matches the
 * application's own messages) with MPI_ERRORS_RETURN, so a failing call comes back as a status
 * instead of aborting the process. MPI is started by the first open unless the application
 * started it; then this plugin also ends it, at process exit, because how MPI must end depends
 * on how the process ends:
 *  - exit status 0: MPI_Finalize (every rank does the same);
 *  - any other status: one line on stderr naming the rank and the status, then
 *    MPI_Abort(MPI_COMM_WORLD, status), which makes mpirun kill every rank at once (and
 *    report "MPI_ABORT was invoked on rank N ... errorcode S"). Finalizing instead
 *    would hang: MPI_Finalize waits for every rank, while the others wait in a collective for
 *    the rank that failed.
 * Not at lam_shutdown(): a rank that cleans up after an error and then exits non-zero would
 * block in MPI_Finalize the same way. So that the exit handler stays mapped, the plugin pins
 * itself in memory (RTLD_NODELETE) once it has started MPI (MPI cannot start twice in a
 * process anyway). A rank killed by a signal runs no handler; mpirun notices the death and
 * kills the job ("process rank N ... exited on signal 9").
 */
#define _GNU_SOURCE /* on_exit, dladdr, RTLD_NODELETE */
#include "lamina/plugin.h"

#include <dlfcn.h>
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const lam_host_api *api; /* the host table, kept at load */

typedef struct mpi_comm {
    MPI_Comm comm;
    int rank, size;
    /* Open MPI's control variable coll_libnbc_iallreduce_algorithm (MPI_T), when it exists:
     * see nb_algorithm below. */
    MPI_T_cvar_handle nbc_alg;
    int have_nbc_alg;
    int said_nbc_alg; /* the choice was logged (once per communicator) */
} mpi_comm;

/* A non-blocking allreduce: one MPI request per chunk of at most INT_MAX elements. */
typedef struct mpi_request {
    int n;
    MPI_Request reqs[];
} mpi_request;

/* Largest element count of one MPI call (MPI counts are int). */
#define CHUNK ((size_t)INT_MAX)

static lam_status mpi_fail(int rc, const char *call) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, text, &len);
    return lam_plugin_error(api, LAM_ERR_BACKEND, "%s failed, %s", call, text);
}

/* MPI's type for a dtype; `reduce` when it will be summed (F16 and BF16 cannot be). */
static lam_status mpi_type(lam_dtype dtype, int reduce, MPI_Datatype *out) {
    switch (dtype) {
    case LAM_DTYPE_F32:
        *out = MPI_FLOAT;
        return LAM_OK;
    case LAM_DTYPE_F64:
        *out = MPI_DOUBLE;
        return LAM_OK;
    case LAM_DTYPE_I32:
        *out = MPI_INT32_T;
        return LAM_OK;
    case LAM_DTYPE_I64:
        *out = MPI_INT64_T;
        return LAM_OK;
    case LAM_DTYPE_U8:
        *out = MPI_UINT8_T;
        return LAM_OK;
    case LAM_DTYPE_F16:
    case LAM_DTYPE_BF16:
        if (!reduce) {
            *out = MPI_UINT16_T; /* moved as bits */
            return LAM_OK;
        }
        return lam_plugin_error(api, LAM_ERR_DTYPE,
                                "Unsupported dtype, MPI has no 16-bit float reduction (reduce in "
                                "float32)");
    default:
        return lam_plugin_error(api, LAM_ERR_DTYPE, "Unsupported dtype, %d", (int)dtype);
    }
}

static MPI_Op mpi_op(lam_comm_reduce op) {
    return op == LAM_COMM_MAX ? MPI_MAX : op == LAM_COMM_MIN ? MPI_MIN : MPI_SUM;
}

/* ---- starting and ending MPI ---- */

static int started_mpi; /* this plugin called MPI_Init_thread */

static void end_mpi(int status, void *arg) {
    (void)arg;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) {
        return;
    }
    if (status != 0) {
        /* The process's last words, on stderr: MPI_Abort's own message ("MPI_ABORT was invoked
         * on rank N") is sometimes lost by Open MPI 4.1 (an ORTE show_help unpack error when
         * the process dies at once), and the job's log must name the rank that failed. */
        int rank = -1, size = 0;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        char line[160];
        int n = snprintf(line, sizeof line,
                         "lamina_comm_mpi: rank %d of %d exits with status %d, aborting the MPI "
                         "job\n",
                         rank, size, status);
        if (n > 0) {
            fflush(stdout);
            (void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        }
        MPI_Abort(MPI_COMM_WORLD, status);
    }
    MPI_Finalize();
}

/* Keeps this plugin mapped until the process ends, so the exit handler stays valid. */
static void pin_self(void) {
    Dl_info info;
    if (dladdr((void *)(uintptr_t)&end_mpi, &info) != 0 && info.dli_fname != NULL) {
        void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
        (void)h; /* the reference is never dropped on purpose */
    }
}

static lam_status start_mpi(void) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (finalized) {
        return lam_plugin_error(api, LAM_ERR_STATE,
                                "Invalid state, MPI was finalized in this process (it cannot "
                                "start twice)");
    }
    if (initialized) {
        return LAM_OK; /* the application's, or ours from an earlier open */
    }
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) {
        return mpi_fail(rc, "MPI_Init_thread");
    }
    started_mpi = 1;
    pin_self();
#ifdef __GLIBC__
    on_exit(end_mpi, NULL);
#endif
    return LAM_OK;
}

/* ---- the non-blocking allreduce's algorithm ----
 *
 * Open MPI's MPI_Iallreduce (coll/libnbc) takes, for fewer than 4 ranks or any in-place call,
 * the binomial algorithm: every rank sends its whole buffer up a tree, the root sums it all
 * and broadcasts the result back. On 2 ranks that is the whole buffer sent each way, one after
 * the other, with rank 0 alone summing; the blocking MPI_Allreduce (coll/tuned) exchanges
 * halves and both ranks sum one half. Measured on 2 ranks, 4 MiB: 4.2 ms against 2.2 ms
 * (bench/comm_allreduce.c). libnbc's reduce-scatter + allgather (Rabenseifner) moves and sums
 * 1/N of the buffer per rank per phase as tuned does, so for messages where bandwidth counts
 * (64 KiB and up, libnbc's own threshold) this plugin asks for it, through the MPI tool
 * interface's control variable, for the duration of its own call only: the variable is read
 * when the call builds its schedule, and is put back right after, so the application's own
 * MPI_Iallreduce calls keep Open MPI's choice (except one started by another thread at that
 * very moment, possible under MPI_THREAD_MULTIPLE only). A value the user set (mpirun --mca
 * coll_libnbc_iallreduce_algorithm N, or OMPI_MCA_...) is respected: the plugin only replaces
 * 0 ("ignore": libnbc decides). Other MPI implementations lack the variable and keep theirs. */

#define NBC_ALG_VAR               "coll_libnbc_iallreduce_algorithm"
#define NBC_ALG_REDSCAT_ALLGATHER 3 /* libnbc's value for reduce-scatter + allgather */
#define NBC_ALG_MIN_BYTES         65536

static void nb_algorithm_open(mpi_comm *c) {
    c->have_nbc_alg = 0;
    c->said_nbc_alg = 0;
    int provided = 0, index = -1, count = 0;
    if (MPI_T_init_thread(MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        return;
    }
    if (MPI_T_cvar_get_index(NBC_ALG_VAR, &index) == MPI_SUCCESS &&
        MPI_T_cvar_handle_alloc(index, NULL, &c->nbc_alg, &count) == MPI_SUCCESS) {
        if (count == 1) {
            c->have_nbc_alg = 1;
            return;
        }
        MPI_T_cvar_handle_free(&c->nbc_alg);
    }
    MPI_T_finalize();
}

static void nb_algorithm_close(mpi_comm *c) {
    if (c->have_nbc_alg) {
        MPI_T_cvar_handle_free(&c->nbc_alg);
        MPI_T_finalize();
        c->have_nbc_alg = 0;
    }
}

/* Chooses reduce-scatter + allgather for the next MPI_Iallreduce of `bytes` on c when libnbc
 * is left to decide; returns whether it did (nb_algorithm_restore then puts 0 back). */
static int nb_algorithm_choose(mpi_comm *c, size_t count, size_t bytes) {
    int value = -1;
    if (!c->have_nbc_alg || c->size < 2 || bytes < NBC_ALG_MIN_BYTES || count < (size_t)c->size ||
        MPI_T_cvar_read(c->nbc_alg, &value) != MPI_SUCCESS) {
        return 0;
    }
    if (value != 0) {
        if (!c->said_nbc_alg) {
            c->said_nbc_alg = 1;
            lam_plugin_log(api, LAM_LOG_DEBUG,
                           "mpi: MPI_Iallreduce keeps " NBC_ALG_VAR " %d, set by the user", value);
        }
        return 0;
    }
    value = NBC_ALG_REDSCAT_ALLGATHER;
    if (MPI_T_cvar_write(c->nbc_alg, &value) != MPI_SUCCESS) {
        return 0;
    }
    if (!c->said_nbc_alg) {
        c->said_nbc_alg = 1;
        lam_plugin_log(api, LAM_LOG_DEBUG,
                       "mpi: MPI_Iallreduce of %d bytes and more in place uses libnbc's "
                       "reduce-scatter + allgather (" NBC_ALG_VAR " %d for Lamina's calls only)",
                       NBC_ALG_MIN_BYTES, NBC_ALG_REDSCAT_ALLGATHER);
    }
    return 1;
}

static void nb_algorithm_restore(mpi_comm *c, int chose) {
    if (chose) {
        int value = 0;
        MPI_T_cvar_write(c->nbc_alg, &value);
    }
}

/* ---- the descriptor's callbacks ---- */

static lam_status mpi_open(void *user, void **out) {
    (void)user;
    lam_status st = start_mpi();
    if (st != LAM_OK) {
        return st;
    }
    mpi_comm *c = api->alloc(sizeof *c);
    if (c == NULL) {
        return lam_plugin_error(api, LAM_ERR_OUT_OF_MEMORY, "Out of memory");
    }
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    if (rc != MPI_SUCCESS) {
        api->free(c);
        return mpi_fail(rc, "MPI_Comm_dup");
    }
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    nb_algorithm_open(c);
    *out = c;
    return LAM_OK;
}

static lam_status mpi_close(void *comm) {
    mpi_comm *c = comm;
    int finalized = 0;
    MPI_Finalized(&finalized);
    int rc = finalized ? MPI_SUCCESS : MPI_Comm_free(&c->comm);
    nb_algorithm_close(c);
    api->free(c);
    return rc == MPI_SUCCESS ? LAM_OK : mpi_fail(rc, "MPI_Comm_free");
}

static int32_t mpi_rank(const void *comm) {
    return ((const mpi_comm *)comm)->rank;
}

static int32_t mpi_size(const void *comm) {
    return ((const mpi_comm *)comm)->size;
}

static lam_status mpi_barrier(void *comm) {
    int rc = MPI_Barrier(((mpi_comm *)comm)->comm);
    return rc == MPI_SUCCESS ? LAM_OK : mpi_fail(rc, "MPI_Barrier");
}

static lam_status mpi_broadcast(void *comm, void *data, size_t count, lam_dtype dtype,
                                int32_t root) {
    MPI_Datatype t = MPI_DATATYPE_NULL;
    lam_status st = mpi_type(dtype, 0, &t);
    size_t es = lam_dtype_size(dtype);
    for (size_t done = 0; st == LAM_OK && done < count; done += CHUNK) {
        size_t n = count - done < CHUNK ? count - done : CHUNK;
        int rc = MPI_Bcast((char *)data + done * es, (int)n, t, root, ((mpi_comm *)comm)->comm);
        st = rc == MPI_SUCCESS ? LAM_OK : mpi_fail(rc, "MPI_Bcast");
    }
    return st;
}

static lam_status mpi_allreduce(void *comm, void *data, size_t count, lam_dtype dtype,
                                lam_comm_reduce op) {
    MPI_Datatype t = MPI_DATATYPE_NULL;
    lam_status st = mpi_type(dtype, 1, &t);
    size_t es = lam_dtype_size(dtype);
    for (size_t done = 0; st == LAM_OK && done < count; done += CHUNK) {
        size_t n = count - done < CHUNK ? count - done : CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)data + done * es, (int)n, t, mpi_op(op),
                               ((mpi_comm *)comm)->comm);
        st = rc == MPI_SUCCESS ? LAM_OK : mpi_fail(rc, "MPI_Allreduce");
    }
    return st;
}

static lam_status mpi_allgather(void *comm, const void *send, void *recv, size_t count,
                                lam_dtype dtype) {
    MPI_Datatype t = MPI_DATATYPE_NULL;
    lam_status st = mpi_type(dtype, 0, &t);
    if (st != LAM_OK) {
        return st;
    }
    if (count > CHUNK) {
        return lam_plugin_error(api, LAM_ERR_UNSUPPORTED,
                                "Unsupported size, %zu elements per rank (MPI_Allgather takes at "
                                "most %d)",
                                count, INT_MAX);
    }
    int rc = MPI_Allgather(send, (int)count, t, recv, (int)count, t, ((mpi_comm *)comm)->comm);
    return rc == MPI_SUCCESS ? LAM_OK : mpi_fail(rc, "MPI_Allgather");
}

static lam_status mpi_allreduce_start(void *comm, void *data, size_t count, lam_dtype dtype,
                                      lam_comm_reduce op, void **request) {
    MPI_Datatype t = MPI_DATATYPE_NULL;
    lam_status st = mpi_type(dtype, 1, &t);
    if (st != LAM_OK) {
        return st;
    }
    size_t chunks = count == 0 ? 1 : (count + CHUNK - 1) / CHUNK;
    mpi_request *r = api->alloc(sizeof *r + chunks * sizeof r->reqs[0]);
    if (r == NULL) {
        return lam_plugin_error(api, LAM_ERR_OUT_OF_MEMORY, "Out of memory");
    }
    r->n = 0;
    size_t es = lam_dtype_size(dtype);
    for (size_t i = 0; i < chunks; i++) {
        size_t first = i * CHUNK;
        size_t n = count - first < CHUNK ? count - first : CHUNK;
        mpi_comm *c = comm;
        int chose = nb_algorithm_choose(c, n, n * es);
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)data + first * es, (int)n, t, mpi_op(op),
                                c->comm, &r->reqs[i]);
        nb_algorithm_restore(c, chose);
        if (rc != MPI_SUCCESS) {
            /* Chunks already started must finish before their memory goes back. */
            MPI_Waitall(r->n, r->reqs, MPI_STATUSES_IGNORE);
            api->free(r);
            return mpi_fail(rc, "MPI_Iallreduce");
        }
        r->n++;
    }
    *request = r;
    return LAM_OK;
}

static lam_status mpi_wait(void *comm, void *request) {
    (void)comm;
    mpi_request *r = request;
    int rc = MPI_Waitall(r->n, r->reqs, MPI_STATUSES_IGNORE);
    api->free(r);
    return rc == MPI_SUCCESS ? LAM_OK : mpi_fail(rc, "MPI_Waitall");
}

static lam_status mpi_test(void *comm, void *request, int32_t *done) {
    (void)comm;
    mpi_request *r = request;
    int flag = 0;
    int rc = MPI_Testall(r->n, r->reqs, &flag, MPI_STATUSES_IGNORE);
    *done = flag != 0;
    return rc == MPI_SUCCESS ? LAM_OK : mpi_fail(rc, "MPI_Testall");
}

static const lam_comm_desc desc = {
    LAM_COMM_DESC_HEADER,
    .name = "mpi",
    .version = "1.0.0",
    .doc = "MPI (Open MPI): started by mpirun or srun, one rank per process",
    .detect = NULL, /* the plugin's own (comm_mpi.c): no MPI needed */
    .open = mpi_open,
    .close = mpi_close,
    .rank = mpi_rank,
    .size = mpi_size,
    .barrier = mpi_barrier,
    .broadcast = mpi_broadcast,
    .allreduce = mpi_allreduce,
    .allgather = mpi_allgather,
    .allreduce_start = mpi_allreduce_start,
    .wait = mpi_wait,
    .test = mpi_test,
};

/* The one export (impl.exports): keeps the host table, returns the descriptor. */
__attribute__((visibility("default"))) const lam_comm_desc *
lamina_comm_mpi_impl(const lam_host_api *host);
const lam_comm_desc *lamina_comm_mpi_impl(const lam_host_api *host) {
    api = host;
    return &desc;
}
