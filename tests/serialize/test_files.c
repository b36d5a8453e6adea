/*
 * Files around a save or a load: temporaries of killed saves are found and removed, saving
 * through a symbolic link replaces its target, a read-only file is refused, a huge sparse file
 * is refused before its data is read, and a file rewritten, truncated and extended by another
 * process while it is loaded gives consistent data or an error, never a signal.
 */
#include "ser_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

TestSuite(files, .fini = su_fini, .timeout = 120);

static lam_tensor *filled(int64_t n, float v) {
    lam_shape s = su_shape(1, &n);
    lam_tensor *t = NULL;
    SU_OK(lam_tensor_full(NULL, &s, v, &t));
    return t;
}

static void save_value(const char *path, int64_t n, float v) {
    lam_tensor *t = filled(n, v);
    const char *name = "w";
    SU_OK(lam_save_dict(path, &name, &t, 1));
    lam_tensor_release(t);
}

/* The file holds one tensor "w" of n elements, all equal to v. */
static void assert_holds(const char *path, int64_t n, float v) {
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(path, NULL, &d));
    lam_tensor *t = lam_tensor_dict_find(d, "w");
    cr_assert_not_null(t);
    cr_assert_eq(lam_tensor_numel(t), n);
    float *got = su_values(t);
    for (int64_t i = 0; i < n; i++) {
        cr_assert_eq(got[i], v, "%s: w[%lld] is %g, expected %g", path, (long long)i,
                     (double)got[i], (double)v);
    }
    free(got);
    lam_tensor_dict_destroy(d);
}

static bool exists(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* A process id that no longer exists: a child that has exited and been reaped. */
static pid_t dead_pid(void) {
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        _exit(0);
    }
    cr_assert_eq(waitpid(pid, NULL, 0), pid);
    return pid;
}

static void touch(const char *path) {
    su_write_file(path, "x", 1);
}

Test(files, a_save_removes_stale_temporaries_of_the_same_file_only) {
    const char *path = su_path("model.safetensors");
    save_value(path, 4, 1.0f);
    pid_t dead = dead_pid();
    const char *stale = su_path(su_fmt(".model.safetensors.lamina-tmp.%ld.aB3xYz", (long)dead));
    const char *live = su_path(su_fmt(".model.safetensors.lamina-tmp.%ld.aB3xYz", (long)getppid()));
    const char *other = su_path(su_fmt(".other.safetensors.lamina-tmp.%ld.aB3xYz", (long)dead));
    const char *unlike = su_path(su_fmt(".model.safetensors.lamina-tmp.%ld.x", (long)dead));
    const char *stale2 = su_path(su_fmt(".model.safetensors.lamina-tmp.%ld.Q9w8e7", (long)dead));
    touch(stale);
    touch(live);
    touch(other);
    touch(unlike);
    touch(stale2);
    save_value(path, 4, 2.0f);
    assert_holds(path, 4, 2.0f);
    cr_assert(!exists(stale), "the temporary of a dead process was kept");
    cr_assert(!exists(stale2), "the temporary of a dead process was kept");
    cr_assert(exists(live), "the temporary of a live process was removed");
    cr_assert(exists(other), "the temporary of another file was removed");
    cr_assert(exists(unlike), "a file not named like a temporary was removed");
    cr_assert_eq(su_dir_count(), 4);
    su_cleanup();
}

/* A save killed at random points leaves at most a temporary named after the file and the
 * killed process, and the next save of the file removes it. */
Test(files, a_killed_save_leaves_a_temporary_the_next_save_removes) {
    const char *path = su_path("big.safetensors");
    save_value(path, 4, 1.0f);
    int leftovers = 0;
    for (int round = 0; round < 6; round++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            lam_tensor *t = filled(1 << 22, 3.0f); /* 16 MiB: a save takes a while */
            const char *name = "w";
            for (;;) {
                (void)lam_save_dict(path, &name, &t, 1);
            }
        }
        struct timespec ts = {0, (20 + 15 * round) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, NULL, 0), pid);
        DIR *d = opendir(su_tmpdir());
        cr_assert_not_null(d);
        struct dirent *e;
        const char *prefix = su_fmt(".big.safetensors.lamina-tmp.%ld.", (long)pid);
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
                strcmp(e->d_name, "big.safetensors") == 0) {
                continue;
            }
            cr_assert(strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
                          strlen(e->d_name) == strlen(prefix) + 6,
                      "unexpected file %s", e->d_name);
            leftovers++;
        }
        closedir(d);
        save_value(path, 4, (float)round);
        cr_assert_eq(su_dir_count(), 1, "round %d: a stale temporary was not removed", round);
        assert_holds(path, 4, (float)round);
    }
    cr_log_info("%d of 6 killed saves left a temporary", leftovers);
    su_cleanup();
}

Test(files, saving_through_a_symlink_replaces_its_target_and_keeps_the_link) {
    const char *real = su_path("real.safetensors");
    const char *link = su_path("link.safetensors");
    save_value(real, 3, 1.0f);
    cr_assert_eq(symlink("real.safetensors", link), 0);
    save_value(link, 3, 2.0f);
    struct stat sb;
    cr_assert_eq(lstat(link, &sb), 0);
    cr_assert(S_ISLNK(sb.st_mode), "the link was replaced by a file");
    assert_holds(real, 3, 2.0f);
    assert_holds(link, 3, 2.0f);
    /* A chain of links, the last one dangling: the file it names is created. */
    const char *chain = su_path("chain.safetensors");
    const char *dangling = su_path("dangling.safetensors");
    cr_assert_eq(symlink(dangling, chain), 0); /* absolute */
    cr_assert_eq(symlink("made.safetensors", dangling), 0);
    save_value(chain, 2, 5.0f);
    cr_assert_eq(lstat(chain, &sb), 0);
    cr_assert(S_ISLNK(sb.st_mode));
    cr_assert_eq(lstat(dangling, &sb), 0);
    cr_assert(S_ISLNK(sb.st_mode));
    assert_holds(su_path("made.safetensors"), 2, 5.0f);
    cr_assert_eq(su_dir_count(), 5);
    su_cleanup();
}

Test(files, a_read_only_file_is_refused_and_kept) {
    const char *path = su_path("frozen.safetensors");
    save_value(path, 3, 1.0f);
    cr_assert_eq(chmod(path, 0444), 0);
    lam_tensor *t = filled(3, 2.0f);
    const char *name = "w";
    su_assert_error(lam_save_dict(path, &name, &t, 1), LAM_ERR_IO,
                    su_fmt("saving '%s': Permission denied, '%s' is read-only (mode 0444); make "
                           "it writable (chmod u+w) to replace it",
                           path, path),
                    "read-only file");
    lam_tensor_release(t);
    assert_holds(path, 3, 1.0f);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0444);
    cr_assert_eq(su_dir_count(), 1, "a temporary file was left behind");
    su_cleanup();
}

/* A sparse file twice the machine's memory whose header claims one U8 tensor filling it and a
 * checksum: refused from the header alone, at once. */
Test(files, a_huge_sparse_file_is_refused_before_its_data_is_read) {
    uint64_t mem = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t size = mem * 2 > (64ull << 30) ? mem * 2 : (64ull << 30);
    char json[256];
    /* Pads the header to a fixed 128 bytes so the tensor's size follows from the file's. */
    const uint64_t hlen = 128, n = size - 8 - hlen;
    int len = snprintf(json, sizeof json,
                       "{\"__metadata__\":{\"lamina.crc32c\":\"00000000\"},\"x\":{\"dtype\":"
                       "\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]}}",
                       (unsigned long long)n, (unsigned long long)n);
    cr_assert(len > 0 && (uint64_t)len <= hlen);
    memset(json + len, ' ', hlen - (size_t)len);
    const char *path = su_path("sparse.safetensors");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    uint8_t head[8];
    for (int i = 0; i < 8; i++) {
        head[i] = (uint8_t)(hlen >> (8 * i));
    }
    cr_assert_eq(write(fd, head, 8), 8);
    cr_assert_eq(write(fd, json, hlen), (ssize_t)hlen);
    if (ftruncate(fd, (off_t)size) != 0) {
        int e = errno;
        close(fd);
        su_cleanup();
        cr_skip_test("this file system cannot hold a sparse file of %llu bytes: %s",
                     (unsigned long long)size, strerror(e));
    }
    close(fd);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lam_tensor_dict *d = NULL;
    su_assert_error(lam_load(path, NULL, &d), LAM_ERR_OUT_OF_MEMORY,
                    su_fmt("loading '%s': tensor 'x': Too large, the file's tensors need at least "
                           "%llu bytes as float32 and this machine has %llu bytes of memory",
                           path, (unsigned long long)(n * 4), (unsigned long long)mem),
                    "huge sparse file");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    cr_assert_lt(secs, 0.5, "refusing took %.2f s: the data was read", secs);
    cr_assert_null(d);
    su_cleanup();
}

/* ---- another process writing the file while it is loaded ---- */

#define VERSIONS 3
#define BIG      (1 << 20) /* elements: 4 MiB of data */

/* Rewrites `path` in place for `secs` seconds: each round copies one of the version files into
 * it in pieces (not atomically), and now and then truncates it to a random length or extends
 * it with zeros. Never returns. */
static void writer(const char *path, const char *const *versions, double secs) {
    uint8_t *bytes[VERSIONS];
    size_t sizes[VERSIONS];
    for (int v = 0; v < VERSIONS; v++) {
        bytes[v] = su_read_file(versions[v], &sizes[v]);
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned seed = 12345;
    for (int round = 0;; round++) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 > secs) {
            _exit(0);
        }
        int v = round % VERSIONS;
        int fd = open(path, O_WRONLY);
        if (fd < 0) {
            _exit(2);
        }
        seed = seed * 1103515245u + 12345u;
        switch ((seed >> 16) % 4) {
        case 0: /* truncate to a random length */
            (void)!ftruncate(fd, (off_t)((seed >> 8) % sizes[v]));
            break;
        case 1: /* extend with zeros */
            (void)!ftruncate(fd, (off_t)(sizes[v] + (seed >> 8) % 65536));
            break;
        default:
            (void)!ftruncate(fd, 0);
            break;
        }
        for (size_t at = 0; at < sizes[v]; at += 65536) {
            size_t k = sizes[v] - at < 65536 ? sizes[v] - at : 65536;
            (void)!pwrite(fd, bytes[v] + at, k, (off_t)at);
        }
        (void)!ftruncate(fd, (off_t)sizes[v]);
        close(fd);
        /* A whole version rests a moment, so readers see some complete files too. */
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

Test(files, a_file_rewritten_while_it_is_loaded_gives_data_or_an_error_never_a_signal) {
    const char *versions[VERSIONS];
    for (int v = 0; v < VERSIONS; v++) {
        versions[v] = su_path(su_fmt("v%d.safetensors", v));
        save_value(versions[v], BIG, (float)(v + 1));
    }
    const char *path = su_path("busy.safetensors");
    size_t n;
    uint8_t *first = su_read_file(versions[0], &n);
    su_write_file(path, first, n);
    free(first);
    const double secs = 3.0;
    pid_t w = fork();
    cr_assert_geq(w, 0);
    if (w == 0) {
        writer(path, versions, secs);
    }
    /* `lamina inspect` on the same file, in a loop, from a third process. */
    pid_t insp = fork();
    cr_assert_geq(insp, 0);
    if (insp == 0) {
        double end = now() + secs;
        int runs = 0;
        while (now() < end) {
            pid_t c = fork();
            if (c == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 1);
                dup2(null, 2);
                execl(LAMINA_TEST_BINARY_DIR "/bin/lamina", "lamina", "inspect", path,
                      (char *)NULL);
                _exit(127);
            }
            int status;
            if (c < 0 || waitpid(c, &status, 0) != c) {
                _exit(3);
            }
            if (WIFSIGNALED(status)) {
                _exit(100 + WTERMSIG(status) % 100); /* 100+: inspect died of a signal */
            }
            if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
                _exit(4);
            }
            runs++;
        }
        _exit(runs > 0 ? 0 : 5);
    }
    double end = now() + secs;
    int ok = 0, failed = 0;
    const char *want = su_fmt("loading '%s': ", path);
    while (now() < end) {
        lam_tensor_dict *d = NULL;
        lam_status st = lam_load(path, NULL, &d);
        if (st != LAM_OK) {
            failed++;
            cr_assert_null(d);
            cr_assert(strncmp(lam_last_error(), want, strlen(want)) == 0 &&
                          strlen(lam_last_error()) > strlen(want) + 5,
                      "unclear error: %s", lam_last_error());
            continue;
        }
        ok++;
        /* Consistent: one whole version, every element the same known value. */
        cr_assert_eq(lam_tensor_dict_count(d), 1);
        lam_tensor *t = lam_tensor_dict_find(d, "w");
        cr_assert_not_null(t);
        cr_assert_eq(lam_tensor_numel(t), BIG);
        float *v = su_values(t);
        cr_assert(v[0] == 1.0f || v[0] == 2.0f || v[0] == 3.0f, "w[0] is %g", (double)v[0]);
        for (size_t i = 1; i < BIG; i++) {
            cr_assert_eq(v[i], v[0], "mixed data: w[%zu] is %g, w[0] is %g", i, (double)v[i],
                         (double)v[0]);
        }
        free(v);
        lam_tensor_dict_destroy(d);
    }
    int status;
    cr_assert_eq(waitpid(w, &status, 0), w);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer failed");
    cr_assert_eq(waitpid(insp, &status, 0), insp);
    cr_assert(WIFEXITED(status), "the inspect loop died");
    cr_assert(WEXITSTATUS(status) < 100, "lamina inspect died of signal %d",
              WEXITSTATUS(status) - 100);
    cr_assert_eq(WEXITSTATUS(status), 0, "the inspect loop failed (%d)", WEXITSTATUS(status));
    cr_log_info("%d loads succeeded, %d failed cleanly", ok, failed);
    cr_assert_gt(ok + failed, 10);
    su_cleanup();
}
