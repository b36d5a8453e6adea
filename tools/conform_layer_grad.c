/*
 * conform_layer_grad.c - the layer checks that differentiate and compare: gradients against
 * finite differences, fused backward against autograd, every backend against cpu(0), leaks
 * and the allocation-failure sweep. Tolerances are listed in conform_layer.c.
 */
#define _GNU_SOURCE
#include "conform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- gradients ---- */

/* sum(y * r) in double. */
static double weighted_sum(const lam_tensor *y, const float *r, size_t nr, lam_status *st) {
    size_t n;
    float *v = cf_host_copy(y, &n);
    double s = 0.0;
    if (v == NULL || n != nr) {
        *st = LAM_ERR_INTERNAL;
        free(v);
        return 0.0;
    }
    for (size_t i = 0; i < n; i++) {
        s += (double)v[i] * (double)r[i];
    }
    free(v);
    return s;
}

typedef struct grad_set {
    size_t n; /* tensors: input first, then parameters with a gradient */
    char names[17][96];
    float *g[17];
    size_t count[17];
    lam_tensor *data[17]; /* borrowed views for perturbation */
} grad_set;

static void grad_set_free(grad_set *gs) {
    for (size_t i = 0; i < gs->n; i++) {
        free(gs->g[i]);
        lam_tensor_release(gs->data[i]);
    }
    memset(gs, 0, sizeof *gs);
}

/* Records a forward of x through b and back-propagates r; collects the gradients. */
static lam_status grads(cf_ctx *c, lam_block *b, lam_tensor *x, const float *r, size_t nr,
                        grad_set *gs) {
    memset(gs, 0, sizeof *gs);
    lam_tensor *y = NULL, *rt = NULL, *gx = NULL;
    lam_param_list *l = NULL;
    int was = lam_autograd_set_recording(1);
    lam_status st = cf_forward1(c, b, x, &y);
    lam_autograd_set_recording(was);
    if (st == LAM_OK && (size_t)lam_tensor_numel(y) != nr) {
        st = lam_set_error(LAM_ERR_SHAPE, "output has %lld elements, expected %zu",
                           (long long)lam_tensor_numel(y), nr);
    }
    if (st == LAM_OK) {
        st = lam_tensor_from_data(lam_tensor_ctx(y), lam_tensor_shape(y), r, nr, &rt);
    }
    if (st == LAM_OK) {
        cf_note(c, "in backward of %s", lam_block_name(b));
        st = lam_autograd_backward(y, rt);
        cf_note(c, "after backward");
    }
    /* An index input (LAM_DOMAIN_INDEX) has no gradient: only the parameters are judged. */
    int index_input = cf_input_is_index(c->layer, 0);
    if (st == LAM_OK && !index_input) {
        st = lam_tensor_grad(x, &gx);
    }
    if (st == LAM_OK && !index_input) {
        snprintf(gs->names[0], sizeof gs->names[0], "input");
        gs->g[0] = cf_host_copy(gx, &gs->count[0]);
        gs->data[0] = lam_tensor_retain(x);
        gs->n = 1;
    }
    if (st == LAM_OK) {
        st = lam_block_params(b, &l);
    }
    for (size_t i = 0; st == LAM_OK && i < lam_param_list_count(l) && gs->n < 17; i++) {
        lam_param *p = lam_param_list_get(l, i);
        if (lam_param_is_constant(p) || lam_param_grad_req(p) == LAM_GRAD_NULL) {
            continue;
        }
        lam_tensor *g = NULL, *d = NULL;
        st = lam_param_grad(p, &g);
        if (st == LAM_OK) {
            st = lam_param_data(p, &d);
        }
        if (st == LAM_OK) {
            snprintf(gs->names[gs->n], sizeof gs->names[0], "%s", lam_param_list_key(l, i));
            gs->g[gs->n] = cf_host_copy(g, &gs->count[gs->n]);
            gs->data[gs->n] = d;
            d = NULL;
            gs->n++;
        }
        lam_tensor_release(g);
        lam_tensor_release(d);
    }
    lam_param_list_destroy(l);
    lam_tensor_release(gx);
    lam_tensor_release(rt);
    lam_tensor_release(y);
    return st;
}

/* Loss sum(forward(x) * r) without recording. */
static double loss_at(cf_ctx *c, lam_block *b, lam_tensor *x, const float *r, size_t nr,
                      lam_status *st) {
    lam_tensor *y = NULL;
    int was = lam_autograd_set_recording(0);
    /* In train mode, as the recorded forward of grads() (train mode follows recording), so a
     * layer that behaves differently in training (Dropout, BatchNorm) is differentiated as
     * the same function. */
    int mode = lam_autograd_train_mode_begin(1);
    *st = cf_forward1(c, b, x, &y);
    lam_autograd_train_mode_end(mode);
    lam_autograd_set_recording(was);
    double v = *st == LAM_OK ? weighted_sum(y, r, nr, st) : 0.0;
    lam_tensor_release(y);
    return v;
}

/* Central difference of the loss in element k of tensor t with step h. */
static double central(cf_ctx *c, lam_block *b, lam_tensor *x, lam_tensor *t, size_t k, double h,
                      const float *r, size_t nr, lam_status *st) {
    size_t n;
    float *v = cf_host_copy(t, &n);
    if (v == NULL) {
        *st = LAM_ERR_OUT_OF_MEMORY;
        return 0.0;
    }
    float orig = v[k];
    v[k] = (float)(orig + h);
    double hp = (double)v[k] - orig; /* the step really taken in float32 */
    *st = lam_tensor_write(t, v, n);
    double lp = *st == LAM_OK ? loss_at(c, b, x, r, nr, st) : 0.0;
    v[k] = (float)(orig - h);
    double hm = orig - (double)v[k];
    lam_status st2 = lam_tensor_write(t, v, n);
    double lm = st2 == LAM_OK ? loss_at(c, b, x, r, nr, &st2) : 0.0;
    v[k] = orig;
    lam_status st3 = lam_tensor_write(t, v, n);
    free(v);
    if (*st == LAM_OK) {
        *st = st2 != LAM_OK ? st2 : st3;
    }
    return (lp - lm) / (hp + hm);
}

/* A fresh instance initialized with U(-0.5, 0.5) and a random output weighting. */
static lam_status grad_fixture(cf_ctx *c, lam_ctx *ctx, lam_block **b, lam_tensor **x, float **r,
                               size_t *nr) {
    lam_initializer *init = NULL;
    lam_tensor *y = NULL;
    lam_seed(c->opt->seed);
    lam_status st = lam_init_uniform(0.5f, &init);
    if (st == LAM_OK) {
        st = cf_make_layer(c, NULL, ctx, init, b);
    }
    lam_initializer_release(init);
    if (st == LAM_OK) {
        st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 7, -1.0f, 1.0f, x);
    }
    if (st == LAM_OK) {
        st = cf_forward1(c, *b, *x, &y);
    }
    if (st == LAM_OK && !cf_input_is_index(c->layer, 0)) {
        st = lam_tensor_attach_grad(*x);
    }
    if (st == LAM_OK) {
        *nr = (size_t)lam_tensor_numel(y);
        *r = malloc((*nr + 1) * sizeof **r);
        cf_rng rng;
        cf_rng_init(&rng, c->opt->seed, 8);
        for (size_t i = 0; *r && i < *nr; i++) {
            (*r)[i] = cf_rng_uniform(&rng, -1.0f, 1.0f);
        }
    }
    lam_tensor_release(y);
    return st;
}

void cf_check_grad_fd(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    lam_block *b = NULL;
    lam_tensor *x = NULL;
    float *r = NULL;
    size_t nr = 0;
    grad_set gs = {0};
    lam_status st = grad_fixture(c, ctx, &b, &x, &r, &nr);
    if (st == LAM_OK) {
        st = grads(c, b, x, r, nr, &gs);
    }
    if (st != LAM_OK) {
        cf_fail(c, "forward/backward failed: %s", cf_errtext(st));
        goto done;
    }
    {
        /* The same input twice must give the same loss, or no difference means anything. */
        lam_status s1 = LAM_OK, s2 = LAM_OK;
        double l1 = loss_at(c, b, x, r, nr, &s1), l2 = loss_at(c, b, x, r, nr, &s2);
        if (s1 == LAM_OK && s2 == LAM_OK && memcmp(&l1, &l2, sizeof l1) != 0) {
            cf_fail(c, "forward is not deterministic: two forwards of the same input differ, "
                       "so finite differences cannot judge its gradient");
            cf_expect(c, "sum(y * r) = %.9g both times", l1);
            cf_found(c, "%.9g the second time", l2);
            goto done;
        }
    }
    int checked = 0, kinks = 0;
    cf_rng pick;
    cf_rng_init(&pick, c->opt->seed, 9);
    for (size_t t = 0; t < gs.n && !cf_failed(c); t++) {
        size_t n = gs.count[t];
        size_t m = n < 12 ? n : 12;
        for (size_t j = 0; j < m && !cf_failed(c); j++) {
            size_t k = n <= 12 ? j : (size_t)(cf_rng_next(&pick) % n);
            cf_note(c, "in forward (finite difference of %s[%zu])", gs.names[t], k);
            double fd = central(c, b, x, gs.data[t], k, 1e-2, r, nr, &st);
            if (st != LAM_OK) {
                cf_fail(c, "forward failed during finite differences: %s", cf_errtext(st));
                break;
            }
            double g = gs.g[t] ? (double)gs.g[t][k] : 0.0;
            double tol = 1e-2 + 1e-2 * fabs(fd);
            if (!(fabs(g - fd) <= tol)) {
                double fd2 = central(c, b, x, gs.data[t], k, 1e-3, r, nr, &st);
                if (fabs(fd2 - fd) > tol) {
                    kinks++; /* not differentiable here: no verdict */
                    continue;
                }
                cf_fail(c, "gradient w.r.t. %s[%zu] disagrees with central finite differences",
                        gs.names[t], k);
                cf_expect(c,
                          "%.6g (central difference, h=1e-2; h=1e-3 gives %.6g; tolerance "
                          "%.3g)",
                          fd, fd2, tol);
                cf_found(c, "%.6g (backward%s)", g,
                         c->layer->has_backward ? ", fused" : ", autograd of forward");
            }
            checked++;
        }
    }
    if (!cf_failed(c) && checked == 0 && kinks == 0) {
        cf_skip(c, "no element to judge: the input and the parameters have 0 elements");
    } else if (!cf_failed(c) && checked == 0) {
        /* Every point looked like a kink: the two steps never agree, which is what a
         * stochastic or discontinuous forward gives. Judging nothing is not a pass. */
        cf_fail(c,
                "judged 0 elements: at all %d point(s) tried the differences with h=1e-2 and "
                "h=1e-3 disagree (a forward that is not deterministic or not differentiable)",
                kinks);
        cf_expect(c, "gradients compared at some of the points");
        cf_found(c, "0 compared, %d skipped as kinks", kinks);
    } else if (!cf_failed(c)) {
        cf_pass(c, "%d element(s) of %zu tensor(s) match (|g-fd| <= 1e-2 + 1e-2|fd|)%s", checked,
                gs.n, kinks ? ", some points skipped as kinks" : "");
    }
done:
    grad_set_free(&gs);
    free(r);
    lam_tensor_release(x);
    lam_block_release(b);
}

void cf_check_grad_fused(cf_ctx *c) {
    if (!c->layer->have_input) {
        cf_skip(c, "no working instance and input (see %s.setup)", c->layer->name);
        return;
    }
    if (!c->layer->has_backward) {
        cf_skip(c, "the layer has no fused backward (the host differentiates forward)");
        return;
    }
    if (cf_start(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    grad_set ga = {0}, gb = {0};
    lam_block *b = NULL;
    lam_tensor *x = NULL, *x2 = NULL;
    float *r = NULL;
    size_t nr = 0;
    lam_status st = grad_fixture(c, ctx, &b, &x, &r, &nr);
    if (st == LAM_OK) {
        lam_autograd_set_fused_backward(1);
        st = grads(c, b, x, r, nr, &ga);
    }
    if (st == LAM_OK) {
        st = lam_op_copy(x, &x2);
    }
    if (st == LAM_OK) {
        st = lam_tensor_attach_grad(x2);
    }
    if (st == LAM_OK) {
        lam_autograd_set_fused_backward(0);
        st = grads(c, b, x2, r, nr, &gb);
        lam_autograd_set_fused_backward(1);
    }
    if (st != LAM_OK) {
        cf_fail(c, "forward/backward failed: %s", cf_errtext(st));
        goto done;
    }
    for (size_t t = 0; t < ga.n && t < gb.n && !cf_failed(c); t++) {
        double scale = 1.0;
        for (size_t k = 0; gb.g[t] && k < gb.count[t]; k++) {
            scale = fmax(scale, fabs((double)gb.g[t][k]));
        }
        for (size_t k = 0; k < ga.count[t] && ga.g[t] && gb.g[t]; k++) {
            double a = ga.g[t][k], e = gb.g[t][k];
            if (!(fabs(a - e) <= 1e-4 * scale + 1e-3 * fabs(e))) {
                cf_fail(c, "fused backward differs from differentiating forward, gradient of %s",
                        ga.names[t]);
                cf_expect(c, "%s[%zu] = %.6g (autograd of forward)", ga.names[t], k, e);
                cf_found(c, "%.6g (fused backward)", a);
                break;
            }
        }
    }
    if (!cf_failed(c)) {
        cf_pass(c, "fused backward == autograd of forward for %zu gradient(s)", ga.n);
    }
done:
    grad_set_free(&ga);
    grad_set_free(&gb);
    free(r);
    lam_tensor_release(x);
    lam_tensor_release(x2);
    lam_block_release(b);
}

/* ---- every backend ---- */

static int backend_selected(const char *sel, const char *name) {
    if (strcmp(sel, "all") == 0) {
        return 1;
    }
    size_t n = strlen(name);
    for (const char *p = sel; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) {
            return 1;
        }
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

static int close_enough(const float *a, const float *ref, size_t n, size_t *bad) {
    for (size_t i = 0; i < n; i++) {
        if (isnan(ref[i]) && isnan(a[i])) {
            continue;
        }
        if (!(fabs((double)a[i] - ref[i]) <= 1e-4 + 1e-3 * fabs((double)ref[i]))) {
            *bad = i;
            return 0;
        }
    }
    return 1;
}

/* Output and gradients of one instance on ctx (weights from the seed). */
static lam_status run_on(cf_ctx *c, lam_ctx *ctx, const float *xv, size_t nx, const float *r,
                         size_t nr, float **out, size_t *nout, grad_set *gs) {
    lam_block *b = NULL;
    lam_tensor *x = NULL, *y = NULL;
    lam_seed(c->opt->seed);
    lam_status st = cf_make_layer(c, NULL, ctx, NULL, &b);
    (void)xv, (void)nx;
    if (st == LAM_OK) {
        /* stream 13: the values of xv, or the example's (indices, ranges) */
        st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 13, -1.0f, 1.0f, &x);
    }
    if (st == LAM_OK) {
        st = cf_forward1(c, b, x, &y);
    }
    if (st == LAM_OK) {
        *out = cf_host_copy(y, nout);
        if (!cf_input_is_index(c->layer, 0)) {
            st = lam_tensor_attach_grad(x);
        }
    }
    if (st == LAM_OK && r != NULL) {
        st = grads(c, b, x, r, nr, gs);
    }
    lam_tensor_release(x);
    lam_tensor_release(y);
    lam_block_release(b);
    return st;
}

void cf_check_backends(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    char tested[400] = "", skipped[600] = "";
    size_t nb = lam_backend_count();
    lam_ctx *cpu = cf_cpu_ctx();
    size_t nx = (size_t)lam_shape_numel(&c->layer->inputs[0]);
    float *xv = malloc((nx + 1) * sizeof *xv);
    cf_rng rng;
    cf_rng_init(&rng, c->opt->seed, 13);
    for (size_t i = 0; xv && i < nx; i++) {
        xv[i] = cf_rng_uniform(&rng, -1.0f, 1.0f);
    }
    float *ref = NULL;
    size_t nref = 0;
    grad_set gref = {0};
    lam_status st = run_on(c, cpu, xv, nx, NULL, 0, &ref, &nref, &gref);
    float *r = malloc((nref + 1) * sizeof *r);
    for (size_t i = 0; r && i < nref; i++) {
        r[i] = cf_rng_uniform(&rng, -1.0f, 1.0f);
    }
    free(ref);
    ref = NULL;
    if (st == LAM_OK) {
        st = run_on(c, cpu, xv, nx, r, nref, &ref, &nref, &gref);
    }
    if (st != LAM_OK) {
        cf_fail(c, "reference run on cpu failed: %s", cf_errtext(st));
        goto done;
    }
    for (size_t i = 0; i < nb && !cf_failed(c); i++) {
        const char *name, *why;
        uint32_t nd = 0;
        if (lam_backend_get(i, &name, &nd, &why) != LAM_OK || strcmp(name, "cpu") == 0 ||
            !backend_selected(c->opt->backend, name)) {
            continue;
        }
        if (nd == 0) {
            size_t len = strlen(skipped);
            snprintf(skipped + len, sizeof skipped - len, "%s%s: %s", len ? "; " : "", name, why);
            continue;
        }
        for (uint32_t d = 0; d < nd && !cf_failed(c); d++) {
            char spec[96];
            snprintf(spec, sizeof spec, "%s:%u", name, d);
            lam_ctx *ctx = NULL;
            st = lam_ctx_get(spec, &ctx);
            if (st != LAM_OK) {
                size_t len = strlen(skipped);
                snprintf(skipped + len, sizeof skipped - len, "%s%s: %s", len ? "; " : "", spec,
                         lam_last_error());
                continue;
            }
            float *out = NULL;
            size_t nout = 0;
            grad_set g = {0};
            cf_note(c, "on %s", spec);
            st = run_on(c, ctx, xv, nx, r, nref, &out, &nout, &g);
            size_t bad = 0;
            if (st != LAM_OK) {
                cf_fail(c, "%s: forward/backward failed: %s", spec, cf_errtext(st));
            } else if (nout != nref || !close_enough(out, ref, nref, &bad)) {
                cf_fail(c, "%s: output differs from cpu(0)", spec);
                cf_expect(c, "out[%zu] = %.7g (cpu(0)), tolerance 1e-4 + 1e-3|ref|", bad,
                          bad < nref ? (double)ref[bad] : 0.0);
                cf_found(c, "%.7g (%s)", bad < nout ? (double)out[bad] : 0.0, spec);
            } else if (c->layer->flags & LAM_LAYER_STOCHASTIC) {
                /* Training forwards of two instances draw from two streams (the key comes from
                 * the instance's name): gradients are compared at equal RNG state only. */
            } else {
                for (size_t t = 0; t < g.n && t < gref.n && !cf_failed(c); t++) {
                    if (g.count[t] != gref.count[t] || !g.g[t] || !gref.g[t] ||
                        !close_enough(g.g[t], gref.g[t], g.count[t], &bad)) {
                        cf_fail(c, "%s: gradient of %s differs from cpu(0)", spec, g.names[t]);
                        cf_expect(c, "[%zu] = %.7g (cpu(0))", bad,
                                  gref.g[t] && bad < gref.count[t] ? (double)gref.g[t][bad] : 0.0);
                        cf_found(c, "%.7g (%s)",
                                 g.g[t] && bad < g.count[t] ? (double)g.g[t][bad] : 0.0, spec);
                    }
                }
            }
            size_t len = strlen(tested);
            snprintf(tested + len, sizeof tested - len, "%s%s", len ? ", " : "", spec);
            free(out);
            grad_set_free(&g);
        }
    }
    if (!cf_failed(c)) {
        if (tested[0] == '\0') {
            cf_skip(c, "no backend but cpu to compare with%s%s%s",
                    strcmp(c->opt->backend, "all") != 0 ? " (--backend all compares every one)"
                                                        : "",
                    skipped[0] ? "; " : "", skipped);
        } else {
            cf_pass(c, "%s match cpu(0) (%s)%s%s", tested,
                    c->layer->flags & LAM_LAYER_STOCHASTIC
                        ? "outputs outside training; a stochastic layer's gradients draw from "
                          "another random stream per instance, not compared"
                        : "outputs and gradients",
                    skipped[0] ? "; not available: " : "", skipped);
        }
    }
done:
    free(xv);
    free(r);
    free(ref);
    grad_set_free(&gref);
}

/* ---- leaks and allocation failures ---- */

/* Create, initialize, forward, backward (fused when the layer has one), an SGD step,
 * release; returns the first failing status. r NULL weights the outputs with ones. */
static lam_status one_cycle(cf_ctx *c, lam_ctx *ctx, const float *r, size_t nr) {
    lam_block *b = NULL;
    lam_tensor *x = NULL, *y = NULL, *rt = NULL;
    lam_param_list *l = NULL;
    lam_trainer *tr = NULL;
    lam_status st = cf_make_layer(c, NULL, ctx, NULL, &b);
    if (st == LAM_OK) {
        st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 14, -1.0f, 1.0f, &x);
    }
    if (st == LAM_OK) {
        st = lam_tensor_attach_grad(x);
    }
    if (st == LAM_OK) {
        int was = lam_autograd_set_recording(1);
        st = cf_forward1(c, b, x, &y);
        lam_autograd_set_recording(was);
    }
    if (st == LAM_OK && r != NULL && (size_t)lam_tensor_numel(y) == nr) {
        st = lam_tensor_from_data(ctx, lam_tensor_shape(y), r, nr, &rt);
    }
    if (st == LAM_OK) {
        cf_note(c, "in backward of %s%s", lam_block_name(b),
                c->layer->has_backward ? " (fused)" : "");
        st = lam_autograd_backward(y, rt);
    }
    if (st == LAM_OK) {
        st = lam_block_params(b, &l);
    }
    if (st == LAM_OK && lam_param_list_count(l) > 0) {
        cf_note(c, "in an optimizer step over %s's parameters", lam_block_name(b));
        st = lam_trainer_create(l, "sgd", "learning_rate=0.1, momentum=0.9", &tr);
        if (st == LAM_OK) {
            st = lam_trainer_step(tr, 2);
        }
    }
    lam_trainer_destroy(tr);
    lam_param_list_destroy(l);
    lam_tensor_release(rt);
    lam_tensor_release(y);
    lam_tensor_release(x);
    lam_block_release(b);
    return st;
}

void cf_check_leaks(cf_ctx *c) {
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    lam_autograd_set_fused_backward(1);
    size_t n0 = lam_tensor_live_count();
    for (int i = 0; i < 3; i++) {
        cf_note(c, "in create/forward/backward/step cycle %d", i + 1);
        lam_status st = one_cycle(c, ctx, NULL, 0);
        if (st != LAM_OK) {
            cf_fail(c, "cycle %d failed: %s", i + 1, cf_errtext(st));
            cf_expect(c, "create, forward, %s backward and an SGD step succeed",
                      c->layer->has_backward ? "fused" : "differentiated");
            cf_found(c, "%s", cf_errtext(st));
            return;
        }
        size_t n = lam_tensor_live_count();
        if (n != n0) {
            cf_fail(c, "leak: %zu tensor(s) alive after cycle %d released everything", n - n0,
                    i + 1);
            cf_expect(c, "%zu live tensors", n0);
            cf_found(c, "%zu", n);
            return;
        }
    }
    cf_pass(c, "3 create/forward/%s backward/SGD step cycles leave no tensor behind",
            c->layer->has_backward ? "fused" : "differentiated");
}

void cf_check_alloc_sweep(cf_ctx *c) {
    lam_failalloc fa;
    if (!cf_failalloc_active(&fa)) {
        cf_failalloc_reexec(c); /* the sweep runs where the injector is preloaded */
        return;
    }
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    /* A first cycle opens the device and warms lazy state, outside the sweep. */
    size_t nr = (size_t)lam_shape_numel(&c->layer->inputs[0]) * 64 + 4096;
    float *r = NULL;
    lam_status st = one_cycle(c, ctx, NULL, 0);
    if (st != LAM_OK) {
        cf_fail(c, "a cycle without failures failed: %s", cf_errtext(st));
        return;
    }
    {
        /* The output size, for the backward's head gradient. */
        lam_block *b = NULL;
        lam_tensor *x = NULL, *y = NULL;
        st = cf_make_layer(c, NULL, ctx, NULL, &b);
        if (st == LAM_OK) {
            st = cf_rand_tensor(c, ctx, &c->layer->inputs[0], 14, -1.0f, 1.0f, &x);
        }
        if (st == LAM_OK) {
            st = cf_forward1(c, b, x, &y);
        }
        nr = st == LAM_OK ? (size_t)lam_tensor_numel(y) : 0;
        lam_tensor_release(x);
        lam_tensor_release(y);
        lam_block_release(b);
        r = malloc((nr + 1) * sizeof *r);
        for (size_t i = 0; r && i < nr; i++) {
            r[i] = 1.0f;
        }
    }
    size_t live0 = lam_tensor_live_count();
    /* Every k up to SWEEP_EXHAUSTIVE, then every ~1% (a cycle of many thousand allocations
     * would otherwise take quadratic time). */
    enum { SWEEP_EXHAUSTIVE = 2000 };
    unsigned long k = 1, tried = 0, failures = 0, last = 0;
    for (; k < 100000000UL; k += k < SWEEP_EXHAUSTIVE ? 1 : k / 100) {
        tried++;
        last = k;
        cf_note(c, "with allocation %lu failing (create/initialize/forward/backward)", k);
        lam_clear_error();
        fa.arm(k);
        st = one_cycle(c, ctx, r, nr);
        int injected = fa.injected();
        fa.arm(0);
        size_t live = lam_tensor_live_count();
        if (live != live0) {
            cf_fail(c, "allocation %lu failing leaks %ld tensor(s)", k, (long)live - (long)live0);
            cf_expect(c, "%zu live tensors after the failed cycle was released", live0);
            cf_found(c, "%zu (cycle returned %s)", live,
                     st == LAM_OK ? "LAM_OK" : lam_status_string(st));
            break;
        }
        if (injected && st == LAM_OK) {
            continue; /* the failure was absorbed (e.g. a fallback): fine */
        }
        if (injected) {
            if (lam_last_error()[0] == '\0') {
                cf_fail(c, "allocation %lu failing gives %s without a message", k,
                        lam_status_string(st));
                cf_expect(c, "an error status with a message (lam_last_error)");
                cf_found(c, "%s and an empty message", lam_status_string(st));
                break;
            }
            failures++;
            continue;
        }
        if (st != LAM_OK) {
            cf_fail(c, "cycle failed without an injected failure: %s", cf_errtext(st));
            break;
        }
        break; /* fewer than k allocations: the whole cycle succeeded */
    }
    free(r);
    if (!cf_failed(c)) {
        cf_pass(c,
                "%s%lu allocation(s) failing in turn give a clean error (%lu errors, no crash, "
                "no leaked tensor)",
                last > SWEEP_EXHAUSTIVE ? "sampled: " : "each of ", tried - 1, failures);
    }
}

/* Batch size of the second guarded cycle: it makes every tensor of the batch a multiple of 16
 * floats, so the CPU backend's 64-byte-aligned buffers end right at their guard pages too. */
enum { BOUNDS_BATCH = 16 };

void cf_check_bounds(cf_ctx *c) {
    lam_failalloc fa;
    if (!cf_failalloc_active(&fa)) {
        cf_failalloc_reexec(c); /* guard pages come with the preloaded injector */
        return;
    }
    if (cf_need_setup(c) != 0) {
        return;
    }
    lam_ctx *ctx = cf_cpu_ctx();
    /* The setup's input, then (for a one-input layer with a batch dimension) a batch of 16. A
     * block asked with an alignment (the CPU backend's buffers: 64) ends at the guard only when
     * its size is a multiple of it, which the second input arranges for inputs, outputs and
     * their gradients; the plugin's own malloc'ed buffers end at the guard with either. */
    cf_layer big = *c->layer;
    cf_ctx cb = *c;
    cb.layer = &big;
    int second = big.n_inputs == 1 && big.inputs[0].ndim >= 2;
    if (second) {
        big.inputs[0].dims[0] = BOUNDS_BATCH;
    }
    char refused[512] = "";
    for (int pass = 0; pass < 1 + second; pass++) {
        cf_ctx *cc = pass == 0 ? c : &cb;
        if (cf_guard_begin(cc, &fa) != 0) {
            cf_skip(c, "the allocation injector is loaded but its guard mode does not take "
                       "effect (blocks do not end at a guard page); nothing was checked");
            return;
        }
        /* Parameters, inputs, outputs, gradients and the plugin's own buffers are all heap
         * blocks made here, each ending at a guard page. */
        lam_status st = one_cycle(cc, ctx, NULL, 0);
        cf_guard_end(&fa);
        if (st != LAM_OK && pass == 0) {
            cf_fail(c, "a cycle with guard pages failed: %s", cf_errtext(st));
            cf_expect(c, "create, forward, backward and an SGD step succeed");
            cf_found(c, "%s", cf_errtext(st));
            return;
        }
        if (st != LAM_OK) {
            snprintf(refused, sizeof refused, "; batch %d refused: %s", BOUNDS_BATCH,
                     cf_errtext(st));
        }
    }
    char inputs[64] = "the setup's input";
    if (second) {
        snprintf(inputs, sizeof inputs, "the setup's input and a batch of %d", BOUNDS_BATCH);
    }
    cf_pass(c,
            "create/forward/%s backward/SGD step with a guard page after every heap block: "
            "no access out of bounds (%s)%s",
            c->layer->has_backward ? "fused" : "differentiated", inputs, refused);
}
