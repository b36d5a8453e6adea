/* The safetensors format: tensors read and converted to float32 in data order, checksummed. */
#define _GNU_SOURCE /* _SC_PHYS_PAGES, sched_getaffinity */
#include "safetensors.h"
#include "error.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, bits;
    if (exp == 0 && mant == 0) {
        bits = sign;
    } else if (exp == 0) {
        /* Subnormal half: normal as a float once shifted. */
        exp = 127 - 15 + 1;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            exp--;
        }
        bits = sign | (exp << 23) | ((mant & 0x3FFu) << 13);
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Converts count values of a convertible dtype, stored little-endian at p, to float32. */
static void convert(lam__st_dtype dt, const uint8_t *p, float *dst, size_t count) {
    size_t isz = lam__st_dtype_size(dt);
    for (size_t i = 0; i < count; i++, p += isz) {
        uint64_t v = load_le(p, isz);
        switch (dt) {
        case LAM__ST_F32: {
            uint32_t b = (uint32_t)v;
            memcpy(&dst[i], &b, sizeof b);
            break;
        }
        case LAM__ST_F16:
            dst[i] = half_to_float((uint16_t)v);
            break;
        case LAM__ST_BF16: {
            uint32_t b = (uint32_t)v << 16;
            memcpy(&dst[i], &b, sizeof b);
            break;
        }
        case LAM__ST_F64: {
            double d;
            memcpy(&d, &v, sizeof d);
            dst[i] = (float)d;
            break;
        }
        case LAM__ST_I32:
            dst[i] = (float)(int32_t)(uint32_t)v;
            break;
        case LAM__ST_I64:
            dst[i] = (float)(int64_t)v;
            break;
        default: /* LAM__ST_U8: the only other convertible dtype */
            dst[i] = (float)v;
            break;
        }
    }
}

#define CHUNK     ((size_t)1 << 18)
#define MAX_PARTS 4
/* A data area read by several threads is cut into slices of about SLICE bytes (at most
 * MAX_SLICES) that the threads take in turn: a thread that gets less of the CPU (another
 * process on its core) takes fewer, instead of the others waiting for its fixed share. */
#define SLICE      ((uint64_t)8 << 20)
#define MAX_SLICES 64

/* Memory the machine has, in bytes (0 when unknown). */
static uint64_t physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

typedef struct data_pos {
    uint64_t begin;
    size_t index;
} data_pos;

static int by_data(const void *a, const void *b) {
    const data_pos *x = a, *y = b;
    if (x->begin != y->begin) {
        return x->begin < y->begin ? -1 : 1;
    }
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The order the entries' data lies in the file (entries of a list file are by index). */
static size_t *data_order(const lam__st_file *f) {
    size_t n = f->n ? f->n : 1;
    size_t *order = malloc(n * sizeof *order);
    data_pos *pos = malloc(n * sizeof *pos);
    if (order == NULL || pos == NULL) {
        free(order);
        free(pos);
        return NULL;
    }
    for (size_t i = 0; i < f->n; i++) {
        pos[i] = (data_pos){f->entries[i].begin, i};
    }
    qsort(pos, f->n, sizeof *pos, by_data);
    for (size_t i = 0; i < f->n; i++) {
        order[i] = pos[i].index;
    }
    free(pos);
    return order;
}

/* The file behind fd is still the one that was opened, unchanged; else an error. */
static lam_status check_unchanged(const lam__st_source *src) {
    if (src->fd < 0) {
        return LAM_OK; /* a buffer, no file behind it */
    }
    struct stat sb;
    if (fstat(src->fd, &sb) != 0) {
        return lam__error(LAM_ERR_IO, "Cannot stat the file, %s", strerror(errno));
    }
    if ((uint64_t)sb.st_size != src->size || (uint64_t)sb.st_ino != src->ino ||
        (uint64_t)sb.st_dev != src->dev || (int64_t)sb.st_mtim.tv_sec != src->mtime_sec ||
        (int64_t)sb.st_mtim.tv_nsec != src->mtime_nsec) {
        return lam__error(LAM_ERR_IO,
                          "File changed while reading, another process wrote it "
                          "(%llu bytes when opened, %llu now); try again",
                          (unsigned long long)src->size, (unsigned long long)sb.st_size);
    }
    return LAM_OK;
}

/* The slices of the data area: slice s is [lo[s], lo[s + 1]) bytes from its start, its
 * CRC32C crc[s]; `next` is the next slice no thread took yet. */
typedef struct slices {
    uint64_t lo[MAX_SLICES + 1];
    uint32_t crc[MAX_SLICES];
    size_t n;
    atomic_size_t next;
} slices;

/*
 * One reading thread: the slices it takes (the current one [lo, hi) bytes from the data area's
 * start), its own buffers (raw bytes as read, float32 values of a converted dtype; a piece
 * fills at most CHUNK bytes of either, small enough to stay in the cache between the read, the
 * checksum and the sink's copy) and the CRC32C of the current slice. A tensor with a place
 * (dest[i]) skips the buffers it can: float32 data is read straight into it and checksummed
 * there, still in the cache.
 */
typedef struct part {
    const lam__st_file *f;
    const bool *want;
    const lam__st_sink *sink;
    const size_t *order;
    float *const *dest; /* per entry: where the sink placed it (NULL: none), or no array */
    bool check;         /* the metadata has a checksum: every byte is read */
    uint64_t lo, hi;
    uint8_t *raw;
    float *conv;
    slices *sl;
    atomic_bool *stop; /* set by a part that failed: the others stop early */
    uint32_t crc;
    lam_status st;
    char msg[1024]; /* a worker thread's error message, for the calling thread */
} part;

/* Elements of tensor e read at once. */
static size_t piece_elems(const lam__st_entry *e) {
    size_t isz = lam__st_dtype_size(e->dtype);
    return CHUNK / (isz > sizeof(float) ? isz : sizeof(float));
}

/* Reads elements [first, last) of tensor i piece by piece: each piece checksummed, and handed
 * to the sink converted to float32 when the tensor is wanted (or read or converted into its
 * place). */
static lam_status read_range(part *pt, size_t i, uint64_t first, uint64_t last, bool wanted) {
    const lam__st_entry *e = &pt->f->entries[i];
    size_t isz = lam__st_dtype_size(e->dtype), step = piece_elems(e);
    float *dest = wanted && pt->dest != NULL ? pt->dest[i] : NULL;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const bool in_place = dest != NULL && e->dtype == LAM__ST_F32; /* the bytes are the values */
#else
    const bool in_place = false;
#endif
    /* A file in memory (a mapping of it) is checksummed, and converted into a place, where it
     * lies: no copy into the buffer first. */
    const lam__st_source *src = &pt->f->src;
    const bool direct = src->mem != NULL && (!wanted || (dest != NULL && !in_place));
    lam_status st = LAM_OK;
    for (; st == LAM_OK && first < last; first += step) {
        if (atomic_load_explicit(pt->stop, memory_order_relaxed)) {
            return LAM_OK; /* another part failed: its error is the one reported */
        }
        size_t count = last - first < step ? (size_t)(last - first) : step;
        uint64_t at = pt->f->data_at + e->begin + first * isz;
        const uint8_t *bytes;
        if (direct && at <= src->size && count * isz <= src->size - at) {
            bytes = src->mem + at;
        } else {
            uint8_t *into = in_place ? (uint8_t *)(void *)(dest + first) : pt->raw;
            st = lam__st_read_at(src, at, into, count * isz);
            if (st != LAM_OK) {
                break;
            }
            bytes = into;
        }
        pt->crc = lam__crc32c(pt->crc, bytes, count * isz);
        if (!wanted || in_place) {
            continue;
        }
        if (dest != NULL) {
            convert(e->dtype, bytes, dest + first, count);
            continue;
        }
        const float *values = pt->conv;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (e->dtype == LAM__ST_F32) {
            values = (const float *)(const void *)pt->raw; /* malloc'd: aligned for floats */
        } else
#endif
        {
            convert(e->dtype, pt->raw, pt->conv, count);
        }
        st = pt->sink->values(pt->sink->user, i, (size_t)first, values, count);
    }
    return st;
}

/* Reads the slice [pt->lo, pt->hi), tensor by tensor in data order, into pt->crc. */
static lam_status read_slice(part *pt) {
    pt->crc = 0;
    lam_status st = LAM_OK;
    for (size_t k = 0; st == LAM_OK && k < pt->f->n; k++) {
        size_t i = pt->order[k];
        const lam__st_entry *e = &pt->f->entries[i];
        bool wanted = pt->want == NULL || pt->want[i];
        uint64_t lo = e->begin > pt->lo ? e->begin : pt->lo;
        uint64_t hi = e->end < pt->hi ? e->end : pt->hi;
        if (lo >= hi || !(wanted || pt->check)) {
            continue; /* outside the slice, or nothing to check and nothing to read */
        }
        uint64_t isz = lam__st_dtype_size(e->dtype);
        st = read_range(pt, i, (lo - e->begin) / isz, (hi - e->begin) / isz, wanted);
    }
    return st;
}

/* Takes slices until none is left or a part failed. */
static void *part_run(void *arg) {
    part *pt = arg;
    slices *sl = pt->sl;
    pt->st = LAM_OK;
    while (pt->st == LAM_OK && !atomic_load_explicit(pt->stop, memory_order_relaxed)) {
        size_t s = atomic_fetch_add_explicit(&sl->next, 1, memory_order_relaxed);
        if (s >= sl->n) {
            break;
        }
        pt->lo = sl->lo[s];
        pt->hi = sl->lo[s + 1];
        pt->st = read_slice(pt);
        sl->crc[s] = pt->crc;
    }
    if (pt->st != LAM_OK) {
        atomic_store(pt->stop, true);
    }
    return NULL;
}

/* Same as part_run, in a thread of its own: the error message moves with the status. */
static void *part_thread(void *arg) {
    part *pt = arg;
    part_run(pt);
    if (pt->st != LAM_OK) {
        snprintf(pt->msg, sizeof pt->msg, "%s", lam_last_error());
    }
    return NULL;
}

/* Threads a load of `bytes` bytes is split over: one below 4 MiB (a thread costs more than
 * it saves), else one per CPU this process may run on, at most 4 (copying saturates the
 * memory bus beyond that). */
static size_t read_threads(uint64_t bytes) {
    if (bytes < ((uint64_t)4 << 20)) {
        return 1;
    }
    size_t cpus = 1;
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        cpus = (size_t)CPU_COUNT(&set);
    }
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpus = n > 0 ? (size_t)n : 1;
#endif
    return cpus < 1 ? 1 : cpus > MAX_PARTS ? MAX_PARTS : cpus;
}

/* Where slice p of n ends: an equal share of the data area, moved down to an element boundary
 * of the tensor it falls in. */
static uint64_t part_end(const lam__st_file *f, const size_t *order, size_t p, size_t n) {
    if (p + 1 == n) {
        return f->data_size;
    }
    uint64_t at = f->data_size / n * (p + 1);
    for (size_t k = 0; k < f->n; k++) {
        const lam__st_entry *e = &f->entries[order[k]];
        if (e->begin <= at && at < e->end) {
            uint64_t isz = lam__st_dtype_size(e->dtype);
            return e->begin + (at - e->begin) / isz * isz;
        }
    }
    return at;
}

/* Cuts the data area into the slices n_parts threads take: one for one thread, else about
 * SLICE bytes each, at least one per thread and at most MAX_SLICES. */
static void make_slices(const lam__st_file *f, const size_t *order, size_t n_parts, slices *sl) {
    sl->n = 1;
    if (n_parts > 1) {
        uint64_t n = f->data_size / SLICE;
        sl->n = n < n_parts ? n_parts : n > MAX_SLICES ? MAX_SLICES : (size_t)n;
    }
    atomic_init(&sl->next, 0);
    sl->lo[0] = 0;
    for (size_t s = 0; s < sl->n; s++) {
        sl->lo[s + 1] = part_end(f, order, s, sl->n);
        sl->crc[s] = 0;
    }
}

/* Runs parts 1.. in threads of their own and part 0 here (the slices a thread that cannot
 * start would have taken are taken by the others); *crc is then the CRC32C of the whole area.
 * Returns the first part's error, in part order. */
static lam_status run_parts(part *parts, size_t n_parts, slices *sl, uint32_t *crc) {
    pthread_t threads[MAX_PARTS];
    bool started[MAX_PARTS] = {false};
    for (size_t p = 1; p < n_parts; p++) {
        started[p] = pthread_create(&threads[p], NULL, part_thread, &parts[p]) == 0;
    }
    part_run(&parts[0]);
    lam_status st = parts[0].st;
    for (size_t p = 1; p < n_parts; p++) {
        if (started[p]) {
            pthread_join(threads[p], NULL);
            if (st == LAM_OK && parts[p].st != LAM_OK) {
                st = lam__error(parts[p].st, "%s", parts[p].msg);
            }
        }
    }
    *crc = sl->crc[0];
    for (size_t s = 1; s < sl->n; s++) {
        *crc = lam__crc32c_combine(*crc, sl->crc[s], sl->lo[s + 1] - sl->lo[s]);
    }
    return st;
}

/* Checks that the wanted tensors convert to float32 and fit in the machine's memory. */
static lam_status check_wanted(const lam__st_file *f, const bool *want, bool *convert_any) {
    /* The header's claims were checked against the file size; what they ask of memory is
     * checked against the machine before a byte of data is read (a huge sparse file is
     * refused at once, not after reading it). */
    uint64_t need = 0, mem = physical_memory();
    *convert_any = false;
    for (size_t i = 0; i < f->n; i++) {
        const lam__st_entry *e = &f->entries[i];
        if (want != NULL && !want[i]) {
            continue;
        }
        if (!lam__st_dtype_convertible(e->dtype)) {
            return lam__error(LAM_ERR_DTYPE,
                              "tensor '%s': Unsupported dtype, %s does not convert to float32 "
                              "(F32, F16, BF16, F64, I32, I64 and U8 do)",
                              e->name, lam__st_dtype_name(e->dtype));
        }
        if (e->numel > UINT64_MAX / 4 || need + e->numel * 4 < need ||
            (mem > 0 && need + e->numel * 4 > mem) || e->numel * 4 > (uint64_t)SIZE_MAX / 2) {
            return lam__error(LAM_ERR_OUT_OF_MEMORY,
                              "tensor '%s': Too large, the file's tensors need at least %llu bytes "
                              "as float32 and this machine has %llu bytes of memory",
                              e->name, (unsigned long long)(need + e->numel * 4),
                              (unsigned long long)mem);
        }
        need += e->numel * 4;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        *convert_any = *convert_any || (e->dtype != LAM__ST_F32 && e->numel > 0);
#else
        *convert_any = *convert_any || e->numel > 0;
#endif
    }
    return LAM_OK;
}

lam_status lam__st_read_tensors(const lam__st_file *f, const bool *want, const lam__st_sink *sink) {
    const char *crc_text = lam__st_metadata(f, LAM__ST_META_CRC);
    uint32_t want_crc = 0;
    bool convert_any = false;
    lam_status st = crc_text ? lam__st_parse_crc(crc_text, &want_crc) : LAM_OK;
    if (st == LAM_OK) {
        st = check_wanted(f, want, &convert_any);
    }
    if (st != LAM_OK) {
        return st;
    }
    /* Small files get small buffers: a piece never exceeds the largest tensor read. */
    uint64_t largest = 1, bytes = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (crc_text != NULL || want == NULL || want[i]) {
            uint64_t b = f->entries[i].end - f->entries[i].begin;
            largest = b > largest ? b : largest;
            bytes += b;
        }
    }
    size_t raw_cap = largest < CHUNK ? (size_t)largest : CHUNK;
    size_t n_parts = read_threads(bytes);
    size_t *order = data_order(f);
    slices sl;
    if (order != NULL) {
        make_slices(f, order, n_parts, &sl);
    }
    float **dest = sink->place != NULL ? calloc(f->n ? f->n : 1, sizeof *dest) : NULL;
    atomic_bool stop = false;
    part parts[MAX_PARTS];
    memset(parts, 0, sizeof parts);
    st = order != NULL && (sink->place == NULL || dest != NULL) ? LAM_OK : LAM_ERR_OUT_OF_MEMORY;
    for (size_t p = 0; st == LAM_OK && p < n_parts; p++) {
        part *pt = &parts[p];
        *pt = (part){.f = f,
                     .want = want,
                     .sink = sink,
                     .order = order,
                     .dest = dest,
                     .check = crc_text != NULL,
                     .sl = &sl,
                     .stop = &stop};
        pt->raw = malloc(raw_cap);
        pt->conv = convert_any ? malloc(CHUNK) : NULL;
        if (pt->raw == NULL || (convert_any && pt->conv == NULL)) {
            st = LAM_ERR_OUT_OF_MEMORY;
        }
    }
    if (st != LAM_OK) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory, reading the data");
    }
    /* Every destination exists before any data is read: an allocation failure then costs no
     * reading, and the sink only copies (from several threads at once, into disjoint ranges). */
    for (size_t k = 0; st == LAM_OK && k < f->n; k++) {
        if (want == NULL || want[order[k]]) {
            st = sink->begin(sink->user, order[k]);
            if (st == LAM_OK && dest != NULL) {
                dest[order[k]] = sink->place(sink->user, order[k]);
            }
        }
    }
    if (st == LAM_OK) {
        uint32_t crc;
        st = run_parts(parts, n_parts, &sl, &crc);
        if (st == LAM_OK) {
            st = check_unchanged(&f->src);
        }
        if (st == LAM_OK && crc_text != NULL && crc != want_crc) {
            st = lam__error(LAM_ERR_FORMAT,
                            "Checksum mismatch, the data has CRC32C %08x but the metadata says "
                            "%08x (the file is corrupt)",
                            (unsigned)crc, (unsigned)want_crc);
        }
    }
    for (size_t p = 0; p < n_parts; p++) {
        free(parts[p].raw);
        free(parts[p].conv);
    }
    free(order);
    free(dest);
    return st;
}

bool lam__st_same_data(const lam__st_file *f, size_t a, size_t b) {
    const lam__st_entry *x = &f->entries[a], *y = &f->entries[b];
    /* Shapes compared here: this file links without tensor.c (the fuzz target). */
    bool same = x->dtype == y->dtype && x->shape.ndim == y->shape.ndim;
    for (uint32_t i = 0; same && i < x->shape.ndim; i++) {
        same = x->shape.dims[i] == y->shape.dims[i];
    }
    if (!same) {
        return false;
    }
    enum { PART = 64 * 1024 };
    uint8_t *bx = malloc(PART), *by = malloc(PART);
    same = bx != NULL && by != NULL;
    for (uint64_t at = 0, n = x->end - x->begin; same && at < n; at += PART) {
        size_t k = n - at < PART ? (size_t)(n - at) : PART;
        same = lam__st_read_at(&f->src, f->data_at + x->begin + at, bx, k) == LAM_OK &&
               lam__st_read_at(&f->src, f->data_at + y->begin + at, by, k) == LAM_OK &&
               memcmp(bx, by, k) == 0;
    }
    free(bx);
    free(by);
    return same;
}
