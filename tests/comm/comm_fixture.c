/*
 * Communicator plugins for test_comm, one per COMM_FIXTURE value:
 *  twice      a pretend job of two identical ranks, run in one process (rank 0 of 2): a sum
 *             doubles every element, allgather writes `send` twice. allreduce_start doubles the
 *             elements at once (so a test can tell whether the host passed the tensor's own
 *             memory: the change shows before wait, or a staged copy), and a broadcast from
 *             rank 1 brings that rank's values 100, 101, ...
 *  null_cb    allreduce is NULL: refused, naming the callback;
 *  v2_0       a descriptor that says ABI 2.0: refused (communicators exist since 2.1);
 *  half_dev   supports_backend without allreduce_device: refused as a bad descriptor.
 */
#include "lamina/plugin.h"

#include <string.h>

static const lam_host_api *api;

static lam_status tw_open(void *user, void **comm) {
    (void)user;
    *comm = api->alloc(8);
    return *comm ? LAM_OK : api->set_error(LAM_ERR_OUT_OF_MEMORY, "Out of memory");
}
static lam_status tw_close(void *comm) {
    api->free(comm);
    return LAM_OK;
}
static int32_t tw_rank(const void *comm) {
    (void)comm;
    return 0;
}
static int32_t tw_size(const void *comm) {
    (void)comm;
    return 2;
}
static lam_status tw_barrier(void *comm) {
    (void)comm;
    return LAM_OK;
}
static lam_status tw_broadcast(void *comm, void *data, size_t count, lam_dtype dtype,
                               int32_t root) {
    (void)comm, (void)root;
    /* The other rank's values when it is the root: 100, 101, ... */
    if (root == 1 && dtype == LAM_DTYPE_F32) {
        for (size_t i = 0; i < count; i++) {
            ((float *)data)[i] = 100.0f + (float)i;
        }
    }
    return LAM_OK;
}
static lam_status twice(void *data, size_t count, lam_dtype dtype) {
    if (dtype != LAM_DTYPE_F32) {
        return api->set_error(LAM_ERR_DTYPE, "Unsupported dtype, the fixture sums float32 only");
    }
    for (size_t i = 0; i < count; i++) {
        ((float *)data)[i] *= 2.0f;
    }
    return LAM_OK;
}
static lam_status tw_allreduce(void *comm, void *data, size_t count, lam_dtype dtype,
                               lam_comm_reduce op) {
    (void)comm;
    return op == LAM_COMM_SUM ? twice(data, count, dtype) : LAM_OK;
}
static lam_status tw_allgather(void *comm, const void *send, void *recv, size_t count,
                               lam_dtype dtype) {
    (void)comm;
    size_t bytes = count * lam_dtype_size(dtype);
    memcpy(recv, send, bytes);
    memcpy((char *)recv + bytes, send, bytes);
    return LAM_OK;
}
static int requests_out;
static lam_status tw_start(void *comm, void *data, size_t count, lam_dtype dtype,
                           lam_comm_reduce op, void **request) {
    (void)comm, (void)op;
    lam_status st = twice(data, count, dtype);
    if (st == LAM_OK) {
        *request = &requests_out;
        requests_out++;
    }
    return st;
}
static lam_status tw_wait(void *comm, void *request) {
    (void)comm, (void)request;
    requests_out--;
    return LAM_OK;
}
static int32_t tw_detect(void *user, char *why, size_t cap) {
    (void)user;
    strncpy(why, "never (test fixture)", cap - 1);
    why[cap - 1] = '\0';
    return 0;
}
static int32_t tw_supports(void *comm, const char *backend) {
    (void)comm, (void)backend;
    return 0;
}

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    api = host;
    lam_comm_desc d = {
        LAM_COMM_DESC_HEADER,      .name = "twice",
        .version = "0.0.1",        .doc = "test fixture: two identical ranks in one process",
        .detect = tw_detect,       .open = tw_open,
        .close = tw_close,         .rank = tw_rank,
        .size = tw_size,           .barrier = tw_barrier,
        .broadcast = tw_broadcast, .allreduce = tw_allreduce,
        .allgather = tw_allgather, .allreduce_start = tw_start,
        .wait = tw_wait,
    };
    (void)tw_supports;
#if defined(COMM_FIXTURE_NULL_CB)
    d.name = "nullcb";
    d.allreduce = NULL;
#elif defined(COMM_FIXTURE_V2_0)
    d.name = "old";
    d.abi_version = LAM_MAKE_VERSION(2, 0);
#elif defined(COMM_FIXTURE_HALF_DEV)
    d.name = "halfdev";
    d.supports_backend = tw_supports;
#endif
    return host->register_comm(plugin, &d);
}
