/* Data sets for `lamina train`: the built-in rings, the UCI digits (gzip'ed CSV), IDX (MNIST)
 * files and CSV files. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

void dataset_free(dataset *d) {
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

/* splitmix64: a small, good generator for synthetic data. */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) {
    return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0);
}

static double gauss(uint64_t *s) {
    double u1 = 1.0 - uniform01(s), u2 = uniform01(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int dataset_rings(int64_t n, int64_t dim, uint64_t seed, dataset *out, char *err, size_t cap) {
    memset(out, 0, sizeof *out);
    if (dim < 2) {
        snprintf(err, cap, "rings: needs at least 2 features");
        return -1;
    }
    out->x = malloc((size_t)(n * dim) * sizeof *out->x);
    out->y = malloc((size_t)n * sizeof *out->y);
    if (!out->x || !out->y) {
        dataset_free(out);
        snprintf(err, cap, "rings: out of memory");
        return -1;
    }
    out->n = n;
    out->dim = dim;
    out->classes = 10;
    /* A fixed random orthonormal pair embeds the plane in dim features (same for every seed,
     * so training and test sets share it). */
    uint64_t es = 12345;
    double *u = malloc((size_t)dim * sizeof *u), *v = malloc((size_t)dim * sizeof *v);
    if (!u || !v) {
        free(u);
        free(v);
        dataset_free(out);
        snprintf(err, cap, "rings: out of memory");
        return -1;
    }
    double nu = 0, dot = 0, nv = 0;
    for (int64_t j = 0; j < dim; j++) {
        u[j] = gauss(&es);
        v[j] = gauss(&es);
        nu += u[j] * u[j];
    }
    for (int64_t j = 0; j < dim; j++) {
        u[j] /= sqrt(nu);
        dot += u[j] * v[j];
    }
    for (int64_t j = 0; j < dim; j++) {
        v[j] -= dot * u[j];
        nv += v[j] * v[j];
    }
    for (int64_t j = 0; j < dim; j++) {
        v[j] /= sqrt(nv);
    }
    uint64_t s = seed * 0x2545F4914F6CDD1DULL + 1;
    /* 20 wedges of 18 degrees; class c owns wedges c and c + 10, opposite each other. A
     * linear classifier's decision regions are convex, so it can hold at most one wedge of
     * each class: about half the points, at best. */
    const double wedge = 6.283185307179586 / 20.0;
    for (int64_t i = 0; i < n; i++) {
        int w = (int)(next_u64(&s) % 20);
        double theta = wedge * (w + 0.1 + 0.8 * uniform01(&s)); /* a margin at the edges */
        double r = 1.0 + 1.0 * uniform01(&s);
        double px = 2.0 * r * cos(theta), py = 2.0 * r * sin(theta);
        for (int64_t j = 0; j < dim; j++) {
            out->x[i * dim + j] = (float)(px * u[j] + py * v[j] + 0.03 * gauss(&s));
        }
        out->y[i] = (float)(w % 10);
    }
    free(u);
    free(v);
    return 0;
}

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static unsigned char *read_file(const char *path, size_t *size, char *err, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = len > 0 ? malloc((size_t)len) : NULL;
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        snprintf(err, cap, "%s: cannot read", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *size = (size_t)len;
    return buf;
}

/* One pair of IDX files: images (magic 0x803, n, rows, cols, u8) and labels (0x801, n, u8). */
static int load_idx(const char *images, const char *labels, dataset *d, char *err, size_t cap) {
    size_t ni, nl;
    unsigned char *bi = read_file(images, &ni, err, cap), *bl = NULL;
    if (!bi || !(bl = read_file(labels, &nl, err, cap))) {
        free(bi);
        return -1;
    }
    int rc = -1;
    if (ni < 16 || be32(bi) != 0x803) {
        snprintf(err, cap, "%s: not an IDX image file (magic 0x803)", images);
    } else if (nl < 8 || be32(bl) != 0x801) {
        snprintf(err, cap, "%s: not an IDX label file (magic 0x801)", labels);
    } else {
        uint64_t n = be32(bi + 4), rows = be32(bi + 8), cols = be32(bi + 12);
        if (be32(bl + 4) != n || ni != 16 + n * rows * cols || nl != 8 + n || n == 0) {
            snprintf(err, cap, "%s / %s: sizes disagree with their headers", images, labels);
        } else {
            d->n = (int64_t)n;
            d->dim = (int64_t)(rows * cols);
            d->image[0] = 1;
            d->image[1] = (int64_t)rows;
            d->image[2] = (int64_t)cols;
            d->x = malloc(n * rows * cols * sizeof *d->x);
            d->y = malloc(n * sizeof *d->y);
            if (!d->x || !d->y) {
                snprintf(err, cap, "%s: out of memory", images);
            } else {
                for (uint64_t i = 0; i < n * rows * cols; i++) {
                    d->x[i] = (float)bi[16 + i] / 255.0f;
                }
                int64_t maxl = 0;
                for (uint64_t i = 0; i < n; i++) {
                    d->y[i] = bl[8 + i];
                    maxl = bl[8 + i] > maxl ? bl[8 + i] : maxl;
                }
                d->classes = maxl + 1;
                rc = 0;
            }
        }
    }
    free(bi);
    free(bl);
    return rc;
}

static int load_csv(const char *path, dataset *d, char *err, size_t cap) {
    size_t size;
    unsigned char *buf = read_file(path, &size, err, cap);
    if (!buf) {
        return -1;
    }
    char *text = realloc(buf, size + 1);
    if (!text) {
        free(buf);
        snprintf(err, cap, "%s: out of memory", path);
        return -1;
    }
    text[size] = '\0';
    int64_t cap_rows = 1024, n = 0, dim = -1, maxl = 0;
    float *x = NULL, *y = malloc((size_t)cap_rows * sizeof *y);
    int line = 0, rc = 0;
    char *save = NULL;
    float *row = malloc(65536 * sizeof *row);
    if (row == NULL || y == NULL) {
        free(row);
        free(y);
        free(text);
        snprintf(err, cap, "%s: out of memory", path);
        return -1;
    }
    for (char *l = strtok_r(text, "\n", &save); l && rc == 0; l = strtok_r(NULL, "\n", &save)) {
        line++;
        if (l[0] == '\0' || l[0] == '\r' || l[0] == '#') {
            continue;
        }
        int64_t cols = 0;
        char *p = l;
        while (*p && cols < 65536) {
            char *end;
            errno = 0;
            double v = strtod(p, &end);
            if (end == p || errno != 0) {
                if (n == 0 && line == 1) { /* a header line */
                    cols = -1;
                    break;
                }
                snprintf(err, cap, "%s:%d: not a number at column %lld", path, line,
                         (long long)cols + 1);
                rc = -1;
                break;
            }
            row[cols++] = (float)v;
            p = end;
            while (*p == ' ' || *p == '\r') {
                p++;
            }
            if (*p == ',') {
                p++;
            }
        }
        if (rc != 0 || cols == -1) {
            continue;
        }
        if (cols < 2) {
            snprintf(err, cap, "%s:%d: needs a label and at least one feature", path, line);
            rc = -1;
            break;
        }
        if (dim < 0) {
            dim = cols - 1;
            x = malloc((size_t)(cap_rows * dim) * sizeof *x);
        } else if (cols - 1 != dim) {
            snprintf(err, cap, "%s:%d: %lld features, earlier rows have %lld", path, line,
                     (long long)cols - 1, (long long)dim);
            rc = -1;
            break;
        }
        if (row[0] < 0 || row[0] != floorf(row[0])) {
            snprintf(err, cap, "%s:%d: label %g is not a class index", path, line, (double)row[0]);
            rc = -1;
            break;
        }
        if (n == cap_rows) {
            cap_rows *= 2;
            float *nx = realloc(x, (size_t)(cap_rows * dim) * sizeof *x);
            float *ny = realloc(y, (size_t)cap_rows * sizeof *y);
            x = nx ? nx : x;
            y = ny ? ny : y;
            if (!nx || !ny) {
                snprintf(err, cap, "%s: out of memory", path);
                rc = -1;
                break;
            }
        }
        if (!x || !y) {
            snprintf(err, cap, "%s: out of memory", path);
            rc = -1;
            break;
        }
        y[n] = row[0];
        maxl = (int64_t)row[0] > maxl ? (int64_t)row[0] : maxl;
        memcpy(x + n * dim, row + 1, (size_t)dim * sizeof *x);
        n++;
    }
    free(text);
    free(row);
    if (rc == 0 && n < 2) {
        snprintf(err, cap, "%s: fewer than 2 rows of data", path);
        rc = -1;
    }
    if (rc != 0) {
        free(x);
        free(y);
        return -1;
    }
    d->x = x;
    d->y = y;
    d->n = n;
    d->dim = dim;
    d->classes = maxl + 1 < 2 ? 2 : maxl + 1;
    return 0;
}

int dataset_load(const char *path, dataset *train, dataset *test, char *err, size_t cap) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/train-images-idx3-ubyte", path);
        snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte", path);
        if (load_idx(a, b, train, err, cap) != 0) {
            return -1;
        }
        snprintf(a, sizeof a, "%s/t10k-images-idx3-ubyte", path);
        snprintf(b, sizeof b, "%s/t10k-labels-idx1-ubyte", path);
        if (load_idx(a, b, test, err, cap) != 0 || test->dim != train->dim) {
            if (test->x && test->dim != train->dim) {
                snprintf(err, cap, "%s: train and test images differ in size", path);
            }
            dataset_free(train);
            dataset_free(test);
            return -1;
        }
        if (test->image[1] != train->image[1] || test->image[2] != train->image[2]) {
            snprintf(err, cap, "%s: train and test images differ in size", path);
            dataset_free(train);
            dataset_free(test);
            return -1;
        }
        int64_t classes = train->classes > test->classes ? train->classes : test->classes;
        train->classes = test->classes = classes;
        return 0;
    }
    dataset all;
    if (load_csv(path, &all, err, cap) != 0) {
        return -1;
    }
    /* The last fifth is the test set. */
    int64_t nt = all.n / 5 > 0 ? all.n / 5 : 1, ntr = all.n - nt;
    train->x = malloc((size_t)(ntr * all.dim) * sizeof(float));
    train->y = malloc((size_t)ntr * sizeof(float));
    test->x = malloc((size_t)(nt * all.dim) * sizeof(float));
    test->y = malloc((size_t)nt * sizeof(float));
    if (!train->x || !train->y || !test->x || !test->y) {
        dataset_free(&all);
        dataset_free(train);
        dataset_free(test);
        snprintf(err, cap, "%s: out of memory", path);
        return -1;
    }
    memcpy(train->x, all.x, (size_t)(ntr * all.dim) * sizeof(float));
    memcpy(train->y, all.y, (size_t)ntr * sizeof(float));
    memcpy(test->x, all.x + ntr * all.dim, (size_t)(nt * all.dim) * sizeof(float));
    memcpy(test->y, all.y + ntr, (size_t)nt * sizeof(float));
    train->n = ntr;
    test->n = nt;
    train->dim = test->dim = all.dim;
    train->classes = test->classes = all.classes;
    dataset_free(&all);
    return 0;
}

const char *digits_path(const char *file) {
    if (file != NULL) {
        return file;
    }
    const char *env = getenv("LAMINA_DIGITS");
    return env != NULL && env[0] != '\0' ? env : DIGITS_DEFAULT_PATH;
}

/* The whole decompressed text of a gzip file (a plain file reads as itself), NUL-terminated. */
static char *read_gzip(const char *path, const char *origin, char *err, size_t cap) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (f == NULL) {
        snprintf(err, cap,
                 "%s%s: cannot open the UCI handwritten digits, %s; they come with Debian's "
                 "python3-sklearn package (apt-get install python3-sklearn, or sh "
                 "tools/install-deps.sh); LAMINA_DIGITS or --data-file names another copy of "
                 "digits.csv.gz",
                 path, origin, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    size_t n = 0, room = 1 << 19;
    char *text = malloc(room);
    for (;;) {
        if (text == NULL) {
            snprintf(err, cap, "%s: out of memory", path);
            break;
        }
        if (n + 1 == room) {
            char *bigger = room < ((size_t)1 << 30) ? realloc(text, room * 2) : NULL;
            if (bigger == NULL) {
                free(text);
                text = NULL;
                continue;
            }
            text = bigger;
            room *= 2;
        }
        int got = gzread(f, text + n, (unsigned)(room - n - 1));
        if (got < 0) {
            int code;
            snprintf(err, cap, "%s: cannot decompress, %s", path, gzerror(f, &code));
            free(text);
            text = NULL;
            break;
        }
        if (got == 0) {
            text[n] = '\0';
            break;
        }
        n += (size_t)got;
    }
    gzclose(f);
    return text;
}

/* One digits row: 64 pixels 0..16 and a label 0..9, comma-separated (values may be written
 * as "3" or "3.0"). Returns 0, or -1 with a message naming the line. */
static int digits_row(const char *path, int line, char **p, float *pixels, float *label, char *err,
                      size_t cap) {
    for (int col = 0; col < 65; col++) {
        char *end;
        errno = 0;
        double v = strtod(*p, &end);
        int last = col == 64;
        if (end == *p || errno != 0 || v != floor(v) || v < 0 || v > (last ? 9 : 16) ||
            (!last && *end != ',') || (last && *end != '\n' && *end != '\r' && *end != '\0')) {
            snprintf(err, cap,
                     "%s:%d: column %d is not %s (a digits row is 64 pixels 0..16 and a label "
                     "0..9)",
                     path, line, col + 1, last ? "a label 0..9" : "a pixel value 0..16");
            return -1;
        }
        if (last) {
            *label = (float)v;
        } else {
            pixels[col] = (float)v / 16.0f;
        }
        *p = end + (*end == ',');
    }
    while (**p == '\r') {
        (*p)++;
    }
    if (**p == '\n') {
        (*p)++;
    }
    return 0;
}

static int digits_alloc(dataset *d, int64_t n) {
    d->x = malloc((size_t)(n * 64) * sizeof *d->x);
    d->y = malloc((size_t)n * sizeof *d->y);
    d->n = n;
    d->dim = 64;
    d->classes = 10;
    d->image[0] = 1;
    d->image[1] = d->image[2] = 8;
    return d->x && d->y ? 0 : -1;
}

int dataset_digits(const char *file, dataset *train, dataset *test, char *err, size_t cap) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    const char *path = digits_path(file);
    const char *env = getenv("LAMINA_DIGITS");
    const char *origin = file != NULL            ? " (--data-file)"
                         : env && env[0] != '\0' ? " (LAMINA_DIGITS)"
                                                 : "";
    char *text = read_gzip(path, origin, err, cap);
    if (text == NULL) {
        return -1;
    }
    dataset all = {0};
    int rc = digits_alloc(&all, DIGITS_ROWS);
    if (rc != 0) {
        snprintf(err, cap, "%s: out of memory", path);
    }
    int64_t n = 0;
    int line = 0;
    for (char *p = text; rc == 0 && *p != '\0';) {
        line++;
        if (*p == '\n' || *p == '\r') { /* blank line */
            p += strspn(p, "\r\n");
            continue;
        }
        if (n == DIGITS_ROWS) {
            snprintf(err, cap, "%s:%d: more than %d rows; not the UCI digits file", path, line,
                     DIGITS_ROWS);
            rc = -1;
            break;
        }
        rc = digits_row(path, line, &p, all.x + n * 64, all.y + n, err, cap);
        n += rc == 0;
    }
    free(text);
    if (rc == 0 && n != DIGITS_ROWS) {
        snprintf(err, cap, "%s: %lld rows, the UCI digits have %d", path, (long long)n,
                 DIGITS_ROWS);
        rc = -1;
    }
    if (rc == 0 && (digits_alloc(train, DIGITS_TRAIN) != 0 ||
                    digits_alloc(test, DIGITS_ROWS - DIGITS_TRAIN) != 0)) {
        snprintf(err, cap, "%s: out of memory", path);
        rc = -1;
    }
    if (rc != 0) {
        dataset_free(&all);
        dataset_free(train);
        dataset_free(test);
        return -1;
    }
    /* A fixed Fisher-Yates shuffle (splitmix64), whatever the training seed. */
    int64_t order[DIGITS_ROWS];
    for (int64_t i = 0; i < DIGITS_ROWS; i++) {
        order[i] = i;
    }
    uint64_t s = DIGITS_SPLIT_SEED;
    for (int64_t i = DIGITS_ROWS - 1; i > 0; i--) {
        int64_t j = (int64_t)(next_u64(&s) % (uint64_t)(i + 1));
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int64_t i = 0; i < DIGITS_ROWS; i++) {
        dataset *d = i < DIGITS_TRAIN ? train : test;
        int64_t k = i < DIGITS_TRAIN ? i : i - DIGITS_TRAIN;
        memcpy(d->x + k * 64, all.x + order[i] * 64, 64 * sizeof *d->x);
        d->y[k] = all.y[order[i]];
    }
    dataset_free(&all);
    return 0;
}
