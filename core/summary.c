/*
 * lam_block_summary_table: Gluon's summary(), a table of the blocks one forward runs, with
 * their output shapes and parameter counts. The rows come from observing the forward
 * (lam__block_set_observer), so any block, custom ones included, is described by what it
 * actually runs.
 */
#include "block.h"
#include "error.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct row {
    lam_block *block;
    int depth;
    char shape[160];
} row;

typedef struct observed {
    row *rows;
    size_t n, cap;
    size_t *open; /* rows whose forward has begun and not ended, innermost last */
    size_t n_open, open_cap;
    bool oom;
} observed;

static void on_begin(void *user, lam_block *b) {
    observed *o = user;
    if (o->oom) {
        return;
    }
    if (o->n == o->cap || o->n_open == o->open_cap) {
        size_t cap = o->cap ? o->cap * 2 : 16, open_cap = o->open_cap ? o->open_cap * 2 : 16;
        row *rows = o->n == o->cap ? realloc(o->rows, cap * sizeof *rows) : o->rows;
        if (rows == NULL) {
            o->oom = true;
            return;
        }
        o->rows = rows;
        o->cap = o->n == o->cap ? cap : o->cap;
        size_t *open =
            o->n_open == o->open_cap ? realloc(o->open, open_cap * sizeof *open) : o->open;
        if (open == NULL) {
            o->oom = true;
            return;
        }
        o->open = open;
        o->open_cap = o->n_open == o->open_cap ? open_cap : o->open_cap;
    }
    o->rows[o->n] = (row){.block = b, .depth = (int)o->n_open, .shape = "-"};
    o->open[o->n_open++] = o->n++;
}

static void on_end(void *user, lam_block *b, lam_status st, uint32_t n_outputs,
                   lam_tensor *const *outputs) {
    (void)b;
    observed *o = user;
    if (o->oom || o->n_open == 0) {
        return;
    }
    row *r = &o->rows[o->open[--o->n_open]];
    if (st != LAM_OK) {
        return;
    }
    size_t len = 0;
    for (uint32_t i = 0; i < n_outputs && len < sizeof r->shape; i++) {
        char one[sizeof r->shape];
        lam_shape_format(lam_tensor_shape(outputs[i]), one, sizeof one);
        len += (size_t)snprintf(r->shape + len, sizeof r->shape - len, "%s%s", i ? " " : "", one);
    }
}

typedef struct counts {
    int64_t total, trainable;
} counts;

static bool trainable(const lam_param *p) {
    return !lam_param_is_constant(p) && lam_param_grad_req(p) != LAM_GRAD_NULL;
}

/* Elements of b's own parameters; seen (n_seen entries) collects distinct parameters. */
static lam_status own_params(lam_block *b, counts *c, const lam_param ***seen, size_t *n_seen,
                             size_t *seen_cap) {
    lam_param_list *list = NULL;
    lam_status st = lam_block_params(b, &list);
    *c = (counts){0, 0};
    for (size_t i = 0; st == LAM_OK && i < lam_param_list_count(list); i++) {
        const lam_param *p = lam_param_list_get(list, i);
        int64_t n = lam_shape_numel(lam_param_shape(p));
        n = n < 0 ? 0 : n;
        c->total += n;
        c->trainable += trainable(p) ? n : 0;
        bool known = false;
        for (size_t k = 0; k < *n_seen && !known; k++) {
            known = (*seen)[k] == p;
        }
        if (known) {
            continue;
        }
        if (*n_seen == *seen_cap) {
            size_t cap = *seen_cap ? *seen_cap * 2 : 32;
            const lam_param **grown = realloc((void *)*seen, cap * sizeof *grown);
            if (grown == NULL) {
                st = lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_block_summary_table: Out of memory");
                break;
            }
            *seen = grown;
            *seen_cap = cap;
        }
        (*seen)[(*n_seen)++] = p;
    }
    lam_param_list_destroy(list);
    return st;
}

/* The context of b's first parameter that has data, or NULL (the default context). */
static lam_ctx *model_ctx(lam_block *b) {
    lam_param_list *list = NULL;
    lam_ctx *ctx = NULL;
    if (lam_block_collect_params(b, NULL, &list) != LAM_OK) {
        lam_clear_error();
        return NULL;
    }
    for (size_t i = 0; ctx == NULL && i < lam_param_list_count(list); i++) {
        lam_param *p = lam_param_list_get(list, i);
        lam_tensor *t = NULL;
        if (lam_param_is_initialized(p) && lam_param_data(p, &t) == LAM_OK) {
            ctx = lam_tensor_ctx(t);
            lam_tensor_release(t);
        }
    }
    lam_clear_error();
    lam_param_list_destroy(list);
    return ctx;
}

/* Runs one forward of zeros of the given shapes in predict mode, not recording, observed. */
static lam_status run_observed(lam_block *b, uint32_t n_inputs, const lam_shape *shapes,
                               observed *o) {
    lam_ctx *ctx = model_ctx(b);
    lam_tensor **inputs = calloc(n_inputs, sizeof *inputs);
    if (inputs == NULL) {
        return lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_block_summary_table: Out of memory");
    }
    lam_status st = LAM_OK;
    for (uint32_t i = 0; st == LAM_OK && i < n_inputs; i++) {
        st = lam_tensor_full(ctx, &shapes[i], 0.0f, &inputs[i]);
    }
    if (st == LAM_OK) {
        lam__forward_observer obs = {on_begin, on_end, o};
        int rec = lam_autograd_record_begin(0);
        int mode = lam_autograd_train_mode_begin(0);
        const lam__forward_observer *was = lam__block_set_observer(&obs);
        lam_tensor *out = NULL;
        st = lam_block_forward(b, n_inputs, inputs, &out);
        lam__block_set_observer(was);
        lam_autograd_train_mode_end(mode);
        lam_autograd_record_end(rec);
        lam_tensor_release(out);
        if (st == LAM_OK && o->oom) {
            st = lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_block_summary_table: Out of memory");
        }
    }
    for (uint32_t i = 0; i < n_inputs; i++) {
        lam_tensor_release(inputs[i]);
    }
    free(inputs);
    return st;
}

static lam_status format_table(lam_block *root, uint32_t n_inputs, const lam_shape *shapes,
                               const observed *o, char **out) {
    /* The root's own row is left out when it has children (its output is the last row's). */
    size_t first = o->n > 1 && lam_block_child_count(root) > 0 ? 1 : 0;
    int base = first ? 1 : 0;
    char input_shape[200] = "";
    for (uint32_t i = 0, len = 0; i < n_inputs && len < sizeof input_shape; i++) {
        char one[80];
        lam_shape_format(&shapes[i], one, sizeof one);
        len += (uint32_t)snprintf(input_shape + len, sizeof input_shape - len, "%s%s", i ? " " : "",
                                  one);
    }
    int wn = (int)strlen("Layer (type)"), ws = (int)strlen(input_shape);
    ws = ws < 12 ? 12 : ws;
    for (size_t i = first; i < o->n; i++) {
        const row *r = &o->rows[i];
        int l = 2 * (r->depth - base) + (int)strlen(lam_block_name(r->block)) +
                (int)strlen(lam_block_type(r->block)) + 3;
        wn = l > wn ? l : wn;
        l = (int)strlen(r->shape);
        ws = l > ws ? l : ws;
    }
    const int wp = 10, width = wn + 2 + ws + 2 + wp;
    const lam_param **seen = NULL;
    size_t n_seen = 0, seen_cap = 0;
    counts sum = {0, 0};
    lam__strbuf sb = {0};
    bool ok = true;
    char rule[512], dbl[512];
    int rw = width < (int)sizeof rule - 1 ? width : (int)sizeof rule - 1;
    memset(rule, '-', (size_t)rw);
    memset(dbl, '=', (size_t)rw);
    rule[rw] = dbl[rw] = '\0';
    ok = ok && lam__strbuf_printf(&sb, "%s\n%-*s  %*s  %*s\n%s\n", rule, wn, "Layer (type)", ws,
                                  "Output Shape", wp, "Param #", dbl);
    ok = ok && lam__strbuf_printf(&sb, "%-*s  %*s  %*d\n", wn, "Input", ws, input_shape, wp, 0);
    lam_status st = LAM_OK;
    for (size_t i = first; ok && st == LAM_OK && i < o->n; i++) {
        const row *r = &o->rows[i];
        counts c;
        st = own_params(r->block, &c, &seen, &n_seen, &seen_cap);
        sum.total += c.total;
        sum.trainable += c.trainable;
        char name[400];
        snprintf(name, sizeof name, "%*s%s (%s)", 2 * (r->depth - base), "",
                 lam_block_name(r->block), lam_block_type(r->block));
        ok = lam__strbuf_printf(&sb, "%-*s  %*s  %*lld\n", wn, name, ws, r->shape, wp,
                                (long long)c.total);
    }
    int64_t unique_graph = 0, unique_model = 0;
    for (size_t k = 0; k < n_seen; k++) {
        int64_t n = lam_shape_numel(lam_param_shape(seen[k]));
        unique_graph += n > 0 ? n : 0;
    }
    free((void *)seen);
    lam_param_list *all = NULL;
    if (st == LAM_OK) {
        st = lam_block_collect_params(root, NULL, &all);
    }
    for (size_t k = 0; st == LAM_OK && k < lam_param_list_count(all); k++) {
        int64_t n = lam_shape_numel(lam_param_shape(lam_param_list_get(all, k)));
        unique_model += n > 0 ? n : 0;
    }
    lam_param_list_destroy(all);
    ok = ok &&
         lam__strbuf_printf(&sb,
                            "%s\nParameters in forward computation graph, duplicate "
                            "included\n   Total params: %lld\n   Trainable params: %lld\n"
                            "   Non-trainable params: %lld\nShared params in forward "
                            "computation graph: %lld\nUnique parameters in model: %lld\n%s\n",
                            dbl, (long long)sum.total, (long long)sum.trainable,
                            (long long)(sum.total - sum.trainable),
                            (long long)(sum.total - unique_graph), (long long)unique_model, rule);
    if (st == LAM_OK && !ok) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "lam_block_summary_table: Out of memory");
    }
    if (st != LAM_OK) {
        lam__strbuf_fini(&sb);
        return st;
    }
    *out = sb.data;
    return LAM_OK;
}

lam_status lam_block_summary_table(lam_block *b, uint32_t n_inputs, const lam_shape *input_shapes,
                                   char **out) {
    if (out != NULL) {
        *out = NULL;
    }
    if (b == NULL || out == NULL || n_inputs == 0 || input_shapes == NULL) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT,
                          "lam_block_summary_table: Invalid argument, NULL block, output or input "
                          "shapes, or no input");
    }
    for (uint32_t i = 0; i < n_inputs; i++) {
        if (lam_shape_numel(&input_shapes[i]) < 0) {
            char s[80];
            lam_shape_format(&input_shapes[i], s, sizeof s);
            return lam__error(LAM_ERR_SHAPE,
                              "lam_block_summary_table: Bad shape, input %u is %s; every dim "
                              "must be known",
                              (unsigned)i, s);
        }
    }
    observed o = {0};
    lam_status st = run_observed(b, n_inputs, input_shapes, &o);
    if (st == LAM_OK) {
        st = format_table(b, n_inputs, input_shapes, &o, out);
    }
    free(o.rows);
    free(o.open);
    return st;
}
