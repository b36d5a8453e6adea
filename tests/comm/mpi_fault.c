/*
 * A job in which rank 1 fails, for mpi_fault.sh: every rank opens the MPI communicator and
 * sums once; then rank 1 fails as argv[1] says while the others enter a second allreduce that
 * can only finish with rank 1, so only the launcher ending the job stops them.
 *   exit3     rank 1 returns 3 from main
 *   cleanup3  rank 1 closes its communicator, calls lam_shutdown() and then exits 3 (a program
 *             that cleans up after an error: must not block in MPI_Finalize)
 *   kill      rank 1 is killed by SIGKILL (no handler runs)
 */
#define _POSIX_C_SOURCE 200809L
#include "lamina/lamina.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "exit3";
    lam_comm *c = NULL;
    lam_ctx *ctx = NULL;
    if (lam_comm_open(NULL, &c) != LAM_OK || lam_ctx_get("cpu", &ctx) != LAM_OK) {
        fprintf(stderr, "setup: %s\n", lam_last_error());
        return 1;
    }
    int64_t n = 1000;
    lam_shape s;
    lam_shape_init(&s, 1, &n);
    lam_tensor *t = NULL;
    if (lam_tensor_create(ctx, &s, &t) != LAM_OK || lam_comm_allreduce(c, t) != LAM_OK) {
        fprintf(stderr, "first allreduce: %s\n", lam_last_error());
        return 1;
    }
    if (lam_comm_rank(c) == 1) {
        fprintf(stderr, "rank 1: failing (%s)\n", mode);
        if (strcmp(mode, "kill") == 0) {
            raise(SIGKILL);
        }
        if (strcmp(mode, "cleanup3") == 0) {
            lam_tensor_release(t);
            lam_comm_close(c);
            lam_shutdown();
        }
        return 3;
    }
    lam_status st = lam_comm_allreduce(c, t); /* never completes: rank 1 is gone */
    fprintf(stderr, "rank %d: second allreduce returned %d: %s\n", lam_comm_rank(c), st,
            lam_last_error());
    sleep(60);
    return 0;
}
