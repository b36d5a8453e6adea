/*
 * ref_crc32c.h - the serialization tests' independent CRC-32C (Castagnoli, reflected
 * 0x82F63B78), one byte at a time from a table: what the loader's checksum is checked against.
 */
#ifndef LAMINA_TESTS_SERIALIZE_REF_CRC32C_H
#define LAMINA_TESTS_SERIALIZE_REF_CRC32C_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t ref_crc32c(const uint8_t *p, size_t n) {
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        table[i] = c;
    }
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
    }
    return ~crc;
}

#endif
