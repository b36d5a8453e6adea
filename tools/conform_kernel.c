/*
 * conform_kernel.c - the checks of a plugin's kernels (lam_kernel_desc), run by `lamina
 * conform`: plugin.h promises that the kit checks each implementation against the kernel's
 * reference and the backward against finite differences of the reference.
 *
 * The child captures the kernel's descriptor with a host table of its own (dlopen, the entry),
 * then starts the runtime, whose registry runs the entry again with the real host table (the
 * same loaded file, so the captured callbacks stay valid and the plugin's host pointer is the
 * real one). Inputs are F32 (3, 37) from U(-2, 2); a kernel with parameters is not judged (the
 * kit cannot guess their meaning).
 */
#define _GNU_SOURCE
#include "conform.h"

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KMAX 8 /* operands per side the kit handles */

static lam_kernel_desc g_desc;
static int g_have;
static const char *g_want;
static char g_kerr[1024];

static lam_status k_set_error_fmt(lam_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static lam_status k_set_error_fmt(lam_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_kerr, sizeof g_kerr, fmt, ap);
    va_end(ap);
    return st;
}

static lam_status k_set_error(lam_status st, const char *msg) {
    snprintf(g_kerr, sizeof g_kerr, "%s", msg ? msg : "");
    return st;
}

static void k_log(lam_log_level level, const char *msg) {
    (void)level;
    (void)msg;
}

static lam_status k_register_kernel(lam_plugin *plugin, const lam_kernel_desc *d) {
    (void)plugin;
    if (!g_have && d != NULL && d->name != NULL && strcmp(d->name, g_want) == 0) {
        memset(&g_desc, 0, sizeof g_desc);
        memcpy(&g_desc, d, d->struct_size < sizeof g_desc ? d->struct_size : sizeof g_desc);
        g_have = 1;
    }
    return LAM_OK;
}

static lam_status k_register_other(lam_plugin *plugin, const void *d) {
    (void)plugin;
    (void)d;
    return LAM_OK;
}

static lam_status k_register_layer(lam_plugin *plugin, const lam_layer_desc *d) {
    return k_register_other(plugin, d);
}

static lam_status k_register_backend(lam_plugin *plugin, const lam_backend_desc *d) {
    return k_register_other(plugin, d);
}

static void *k_alloc(size_t n) {
    return malloc(n ? n : 1);
}

static void k_free(void *p) {
    free(p);
}

static lam_host_api g_khost; /* outlives the entry: the plugin keeps the pointer until lam_init */

static int capture(cf_ctx *c, const char *name) {
    memset(&g_khost, 0, sizeof g_khost);
    g_khost.struct_size = (uint32_t)sizeof g_khost;
    g_khost.abi_version = LAM_ABI_VERSION;
    g_khost.abi_fingerprint = LAM_ABI_FINGERPRINT;
    g_khost.set_error_fmt = k_set_error_fmt;
    g_khost.set_error = k_set_error;
    g_khost.log = k_log;
    g_khost.register_kernel = k_register_kernel;
    g_khost.register_layer = k_register_layer;
    g_khost.register_backend = k_register_backend;
    g_khost.alloc = k_alloc;
    g_khost.free = k_free;
    void *h = dlopen(c->plugin->path, RTLD_NOW | RTLD_LOCAL);
    void *sym = h != NULL ? dlsym(h, LAM_PLUGIN_ENTRY_NAME) : NULL;
    if (sym == NULL) {
        cf_fail(c, "cannot load %s: %s", c->plugin->path, h ? "no entry" : dlerror());
        return -1;
    }
    lam_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    g_want = name;
    g_have = 0;
    cf_note(c, "in lamina_plugin_entry (capturing kernel '%s')", name);
    lam_status st = entry(&g_khost, (lam_plugin *)(void *)&g_khost);
    if (st != LAM_OK || !g_have) {
        cf_fail(c, "the entry did not register kernel '%s' with the kit's table: %s %s", name,
                lam_status_string(st), g_kerr);
        return -1;
    }
    return 0;
}

/* Host buffers of one kernel run: inputs then outputs, with the operand structs. */
typedef struct krun {
    uint32_t n_in, n_out;
    lam_tensor_info info[2 * KMAX];
    lam_tensor_view view[2 * KMAX];
    lam_kernel_operand op[2 * KMAX];
    const lam_kernel_operand *ins[KMAX], *outs[KMAX];
    float *data[2 * KMAX];
    size_t count[2 * KMAX];
} krun;

static void krun_free(krun *r) {
    for (uint32_t i = 0; i < 2 * KMAX; i++) {
        free(r->data[i]);
    }
    memset(r, 0, sizeof *r);
}

static size_t info_numel(const lam_tensor_info *t) {
    size_t n = 1;
    for (uint32_t i = 0; i < t->ndim && i < LAM_MAX_DIMS; i++) {
        n *= t->dims[i] > 0 ? (size_t)t->dims[i] : 0;
    }
    return n;
}

/* Shapes from the descriptor, inputs from the seed; 0, or -1 after a verdict. */
static int krun_make(cf_ctx *c, krun *r) {
    memset(r, 0, sizeof *r);
    r->n_in = g_desc.n_inputs;
    r->n_out = g_desc.n_outputs;
    if (g_desc.params_size > 0) {
        cf_skip(c, "not judged: the kernel takes %u bytes of parameters the kit cannot guess",
                g_desc.params_size);
        return -1;
    }
    if (r->n_in > KMAX || r->n_out > KMAX || r->n_out == 0) {
        cf_skip(c, "not judged: %u inputs and %u outputs (the kit handles 1..%d outputs)", r->n_in,
                r->n_out, KMAX);
        return -1;
    }
    const lam_tensor_info *ip[KMAX];
    lam_tensor_info *op[KMAX];
    cf_rng rng;
    cf_rng_init(&rng, c->opt->seed, 40);
    for (uint32_t i = 0; i < r->n_in + r->n_out; i++) {
        lam_tensor_info t = LAM_TENSOR_INFO_INIT;
        if (i < r->n_in) {
            t.ndim = 2;
            t.dims[0] = 3;
            t.dims[1] = 37;
            ip[i] = &r->info[i];
        } else {
            op[i - r->n_in] = &r->info[i];
        }
        r->info[i] = t;
    }
    cf_note(c, "in shape of kernel '%s'", g_desc.name);
    lam_status st = g_desc.shape(g_desc.user, NULL, r->n_in, ip, r->n_out, op);
    if (st != LAM_OK) {
        cf_skip(c, "not judged: the kernel refuses F32 (3, 37) inputs: %s", g_kerr);
        return -1;
    }
    for (uint32_t i = 0; i < r->n_in + r->n_out; i++) {
        if (r->info[i].dtype != LAM_DTYPE_F32 || r->info[i].ndim > LAM_MAX_DIMS) {
            cf_skip(c, "not judged: output %u is not F32", i - r->n_in);
            return -1;
        }
        r->count[i] = info_numel(&r->info[i]);
        r->data[i] = calloc(r->count[i] + 1, sizeof(float));
        if (r->data[i] == NULL) {
            cf_fail(c, "out of memory");
            return -1;
        }
        for (size_t k = 0; i < r->n_in && k < r->count[i]; k++) {
            r->data[i][k] = cf_rng_uniform(&rng, -2.0f, 2.0f);
        }
        lam_tensor_view *v = &r->view[i];
        memset(v, 0, sizeof *v);
        v->struct_size = (uint32_t)sizeof *v;
        v->dtype = LAM_DTYPE_F32;
        v->ndim = r->info[i].ndim;
        int64_t s = 4;
        for (int d = (int)v->ndim - 1; d >= 0; d--) {
            v->dims[d] = r->info[i].dims[d];
            v->strides[d] = s;
            s *= v->dims[d];
        }
        r->op[i].struct_size = (uint32_t)sizeof r->op[i];
        r->op[i].view = v;
        r->op[i].data = r->data[i];
        if (i < r->n_in) {
            r->ins[i] = &r->op[i];
        } else {
            r->outs[i - r->n_in] = &r->op[i];
        }
    }
    return 0;
}

static lam_status run_reference(krun *r) {
    lam_kernel_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = (uint32_t)sizeof a;
    a.n_inputs = r->n_in;
    a.n_outputs = r->n_out;
    a.inputs = r->ins;
    a.outputs = r->outs;
    g_kerr[0] = '\0';
    return g_desc.reference(g_desc.user, NULL, &a);
}

static int same_class(float a, float b) {
    return (isnan(a) != 0) == (isnan(b) != 0) && (isinf(a) ? a == b : !isinf(b));
}

/* The kernel on every backend with a device (through lam_kernel_call, which runs the backend's
 * implementation when it has one) against the reference on host memory. */
static void check_kernel_impls(cf_ctx *c) {
    krun r;
    if (capture(c, c->backend) != 0 || krun_make(c, &r) != 0) {
        return;
    }
    cf_note(c, "in the reference of kernel '%s'", g_desc.name);
    lam_status st = run_reference(&r);
    if (st != LAM_OK) {
        cf_fail(c, "the reference fails on F32 (3, 37) inputs: %s %s", lam_status_string(st),
                g_kerr);
        krun_free(&r);
        return;
    }
    if (cf_start(c) != 0) {
        krun_free(&r);
        return;
    }
    char tested[400] = "";
    for (size_t b = 0; b < lam_backend_count() && !cf_failed(c); b++) {
        const char *bname, *why;
        uint32_t nd = 0;
        lam_ctx *ctx = NULL;
        if (lam_backend_get(b, &bname, &nd, &why) != LAM_OK || nd == 0 ||
            lam_ctx_get(bname, &ctx) != LAM_OK) {
            continue;
        }
        int has_impl = 0;
        for (uint32_t i = 0; i < g_desc.n_impls && g_desc.impls != NULL; i++) {
            has_impl |= g_desc.impls[i] != NULL && g_desc.impls[i]->backend != NULL &&
                        strcmp(g_desc.impls[i]->backend, bname) == 0;
        }
        lam_tensor *in[KMAX] = {NULL}, *out[KMAX] = {NULL};
        st = LAM_OK;
        for (uint32_t i = 0; i < r.n_in && st == LAM_OK; i++) {
            lam_shape s = {.ndim = r.info[i].ndim};
            memcpy(s.dims, r.info[i].dims, sizeof s.dims);
            st = lam_tensor_from_data(ctx, &s, r.data[i], r.count[i], &in[i]);
        }
        if (st == LAM_OK) {
            cf_note(c, "in lam_kernel_call('%s') on %s", g_desc.name, bname);
            st = lam_kernel_call(g_desc.name, NULL, r.n_in, in, r.n_out, out);
        }
        for (uint32_t o = 0; o < r.n_out && st == LAM_OK && !cf_failed(c); o++) {
            float *got = malloc((r.count[r.n_in + o] + 1) * sizeof *got);
            const float *ref = r.data[r.n_in + o];
            st = got != NULL ? lam_tensor_read(out[o], got, r.count[r.n_in + o])
                             : LAM_ERR_OUT_OF_MEMORY;
            for (size_t k = 0; st == LAM_OK && k < r.count[r.n_in + o]; k++) {
                double tol = 1e-5 + 1e-4 * fabs((double)ref[k]);
                if (!same_class(got[k], ref[k]) ||
                    (!isnan(ref[k]) && !isinf(ref[k]) && fabs((double)got[k] - ref[k]) > tol)) {
                    cf_fail(c, "%s: output %u of kernel '%s' differs from its reference", bname, o,
                            g_desc.name);
                    cf_expect(c, "out[%zu] = %.9g (reference), tolerance 1e-5 + 1e-4|ref|", k,
                              (double)ref[k]);
                    cf_found(c, "%.9g (%s%s)", (double)got[k], bname,
                             has_impl ? "'s implementation" : ", the reference staged");
                    break;
                }
            }
            free(got);
        }
        if (st != LAM_OK && !cf_failed(c)) {
            cf_fail(c, "%s: lam_kernel_call('%s') failed: %s", bname, g_desc.name,
                    lam_last_error());
        }
        for (uint32_t i = 0; i < KMAX; i++) {
            lam_tensor_release(in[i]);
            lam_tensor_release(out[i]);
        }
        size_t len = strlen(tested);
        snprintf(tested + len, sizeof tested - len, "%s%s%s", len ? ", " : "", bname,
                 has_impl ? "" : " (reference)");
    }
    if (!cf_failed(c)) {
        cf_pass(c, "%s match the reference within 1e-5 + 1e-4|ref|", tested);
    }
    krun_free(&r);
}

/* sum(reference(x) * w) with x = the run's inputs. */
static double weighted(krun *r, const float *w, lam_status *st) {
    *st = run_reference(r);
    double s = 0.0;
    for (size_t k = 0; *st == LAM_OK && k < r->count[r->n_in]; k++) {
        s += (double)r->data[r->n_in][k] * w[k];
    }
    return s;
}

/* The kernel's backward (autograd of lam_kernel_call on the CPU) against central differences of
 * the reference, for output 0 weighted by random w. */
static void check_kernel_backward(cf_ctx *c) {
    krun r;
    if (capture(c, c->backend) != 0) {
        return;
    }
    if (g_desc.backward == NULL) {
        cf_skip(c, "the kernel has no backward (its inputs get no gradient)");
        return;
    }
    if (krun_make(c, &r) != 0) {
        return;
    }
    if (cf_start(c) != 0) {
        krun_free(&r);
        return;
    }
    lam_ctx *ctx = NULL;
    lam_status st = lam_ctx_get("cpu", &ctx);
    size_t nw = r.count[r.n_in];
    float *w = malloc((nw + 1) * sizeof *w);
    cf_rng rng;
    cf_rng_init(&rng, c->opt->seed, 41);
    for (size_t k = 0; w != NULL && k < nw; k++) {
        w[k] = cf_rng_uniform(&rng, -1.0f, 1.0f);
    }
    lam_tensor *in[KMAX] = {NULL}, *out[KMAX] = {NULL}, *wt = NULL;
    for (uint32_t i = 0; i < r.n_in && st == LAM_OK; i++) {
        lam_shape s = {.ndim = r.info[i].ndim};
        memcpy(s.dims, r.info[i].dims, sizeof s.dims);
        st = lam_tensor_from_data(ctx, &s, r.data[i], r.count[i], &in[i]);
        if (st == LAM_OK) {
            st = lam_tensor_attach_grad(in[i]);
        }
    }
    if (st == LAM_OK) {
        int was = lam_autograd_set_recording(1);
        cf_note(c, "in lam_kernel_call('%s') while recording", g_desc.name);
        st = lam_kernel_call(g_desc.name, NULL, r.n_in, in, r.n_out, out);
        lam_autograd_set_recording(was);
    }
    if (st == LAM_OK) {
        st = lam_tensor_from_data(ctx, lam_tensor_shape(out[0]), w, nw, &wt);
    }
    if (st == LAM_OK) {
        cf_note(c, "in the backward of kernel '%s'", g_desc.name);
        st = lam_autograd_backward(out[0], wt);
    }
    int judged = 0;
    for (uint32_t i = 0; i < r.n_in && st == LAM_OK && !cf_failed(c); i++) {
        lam_tensor *g = NULL;
        st = lam_tensor_grad(in[i], &g);
        float *gv = st == LAM_OK ? malloc((r.count[i] + 1) * sizeof *gv) : NULL;
        if (gv != NULL && lam_tensor_read(g, gv, r.count[i]) == LAM_OK) {
            /* a spread of elements, central differences in float32 with h = 1e-2 */
            for (size_t k = 0; k < r.count[i] && !cf_failed(c); k += 1 + r.count[i] / 16) {
                float orig = r.data[i][k];
                lam_status s1, s2;
                r.data[i][k] = orig + 1e-2f;
                double hp = (double)r.data[i][k] - orig, lp = weighted(&r, w, &s1);
                r.data[i][k] = orig - 1e-2f;
                double hm = orig - (double)r.data[i][k], lm = weighted(&r, w, &s2);
                r.data[i][k] = orig;
                if (s1 != LAM_OK || s2 != LAM_OK) {
                    st = s1 != LAM_OK ? s1 : s2;
                    break;
                }
                double fd = (lp - lm) / (hp + hm);
                if (fabs((double)gv[k] - fd) > 1e-2 + 1e-2 * fabs(fd)) {
                    cf_fail(c,
                            "gradient of input %u of kernel '%s' disagrees with central "
                            "differences of its reference",
                            i, g_desc.name);
                    cf_expect(c,
                              "[%zu] = %.6g (central difference, h = 1e-2; tolerance "
                              "1e-2 + 1e-2|fd|)",
                              k, fd);
                    cf_found(c, "%.6g (the kernel's backward)", (double)gv[k]);
                }
                judged++;
            }
        }
        free(gv);
        lam_tensor_release(g);
    }
    if (st != LAM_OK && !cf_failed(c)) {
        cf_fail(c, "recording, backward or reading a gradient failed: %s", lam_last_error());
    } else if (!cf_failed(c)) {
        cf_pass(c, "%d gradient element(s) match central differences of the reference", judged);
    }
    for (uint32_t i = 0; i < KMAX; i++) {
        lam_tensor_release(in[i]);
        lam_tensor_release(out[i]);
    }
    lam_tensor_release(wt);
    free(w);
    krun_free(&r);
}

void cf_kernel_checks(const char *kernel) {
    char name[160];
    snprintf(name, sizeof name, "kernel.%s.impls", kernel);
    cf_add(name, check_kernel_impls, NULL, kernel, 0);
    snprintf(name, sizeof name, "kernel.%s.backward", kernel);
    cf_add(name, check_kernel_backward, NULL, kernel, 0);
}
