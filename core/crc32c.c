/* CRC32C (Castagnoli), the checksum stored in Lamina's safetensors metadata. */
#include "safetensors.h"

#include <string.h>

#if defined(LAMINA_HAVE_ISAL)
/*
 * ISA-L (Debian's libisal-dev, found at configure time) folds the data with carry-less
 * multiplies (PCLMULQDQ, VPCLMULQDQ on AVX-512 machines), picking the variant at run time: about
 * 70 GB/s on data in cache where the one-instruction loop below reaches 10 GB/s, so the
 * checksum costs a save or a load little next to copying the bytes.
 */
#include <isa-l/crc.h>

uint32_t lam__crc32c(uint32_t crc, const void *buf, size_t n) {
    const uint8_t *p = buf;
    /* crc32_iscsi neither inverts its start value nor its result, and takes an int length. */
    while (n > 0) {
        size_t k = n < ((size_t)1 << 30) ? n : (size_t)1 << 30;
        crc = ~crc32_iscsi((unsigned char *)(uintptr_t)p, (int)k, ~crc);
        p += k;
        n -= k;
    }
    return crc;
}

#else /* built without ISA-L: the same checksum, slower */

/* Reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82F63B78u

static uint32_t crc32c_soft(uint32_t crc, const uint8_t *p, size_t n) {
    /* The table is built per call (256 entries, a few microseconds) rather than cached in a
     * global, so there is no first-use race to guard. */
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        }
        table[i] = c;
    }
    for (size_t i = 0; i < n; i++) {
        crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
    }
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* SSE4.2 has a CRC32C instruction: about 20 times the table's speed on large files. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                            size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n > 0) {
        c32 = __builtin_ia32_crc32qi(c32, *p++);
        n--;
    }
    return c32;
}
#endif

uint32_t lam__crc32c(uint32_t crc, const void *buf, size_t n) {
    const uint8_t *p = buf;
    crc = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("sse4.2")) {
        return ~crc32c_hw(crc, p, n);
    }
#endif
    return ~crc32c_soft(crc, p, n);
}

#endif

/* Reflected Castagnoli polynomial, for combining. */
#define CRC32C_POLY_R 0x82F63B78u

/* a(x) * b(x) modulo the polynomial (bit 31 is x^0, as in a reflected CRC). */
static uint32_t mult_mod(uint32_t a, uint32_t b) {
    uint32_t m = 1u << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0) {
                break;
            }
        }
        m >>= 1;
        b = (b & 1u) ? (b >> 1) ^ CRC32C_POLY_R : b >> 1;
    }
    return p;
}

/* The CRC of A followed by B from the CRCs of A and B and B's length (zlib's crc32_combine for
 * the Castagnoli polynomial): crc(A) is carried over len2 bytes by multiplying it with
 * x^(8 * len2), built from the squares x^(2^k); at most a few hundred products, no table. */
uint32_t lam__crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2) {
    uint32_t x2k = 1u << 30;   /* x^1 */
    uint32_t shift = 1u << 31; /* x^0 */
    for (int k = 0; k < 3; k++) {
        x2k = mult_mod(x2k, x2k); /* x^8: one byte */
    }
    for (uint64_t n = len2; n != 0; n >>= 1) {
        if (n & 1u) {
            shift = mult_mod(x2k, shift);
        }
        x2k = mult_mod(x2k, x2k);
    }
    return mult_mod(shift, crc1) ^ crc2;
}
