/* The ABI fingerprint and descriptor header macros. */
#include "lamina/lamina.h"

#include <criterion/criterion.h>

Test(abi, fingerprint_matches_layout) {
    cr_expect_eq(lam_abi_fingerprint(), LAM_ABI_FINGERPRINT,
                 "layout hashes to 0x%016llx but plugin.h says 0x%016llx: update "
                 "LAM_ABI_FINGERPRINT and the ABI version",
                 (unsigned long long)lam_abi_fingerprint(),
                 (unsigned long long)LAM_ABI_FINGERPRINT);
}

Test(abi, version_macros_pack_major_and_minor) {
    cr_expect_eq(LAM_MAKE_VERSION(1, 2), 0x00010002u);
    cr_expect_eq(LAM_VERSION_MAJOR(LAM_MAKE_VERSION(3, 7)), 3u);
    cr_expect_eq(LAM_VERSION_MINOR(LAM_MAKE_VERSION(3, 7)), 7u);
}

Test(abi, enums_are_pinned_to_32_bits) {
    cr_expect_eq(sizeof(lam_op), 4u);
    cr_expect_eq(sizeof(lam_status), 4u);
    cr_expect_eq(sizeof(lam_dtype), 4u);
    cr_expect_eq(LAM_OP_GEMM, 23);
    cr_expect_eq(LAM_ERR_INTERNAL, -14);
}

Test(abi, descriptor_headers_start_with_size_and_version) {
    lam_backend_desc b = {LAM_BACKEND_DESC_HEADER};
    lam_layer_desc l = {LAM_LAYER_DESC_HEADER};
    cr_expect_eq(b.struct_size, sizeof(lam_backend_desc));
    cr_expect_eq(b.abi_version, LAM_ABI_VERSION);
    cr_expect_eq(l.struct_size, sizeof(lam_layer_desc));
    cr_expect_eq(l.abi_fingerprint, LAM_ABI_FINGERPRINT);
    cr_expect_eq(offsetof(lam_layer_desc, abi_fingerprint), 8u);
    cr_expect_eq(offsetof(lam_backend_desc, abi_fingerprint), 8u);
}
