/*
 * conform.c - `lamina conform PLUGIN.so`: the runner of the plugin conformance kit.
 *
 * Discovery (what the plugin registers, what the registry decided) and every check run in
 * child processes; the parent only forks, waits and reports. See conform.h.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "conform.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

/* ---- the list of checks ---- */

typedef struct cf_check {
    char name[160];
    cf_fn fn;
    const cf_layer *layer;
    const char *backend;
    int param;
} cf_check;

static cf_check *checks;
static size_t n_checks, cap_checks;

int cf_add(const char *name, cf_fn fn, const cf_layer *layer, const char *backend, int param) {
    if (n_checks == cap_checks) {
        size_t cap = cap_checks ? 2 * cap_checks : 64;
        cf_check *a = realloc(checks, cap * sizeof *a);
        if (a == NULL) {
            return -1;
        }
        checks = a;
        cap_checks = cap;
    }
    cf_check *k = &checks[n_checks++];
    snprintf(k->name, sizeof k->name, "%s", name);
    k->fn = fn;
    k->layer = layer;
    k->backend = backend;
    k->param = param;
    return 0;
}

/* ---- verdicts (child side) ---- */

static void vset(char *dst, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void vset(char *dst, size_t cap, const char *fmt, va_list ap) {
    vsnprintf(dst, cap, fmt, ap);
}

#define VERDICT(fnname, value)                                                                     \
    void fnname(cf_ctx *c, const char *fmt, ...) {                                                 \
        if (c->res->outcome != CF_NONE) {                                                          \
            return;                                                                                \
        }                                                                                          \
        c->res->outcome = value;                                                                   \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        vset(c->res->message, sizeof c->res->message, fmt, ap);                                    \
        va_end(ap);                                                                                \
    }
VERDICT(cf_pass, CF_PASS)
VERDICT(cf_skip, CF_SKIP)
VERDICT(cf_fail, CF_FAIL)
#undef VERDICT

void cf_expect(cf_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(c->res->expected, sizeof c->res->expected, fmt, ap);
    va_end(ap);
}

void cf_found(cf_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(c->res->found, sizeof c->res->found, fmt, ap);
    va_end(ap);
}

void cf_note(cf_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(c->res->note, sizeof c->res->note, fmt, ap);
    va_end(ap);
}

int cf_failed(const cf_ctx *c) {
    return c->res->outcome == CF_FAIL;
}

int cf_start(cf_ctx *c) {
    lam_init_options o = LAM_INIT_OPTIONS_INIT;
    o.plugin_path = c->plugin->load_path;
    o.skip_builtin_dir = 1;
    cf_note(c, "in lam_init (loading the plugin)");
    lam_status st = lam_init(&o);
    if (st != LAM_OK) {
        cf_fail(c, "lam_init failed: %s", lam_last_error());
        return -1;
    }
    c->started = 1;
    c->live0 = lam_tensor_live_count();
    return 0;
}

/* ---- random numbers for inputs ---- */

uint64_t cf_rng_next(cf_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void cf_rng_init(cf_rng *r, uint64_t seed, uint64_t stream) {
    r->s = seed * 0x2545F4914F6CDD1DULL + stream * 0x9E3779B97F4A7C15ULL + 1;
    (void)cf_rng_next(r);
}

float cf_rng_uniform(cf_rng *r, float lo, float hi) {
    double u = (double)(cf_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

/* ---- discovery: what the plugin registers (captured with a host table of our own) ---- */

static cf_plugin *g_plugin; /* shared memory during discovery */

static lam_status cap_set_error(lam_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static lam_status cap_set_error(lam_status status, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    snprintf(g_plugin->capture_error, sizeof g_plugin->capture_error, "%s", buf);
    return status;
}

static void cap_log(lam_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cap_log(lam_log_level level, const char *fmt, ...) {
    (void)level;
    (void)fmt;
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

static lam_status cap_register_layer(lam_plugin *plugin, const lam_layer_desc *d) {
    (void)plugin;
    if (d == NULL || g_plugin->n_layers >= CF_MAX_LAYERS || d->struct_size < 16) {
        return LAM_OK; /* the registry judges the descriptor; we only take what we can read */
    }
    if (d->struct_size >= offsetof(lam_layer_desc, attrs) + sizeof d->attrs && d->name != NULL) {
        char owner[96];
        snprintf(owner, sizeof owner, "layer '%.63s'", d->name);
        snap_text(d->name, owner, "name");
        snap_text(d->prefix, owner, "prefix");
        snap_text(d->version, owner, "version");
        snap_text(d->doc, owner, "doc");
        if (d->attrs != NULL && d->n_attrs > 0 && d->n_attrs <= 1024) {
            snap(d->attrs, d->n_attrs * sizeof *d->attrs, "the attribute array of %s", owner);
            for (uint32_t i = 0; i < d->n_attrs; i++) {
                snap_text(d->attrs[i].name, owner, "attribute name");
                snap_text(d->attrs[i].default_value, owner, "attribute default");
                snap_text(d->attrs[i].choices, owner, "attribute choices");
                snap_text(d->attrs[i].doc, owner, "attribute doc");
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
    for (uint32_t i = 0; copy.attrs != NULL && i < copy.n_attrs && i < CF_MAX_ATTRS; i++) {
        const lam_attr_desc *a = &copy.attrs[i];
        cf_attr *o = &l->attrs[l->n_attrs++];
        snprintf(o->name, sizeof o->name, "%s", a->name ? a->name : "");
        o->type = (int)a->type;
        o->required = a->default_value == NULL;
        snprintf(o->def, sizeof o->def, "%s", a->default_value ? a->default_value : "");
        snprintf(o->choices, sizeof o->choices, "%s", a->choices ? a->choices : "");
        snprintf(o->doc, sizeof o->doc, "%s", a->doc ? a->doc : "");
    }
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
            host.set_error = cap_set_error;
            host.log = cap_log;
            host.register_layer = cap_register_layer;
            host.register_backend = cap_register_backend;
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

/* ---- plugin-wide checks ---- */

/* Exported symbols and DT_NEEDED entries of an ELF shared object, read with <elf.h>. */
typedef struct elf_info {
    char exported[4096];
    int n_exported;
    int links_lamina;
    char error[256];
} elf_info;

static int in_file(size_t size, uint64_t off, uint64_t len) {
    return off <= size && len <= size - off;
}

static void elf_read(const char *path, elf_info *out) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    struct stat stt;
    if (fd < 0 || fstat(fd, &stt) != 0 || stt.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        snprintf(out->error, sizeof out->error, "cannot read %.200s", path);
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    size_t size = (size_t)stt.st_size;
    const unsigned char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(out->error, sizeof out->error, "cannot map %.200s", path);
        return;
    }
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)(const void *)m;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !in_file(size, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr))) {
        snprintf(out->error, sizeof out->error, "not a 64-bit ELF file with section headers");
        munmap((void *)(uintptr_t)m, size);
        return;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(const void *)(m + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM && sh[i].sh_type != SHT_DYNAMIC) {
            continue;
        }
        if (sh[i].sh_link >= eh->e_shnum || !in_file(size, sh[i].sh_offset, sh[i].sh_size)) {
            continue;
        }
        const Elf64_Shdr *strs = &sh[sh[i].sh_link];
        if (!in_file(size, strs->sh_offset, strs->sh_size) || strs->sh_size == 0) {
            continue;
        }
        const char *str = (const char *)m + strs->sh_offset;
        if (sh[i].sh_type == SHT_DYNSYM) {
            size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
            const Elf64_Sym *sym = (const Elf64_Sym *)(const void *)(m + sh[i].sh_offset);
            for (size_t k = 1; k < n; k++) {
                int bind = ELF64_ST_BIND(sym[k].st_info);
                int type = ELF64_ST_TYPE(sym[k].st_info);
                int vis = ELF64_ST_VISIBILITY(sym[k].st_other);
                if (sym[k].st_shndx == SHN_UNDEF || type == STT_SECTION || type == STT_FILE ||
                    (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) ||
                    (vis != STV_DEFAULT && vis != STV_PROTECTED) ||
                    (sym[k].st_shndx == SHN_ABS && sym[k].st_value == 0) ||
                    sym[k].st_name >= strs->sh_size) {
                    continue;
                }
                const char *name = str + sym[k].st_name;
                size_t len = strnlen(name, strs->sh_size - sym[k].st_name);
                size_t used = strlen(out->exported);
                snprintf(out->exported + used, sizeof out->exported - used, "%s%.*s",
                         used ? " " : "", (int)len, name);
                out->n_exported++;
            }
        } else {
            size_t n = sh[i].sh_size / sizeof(Elf64_Dyn);
            const Elf64_Dyn *dyn = (const Elf64_Dyn *)(const void *)(m + sh[i].sh_offset);
            for (size_t k = 0; k < n && dyn[k].d_tag != DT_NULL; k++) {
                if (dyn[k].d_tag == DT_NEEDED && dyn[k].d_un.d_val < strs->sh_size &&
                    strstr(str + dyn[k].d_un.d_val, "liblamina") != NULL) {
                    out->links_lamina = 1;
                }
            }
        }
    }
    munmap((void *)(uintptr_t)m, size);
}

static void check_exports(cf_ctx *c) {
    elf_info e;
    cf_note(c, "reading the ELF dynamic symbol table");
    elf_read(c->plugin->path, &e);
    if (e.error[0]) {
        cf_fail(c, "%s", e.error);
        return;
    }
    if (e.n_exported != 1 || strcmp(e.exported, LAM_PLUGIN_ENTRY_NAME) != 0) {
        cf_fail(c,
                "exports %d symbol(s); a plugin exports only %s (build with "
                "-fvisibility=hidden and the SDK's version script)",
                e.n_exported, LAM_PLUGIN_ENTRY_NAME);
        cf_expect(c, "%s", LAM_PLUGIN_ENTRY_NAME);
        cf_found(c, "%s", e.exported[0] ? e.exported : "(nothing)");
        return;
    }
    if (e.links_lamina) {
        cf_fail(c, "links liblamina; a plugin reaches the host only through the host table");
        cf_expect(c, "no DT_NEEDED entry for liblamina");
        cf_found(c, "a DT_NEEDED entry for liblamina");
        return;
    }
    cf_pass(c, "exports only %s, does not link liblamina", LAM_PLUGIN_ENTRY_NAME);
}

static void check_abi(cf_ctx *c) {
    const cf_plugin *p = c->plugin;
    if (!p->have_record) {
        cf_fail(c, "the registry has no record of %s%s%s", p->path, p->capture_error[0] ? ": " : "",
                p->capture_error);
        return;
    }
    unsigned major = LAM_VERSION_MAJOR(p->plugin_abi), minor = LAM_VERSION_MINOR(p->plugin_abi);
    if (p->decision != LAM_PLUGIN_LOADED) {
        cf_fail(c, "not loaded: %s: %s", lam_plugin_reason_string((lam_plugin_reason)p->reason),
                p->message);
        cf_expect(c,
                  "the registry loads it: built for ABI %u.0 to %u.%u (this lamina's), with that "
                  "ABI's descriptor sizes and layout fingerprint",
                  LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR);
        cf_found(c, "%s (%s), plugin ABI %u.%u",
                 p->decision == LAM_PLUGIN_REFUSED ? "refused" : "skipped",
                 lam_plugin_reason_string((lam_plugin_reason)p->reason), major, minor);
        return;
    }
    if (major != LAM_ABI_VERSION_MAJOR || minor > LAM_ABI_VERSION_MINOR) {
        cf_fail(c, "loaded with an unexpected ABI version %u.%u", major, minor);
        return;
    }
    if (p->capture_error[0]) {
        cf_fail(c, "the entry failed against a host table of exactly ABI %u.%u: %s",
                LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR, p->capture_error);
        return;
    }
    if (p->strings_error[0]) {
        cf_fail(c, "descriptor strings die after the entry returns: %s", p->strings_error);
        cf_expect(c, "descriptor strings and attribute arrays that live as long as the plugin "
                     "(static storage)");
        cf_found(c, "%s", p->strings_error);
        return;
    }
    cf_pass(c, "loaded (%s: %s), ABI %u.%u, descriptor sizes and fingerprint accepted", p->kind,
            p->names, major, minor);
}

/* Offers the plugin's entry host tables of other versions and sizes. */
static int neg_registered;

static lam_status neg_register_layer(lam_plugin *plugin, const lam_layer_desc *d) {
    (void)plugin;
    (void)d;
    neg_registered++;
    return LAM_OK;
}

static lam_status neg_register_backend(lam_plugin *plugin, const lam_backend_desc *d) {
    (void)plugin;
    (void)d;
    neg_registered++;
    return LAM_OK;
}

/* Runs the entry with a host table of `size` bytes claiming ABI `abi`; returns its status. */
static lam_status offer(cf_ctx *c, lam_plugin_entry_fn entry, uint32_t abi, size_t size,
                        int *registered) {
    /* A larger table than ours is a newer minor's: its extra fields are zero here. */
    static unsigned char buf[sizeof(lam_host_api) + 256];
    memset(buf, 0, sizeof buf);
    lam_host_api h;
    memset(&h, 0, sizeof h);
    h.struct_size = (uint32_t)size;
    h.abi_version = abi;
    h.abi_fingerprint = LAM_ABI_FINGERPRINT;
    h.set_error = cap_set_error;
    h.log = cap_log;
    h.register_layer = neg_register_layer;
    h.register_backend = neg_register_backend;
    memcpy(buf, &h, size < sizeof h ? size : sizeof h);
    neg_registered = 0;
    cf_note(c, "in the entry, offered a host table of ABI %u.%u and %zu bytes",
            LAM_VERSION_MAJOR(abi), LAM_VERSION_MINOR(abi), size);
    lam_status st = entry((const lam_host_api *)(void *)buf, (lam_plugin *)(void *)buf);
    *registered = neg_registered;
    return st;
}

static void check_abi_negotiation(cf_ctx *c) {
    static cf_plugin scratch; /* cap_set_error writes its message here */
    g_plugin = &scratch;
    void *h = dlopen(c->plugin->path, RTLD_NOW | RTLD_LOCAL);
    void *sym = h != NULL ? dlsym(h, LAM_PLUGIN_ENTRY_NAME) : NULL;
    if (sym == NULL) {
        cf_fail(c, "cannot find %s in %s", LAM_PLUGIN_ENTRY_NAME, c->plugin->path);
        return;
    }
    lam_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    int reg = 0;
    /* 1. A newer minor with a larger table: a 1.x plugin loads into every 1.y host, y >= x. */
    lam_status st =
        offer(c, entry, LAM_MAKE_VERSION(LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR + 1),
              sizeof(lam_host_api) + 64, &reg);
    if (st != LAM_OK || reg == 0) {
        cf_fail(c, "refuses a newer-minor host (ABI %u.%u with a larger table)",
                LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR + 1);
        cf_expect(c, "LAM_OK and its registrations (minors only append)");
        cf_found(c, "%s, %d registration(s): %s", lam_status_string(st), reg,
                 scratch.capture_error);
        return;
    }
    /* 2. Another major: the plugin must refuse before using anything but the frozen fields. */
    scratch.capture_error[0] = '\0';
    st =
        offer(c, entry, LAM_MAKE_VERSION(LAM_ABI_VERSION_MAJOR + 1, 0), sizeof(lam_host_api), &reg);
    if (st == LAM_OK || reg > 0) {
        cf_fail(c, "accepts a host of ABI %u.0", LAM_ABI_VERSION_MAJOR + 1);
        cf_expect(c, "an error naming both versions (lam_plugin_check_host), nothing registered");
        cf_found(c, "%s, %d registration(s)", lam_status_string(st), reg);
        return;
    }
    /* 3. A table holding only the frozen header: refused without reading past it. */
    scratch.capture_error[0] = '\0';
    st = offer(c, entry, LAM_ABI_VERSION, offsetof(lam_host_api, log), &reg);
    if (st == LAM_OK || reg > 0) {
        cf_fail(c, "accepts a host table of %zu bytes", offsetof(lam_host_api, log));
        cf_expect(c, "an error: the table is smaller than the plugin needs");
        cf_found(c, "%s, %d registration(s)", lam_status_string(st), reg);
        return;
    }
    cf_pass(c, "accepts ABI %u.%u with a larger table; refuses ABI %u.0 and a %zu-byte table",
            LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR + 1, LAM_ABI_VERSION_MAJOR + 1,
            offsetof(lam_host_api, log));
}

/* ---- report ---- */

static void repro(const cf_options *opt, const char *name, char *buf, size_t cap) {
    /* Quoted for the shell when the path needs it. */
    int plain = strpbrk(opt->path, " \t'\"$`\\;&|<>()*?[]{}~!#") == NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s%s%s", plain ? "" : "'", opt->path, plain ? "" : "'");
    snprintf(buf, cap, "lamina conform %s --seed %llu --filter %s%s%s%s%s", path,
             (unsigned long long)opt->seed, name, opt->attrs ? " --attrs '" : "",
             opt->attrs ? opt->attrs : "", opt->attrs ? "'" : "",
             strcmp(opt->backend, "cpu") != 0 ? " --backend " : "");
    if (strcmp(opt->backend, "cpu") != 0) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, "%s", opt->backend);
    }
    for (uint32_t i = 0; i < opt->n_shapes; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, " --shape '%s'", opt->shape_text[i]);
    }
    if (opt->n_inputs > 0) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, " --inputs %u", opt->n_inputs);
    }
}

/* "(2,3,8,8)", "2, 3" or "(3,)" into *s; 0, or -1 when it is not a shape. */
static int parse_shape(const char *text, lam_shape *s) {
    memset(s, 0, sizeof *s);
    const char *p = text;
    while (*p == ' ') {
        p++;
    }
    int paren = *p == '(';
    p += paren;
    for (;;) {
        while (*p == ' ') {
            p++;
        }
        if (*p == ')' || *p == '\0') {
            break;
        }
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno != 0 || v < 0 || s->ndim >= LAM_MAX_DIMS) {
            return -1;
        }
        s->dims[s->ndim++] = v;
        p = end;
        while (*p == ' ') {
            p++;
        }
        if (*p == ',') {
            p++;
        } else if (*p != ')' && *p != '\0') {
            return -1;
        }
    }
    if (paren != (*p == ')')) {
        return -1;
    }
    p += paren;
    while (*p == ' ') {
        p++;
    }
    return *p == '\0' ? 0 : -1;
}

static const char *outcome_word(int o) {
    return o == CF_PASS ? "pass" : o == CF_SKIP ? "skip" : "fail";
}

static int matches(const cf_options *opt, const char *name) {
    return opt->filter == NULL || strstr(name, opt->filter) != NULL;
}

static void usage_conform(FILE *f) {
    fprintf(f, "usage: lamina conform PLUGIN.so [--backend all|cpu|vulkan|NAME[,NAME...]]\n"
               "                      [--seed N] [--filter SUBSTR] [--format text|json]\n"
               "                      [--attrs \"name=value, ...\"] [--timeout SECONDS]\n"
               "                      [--shape \"(2,3,8,8)\"]... [--inputs N]\n"
               "                      [--failalloc PATH/liblamina_failalloc.so]\n\n"
               "Runs the conformance checks of a layer or backend plugin, each in its own\n"
               "process; prints pass/fail/skip per check and, for each failure, what was\n"
               "expected and found and a command that reproduces it. Exit status 1 when a\n"
               "check fails, 2 on a usage error.\n\n"
               "Input shapes: --shape gives the input shape (once per input of a layer of\n"
               "several inputs); without it the kit tries (2, F) for each integer F among the\n"
               "attribute values, then (2, 3), (2, 5), (2, 4), (2, 2), (2, 1), (2, 8), (2, 16),\n"
               "(F), (2, 3, 4), (2, 3, 4, 5), and uses the first one forward accepts. --inputs N\n"
               "sets a layer's number of inputs; without it 1, 2, then 3 are tried.\n"
               "Temporary files go to $TMPDIR (default /tmp).\n");
}

static int parse_args(int argc, char **argv, cf_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->backend = "cpu";
    opt->timeout_s = 120;
    opt->argc = argc;
    opt->argv = argv;
    const char *fmt = "text";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage_conform(stdout);
            exit(0);
        } else if (a[0] == '-' && a[1] == '-' && v == NULL) {
            fprintf(stderr, "lamina conform: %s needs a value\n", a);
            return -1;
        } else if (strcmp(a, "--backend") == 0) {
            opt->backend = v;
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            errno = 0;
            opt->seed = strtoull(v, &end, 10);
            if (*v == '\0' || *end != '\0' || errno != 0) {
                fprintf(stderr, "lamina conform: --seed wants an integer, got '%s'\n", v);
                return -1;
            }
            i++;
        } else if (strcmp(a, "--filter") == 0) {
            opt->filter = v;
            i++;
        } else if (strcmp(a, "--format") == 0) {
            fmt = v;
            i++;
        } else if (strcmp(a, "--attrs") == 0) {
            opt->attrs = v;
            i++;
        } else if (strcmp(a, "--shape") == 0) {
            if (opt->n_shapes >= CF_MAX_INPUTS ||
                parse_shape(v, &opt->shapes[opt->n_shapes]) != 0) {
                fprintf(stderr,
                        "lamina conform: --shape wants a shape such as \"(2,3,8,8)\" (at most "
                        "%d, one per input), got '%s'\n",
                        CF_MAX_INPUTS, v);
                return -1;
            }
            opt->shape_text[opt->n_shapes++] = v;
            i++;
        } else if (strcmp(a, "--inputs") == 0) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < 1 || n > CF_MAX_INPUTS) {
                fprintf(stderr, "lamina conform: --inputs wants 1 to %d, got '%s'\n", CF_MAX_INPUTS,
                        v);
                return -1;
            }
            opt->n_inputs = (uint32_t)n;
            i++;
        } else if (strcmp(a, "--failalloc") == 0) {
            opt->failalloc = v;
            i++;
        } else if (strcmp(a, "--timeout") == 0) {
            opt->timeout_s = (unsigned)strtoul(v, NULL, 10);
            if (opt->timeout_s == 0) {
                opt->timeout_s = 120;
            }
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "lamina conform: unknown option '%s'\n", a);
            return -1;
        } else if (opt->path == NULL) {
            opt->path = a;
        } else {
            fprintf(stderr, "lamina conform: one plugin at a time ('%s' and '%s')\n", opt->path, a);
            return -1;
        }
    }
    if (strcmp(fmt, "json") == 0) {
        opt->json = 1;
    } else if (strcmp(fmt, "text") != 0) {
        fprintf(stderr, "lamina conform: --format is text or json, got '%s'\n", fmt);
        return -1;
    }
    if (opt->path == NULL) {
        fprintf(stderr, "lamina conform: which plugin? (a path to a .so file)\n");
        return -1;
    }
    if (opt->n_inputs > 0 && opt->n_shapes > 1 && opt->n_shapes != opt->n_inputs) {
        fprintf(stderr, "lamina conform: %u --shape options for --inputs %u\n", opt->n_shapes,
                opt->n_inputs);
        return -1;
    }
    return 0;
}

int cmd_conform(int argc, char **argv) {
    cf_options opt;
    if (parse_args(argc, argv, &opt) != 0) {
        usage_conform(stderr);
        return 2;
    }
    if (access(opt.path, R_OK) != 0) {
        fprintf(stderr, "lamina conform: %s: %s\n", opt.path, strerror(errno));
        return 2;
    }
    /* A bare file name names the file here: dlopen would search the library path instead. */
    static char here[4200];
    if (strchr(opt.path, '/') == NULL) {
        snprintf(here, sizeof here, "./%s", opt.path);
        opt.path = here;
    }
    /* Shared pages: the plugin description (filled by discovery) and one check's result. */
    cf_plugin *plugin =
        mmap(NULL, sizeof *plugin, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cf_result *shared =
        mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (plugin == MAP_FAILED || shared == MAP_FAILED) {
        fprintf(stderr, "lamina conform: out of memory\n");
        return 2;
    }
    memset(plugin, 0, sizeof *plugin);
    snprintf(plugin->path, sizeof plugin->path, "%s", opt.path);
    if (realpath(opt.path, plugin->real) == NULL) {
        snprintf(plugin->real, sizeof plugin->real, "%s", opt.path);
    }
    build_load_path(plugin);
    g_plugin = plugin;

    cf_result disc;
    g_shared = shared;
    run_child(discover_fn, &opt, shared, opt.timeout_s, &disc);
    if (disc.outcome == CF_FAIL && plugin->capture_error[0] == '\0') {
        snprintf(plugin->capture_error, sizeof plugin->capture_error, "%s", disc.message);
    }
    int failed = 0, passed = 0, skipped = 0;

    cf_add("plugin.exports", check_exports, NULL, NULL, 0);
    cf_add("plugin.abi", check_abi, NULL, NULL, 0);
    cf_add("plugin.abi_negotiation", check_abi_negotiation, NULL, NULL, 0);
    /* Discovery ran in a child; copy its findings into our own memory for the checks. */
    static cf_plugin local;
    local = *plugin;
    int loaded = local.have_record && local.decision == LAM_PLUGIN_LOADED;
    size_t first_plugin_checks = n_checks;
    if (loaded) {
        for (uint32_t i = 0; i < local.n_layers; i++) {
            if (local.layers[i].name[0] != '\0') {
                cf_layer_checks(&local.layers[i]);
            }
        }
        for (uint32_t i = 0; i < local.n_backends; i++) {
            cf_backend_checks(local.backends[i]);
        }
    }

    json_t *jchecks = json_array();
    if (!opt.json) {
        printf("lamina conform %s (seed %llu, backend %s)\n", opt.path,
               (unsigned long long)opt.seed, opt.backend);
        if (disc.outcome == CF_FAIL) {
            printf("  discovery: %s\n", disc.message);
        }
        if (local.have_record) {
            printf("  registers: %s %s\n", local.kind, local.names[0] ? local.names : "-");
        }
    }
    for (size_t i = 0; i < n_checks; i++) {
        cf_check *k = &checks[i];
        int setup = strstr(k->name, ".setup") != NULL;
        if (!matches(&opt, k->name) && !setup) {
            continue;
        }
        check_arg arg = {&opt, &local, k, shared};
        cf_result r;
        /* The allocation sweep may run in a fresh conform (discovery, setup, then the sweep). */
        unsigned limit = strstr(k->name, ".alloc_failure") ? 3 * opt.timeout_s + 10 : opt.timeout_s;
        run_child(check_child, &arg, shared, limit, &r);
        if (setup && k->layer != NULL) {
            cf_layer *l = (cf_layer *)(uintptr_t)k->layer;
            l->have_input = r.have_input; /* a leak found by setup does not stop the rest */
            l->n_inputs = r.n_inputs;
            memcpy(l->inputs, r.inputs, sizeof l->inputs);
            snprintf(l->attr_text, sizeof l->attr_text, "%s", r.attr_text);
            if (!matches(&opt, k->name) && r.outcome != CF_FAIL) {
                continue; /* ran only to serve the selected checks */
            }
        }
        char rep[8800];
        repro(&opt, k->name, rep, sizeof rep);
        if (r.outcome == CF_FAIL) {
            failed++;
        } else if (r.outcome == CF_SKIP) {
            skipped++;
        } else {
            passed++;
        }
        if (opt.json) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(k->name));
            json_object_set_new(o, "status", json_string(outcome_word(r.outcome)));
            json_object_set_new(o, "message", json_string(r.message));
            if (r.outcome == CF_FAIL) {
                json_object_set_new(o, "expected", json_string(r.expected));
                json_object_set_new(o, "found", json_string(r.found));
                json_object_set_new(o, "repro", json_string(rep));
            }
            json_array_append_new(jchecks, o);
            continue;
        }
        const char *word = r.outcome == CF_PASS ? "PASS" : r.outcome == CF_SKIP ? "SKIP" : "FAIL";
        printf("%s %-34s %s%s\n", word, k->name, r.outcome == CF_SKIP ? "skip: " : "", r.message);
        if (r.outcome == CF_FAIL) {
            if (r.expected[0]) {
                printf("       expected: %s\n", r.expected);
            }
            if (r.found[0]) {
                printf("       found:    %s\n", r.found);
            }
            printf("       repro:    %s\n", rep);
        }
    }
    if (!loaded && n_checks == first_plugin_checks) {
        /* nothing else to run: the abi check says why */
    }
    if (opt.json) {
        json_t *root = json_object();
        json_object_set_new(root, "plugin", json_string(opt.path));
        json_object_set_new(root, "seed", json_integer((json_int_t)opt.seed));
        json_object_set_new(root, "backend", json_string(opt.backend));
        json_object_set_new(root, "kind", json_string(local.kind));
        json_object_set_new(root, "names", json_string(local.names));
        if (disc.outcome == CF_FAIL) {
            json_object_set_new(root, "discovery", json_string(disc.message));
        }
        json_object_set_new(root, "checks", jchecks);
        json_t *sum = json_object();
        json_object_set_new(sum, "passed", json_integer(passed));
        json_object_set_new(sum, "failed", json_integer(failed));
        json_object_set_new(sum, "skipped", json_integer(skipped));
        json_object_set_new(root, "summary", sum);
        json_object_set_new(root, "ok", json_boolean(failed == 0));
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text != NULL) {
            printf("%s\n", text);
            free(text);
        }
        json_decref(root);
    } else {
        json_decref(jchecks);
        printf("%d checks: %d passed, %d failed, %d skipped\n", passed + failed + skipped, passed,
               failed, skipped);
    }
    free(checks);
    checks = NULL;
    n_checks = cap_checks = 0;
    munmap(plugin, sizeof *plugin);
    munmap(shared, sizeof *shared);
    return failed ? 1 : 0;
}
