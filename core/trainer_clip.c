/* Clipping by global norm: inside a trainer's step (the pending gradients, before the update is
 * computed) and of a parameter list's gradients in place; zeroing a list's gradients. The norm
 * and the factor are computed on the device, with front-end ops. */
#include "trainer_clip.h"
#include "error.h"
#include "ops.h"
#include "param.h"
#include "tensor.h"
#include "trainer_types.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

/* The global norm of the gradients gs_i G_i (a new scalar tensor on the device), and the
 * factor min(1, max_norm / (norm + 1e-6)) each gradient is multiplied by. */
static lam_status global_norm(lam_tensor *const *grads, const float *gs, size_t n, double max_norm,
                              lam_tensor **norm, lam_tensor **factor) {
    lam_tensor *total = NULL, *sq = NULL, *part = NULL;
    lam_status st = LAM_OK;
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        if (grads[i] == NULL) {
            continue;
        }
        LAM__UPDATE(sq, lam_op_square(grads[i], &next_));
        LAM__UPDATE(part, lam_op_sum(sq, NULL, 0, 0, &next_));
        if (gs[i] != 1.0f) {
            LAM__UPDATE(part, lam_op_mul_scalar(part, gs[i] * gs[i], &next_));
        }
        if (total == NULL) {
            total = part;
            part = NULL;
        } else {
            LAM__UPDATE(total, lam_op_add(total, part, &next_));
        }
    }
    lam_tensor *f = NULL;
    if (st == LAM_OK && total == NULL) { /* no gradient: norm 0 */
        lam_ctx *ctx = NULL;
        st = lam_ctx_default(&ctx);
        if (st == LAM_OK) {
            st = lam_tensor_full(ctx, &(lam_shape){.ndim = 0}, 0.0f, &total);
        }
    }
    LAM__UPDATE(total, lam_op_sqrt(total, &next_));
    LAM__UPDATE(f, lam_op_add_scalar(total, 1e-6f, &next_));
    LAM__UPDATE(f, lam_op_rdiv_scalar(f, (float)max_norm, &next_));
    LAM__UPDATE(f, lam_op_clamp(f, 0.0f, 1.0f, &next_));
    lam_tensor_release(sq);
    lam_tensor_release(part);
    if (st != LAM_OK) {
        lam_tensor_release(total);
        lam_tensor_release(f);
        return st;
    }
    *norm = total;
    *factor = f;
    return LAM_OK;
}

/* Clipping inside a step: each pending gradient becomes gs G * factor (scale 1). */
lam_status lam__clip_pending(lam__pending *pd, size_t n, double max_norm, lam_tensor **norm_out) {
    lam_tensor **grads = calloc(n ? n : 1, sizeof *grads);
    float *gs = calloc(n ? n : 1, sizeof *gs);
    lam_tensor *norm = NULL, *factor = NULL;
    lam_status st = grads && gs ? LAM_OK : lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory");
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        grads[i] = pd[i].active ? pd[i].g : NULL;
        gs[i] = pd[i].gs;
    }
    if (st == LAM_OK) {
        st = global_norm(grads, gs, n, max_norm, &norm, &factor);
    }
    lam_tensor **scaled = grads; /* reused: the clipped gradients */
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        scaled[i] = NULL;
        if (pd[i].active) {
            st = lam_op_mul(pd[i].g, factor, &scaled[i]);
            if (st == LAM_OK && pd[i].gs != 1.0f) {
                LAM__UPDATE(scaled[i], lam_op_mul_scalar(scaled[i], pd[i].gs, &next_));
            }
        }
    }
    for (size_t i = 0; grads != NULL && i < n; i++) {
        if (st == LAM_OK && pd[i].active) {
            lam_tensor_release(pd[i].g);
            pd[i].g = scaled[i];
            pd[i].gs = 1.0f;
        } else {
            lam_tensor_release(scaled[i]);
        }
    }
    lam_tensor_release(factor);
    if (st == LAM_OK) {
        *norm_out = norm;
    } else {
        lam_tensor_release(norm);
    }
    free(grads);
    free(gs);
    return st;
}

lam_status lam_param_list_clip_global_norm(const lam_param_list *list, double max_norm,
                                           float *norm_out) {
    const char *fn = "lam_param_list_clip_global_norm";
    if (list == NULL || !(isfinite(max_norm) && max_norm > 0.0)) {
        return lam__error(LAM_ERR_INVALID_ARGUMENT, "%s: Invalid argument, %s", fn,
                          list == NULL ? "NULL list" : "max_norm must be > 0");
    }
    size_t n = lam_param_list_count(list);
    lam_tensor **grads = calloc(n ? n : 1, sizeof *grads), **clipped = NULL;
    float *gs = calloc(n ? n : 1, sizeof *gs);
    lam_tensor *norm = NULL, *factor = NULL;
    lam_status st = LAM_OK;
    if (grads == NULL || gs == NULL || (clipped = calloc(n ? n : 1, sizeof *clipped)) == NULL) {
        st = lam__error(LAM_ERR_OUT_OF_MEMORY, "Out of memory"); /* prefixed below */
    }
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        lam_param *p = lam_param_list_get(list, i);
        grads[i] = lam__trainable(p) && p->data != NULL ? p->grad : NULL;
        gs[i] = 1.0f;
    }
    int was = lam_autograd_record_begin(0);
    if (st == LAM_OK) {
        st = global_norm(grads, gs, n, max_norm, &norm, &factor);
    }
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        if (grads[i] != NULL) {
            st = lam_op_mul(grads[i], factor, &clipped[i]);
        }
    }
    float value = 0.0f;
    if (st == LAM_OK && norm_out != NULL) {
        st = lam_tensor_scalar(norm, &value);
    }
    for (size_t i = 0; st == LAM_OK && i < n; i++) {
        if (grads[i] != NULL) {
            st = lam_op_assign(grads[i], clipped[i]);
        }
    }
    lam_autograd_record_end(was);
    if (st == LAM_OK && norm_out != NULL) {
        *norm_out = value;
    }
    for (size_t i = 0; clipped != NULL && i < n; i++) {
        lam_tensor_release(clipped[i]);
    }
    lam_tensor_release(norm);
    lam_tensor_release(factor);
    free(grads);
    free(gs);
    free(clipped);
    return st == LAM_OK ? LAM_OK : lam__error_prefix(st, "%s", fn);
}

lam_status lam_param_list_zero_grad(const lam_param_list *list) {
    for (size_t i = 0; i < lam_param_list_count(list); i++) {
        lam_param *p = lam_param_list_get(list, i);
        if (p->grad != NULL) {
            lam_status st = lam_op_fill(p->grad, 0.0f);
            if (st != LAM_OK) {
                return st;
            }
        }
    }
    return LAM_OK;
}
