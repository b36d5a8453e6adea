/* lamina inspect FILE: every tensor of a safetensors file (name, dtype, shape, bytes,
 * min/max/mean) and its metadata. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The JSON header, read after lam_load has validated the whole file: it alone still knows
 * each tensor's dtype as stored and the metadata keys. */
static json_t *read_header(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    unsigned char len[8];
    json_t *root = NULL;
    if (fread(len, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) {
            n = (n << 8) | len[i];
        }
        char *text = n <= 100000000u ? malloc(n ? (size_t)n : 1) : NULL;
        if (text != NULL && fread(text, 1, (size_t)n, f) == n) {
            root = json_loadb(text, (size_t)n, 0, NULL);
        }
        free(text);
    }
    fclose(f);
    return root;
}

static void print_stats(lam_tensor *t) {
    int64_t n = lam_tensor_numel(t);
    if (n == 0) {
        printf("  %14s %14s %14s\n", "-", "-", "-");
        return;
    }
    float *v = malloc((size_t)n * sizeof *v);
    if (v == NULL || lam_tensor_read(t, v, (size_t)n) != LAM_OK) {
        printf("  (cannot read: %s)\n", v == NULL ? "out of memory" : lam_last_error());
        free(v);
        return;
    }
    double lo = v[0], hi = v[0], sum = 0;
    for (int64_t i = 0; i < n; i++) {
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
        sum += v[i];
    }
    printf("  %14.6g %14.6g %14.6g\n", lo, hi, sum / (double)n);
    free(v);
}

int cmd_inspect(int argc, char **argv) {
    if (argc != 3 || strcmp(argv[2], "--help") == 0) {
        fprintf(
            argc == 3 ? stdout : stderr,
            "usage: lamina inspect FILE\n\n"
            "Lists every tensor of a safetensors file (name, dtype, shape, bytes, min, max,\n"
            "mean; F16, BF16, F64 and integer tensors are read as float32) and its metadata.\n");
        return argc == 3 ? 0 : 2;
    }
    const char *path = argv[2];
    lam_tensor_dict *d = NULL;
    if (lam_load(path, NULL, &d) != LAM_OK) {
        fprintf(stderr, "lamina inspect: %s\n", lam_last_error());
        lam_shutdown();
        return 1;
    }
    json_t *header = read_header(path);
    if (header == NULL) {
        fprintf(stderr, "lamina inspect: '%s': cannot read the header again\n", path);
        lam_tensor_dict_destroy(d);
        lam_shutdown();
        return 1;
    }
    size_t n = lam_tensor_dict_count(d);
    /* The file may have been replaced or rewritten since lam_load read it: the header read
     * again must still describe the tensors loaded, or the listing would mix two files. */
    bool same = json_object_size(header) == n + (json_object_get(header, "__metadata__") != NULL);
    for (size_t i = 0; same && i < n; i++) {
        json_t *e = json_object_get(header, lam_tensor_dict_name(d, i));
        json_t *shape = json_object_get(e, "shape");
        const lam_shape *s = lam_tensor_shape(lam_tensor_dict_get(d, i));
        same = json_array_size(shape) == s->ndim;
        for (uint32_t k = 0; same && k < s->ndim; k++) {
            same = json_integer_value(json_array_get(shape, k)) == s->dims[k];
        }
    }
    if (!same) {
        fprintf(stderr, "lamina inspect: '%s': the file changed while it was read; try again\n",
                path);
        json_decref(header);
        lam_tensor_dict_destroy(d);
        lam_shutdown();
        return 1;
    }
    int width = 4;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(lam_tensor_dict_name(d, i));
        width = l > (size_t)width ? (l > 60 ? 60 : (int)l) : width;
    }
    unsigned long long total = 0;
    printf("%s: %zu tensor%s (%s)\n", path, n, n == 1 ? "" : "s",
           lam_tensor_dict_is_list(d) ? "list" : "dict");
    printf("%-*s  %-7s %-20s %12s  %14s %14s %14s\n", width, "NAME", "DTYPE", "SHAPE", "BYTES",
           "MIN", "MAX", "MEAN");
    for (size_t i = 0; i < n; i++) {
        const char *name = lam_tensor_dict_name(d, i);
        lam_tensor *t = lam_tensor_dict_get(d, i);
        json_t *e = json_object_get(header, name);
        const char *dtype = json_string_value(json_object_get(e, "dtype"));
        json_t *offs = json_object_get(e, "data_offsets");
        unsigned long long bytes =
            (unsigned long long)(json_integer_value(json_array_get(offs, 1)) -
                                 json_integer_value(json_array_get(offs, 0)));
        total += bytes;
        char shape[200];
        lam_shape_format(lam_tensor_shape(t), shape, sizeof shape);
        printf("%-*s  %-7s %-20s %12llu", width, name, dtype ? dtype : "?", shape, bytes);
        print_stats(t);
    }
    printf("total: %llu bytes of data\n", total);
    json_t *meta = json_object_get(header, "__metadata__");
    printf("metadata:%s\n", json_object_size(meta) ? "" : " (none)");
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value) {
        printf("  %s = %s\n", key, json_string_value(value));
    }
    json_decref(header);
    lam_tensor_dict_destroy(d);
    lam_shutdown();
    return 0;
}
