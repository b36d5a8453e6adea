/* Saving and loading tensors and parameters (nd.save / nd.load, save_parameters /
 * load_parameters) in safetensors files. The format itself lives in safetensors.c. */
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"
#include "block.h"
#include "error.h"
#include "log.h"
#include "map_load.h"
#include "tensor_dict.h"
#include "param.h"
#include "tensor.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- reading a file: its header validated, then its data read once, front to back ---- */

/* Opens and validates the header; on failure the message is prefixed with the file. The data
 * is read with pread (lam__st_read_tensors), never mapped: a file another process truncates
 * while it is read gives an error, not SIGBUS. */
static lam_status open_file(const char *path, int *fd_out, lam__st_file *f) {
    *fd_out = -1;
    memset(f, 0, sizeof *f);
    if (path == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "loading: Invalid argument, path is NULL");
    }
    /* O_NONBLOCK: a FIFO given by mistake must not hang the open. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        return lam__error(errno == ENOENT ? LAM_ERR_NOT_FOUND : LAM_ERR_IO,
                          "loading '%s': Cannot open the file, %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return lam__error(LAM_ERR_IO, "loading '%s': Cannot stat the file, %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return lam__error(LAM_ERR_IO, "loading '%s': Not a regular file", path);
    }
    lam__st_source src = {.mem = NULL,
                          .fd = fd,
                          .size = (uint64_t)sb.st_size,
                          .dev = (uint64_t)sb.st_dev,
                          .ino = (uint64_t)sb.st_ino,
                          .mtime_sec = (int64_t)sb.st_mtim.tv_sec,
                          .mtime_nsec = (int64_t)sb.st_mtim.tv_nsec};
    lam_status st = lam__st_open(&src, f);
    if (st != LAM_OK) {
        close(fd);
        return lam__error_prefix(st, "loading '%s'", path);
    }
    *fd_out = fd;
    return LAM_OK;
}

static void close_file(int fd, lam__st_file *f) {
    lam__st_file_fini(f);
    if (fd >= 0) {
        close(fd);
    }
}

typedef struct load_ctx {
    lam_ctx *ctx;
    lam_tensor_dict *d;
    const lam__st_file *f;
} load_ctx;

/* The tensor of entry i, uninitialized until its values arrive. */
static lam_status load_begin(void *user, size_t i) {
    load_ctx *lc = user;
    const lam__st_entry *e = &lc->f->entries[i];
    lam_shape shape = e->shape;
    lam_tensor *t = NULL;
    lam_status st = lam__tensor_alloc(lc->ctx, &shape, &t);
    if (st != LAM_OK) {
        return lam__error_prefix(st, "tensor '%s'", e->name);
    }
    lc->d->entries[i].tensor = t;
    lc->d->entries[i].name = lam__strdup(e->name);
    if (lc->d->entries[i].name == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory");
    }
    return LAM_OK;
}

static lam_status load_values(void *user, size_t i, size_t first, const float *values,
                              size_t count) {
    load_ctx *lc = user;
    lam_status st = lam__tensor_write_at(lc->d->entries[i].tensor, first, values, count);
    return st == LAM_OK ? LAM_OK : lam__error_prefix(st, "tensor '%s'", lc->f->entries[i].name);
}

/* Entry i's tensor in host memory (the CPU backend): the file is read straight into it. */
static float *load_place(void *user, size_t i) {
    load_ctx *lc = user;
    return lam__tensor_host_f32(lc->d->entries[i].tensor);
}

/* How load_dict reads a file. */
typedef enum load_mode {
    LOAD_COPY,           /* lam_load */
    LOAD_MAPPED,         /* lam_load_mapped */
    LOAD_MAPPED_VERIFIED /* lam_load_mapped_verified */
} load_mode;

static const char *const load_names[] = {"lam_load", "lam_load_mapped", "lam_load_mapped_verified"};

/* lam_load, and lam_load_mapped(_verified): the float32 tensors over a mapping of the file
 * (map_load.c), the others read as lam_load reads them; verified, every byte of the data area
 * is checksummed where it lies in the mapping and the others are read from it too. */
static lam_status load_dict(const char *path, lam_ctx *ctx, load_mode mode, lam_tensor_dict **out) {
    if (out == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, out is NULL",
                          load_names[mode]);
    }
    *out = NULL;
    int fd;
    lam__st_file f;
    lam_status st = open_file(path, &fd, &f);
    if (st != LAM_OK) {
        return st;
    }
    lam_tensor_dict *d = calloc(1, sizeof *d);
    if (d == NULL || (d->entries = calloc(f.n ? f.n : 1, sizeof *d->entries)) == NULL ||
        (d->meta_keys = calloc(f.n_meta ? f.n_meta : 1, sizeof *d->meta_keys)) == NULL ||
        (d->meta_values = calloc(f.n_meta ? f.n_meta : 1, sizeof *d->meta_values)) == NULL) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "loading '%s': Out of memory", path);
    }
    if (d != NULL && d->entries != NULL) {
        d->n = f.n; /* entries fill in data order; unfilled ones stay NULL for destroy */
    }
    for (size_t i = 0; st == LAM_OK && i < f.n_meta; i++) {
        d->meta_keys[i] = lam__strdup(f.meta_keys[i]);
        d->meta_values[i] = lam__strdup(f.meta_values[i]);
        d->n_meta++;
        if (d->meta_keys[i] == NULL || d->meta_values[i] == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "loading '%s': Out of memory", path);
        }
    }
    if (st == LAM_OK && ctx == NULL) {
        st = lam_ctx_default(&ctx);
    }
    bool *copy = NULL;
    bool read_rest = true;
    lam__file_map *map = NULL;
    if (st == LAM_OK && mode != LOAD_COPY) {
        lam_tensor **mt = calloc(f.n ? f.n : 1, sizeof *mt);
        copy = calloc(f.n ? f.n : 1, sizeof *copy);
        st = mt != NULL && copy != NULL ? lam__map_file(&f, fd, &map)
                                        : lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory");
        if (st == LAM_OK) {
            st = lam__map_tensors(&f, map, ctx, mt, copy);
        }
        bool any = false;
        for (size_t i = 0; st == LAM_OK && i < f.n; i++) {
            any = any || copy[i];
            if (mt[i] != NULL) {
                d->entries[i].tensor = mt[i];
                d->entries[i].name = lam__strdup(f.entries[i].name);
                mt[i] = NULL;
                if (d->entries[i].name == NULL) {
                    st = lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory");
                }
            }
        }
        for (size_t i = 0; mt != NULL && i < f.n; i++) {
            lam_tensor_release(mt[i]); /* those after a failure, not handed to d */
        }
        free(mt);
        /* The tensors that could not be mapped; verified, the checksum too (a file without
         * one is loaded unverified, as lam_load loads it). */
        read_rest =
            any || (mode == LOAD_MAPPED_VERIFIED && lam__st_metadata(&f, LAM__ST_META_CRC) != NULL);
        if (st != LAM_OK) {
            st = lam__error_prefix(st, "loading '%s'", path);
        }
    }
    if (st == LAM_OK && read_rest) {
        /* The same header; verified, its data read from the mapping the tensors are over (the
         * bytes checked are the bytes they hold), the file's identity still checked after. */
        lam__st_file rf = f;
        if (mode == LOAD_MAPPED_VERIFIED && map != NULL) {
            rf.src.mem = lam__map_base(map);
        }
        load_ctx lc = {ctx, d, &rf};
        lam__st_sink sink = {load_begin, load_values, &lc, load_place};
        st = lam__st_read_tensors(&rf, copy, &sink);
        if (st != LAM_OK) {
            st = lam__error_prefix(st, "loading '%s'", path);
        }
    }
    lam__map_release(map); /* ours; the tensors hold theirs */
    free(copy);
    if (d != NULL) {
        d->is_list = f.is_list;
    }
    close_file(fd, &f);
    if (st != LAM_OK) {
        lam_tensor_dict_destroy(d);
        return st;
    }
    *out = d;
    return LAM_OK;
}

lam_status lam_load(const char *path, lam_ctx *ctx, lam_tensor_dict **out) {
    return load_dict(path, ctx, LOAD_COPY, out);
}

lam_status lam_load_mapped(const char *path, lam_ctx *ctx, lam_tensor_dict **out) {
    return load_dict(path, ctx, LOAD_MAPPED, out);
}

lam_status lam_load_mapped_verified(const char *path, lam_ctx *ctx, lam_tensor_dict **out) {
    return load_dict(path, ctx, LOAD_MAPPED_VERIFIED, out);
}

/* ---- saving tensors ---- */

static lam_status fill_from_tensor(void *user, size_t i, size_t first, float *dst, size_t count) {
    lam_tensor *const *tensors = user;
    return lam__tensor_read_at(tensors[i], first, dst, count);
}

static lam_status save_tensors(const char *path, const char *kind, const char *const *names,
                               lam_tensor *const *tensors, size_t n) {
    if (path == NULL || (n > 0 && (names == NULL || tensors == NULL))) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "saving '%s': Invalid argument, NULL %s",
                          path ? path : "(null)",
                          path == NULL ? "path" : (names == NULL ? "names" : "tensors"));
    }
    const lam_shape **shapes = malloc((n ? n : 1) * sizeof *shapes);
    if (shapes == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "saving '%s': Out of memory", path);
    }
    lam_status st = LAM_OK;
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        if (tensors[i] == NULL) {
            st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                            "saving '%s': Invalid argument, tensor %zu is NULL", path, i);
        } else if (names[i] == NULL || names[i][0] == '\0') {
            st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                            "saving '%s': Invalid name, tensor %zu has an empty name", path, i);
        } else if (strcmp(names[i], "__metadata__") == 0) {
            st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                            "saving '%s': Invalid name, '__metadata__' is reserved by the format",
                            path);
        } else {
            shapes[i] = lam_tensor_shape(tensors[i]);
            for (size_t j = 0; j < i; j++) {
                if (strcmp(names[j], names[i]) == 0) {
                    st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                                    "saving '%s': Duplicate name '%s', tensors %zu and %zu", path,
                                    names[i], j, i);
                    break;
                }
            }
        }
    }
    if (st == LAM_OK) {
        const char *mk[1] = {LAM__ST_META_KIND}, *mv[1] = {kind};
        st = lam__st_write(path, n, names, shapes, fill_from_tensor, (void *)tensors, 1, mk, mv);
    }
    free(shapes);
    return st;
}

lam_status lam_save_list(const char *path, lam_tensor *const *tensors, size_t n) {
    if (n > 0 && tensors == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "saving '%s': Invalid argument, NULL tensors",
                          path ? path : "(null)");
    }
    char **names = calloc(n ? n : 1, sizeof *names);
    lam_status st = names ? LAM_OK : lam__error(LAM_ERR_OUT_OF_MEMORY, "saving: Out of memory");
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        names[i] = malloc(24);
        if (names[i] == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "saving: Out of memory");
        } else {
            snprintf(names[i], 24, "%zu", i);
        }
    }
    if (st == LAM_OK) {
        st = save_tensors(path, "list", (const char *const *)names, tensors, n);
    }
    for (size_t i = 0; names != NULL && i < n; i++) {
        free(names[i]);
    }
    free(names);
    return st;
}

lam_status lam_save_dict(const char *path, const char *const *names, lam_tensor *const *tensors,
                         size_t n) {
    return save_tensors(path, "dict", names, tensors, n);
}

/* ---- parameters ---- */

/* Every structural key of a block tree with its parameter, shared ones under each key that
 * reaches them, in lam_block_collect_params order (own parameters, then children). */
typedef struct key_param {
    char *key;
    lam_param *param;
    size_t first; /* index of the first key reaching the same parameter */
} key_param;

typedef struct key_list {
    key_param *items;
    size_t n, cap;
} key_list;

static void key_list_fini(key_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static lam_status key_list_add(key_list *l, const char *key, lam_param *p) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        key_param *items = realloc(l->items, cap * sizeof *items);
        if (items == NULL) {
            return lam__error(LAM_ERR_OUT_OF_MEMORY, "parameters: Out of memory");
        }
        l->items = items;
        l->cap = cap;
    }
    char *k = lam__strdup(key);
    if (k == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "parameters: Out of memory");
    }
    size_t first = l->n;
    for (size_t i = 0; i < l->n; i++) {
        if (l->items[i].param == p) {
            first = l->items[i].first;
            break;
        }
    }
    l->items[l->n] = (key_param){k, p, first};
    l->n++;
    return LAM_OK;
}

static lam_status walk(lam_block *b, const char *prefix, key_list *l, int depth) {
    if (depth > 256) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Nesting too deep", b->name);
    }
    lam__strbuf key = {0};
    lam_status st = LAM_OK;
    for (size_t i = 0; st == LAM_OK && i < b->n_params; i++) {
        key.len = 0;
        st = lam__strbuf_printf(&key, "%s%s", prefix, b->params[i].local)
                 ? key_list_add(l, key.data, b->params[i].param)
                 : lam__error(LAM_ERR_OUT_OF_MEMORY, "parameters: Out of memory");
    }
    for (size_t i = 0; st == LAM_OK && i < b->n_children; i++) {
        key.len = 0;
        st = lam__strbuf_printf(&key, "%s%s.", prefix, b->children[i].name)
                 ? walk(b->children[i].block, key.data, l, depth + 1)
                 : lam__error(LAM_ERR_OUT_OF_MEMORY, "parameters: Out of memory");
    }
    lam__strbuf_fini(&key);
    return st;
}

static lam_status fill_from_param(void *user, size_t i, size_t first, float *dst, size_t count) {
    lam_param *const *params = user;
    return lam__tensor_read_at(params[i]->data, first, dst, count);
}

lam_status lam_block_save_parameters(lam_block *b, const char *path) {
    if (b == NULL || path == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_block_save_parameters: Invalid argument, NULL %s",
                          b == NULL ? "block" : "path");
    }
    key_list l = {0};
    lam_status st = walk(b, "", &l, 0);
    const char **names = calloc(l.n ? l.n : 1, sizeof *names);
    const lam_shape **shapes = calloc(l.n ? l.n : 1, sizeof *shapes);
    lam_param **params = calloc(l.n ? l.n : 1, sizeof *params);
    json_t *aliases = json_object();
    if (st == LAM_OK && (names == NULL || shapes == NULL || params == NULL || aliases == NULL)) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "saving '%s': Out of memory", path);
    }
    size_t n = 0;
    for (size_t i = 0; st == LAM_OK && i < l.n; i++) {
        const key_param *kp = &l.items[i];
        lam_param *p = kp->param;
        if (kp->first != i) {
            const char *target = l.items[kp->first].key;
            if (!lam__st_utf8_valid(kp->key) || !lam__st_utf8_valid(target)) {
                st = lam__error(LAM_ERR_INVALID_ARGUMENT,
                                "saving '%s': Invalid name, key '%s' is not valid UTF-8", path,
                                kp->key);
            } else if (json_object_set_new_nocheck(aliases, kp->key, json_string_nocheck(target)) !=
                       0) {
                st = lam__error(LAM_ERR_OUT_OF_MEMORY, "saving '%s': Out of memory", path);
            }
            continue;
        }
        if (p->data == NULL) {
            st = lam__error(LAM_ERR_STATE, "saving '%s': %s (%s): Not initialized, %s", path,
                            kp->key, p->name,
                            p->deferred ? "its shape is not known yet; run a forward pass first"
                                        : "call lam_block_initialize() (or load parameters) "
                                          "first");
            break;
        }
        names[n] = kp->key;
        shapes[n] = lam_tensor_shape(p->data);
        params[n] = p;
        n++;
    }
    char *alias_text = NULL;
    if (st == LAM_OK && json_object_size(aliases) > 0 &&
        (alias_text = lam__st_json_dump(aliases)) == NULL) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "saving '%s': Out of memory", path);
    }
    if (st == LAM_OK) {
        const char *mk[2] = {LAM__ST_META_KIND, LAM__ST_META_ALIASES};
        const char *mv[2] = {"parameters", alias_text};
        st = lam__st_write(path, n, names, shapes, fill_from_param, params, alias_text ? 2 : 1, mk,
                           mv);
    }
    free(alias_text);
    json_decref(aliases);
    free(names);
    free(shapes);
    free(params);
    key_list_fini(&l);
    return st;
}

/* ---- loading parameters: check everything, stage everything, then commit ---- */

typedef struct slot {
    lam_param *param;
    const char *key; /* first model key reaching the parameter */
    long src;        /* file entry that fills it, -1: none */
    const char *src_key;
    long next; /* next slot filled by the same entry, -1: none */
    lam__param_staged staged;
} slot;

typedef struct problems {
    lam__strbuf text[3]; /* missing, unexpected, mismatches */
    size_t count, shown;
    bool shape, dtype;
} problems;

static void problem(problems *pr, int group, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(problems *pr, int group, const char *fmt, ...) {
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* The message holds about 2 KB; past that the count says how many more there are. */
    size_t used = pr->text[0].len + pr->text[1].len + pr->text[2].len;
    if (used < 1600) {
        lam__strbuf_printf(&pr->text[group], "%s%s", pr->text[group].len ? "; " : "", line);
        pr->shown++;
    }
    pr->count++;
}

static lam_status report(const char *path, problems *pr) {
    lam__strbuf sb = {0};
    for (int g = 0; g < 3; g++) {
        if (pr->text[g].len > 0) {
            lam__strbuf_printf(&sb, "%s%s", sb.len ? "; " : "", pr->text[g].data);
        }
    }
    if (pr->shown < pr->count) {
        lam__strbuf_printf(&sb, "; and %zu more", pr->count - pr->shown);
    }
    lam_status st = pr->shape ? LAM_ERR_SHAPE : pr->dtype ? LAM_ERR_DTYPE : LAM_ERR_NOT_FOUND;
    if (pr->count == 1) {
        lam__error(st, "loading '%s': %s", path, sb.data ? sb.data : "");
    } else {
        lam__error(st, "loading '%s': %zu problems: %s", path, pr->count, sb.data ? sb.data : "");
    }
    lam__strbuf_fini(&sb);
    return st;
}

/* The file's shape fits the model's, whose unknown dims take any size. */
static bool shape_fits(const lam_shape *model, const lam_shape *file) {
    if (model->ndim != file->ndim) {
        return false;
    }
    for (uint32_t i = 0; i < model->ndim; i++) {
        if (model->dims[i] >= 0 && model->dims[i] != file->dims[i]) {
            return false;
        }
    }
    return true;
}

/* Matches every model key to a file tensor (directly or through an alias) and collects every
 * problem the options do not relax. */
static void match(const char *path, const lam__st_file *f, const lam__st_alias *aliases,
                  size_t n_aliases, const key_list *keys, slot *slots, size_t *n_slots,
                  const lam_load_options *o, problems *pr, bool *used, bool *alias_used) {
    size_t ns = 0;
    for (size_t i = 0; i < keys->n; i++) {
        const key_param *kp = &keys->items[i];
        size_t s = ns;
        for (size_t j = 0; j < ns; j++) {
            if (slots[j].param == kp->param) {
                s = j;
                break;
            }
        }
        if (s == ns) {
            slots[ns++] = (slot){kp->param, kp->key, -1, NULL, -1, {0}};
        }
        long idx = lam__st_find(f, kp->key);
        for (size_t a = 0; idx < 0 && a < n_aliases; a++) {
            if (strcmp(aliases[a].key, kp->key) == 0) {
                idx = (long)aliases[a].target;
                alias_used[a] = true;
            }
        }
        if (idx < 0) {
            continue;
        }
        used[idx] = true;
        if (slots[s].src < 0) {
            slots[s].src = idx;
            slots[s].src_key = kp->key;
        } else if (slots[s].src != idx &&
                   !lam__st_same_data(f, (size_t)slots[s].src, (size_t)idx)) {
            lam__log(LAM_LOG_WARN,
                     "loading '%s': %s and %s are one shared parameter in the model but differ "
                     "in the file; %s is used",
                     path, slots[s].src_key, kp->key, slots[s].src_key);
        }
    }
    *n_slots = ns;
    for (size_t s = 0; s < ns; s++) {
        if (slots[s].src < 0 && !o->allow_missing) {
            problem(pr, 0, "missing %s (allow_missing skips it)", slots[s].key);
        }
    }
    for (size_t i = 0; i < f->n && !o->ignore_extra; i++) {
        if (!used[i]) {
            problem(pr, 1, "unexpected %s (ignore_extra skips it)", f->entries[i].name);
        }
    }
    for (size_t a = 0; a < n_aliases && !o->ignore_extra; a++) {
        if (!alias_used[a]) {
            problem(pr, 1, "unexpected %s (alias of %s; ignore_extra skips it)", aliases[a].key,
                    f->entries[aliases[a].target].name);
        }
    }
    for (size_t s = 0; s < ns; s++) {
        if (slots[s].src < 0) {
            continue;
        }
        const lam__st_entry *e = &f->entries[slots[s].src];
        char b1[200], b2[200];
        if (!lam__st_dtype_convertible(e->dtype)) {
            pr->dtype = true;
            problem(pr, 2,
                    "%s: Dtype mismatch, file has %s, model expects float32 (F32, F16, BF16, F64, "
                    "I32, I64 or U8 convert)",
                    slots[s].src_key, lam__st_dtype_name(e->dtype));
        } else if (!shape_fits(&slots[s].param->shape, &e->shape)) {
            pr->shape = true;
            problem(pr, 2, "%s: Shape mismatch, file has %s, model expects %s", slots[s].src_key,
                    lam_shape_format(&e->shape, b1, sizeof b1),
                    lam_shape_format(&slots[s].param->shape, b2, sizeof b2));
        }
    }
}

/* Where a parameter's data goes: the options' context, else where it lives, else where its
 * deferred initialization was asked for, else the default context. */
static lam_status target_ctx(const lam_param *p, const lam_load_options *o, lam_ctx **ctx) {
    *ctx = o->ctx;
    if (*ctx == NULL && p->data != NULL) {
        *ctx = lam_tensor_ctx(p->data);
    }
    if (*ctx == NULL && p->deferred) {
        *ctx = p->deferred_ctx;
    }
    return *ctx ? LAM_OK : lam_ctx_default(ctx);
}

typedef struct stage_ctx {
    const char *path;
    const lam__st_file *f;
    slot *slots;
    const long *first; /* per entry: first slot it fills, -1: none */
    const lam_load_options *o;
} stage_ctx;

/* Stages a tensor for every parameter entry i fills; nothing changes yet. */
static lam_status stage_begin(void *user, size_t i) {
    stage_ctx *sc = user;
    const lam__st_entry *e = &sc->f->entries[i];
    for (long k = sc->first[i]; k >= 0; k = sc->slots[k].next) {
        slot *s = &sc->slots[k];
        lam_ctx *ctx;
        lam_status st = target_ctx(s->param, sc->o, &ctx);
        if (st == LAM_OK) {
            st = lam__param_stage(s->param, ctx, &e->shape, NULL, (size_t)e->numel, &s->staged);
        }
        if (st != LAM_OK) {
            return lam__error_prefix(st, "%s", s->src_key);
        }
    }
    return LAM_OK;
}

/* Copies a piece of entry i's values into every staged parameter it fills. */
static lam_status stage_values(void *user, size_t i, size_t first, const float *values,
                               size_t count) {
    stage_ctx *sc = user;
    for (long k = sc->first[i]; k >= 0; k = sc->slots[k].next) {
        slot *s = &sc->slots[k];
        lam_status st = lam__tensor_write_at(s->staged.data, first, values, count);
        if (st != LAM_OK) {
            return lam__error_prefix(st, "%s", s->src_key);
        }
        if (s->staged.const_values != NULL) {
            memcpy(s->staged.const_values + first, values, count * sizeof *values);
        }
    }
    return LAM_OK;
}

/* The staged tensor of the one parameter entry i fills, when its memory is host memory: the
 * file is read straight into it. An entry filling several parameters (shared in the model,
 * separate in the file) or a constant's values go through stage_values. */
static float *stage_place(void *user, size_t i) {
    stage_ctx *sc = user;
    long k = sc->first[i];
    if (k < 0 || sc->slots[k].next >= 0 || sc->slots[k].staged.const_values != NULL) {
        return NULL;
    }
    return lam__tensor_host_f32(sc->slots[k].staged.data);
}

/* options.mapped: each parameter that is the only one its entry fills (and not a constant)
 * is staged with a tensor over the mapping of the file when it can be wrapped. */
static lam_status stage_mapped(const lam__st_file *f, lam__file_map *map, slot *slots,
                               const long *first, const lam_load_options *o, bool *want) {
    lam_status st = LAM_OK;
    for (size_t i = 0; st == LAM_OK && map != NULL && i < f->n; i++) {
        long k = first[i];
        lam_ctx *ctx;
        lam_tensor *t = NULL;
        if (k < 0 || slots[k].next >= 0 || slots[k].param->const_values != NULL) {
            continue;
        }
        st = target_ctx(slots[k].param, o, &ctx);
        if (st == LAM_OK) {
            st = lam__map_tensor(f, map, i, ctx, &t);
        }
        if (st == LAM_OK && t != NULL) {
            st = lam__param_stage_tensor(slots[k].param, t, &slots[k].staged);
            want[i] = false; /* only checksummed */
        }
        if (st != LAM_OK) {
            st = lam__error_prefix(st, "%s", slots[k].src_key);
        }
    }
    return st;
}

/* Stages every wanted entry's parameters and reads their values (and the checksum): from the
 * file, or with options.mapped from a mapping of it, whose tensors the mappable parameters
 * take (stage_mapped). */
static lam_status read_staged(const char *path, const lam__st_file *f, int fd, slot *slots,
                              const long *first, const lam_load_options *o, bool *want) {
    lam__file_map *map = NULL;
    lam__st_file rf = *f;
    lam_status st = o->mapped ? lam__map_file(f, fd, &map) : LAM_OK;
    if (st == LAM_OK && map != NULL) {
        st = stage_mapped(f, map, slots, first, o, want);
        rf.src.mem = lam__map_base(map); /* the bytes checked are the bytes mapped */
    }
    if (st == LAM_OK) {
        stage_ctx sc = {path, &rf, slots, first, o};
        lam__st_sink sink = {stage_begin, stage_values, &sc, stage_place};
        st = lam__st_read_tensors(&rf, want, &sink);
    }
    lam__map_release(map); /* ours; the staged tensors hold theirs */
    return st == LAM_OK ? LAM_OK : lam__error_prefix(st, "loading '%s'", path);
}

lam_status lam_block_load_parameters(lam_block *b, const char *path,
                                     const lam_load_options *options) {
    if (b == NULL || path == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_block_load_parameters: Invalid argument, NULL %s",
                          b == NULL ? "block" : "path");
    }
    lam_load_options o = LAM_LOAD_OPTIONS_INIT;
    if (options != NULL) {
        /* Only the fields the caller's struct has. */
        size_t n = options->struct_size < sizeof o ? options->struct_size : sizeof o;
        memcpy(&o, options, n);
        o.struct_size = (uint32_t)sizeof o;
    }
    int fd;
    lam__st_file f;
    lam_status st = open_file(path, &fd, &f);
    if (st != LAM_OK) {
        return st;
    }
    lam__st_alias *aliases = NULL;
    size_t n_aliases = 0;
    st = lam__st_aliases(&f, &aliases, &n_aliases);
    if (st != LAM_OK) {
        st = lam__error_prefix(st, "loading '%s'", path);
    }
    key_list keys = {0};
    if (st == LAM_OK) {
        st = walk(b, "", &keys, 0);
    }
    slot *slots = calloc(keys.n ? keys.n : 1, sizeof *slots);
    bool *used = calloc(f.n ? f.n : 1, sizeof *used);
    bool *alias_used = calloc(n_aliases ? n_aliases : 1, sizeof *alias_used);
    if (st == LAM_OK && (slots == NULL || used == NULL || alias_used == NULL)) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "loading '%s': Out of memory", path);
    }
    size_t ns = 0;
    problems pr = {0};
    if (st == LAM_OK) {
        match(path, &f, aliases, n_aliases, &keys, slots, &ns, &o, &pr, used, alias_used);
        if (pr.count > 0) {
            st = report(path, &pr);
        }
    }
    /* Everything is read and staged (and the checksum verified) before anything changes;
     * committing cannot fail, so a failed load leaves the model as it was. */
    long *first = st == LAM_OK ? malloc((f.n ? f.n : 1) * sizeof *first) : NULL;
    if (st == LAM_OK && first == NULL) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "loading '%s': Out of memory", path);
    }
    if (st == LAM_OK) {
        for (size_t i = 0; i < f.n; i++) {
            first[i] = -1;
            used[i] = false;
        }
        for (size_t s = ns; s-- > 0;) {
            if (slots[s].src >= 0) {
                slots[s].next = first[slots[s].src];
                first[slots[s].src] = (long)s;
                used[slots[s].src] = true;
            }
        }
    }
    if (st == LAM_OK) {
        st = read_staged(path, &f, fd, slots, first, &o, used);
    }
    for (size_t s = 0; st == LAM_OK && s < ns; s++) {
        if (slots[s].src >= 0) {
            lam__param_commit(slots[s].param, &slots[s].staged);
        }
    }
    for (size_t s = 0; s < ns; s++) {
        lam__param_staged_fini(&slots[s].staged);
    }
    free(first);
    for (int g = 0; g < 3; g++) {
        lam__strbuf_fini(&pr.text[g]);
    }
    free(slots);
    free(used);
    free(alias_used);
    key_list_fini(&keys);
    lam__st_aliases_free(aliases, n_aliases);
    close_file(fd, &f);
    return st;
}
