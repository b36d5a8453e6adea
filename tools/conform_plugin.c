/*
 * conform_plugin.c - the plugin-wide checks of `lamina conform`: the exported symbols and
 * dependencies (read from the ELF file), the registry's verdict on the plugin, and the entry's
 * ABI negotiation with host tables of other versions and sizes.
 */
#define _GNU_SOURCE
#include "conform.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The negotiation check's capture of what the entry reports through set_error. */
static char neg_error[1024];

static lam_status neg_set_error_fmt(lam_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static lam_status neg_set_error_fmt(lam_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(neg_error, sizeof neg_error, fmt, ap);
    va_end(ap);
    return status;
}

static lam_status neg_set_error(lam_status status, const char *msg) {
    snprintf(neg_error, sizeof neg_error, "%s", msg != NULL ? msg : "");
    return status;
}

static void neg_log(lam_log_level level, const char *msg) {
    (void)level;
    (void)msg;
}

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

static lam_status neg_register_kernel(lam_plugin *plugin, const lam_kernel_desc *d) {
    (void)plugin;
    (void)d;
    neg_registered++;
    return LAM_OK;
}

static lam_status neg_register_comm(lam_plugin *plugin, const struct lam_comm_desc *d) {
    (void)plugin;
    (void)d;
    neg_registered++;
    return LAM_OK;
}

static void (*neg_get_proc_address(const char *name))(void) {
    (void)name;
    return NULL;
}

static void *neg_alloc(size_t bytes) {
    return malloc(bytes ? bytes : 1);
}

static void neg_free(void *p) {
    free(p);
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
    h.set_error_fmt = neg_set_error_fmt;
    h.set_error = neg_set_error;
    h.log = neg_log;
    h.register_layer = neg_register_layer;
    h.register_backend = neg_register_backend;
    h.register_kernel = neg_register_kernel;
    h.register_comm = neg_register_comm;
    h.get_proc_address = neg_get_proc_address;
    h.alloc = neg_alloc;
    h.free = neg_free;
    memcpy(buf, &h, size < sizeof h ? size : sizeof h);
    neg_registered = 0;
    cf_note(c, "in the entry, offered a host table of ABI %u.%u and %zu bytes",
            LAM_VERSION_MAJOR(abi), LAM_VERSION_MINOR(abi), size);
    lam_status st = entry((const lam_host_api *)(void *)buf, (lam_plugin *)(void *)buf);
    *registered = neg_registered;
    return st;
}

static void check_abi_negotiation(cf_ctx *c) {
    void *h = dlopen(c->plugin->path, RTLD_NOW | RTLD_LOCAL);
    void *sym = h != NULL ? dlsym(h, LAM_PLUGIN_ENTRY_NAME) : NULL;
    if (sym == NULL) {
        cf_fail(c, "cannot find %s in %s", LAM_PLUGIN_ENTRY_NAME, c->plugin->path);
        return;
    }
    lam_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    int reg = 0;
    /* 1. A newer minor with a larger table: a 2.x plugin loads into every 2.y host, y >= x. */
    lam_status st =
        offer(c, entry, LAM_MAKE_VERSION(LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR + 1),
              sizeof(lam_host_api) + 64, &reg);
    if (st != LAM_OK || reg == 0) {
        cf_fail(c, "refuses a newer-minor host (ABI %u.%u with a larger table)",
                LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR + 1);
        cf_expect(c, "LAM_OK and its registrations (minors only append)");
        cf_found(c, "%s, %d registration(s): %s", lam_status_string(st), reg, neg_error);
        return;
    }
    /* 2. Another major: the plugin must refuse before using anything but the frozen fields. */
    neg_error[0] = '\0';
    st =
        offer(c, entry, LAM_MAKE_VERSION(LAM_ABI_VERSION_MAJOR + 1, 0), sizeof(lam_host_api), &reg);
    if (st == LAM_OK || reg > 0) {
        cf_fail(c, "accepts a host of ABI %u.0", LAM_ABI_VERSION_MAJOR + 1);
        cf_expect(c, "an error naming both versions (lam_plugin_check_host), nothing registered");
        cf_found(c, "%s, %d registration(s)", lam_status_string(st), reg);
        return;
    }
    /* 3. A table holding only the frozen header: refused without reading past it. */
    neg_error[0] = '\0';
    st = offer(c, entry, LAM_ABI_VERSION, offsetof(lam_host_api, set_error), &reg);
    if (st == LAM_OK || reg > 0) {
        cf_fail(c, "accepts a host table of %zu bytes", offsetof(lam_host_api, set_error));
        cf_expect(c, "an error: the table is smaller than the plugin needs");
        cf_found(c, "%s, %d registration(s)", lam_status_string(st), reg);
        return;
    }
    cf_pass(c, "accepts ABI %u.%u with a larger table; refuses ABI %u.0 and a %zu-byte table",
            LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR + 1, LAM_ABI_VERSION_MAJOR + 1,
            offsetof(lam_host_api, set_error));
}

void cf_plugin_checks(void) {
    cf_add("plugin.exports", check_exports, NULL, NULL, 0);
    cf_add("plugin.abi", check_abi, NULL, NULL, 0);
    cf_add("plugin.abi_negotiation", check_abi_negotiation, NULL, NULL, 0);
}
