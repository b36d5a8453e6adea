/*
 * ser_util.h - helpers shared by the serialization tests: checked calls, exact error checks,
 * a private temporary directory per test, raw file access and hand-made safetensors files.
 *
 * Every helper asserts (and so ends the test) on failure.
 */
#ifndef LAMINA_TESTS_SERIALIZE_SER_UTIL_H
#define LAMINA_TESTS_SERIALIZE_SER_UTIL_H

#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lamina/lamina.h"

#define SU_DATA_DIR LAMINA_TEST_SOURCE_DIR "/tests/serialize/data"

static inline void su_fini(void) {
    lam_shutdown();
}

#define SU_OK(call)                                                                                \
    do {                                                                                           \
        lam_status su_st_ = (call);                                                                \
        cr_assert_eq(su_st_, LAM_OK, "%s failed: %s (%s)", #call, lam_status_string(su_st_),       \
                     lam_last_error());                                                            \
    } while (0)

/* A call failed with `want` and exactly the message `msg`. */
static inline void su_assert_error(lam_status got, lam_status want, const char *msg,
                                   const char *what) {
    cr_assert_eq(got, want, "%s: status %d (%s), expected %d (%s); message: %s", what, (int)got,
                 lam_status_string(got), (int)want, lam_status_string(want), lam_last_error());
    cr_assert_str_eq(lam_last_error(), msg, "%s: message\n  got:      %s\n  expected: %s", what,
                     lam_last_error(), msg);
}

static inline const char *su_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *su_fmt(const char *fmt, ...) {
    static char bufs[4][2048];
    static int next;
    char *buf = bufs[next++ & 3];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof bufs[0], fmt, ap);
    va_end(ap);
    return buf;
}

/* A fresh directory under /tmp for this test (each Criterion test is its own process). */
static inline const char *su_tmpdir(void) {
    static char dir[64];
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/tmp/lamina-ser-XXXXXX");
        cr_assert_not_null(mkdtemp(dir), "mkdtemp failed");
    }
    return dir;
}

/* Path of `name` inside the test's directory (a static buffer, rotating among 8). */
static inline const char *su_path(const char *name) {
    static char bufs[8][512];
    static int next;
    char *buf = bufs[next++ & 7];
    snprintf(buf, sizeof bufs[0], "%s/%s", su_tmpdir(), name);
    return buf;
}

/* Removes the test's directory and what is in it (one level). */
static inline void su_cleanup(void) {
    const char *dir = su_tmpdir();
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                char p[512];
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                if (remove(p) != 0) {
                    rmdir(p);
                }
            }
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Number of entries of the test's directory (temporary files left behind show up here). */
static inline int su_dir_count(void) {
    DIR *d = opendir(su_tmpdir());
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    }
    closedir(d);
    return n;
}

/* The whole file (malloc'ed; *n its size). */
static inline uint8_t *su_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static inline void su_write_file(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    if (n > 0) {
        cr_assert_eq(fwrite(buf, 1, n, f), n);
    }
    cr_assert_eq(fclose(f), 0);
}

/* Writes a safetensors file by hand: the 8-byte length of `json`, json, then `data`. */
static inline void su_write_st(const char *path, const char *json, const void *data, size_t n) {
    size_t h = strlen(json);
    uint8_t *buf = malloc(8 + h + n + 1);
    cr_assert_not_null(buf);
    for (int i = 0; i < 8; i++) {
        buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
    }
    memcpy(buf + 8, json, h);
    if (n > 0) {
        memcpy(buf + 8 + h, data, n);
    }
    su_write_file(path, buf, 8 + h + n);
    free(buf);
}

static inline lam_shape su_shape(uint32_t ndim, const int64_t *dims) {
    lam_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = ndim;
    for (uint32_t i = 0; i < ndim; i++) {
        s.dims[i] = dims[i];
    }
    return s;
}

static inline lam_tensor *su_tensor(uint32_t ndim, const int64_t *dims, const float *v) {
    lam_shape s = su_shape(ndim, dims);
    int64_t n = lam_shape_numel(&s);
    lam_tensor *t = NULL;
    SU_OK(lam_tensor_from_data(NULL, &s, v, (size_t)n, &t));
    return t;
}

/* The tensor's values (malloc'ed). */
static inline float *su_values(const lam_tensor *t) {
    size_t n = (size_t)lam_tensor_numel(t);
    float *v = malloc((n ? n : 1) * sizeof *v);
    cr_assert_not_null(v);
    SU_OK(lam_tensor_read(t, v, n));
    return v;
}

static inline uint32_t su_bits(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static inline float su_from_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* The tensor holds exactly these bit patterns. */
static inline void su_assert_bits(const lam_tensor *t, const float *want, size_t n,
                                  const char *what) {
    cr_assert_eq((size_t)lam_tensor_numel(t), n, "%s: %lld elements, expected %zu", what,
                 (long long)lam_tensor_numel(t), n);
    float *v = su_values(t);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(su_bits(v[i]), su_bits(want[i]), "%s[%zu]: bits %08x (%g), expected %08x (%g)",
                     what, i, su_bits(v[i]), (double)v[i], su_bits(want[i]), (double)want[i]);
    }
    free(v);
}

static inline void su_assert_shape(const lam_tensor *t, uint32_t ndim, const int64_t *dims,
                                   const char *what) {
    lam_shape want = su_shape(ndim, dims);
    char a[160], b[160];
    cr_assert(lam_shape_equal(lam_tensor_shape(t), &want), "%s: shape %s, expected %s", what,
              lam_shape_format(lam_tensor_shape(t), a, sizeof a),
              lam_shape_format(&want, b, sizeof b));
}

#endif
