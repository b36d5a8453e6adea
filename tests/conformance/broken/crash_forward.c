/*
 * CrashForward: forward writes through a wild pointer (SIGSEGV). The kit must report the
 * crash with its signal and go on with the other checks.
 */
#include "common.h"

#include <stdint.h>

static lam_status cf_forward(void *state, lam_layer *layer, uint32_t n, lam_tensor *const *in,
                             uint32_t n_out, lam_tensor **out) {
    (void)n_out;
    (void)state;
    (void)layer;
    (void)n;
    (void)in;
    *out = NULL;
    /* Not NULL itself (UBSan would report a null store instead of the fault): page zero. The
     * address goes through a volatile so the compiler cannot prove the store out of bounds. */
    static volatile uintptr_t address = 16;
    volatile int *wild = (volatile int *)address;
    *wild = 1; /* the defect */
    return LAM_OK;
}

static const lam_layer_desc desc = {
    LAM_LAYER_DESC_HEADER,
    .name = "CrashForward",
    .prefix = "crashforward",
    .version = "0.0.1",
    .doc = "crashes in forward (broken)",
    .create = no_state,
    .destroy = no_destroy,
    .infer_shape = same_shape,
    .forward = cf_forward,
};

LAM_PLUGIN_ENTRY {
    lam_status st = lam_plugin_check_host(host);
    if (st != LAM_OK) {
        return st;
    }
    g_host = host;
    return g_host->register_layer(plugin, &desc);
}
