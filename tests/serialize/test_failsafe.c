/*
 * Allocation failures during saving and loading: for every k, the k-th allocation of a save or
 * a load fails (liblamina_failalloc.so, preloaded by ctest). Each run either succeeds
 * completely (the file loads back bit-identical, the model equals the file) or fails with a
 * message and leaves everything as it was: the old file byte for byte with no temporary file
 * beside it, the model's parameters bit for bit, a deferred model still deferred.
 *
 * In the ASan build the injector is not built (ASan owns malloc): every test skips, saying so.
 */
#include "ser_util.h"

#include "../tools/failalloc/failalloc.h"

TestSuite(failsafe, .fini = su_fini, .timeout = 600);

static lam_failalloc fa;

static void need_injector(void) {
    if (lam_failalloc_bind(&fa) != 0) {
        const char *req = getenv("LAMINA_TEST_FAILALLOC_REQUIRED");
        cr_assert(req == NULL || req[0] != '1', "liblamina_failalloc.so is not preloaded");
        cr_skip_test("liblamina_failalloc.so is not preloaded (the sanitizer build does not build "
                     "it: ASan owns malloc)");
    }
}

/* Sweeps stop at the first k the operation did not reach; this bounds a runaway loop. */
#define MAX_K 100000

/* Everything runs on the CPU backend whatever LAMINA_BACKEND says: a device driver's own
 * allocations (Mesa's, the validation layer's) are not Lamina's to make fail safely. */
static lam_ctx *cpu(void) {
    lam_ctx *ctx = NULL;
    SU_OK(lam_ctx_get("cpu", &ctx));
    return ctx;
}

static lam_tensor *cpu_tensor(uint32_t ndim, const int64_t *dims, const float *v) {
    lam_shape s = su_shape(ndim, dims);
    lam_tensor *t = NULL;
    SU_OK(lam_tensor_from_data(cpu(), &s, v, (size_t)lam_shape_numel(&s), &t));
    return t;
}

/* Appends a Dense layer (sharing share's parameters unless NULL); borrowed from seq. */
static lam_block *add_dense(lam_block *seq, const char *attrs, lam_block *share) {
    lam_block *b = NULL;
    if (share != NULL) {
        SU_OK(lam_layer_create_shared("Dense", attrs, share, &b));
    } else {
        SU_OK(lam_layer_create("Dense", attrs, &b));
    }
    SU_OK(lam_sequential_add(seq, b));
    lam_block_release(b);
    return b;
}

/* Dense(4, in 3) -> Dense(2, in 4) -> the same Dense shared, or the same with every shape
 * deferred. Initialized; an
 * eager model's parameters then hold base + i/8 + j/1024 (parameter i, element j), so every
 * parameter, biases included, differs between two bases. */
static lam_block *make_net(bool deferred, float base) {
    lam_block *net = NULL;
    SU_OK(lam_sequential_create(&net));
    add_dense(net, deferred ? "units=4, activation=relu" : "units=4, activation=relu, in_units=3",
              NULL);
    const char *last = deferred ? "units=2" : "units=2, in_units=4";
    lam_block *second = add_dense(net, last, NULL);
    /* A third layer shares the second's parameters: the file's alias table is swept too. */
    add_dense(net, last, second);
    SU_OK(lam_block_initialize(net, NULL, cpu(), 0));
    if (deferred) {
        return net;
    }
    lam_param_list *l = NULL;
    SU_OK(lam_block_collect_params(net, NULL, &l));
    for (size_t i = 0; i < lam_param_list_count(l); i++) {
        lam_tensor *t = NULL;
        SU_OK(lam_param_data(lam_param_list_get(l, i), &t));
        size_t n = (size_t)lam_tensor_numel(t);
        float *v = malloc(n * sizeof *v);
        for (size_t j = 0; j < n; j++) {
            v[j] = base + (float)i / 8 + (float)j / 1024;
        }
        SU_OK(lam_tensor_write(t, v, n));
        free(v);
        lam_tensor_release(t);
    }
    lam_param_list_destroy(l);
    return net;
}

/* What a model holds: per parameter its key, shape, whether initialized, and its values. */
typedef struct snapshot {
    size_t n;
    char keys[8][64];
    lam_shape shapes[8];
    int initialized[8];
    float *values[8];
    size_t counts[8];
} snapshot;

static void take(lam_block *net, snapshot *s) {
    memset(s, 0, sizeof *s);
    lam_param_list *l = NULL;
    SU_OK(lam_block_collect_params(net, NULL, &l));
    s->n = lam_param_list_count(l);
    cr_assert(s->n <= 8);
    for (size_t i = 0; i < s->n; i++) {
        lam_param *p = lam_param_list_get(l, i);
        snprintf(s->keys[i], sizeof s->keys[i], "%s", lam_param_list_key(l, i));
        s->shapes[i] = *lam_param_shape(p);
        s->initialized[i] = lam_param_is_initialized(p);
        if (s->initialized[i]) {
            lam_tensor *t = NULL;
            SU_OK(lam_param_data(p, &t));
            s->values[i] = su_values(t);
            s->counts[i] = (size_t)lam_tensor_numel(t);
            lam_tensor_release(t);
        }
    }
    lam_param_list_destroy(l);
}

static void drop(snapshot *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->values[i]);
    }
    memset(s, 0, sizeof *s);
}

static void assert_same(const snapshot *got, const snapshot *want, const char *what) {
    cr_assert_eq(got->n, want->n, "%s: parameter count", what);
    for (size_t i = 0; i < want->n; i++) {
        cr_assert_str_eq(got->keys[i], want->keys[i], "%s", what);
        cr_assert(lam_shape_equal(&got->shapes[i], &want->shapes[i]), "%s: %s: shape changed", what,
                  want->keys[i]);
        cr_assert_eq(got->initialized[i], want->initialized[i], "%s: %s: initialized %d, was %d",
                     what, want->keys[i], got->initialized[i], want->initialized[i]);
        cr_assert_eq(got->counts[i], want->counts[i], "%s: %s: size", what, want->keys[i]);
        for (size_t j = 0; j < want->counts[i]; j++) {
            cr_assert_eq(su_bits(got->values[i][j]), su_bits(want->values[i][j]),
                         "%s: %s[%zu] is %g, expected %g", what, want->keys[i], j,
                         (double)got->values[i][j], (double)want->values[i][j]);
        }
    }
}

/* The file holds exactly the snapshot's parameters under their keys. */
static void assert_file_holds(const char *path, const snapshot *want, const char *what) {
    lam_tensor_dict *d = NULL;
    SU_OK(lam_load(path, cpu(), &d));
    cr_assert_eq(lam_tensor_dict_count(d), want->n, "%s: tensors in the file", what);
    for (size_t i = 0; i < want->n; i++) {
        lam_tensor *t = lam_tensor_dict_find(d, want->keys[i]);
        cr_assert_not_null(t, "%s: %s missing from the file", what, want->keys[i]);
        cr_assert(lam_shape_equal(lam_tensor_shape(t), &want->shapes[i]), "%s: %s: shape", what,
                  want->keys[i]);
        su_assert_bits(t, want->values[i], want->counts[i], what);
    }
    lam_tensor_dict_destroy(d);
}

static void assert_same_bytes(const char *path, const uint8_t *want, size_t n, const char *what) {
    size_t m;
    uint8_t *got = su_read_file(path, &m);
    cr_assert(m == n && memcmp(got, want, n) == 0, "%s: the old file changed", what);
    free(got);
}

/* ---- saving ---- */

typedef struct save_args {
    lam_block *net;
    const char *path;
    lam_status st;
} save_args;

static void save_params(void *arg) {
    save_args *a = arg;
    a->st = lam_block_save_parameters(a->net, a->path);
}

Test(failsafe, save_parameters_over_a_good_file_succeeds_or_changes_nothing) {
    need_injector();
    lam_block *old_net = make_net(false, 1.0f), *net = make_net(false, -5.0f);
    const char *path = su_path("model.safetensors");
    SU_OK(lam_block_save_parameters(old_net, path));
    size_t n_old;
    uint8_t *old = su_read_file(path, &n_old);
    snapshot want;
    take(net, &want);
    /* Calibrated on a save over the same file, restored afterwards. */
    save_args a = {net, path, LAM_OK};
    unsigned long calls = lam_failalloc_calibrate(&fa, save_params, &a);
    SU_OK(a.st);
    cr_assert_gt(calls, 0, "the injector counted no allocation");
    unsigned long k;
    int successes = 0;
    for (k = 1; k < MAX_K; k++) {
        su_write_file(path, old, n_old);
        fa.arm(k);
        lam_status st = lam_block_save_parameters(net, path);
        int hit = fa.injected();
        fa.arm(0);
        const char *what = su_fmt("allocation %lu of %lu failed", k, calls);
        cr_assert_eq(su_dir_count(), 1, "%s: a temporary file was left behind", what);
        if (st == LAM_OK) {
            successes++;
            assert_file_holds(path, &want, what);
        } else {
            cr_assert(hit, "save failed with no injected failure: %s", lam_last_error());
            cr_assert_neq(lam_last_error()[0], '\0', "%s: empty message", what);
            assert_same_bytes(path, old, n_old, what);
        }
        if (!hit) {
            break;
        }
    }
    cr_assert_geq(k, calls, "the sweep stopped at %lu of %lu allocations", k, calls);
    cr_assert_gt(successes, 0);
    drop(&want);
    free(old);
    lam_block_release(old_net);
    lam_block_release(net);
    su_cleanup();
}

typedef struct dict_args {
    const char *path;
    const char *const *names;
    lam_tensor *const *tensors;
    lam_status st;
} dict_args;

static void save_dict(void *arg) {
    dict_args *a = arg;
    a->st = lam_save_dict(a->path, a->names, a->tensors, 2);
}

Test(failsafe, save_dict_over_a_good_file_succeeds_or_changes_nothing) {
    need_injector();
    float a0[6] = {1, 2, 3, 4, 5, 6}, b0[2] = {7, 8}, a1[6] = {-1, -2, -3, -4, -5, -6},
          b1[2] = {-7, -8};
    int64_t sa[2] = {2, 3}, sb[1] = {2};
    lam_tensor *old_t[2] = {cpu_tensor(2, sa, a0), cpu_tensor(1, sb, b0)};
    lam_tensor *new_t[2] = {cpu_tensor(2, sa, a1), cpu_tensor(1, sb, b1)};
    const char *names[2] = {"layer.weight", "layer.bias"};
    const char *path = su_path("dict.safetensors");
    SU_OK(lam_save_dict(path, names, old_t, 2));
    size_t n_old;
    uint8_t *old = su_read_file(path, &n_old);
    dict_args args = {path, names, new_t, LAM_OK};
    unsigned long calls = lam_failalloc_calibrate(&fa, save_dict, &args);
    SU_OK(args.st);
    cr_assert_gt(calls, 0, "the injector counted no allocation");
    unsigned long k;
    for (k = 1; k < MAX_K; k++) {
        su_write_file(path, old, n_old);
        fa.arm(k);
        lam_status st = lam_save_dict(path, names, new_t, 2);
        int hit = fa.injected();
        fa.arm(0);
        const char *what = su_fmt("allocation %lu of %lu failed", k, calls);
        cr_assert_eq(su_dir_count(), 1, "%s: a temporary file was left behind", what);
        if (st == LAM_OK) {
            lam_tensor_dict *d = NULL;
            SU_OK(lam_load(path, cpu(), &d));
            cr_assert_eq(lam_tensor_dict_count(d), 2);
            su_assert_bits(lam_tensor_dict_find(d, "layer.weight"), a1, 6, what);
            su_assert_bits(lam_tensor_dict_find(d, "layer.bias"), b1, 2, what);
            lam_tensor_dict_destroy(d);
        } else {
            cr_assert(hit, "save failed with no injected failure: %s", lam_last_error());
            cr_assert_neq(lam_last_error()[0], '\0', "%s: empty message", what);
            assert_same_bytes(path, old, n_old, what);
        }
        if (!hit) {
            break;
        }
    }
    cr_assert_geq(k, calls, "the sweep stopped at %lu of %lu allocations", k, calls);
    for (int i = 0; i < 2; i++) {
        lam_tensor_release(old_t[i]);
        lam_tensor_release(new_t[i]);
    }
    free(old);
    su_cleanup();
}

/* ---- loading ---- */

typedef struct load_args {
    lam_block *net;
    const char *path;
    const lam_load_options *o;
    lam_status st;
} load_args;

static void load_params(void *arg) {
    load_args *a = arg;
    a->st = lam_block_load_parameters(a->net, a->path, a->o);
}

/* Loads the file of make_net(false, 1) into fresh models made by make_net(deferred, -5),
 * failing each allocation in turn; with `mapped`, over a verified mapping (options.mapped). */
static void sweep_load_parameters(bool deferred, bool mapped) {
    need_injector();
    lam_load_options o = LAM_LOAD_OPTIONS_INIT;
    o.mapped = mapped;
    lam_block *src = make_net(false, 1.0f);
    const char *path = su_path("model.safetensors");
    SU_OK(lam_block_save_parameters(src, path));
    snapshot file;
    take(src, &file);
    lam_block_release(src);
    lam_block *net = make_net(deferred, -5.0f);
    snapshot before;
    take(net, &before);
    /* Every run starts from a fresh runtime: with the tensor pool and buffer cache empty,
     * every tensor a load makes is an allocation that can fail. */
    lam_block_release(net);
    lam_shutdown();
    net = make_net(deferred, -5.0f);
    load_args a = {net, path, &o, LAM_OK};
    unsigned long calls = lam_failalloc_calibrate(&fa, load_params, &a);
    SU_OK(a.st);
    lam_block_release(net);
    cr_assert_gt(calls, 0, "the injector counted no allocation");
    unsigned long k;
    int successes = 0;
    for (k = 1; k < MAX_K; k++) {
        lam_shutdown();
        size_t live = lam_tensor_live_count();
        net = make_net(deferred, -5.0f);
        fa.arm(k);
        lam_status st = lam_block_load_parameters(net, path, &o);
        int hit = fa.injected();
        fa.arm(0);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lam_last_error());
        const char *what =
            su_fmt("%s model%s, allocation %lu of %lu failed",
                   deferred ? "deferred" : "initialized", mapped ? ", mapped" : "", k, calls);
        snapshot got;
        take(net, &got);
        if (st == LAM_OK) {
            successes++;
            assert_same(&got, &file, what);
        } else {
            cr_assert(hit, "load failed with no injected failure: %s", msg);
            cr_assert_neq(msg[0], '\0', "%s: empty message", what);
            assert_same(&got, &before, su_fmt("%s (%s)", what, msg));
        }
        drop(&got);
        lam_block_release(net);
        cr_assert_eq(lam_tensor_live_count(), live, "%s: tensors leaked", what);
        if (!hit) {
            break;
        }
    }
    cr_assert_geq(k, calls, "the sweep stopped at %lu of %lu allocations", k, calls);
    cr_assert_gt(successes, 0);
    drop(&file);
    drop(&before);
    su_cleanup();
}

Test(failsafe, load_parameters_into_an_initialized_model_succeeds_or_changes_nothing) {
    sweep_load_parameters(false, false);
}

Test(failsafe, load_parameters_into_a_deferred_model_succeeds_or_changes_nothing) {
    sweep_load_parameters(true, false);
}

Test(failsafe, mapped_load_parameters_into_an_initialized_model_succeeds_or_changes_nothing) {
    sweep_load_parameters(false, true);
}

Test(failsafe, mapped_load_parameters_into_a_deferred_model_succeeds_or_changes_nothing) {
    sweep_load_parameters(true, true);
}

typedef lam_status (*loader_fn)(const char *path, lam_ctx *ctx, lam_tensor_dict **out);

typedef struct nd_args {
    const char *path;
    lam_ctx *ctx;
    loader_fn load;
    lam_status st;
} nd_args;

static void load_nd(void *arg) {
    nd_args *a = arg;
    lam_tensor_dict *d = NULL;
    a->st = a->load(a->path, a->ctx, &d);
    lam_tensor_dict_destroy(d);
}

/* The k-th allocation of a load fails, for every k: the whole file or nothing, no leak. */
static void sweep_load(loader_fn load) {
    need_injector();
    float w[6] = {1, -2, 3.5f, 0, 1e-3f, -1e3f}, s[1] = {7};
    int64_t sw[2] = {2, 3};
    lam_tensor *t[2] = {cpu_tensor(2, sw, w), cpu_tensor(0, NULL, s)};
    const char *path = su_path("list.safetensors");
    SU_OK(lam_save_list(path, t, 2));
    lam_tensor_release(t[0]);
    lam_tensor_release(t[1]);
    nd_args a = {path, cpu(), load, LAM_OK};
    unsigned long calls = lam_failalloc_calibrate(&fa, load_nd, &a);
    SU_OK(a.st);
    cr_assert_gt(calls, 0, "the injector counted no allocation");
    size_t live = lam_tensor_live_count();
    unsigned long k;
    for (k = 1; k < MAX_K; k++) {
        lam_tensor_dict *d = (lam_tensor_dict *)&a; /* must be reset */
        fa.arm(k);
        lam_status st = load(path, a.ctx, &d);
        int hit = fa.injected();
        fa.arm(0);
        const char *what = su_fmt("allocation %lu of %lu failed", k, calls);
        if (st == LAM_OK) {
            cr_assert(lam_tensor_dict_is_list(d));
            cr_assert_eq(lam_tensor_dict_count(d), 2);
            su_assert_bits(lam_tensor_dict_get(d, 0), w, 6, what);
            su_assert_bits(lam_tensor_dict_get(d, 1), s, 1, what);
            lam_tensor_dict_destroy(d);
        } else {
            cr_assert(hit, "load failed with no injected failure: %s", lam_last_error());
            cr_assert_null(d, "%s: *out not NULL", what);
            cr_assert_neq(lam_last_error()[0], '\0', "%s: empty message", what);
        }
        cr_assert_eq(lam_tensor_live_count(), live, "%s: tensors leaked", what);
        if (!hit) {
            break;
        }
    }
    cr_assert_geq(k, calls, "the sweep stopped at %lu of %lu allocations", k, calls);
    su_cleanup();
}

Test(failsafe, load_returns_the_whole_file_or_nothing) {
    sweep_load(lam_load);
}

Test(failsafe, verified_mapped_load_returns_the_whole_file_or_nothing) {
    sweep_load(lam_load_mapped_verified);
}

Test(failsafe, mapped_load_returns_the_whole_file_or_nothing) {
    sweep_load(lam_load_mapped);
}
