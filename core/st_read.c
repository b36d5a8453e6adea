/* The safetensors format: tensors read and converted to float32 in data order, checksummed. */
#define _GNU_SOURCE /* _SC_PHYS_PAGES */
#include "safetensors.h"
#include "error.h"

#include <errno.h>
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

#define CHUNK ((size_t)1 << 20)

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
    if (src->mem != NULL) {
        return LAM_OK;
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

/* Reads tensor e into dst (NULL: only for the checksum) through the scratch buffer. */
static lam_status read_entry(const lam__st_file *f, const lam__st_entry *e, float *dst,
                             uint8_t *scratch, uint32_t *crc) {
    uint64_t at = f->data_at + e->begin, bytes = e->end - e->begin;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (dst != NULL && e->dtype == LAM__ST_F32) {
        /* Straight into the destination: no conversion needed. */
        lam_status st = lam__st_read_at(&f->src, at, dst, (size_t)bytes);
        if (st == LAM_OK) {
            *crc = lam__crc32c(*crc, dst, (size_t)bytes);
        }
        return st;
    }
#endif
    size_t isz = lam__st_dtype_size(e->dtype), done = 0;
    while (bytes > 0) {
        size_t n = bytes < CHUNK ? (size_t)bytes : CHUNK; /* CHUNK is a multiple of isz */
        lam_status st = lam__st_read_at(&f->src, at, scratch, n);
        if (st != LAM_OK) {
            return st;
        }
        *crc = lam__crc32c(*crc, scratch, n);
        if (dst != NULL) {
            convert(e->dtype, scratch, dst + done, n / isz);
        }
        done += n / isz;
        at += n;
        bytes -= n;
    }
    return LAM_OK;
}

lam_status lam__st_read_tensors(const lam__st_file *f, const bool *want, lam__st_tensor_fn fn,
                                void *user) {
    const char *crc_text = lam__st_metadata(f, LAM__ST_META_CRC);
    uint32_t want_crc = 0, crc = 0;
    lam_status st = crc_text ? lam__st_parse_crc(crc_text, &want_crc) : LAM_OK;
    /* The header's claims were checked against the file size; what they ask of memory is
     * checked against the machine before a byte of data is read (a huge sparse file is
     * refused at once, not after reading it). */
    uint64_t need = 0, mem = physical_memory();
    for (size_t i = 0; st == LAM_OK && i < f->n; i++) {
        const lam__st_entry *e = &f->entries[i];
        if (want != NULL && !want[i]) {
            continue;
        }
        if (!lam__st_dtype_convertible(e->dtype)) {
            st = lam__error(LAM_ERR_DTYPE,
                            "tensor '%s': Unsupported dtype, %s does not convert to float32 "
                            "(F32, F16, BF16, F64, I32, I64 and U8 do)",
                            e->name, lam__st_dtype_name(e->dtype));
        } else if (e->numel > UINT64_MAX / 4 || need + e->numel * 4 < need ||
                   (mem > 0 && need + e->numel * 4 > mem) ||
                   e->numel * 4 > (uint64_t)SIZE_MAX / 2) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY,
                            "tensor '%s': Too large, the file's tensors need at least %llu bytes "
                            "as float32 and this machine has %llu bytes of memory",
                            e->name, (unsigned long long)(need + e->numel * 4),
                            (unsigned long long)mem);
        }
        need += e->numel * 4;
    }
    if (st != LAM_OK) {
        return st;
    }
    size_t *order = data_order(f);
    uint8_t *scratch = malloc(CHUNK);
    if (order == NULL || scratch == NULL) {
        free(order);
        free(scratch);
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory, reading the data");
    }
    for (size_t k = 0; st == LAM_OK && k < f->n; k++) {
        size_t i = order[k];
        const lam__st_entry *e = &f->entries[i];
        bool wanted = want == NULL || want[i];
        if (!wanted && crc_text == NULL) {
            continue; /* nothing to check, nothing to read */
        }
        float *dst = NULL;
        if (wanted && (dst = malloc((size_t)(e->numel ? e->numel : 1) * sizeof *dst)) == NULL) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "tensor '%s': Out of memory, %llu elements",
                            e->name, (unsigned long long)e->numel);
            break;
        }
        st = read_entry(f, e, dst, scratch, &crc);
        if (st == LAM_OK && wanted) {
            st = fn(user, i, dst, (size_t)e->numel);
        }
        free(dst);
    }
    free(order);
    free(scratch);
    if (st == LAM_OK) {
        st = check_unchanged(&f->src);
    }
    if (st == LAM_OK && crc_text != NULL && crc != want_crc) {
        st = lam__error(LAM_ERR_FORMAT,
                        "Checksum mismatch, the data has CRC32C %08x but the metadata says "
                        "%08x (the file is corrupt)",
                        (unsigned)crc, (unsigned)want_crc);
    }
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
