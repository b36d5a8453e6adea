/*
 * conform_backend.c - the checks of a backend plugin, run by `lamina conform` (see conform.c).
 *
 * The child loads the backend itself (dlopen) and drives its lam_backend_desc directly with a
 * minimal host table (set_error, log, register_*), exactly as a host does, next to the
 * built-in CPU backend loaded the same way as the reference. Each op call the backend claims
 * (supports) runs on seeded random inputs on both (the cases and the kit's own reference for
 * the CPU backend itself are in conform_backend_cases.c); each output buffer has guard elements
 * before and after the output, written through buffer_write and checked afterwards, so an
 * out-of-bounds write is caught; the output itself is poisoned with the same pattern, so an
 * op that returns LAM_OK without writing it is caught; inputs must come back unchanged; NaN and
 * infinities must propagate as they do on the CPU backend.
 */
#define _GNU_SOURCE
#include "conform.h"

#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a backend driven directly ---- */

typedef struct be {
    lam_backend_desc d;
    int have;
    void *dev;
    char file[PATH_MAX];
} be;

static char g_err[1024];
static be *g_into;         /* the slot the next registration fills */
static const char *g_want; /* the backend name to capture */

static lam_status h_set_error_fmt(lam_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static lam_status h_set_error_fmt(lam_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return status;
}

static lam_status h_set_error(lam_status status, const char *msg) {
    snprintf(g_err, sizeof g_err, "%s", msg != NULL ? msg : "");
    return status;
}

static void h_log(lam_log_level level, const char *msg) {
    (void)level;
    (void)msg;
}

static lam_status h_register_backend(lam_plugin *plugin, const lam_backend_desc *d) {
    (void)plugin;
    if (g_into == NULL || g_into->have || d == NULL || d->name == NULL ||
        strcmp(d->name, g_want) != 0) {
        return LAM_OK;
    }
    size_t n = d->struct_size < sizeof g_into->d ? d->struct_size : sizeof g_into->d;
    memset(&g_into->d, 0, sizeof g_into->d);
    memcpy(&g_into->d, d, n);
    g_into->have = 1;
    return LAM_OK;
}

static lam_status h_register_layer(lam_plugin *plugin, const lam_layer_desc *d) {
    (void)plugin;
    (void)d;
    return LAM_OK;
}

static lam_status h_register_kernel(lam_plugin *plugin, const lam_kernel_desc *d) {
    (void)plugin;
    (void)d;
    return LAM_OK;
}

static void *h_alloc(size_t bytes) {
    return malloc(bytes ? bytes : 1);
}

static void h_free(void *p) {
    free(p);
}

/* The host table outlives the call: plugins keep a pointer to it. */
static lam_host_api g_host;

static int be_load(const char *path, const char *name, be *b, char *err, size_t cap) {
    memset(b, 0, sizeof *b);
    snprintf(b->file, sizeof b->file, "%s", path);
    if (g_host.struct_size == 0) {
        g_host.struct_size = (uint32_t)sizeof g_host;
        g_host.abi_version = LAM_ABI_VERSION;
        g_host.abi_fingerprint = LAM_ABI_FINGERPRINT;
        g_host.set_error_fmt = h_set_error_fmt;
        g_host.set_error = h_set_error;
        g_host.log = h_log;
        g_host.register_backend = h_register_backend;
        g_host.register_layer = h_register_layer;
        g_host.register_kernel = h_register_kernel;
        g_host.alloc = h_alloc;
        g_host.free = h_free;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(err, cap, "dlopen %s: %s", path, dlerror());
        return -1;
    }
    void *sym = dlsym(h, LAM_PLUGIN_ENTRY_NAME);
    if (sym == NULL) {
        snprintf(err, cap, "%s has no %s", path, LAM_PLUGIN_ENTRY_NAME);
        return -1;
    }
    lam_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    g_into = b;
    g_want = name;
    lam_status st = entry(&g_host, (lam_plugin *)(void *)&g_host);
    g_into = NULL;
    if (st != LAM_OK || !b->have) {
        snprintf(err, cap, "%s: entry %s, backend '%s' %s: %s", path, lam_status_string(st), name,
                 b->have ? "registered" : "not registered", g_err);
        return -1;
    }
    return 0;
}

/* Loads the backend under test and the reference; opens device 0 of each. 0, 1 (no device,
 * verdict given) or -1 (failure given). */
static int setup_pair(cf_ctx *c, be *t, be *ref) {
    char err[1400];
    cf_note(c, "loading %s", c->plugin->path);
    if (be_load(c->plugin->path, c->backend, t, err, sizeof err) != 0) {
        cf_fail(c, "%s", err);
        return -1;
    }
    char cpu[PATH_MAX];
    snprintf(cpu, sizeof cpu, "%s/lamina_backend_cpu.so", lam_builtin_plugin_dir());
    if (be_load(cpu, "cpu", ref, err, sizeof err) != 0) {
        cf_skip(c, "no reference cpu backend: %s", err);
        return 1;
    }
    uint32_t n = 0;
    char why[512] = "";
    cf_note(c, "in probe");
    lam_status st = t->d.probe(t->d.user, &n, why, sizeof why);
    if (st != LAM_OK || n == 0) {
        cf_skip(c, "backend %s has no device: %s", c->backend, st != LAM_OK ? g_err : why);
        return 1;
    }
    uint32_t nr = 0;
    if (ref->d.probe(ref->d.user, &nr, why, sizeof why) != LAM_OK || nr == 0) {
        cf_skip(c, "the reference cpu backend has no device");
        return 1;
    }
    cf_note(c, "in device_open");
    st = t->d.device_open(t->d.user, 0, &t->dev);
    if (st != LAM_OK) {
        cf_fail(c, "device_open(0) failed: %s", g_err);
        return -1;
    }
    if (ref->d.device_open(ref->d.user, 0, &ref->dev) != LAM_OK) {
        cf_skip(c, "cannot open the reference cpu device: %s", g_err);
        return 1;
    }
    return 0;
}

/* ---- one op call on host data ---- */

#define GUARD 64                               /* guard elements on each side of an output */
static const uint32_t GUARD_BITS = 0x7fc0dead; /* a quiet NaN (or an I32) no op produces */

typedef struct run_out {
    lam_status st;
    int unsupported;
    double *out[CF_OP_MAX_OUT]; /* out_count[o] values each */
    char problem[600];          /* guard or input damage */
    char err[1024];
} run_out;

static void run_out_free(run_out *r) {
    for (int o = 0; o < CF_OP_MAX_OUT; o++) {
        free(r->out[o]);
        r->out[o] = NULL;
    }
}

/* Element k of an output's bytes (4-byte F32 or I32) as a double. */
static double out_value(const lam_tensor_view *v, const unsigned char *p, size_t k) {
    if (v->dtype == LAM_DTYPE_I32) {
        int32_t x;
        memcpy(&x, p + 4 * k, 4);
        return (double)x;
    }
    float f;
    memcpy(&f, p + 4 * k, 4);
    return (double)f;
}

/* Checks the guard elements around output o and (when it was poisoned) that every element was
 * written; fills r->problem. */
static void check_guards(const cf_opcase *tc, uint32_t o, const unsigned char *back, run_out *r) {
    size_t n = tc->out_count[o];
    int before = 0, after = 0;
    for (size_t i = 0; i < GUARD; i++) {
        before += memcmp(back + 4 * i, &GUARD_BITS, 4) != 0;
        after += memcmp(back + 4 * (GUARD + n + i), &GUARD_BITS, 4) != 0;
    }
    if (before || after) {
        size_t first = 0;
        while (first < GUARD && memcmp(back + 4 * (GUARD + n + first), &GUARD_BITS, 4) == 0) {
            first++;
        }
        snprintf(r->problem, sizeof r->problem,
                 "out-of-bounds write: %d guard element(s) before and %d after the %zu-element "
                 "output%s overwritten%s",
                 before, after, n, o ? " 1" : "",
                 after ? " (first one right after the output end)" : "");
        if (after && first > 0) {
            size_t len = strlen(r->problem);
            snprintf(r->problem + len, sizeof r->problem - len, " at +%zu", first);
        }
        return;
    }
    if (!(tc->alias && o == 0) && tc->out_init[o] == NULL) {
        /* The output was poisoned with the guard pattern (a NaN no op makes): an element
         * still holding it was never written, however the op returned. */
        size_t unwritten = 0, first = 0;
        for (size_t i = 0; i < n; i++) {
            if (memcmp(back + 4 * (GUARD + i), &GUARD_BITS, 4) == 0 && unwritten++ == 0) {
                first = i;
            }
        }
        if (unwritten > 0) {
            snprintf(r->problem, sizeof r->problem,
                     "output%s not written: %zu of %zu element(s) still hold the poison bits "
                     "0x%08x stored before the call (the first at [%zu]), although execute "
                     "returned LAM_OK",
                     o ? " 1" : "", unwritten, n, GUARD_BITS, first);
        }
    }
}

/* Runs one call on a backend: each output in a buffer with GUARD elements on each side. */
static void run_case(be *b, const cf_opcase *tc, run_out *r) {
    memset(r, 0, sizeof *r);
    void *ibuf[CF_OP_MAX_IN] = {NULL, NULL, NULL}, *obuf[CF_OP_MAX_OUT] = {NULL, NULL};
    unsigned char *all[CF_OP_MAX_OUT] = {NULL, NULL}, *back[CF_OP_MAX_OUT] = {NULL, NULL};
    unsigned char *inback = NULL;
    lam_tensor_view in[CF_OP_MAX_IN], out[CF_OP_MAX_OUT];
    const lam_tensor_view *inp[CF_OP_MAX_IN], *outp[CF_OP_MAX_OUT];
    lam_op_call call = {.struct_size = (uint32_t)sizeof call,
                        .abi_version = LAM_ABI_VERSION,
                        .op = tc->op,
                        .flags = tc->flags,
                        .n_inputs = tc->n_in,
                        .n_outputs = tc->n_out,
                        .inputs = inp,
                        .outputs = outp,
                        .params = tc->params};
    g_err[0] = '\0';
    for (uint32_t o = 0; o < tc->n_out && r->st == LAM_OK; o++) {
        size_t total = 4 * (GUARD + tc->out_count[o] + GUARD);
        all[o] = malloc(total);
        back[o] = malloc(total);
        if (all[o] == NULL || back[o] == NULL) {
            r->st = LAM_ERR_OUT_OF_MEMORY;
            break;
        }
        for (size_t i = 0; i < total / 4; i++) {
            memcpy(all[o] + 4 * i, &GUARD_BITS, 4);
        }
        if (o == 0 && tc->alias) {
            memcpy(all[o] + 4 * GUARD, tc->in_data[0], 4 * tc->out_count[0]);
        } else if (tc->out_init[o]) {
            memcpy(all[o] + 4 * GUARD, tc->out_init[o], 4 * tc->out_count[o]);
        }
        r->st = b->d.buffer_alloc(b->dev, total, &obuf[o]);
        if (r->st == LAM_OK) {
            r->st = b->d.buffer_write(b->dev, obuf[o], 0, all[o], total);
        }
        out[o] = tc->out[o];
        out[o].buffer = obuf[o];
        out[o].offset = 4 * GUARD;
        outp[o] = &out[o];
    }
    for (uint32_t i = 0; i < tc->n_in && r->st == LAM_OK; i++) {
        in[i] = tc->in[i];
        inp[i] = &in[i];
        if (i == 0 && tc->alias) {
            in[0] = out[0]; /* the output's own view */
            continue;
        }
        r->st = b->d.buffer_alloc(b->dev, tc->in_bytes[i] ? tc->in_bytes[i] : 4, &ibuf[i]);
        if (r->st == LAM_OK && tc->in_bytes[i] > 0) {
            r->st = b->d.buffer_write(b->dev, ibuf[i], 0, tc->in_data[i], tc->in_bytes[i]);
        }
        in[i].buffer = ibuf[i];
    }
    if (r->st != LAM_OK) {
        snprintf(r->err, sizeof r->err, "buffer setup: %.900s", g_err);
        goto done;
    }
    if (!b->d.supports(b->dev, &call)) {
        r->unsupported = 1;
        goto done;
    }
    r->st = b->d.execute(b->dev, &call);
    if (r->st == LAM_OK) {
        r->st = b->d.synchronize(b->dev);
    }
    if (r->st != LAM_OK) {
        snprintf(r->err, sizeof r->err, "%s", g_err);
        goto done;
    }
    for (uint32_t o = 0; o < tc->n_out && r->st == LAM_OK; o++) {
        size_t total = 4 * (GUARD + tc->out_count[o] + GUARD);
        r->st = b->d.buffer_read(b->dev, obuf[o], 0, back[o], total);
        if (r->st != LAM_OK) {
            snprintf(r->err, sizeof r->err, "buffer_read: %.900s", g_err);
            goto done;
        }
        if (r->problem[0] == '\0') {
            check_guards(tc, o, back[o], r);
        }
        r->out[o] = malloc((tc->out_count[o] + 1) * sizeof(double));
        for (size_t k = 0; r->out[o] != NULL && k < tc->out_count[o]; k++) {
            r->out[o][k] = out_value(&tc->out[o], back[o] + 4 * GUARD, k);
        }
    }
    for (uint32_t i = 0; i < tc->n_in && r->problem[0] == '\0'; i++) {
        if (tc->in_bytes[i] == 0 || (i == 0 && tc->alias)) {
            continue;
        }
        free(inback);
        inback = malloc(tc->in_bytes[i]);
        if (inback && b->d.buffer_read(b->dev, ibuf[i], 0, inback, tc->in_bytes[i]) == LAM_OK &&
            memcmp(inback, tc->in_data[i], tc->in_bytes[i]) != 0) {
            snprintf(r->problem, sizeof r->problem, "input %u was modified by the op", i);
        }
    }
done:
    for (int i = 0; i < CF_OP_MAX_IN; i++) {
        if (ibuf[i]) {
            b->d.buffer_free(b->dev, ibuf[i]);
        }
    }
    for (int o = 0; o < CF_OP_MAX_OUT; o++) {
        if (obuf[o]) {
            b->d.buffer_free(b->dev, obuf[o]);
        }
        free(all[o]);
        free(back[o]);
    }
    free(inback);
}

/* ---- comparing ---- */

static int fclass(double v) {
    return isnan(v) ? 1 : isinf(v) ? (v > 0 ? 2 : 3) : 0;
}

static const char *class_name(int k) {
    return k == 1 ? "NaN" : k == 2 ? "+inf" : k == 3 ? "-inf" : "finite";
}

/* Compares output o against the reference under the row's thresholds (the reference rounded
 * to the output's float32 first, as the backend had to). */
static int compare(cf_ctx *c, const cf_oprow *row, const cf_opcase *t, uint32_t o,
                   const double *got, const double *refd, const char *refname) {
    double num = 0.0, den = 0.0, worst = 0.0;
    size_t worst_i = 0;
    const char *which = t->n_out > 1 ? (o ? " (output 1)" : " (output 0)") : "";
    for (size_t i = 0; i < t->out_count[o]; i++) {
        double ref = t->out[o].dtype == LAM_DTYPE_F32 ? (double)(float)refd[i] : refd[i];
        int kr = fclass(ref), kg = fclass(got[i]);
        if (kr != kg) {
            cf_fail(c, "%s: NaN/inf propagation differs from %s%s", t->label, refname, which);
            cf_expect(c, "out[%zu] = %s (%.7g from %s)", i, class_name(kr), ref, refname);
            cf_found(c, "%s (%.7g)", class_name(kg), got[i]);
            return 0;
        }
        if (kr != 0) {
            continue;
        }
        double d = got[i] - ref;
        num += d * d;
        den += ref * ref;
        double e = fabs(d) / fmax(1.0, fabs(ref));
        if (e > worst) {
            worst = e;
            worst_i = i;
        }
    }
    double nmse = den > 0 ? num / den : num;
    if (nmse > row->nmse || worst > row->max_err) {
        cf_fail(c, "%s: output differs from %s%s", t->label, refname, which);
        cf_expect(c, "nmse <= %g and max error <= %g; out[%zu] = %.9g from %s", row->nmse,
                  row->max_err, worst_i, refd[worst_i], refname);
        cf_found(c, "nmse %.3g, max error %.3g; out[%zu] = %.9g", nmse, worst, worst_i,
                 got[worst_i]);
        return 0;
    }
    return 1;
}

/* ---- checks ---- */

static void check_op(cf_ctx *c) {
    const cf_oprow *row = cf_op_row((size_t)c->param);
    be t, ref;
    int rc = setup_pair(c, &t, &ref);
    if (rc != 0) {
        return;
    }
    int ran = 0, unsupported = 0, refused = 0, no_ref = 0;
    /* The CPU backend itself is compared with the kit's own reference. */
    char r1[PATH_MAX], r2[PATH_MAX];
    int self =
        strcmp(c->backend, "cpu") == 0 ||
        (realpath(t.file, r1) != NULL && realpath(ref.file, r2) != NULL && strcmp(r1, r2) == 0);
    const char *refname = self ? "the kit's double-precision reference" : "cpu";
    for (int special = 0; special < 2 && !cf_failed(c); special++) {
        for (int v = 0; !cf_failed(c); v++) {
            cf_opcase tc;
            int made = cf_op_case(row, v, special, c->opt->seed, &tc);
            if (made < 0) {
                cf_fail(c, "out of memory building the %s cases", row->name);
                break;
            }
            if (made == 0) {
                if (v < 4) {
                    continue; /* a variant that does not exist with NaN inputs: try the next */
                }
                break;
            }
            run_out a, b;
            cf_note(c, "in execute of %s on %s", tc.label, c->backend);
            run_case(&t, &tc, &a);
            if (self) {
                memset(&b, 0, sizeof b);
                int ok = 1;
                for (uint32_t o = 0; o < tc.n_out; o++) {
                    b.out[o] = malloc((tc.out_count[o] + 1) * sizeof(double));
                    ok = ok && b.out[o] != NULL;
                }
                b.st = ok && cf_op_reference(&tc, b.out) == 0 ? LAM_OK : LAM_ERR_INVALID_ARGUMENT;
            } else {
                cf_note(c, "in execute of %s on the cpu reference", tc.label);
                run_case(&ref, &tc, &b);
            }
            cf_note(c, "comparing %s", tc.label);
            if (a.unsupported) {
                unsupported++;
            } else if (a.problem[0]) {
                cf_fail(c, "%s: %s", tc.label, a.problem);
                cf_expect(c,
                          "every output element written, guard elements (bits 0x%08x) around "
                          "the output untouched, inputs unchanged",
                          GUARD_BITS);
                cf_found(c, "%s", a.problem);
            } else if (a.st != LAM_OK && b.st != LAM_OK && !b.unsupported) {
                refused++; /* both refuse the call (e.g. argmax of an empty axis): agreement */
            } else if (a.st != LAM_OK) {
                cf_fail(c, "%s: execute failed although supports said yes", tc.label);
                cf_expect(c, "LAM_OK");
                cf_found(c, "%s: %s", lam_status_string(a.st), a.err);
            } else if (b.unsupported) {
                no_ref++; /* the cpu reference lacks this call: nothing to compare with */
            } else if (b.st != LAM_OK) {
                cf_fail(c, "%s: execute succeeded where %s refuses the call", tc.label, refname);
                cf_expect(c, "an error, as %s gives: %s", refname,
                          self ? "the call is invalid" : b.err);
                cf_found(c, "LAM_OK");
            } else {
                int same = 1;
                for (uint32_t o = 0; o < tc.n_out && same; o++) {
                    same = a.out[o] != NULL && b.out[o] != NULL &&
                           compare(c, row, &tc, o, a.out[o], b.out[o], refname);
                }
                ran++;
            }
            run_out_free(&a);
            run_out_free(&b);
            cf_op_case_free(&tc);
        }
    }
    if (!cf_failed(c)) {
        if (ran == 0 && no_ref > 0) {
            cf_skip(c, "not judged: the cpu reference does not support %s for the calls tried",
                    row->name);
        } else if (ran == 0 && refused == 0) {
            cf_skip(c, "not supported: backend %s does not support %s for the calls tried",
                    c->backend, row->name);
        } else {
            cf_pass(c,
                    "%d call(s) match %s (nmse <= %g, max error <= %g), NaN/inf propagate "
                    "alike, guards intact%s%s%s",
                    ran, refname, row->nmse, row->max_err,
                    unsupported ? "; some variants unsupported" : "",
                    refused ? "; some calls refused by both" : "",
                    no_ref ? "; some variants not supported by the cpu reference" : "");
        }
    }
    t.d.device_close(t.dev);
    if (ref.dev != t.dev) {
        ref.d.device_close(ref.dev);
    }
}

static void check_probe(cf_ctx *c) {
    be t;
    char err[1400];
    cf_note(c, "loading %s", c->plugin->path);
    if (be_load(c->plugin->path, c->backend, &t, err, sizeof err) != 0) {
        cf_fail(c, "%s", err);
        return;
    }
    if (t.d.name == NULL || t.d.version == NULL || t.d.version[0] == '\0' || t.d.doc == NULL) {
        cf_fail(c, "descriptor lacks a version or doc string");
        return;
    }
    uint32_t n = 0;
    char why[512];
    memset(why, 0, sizeof why);
    cf_note(c, "in probe");
    lam_status st = t.d.probe(t.d.user, &n, why, sizeof why);
    if (st != LAM_OK) {
        cf_fail(c, "probe failed: %s", g_err);
        return;
    }
    if (n == 0) {
        if (why[0] == '\0') {
            cf_fail(c, "probe found no device and gave no reason");
            cf_expect(c, "a reason in `why`");
            cf_found(c, "an empty string");
        } else {
            cf_skip(c, "backend %s has no device: %s", c->backend, why);
        }
        return;
    }
    char names[600] = "";
    for (uint32_t d = 0; d < n && !cf_failed(c); d++) {
        /* A full struct with bytes after it, then an older, shorter struct: the backend must
         * write only inside struct_size. */
        unsigned char buf[sizeof(lam_device_info) + 64];
        memset(buf, 0xA5, sizeof buf);
        lam_device_info *info = (lam_device_info *)(void *)buf;
        info->struct_size = (uint32_t)sizeof(lam_device_info);
        info->abi_version = LAM_ABI_VERSION;
        cf_note(c, "in device_info(%u)", d);
        st = t.d.device_info(t.d.user, d, info);
        if (st != LAM_OK) {
            cf_fail(c, "device_info(%u) failed: %s", d, g_err);
            break;
        }
        for (size_t i = sizeof(lam_device_info); i < sizeof buf; i++) {
            if (buf[i] != 0xA5) {
                cf_fail(c, "device_info(%u) wrote past struct_size", d);
                cf_expect(c, "nothing written after byte %zu", sizeof(lam_device_info));
                cf_found(c, "byte %zu changed", i);
                return;
            }
        }
        if (memchr(info->name, '\0', sizeof info->name) == NULL ||
            memchr(info->driver, '\0', sizeof info->driver) == NULL ||
            memchr(info->details, '\0', sizeof info->details) == NULL) {
            cf_fail(c, "device_info(%u) left a string without its terminating NUL", d);
            return;
        }
        if (info->name[0] == '\0' || info->kind <= LAM_DEVICE_INVALID ||
            info->kind >= LAM_DEVICE_KIND_COUNT) {
            cf_fail(c, "device %u: empty name or invalid kind", d);
            cf_expect(c, "a name and a kind in 1..%d", LAM_DEVICE_KIND_COUNT - 1);
            cf_found(c, "name '%s', kind %d", info->name, (int)info->kind);
            return;
        }
        size_t len = strlen(names);
        /* Truncation is fine: the names are only echoed in the report. */
        int w = snprintf(names + len, sizeof names - len, "%s%.64s(%u): %.100s", len ? "; " : "",
                         c->backend, d, info->name);
        (void)w;
        /* The header of an ABI 1.0 info only (up to kind): nothing after it may change. */
        memset(buf, 0xA5, sizeof buf);
        info->struct_size = (uint32_t)offsetof(lam_device_info, reserved);
        info->abi_version = LAM_ABI_VERSION;
        st = t.d.device_info(t.d.user, d, info);
        for (size_t i = offsetof(lam_device_info, reserved); i < sizeof buf; i++) {
            if (buf[i] != 0xA5) {
                cf_fail(c, "device_info(%u) with struct_size %zu wrote byte %zu", d,
                        offsetof(lam_device_info, reserved), i);
                cf_expect(c, "fields beyond struct_size left alone");
                cf_found(c, "byte %zu changed (status %s)", i, lam_status_string(st));
                return;
            }
        }
        void *dev = NULL;
        cf_note(c, "in device_open(%u)", d);
        st = t.d.device_open(t.d.user, d, &dev);
        if (st != LAM_OK || dev == NULL) {
            cf_fail(c, "device_open(%u) failed: %s", d, g_err);
            return;
        }
        /* device_caps writes only inside struct_size and always claims F32. */
        unsigned char cbuf[sizeof(lam_backend_caps) + 32];
        memset(cbuf, 0xA5, sizeof cbuf);
        lam_backend_caps *caps = (lam_backend_caps *)(void *)cbuf;
        memset(caps, 0, sizeof *caps);
        caps->struct_size = (uint32_t)sizeof *caps;
        caps->abi_version = LAM_ABI_VERSION;
        cf_note(c, "in device_caps(%u)", d);
        st = t.d.device_caps(dev, caps);
        if (st != LAM_OK) {
            cf_fail(c, "device_caps(%u) failed: %s", d, g_err);
        } else if ((caps->dtypes & (1u << LAM_DTYPE_F32)) == 0) {
            cf_fail(c, "device_caps(%u) does not claim F32", d);
            cf_expect(c, "bit 1u << LAM_DTYPE_F32 set in caps->dtypes (every backend has F32)");
            cf_found(c, "dtypes 0x%x", caps->dtypes);
        }
        for (size_t i = sizeof(lam_backend_caps); i < sizeof cbuf && !cf_failed(c); i++) {
            if (cbuf[i] != 0xA5) {
                cf_fail(c, "device_caps(%u) wrote past struct_size", d);
                cf_expect(c, "nothing written after byte %zu", sizeof(lam_backend_caps));
                cf_found(c, "byte %zu changed", i);
            }
        }
        if (cf_failed(c)) {
            t.d.device_close(dev);
            return;
        }
        /* Buffers: a 0-byte one, a write/read round trip at an offset, a copy. */
        void *b1 = NULL, *b2 = NULL, *b0 = NULL;
        float src[16], mid[16], dst[16];
        for (int i = 0; i < 16; i++) {
            src[i] = (float)i * 1.5f - 3.0f;
            dst[i] = 0.0f;
        }
        cf_note(c, "in buffer calls of device %u", d);
        st = t.d.buffer_alloc(dev, 0, &b0);
        if (st == LAM_OK) {
            st = t.d.buffer_alloc(dev, sizeof src, &b1);
        }
        if (st == LAM_OK) {
            st = t.d.buffer_alloc(dev, sizeof src, &b2);
        }
        if (st == LAM_OK) {
            st = t.d.buffer_write(dev, b1, 0, src, sizeof src);
        }
        if (st == LAM_OK) {
            st = t.d.buffer_copy(dev, b2, 4 * sizeof(float), b1, 0, 8 * sizeof(float));
        }
        if (st == LAM_OK) {
            st = t.d.buffer_read(dev, b1, 0, mid, sizeof mid);
        }
        if (st == LAM_OK) {
            st = t.d.buffer_read(dev, b2, 4 * sizeof(float), dst, 8 * sizeof(float));
        }
        if (st == LAM_OK) {
            st = t.d.synchronize(dev);
        }
        if (st != LAM_OK) {
            cf_fail(c, "buffer calls on device %u failed: %s", d, g_err);
        } else if (memcmp(mid, src, sizeof src) != 0 || memcmp(dst, src, 8 * sizeof(float)) != 0) {
            cf_fail(c, "buffer write/copy/read round trip on device %u lost data", d);
            cf_expect(c, "the bytes written");
            cf_found(c, "other bytes");
        }
        t.d.buffer_free(dev, b0);
        t.d.buffer_free(dev, b1);
        t.d.buffer_free(dev, b2);
        t.d.buffer_free(dev, NULL);
        t.d.device_close(dev);
    }
    if (!cf_failed(c)) {
        cf_pass(c, "%u device(s): %s; info and caps within struct_size, buffers round-trip", n,
                names);
    }
}

/* A call of `op` on one F32 (4,) output and n_in F32 (4,) inputs, buffers NULL: enough for
 * supports, which must not touch buffers. */
static int32_t ask_supports(const be *t, lam_op op, uint32_t n_in) {
    lam_tensor_view v;
    memset(&v, 0, sizeof v);
    v.struct_size = (uint32_t)sizeof v;
    v.dtype = LAM_DTYPE_F32;
    v.ndim = 1;
    v.dims[0] = 4;
    v.strides[0] = 4;
    const lam_tensor_view *ins[3] = {&v, &v, &v}, *outs[1] = {&v};
    lam_op_call call = {.struct_size = (uint32_t)sizeof call,
                        .abi_version = LAM_ABI_VERSION,
                        .op = op,
                        .n_inputs = n_in,
                        .n_outputs = 1,
                        .inputs = ins,
                        .outputs = outs};
    return t->d.supports(t->dev, &call);
}

/* Ops it does not know are answered as unsupported, never crash. */
static void check_unsupported(cf_ctx *c) {
    be t, ref;
    int rc = setup_pair(c, &t, &ref);
    if (rc != 0) {
        return;
    }
    const lam_op bogus[2] = {(lam_op)LAM_OP_COUNT, (lam_op)(LAM_OP_COUNT + 100)};
    for (int i = 0; i < 2 && !cf_failed(c); i++) {
        for (uint32_t n_in = 0; n_in <= 2 && !cf_failed(c); n_in++) {
            cf_note(c, "in supports(op %d, %u inputs)", (int)bogus[i], n_in);
            if (ask_supports(&t, bogus[i], n_in)) {
                cf_fail(c, "supports claims op %d, which ABI %u.%u does not define", (int)bogus[i],
                        LAM_ABI_VERSION_MAJOR, LAM_ABI_VERSION_MINOR);
                cf_expect(c, "0");
                cf_found(c, "nonzero");
            }
        }
    }
    if (!cf_failed(c) && ask_supports(&t, LAM_OP_INVALID, 1)) {
        cf_fail(c, "supports claims LAM_OP_INVALID");
    }
    /* What it supports: variant 0 of each op's cases. */
    int n_sup = 0;
    char missing[1200] = "";
    for (size_t i = 0; i < cf_op_count() && !cf_failed(c); i++) {
        const cf_oprow *row = cf_op_row(i);
        cf_opcase tc;
        int yes = 0;
        if (cf_op_case(row, 0, 0, c->opt->seed, &tc) == 1) {
            run_out a;
            cf_note(c, "in supports/execute of %s", tc.label);
            run_case(&t, &tc, &a);
            yes = !a.unsupported;
            run_out_free(&a);
            cf_op_case_free(&tc);
        }
        if (yes) {
            n_sup++;
        } else {
            size_t len = strlen(missing);
            snprintf(missing + len, sizeof missing - len, "%s%s", len ? ", " : "", row->name);
        }
    }
    if (!cf_failed(c)) {
        cf_pass(c, "unknown ops refused; supports %d of %zu ops%s%s", n_sup, cf_op_count(),
                missing[0] ? "; not supported: " : "", missing);
    }
    t.d.device_close(t.dev);
    if (ref.dev != t.dev) {
        ref.d.device_close(ref.dev);
    }
}

void cf_backend_checks(const char *backend) {
    char name[160];
    snprintf(name, sizeof name, "%s.probe", backend);
    cf_add(name, check_probe, NULL, backend, 0);
    snprintf(name, sizeof name, "%s.unsupported", backend);
    cf_add(name, check_unsupported, NULL, backend, 0);
    for (size_t i = 0; i < cf_op_count(); i++) {
        snprintf(name, sizeof name, "%s.op.%s", backend, cf_op_row(i)->name);
        cf_add(name, check_op, NULL, backend, (int)i);
    }
}
