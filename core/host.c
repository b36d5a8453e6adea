/* The host table handed to plugins: the core's functions behind the ABI. */
#include "host.h"
#include "context.h"
#include "error.h"
#include "layer.h"
#include "log.h"
#include "ops.h"
#include "registry.h"

#include <stdio.h>
#include <string.h>

/* Whether st is a status this host knows (lam_status_string names every one of them). */
static bool known_status(lam_status st) {
    return strcmp(lam_status_string(st), lam_status_string((lam_status)1)) != 0;
}

lam_status lam__plugin_status(lam_status st, uint64_t mark, const struct lam_plugin *plugin,
                              const char *who, const char *subject, const char *callback) {
    if (st == LAM_OK) {
        return LAM_OK;
    }
    const char *file = plugin != NULL && plugin->path != NULL ? plugin->path : "(unknown)";
    const char *base = strrchr(file, '/');
    base = base != NULL ? base + 1 : file;
    const char *sep = subject != NULL ? ": " : "";
    subject = subject != NULL ? subject : "";
    if (!known_status(st)) {
        return lam__error(LAM_ERR_INTERNAL,
                          "%s%sInvalid status, %s returned %d, which is not a lam_status (a bug "
                          "in %s of plugin %s)",
                          subject, sep, callback, (int)st, who, base);
    }
    if (!lam__error_set_since(mark)) {
        return lam__error(st, "%s%s%s (the plugin set no message)", subject, sep,
                          lam_status_string(st));
    }
    return st;
}

lam_status lam__backend_status(lam_status st, uint64_t mark, const lam__backend *b,
                               const char *callback) {
    if (st == LAM_OK) {
        return LAM_OK;
    }
    char who[96];
    snprintf(who, sizeof who, "backend '%s'", b->desc.name);
    return lam__plugin_status(st, mark, b->plugin, who, NULL, callback);
}

static lam_status host_set_error(lam_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lam__verror(status, fmt, ap);
    va_end(ap);
    return status;
}

static void host_log(lam_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lam__vlog(level, fmt, ap);
    va_end(ap);
}

static lam_status host_tensor_create(lam_ctx *ctx, const lam_shape *shape, lam_tensor **out) {
    return lam_tensor_create(ctx, shape, out);
}

static lam_status host_tensor_reshape(lam_tensor *t, const lam_shape *shape, lam_tensor **out) {
    return lam_tensor_reshape(t, shape, out);
}

void lam__host_table_init(lam_host_api *h) {
    h->struct_size = (uint32_t)sizeof *h;
    h->abi_version = LAM_ABI_VERSION;
    h->abi_fingerprint = LAM_ABI_FINGERPRINT;
    h->set_error = host_set_error;
    h->log = host_log;
    lam__host_table_init_registry(h);
    h->tensor_create = host_tensor_create;
    h->tensor_retain = lam_tensor_retain;
    h->tensor_release = lam_tensor_release;
    h->tensor_shape = lam_tensor_shape;
    h->tensor_ctx = lam_tensor_ctx;
    h->tensor_read = lam_tensor_read;
    h->tensor_write = lam_tensor_write;
    h->tensor_reshape = host_tensor_reshape;
    h->op_matmul = lam_op_matmul;
    h->op_add = lam_op_add;
    h->op_sub = lam_op_sub;
    h->op_mul = lam_op_mul;
    h->op_div = lam_op_div;
    h->op_unary = lam__op_unary;
    h->op_scalar = lam__op_scalar;
    h->op_reduce = lam__op_reduce;
    h->op_softmax = lam__op_softmax;
    lam__host_table_init_layers(h);
    h->op_linear = lam_op_linear;
}
