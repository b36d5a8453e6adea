/*
 * embedding.c - Embedding, Gluon's nn.Embedding: integer indices of any shape pick rows of a
 * (input_dim, output_dim) weight, y[..., :] = weight[x[...], :], so y has x's shape plus
 * output_dim. Indices are int32 or int64.
 *
 * An index outside [0, input_dim) is an error naming its value and position. The layer checks
 * the indices on the host before the GATHER_ROWS op runs, so the message names the layer and
 * the position in the input's own shape on every backend (the op itself reports a bad index
 * only as a flat position, and on an asynchronous backend at the next synchronize). The check
 * reads the indices back: on a GPU that waits for the work that produced them, which costs
 * little for indices fed from host data (the usual case).
 *
 * The gradient reaches the weight through GATHER_ROWS's rule (a scatter-add: repeated indices
 * sum); the indices get none.
 */
#include "lamina/plugin_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lam_host_api *g_host;

static const lam_attr_desc attr_input_dim = {LAM_ATTR_DESC_HEADER, .name = "input_dim",
                                             .type = LAM_ATTR_INT, .default_value = NULL,
                                             .doc = "rows of the table (vocabulary size)"};
static const lam_attr_desc attr_output_dim = {LAM_ATTR_DESC_HEADER, .name = "output_dim",
                                              .type = LAM_ATTR_INT, .default_value = NULL,
                                              .doc = "width of each embedding vector"};
static const lam_attr_desc attr_weight_init = {
    LAM_ATTR_DESC_HEADER, .name = "weight_initializer", .type = LAM_ATTR_STRING,
    .default_value = "",
    .doc = "initializer of weight, e.g. normal; empty uses the block's initializer"};
static const lam_attr_desc *const embedding_attrs[] = {&attr_input_dim, &attr_output_dim,
                                                       &attr_weight_init};

typedef struct embedding_state {
    int64_t input_dim;
    int64_t output_dim;
} embedding_state;

static lam_status embedding_create(void *user, lam_layer *layer, const lam_attrs *attrs,
                                   void **state) {
    (void)user;
    *state = NULL;
    const char *name = g_host->layer_name(layer);
    int64_t input_dim = 0, output_dim = 0;
    const char *init = NULL;
    lam_status st = g_host->attr_int(attrs, "input_dim", &input_dim);
    if (st == LAM_OK) {
        st = g_host->attr_int(attrs, "output_dim", &output_dim);
    }
    if (st == LAM_OK) {
        st = g_host->attr_string(attrs, "weight_initializer", &init);
    }
    if (st != LAM_OK) {
        return st;
    }
    if (input_dim <= 0 || output_dim <= 0) {
        return lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                "%s: Invalid argument, input_dim and output_dim must be positive, "
                                "got input_dim=%lld, output_dim=%lld",
                                name, (long long)input_dim, (long long)output_dim);
    }
    embedding_state *s = malloc(sizeof *s);
    if (s == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY, "%s: Out of memory, layer state",
                                name);
    }
    s->input_dim = input_dim;
    s->output_dim = output_dim;
    const lam_shape w = {.ndim = 2, .dims = {input_dim, output_dim}};
    st = g_host->layer_declare_param(layer, "weight", &w,
                                     init != NULL && init[0] != '\0' ? init : NULL, 0);
    if (st != LAM_OK) {
        free(s);
        return st;
    }
    *state = s;
    return LAM_OK;
}

static void embedding_destroy(void *state) {
    free(state);
}

static lam_status check_input(const lam_layer *layer, lam_dtype dtype, uint32_t ndim) {
    const char *name = g_host->layer_name(layer);
    if (dtype != LAM_DTYPE_I32 && dtype != LAM_DTYPE_I64) {
        return lam_plugin_error(g_host, LAM_ERR_DTYPE,
                                "%s: Dtype mismatch, indices must be int32 or int64, got %s", name,
                                lam_p_dtype_name(dtype));
    }
    if (ndim >= LAM_MAX_DIMS) {
        return lam_plugin_error(g_host, LAM_ERR_SHAPE,
                                "%s: Shape mismatch, indices have rank %u, at most %d", name,
                                (unsigned)ndim, LAM_MAX_DIMS - 1);
    }
    return LAM_OK;
}

static lam_status embedding_infer_shape(void *state, lam_layer *layer, uint32_t n_inputs,
                                        const lam_tensor_info *const *inputs, uint32_t n_outputs,
                                        lam_tensor_info *const *outputs) {
    const embedding_state *s = state;
    (void)n_inputs;
    (void)n_outputs;
    const lam_tensor_info *x = inputs[0];
    lam_status st = check_input(layer, x->dtype, x->ndim);
    if (st != LAM_OK) {
        return st;
    }
    outputs[0]->dtype = LAM_DTYPE_F32;
    outputs[0]->ndim = x->ndim + 1;
    memcpy(outputs[0]->dims, x->dims, sizeof outputs[0]->dims);
    outputs[0]->dims[x->ndim] = s->output_dim;
    return LAM_OK;
}

/* "input[1, 2]" for flat position k of an input of shape `xs`. */
static void position_text(const lam_shape *xs, int64_t k, char *buf, size_t cap) {
    int64_t idx[LAM_MAX_DIMS] = {0};
    for (uint32_t i = xs->ndim; i-- > 0;) {
        idx[i] = xs->dims[i] > 0 ? k % xs->dims[i] : 0;
        k = xs->dims[i] > 0 ? k / xs->dims[i] : 0;
    }
    size_t n = (size_t)snprintf(buf, cap, "input[");
    for (uint32_t i = 0; i < xs->ndim && n < cap; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)idx[i]);
    }
    if (n < cap) {
        snprintf(buf + n, cap - n, "]");
    }
}

/* Every index in [0, input_dim), or an error naming the first one that is not. */
static lam_status check_indices(const embedding_state *s, const lam_layer *layer,
                                const lam_tensor *x) {
    const lam_shape *xs = g_host->tensor_shape(x);
    const lam_dtype dt = g_host->tensor_dtype(x);
    int64_t count = 1;
    for (uint32_t i = 0; i < xs->ndim; i++) {
        count *= xs->dims[i];
    }
    if (count <= 0) {
        return LAM_OK;
    }
    const size_t esize = lam_dtype_size(dt);
    void *buf = g_host->alloc((size_t)count * esize);
    if (buf == NULL) {
        return lam_plugin_error(g_host, LAM_ERR_OUT_OF_MEMORY,
                                "%s: Out of memory, %lld indices to check",
                                g_host->layer_name(layer), (long long)count);
    }
    lam_status st = g_host->tensor_read(x, buf, (size_t)count * esize);
    for (int64_t k = 0; st == LAM_OK && k < count; k++) {
        const int64_t v =
            dt == LAM_DTYPE_I64 ? ((const int64_t *)buf)[k] : (int64_t)((const int32_t *)buf)[k];
        if (v < 0 || v >= s->input_dim) {
            char pos[200];
            position_text(xs, k, pos, sizeof pos);
            st = lam_plugin_error(g_host, LAM_ERR_INVALID_ARGUMENT,
                                  "%s: Index out of range, %s is %lld, input_dim is %lld (valid: "
                                  "0 to %lld)",
                                  g_host->layer_name(layer), pos, (long long)v,
                                  (long long)s->input_dim, (long long)(s->input_dim - 1));
        }
    }
    g_host->free(buf);
    return st;
}

static lam_status embedding_forward(void *state, lam_layer *layer, uint32_t n_inputs,
                                    lam_tensor *const *inputs, uint32_t n_outputs,
                                    lam_tensor **outputs) {
    const embedding_state *s = state;
    (void)n_inputs;
    (void)n_outputs;
    outputs[0] = NULL;
    lam_tensor *x = inputs[0];
    lam_status st = check_input(layer, g_host->tensor_dtype(x), g_host->tensor_shape(x)->ndim);
    if (st == LAM_OK) {
        st = check_indices(s, layer, x);
    }
    lam_tensor *w = NULL; /* borrowed */
    if (st == LAM_OK) {
        st = g_host->layer_param_data(layer, "weight", x, &w);
    }
    if (st == LAM_OK) {
        st = lam_p_gather_rows(g_host, w, x, &outputs[0]);
    }
    return st;
}

/* Gluon 1.x's repr: "Embedding(10 -> 5, float32)". */
static lam_status embedding_describe(void *state, lam_layer *layer, char *buf, size_t cap) {
    (void)layer;
    const embedding_state *s = state;
    snprintf(buf, cap, "Embedding(%lld -> %lld, float32)", (long long)s->input_dim,
             (long long)s->output_dim);
    return LAM_OK;
}

static const lam_tensor_info example_info = {
    (uint32_t)sizeof(lam_tensor_info), LAM_DTYPE_I32, 2, 0, {3, 4}};
static const lam_example_input example = {
    (uint32_t)sizeof(lam_example_input), LAM_DOMAIN_INDEX, &example_info, 0, 0, "input_dim"};
static const lam_example_input *const examples[] = {&example};

static const lam_layer_desc embedding_desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "Embedding",
    .prefix = "embedding",
    .version = "2.0.0",
    .doc = "rows of a (input_dim, output_dim) table picked by int32/int64 indices (Gluon's "
           "nn.Embedding)",
    .n_attrs = (uint32_t)(sizeof embedding_attrs / sizeof embedding_attrs[0]),
    .attrs = embedding_attrs,
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .n_examples = 1,
    .examples = examples,
    .example_attrs = "input_dim=7, output_dim=5",
    .create = embedding_create,
    .destroy = embedding_destroy,
    .infer_shape = embedding_infer_shape,
    .forward = embedding_forward,
    .describe = embedding_describe,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &embedding_desc);
}
