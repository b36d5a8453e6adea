/*
 * test_execute_minor.c - the host asks a backend only about ops its ABI minor knows: ops 55 and
 * up (CONV, its gradients, LAYER_NORM and its gradient) are new in 2.2, so a backend built for
 * 2.0 or 2.1 must never see them in `supports` (it could misread an op number it does not
 * know); the host then runs its fallback. execute.c is built from its source with the runtime
 * entries it calls stubbed, and a backend descriptor that records what it is asked.
 */
#include <criterion/criterion.h>

#include "context.h"
#include "execute.h"
#include "registry.h"
#include "tensor.h"

#include <string.h>

/* The runtime entries execute.c calls, reduced to what this test needs. */
lam_status lam__call_enter(const char *fn) {
    (void)fn;
    return LAM_OK;
}
void lam__call_leave(void) {}
lam_status lam__backend_status(lam_status st, uint64_t mark, const lam__backend *b,
                               const char *callback) {
    (void)mark, (void)b, (void)callback;
    return st;
}

static int g_asked[LAM_OP_COUNT + 1];

static int32_t record_supports(void *dev, const lam_op_call *call) {
    (void)dev;
    if ((int)call->op > 0 && (int)call->op <= LAM_OP_COUNT) {
        g_asked[call->op]++;
    }
    return 1;
}

/* Asks about every op of this header on a backend built for ABI 2.minor. */
static void ask_all(uint32_t minor) {
    static lam__backend b;
    static lam_ctx ctx;
    memset(&b, 0, sizeof b);
    memset(&ctx, 0, sizeof ctx);
    memset(g_asked, 0, sizeof g_asked);
    b.desc.abi_version = LAM_MAKE_VERSION(2, minor);
    b.desc.supports = record_supports;
    ctx.backend = &b;
    lam_tensor_view v;
    memset(&v, 0, sizeof v);
    v.struct_size = (uint32_t)sizeof v; /* core's views are in the ABI's form (byte strides) */
    v.dtype = LAM_DTYPE_F32;
    v.ndim = 1;
    v.dims[0] = 1;
    v.strides[0] = (int64_t)sizeof(float);
    const lam_tensor_view in[3] = {v, v, v};
    for (int op = 1; op < LAM_OP_COUNT; op++) {
        bool yes = lam__supports_ops(&ctx, (lam_op)op, in, 3, &v, 1, NULL, 0);
        cr_expect_eq(yes, op < LAM_OP_CONV || minor >= 2,
                     "op %d (%s) on a 2.%u backend: supports %s", op, lam_op_name((lam_op)op),
                     (unsigned)minor, yes ? "asked" : "not asked");
    }
}

Test(execute_minor, a_2_0_or_2_1_backend_is_never_asked_about_2_2_ops) {
    for (uint32_t minor = 0; minor <= 1; minor++) {
        ask_all(minor);
        for (int op = LAM_OP_CONV; op < LAM_OP_COUNT; op++) {
            cr_expect_eq(g_asked[op], 0, "2.%u backend asked about op %d", (unsigned)minor, op);
        }
        cr_expect_gt(g_asked[LAM_OP_MOMENTS], 0, "the 2.0 ops are still asked");
    }
}

Test(execute_minor, a_2_2_backend_is_asked_about_every_op) {
    ask_all(2);
    for (int op = 1; op < LAM_OP_COUNT; op++) {
        cr_expect_gt(g_asked[op], 0, "op %d not asked", op);
    }
}
