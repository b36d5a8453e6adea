/*
 * interop_helper: the Lamina side of the interoperability test (interop/run_interop.py).
 *
 *   interop_helper dump FILE        prints the file as Lamina loads it, as JSON: kind, and per
 *                                   tensor its name, shape and float32 bit patterns
 *   interop_helper resave IN OUT    loads IN and saves it again as a dict (or list) to OUT
 *   interop_helper write DIR        writes DIR/lamina_list.safetensors, lamina_dict.safetensors
 *                                   and lamina_params.safetensors with values given by formulas
 *                                   that read_numpy.py checks independently
 */
#define _POSIX_C_SOURCE 200809L
#include "lamina/lamina.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "interop_helper: %s: %s\n", what, lam_last_error());
    lam_shutdown();
    return 1;
}

static void print_json_string(const char *s) {
    putchar('"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            printf("\\%c", *c);
        } else if (*c < 0x20) {
            printf("\\u%04x", *c);
        } else {
            putchar(*c);
        }
    }
    putchar('"');
}

static int dump(const char *path) {
    lam_tensor_dict *d = NULL;
    if (lam_load(path, NULL, &d) != LAM_OK) {
        return fail("dump");
    }
    printf("{\"kind\": \"%s\", \"tensors\": [", lam_tensor_dict_is_list(d) ? "list" : "dict");
    for (size_t i = 0; i < lam_tensor_dict_count(d); i++) {
        lam_tensor *t = lam_tensor_dict_get(d, i);
        const lam_shape *s = lam_tensor_shape(t);
        printf("%s\n {\"name\": ", i ? "," : "");
        print_json_string(lam_tensor_dict_name(d, i));
        printf(", \"shape\": [");
        for (uint32_t k = 0; k < s->ndim; k++) {
            printf("%s%lld", k ? ", " : "", (long long)s->dims[k]);
        }
        printf("], \"bits\": [");
        size_t n = (size_t)lam_tensor_numel(t);
        float *v = malloc((n ? n : 1) * sizeof *v);
        if (v == NULL || lam_tensor_read(t, v, n) != LAM_OK) {
            free(v);
            lam_tensor_dict_destroy(d);
            return fail("read");
        }
        for (size_t k = 0; k < n; k++) {
            uint32_t b;
            memcpy(&b, &v[k], sizeof b);
            printf("%s%u", k ? ", " : "", b);
        }
        free(v);
        printf("]}");
    }
    printf("]}\n");
    lam_tensor_dict_destroy(d);
    lam_shutdown();
    return 0;
}

static int resave(const char *in, const char *out) {
    lam_tensor_dict *d = NULL;
    if (lam_load(in, NULL, &d) != LAM_OK) {
        return fail("resave: load");
    }
    size_t n = lam_tensor_dict_count(d);
    const char **names = malloc((n ? n : 1) * sizeof *names);
    lam_tensor **ts = malloc((n ? n : 1) * sizeof *ts);
    for (size_t i = 0; names && ts && i < n; i++) {
        names[i] = lam_tensor_dict_name(d, i);
        ts[i] = lam_tensor_dict_get(d, i);
    }
    lam_status st =
        lam_tensor_dict_is_list(d) ? lam_save_list(out, ts, n) : lam_save_dict(out, names, ts, n);
    free(names);
    free(ts);
    lam_tensor_dict_destroy(d);
    if (st != LAM_OK) {
        return fail("resave: save");
    }
    lam_shutdown();
    return 0;
}

static lam_tensor *tensor(uint32_t ndim, const int64_t *dims, const float *v) {
    lam_shape s;
    if (lam_shape_init(&s, ndim, dims) != LAM_OK) {
        return NULL;
    }
    lam_tensor *t = NULL;
    lam_tensor_from_data(NULL, &s, v, (size_t)lam_shape_numel(&s), &t);
    return t;
}

static int write_list(const char *dir) {
    /* 0: (2, 3), i * 0.5 - 1;  1: (), 3.25;  2: (4,), (i + 1)^2 / 8;  3: (4,), special bits. */
    float a[6], b[1] = {3.25f}, c[4];
    for (int i = 0; i < 6; i++) {
        a[i] = (float)i * 0.5f - 1.0f;
    }
    for (int i = 0; i < 4; i++) {
        c[i] = (float)((i + 1) * (i + 1)) / 8.0f;
    }
    const uint32_t bits[4] = {0x7FC00001u, 0x80000000u, 0x00000001u, 0xFF800000u};
    float sp[4];
    memcpy(sp, bits, sizeof sp);
    int64_t s0[2] = {2, 3}, s2[1] = {4};
    lam_tensor *t[4] = {tensor(2, s0, a), tensor(0, NULL, b), tensor(1, s2, c), tensor(1, s2, sp)};
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_list.safetensors", dir);
    lam_status st = lam_save_list(path, t, 4);
    for (int i = 0; i < 4; i++) {
        lam_tensor_release(t[i]);
    }
    return st == LAM_OK ? 0 : fail("write list");
}

static int write_dict(const char *dir) {
    /* alpha: (3, 2), 1 / (i + 1) in float32;  beta.gamma: (0,) empty. */
    float a[6], e[1] = {0};
    for (int i = 0; i < 6; i++) {
        a[i] = 1.0f / (float)(i + 1);
    }
    int64_t sa[2] = {3, 2}, se[1] = {0};
    lam_tensor *t[2] = {tensor(2, sa, a), tensor(1, se, e)};
    const char *names[2] = {"alpha", "beta.gamma"};
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_dict.safetensors", dir);
    lam_status st = lam_save_dict(path, names, t, 2);
    lam_tensor_release(t[0]);
    lam_tensor_release(t[1]);
    return st == LAM_OK ? 0 : fail("write dict");
}

static lam_status add_dense(lam_block *net, const char *attrs, lam_block *share) {
    lam_block *b = NULL;
    lam_status st = share ? lam_layer_create_shared("Dense", attrs, share, &b)
                          : lam_layer_create("Dense", attrs, &b);
    if (st == LAM_OK) {
        st = lam_sequential_add(net, b);
        lam_block_release(b);
    }
    return st;
}

static int write_params(const char *dir) {
    /* Dense(3, in 2), Dense(3, in 3), the same layer again (shared), Dense(1, in 3); parameter
     * k (in collect order) holds k + i / 64. */
    lam_block *net = NULL;
    lam_status st = lam_sequential_create(&net);
    if (st == LAM_OK) {
        st = add_dense(net, "units=3, in_units=2", NULL);
    }
    if (st == LAM_OK) {
        st = add_dense(net, "units=3, in_units=3", NULL);
    }
    if (st == LAM_OK) {
        st = add_dense(net, "units=3, in_units=3", lam_block_child_at(net, 1));
    }
    if (st == LAM_OK) {
        st = add_dense(net, "units=1, in_units=3", NULL);
    }
    if (st == LAM_OK) {
        st = lam_block_initialize(net, NULL, NULL, 0);
    }
    lam_param_list *l = NULL;
    if (st == LAM_OK) {
        st = lam_block_collect_params(net, NULL, &l);
    }
    for (size_t k = 0; st == LAM_OK && k < lam_param_list_count(l); k++) {
        lam_tensor *t = NULL;
        st = lam_param_data(lam_param_list_get(l, k), &t);
        if (st != LAM_OK) {
            break;
        }
        size_t n = (size_t)lam_tensor_numel(t);
        float *v = malloc(n * sizeof *v);
        for (size_t i = 0; v && i < n; i++) {
            v[i] = (float)k + (float)i / 64.0f;
        }
        st = v ? lam_tensor_write(t, v, n) : LAM_ERR_OUT_OF_MEMORY;
        free(v);
        lam_tensor_release(t);
    }
    lam_param_list_destroy(l);
    char path[1024];
    snprintf(path, sizeof path, "%s/lamina_params.safetensors", dir);
    if (st == LAM_OK) {
        st = lam_block_save_parameters(net, path);
    }
    lam_block_release(net);
    return st == LAM_OK ? 0 : fail("write params");
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "dump") == 0) {
        return dump(argv[2]);
    }
    if (argc == 4 && strcmp(argv[1], "resave") == 0) {
        return resave(argv[2], argv[3]);
    }
    if (argc == 3 && strcmp(argv[1], "write") == 0) {
        int rc = write_list(argv[2]) || write_dict(argv[2]) || write_params(argv[2]);
        lam_shutdown();
        return rc;
    }
    fprintf(stderr, "usage: interop_helper dump FILE | resave IN OUT | write DIR\n");
    return 2;
}
