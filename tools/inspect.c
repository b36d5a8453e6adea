/* lamina inspect FILE: every tensor of a safetensors file (name, dtype, shape, bytes,
 * min/max/mean) and its metadata. lamina inspect --verify FILE: the file's checksum checked
 * (lam_load_mapped_verified), one line of verdict. lamina inspect --model mlp|cnn [FILE]: the
 * model summary table (lam_block_summary_table) of a `lamina train` model, its parameters from
 * FILE. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <jansson.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static void usage(FILE *f) {
    fprintf(f, "usage: lamina inspect FILE\n"
               "       lamina inspect --verify FILE\n"
               "       lamina inspect --model mlp|cnn [--input-shape DIMS] [--classes N]\n"
               "                      [--hidden N] [FILE]\n\n"
               "Lists every tensor of a safetensors file (name, dtype, shape, bytes, min, max,\n"
               "mean; F16, BF16, F64 and integer tensors are read as float32) and its metadata.\n\n"
               "With --verify: checks every byte of FILE's data against the CRC32C that Lamina\n"
               "stores in its metadata (lamina.crc32c), as lam_load does, and prints one line:\n"
               "OK (exit status 0), CORRUPT (1; also 1 for a file that cannot be read), or NOT\n"
               "VERIFIED for a file without a checksum, written by another tool (3). The check\n"
               "for users of lam_load_mapped, which does not verify.\n\n"
               "With --model: the summary of `lamina train`'s model of that name, a table of its\n"
               "layers with output shapes and parameter counts for one input of DIMS\n"
               "(comma-separated, batch first; default 1,1,8,8 for cnn, the digits, and 1,20 for\n"
               "mlp), with the parameters of FILE when given (saved by lamina train --save),\n"
               "else freshly initialized.\n"
               "  --classes N        output classes (default 10)\n"
               "  --hidden N         MLP hidden units (default 256)\n");
}

static int parse_dims(const char *text, lam_shape *shape) {
    int64_t dims[LAM_MAX_DIMS];
    uint32_t n = 0;
    const char *p = text;
    while (p && *p && n < LAM_MAX_DIMS) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 1 || (*end != ',' && *end != '\0')) {
            return -1;
        }
        dims[n++] = v;
        p = *end == ',' ? end + 1 : end;
    }
    return n == 0 || (p && *p) || lam_shape_init(shape, n, dims) != LAM_OK ? -1 : 0;
}

static int inspect_model(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *dims = NULL;
    long long classes = 10, hidden = 256;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        char *end = NULL;
        if (strcmp(a, "--model") == 0 && v) {
            model = v;
        } else if (strcmp(a, "--input-shape") == 0 && v) {
            dims = v;
        } else if ((strcmp(a, "--classes") == 0 || strcmp(a, "--hidden") == 0) && v) {
            long long x = strtoll(v, &end, 10);
            if (*end || x < 1) {
                fprintf(stderr, "lamina inspect: %s needs an integer >= 1, got '%s'\n", a, v);
                return 2;
            }
            *(strcmp(a, "--classes") == 0 ? &classes : &hidden) = x;
        } else if (a[0] != '-' && file == NULL) {
            file = a;
            continue;
        } else {
            fprintf(stderr, "lamina inspect: unknown option or missing value '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    int cnn = model && strcmp(model, "cnn") == 0;
    if (!cnn && !(model && strcmp(model, "mlp") == 0)) {
        fprintf(stderr, "lamina inspect: --model must be mlp or cnn, got '%s'\n",
                model ? model : "");
        return 2;
    }
    lam_shape in;
    if (parse_dims(dims  ? dims
                   : cnn ? "1,1,8,8"
                         : "1,20",
                   &in) != 0 ||
        (cnn && (in.ndim != 4 || in.dims[2] < 4 || in.dims[3] < 4)) || (!cnn && in.ndim != 2)) {
        fprintf(stderr, "lamina inspect: --input-shape needs %s, got '%s'\n",
                cnn ? "N,C,H,W with H and W at least 4" : "N,FEATURES", dims);
        return 2;
    }
    lam_block *net = NULL;
    lam_initializer *init = NULL;
    char *table = NULL;
    lam_status st =
        cnn ? model_cnn(in.dims + 1, classes, &net) : model_mlp(hidden, 0, classes, &net);
    if (st == LAM_OK && file) {
        lam_load_options lo = LAM_LOAD_OPTIONS_INIT;
        st = lam_block_load_parameters(net, file, &lo);
    } else if (st == LAM_OK) {
        lam_seed(0);
        st = lam_init_xavier(LAM_XAVIER_UNIFORM, LAM_XAVIER_AVG, 3.0f, &init);
        if (st == LAM_OK) {
            st = lam_block_initialize(net, init, NULL, 0);
        }
    }
    if (st == LAM_OK) {
        st = lam_block_summary_table(net, 1, &in, &table);
    }
    if (st == LAM_OK) {
        printf("%s model of lamina train%s%s\n%s", cnn ? "cnn" : "mlp",
               file ? ", parameters from " : " (freshly initialized)", file ? file : "", table);
    } else {
        fprintf(stderr, "lamina inspect: %s\n", lam_last_error());
    }
    free(table);
    lam_initializer_release(init);
    lam_block_release(net);
    lam_shutdown();
    return st == LAM_OK ? 0 : 1;
}

/* lamina inspect --verify FILE: exit status 0 verified, 1 corrupt or unreadable, 3 no
 * checksum to verify against. */
static int inspect_verify(const char *path) {
    /* Only a regular file's header is read here first (opening a FIFO would wait for a
     * writer); anything else gets lam_load's error. */
    struct stat sb;
    json_t *header = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? read_header(path) : NULL;
    json_t *meta = json_object_get(header, "__metadata__");
    bool has_crc = json_object_get(meta, "lamina.crc32c") != NULL;
    json_decref(header);
    lam_tensor_dict *d = NULL;
    lam_status st = LAM_OK;
    if (header == NULL || has_crc) {
        /* Every byte checksummed over a mapping of the file; the tensors, float32 ones
         * mapped, are dropped right after. A header that does not parse is lam_load's error. */
        st = lam_load_mapped_verified(path, NULL, &d);
    }
    int rc;
    if (st != LAM_OK && strstr(lam_last_error(), "Checksum mismatch") != NULL) {
        printf("%s: CORRUPT, %s\n", path, lam_last_error());
        rc = 1;
    } else if (st != LAM_OK) {
        fprintf(stderr, "lamina inspect: %s\n", lam_last_error());
        rc = 1;
    } else if (d == NULL || lam_tensor_dict_metadata(d, "lamina.crc32c") == NULL) {
        printf("%s: NOT VERIFIED, the metadata has no lamina.crc32c checksum (a file Lamina did "
               "not write?)\n",
               path);
        rc = 3;
    } else {
        size_t n = lam_tensor_dict_count(d);
        printf("%s: OK, every byte of the data (%zu tensor%s) matches its CRC32C %s\n", path, n,
               n == 1 ? "" : "s", lam_tensor_dict_metadata(d, "lamina.crc32c"));
        rc = 0;
    }
    lam_tensor_dict_destroy(d);
    lam_shutdown();
    return rc;
}

int cmd_inspect(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[2], "--verify") == 0) {
        if (argc != 4 || argv[3][0] == '-') {
            fprintf(stderr, "lamina inspect: --verify takes one FILE\n\n");
            usage(stderr);
            return 2;
        }
        return inspect_verify(argv[3]);
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0) {
            return inspect_model(argc, argv);
        }
    }
    if (argc != 3 || strcmp(argv[2], "--help") == 0) {
        usage(argc == 3 ? stdout : stderr);
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
