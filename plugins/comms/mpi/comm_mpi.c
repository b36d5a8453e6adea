/*
 * lamina_comm_mpi.so: the communicator on MPI (Open MPI on Debian), ABI 2.1 - the plugin.
 *
 * Loading Open MPI (libmpi and the seven libraries it pulls in: open-rte, open-pal, hwloc,
 * libevent, udev, zlib) took half of the start of a program that never opens a communicator
 * (4.4 of 9.4 million instructions, most of them the dynamic linker's symbol lookups), since
 * every plugin is loaded at start. So this plugin links no MPI: it registers the communicator
 * and answers `detect` from the launcher's environment variables alone, and the first open
 * loads the part that links MPI, liblamina_comm_mpi_impl.so (comm_mpi_impl.c), from this
 * file's own directory; every other callback is reached through a communicator that open made,
 * so it goes to that part's descriptor. The part stays loaded while this plugin is (and for
 * the rest of the process once it started MPI: it pins itself, see comm_mpi_impl.c).
 */
#define _GNU_SOURCE /* dladdr */
#include "lamina/plugin.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPL_FILE "liblamina_comm_mpi_impl.so"

static const lam_host_api *api; /* the host table, kept at load */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void *g_handle;                        /* the MPI part, once loaded */
static _Atomic(const lam_comm_desc *) g_impl; /* its descriptor (release: after g_why) */
static char g_why[PATH_MAX + 512];            /* why it could not be loaded */

/* Loads the MPI part from the directory this plugin was loaded from (once). */
static void load_impl(void) {
    Dl_info info;
    if (dladdr((void *)(uintptr_t)&load_impl, &info) == 0 || info.dli_fname == NULL) {
        snprintf(g_why, sizeof g_why, "the plugin cannot find its own file (dladdr)");
        return;
    }
    const char *slash = strrchr(info.dli_fname, '/');
    char path[PATH_MAX];
    int n = slash != NULL ? snprintf(path, sizeof path, "%.*s/%s", (int)(slash - info.dli_fname),
                                     info.dli_fname, IMPL_FILE)
                          : snprintf(path, sizeof path, "./%s", IMPL_FILE);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(g_why, sizeof g_why, "the path of %s is too long", IMPL_FILE);
        return;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *err = dlerror();
        snprintf(g_why, sizeof g_why, "%s", err != NULL ? err : path);
        return;
    }
    const lam_comm_desc *(*get)(const lam_host_api *) = NULL;
    void *sym = dlsym(h, "lamina_comm_mpi_impl");
    memcpy(&get, &sym, sizeof get);
    if (get == NULL) {
        snprintf(g_why, sizeof g_why, "%s has no lamina_comm_mpi_impl", path);
        dlclose(h);
        return;
    }
    g_handle = h;
    atomic_store_explicit(&g_impl, get(api), memory_order_release);
}

/* The MPI part's descriptor, loaded by the first open; NULL before (only open asks then). */
static const lam_comm_desc *impl(void) {
    return atomic_load_explicit(&g_impl, memory_order_acquire);
}

__attribute__((destructor)) static void unload_impl(void) {
    if (g_handle != NULL) {
        dlclose(g_handle);
    }
}

/* ---- the descriptor's callbacks ---- */

static int32_t mpi_detect(void *user, char *why, size_t cap) {
    (void)user;
    const char *v;
    if ((v = getenv("OMPI_COMM_WORLD_SIZE")) != NULL && v[0]) {
        snprintf(why, cap, "mpirun: OMPI_COMM_WORLD_SIZE=%s", v);
        return 1;
    }
    if ((v = getenv("PMIX_RANK")) != NULL && v[0]) {
        snprintf(why, cap, "a PMIx launcher (srun --mpi=pmix): PMIX_RANK=%s", v);
        return 1;
    }
    if ((v = getenv("PMI_SIZE")) != NULL && v[0]) {
        snprintf(why, cap, "a PMI launcher: PMI_SIZE=%s", v);
        return 1;
    }
    const char *nt = getenv("SLURM_NTASKS"), *step = getenv("SLURM_STEP_ID");
    if (nt != NULL && atoi(nt) > 1 && step != NULL && step[0]) {
        snprintf(why, cap, "srun: SLURM_NTASKS=%s, step %s", nt, step);
        return 1;
    }
    snprintf(why, cap, "not started by mpirun or srun");
    return 0;
}

static lam_status mpi_open(void *user, void **out) {
    pthread_once(&g_once, load_impl);
    const lam_comm_desc *d = impl();
    if (d == NULL) {
        return lam_plugin_error(api, LAM_ERR_DEVICE_UNAVAILABLE,
                                "Device unavailable, the part of lamina_comm_mpi.so that links "
                                "MPI cannot be loaded: %s",
                                g_why);
    }
    return d->open(user, out);
}

static lam_status mpi_close(void *comm) {
    return impl()->close(comm);
}

static int32_t mpi_rank(const void *comm) {
    return impl()->rank(comm);
}

static int32_t mpi_size(const void *comm) {
    return impl()->size(comm);
}

static lam_status mpi_barrier(void *comm) {
    return impl()->barrier(comm);
}

static lam_status mpi_broadcast(void *comm, void *data, size_t count, lam_dtype dtype,
                                int32_t root) {
    return impl()->broadcast(comm, data, count, dtype, root);
}

static lam_status mpi_allreduce(void *comm, void *data, size_t count, lam_dtype dtype,
                                lam_comm_reduce op) {
    return impl()->allreduce(comm, data, count, dtype, op);
}

static lam_status mpi_allgather(void *comm, const void *send, void *recv, size_t count,
                                lam_dtype dtype) {
    return impl()->allgather(comm, send, recv, count, dtype);
}

static lam_status mpi_allreduce_start(void *comm, void *data, size_t count, lam_dtype dtype,
                                      lam_comm_reduce op, void **request) {
    return impl()->allreduce_start(comm, data, count, dtype, op, request);
}

static lam_status mpi_wait(void *comm, void *request) {
    return impl()->wait(comm, request);
}

static lam_status mpi_test(void *comm, void *request, int32_t *done) {
    return impl()->test(comm, request, done);
}

static const lam_comm_desc desc = {
    LAM_COMM_DESC_HEADER,
    .name = "mpi",
    .version = "1.0.0",
    .doc = "MPI (Open MPI): started by mpirun or srun, one rank per process",
    .detect = mpi_detect,
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

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    api = host;
    return host->register_comm(plugin, &desc);
}
