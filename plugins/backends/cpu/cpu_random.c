/*
 * cpu_random.c - LAM_OP_RANDOM: counter-based random numbers, Philox-4x32-10.
 *
 * Element i of the output is a pure function of (seed, key, offset + i) as plugin.h spells it
 * out (cuRAND's layout: the seed is Philox's key; the block number n = (offset + i) / 4 and the
 * stream key fill the counter), so every backend draws the same numbers and a call may be
 * split anywhere. UNIFORM and BERNOULLI are bit-identical with the Vulkan backend; NORMAL
 * agrees to the precision of logf/cosf/sinf.
 */
#include "cpu_internal.h"

#include <math.h>

#define PHILOX_M0     0xD2511F53u
#define PHILOX_M1     0xCD9E8D57u
#define PHILOX_W0     0x9E3779B9u
#define PHILOX_W1     0xBB67AE85u
#define PHILOX_ROUNDS 10

void cpu_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < PHILOX_ROUNDS; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        const uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (uint32_t)p1;
        c2 = n2;
        c3 = (uint32_t)p0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* Draws words for consecutive positions, one Philox block per four. */
typedef struct stream {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t block[4];
    uint64_t have; /* the block number in `block`, or UINT64_MAX + none */
    int valid;
} stream;

static uint32_t word_at(stream *s, uint64_t pos) {
    const uint64_t n = pos / 4;
    if (!s->valid || s->have != n) {
        s->ctr[0] = (uint32_t)n;
        s->ctr[1] = (uint32_t)(n >> 32);
        cpu_philox4x32_10(s->ctr, s->key, s->block);
        s->have = n;
        s->valid = 1;
    }
    return s->block[pos % 4];
}

/* f = (u >> 8) * 2^-24: 24 random bits, every value a float in [0, 1). */
static inline float unit(uint32_t u) {
    return (float)(u >> 8) * 0x1p-24f;
}

lam_status cpu_random(const cpu_call *call) {
    const lam_random_params *p = lam_op_params(call, lam_random_params);
    if (p == NULL) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, random needs its parameters (lam_random_params, "
                         "struct_size set)");
    }
    const cpu_view *ov = &call->out[0];
    if (p->kind != LAM_RANDOM_UNIFORM && p->kind != LAM_RANDOM_NORMAL &&
        p->kind != LAM_RANDOM_BERNOULLI) {
        return cpu_error(LAM_ERR_INVALID_ARGUMENT,
                         "cpu: Invalid argument, random kind %d is not uniform, normal or "
                         "bernoulli",
                         (int)p->kind);
    }
    if (ov->dtype != LAM_DTYPE_F32 &&
        !(p->kind == LAM_RANDOM_BERNOULLI && ov->dtype == LAM_DTYPE_U8)) {
        return cpu_error(LAM_ERR_DTYPE,
                         "cpu: Unsupported dtype, random output has dtype %d; the cpu backend "
                         "takes float32 (and uint8 for bernoulli)",
                         (int)ov->dtype);
    }
    if (call->dry) {
        return LAM_OK;
    }
    stream s = {{(uint32_t)p->seed, (uint32_t)(p->seed >> 32)},
                {0, 0, (uint32_t)p->key, (uint32_t)(p->key >> 32)},
                {0, 0, 0, 0},
                0,
                0};
    const float a = (float)p->a;
    const float b = (float)p->b;
    const int64_t count = cpu_count(ov);
    int64_t idx[LAM_MAX_DIMS] = {0};
    int64_t off = 0; /* element offset of row-major element i in the output view */
    for (int64_t i = 0; i < count; i++) {
        const uint64_t pos = p->offset + (uint64_t)i; /* wraps as the header's unsigned sum */
        float v;
        switch (p->kind) {
        case LAM_RANDOM_UNIFORM:
            v = a + (b - a) * unit(word_at(&s, pos));
            break;
        case LAM_RANDOM_BERNOULLI:
            v = unit(word_at(&s, pos)) < a ? 1.0f : 0.0f;
            break;
        default: { /* NORMAL: elements 2k and 2k+1 share the words of positions 2k, 2k+1 */
            const uint64_t first = pos - (uint64_t)(i & 1);
            const uint32_t u1 = word_at(&s, first);
            const uint32_t u2 = word_at(&s, first + 1);
            const float f1 = (float)((u1 >> 8) + 1u) * 0x1p-24f;
            const float f2 = unit(u2);
            const float r = sqrtf(-2.0f * logf(f1));
            const float theta = 6.28318530717958647692f * f2;
            v = a + b * ((i & 1) ? r * sinf(theta) : r * cosf(theta));
            break;
        }
        }
        if (ov->dtype == LAM_DTYPE_U8) {
            ((uint8_t *)(void *)ov->data)[off] = v != 0.0f;
        } else {
            cpu_f32(ov)[off] = v;
        }
        /* next row-major element: carry through the dims */
        for (int d = (int)ov->ndim - 1; d >= 0; d--) {
            off += ov->st[d];
            if (++idx[d] < ov->dims[d]) {
                break;
            }
            off -= ov->st[d] * ov->dims[d];
            idx[d] = 0;
        }
    }
    return LAM_OK;
}
