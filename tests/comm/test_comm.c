/*
 * Communicators in one process: the built-in "self", the automatic choice and its errors, the
 * registration rules for communicator plugins (fixtures in comm_fixture.c), and how the host
 * hands tensors to a communicator (directly on the CPU, staged elsewhere). The collectives
 * across processes are checked under mpirun by mpi_ops.c.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, mkdtemp, symlink */
#include "lamina/lamina.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FX(name) COMM_PLUGIN_DIR "/lamina_test_comm_" name ".so"

static void no_launcher(void) {
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMIX_RANK");
    unsetenv("PMI_SIZE");
    unsetenv("SLURM_NTASKS");
    unsetenv("LAMINA_COMM");
}

/* Starts with `path` searched and, when `builtin` is 0, nothing else. */
static void start(const char *path, int builtin) {
    lam_init_options o = LAM_INIT_OPTIONS_INIT;
    o.plugin_path = path;
    o.skip_builtin_dir = !builtin;
    cr_assert_eq(lam_init(&o), LAM_OK, "%s", lam_last_error());
}

static void stop(void) {
    lam_shutdown();
}

static lam_tensor *vec(lam_ctx *ctx, const float *v, int64_t n) {
    lam_shape s;
    lam_shape_init(&s, 1, &n);
    lam_tensor *t = NULL;
    cr_assert_eq(lam_tensor_create(ctx, &s, &t), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_tensor_write(t, v, (size_t)n), LAM_OK, "%s", lam_last_error());
    return t;
}

static void expect(lam_tensor *t, const float *want, size_t n, const char *what) {
    float got[16];
    cr_assert_eq(lam_tensor_read(t, got, n), LAM_OK, "%s", lam_last_error());
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(got[i], want[i], "%s: element %zu is %g, expected %g", what, i, (double)got[i],
                     (double)want[i]);
    }
}

static void expect_error(lam_status st, lam_status want, const char *text) {
    cr_expect_eq(st, want, "status %d, expected %d (%s)", st, want, lam_last_error());
    cr_expect(strstr(lam_last_error(), text) != NULL, "message '%s' lacks '%s'", lam_last_error(),
              text);
}

Test(comm, self_is_chosen_in_a_single_process, .init = no_launcher, .fini = stop) {
    char name[32], why[512];
    cr_assert_eq(lam_comm_choose(NULL, name, sizeof name, why, sizeof why), LAM_OK);
    cr_expect_str_eq(name, "self");
    cr_expect(strstr(why, "no launcher found") != NULL, "%s", why);
    lam_comm *c = NULL;
    cr_assert_eq(lam_comm_open(NULL, &c), LAM_OK, "%s", lam_last_error());
    cr_expect_str_eq(lam_comm_name(c), "self");
    cr_expect_eq(lam_comm_rank(c), 0);
    cr_expect_eq(lam_comm_size(c), 1);
    cr_expect_eq(lam_comm_close(c), LAM_OK);
    cr_expect_eq(lam_comm_rank(NULL), -1);
    cr_expect_eq(lam_comm_size(NULL), -1);
    cr_expect_eq(lam_comm_close(NULL), LAM_OK);
}

Test(comm, self_collectives_leave_values_and_allgather_copies, .init = no_launcher, .fini = stop) {
    lam_comm *c = NULL;
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_comm_open("self", &c), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_ctx_default(&ctx), LAM_OK);
    const float v[3] = {1.5f, -2.0f, 3.25f};
    lam_tensor *t = vec(ctx, v, 3), *out = vec(ctx, (const float[3]){0, 0, 0}, 3);
    cr_expect_eq(lam_comm_barrier(c), LAM_OK);
    cr_expect_eq(lam_comm_allreduce(c, t), LAM_OK);
    expect(t, v, 3, "allreduce over one rank");
    cr_expect_eq(lam_comm_broadcast(c, t, 0), LAM_OK);
    expect(t, v, 3, "broadcast from rank 0");
    cr_expect_eq(lam_comm_allgather(c, t, out), LAM_OK, "%s", lam_last_error());
    expect(out, v, 3, "allgather of one rank");
    lam_comm_request *r = NULL;
    cr_assert_eq(lam_comm_allreduce_start(c, t, &r), LAM_OK);
    int done = 0;
    cr_expect_eq(lam_comm_test(r, &done), LAM_OK);
    cr_expect_eq(done, 1);
    cr_expect_eq(lam_comm_wait(r), LAM_OK);
    expect(t, v, 3, "non-blocking allreduce over one rank");
    cr_expect_eq(lam_comm_wait(NULL), LAM_OK);
    expect_error(lam_comm_broadcast(c, t, 1), LAM_ERR_INVALID_ARGUMENT,
                 "lam_comm_broadcast on self: Invalid argument, root 1 is not a rank (size 1)");
    expect_error(lam_comm_allreduce(NULL, t), LAM_ERR_INVALID_ARGUMENT,
                 "lam_comm_allreduce: Invalid argument, communicator is NULL");
    expect_error(lam_comm_allreduce_op(c, t, (lam_comm_reduce)9), LAM_ERR_INVALID_ARGUMENT,
                 "reduction 9");
    lam_tensor_release(t);
    lam_tensor_release(out);
    cr_expect_eq(lam_comm_close(c), LAM_OK);
}

Test(comm, allgather_checks_dtype_and_size, .init = no_launcher, .fini = stop) {
    lam_comm *c = NULL;
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_comm_open(NULL, &c), LAM_OK);
    cr_assert_eq(lam_ctx_default(&ctx), LAM_OK);
    lam_tensor *in = vec(ctx, (const float[2]){1, 2}, 2), *big = vec(ctx, (const float[3]){0}, 3);
    int64_t two = 2;
    lam_shape s;
    lam_shape_init(&s, 1, &two);
    lam_tensor *i32 = NULL;
    cr_assert_eq(lam_tensor_create_dtype(ctx, LAM_DTYPE_I32, &s, &i32), LAM_OK);
    expect_error(lam_comm_allgather(c, in, big), LAM_ERR_SHAPE,
                 "lam_comm_allgather on self: Size mismatch, out (3,) has 3 elements, 1 ranks "
                 "times in (2,) need 2");
    expect_error(lam_comm_allgather(c, in, i32), LAM_ERR_DTYPE,
                 "lam_comm_allgather on self: Dtype mismatch, in is float32, out is int32");
    expect_error(lam_comm_allgather(c, in, in), LAM_ERR_INVALID_ARGUMENT, "share their storage");
    lam_tensor_release(in);
    lam_tensor_release(big);
    lam_tensor_release(i32);
    lam_comm_close(c);
}

Test(comm, named_mpi_without_its_plugin_says_what_to_install, .init = no_launcher, .fini = stop) {
    start(CPU_PLUGIN, 0);
    lam_comm *c = (lam_comm *)1;
    expect_error(lam_comm_open("mpi", &c), LAM_ERR_NOT_FOUND,
                 "lam_comm_open: Not found, communicator 'mpi' is not loaded (available: self)");
    cr_expect_null(c);
    cr_expect(strstr(lam_last_error(), "apt-get install openmpi-bin libopenmpi-dev") != NULL, "%s",
              lam_last_error());
    setenv("LAMINA_COMM", "mpi", 1);
    expect_error(lam_comm_open(NULL, &c), LAM_ERR_NOT_FOUND,
                 "communicator 'mpi' (LAMINA_COMM=mpi) is not loaded");
    char name[32] = "x", why[1024];
    cr_expect_eq(lam_comm_choose(NULL, name, sizeof name, why, sizeof why), LAM_ERR_NOT_FOUND);
    cr_expect_str_eq(name, "");
    cr_expect(strstr(why, "openmpi-bin") != NULL, "%s", why);
}

Test(comm, launcher_without_a_communicator_is_an_error_not_self, .init = no_launcher,
     .fini = stop) {
    start(CPU_PLUGIN, 0);
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    lam_comm *c = NULL;
    expect_error(lam_comm_open(NULL, &c), LAM_ERR_DEVICE_UNAVAILABLE,
                 "lam_comm_open: No communicator, this process was started by a launcher "
                 "(OMPI_COMM_WORLD_SIZE=2) but no loaded communicator serves it");
    cr_expect(strstr(lam_last_error(), "openmpi-bin libopenmpi-dev") != NULL, "%s",
              lam_last_error());
    /* Asking for self explicitly is the way to run one copy on purpose. */
    setenv("LAMINA_COMM", "self", 1);
    cr_assert_eq(lam_comm_open(NULL, &c), LAM_OK, "%s", lam_last_error());
    cr_expect_str_eq(lam_comm_name(c), "self");
    lam_comm_close(c);
}

Test(comm, srun_step_counts_as_a_launcher_but_an_allocation_does_not, .init = no_launcher,
     .fini = stop) {
    start(CPU_PLUGIN, 0);
    setenv("SLURM_NTASKS", "4", 1);
    unsetenv("SLURM_STEP_ID");
    char name[32], why[1024];
    cr_expect_eq(lam_comm_choose(NULL, name, sizeof name, why, sizeof why), LAM_OK, "%s", why);
    cr_expect_str_eq(name, "self");
    setenv("SLURM_STEP_ID", "0", 1);
    cr_expect_eq(lam_comm_choose(NULL, name, sizeof name, why, sizeof why),
                 LAM_ERR_DEVICE_UNAVAILABLE);
    cr_expect(strstr(why, "SLURM_NTASKS=4 in srun step 0") != NULL, "%s", why);
}

static void expect_record(const char *file, lam_plugin_decision decision, lam_plugin_reason reason,
                          const char *text) {
    size_t n = lam_plugin_report_count();
    for (size_t i = 0; i < n; i++) {
        lam_plugin_record r = LAM_PLUGIN_RECORD_INIT;
        cr_assert_eq(lam_plugin_report_get(i, &r), LAM_OK);
        if (strstr(r.path, file) == NULL) {
            continue;
        }
        cr_expect_eq(r.decision, decision, "%s: decision %d (%s)", file, r.decision, r.message);
        cr_expect_eq(r.reason, reason, "%s: reason %s (%s)", file,
                     lam_plugin_reason_string(r.reason), r.message);
        cr_expect(strstr(r.message, text) != NULL, "%s: '%s' lacks '%s'", file, r.message, text);
        return;
    }
    cr_assert_fail("no report row for %s", file);
}

Test(comm, broken_communicator_plugins_are_refused_with_the_reason, .init = no_launcher,
     .fini = stop) {
    start(FX("null_cb") ":" FX("v2_0") ":" FX("half_dev") ":" FX("twice"), 0);
    expect_record("lamina_test_comm_null_cb.so", LAM_PLUGIN_REFUSED, LAM_REASON_NULL_CALLBACK,
                  "communicator 'nullcb': required callback 'allreduce' is NULL");
    expect_record("lamina_test_comm_v2_0.so", LAM_PLUGIN_REFUSED, LAM_REASON_STRUCT_SIZE,
                  "communicator descriptor says ABI 2.0, communicators exist since ABI 2.1");
    expect_record("lamina_test_comm_half_dev.so", LAM_PLUGIN_REFUSED, LAM_REASON_BAD_DESCRIPTOR,
                  "supports_backend and allreduce_device come together");
    expect_record("lamina_test_comm_twice.so", LAM_PLUGIN_LOADED, LAM_REASON_OK, "");
    lam_comm *c = NULL;
    expect_error(lam_comm_open("nullcb", &c), LAM_ERR_NOT_FOUND, "lamina_test_comm_null_cb.so");
    /* a refused plugin of the name asked for is named with its reason */
    cr_expect_eq(lam_comm_open("twice", &c), LAM_OK, "%s", lam_last_error());
    cr_expect_eq(lam_comm_size(c), 2);
    lam_comm_close(c);
}

Test(comm, plugin_gets_cpu_memory_directly_and_other_memory_staged, .init = no_launcher,
     .fini = stop) {
    start(FX("twice"), 1);
    lam_comm *c = NULL;
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_comm_open("twice", &c), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_ctx_default(&ctx), LAM_OK);
    int direct = strcmp(lam_ctx_backend(ctx), "cpu") == 0;
    const float v[3] = {1, 2, 3}, doubled[3] = {2, 4, 6};
    lam_tensor *t = vec(ctx, v, 3);
    cr_expect_eq(lam_comm_allreduce(c, t), LAM_OK, "%s", lam_last_error());
    expect(t, doubled, 3, "sum over two identical ranks");
    /* The fixture doubles at start: the tensor shows it before wait only when the plugin
     * was handed the tensor's own memory (CPU); a staged copy is written back at wait. */
    lam_comm_request *r = NULL;
    cr_assert_eq(lam_comm_allreduce_start(c, t, &r), LAM_OK, "%s", lam_last_error());
    const float quad[3] = {4, 8, 12};
    expect(t, direct ? quad : doubled, 3, direct ? "cpu: no copy" : "staged: unchanged until wait");
    expect_error(lam_comm_allreduce(c, t), LAM_ERR_STATE,
                 "the tensor is in an outstanding non-blocking allreduce");
    expect_error(lam_comm_close(c), LAM_ERR_STATE, "still outstanding");
    cr_expect_eq(lam_comm_wait(r), LAM_OK, "%s", lam_last_error());
    expect(t, quad, 3, "after wait");
    /* broadcast from rank 1 (the fixture's other rank holds 100, 101, 102) */
    cr_expect_eq(lam_comm_broadcast(c, t, 1), LAM_OK);
    expect(t, (const float[3]){100, 101, 102}, 3, "broadcast from rank 1");
    lam_tensor *out = vec(ctx, (const float[6]){0}, 6);
    cr_expect_eq(lam_comm_allgather(c, t, out), LAM_OK);
    expect(out, (const float[6]){100, 101, 102, 100, 101, 102}, 6, "allgather of two ranks");
    /* the plugin's own error, prefixed by the host */
    int64_t two = 2;
    lam_shape s;
    lam_shape_init(&s, 1, &two);
    lam_tensor *i32 = NULL;
    cr_assert_eq(lam_tensor_create_dtype(ctx, LAM_DTYPE_I32, &s, &i32), LAM_OK);
    expect_error(lam_comm_allreduce(c, i32), LAM_ERR_DTYPE,
                 "lam_comm_allreduce on twice: Unsupported dtype, the fixture sums float32 only");
    lam_tensor_release(i32);
    lam_tensor_release(out);
    lam_tensor_release(t);
    cr_expect_eq(lam_comm_close(c), LAM_OK);
}

Test(comm, shutdown_ends_open_communicators_and_their_requests, .init = no_launcher) {
    start(FX("twice"), 1);
    lam_comm *c = NULL;
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_comm_open("twice", &c), LAM_OK, "%s", lam_last_error());
    cr_assert_eq(lam_ctx_default(&ctx), LAM_OK);
    lam_tensor *t = vec(ctx, (const float[2]){1, 2}, 2);
    lam_comm_request *r = NULL;
    cr_assert_eq(lam_comm_allreduce_start(c, t, &r), LAM_OK);
    lam_tensor_release(t); /* the request holds it */
    lam_shutdown();
    expect_error(lam_comm_wait(r), LAM_ERR_STATE, "lam_shutdown ended the request");
    expect_error(lam_comm_barrier(c), LAM_ERR_STATE, "closed by lam_shutdown");
    cr_expect_eq(lam_comm_close(c), LAM_OK);
}

#ifdef MPI_PLUGIN
/* Whether a mapping of this process names a file whose path contains `needle`. */
static int mapped(const char *needle) {
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f, "cannot read /proc/self/maps");
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        found = strstr(line, needle) != NULL;
    }
    fclose(f);
    return found;
}

/*
 * lamina_comm_mpi.so links no MPI: it is loaded at start with every plugin, and the part that
 * links Open MPI (liblamina_comm_mpi_impl.so, next to it) waits for the first open (loading Open
 * MPI was half of the start of a program that never opens a communicator). Here the plugin is
 * reached through a link in a directory of its own, without that part: a CPU program and the
 * choice of the communicator leave Open MPI unmapped, and the open says what it could not load.
 * (Opening it for real is mpirun's: mpi_ops.c.)
 */
Test(comm, mpi_plugin_loads_open_mpi_only_when_opened, .init = no_launcher, .fini = stop) {
    char dir[] = "/tmp/lamina_comm_mpi_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char link[sizeof dir + 32], path[2 * sizeof dir + 512];
    snprintf(link, sizeof link, "%s/lamina_comm_mpi.so", dir);
    cr_assert_eq(symlink(MPI_PLUGIN, link), 0, "symlink to %s", MPI_PLUGIN);
    snprintf(path, sizeof path, "%s:%s", CPU_PLUGIN, link);
    start(path, 0);
    lam_ctx *ctx = NULL;
    cr_assert_eq(lam_ctx_get("cpu", &ctx), LAM_OK, "%s", lam_last_error());
    const float v[2] = {1, 2};
    lam_tensor *t = vec(ctx, v, 2);
    char name[32] = "", why[512] = "";
    cr_assert_eq(lam_comm_choose("mpi", name, sizeof name, why, sizeof why), LAM_OK, "%s",
                 lam_last_error());
    cr_assert_str_eq(name, "mpi");
    cr_assert(mapped("lamina_comm_mpi.so"), "the MPI plugin was not loaded at start");
    cr_assert_not(mapped("libmpi.so"), "a CPU program that opened no communicator loaded Open MPI");
    lam_comm *c = (lam_comm *)1;
    char want[sizeof dir + 200];
    snprintf(want, sizeof want,
             "the part of lamina_comm_mpi.so that links MPI cannot be loaded: %s/"
             "liblamina_comm_mpi_impl.so: cannot open shared object file",
             dir);
    expect_error(lam_comm_open("mpi", &c), LAM_ERR_DEVICE_UNAVAILABLE, want);
    cr_expect_null(c);
    cr_expect_not(mapped("libmpi.so"));
    lam_tensor_release(t);
    cr_expect_eq(unlink(link), 0);
    cr_expect_eq(rmdir(dir), 0);
}
#endif
