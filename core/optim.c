/* The optimizers' update rules: SGD with momentum and weight decay, Adam, AdamW and RMSProp as
 * PyTorch's. Each computes one parameter's new state and update tensor in full before the
 * trainer commits anything (trainer.c); they are written with front-end ops, so they run where
 * the parameters live. */
#include "optim.h"
#include "ops.h"
#include "param.h"
#include "tensor.h"
#include "trainer_types.h"

#include <math.h>
#include <stddef.h>

const char *const lam__optim_names[] = {"sgd", "adam", "adamw", "rmsprop"};

const char *const lam__optim_state_names[][LAM__N_STATE] = {
    [LAM__SGD] = {"momentum_buffer", NULL, NULL},
    [LAM__ADAM] = {"exp_avg", "exp_avg_sq", NULL},
    [LAM__ADAMW] = {"exp_avg", "exp_avg_sq", NULL},
    [LAM__RMSPROP] = {"square_avg", "momentum_buffer", "grad_avg"},
};

/* out = a old + b y as a new tensor, old unchanged (NULL: zeros, so b y): the fused update
 * on a copy, the same arithmetic as updating old in place. */
static lam_status upd(const lam_tensor *old, float a, const lam_tensor *y, float b,
                      lam_tensor **out) {
    if (old == NULL) {
        return lam_op_mul_scalar(y, b, out);
    }
    lam_status st = lam_op_copy(old, out);
    if (st == LAM_OK && (st = lam__axpby_inplace(*out, a, y, b)) != LAM_OK) {
        lam_tensor_release(*out);
        *out = NULL;
    }
    return st;
}

lam_status lam__optim_compute(const lam_trainer *t, const lam__slot *sl, lam__pending *pd,
                              double lr_now) {
    lam_param *p = sl->param;
    const lam__hyper *h = &t->h;
    double lr = lr_now * p->lr_mult, wd = h->wd * p->wd_mult;
    lam_tensor *w = p->data, *g = NULL, *tmp = NULL;
    lam_status st = LAM_OK;
    bool l2 = wd != 0.0 && t->kind != LAM__ADAMW; /* L2 decay: g += wd w (AdamW decouples it) */
    if (t->kind == LAM__SGD) {
        if (h->momentum == 0.0) {
            /* w = (1 - lr wd) w - lr gs G: one fused update of w */
            pd->u = lam_tensor_retain(pd->g);
            pd->a = (float)(1.0 - lr * wd);
            pd->b = (float)(-lr) * pd->gs;
            return LAM_OK;
        }
        /* v = momentum v + gs G (+ wd w); w -= lr v */
        st = upd(sl->s[0], (float)h->momentum, pd->g, pd->gs, &pd->s[0]);
        if (st == LAM_OK && l2) {
            st = lam__axpby_inplace(pd->s[0], 1.0f, w, (float)wd);
        }
        if (st == LAM_OK) {
            pd->u = lam_tensor_retain(pd->s[0]);
            pd->a = 1.0f;
            pd->b = (float)-lr;
        }
        return st;
    }
    /* g = gs G (+ wd w) */
    st = lam_op_mul_scalar(pd->g, pd->gs, &g);
    if (st == LAM_OK && l2) {
        st = lam__axpby_inplace(g, 1.0f, w, (float)wd);
    }
    if (t->kind == LAM__ADAM || t->kind == LAM__ADAMW) {
        /* m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
         * w = (1 - lr wd [AdamW]) w - lr/c1 m / (sqrt(v)/sqrt(c2) + eps) */
        double step = (double)(t->t + 1);
        double c1 = 1.0 - pow(h->beta1, step), c2 = 1.0 - pow(h->beta2, step);
        if (st == LAM_OK) {
            st = upd(sl->s[0], (float)h->beta1, g, (float)(1.0 - h->beta1), &pd->s[0]);
        }
        LAM__UPDATE(tmp, lam_op_square(g, &next_));
        if (st == LAM_OK) {
            st = upd(sl->s[1], (float)h->beta2, tmp, (float)(1.0 - h->beta2), &pd->s[1]);
        }
        LAM__UPDATE(tmp, lam_op_sqrt(pd->s[1], &next_));
        LAM__UPDATE(tmp, lam_op_div_scalar(tmp, (float)sqrt(c2), &next_));
        LAM__UPDATE(tmp, lam_op_add_scalar(tmp, (float)h->eps, &next_));
        if (st == LAM_OK) {
            st = lam_op_div(pd->s[0], tmp, &pd->u);
        }
        pd->a = t->kind == LAM__ADAMW ? (float)(1.0 - lr * wd) : 1.0f;
        pd->b = (float)(-lr / c1);
    } else {
        /* RMSProp: s = alpha s + (1-alpha) g^2; [centered: m = alpha m + (1-alpha) g, s - m^2];
         * d = sqrt(.) + eps; [momentum: b = momentum b + g/d, w -= lr b] else w -= lr g/d */
        float al = (float)h->alpha, one_al = (float)(1.0 - h->alpha);
        lam_tensor *avg = NULL;
        LAM__UPDATE(tmp, lam_op_square(g, &next_));
        if (st == LAM_OK) {
            st = upd(sl->s[0], al, tmp, one_al, &pd->s[0]);
        }
        if (h->centered) {
            if (st == LAM_OK) {
                st = upd(sl->s[2], al, g, one_al, &pd->s[2]);
            }
            LAM__UPDATE(tmp, lam_op_square(pd->s[2], &next_));
            LAM__UPDATE(tmp, lam_op_sub(pd->s[0], tmp, &next_));
            LAM__UPDATE(avg, lam_op_sqrt(tmp, &next_));
        } else {
            LAM__UPDATE(avg, lam_op_sqrt(pd->s[0], &next_));
        }
        LAM__UPDATE(avg, lam_op_add_scalar(avg, (float)h->eps, &next_));
        LAM__UPDATE(tmp, lam_op_div(g, avg, &next_));
        lam_tensor_release(avg);
        if (h->momentum > 0.0) {
            if (st == LAM_OK) {
                st = upd(sl->s[1], (float)h->momentum, tmp, 1.0f, &pd->s[1]);
            }
            if (st == LAM_OK) {
                pd->u = lam_tensor_retain(pd->s[1]);
            }
        } else if (st == LAM_OK) {
            pd->u = lam_tensor_retain(tmp);
        }
        pd->a = 1.0f;
        pd->b = (float)-lr;
    }
    lam_tensor_release(g);
    lam_tensor_release(tmp);
    return st;
}
