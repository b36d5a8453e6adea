/*
 * conform_runner.c - runs the conformance kit: discovery (what the plugin registers and what
 * the registry decided) and every check, each in a child process of its own (fork; waitpid;
 * alarm), so a crash or a hang is reported with its signal instead of taking the tool down.
 * A child writes its verdict into a page of shared memory that the parent reads after it
 * ends. It declares the checks (plugin, layer and backend files) and hands each verdict to
 * the command's report function; it never prints.
 */
#define _GNU_SOURCE
#include "conform.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* With AddressSanitizer, freed plugin memory is asked about instead of read (dying_strings). */
#if defined(__SANITIZE_ADDRESS__)
#define CF_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CF_HAVE_ASAN 1
#endif
#endif
#ifndef CF_HAVE_ASAN
#define CF_HAVE_ASAN 0
#endif
#if CF_HAVE_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* ---- discovery: what the plugin registers (captured with a host table of our own) ---- */

static cf_plugin *g_plugin; /* shared memory during discovery */

static lam_status cap_set_error_fmt(lam_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static lam_status cap_set_error_fmt(lam_status status, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    snprintf(g_plugin->capture_error, sizeof g_plugin->capture_error, "%s", buf);
    return status;
}

static lam_status cap_set_error(lam_status status, const char *msg) {
    snprintf(g_plugin->capture_error, sizeof g_plugin->capture_error, "%s", msg ? msg : "");
    return status;
}

static void cap_log(lam_log_level level, const char *msg) {
    (void)level;
    (void)msg;
}

/*
 * Descriptor memory must outlive the entry: a plugin that builds its strings on the heap and
 * frees them, or on the entry's stack, works with this host (it copies them) but hands garbage
 * to any reader that keeps the pointers, as 1.0 hosts did. Discovery snapshots every string and
 * attribute array the entry registers, then, once the entry has returned, reuses freed heap
 * chunks and overwrites dead stack frames, and compares.
 */
#define CF_MAX_REGIONS 512
typedef struct cf_region {
    const void *ptr;
    size_t len;
    void *copy;
    char what[96];
} cf_region;
static cf_region g_regions[CF_MAX_REGIONS];
static size_t g_n_regions;

static void snap(const void *ptr, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void snap(const void *ptr, size_t len, const char *fmt, ...) {
    if (ptr == NULL || len == 0 || g_n_regions >= CF_MAX_REGIONS) {
        return;
    }
    cf_region *r = &g_regions[g_n_regions];
    r->copy = malloc(len);
    if (r->copy == NULL) {
        return;
    }
    memcpy(r->copy, ptr, len);
    r->ptr = ptr;
    r->len = len;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->what, sizeof r->what, fmt, ap);
    va_end(ap);
    g_n_regions++;
}

static void snap_text(const char *s, const char *owner, const char *field) {
    if (s != NULL) {
        snap(s, strnlen(s, 4096) + 1, "%s \"%.40s\" of %s", field, s, owner);
    }
}

static void __attribute__((noinline)) overwrite_dead_stack(void) {
    volatile unsigned char buf[65536];
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] = 0x5A;
    }
}

/* Reuses freed chunks of every small size, overwrites dead stack, then compares. */
static void dying_strings(char *err, size_t cap) {
    void *blocks[512];
    for (size_t i = 0; i < 512; i++) {
        size_t n = 8 + 8 * (i % 128);
        blocks[i] = malloc(n);
        if (blocks[i] != NULL) {
            memset(blocks[i], 0x5A, n);
        }
    }
    for (size_t i = 0; i < 512; i++) {
        free(blocks[i]);
    }
    overwrite_dead_stack();
    for (size_t i = 0; i < g_n_regions && err[0] == '\0'; i++) {
        const cf_region *r = &g_regions[i];
#if CF_HAVE_ASAN
        if (__asan_region_is_poisoned((void *)(uintptr_t)r->ptr, r->len) != NULL) {
            snprintf(err, cap, "%s points into freed or dead memory once the entry has returned",
                     r->what);
            continue;
        }
#endif
        if (memcmp(r->ptr, r->copy, r->len) != 0) {
            snprintf(err, cap, "%s changed once the entry had returned (freed, or on its stack)",
                     r->what);
        }
    }
    for (size_t i = 0; i < g_n_regions; i++) {
        free(g_regions[i].copy);
    }
    g_n_regions = 0;
}

/* A field of a (possibly older, shorter) descriptor, or 0 when it lies past struct_size. */
#define HAS_FIELD(d, field) ((d)->struct_size >= offsetof(lam_layer_desc, field) + sizeof(d)->field)

/* The example inputs of a layer (ABI 2.0), copied into l. */
static void cap_examples(cf_layer *l, const lam_layer_desc *d) {
    if (!HAS_FIELD(d, example_attrs) || d->examples == NULL || d->n_examples == 0) {
        return;
    }
    for (uint32_t i = 0; i < d->n_examples && i < CF_MAX_INPUTS; i++) {
        const lam_example_input *e = d->examples[i];
        if (e == NULL ||
            e->struct_size < offsetof(lam_example_input, bound_attr) + sizeof e->bound_attr ||
            e->info == NULL || e->info->ndim > LAM_MAX_DIMS) {
            return; /* the registry judges a malformed example; the kit then guesses */
        }
        cf_example *x = &l->examples[i];
        x->dtype = (int)e->info->dtype;
        x->ndim = e->info->ndim;
        memcpy(x->dims, e->info->dims, sizeof x->dims);
        x->domain = (int)e->domain;
        x->low = e->low;
        x->high = e->high;
        snprintf(x->bound_attr, sizeof x->bound_attr, "%s", e->bound_attr ? e->bound_attr : "");
    }
    l->n_examples = d->n_examples < CF_MAX_INPUTS ? d->n_examples : CF_MAX_INPUTS;
    snprintf(l->example_attrs, sizeof l->example_attrs, "%s",
             d->example_attrs ? d->example_attrs : "");
}

static lam_status cap_register_layer(lam_plugin *plugin, const lam_layer_desc *d) {
    (void)plugin;
    if (d == NULL || g_plugin->n_layers >= CF_MAX_LAYERS || d->struct_size < 16 ||
        LAM_VERSION_MAJOR(d->abi_version) != LAM_ABI_VERSION_MAJOR) {
        return LAM_OK; /* the registry judges the descriptor; we only take what we can read */
    }
    if (HAS_FIELD(d, attrs) && d->name != NULL) {
        char owner[96];
        snprintf(owner, sizeof owner, "layer '%.63s'", d->name);
        snap_text(d->name, owner, "name");
        snap_text(d->prefix, owner, "prefix");
        snap_text(d->version, owner, "version");
        snap_text(d->doc, owner, "doc");
        if (d->attrs != NULL && d->n_attrs > 0 && d->n_attrs <= 1024) {
            snap(d->attrs, d->n_attrs * sizeof *d->attrs, "the attribute array of %s", owner);
            for (uint32_t i = 0; i < d->n_attrs; i++) {
                const lam_attr_desc *a = d->attrs[i];
                if (a == NULL) {
                    continue;
                }
                snap(a, sizeof *a, "attribute %u of %s", i, owner);
                snap_text(a->name, owner, "attribute name");
                snap_text(a->default_value, owner, "attribute default");
                snap_text(a->choices, owner, "attribute choices");
                snap_text(a->doc, owner, "attribute doc");
            }
        }
    }
    cf_layer *l = &g_plugin->layers[g_plugin->n_layers];
    memset(l, 0, sizeof *l);
    lam_layer_desc copy;
    memset(&copy, 0, sizeof copy);
    memcpy(&copy, d, d->struct_size < sizeof copy ? d->struct_size : sizeof copy);
    if (copy.name == NULL) {
        return LAM_OK;
    }
    snprintf(l->name, sizeof l->name, "%s", copy.name);
    l->has_backward = copy.backward != NULL;
    l->flags = copy.flags;
    l->min_inputs = copy.min_inputs;
    l->max_inputs = copy.max_inputs;
    l->n_outputs = copy.n_outputs ? copy.n_outputs : 1;
    for (uint32_t i = 0; copy.attrs != NULL && i < copy.n_attrs && i < CF_MAX_ATTRS; i++) {
        const lam_attr_desc *a = copy.attrs[i];
        if (a == NULL) {
            continue;
        }
        cf_attr *o = &l->attrs[l->n_attrs++];
        snprintf(o->name, sizeof o->name, "%s", a->name ? a->name : "");
        o->type = (int)a->type;
        o->required = a->default_value == NULL;
        snprintf(o->def, sizeof o->def, "%s", a->default_value ? a->default_value : "");
        snprintf(o->choices, sizeof o->choices, "%s", a->choices ? a->choices : "");
        snprintf(o->doc, sizeof o->doc, "%s", a->doc ? a->doc : "");
    }
    cap_examples(l, d);
    g_plugin->n_layers++;
    return LAM_OK;
}

static lam_status cap_register_backend(lam_plugin *plugin, const lam_backend_desc *d) {
    (void)plugin;
    if (d == NULL || g_plugin->n_backends >= CF_MAX_BACKENDS || d->struct_size < 40) {
        return LAM_OK;
    }
    const char *name = d->name;
    snprintf(g_plugin->backends[g_plugin->n_backends++], 64, "%s", name ? name : "");
    if (name != NULL) {
        char owner[96];
        snprintf(owner, sizeof owner, "backend '%.63s'", name);
        snap_text(d->name, owner, "name");
        snap_text(d->version, owner, "version");
        snap_text(d->doc, owner, "doc");
    }
    return LAM_OK;
}

static lam_status cap_register_kernel(lam_plugin *plugin, const lam_kernel_desc *d) {
    (void)plugin;
    if (d == NULL || d->struct_size < offsetof(lam_kernel_desc, name) + sizeof d->name ||
        d->name == NULL || g_plugin->n_kernels >= CF_MAX_KERNELS) {
        return LAM_OK;
    }
    char owner[96];
    snprintf(owner, sizeof owner, "kernel '%.63s'", d->name);
    snap_text(d->name, owner, "name");
    snap_text(d->doc, owner, "doc");
    snprintf(g_plugin->kernels[g_plugin->n_kernels++], 64, "%s", d->name);
    return LAM_OK;
}

static lam_status cap_register_comm(lam_plugin *plugin, const struct lam_comm_desc *d) {
    (void)plugin;
    if (d == NULL || d->struct_size < offsetof(lam_comm_desc, name) + sizeof d->name ||
        d->name == NULL) {
        return LAM_OK;
    }
    char owner[96];
    snprintf(owner, sizeof owner, "communicator '%.63s'", d->name);
    snap_text(d->name, owner, "name");
    snap_text(d->version, owner, "version");
    snap_text(d->doc, owner, "doc");
    return LAM_OK;
}

/* Entries a plugin may call during its entry besides registration. */
static void (*cap_get_proc_address(const char *name))(void) {
    (void)name;
    return NULL;
}

static void *cap_alloc(size_t bytes) {
    return malloc(bytes ? bytes : 1);
}

static void cap_free(void *p) {
    free(p);
}

static cf_result *g_shared; /* the child's shared result page, for notes */

static void discover_note(const char *what) {
    snprintf(g_shared->note, sizeof g_shared->note, "%s", what);
}

static void discover_child(const cf_options *opt) {
    cf_plugin *p = g_plugin;
    discover_note("in dlopen (the plugin's constructors)");
    dlerror();
    void *h = dlopen(opt->path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        snprintf(p->capture_error, sizeof p->capture_error, "dlopen: %s", e ? e : "failed");
    } else {
        void *sym = dlsym(h, LAM_PLUGIN_ENTRY_NAME);
        if (sym == NULL) {
            snprintf(p->capture_error, sizeof p->capture_error,
                     "no exported symbol lamina_plugin_entry");
        } else {
            lam_plugin_entry_fn entry;
            memcpy(&entry, &sym, sizeof entry);
            lam_host_api host;
            memset(&host, 0, sizeof host);
            host.struct_size = (uint32_t)sizeof host;
            host.abi_version = LAM_ABI_VERSION;
            host.abi_fingerprint = LAM_ABI_FINGERPRINT;
            host.set_error_fmt = cap_set_error_fmt;
            host.set_error = cap_set_error;
            host.log = cap_log;
            host.register_layer = cap_register_layer;
            host.register_backend = cap_register_backend;
            host.register_kernel = cap_register_kernel;
            host.register_comm = cap_register_comm;
            host.get_proc_address = cap_get_proc_address;
            host.alloc = cap_alloc;
            host.free = cap_free;
            discover_note("in lamina_plugin_entry (given the kit's host table)");
            lam_status st = entry(&host, (lam_plugin *)(void *)&host);
            if (st != LAM_OK && p->capture_error[0] == '\0') {
                snprintf(p->capture_error, sizeof p->capture_error, "entry returned %s",
                         lam_status_string(st));
            }
            dying_strings(p->strings_error, sizeof p->strings_error);
        }
    }
    /* The registry's verdict, through the public API (the entry runs again, with the real
     * host table, which replaces ours in the plugin). */
    lam_init_options o = LAM_INIT_OPTIONS_INIT;
    o.plugin_path = p->load_path;
    o.skip_builtin_dir = 1;
    discover_note("in lam_init (the registry loading the plugin)");
    if (lam_init(&o) != LAM_OK) {
        return;
    }
    size_t n = lam_plugin_report_count();
    for (size_t i = 0; i < n; i++) {
        lam_plugin_record r = LAM_PLUGIN_RECORD_INIT;
        char real[PATH_MAX];
        if (lam_plugin_report_get(i, &r) != LAM_OK || realpath(r.path, real) == NULL ||
            strcmp(real, p->real) != 0) {
            continue;
        }
        p->have_record = 1;
        p->decision = (int)r.decision;
        p->reason = (int)r.reason;
        p->plugin_abi = r.plugin_abi;
        snprintf(p->kind, sizeof p->kind, "%s", r.kind);
        snprintf(p->names, sizeof p->names, "%s", r.names);
        snprintf(p->version, sizeof p->version, "%s", r.version);
        snprintf(p->message, sizeof p->message, "%s", r.message);
        break;
    }
    /* Keep only what the registry accepted: a layer it refused has nothing to check. */
    if (p->have_record && p->decision == LAM_PLUGIN_LOADED) {
        for (uint32_t i = 0; i < p->n_layers; i++) {
            int known = 0;
            for (size_t k = 0; k < lam_layer_type_count(); k++) {
                const char *t = lam_layer_type_name(k);
                known = known || (t != NULL && strcmp(t, p->layers[i].name) == 0);
            }
            if (!known) {
                p->layers[i].name[0] = '\0';
            }
        }
    }
}

/* The plugin itself first, then every backend of the built-in directory (so cpu is there). */
static void build_load_path(cf_plugin *p) {
    snprintf(p->load_path, sizeof p->load_path, "%s", p->path);
    const char *dir = lam_builtin_plugin_dir();
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, "lamina_backend_", 15) != 0 || n < 4 ||
            strcmp(de->d_name + n - 3, ".so") != 0) {
            continue;
        }
        size_t len = strlen(p->load_path);
        snprintf(p->load_path + len, sizeof p->load_path - len, ":%s/%s", dir, de->d_name);
    }
    closedir(d);
}

/* ---- running a function in a child ---- */

static const char *signal_name(int sig) {
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGABRT:
        return "SIGABRT";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGKILL:
        return "SIGKILL";
    case SIGTERM:
        return "SIGTERM";
    case SIGALRM:
        return "SIGALRM";
    case SIGTRAP:
        return "SIGTRAP";
    case SIGPIPE:
        return "SIGPIPE";
    default:
        return "signal";
    }
}

typedef void (*child_fn)(void *arg);

/* Runs fn(arg) in a child with a timeout; fills *res from the child's shared page. */
static void run_child(child_fn fn, void *arg, cf_result *shared, unsigned timeout_s,
                      cf_result *res) {
    memset(shared, 0, sizeof *shared);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        memset(res, 0, sizeof *res);
        res->outcome = CF_FAIL;
        snprintf(res->message, sizeof res->message, "fork failed: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        /* The report owns stdout; whatever a plugin prints goes to stderr. */
        dup2(STDERR_FILENO, STDOUT_FILENO);
        /* Faults kill the child with their signal, which the parent reports; this also takes
         * them back from a sanitizer's handler, which would exit with a status instead. */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGFPE, SIG_DFL);
        signal(SIGILL, SIG_DFL);
        signal(SIGALRM, SIG_DFL);
        alarm(timeout_s);
        fn(arg);
        fflush(NULL);
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    *res = *shared;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        char where[300];
        snprintf(where, sizeof where, "%s", res->note[0] ? res->note : "the check");
        res->outcome = CF_FAIL;
        if (sig == SIGALRM) {
            snprintf(res->message, sizeof res->message,
                     "timeout: no answer after %us %s (hang or endless loop)", timeout_s, where);
        } else {
            snprintf(res->message, sizeof res->message, "crash: %s %s", signal_name(sig), where);
        }
        snprintf(res->expected, sizeof res->expected, "the check completes without a signal");
        snprintf(res->found, sizeof res->found, "the process was killed by %s (%s)",
                 signal_name(sig), strsignal(sig));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && res->outcome != CF_FAIL) {
        res->outcome = CF_FAIL;
        snprintf(res->message, sizeof res->message,
                 "the check's process exited with status %d %s (exit() in the plugin, or a "
                 "sanitizer's report: see stderr)",
                 WEXITSTATUS(status), res->note[0] ? res->note : "");
        snprintf(res->expected, sizeof res->expected, "the check returns a verdict");
    } else if (res->outcome == CF_NONE) {
        res->outcome = CF_PASS;
    }
}

typedef struct check_arg {
    const cf_options *opt;
    const cf_plugin *plugin;
    const cf_check *check;
    cf_result *shared;
} check_arg;

static void check_child(void *argp) {
    check_arg *a = argp;
    cf_ctx c = {.name = a->check->name,
                .opt = a->opt,
                .plugin = a->plugin,
                .layer = a->check->layer,
                .backend = a->check->backend,
                .param = a->check->param,
                .res = a->shared};
    a->check->fn(&c);
    if (c.started) {
        cf_note(&c, "after the check (leak check)");
        size_t live = lam_tensor_live_count();
        if (live != c.live0 && !cf_failed(&c)) {
            c.res->outcome = CF_NONE;
            cf_fail(&c, "leak: %zu tensor(s) still alive after the check released everything",
                    live - c.live0);
            cf_expect(&c, "%zu live tensors (lam_tensor_live_count at the start)", c.live0);
            cf_found(&c, "%zu live tensors", live);
        }
    }
}

static void discover_fn(void *arg) {
    discover_child(arg);
}

static int matches(const cf_options *opt, const char *name) {
    return opt->filter == NULL || strstr(name, opt->filter) != NULL;
}

static cf_result *shared_page(void) {
    static cf_result *page;
    if (page == NULL) {
        void *p =
            mmap(NULL, sizeof *page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        page = p == MAP_FAILED ? NULL : p;
    }
    return page;
}

int cf_discover(const cf_options *opt, cf_plugin *out, cf_result *disc) {
    cf_plugin *plugin =
        mmap(NULL, sizeof *plugin, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cf_result *shared = shared_page();
    if (plugin == MAP_FAILED || shared == NULL) {
        return -1;
    }
    memset(plugin, 0, sizeof *plugin);
    snprintf(plugin->path, sizeof plugin->path, "%s", opt->path);
    if (realpath(opt->path, plugin->real) == NULL) {
        snprintf(plugin->real, sizeof plugin->real, "%s", opt->path);
    }
    build_load_path(plugin);
    g_plugin = plugin;
    g_shared = shared;
    run_child(discover_fn, (void *)(uintptr_t)opt, shared, opt->timeout_s, disc);
    if (disc->outcome == CF_FAIL && plugin->capture_error[0] == '\0') {
        snprintf(plugin->capture_error, sizeof plugin->capture_error, "%s", disc->message);
    }
    /* Discovery ran in a child; its findings move to the caller's memory for the checks. */
    *out = *plugin;
    g_plugin = NULL;
    munmap(plugin, sizeof *plugin);
    return 0;
}

int cf_run_checks(const cf_options *opt, cf_plugin *plugin, cf_report_fn report, void *user) {
    cf_result *shared = shared_page();
    if (shared == NULL) {
        return -1;
    }
    cf_plugin_checks();
    if (plugin->have_record && plugin->decision == LAM_PLUGIN_LOADED) {
        for (uint32_t i = 0; i < plugin->n_layers; i++) {
            if (plugin->layers[i].name[0] != '\0') {
                cf_layer_checks(&plugin->layers[i]);
            }
        }
        for (uint32_t i = 0; i < plugin->n_backends; i++) {
            cf_backend_checks(plugin->backends[i]);
        }
        for (uint32_t i = 0; i < plugin->n_kernels; i++) {
            cf_kernel_checks(plugin->kernels[i]);
        }
    }
    for (size_t i = 0; i < cf_check_count(); i++) {
        cf_check *k = cf_check_get(i);
        int setup = strstr(k->name, ".setup") != NULL;
        if (!matches(opt, k->name) && !setup) {
            continue;
        }
        check_arg arg = {opt, plugin, k, shared};
        cf_result r;
        /* The allocation sweep and the guard pages may run in a fresh conform (discovery, setup,
         * then the sweep). */
        unsigned limit = strstr(k->name, ".alloc_failure") || strstr(k->name, ".bounds")
                             ? 3 * opt->timeout_s + 10
                             : opt->timeout_s;
        run_child(check_child, &arg, shared, limit, &r);
        if (setup && k->layer != NULL) {
            cf_layer *l = (cf_layer *)(uintptr_t)k->layer;
            l->have_input = r.have_input; /* a leak found by setup does not stop the rest */
            l->n_inputs = r.n_inputs;
            memcpy(l->inputs, r.inputs, sizeof l->inputs);
            snprintf(l->attr_text, sizeof l->attr_text, "%s", r.attr_text);
            if (!matches(opt, k->name) && r.outcome != CF_FAIL) {
                continue; /* ran only to serve the selected checks */
            }
        }
        report(user, k->name, &r);
    }
    cf_checks_clear();
    return 0;
}
