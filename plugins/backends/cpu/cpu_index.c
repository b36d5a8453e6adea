/*
 * cpu_index.c - ops that move elements by index or by condition: GATHER_ROWS,
 * SCATTER_ADD_ROWS (I32 or I64 indices, bounds-checked), WHERE, PAD and CAST.
 *
 * Bad indices and unrepresentable casts are the caller's errors, reported with the position
 * and the value; gather and scatter check every index before they write anything.
 */
#include "cpu_internal.h"

#include <math.h>
#include <string.h>

static lam_status dtype_error(const cpu_call *c, const char *what, const cpu_view *v,
                              const char *allowed) {
    return cpu_error(LAM_ERR_DTYPE,
                     "cpu: Unsupported dtype, %s %s has dtype %d; the cpu backend takes %s there",
                     c->name, what, (int)v->dtype, allowed);
}

static lam_status dims_error(const cpu_call *c, const char *what, const cpu_view *v, uint32_t nd,
                             const int64_t *want) {
    char got[160];
    char exp[160];
    return cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s %s has dims %s, expected %s", c->name,
                     what, lam_dims_format(got, sizeof got, v->ndim, v->dims),
                     lam_dims_format(exp, sizeof exp, nd, want));
}

static int has_dims(const cpu_view *v, uint32_t nd, const int64_t *want) {
    if (v->ndim != nd) {
        return 0;
    }
    for (uint32_t d = 0; d < nd; d++) {
        if (v->dims[d] != want[d]) {
            return 0;
        }
    }
    return 1;
}

static int64_t index_at(const cpu_view *idx, int64_t m) {
    if (idx->dtype == LAM_DTYPE_I32) {
        return ((const int32_t *)(const void *)idx->data)[m * idx->st[0]];
    }
    return ((const int64_t *)(const void *)idx->data)[m * idx->st[0]];
}

/* GATHER_ROWS and SCATTER_ADD_ROWS: table (V, D), indices (M), rows (M, D). */
static lam_status rows_op(const cpu_call *c) {
    const int gather = c->op == LAM_OP_GATHER_ROWS;
    const cpu_view *table = gather ? &c->in[0] : &c->out[0];
    const cpu_view *rows = gather ? &c->out[0] : &c->in[0];
    const cpu_view *idx = &c->in[1];
    if (idx->dtype != LAM_DTYPE_I32 && idx->dtype != LAM_DTYPE_I64) {
        return dtype_error(c, "input 1 (indices)", idx, "int32 or int64");
    }
    /* gather copies rows of any dtype; scatter adds float32 */
    if (!gather && (table->dtype != LAM_DTYPE_F32 || rows->dtype != LAM_DTYPE_F32)) {
        return dtype_error(c, table->dtype != LAM_DTYPE_F32 ? "output" : "input 0",
                           table->dtype != LAM_DTYPE_F32 ? table : rows, "float32");
    }
    if (gather && rows->dtype != table->dtype) {
        return dtype_error(c, "output", rows, "the table's dtype");
    }
    if (table->ndim != 2) {
        char got[160];
        return cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s needs a 2-D table, got dims %s",
                         c->name, lam_dims_format(got, sizeof got, table->ndim, table->dims));
    }
    if (idx->ndim != 1) {
        char got[160];
        return cpu_error(LAM_ERR_SHAPE, "cpu: Shape mismatch, %s needs 1-D indices, got dims %s",
                         c->name, lam_dims_format(got, sizeof got, idx->ndim, idx->dims));
    }
    const int64_t v = table->dims[0], d = table->dims[1], m = idx->dims[0];
    const int64_t want[2] = {m, d};
    if (!has_dims(rows, 2, want)) {
        return dims_error(c, gather ? "output" : "input 0", rows, 2, want);
    }
    if (c->dry) {
        return LAM_OK;
    }
    for (int64_t i = 0; i < m; i++) {
        const int64_t at = index_at(idx, i);
        if (at < 0 || at >= v) {
            return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                             "cpu: Index out of range, %s index at position %lld is %lld, "
                             "outside [0, %lld)",
                             c->name, (long long)i, (long long)at, (long long)v);
        }
    }
    const size_t es = table->esize;
    for (int64_t i = 0; i < m; i++) {
        const int64_t at = index_at(idx, i);
        char *t = table->data + (size_t)(at * table->st[0]) * es;
        char *r = rows->data + (size_t)(i * rows->st[0]) * es;
        if (!gather) { /* in increasing m, so repeated indices add in a fixed order */
            float *tf = (float *)(void *)t;
            const float *rf = (const float *)(const void *)r;
            for (int64_t j = 0; j < d; j++) {
                tf[j * table->st[1]] += rf[j * rows->st[1]];
            }
        } else if (table->st[1] == 1 && rows->st[1] == 1) {
            memcpy(r, t, (size_t)d * es);
        } else {
            for (int64_t j = 0; j < d; j++) {
                memcpy(r + (size_t)(j * rows->st[1]) * es, t + (size_t)(j * table->st[1]) * es, es);
            }
        }
    }
    return LAM_OK;
}

/* WHERE: out = cond != 0 ? x : y; cond F32 or U8, x, y and out of one dtype. */
static lam_status where_op(const cpu_call *c) {
    const cpu_view *cond = &c->in[0];
    const cpu_view *out = &c->out[0];
    if (cond->dtype != LAM_DTYPE_F32 && cond->dtype != LAM_DTYPE_U8) {
        return dtype_error(c, "input 0 (condition)", cond, "float32 or uint8");
    }
    for (uint32_t i = 1; i < 3; i++) {
        if (c->in[i].dtype != out->dtype) {
            return dtype_error(c, i == 1 ? "input 1" : "input 2", &c->in[i], "the output's dtype");
        }
    }
    for (uint32_t i = 0; i < 3; i++) {
        if (!has_dims(&c->in[i], out->ndim, out->dims)) {
            static const char *const names[3] = {"input 0 (condition)", "input 1", "input 2"};
            return dims_error(c, names[i], &c->in[i], out->ndim, out->dims);
        }
    }
    if (c->dry || cpu_count(out) == 0) {
        return LAM_OK;
    }
    const int64_t *st[4] = {out->st, cond->st, c->in[1].st, c->in[2].st};
    int64_t off[4] = {0, 0, 0, 0};
    int64_t idx[LAM_MAX_DIMS] = {0};
    const size_t es = out->esize;
    do {
        const int take_x = cond->dtype == LAM_DTYPE_U8
                               ? ((const uint8_t *)(const void *)cond->data)[off[1]] != 0
                               : cpu_f32(cond)[off[1]] != 0.0f; /* NaN != 0: x */
        const cpu_view *src = take_x ? &c->in[1] : &c->in[2];
        /* memmove: out may be the very view of x or y (in place) */
        memmove(out->data + (size_t)off[0] * es, src->data + (size_t)off[take_x ? 2 : 3] * es, es);
    } while (cpu_next(out->ndim, out->dims, idx, 4, off, st));
    return LAM_OK;
}

/* PAD: out = value outside x, x inside; float32. */
static lam_status pad_op(const cpu_call *c) {
    const lam_pad_params *p = lam_op_params(c, lam_pad_params);
    const cpu_view *x = &c->in[0];
    const cpu_view *out = &c->out[0];
    if (p == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, pad needs its parameters (lam_pad_params, "
                         "struct_size set)");
    }
    if (x->dtype != LAM_DTYPE_F32 || out->dtype != LAM_DTYPE_F32) {
        return dtype_error(c, x->dtype != LAM_DTYPE_F32 ? "input" : "output",
                           x->dtype != LAM_DTYPE_F32 ? x : out, "float32");
    }
    int64_t want[LAM_MAX_DIMS];
    for (uint32_t d = 0; d < x->ndim; d++) {
        if (p->before[d] < 0 || p->after[d] < 0 || p->before[d] > INT64_MAX / 4 ||
            p->after[d] > INT64_MAX / 4) {
            return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                             "cpu: Invalid argument, pad axis %u has padding %lld/%lld; it must "
                             "be >= 0",
                             (unsigned)d, (long long)p->before[d], (long long)p->after[d]);
        }
        if (__builtin_add_overflow(x->dims[d], p->before[d] + p->after[d], &want[d])) {
            return cpu_error(LAM_ERR_SHAPE, "cpu: Invalid shape, pad axis %u grows too large",
                             (unsigned)d);
        }
    }
    if (!has_dims(out, x->ndim, want)) {
        return dims_error(c, "output", out, x->ndim, want);
    }
    if (c->dry || cpu_count(out) == 0) {
        return LAM_OK;
    }
    const float value = (float)p->value;
    const float *xb = cpu_f32(x);
    float *ob = cpu_f32(out);
    const int64_t *st[1] = {out->st};
    int64_t off[1] = {0};
    int64_t idx[LAM_MAX_DIMS] = {0};
    do {
        int64_t xo = 0;
        int inside = 1;
        for (uint32_t d = 0; d < out->ndim && inside; d++) {
            const int64_t at = idx[d] - p->before[d];
            inside = at >= 0 && at < x->dims[d];
            xo += at * x->st[d];
        }
        ob[off[0]] = inside ? xb[xo] : value;
    } while (cpu_next(out->ndim, out->dims, idx, 1, off, st));
    return LAM_OK;
}

static int is_int(lam_dtype t) {
    return t == LAM_DTYPE_I32 || t == LAM_DTYPE_I64 || t == LAM_DTYPE_U8;
}

/* Whether integer value v fits dtype t (an integer dtype). */
static int int_fits(int64_t v, lam_dtype t) {
    switch (t) {
    case LAM_DTYPE_I32:
        return v >= INT32_MIN && v <= INT32_MAX;
    case LAM_DTYPE_U8:
        return v >= 0 && v <= 255;
    default:
        return 1;
    }
}

/* Whether float v truncates to a value of integer dtype t (NaN never does). */
static int float_fits(double v, lam_dtype t) {
    switch (t) {
    case LAM_DTYPE_I32:
        return v > -2147483649.0 && v < 2147483648.0;
    case LAM_DTYPE_U8:
        return v > -1.0 && v < 256.0;
    default:
        return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
    }
}

static const char *dtype_name(lam_dtype t) {
    switch (t) {
    case LAM_DTYPE_F32:
        return "float32";
    case LAM_DTYPE_I32:
        return "int32";
    case LAM_DTYPE_I64:
        return "int64";
    default:
        return "uint8";
    }
}

/* CAST among F32, I32, I64 and U8. */
static lam_status cast_op(const cpu_call *c) {
    const cpu_view *x = &c->in[0];
    const cpu_view *out = &c->out[0];
    const lam_dtype from = x->dtype, to = out->dtype;
    if (from != LAM_DTYPE_F32 && !is_int(from)) {
        return dtype_error(c, "input", x, "float32, int32, int64 or uint8");
    }
    if (to != LAM_DTYPE_F32 && !is_int(to)) {
        return dtype_error(c, "output", out, "float32, int32, int64 or uint8");
    }
    if (!has_dims(x, out->ndim, out->dims)) {
        return dims_error(c, "input", x, out->ndim, out->dims);
    }
    if (c->dry || cpu_count(out) == 0) {
        return LAM_OK;
    }
    const int64_t *st[2] = {out->st, x->st};
    int64_t off[2] = {0, 0};
    int64_t idx[LAM_MAX_DIMS] = {0};
    int64_t pos = 0;
    do {
        const char *src = x->data + (size_t)off[1] * x->esize;
        char *dst = out->data + (size_t)off[0] * out->esize;
        int64_t iv = 0;
        if (from == LAM_DTYPE_F32) {
            const float f = *(const float *)(const void *)src;
            if (to == LAM_DTYPE_F32) {
                *(float *)(void *)dst = f;
                continue;
            }
            if (!float_fits((double)f, to)) { /* NaN fails every comparison */
                return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                                 "cpu: Invalid value, cast element %lld is %g, not representable "
                                 "in %s",
                                 (long long)pos, (double)f, dtype_name(to));
            }
            iv = (int64_t)f; /* truncates toward zero */
        } else if (from == LAM_DTYPE_I32) {
            iv = *(const int32_t *)(const void *)src;
        } else if (from == LAM_DTYPE_I64) {
            iv = *(const int64_t *)(const void *)src;
        } else {
            iv = *(const uint8_t *)(const void *)src;
        }
        if (to == LAM_DTYPE_F32) {
            *(float *)(void *)dst = (float)iv; /* rounds to nearest */
            continue;
        }
        if (!int_fits(iv, to)) {
            return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                             "cpu: Invalid value, cast element %lld is %lld, not representable "
                             "in %s",
                             (long long)pos, (long long)iv, dtype_name(to));
        }
        switch (to) {
        case LAM_DTYPE_I32:
            *(int32_t *)(void *)dst = (int32_t)iv;
            break;
        case LAM_DTYPE_I64:
            *(int64_t *)(void *)dst = iv;
            break;
        default:
            *(uint8_t *)(void *)dst = (uint8_t)iv;
            break;
        }
    } while (pos++, cpu_next(out->ndim, out->dims, idx, 2, off, st));
    return LAM_OK;
}

lam_status cpu_index(const cpu_call *c) {
    switch (c->op) {
    case LAM_OP_GATHER_ROWS:
    case LAM_OP_SCATTER_ADD_ROWS:
        return rows_op(c);
    case LAM_OP_WHERE:
        return where_op(c);
    case LAM_OP_PAD:
        return pad_op(c);
    default:
        return cast_op(c);
    }
}
