/* The safetensors format, writing: the header built and checked, the file written atomically. */
#define _GNU_SOURCE /* mkostemp (O_CLOEXEC temporaries), sync_file_range */
#include "safetensors.h"
#include "error.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- writing ---- */

static lam_status write_all(int fd, const void *buf, size_t n, off_t at, const char *path) {
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, at);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return lam__error(LAM_ERR_IO, "saving '%s': Write failed, %s", path,
                              w < 0 ? strerror(errno) : "no progress");
        }
        p += w;
        n -= (size_t)w;
        at += (off_t)w;
    }
    return LAM_OK;
}

static lam_status write_oom(const char *path) {
    return lam__error(LAM_ERR_OUT_OF_MEMORY, "saving '%s': Out of memory", path);
}

/* The header JSON with the checksum given, padded with spaces to a multiple of 8 bytes so the
 * data is aligned (as the safetensors library does). NULL: out of memory. */
static char *header_text(json_t *root, json_t *meta, uint32_t crc, size_t *len) {
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", (unsigned)crc);
    if (json_object_set_new_nocheck(meta, LAM__ST_META_CRC, json_string_nocheck(hex)) != 0) {
        return NULL;
    }
    char *text = lam__st_json_dump(root);
    if (text == NULL) {
        return NULL;
    }
    size_t n = strlen(text), padded = (n + 7) & ~(size_t)7;
    char *out = malloc(8 + padded);
    if (out == NULL) {
        free(text);
        return NULL;
    }
    uint64_t le = padded;
    for (int i = 0; i < 8; i++) {
        out[i] = (char)(uint8_t)(le >> (8 * i));
    }
    memcpy(out + 8, text, n);
    memset(out + 8 + n, ' ', padded - n);
    free(text);
    *len = 8 + padded;
    return out;
}

/* Every jansson call's result is checked: a header missing a dim or an entry must never be
 * written as if it were whole. */
static json_t *build_header(const char *path, size_t n, const char *const *names,
                            const lam_shape *const *shapes, size_t n_meta,
                            const char *const *meta_keys, const char *const *meta_values,
                            json_t **meta_out, uint64_t *offsets, lam_status *st) {
    *st = LAM_OK;
    *meta_out = NULL;
    for (size_t i = 0; *st == LAM_OK && i < n_meta; i++) {
        if (!lam__st_utf8_valid(meta_keys[i]) || !lam__st_utf8_valid(meta_values[i])) {
            *st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                             "saving '%s': Invalid metadata, '%s' is not valid UTF-8", path,
                             meta_keys[i]);
        }
    }
    for (size_t i = 0; *st == LAM_OK && i < n; i++) {
        if (!lam__st_utf8_valid(names[i])) {
            *st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                             "saving '%s': Invalid name, '%s' is not valid UTF-8", path, names[i]);
        }
    }
    if (*st != LAM_OK) {
        return NULL;
    }
    json_t *root = json_object(), *meta = json_object();
    if (root == NULL || meta == NULL || json_object_set_nocheck(root, "__metadata__", meta) != 0) {
        *st = write_oom(path);
    }
    for (size_t i = 0; *st == LAM_OK && i < n_meta; i++) {
        if (json_object_set_new_nocheck(meta, meta_keys[i], json_string_nocheck(meta_values[i])) !=
            0) {
            *st = write_oom(path);
        }
    }
    uint64_t pos = 0;
    for (size_t i = 0; *st == LAM_OK && i < n; i++) {
        const lam_shape *s = shapes[i];
        json_t *shape = json_array();
        uint64_t numel = 1;
        bool ok = shape != NULL;
        for (uint32_t d = 0; d < s->ndim && ok; d++) {
            numel *= (uint64_t)s->dims[d];
            ok = json_array_append_new(shape, json_integer((json_int_t)s->dims[d])) == 0;
        }
        offsets[i] = pos;
        uint64_t end = pos + numel * 4;
        pos = end;
        json_t *e = NULL;
        if (ok) {
            /* "o" hands the shape array over, on failure too. */
            e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape, "data_offsets",
                          (json_int_t)offsets[i], (json_int_t)end);
        } else {
            json_decref(shape);
        }
        if (e == NULL || json_object_set_new_nocheck(root, names[i], e) != 0) {
            *st = write_oom(path);
        }
    }
    json_decref(meta); /* root holds it */
    if (*st != LAM_OK) {
        json_decref(root);
        return NULL;
    }
    *meta_out = meta;
    return root;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        return lam__strdup(".");
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

/* The file a save replaces: path itself, or, through symbolic links, the file they point to
 * (which need not exist yet), as editors do. NULL with *err set: errno of the failure. */
static char *resolve_target(const char *path, int *err) {
    char *cur = lam__strdup(path);
    *err = ENOMEM;
    for (int hops = 0; cur != NULL; hops++) {
        struct stat sb;
        if (lstat(cur, &sb) != 0 || !S_ISLNK(sb.st_mode)) {
            return cur; /* a missing file is created; other errors show at the rename */
        }
        if (hops == 40) {
            free(cur);
            *err = ELOOP;
            return NULL;
        }
        size_t cap = (size_t)(sb.st_size > 0 ? sb.st_size : 255) + 1;
        char *link = malloc(cap);
        ssize_t len = link ? readlink(cur, link, cap) : -1;
        if (len < 0 || (size_t)len >= cap) {
            *err = link == NULL ? ENOMEM : len < 0 ? errno : EAGAIN; /* changed under us */
            free(link);
            free(cur);
            return NULL;
        }
        link[len] = '\0';
        char *next = NULL;
        if (link[0] == '/') {
            next = link;
        } else {
            char *dir = dir_of(cur);
            size_t dl = dir ? strlen(dir) : 0;
            next = dir ? malloc(dl + 1 + (size_t)len + 1) : NULL;
            if (next != NULL) {
                memcpy(next, dir, dl);
                next[dl] = '/';
                memcpy(next + dl + 1, link, (size_t)len + 1);
            }
            free(dir);
            free(link);
        }
        free(cur);
        cur = next;
    }
    return NULL;
}

#define TMP_TAG ".lamina-tmp."

/* "<dir>/.<base>.lamina-tmp.<pid>.XXXXXX" for mkostemp. */
static char *temp_template(const char *target) {
    const char *slash = strrchr(target, '/');
    size_t dl = slash ? (size_t)(slash - target) + 1 : 0;
    const char *base = target + dl;
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    size_t cap = dl + 1 + strlen(base) + strlen(TMP_TAG) + strlen(pid) + sizeof ".XXXXXX";
    char *t = malloc(cap);
    if (t != NULL) {
        snprintf(t, cap, "%.*s.%s" TMP_TAG "%s.XXXXXX", (int)dl, target, base, pid);
    }
    return t;
}

/* Removes the temporaries of earlier saves of target whose process is gone (killed during a
 * save): ".<base>.lamina-tmp.<pid>.<6 characters>" with no process <pid> on this machine. A
 * temporary of a live process (this one included: another thread may be saving) is kept. */
static void remove_stale_temps(const char *dir, const char *target) {
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    size_t bl = strlen(base), tl = strlen(TMP_TAG);
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    int dfd = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] != '.' || strncmp(n + 1, base, bl) != 0 || strncmp(n + 1 + bl, TMP_TAG, tl) != 0) {
            continue;
        }
        const char *p = n + 1 + bl + tl;
        char *end;
        errno = 0;
        long pid = strtol(p, &end, 10);
        if (errno != 0 || end == p || pid <= 0 || *end != '.' || strlen(end + 1) != 6 ||
            pid == (long)getpid()) {
            continue;
        }
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            (void)unlinkat(dfd, n, 0);
        }
    }
    closedir(d);
}

/* Bytes of values fetched, checksummed and written at once: small enough to stay in the
 * cache between the three. */
#define CHUNK ((size_t)1 << 20)
/* Written data is handed to the disk every KICK bytes instead of all at the final fsync. */
#define KICK ((uint64_t)8 << 20)

/* Starts writing [from, to) of fd to the disk without waiting (Linux), so the disk works while
 * the rest of the file is produced and the final fsync has little left to wait for. Only a
 * hint: its failure is not an error (fsync reports what matters). */
static void start_writeback(int fd, uint64_t from, uint64_t to) {
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
    (void)sync_file_range(fd, (off_t)from, (off_t)(to - from), SYNC_FILE_RANGE_WRITE);
#else
    (void)fd;
    (void)from;
    (void)to;
#endif
}

/* Writes the tensors' values piece by piece (each fetched into one buffer, checksummed and
 * written from there: no copy of a whole tensor), returning the CRC32C of the data area. */
static lam_status write_body(int fd, const char *path, size_t n, const lam_shape *const *shapes,
                             lam__st_fill_fn fill, void *user, off_t data_at,
                             const uint64_t *offsets, uint32_t *crc) {
    *crc = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += (uint64_t)lam_shape_numel(shapes[i]) * sizeof(float);
    }
    size_t cap = total < CHUNK ? (size_t)(total ? total : 1) : CHUNK;
    float *buf = malloc(cap);
    if (buf == NULL) {
        return write_oom(path);
    }
    /* The header's page is left out of the early writeback: it is written again at the end
     * with the checksum. */
    uint64_t kicked = (uint64_t)sysconf(_SC_PAGESIZE), written = (uint64_t)data_at;
    lam_status st = LAM_OK;
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        size_t numel = (size_t)lam_shape_numel(shapes[i]), step = cap / sizeof *buf;
        for (size_t first = 0; st == LAM_OK && first < numel; first += step) {
            size_t count = numel - first < step ? numel - first : step;
            st = fill(user, i, first, buf, count);
            if (st != LAM_OK) {
                st = lam__error_prefix(st, "saving '%s'", path);
                break;
            }
#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
            for (size_t k = 0; k < count; k++) {
                uint32_t b;
                memcpy(&b, &buf[k], 4);
                b = __builtin_bswap32(b);
                memcpy(&buf[k], &b, 4);
            }
#endif
            size_t bytes = count * sizeof *buf;
            *crc = lam__crc32c(*crc, buf, bytes);
            off_t at = data_at + (off_t)(offsets[i] + first * sizeof *buf);
            st = write_all(fd, buf, bytes, at, path);
            written = (uint64_t)at + bytes;
            if (st == LAM_OK && written >= kicked + KICK) {
                start_writeback(fd, kicked, written);
                kicked = written;
            }
        }
    }
    free(buf);
    return st;
}

/* Writes the whole file into the open temporary fd. */
static lam_status write_file(int fd, const char *path, json_t *root, json_t *meta, size_t n,
                             const lam_shape *const *shapes, lam__st_fill_fn fill, void *user,
                             const uint64_t *offsets, mode_t mode) {
    size_t hlen = 0, hlen2 = 0;
    char *header = header_text(root, meta, 0, &hlen);
    if (header == NULL) {
        return write_oom(path);
    }
    uint32_t crc = 0;
    lam_status st = write_all(fd, header, hlen, 0, path);
    if (st == LAM_OK) {
        st = write_body(fd, path, n, shapes, fill, user, (off_t)hlen, offsets, &crc);
    }
    free(header);
    header = NULL;
    if (st == LAM_OK) {
        /* Same length as before: the checksum is always 8 hex digits. */
        header = header_text(root, meta, crc, &hlen2);
        if (header == NULL || hlen2 != hlen) {
            st = write_oom(path);
        } else {
            st = write_all(fd, header, hlen, 0, path);
        }
    }
    free(header);
    if (st == LAM_OK && fchmod(fd, mode) != 0) {
        st = lam__error(LAM_ERR_IO, "saving '%s': Cannot set the file mode, %s", path,
                        strerror(errno));
    }
    if (st == LAM_OK && fsync(fd) != 0) {
        st = lam__error(LAM_ERR_IO, "saving '%s': fsync failed, %s", path, strerror(errno));
    }
    return st;
}

lam_status lam__st_write(const char *path, size_t n, const char *const *names,
                         const lam_shape *const *shapes, lam__st_fill_fn fill, void *user,
                         size_t n_meta, const char *const *meta_keys,
                         const char *const *meta_values) {
    lam_status st;
    uint64_t *offsets = malloc((n ? n : 1) * sizeof *offsets);
    if (offsets == NULL) {
        return write_oom(path);
    }
    json_t *meta = NULL;
    json_t *root =
        build_header(path, n, names, shapes, n_meta, meta_keys, meta_values, &meta, offsets, &st);
    if (root == NULL) {
        free(offsets);
        return st;
    }
    int err = 0;
    char *target = resolve_target(path, &err);
    char *tmp = target ? temp_template(target) : NULL;
    char *dir = target ? dir_of(target) : NULL;
    if (target == NULL && err != ENOMEM) {
        st = lam__error(LAM_ERR_IO, "saving '%s': Cannot follow the symbolic link, %s", path,
                        strerror(err));
    } else if (tmp == NULL || dir == NULL) {
        st = write_oom(path);
    }
    /* mkostemp makes the file private (0600); a saved model is an ordinary file, and a
     * replaced one keeps its mode. */
    struct stat old;
    mode_t mode = 0644;
    if (st == LAM_OK && stat(target, &old) == 0 && S_ISREG(old.st_mode)) {
        mode = old.st_mode & 07777;
        /* Replacing a file the user made read-only (or may not write) would silently undo
         * that decision; root passes access(), so the mode bits are checked too. */
        if ((mode & 0222) == 0 || faccessat(AT_FDCWD, target, W_OK, AT_EACCESS) != 0) {
            st = lam__error(LAM_ERR_IO,
                            "saving '%s': Permission denied, '%s' is read-only (mode %04o); "
                            "make it writable (chmod u+w) to replace it",
                            path, target, (unsigned)mode);
        }
    }
    int fd = -1;
    if (st == LAM_OK) {
        remove_stale_temps(dir, target);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
            st = lam__error(LAM_ERR_IO, "saving '%s': Cannot create a temporary file in '%s', %s",
                            path, dir, strerror(errno));
        }
    }
    if (st == LAM_OK) {
        st = write_file(fd, path, root, meta, n, shapes, fill, user, offsets, mode);
        if (close(fd) != 0 && st == LAM_OK) {
            st = lam__error(LAM_ERR_IO, "saving '%s': close failed, %s", path, strerror(errno));
        }
        if (st == LAM_OK && rename(tmp, target) != 0) {
            st = lam__error(LAM_ERR_IO, "saving '%s': Cannot replace the file, %s", path,
                            strerror(errno));
        }
        if (st != LAM_OK) {
            unlink(tmp);
        } else {
            /* Makes the rename itself durable; a file system that cannot sync a directory has
             * still replaced the file, so a failure here is not reported. */
            int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
        }
    }
    free(target);
    free(tmp);
    free(dir);
    free(offsets);
    json_decref(root);
    return st;
}
