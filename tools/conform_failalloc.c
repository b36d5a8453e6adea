/*
 * conform_failalloc.c - where `leaks.alloc_failure` gets its allocation-failure injector.
 *
 * The injector is liblamina_failalloc.so (tools/failalloc), never the `lamina` program itself:
 * a shipped program that defines malloc breaks `lamina train` under other allocators and makes
 * `LD_PRELOAD=libasan.so lamina conform` abort. The sweep needs the injector preloaded into the
 * process that runs it, so when the check child finds it inactive it starts a fresh
 * `lamina conform` for that one check with LD_PRELOAD set, reads its JSON report and adopts
 * its verdict. Where the injector cannot be active (AddressSanitizer owns malloc, the library
 * is not found, valgrind replaced malloc) the check says SKIP and why, never PASS.
 *
 * `<Layer>.bounds` comes here too: the injector's guard mode puts a PROT_NONE page right after
 * every heap block, and cf_guard_begin/cf_guard_end switch it on around the layer's cycle with
 * a SIGSEGV/SIGBUS handler that turns a guard page hit into the check's failure.
 */
#define _GNU_SOURCE
#include "conform.h"

#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Set in the environment of the re-executed conform, so it never re-executes again. */
#define CF_FAILALLOC_CHILD_ENV "LAMINA_CONFORM_FAILALLOC_CHILD"

static void touch_heap(void *arg) {
    (void)arg;
    /* The volatile store keeps the compiler from eliding the malloc/free pair. */
    void *volatile p = malloc(48);
    free(p);
}

/* 1 when AddressSanitizer's runtime is in the process (its malloc wins over any preload). */
static int asan_present(void) {
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#else
    return dlsym(RTLD_DEFAULT, "__asan_init") != NULL;
#endif
}

int cf_failalloc_active(lam_failalloc *fa) {
    if (lam_failalloc_bind(fa) != 0) {
        return 0;
    }
    return lam_failalloc_calibrate(fa, touch_heap, NULL) > 0;
}

/* The injector to preload: --failalloc, LAMINA_CONFORM_FAILALLOC, then next to the program
 * (an install's <libexecdir>/lamina, a build tree's libexec/lamina). 0 with `out`, or -1 with
 * the places looked at in `tried`. */
static int find_injector(const cf_options *opt, char *out, size_t cap, char *tried, size_t tcap) {
    const char *given = opt->failalloc ? opt->failalloc : getenv("LAMINA_CONFORM_FAILALLOC");
    if (given != NULL && given[0] != '\0') {
        snprintf(tried, tcap, "%s", given);
        if (access(given, R_OK) == 0) {
            snprintf(out, cap, "%s", given);
            return 0;
        }
        return -1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(tried, tcap, "(cannot read /proc/self/exe: %s)", strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    const char *rel[] = {LAMINA_CONFORM_FAILALLOC_REL, LAMINA_CONFORM_FAILALLOC_BUILD_REL};
    tried[0] = '\0';
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char cand[PATH_MAX + 256];
        snprintf(cand, sizeof cand, "%s/%s", exe, rel[i]);
        size_t len = strlen(tried);
        snprintf(tried + len, tcap - len, "%s%s", len ? ", " : "", cand);
        if (access(cand, R_OK) == 0) {
            snprintf(out, cap, "%s", cand);
            return 0;
        }
    }
    return -1;
}

/* Copies the verdict of check `name` from a JSON report into c. 0, or -1 when absent. */
static int adopt(cf_ctx *c, const char *name, const char *json, size_t len) {
    json_error_t err;
    json_t *root = json_loadb(json, len, 0, &err);
    json_t *checks = root ? json_object_get(root, "checks") : NULL;
    size_t i;
    json_t *k;
    int found = -1;
    json_array_foreach(checks, i, k) {
        const char *kn = json_string_value(json_object_get(k, "name"));
        if (kn == NULL || strcmp(kn, name) != 0) {
            continue;
        }
        const char *st = json_string_value(json_object_get(k, "status"));
        const char *msg = json_string_value(json_object_get(k, "message"));
        const char *exp = json_string_value(json_object_get(k, "expected"));
        const char *fnd = json_string_value(json_object_get(k, "found"));
        msg = msg ? msg : "";
        if (st != NULL && strcmp(st, "pass") == 0) {
            cf_pass(c, "%s", msg);
        } else if (st != NULL && strcmp(st, "skip") == 0) {
            cf_skip(c, "%s", msg);
        } else {
            cf_fail(c, "%s", msg);
            cf_expect(c, "%s", exp ? exp : "");
            cf_found(c, "%s", fnd ? fnd : "");
        }
        found = 0;
        break;
    }
    json_decref(root);
    return found;
}

void cf_failalloc_reexec(cf_ctx *c) {
    if (getenv(CF_FAILALLOC_CHILD_ENV) != NULL) {
        cf_skip(c, "the allocation-failure injector is not active although it was preloaded "
                   "(another malloc replacement, e.g. valgrind's, took precedence); nothing was "
                   "checked");
        return;
    }
    if (asan_present()) {
        cf_skip(c, "AddressSanitizer owns malloc in this process (an ASan build, or "
                   "LD_PRELOAD=libasan.so), so the allocation-failure injector cannot be active; "
                   "run this check without ASan");
        return;
    }
    char lib[PATH_MAX + 256], tried[3 * PATH_MAX];
    if (find_injector(c->opt, lib, sizeof lib, tried, sizeof tried) != 0) {
        cf_skip(c,
                "the allocation-failure injector liblamina_failalloc.so was not found (looked "
                "at %s); give it with --failalloc PATH",
                tried);
        return;
    }
    const char *old = getenv("LD_PRELOAD");
    char preload[2 * PATH_MAX + 512];
    snprintf(preload, sizeof preload, "%s%s%s", lib, old && old[0] ? ":" : "", old ? old : "");
    /* The same command line, narrowed to this check, with a JSON report. */
    int argc = c->opt->argc;
    char **argv = calloc((size_t)argc + 6, sizeof *argv);
    if (argv == NULL) {
        cf_fail(c, "out of memory");
        return;
    }
    for (int i = 0; i < argc; i++) {
        argv[i] = c->opt->argv[i];
    }
    argv[argc] = "--filter";
    argv[argc + 1] = (char *)(uintptr_t)c->name;
    argv[argc + 2] = "--format";
    argv[argc + 3] = "json";
    argv[argc + 4] = NULL;
    int fds[2];
    if (pipe(fds) != 0) {
        free(argv);
        cf_fail(c, "pipe: %s", strerror(errno));
        return;
    }
    cf_note(c, "in a fresh lamina conform with %s preloaded", lib);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* Dies with this check's process (its timeout kills us both). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("LD_PRELOAD", preload, 1);
        setenv(CF_FAILALLOC_CHILD_ENV, "1", 1);
        /* The CPU backend's oneDNN convolution does not survive its own allocations failing
         * (dnnl_memory_create dereferences an unchecked malloc, and dnnl_primitive_execute ends
         * the process on std::bad_alloc), as lavapipe does not: the sweep judges Lamina's code,
         * so there the host's convolution fallback runs instead. */
        setenv("LAMINA_CPU_DNNL", "0", 1);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    free(argv);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        cf_fail(c, "fork: %s", strerror(errno));
        return;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                break;
            }
            buf = nb;
        }
        ssize_t r = read(fds[0], buf + len, cap - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (buf == NULL || adopt(c, c->name, buf, len) != 0) {
        cf_fail(c, "the fresh lamina conform with %s preloaded gave no verdict for %s", lib,
                c->name);
        cf_expect(c, "a JSON report with the check");
        cf_found(c, "%s status %d", WIFSIGNALED(status) ? "killed by signal" : "exit",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
    free(buf);
}

/* ---- guard pages (<Layer>.bounds) ---- */

static cf_ctx *guard_ctx;
static struct sigaction old_segv, old_bus;

/* A fault while guard mode is on: the verdict goes to the shared page, then the child exits
 * (the runner keeps a FAIL written before a non-zero exit). */
static void guard_hit(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    cf_ctx *c = guard_ctx;
    const char *where = c->res->note[0] ? c->res->note : "in the check";
    const char *name = sig == SIGBUS ? "SIGBUS" : "SIGSEGV";
    if (sig == SIGBUS || si->si_code == SEGV_ACCERR) {
        cf_fail(c, "read or wrote out of bounds of a buffer (guard page hit) %s", where);
        cf_expect(c, "every access stays inside the buffers the layer was given or allocated");
        cf_found(c,
                 "%s at address %p, in the PROT_NONE page right after a heap block (every "
                 "block ends at one in this check)",
                 name, si->si_addr);
    } else {
        cf_fail(c, "crash: %s %s (at address %p, not a guard page: a wild pointer)", name, where,
                si->si_addr);
        cf_expect(c, "the check completes without a signal");
        cf_found(c, "%s at unmapped address %p", name, si->si_addr);
    }
    _exit(1);
}

int cf_guard_begin(cf_ctx *c, const lam_failalloc *fa) {
    /* The mode is on when a 16-byte block ends right at a page boundary. */
    fa->guard(1);
    char *probe = malloc(16);
    fa->guard(0);
    long page = sysconf(_SC_PAGESIZE);
    int on = probe != NULL && page > 0 && (uintptr_t)(probe + 16) % (uintptr_t)page == 0;
    free(probe);
    if (!on) {
        return -1;
    }
    guard_ctx = c;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_hit;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
    fa->guard(1);
    return 0;
}

void cf_guard_end(const lam_failalloc *fa) {
    fa->guard(0);
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    guard_ctx = NULL;
}
