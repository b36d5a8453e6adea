/*
 * Plugin discovery: walks the plugin path and the built-in directory, turns each entry into
 * candidate files (in search order, shadowing by base name), and hands each readable regular
 * file to the registry to load; everything else gets a report row saying what it is.
 */
#define _GNU_SOURCE
#include "registry_scan.h"
#include "error.h"
#include "log.h"
#include "registry.h"
#include "util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_plugin_file_name(const char *name) {
    size_t n = strlen(name);
    return strncmp(name, "lamina_", 7) == 0 && n > 10 && strcmp(name + n - 3, ".so") == 0;
}

/* Candidate file list, in search order, for shadowing by base name; with each candidate's
 * resolved path (NULL when realpath failed), resolved once. */
typedef struct cand_list {
    char **paths;
    char **reals;
    size_t n;
} cand_list;

/* A row for a candidate that is not loaded because it is no plugin file at all. */
static void skip_row(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void skip_row(const char *path, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lam__registry_skip(path, LAM_REASON_NOT_A_FILE, msg);
}

static const char *file_kind(mode_t mode) {
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
                            : "not a regular file";
}

/*
 * Only a readable regular file reaches dlopen: dlopen of a FIFO blocks for ever, of a device
 * may act on it. Everything else gets a row saying what it is. (A file swapped between this
 * check and dlopen needs write access to the plugin directory, which already means code
 * execution.)
 */
static bool loadable_file(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        struct stat lst;
        if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
            skip_row(path, "a dangling symbolic link (its target: %s)", strerror(errno));
        } else {
            skip_row(path, "cannot be examined: %s", strerror(errno));
        }
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        skip_row(path, "%s, not a regular file", file_kind(st.st_mode));
        return false;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        skip_row(path, "cannot be read: %s", strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

static void consider(const lam_host_api *host, cand_list *seen, const char *path) {
    if (!loadable_file(path)) {
        return;
    }
    /* The same file reached twice (a directory listed twice, or a link to it) is one
     * candidate, not a shadowed one. */
    char real[PATH_MAX];
    const bool resolved = realpath(path, real) != NULL;
    if (resolved) {
        for (size_t i = 0; i < seen->n; i++) {
            if (seen->reals[i] != NULL && strcmp(seen->reals[i], real) == 0) {
                return;
            }
        }
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < seen->n; i++) {
        const char *ob = strrchr(seen->paths[i], '/');
        ob = ob ? ob + 1 : seen->paths[i];
        if (strcmp(ob, base) == 0) {
            char msg[1200];
            snprintf(msg, sizeof msg, "shadowed by %s earlier in the search path", seen->paths[i]);
            lam__registry_skip(path, LAM_REASON_SHADOWED, msg);
            return;
        }
    }
    char **arr = realloc(seen->paths, (seen->n + 1) * sizeof *arr);
    if (arr == NULL) {
        return;
    }
    seen->paths = arr;
    char **reals = realloc(seen->reals, (seen->n + 1) * sizeof *reals);
    if (reals == NULL) {
        return;
    }
    seen->reals = reals;
    arr[seen->n] = lam__strdup(path);
    if (arr[seen->n] == NULL) {
        return;
    }
    reals[seen->n] = resolved ? lam__strdup(real) : NULL; /* NULL: compared with nothing */
    seen->n++;
    lam__registry_load_one(host, path);
}

static void scan_entry(const lam_host_api *host, cand_list *seen, const char *entry,
                       bool from_path) {
    struct stat stt;
    if (entry[0] == '\0') {
        return;
    }
    if (stat(entry, &stt) != 0) {
        struct stat lst;
        if (lstat(entry, &lst) == 0) {
            consider(host, seen, entry); /* a dangling link: its row says so */
        } else if (from_path) {
            skip_row(entry, "cannot be examined: %s", strerror(errno));
        } else {
            lam__log(LAM_LOG_DEBUG, "plugin path: %s does not exist, skipped", entry);
        }
        return;
    }
    if (!S_ISDIR(stt.st_mode)) {
        /* A file named without a directory is that file, not a name for dlopen to look up in
         * the library search path. */
        if (strchr(entry, '/') == NULL) {
            lam__strbuf rel = {0};
            if (lam__strbuf_printf(&rel, "./%s", entry)) {
                consider(host, seen, rel.data);
            }
            lam__strbuf_fini(&rel);
            return;
        }
        consider(host, seen, entry);
        return;
    }
    DIR *dir = opendir(entry);
    if (dir == NULL) {
        skip_row(entry, "a directory that cannot be opened: %s", strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (!is_plugin_file_name(de->d_name)) {
            continue;
        }
        char **arr = realloc(names, (n + 1) * sizeof *arr);
        if (arr == NULL) {
            break;
        }
        names = arr;
        names[n] = lam__strdup(de->d_name);
        if (names[n] != NULL) {
            n++;
        }
    }
    closedir(dir);
    if (n > 0) {
        qsort(names, n, sizeof *names, cmp_str);
    }
    for (size_t i = 0; i < n; i++) {
        lam__strbuf full = {0};
        if (lam__strbuf_printf(&full, "%s/%s", entry, names[i])) {
            consider(host, seen, full.data);
        }
        lam__strbuf_fini(&full);
        free(names[i]);
    }
    free(names);
}

const char *lam_builtin_plugin_dir(void) {
    static char dir[4096];
    if (dir[0] == '\0') {
        Dl_info info;
        void *self = (void *)(uintptr_t)&lam_builtin_plugin_dir;
        if (dladdr(self, &info) != 0 && info.dli_fname != NULL) {
            const char *slash = strrchr(info.dli_fname, '/');
            int len = slash ? (int)(slash - info.dli_fname) : 0;
            if (len > 0 && len < (int)sizeof dir - 32) {
                snprintf(dir, sizeof dir, "%.*s/lamina/plugins", len, info.dli_fname);
            } else {
                snprintf(dir, sizeof dir, "lamina/plugins");
            }
        }
    }
    return dir;
}

lam_status lam__registry_load(const lam_host_api *host, const char *plugin_path,
                              bool skip_builtin) {
    cand_list seen = {0};
    if (plugin_path != NULL) {
        char *copy = lam__strdup(plugin_path);
        if (copy == NULL) {
            return lam__error(LAM_ERR_OUT_OF_MEMORY, "plugin registry: Out of memory");
        }
        char *save = NULL;
        for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
            scan_entry(host, &seen, tok, true);
        }
        free(copy);
    }
    if (!skip_builtin) {
        scan_entry(host, &seen, lam_builtin_plugin_dir(), false);
    }
    for (size_t i = 0; i < seen.n; i++) {
        free(seen.paths[i]);
        free(seen.reals[i]);
    }
    free(seen.paths);
    free(seen.reals);
    return LAM_OK;
}
