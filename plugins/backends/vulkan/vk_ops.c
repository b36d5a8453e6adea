/*
 * vk_ops.c - RANDOM and PAD. RANDOM is one dispatch of random.comp over a contiguous output
 * (vk_check refuses others); PAD fills the output with its value, then copies x into the
 * interior view (the queue's tracking puts a barrier between the two writes). Level 6.
 */
#include "vk_ops.h"

#include "vk_elementwise.h"

#include <string.h>

typedef struct rnd_push {
    uint32_t count, kind;
    uint32_t off_lo, off_hi;
    uint32_t seed_lo, seed_hi;
    uint32_t key_lo, key_hi;
    float a, b;
    int32_t oo;
    uint32_t first;
} rnd_push;

lam_status vk_run_random(vk_device *d, const vk_call *call, const char *opname, const vk_view *vo) {
    const lam_random_params *r = &call->rnd;
    const int64_t count = vo->hi - vo->lo + 1; /* contiguous: its span is its size */
    rnd_push p;
    memset(&p, 0, sizeof p);
    p.count = (uint32_t)count;
    p.kind = (uint32_t)r->kind;
    p.off_lo = (uint32_t)r->offset;
    p.off_hi = (uint32_t)(r->offset >> 32);
    p.seed_lo = (uint32_t)r->seed;
    p.seed_hi = (uint32_t)(r->seed >> 32);
    p.key_lo = (uint32_t)r->key;
    p.key_hi = (uint32_t)(r->key >> 32);
    p.a = (float)r->a;
    p.b = (float)r->b;
    vk_bind bind;
    lam_status s = vk_bind_view(d, vo, opname, "output", &bind);
    if (s == LAM_OK) {
        s = vk_rel(&bind, (int64_t)call->out[0].offset, &p.oo);
    }
    uint32_t gx = 0, gy = 0;
    if (s == LAM_OK) {
        s = vk_grid_2d(d, ((uint64_t)count + 255) / 256, &gx, &gy, opname);
    }
    if (s == LAM_OK) {
        s = vk_dispatch_n(d, VK_SHADER_RANDOM, &bind, 1, 1u, &p, sizeof p, gx, gy, 1);
    }
    return s;
}

lam_status vk_run_pad(vk_device *d, const vk_call *call, const char *opname, const vk_view *vin) {
    vk_call fill = *call;
    fill.op = LAM_OP_FILL;
    fill.n_inputs = 0;
    fill.a = call->pad.value;
    lam_status s = vk_run_elementwise(d, &fill, opname, vin);
    if (s != LAM_OK) {
        return s;
    }
    const lam_tensor_view *x = &call->in[0];
    vk_call copy = *call;
    copy.op = LAM_OP_COPY;
    lam_tensor_view *o = &copy.out[0];
    for (uint32_t i = 0; i < x->ndim; i++) {
        o->offset += (uint64_t)(call->pad.before[i] * o->strides[i]);
        o->dims[i] = x->dims[i];
    }
    for (uint32_t i = 0; i < x->ndim; i++) {
        if (x->dims[i] == 0) {
            return LAM_OK; /* nothing to copy */
        }
    }
    return vk_run_elementwise(d, &copy, opname, vin);
}
