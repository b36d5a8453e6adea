/*
 * init_refs.h - reference values for the Philox streams and initializers (test_init.c).
 *
 * GENERATED FILE, do not edit. Regenerate from the repository root with:
 *     /usr/bin/python3 tests/core/ref/gen_init_refs.py
 *
 * Computed by an independent Python implementation of Philox-4x32-10, checked against
 * Random123's known-answer vectors (repeated below). Normals depend on log/cos/sin, so the
 * tests compare them with a small tolerance; everything else is exact.
 */
#ifndef LAMINA_TESTS_INIT_REFS_H
#define LAMINA_TESTS_INIT_REFS_H

/* clang-format off */

#include <stdint.h>

#if defined(__GNUC__)
#define INIT_REF_UNUSED __attribute__((unused))
#else
#define INIT_REF_UNUSED
#endif

/* Random123 kat_vectors, philox4x32 10: counter, key, output. */
typedef struct ref_philox_kat {
    uint32_t ctr[4];
    uint32_t key[2];
    uint32_t out[4];
} ref_philox_kat;

static const ref_philox_kat ref_philox_kats[3] INIT_REF_UNUSED = {
    {{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u}, {0x00000000u, 0x00000000u}, {0x6627E8D5u, 0xE169C58Du, 0xBC57AC4Cu, 0x9B00DBD8u}},
    {{0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, {0xFFFFFFFFu, 0xFFFFFFFFu}, {0x408F276Du, 0x41C83B0Eu, 0xA20BC7C6u, 0x6D5451FDu}},
    {{0x243F6A88u, 0x85A308D3u, 0x13198A2Eu, 0x03707344u}, {0xA4093822u, 0x299F31D0u}, {0xD16CFE09u, 0x94FDCCEBu, 0x5001E420u, 0x24126EA1u}},
};

/* Stream keys: lam__rng_stream_key(seed, key). */
typedef struct ref_stream_key {
    uint64_t seed;
    const char *key;
    uint64_t hash;
} ref_stream_key;

static const ref_stream_key ref_stream_keys[4] INIT_REF_UNUSED = {
    {0x0000000000000000u, "0.weight", 0xE09AF0487E837E84u},
    {0x0000000000000000u, "", 0x5B21F68FFA77F14Cu},
    {0x000000000000002Au, "dense0_weight", 0x817FA2DA102C77FBu},
    {0xFFFFFFFFFFFFFFFFu, "hidden.bias", 0x0F5305979FE1C5A9u},
};

/* The first 10 raw outputs of the stream (seed 0, "0.weight"): two blocks and a half. */
static const uint32_t ref_raw_0_weight[10] INIT_REF_UNUSED = {
    0x185FD054u, 0x731E5883u, 0x03EFFBD1u, 0x5B9C5061u, 0x77274AD6u, 0xA1FAD352u, 0x7955DCCFu, 0xCB8CC8C3u, 0x3F9364D3u, 0x56BE83C2u,
};

/* Uniform(scale=0.07) filling "0.weight" with seed 0: the first 12 elements. */
static const float ref_uniform_0_weight[12] INIT_REF_UNUSED = {
    -0.05667032301425934f, -0.007044553756713867f, -0.06784672290086746f, -0.019900456070899963f,
    -0.004837944637984037f, 0.018582694232463837f, -0.0036447097081691027f, 0.04131636768579483f,
    -0.03523201495409012f, -0.022561773657798767f, -0.01534358412027359f, 0.03698596730828285f,
};

/* Normal(sigma=0.01) filling "1.weight" with seed 7: the first 9 elements (odd, so the
 * last one leaves a spare unused). */
static const float ref_normal_1_weight[9] INIT_REF_UNUSED = {
    -0.0033452119678258896f, 0.008349628187716007f, -0.011290984228253365f,
    -0.007220652420073748f, -0.0040874476544559f, 0.0022406659554690123f,
    -0.003321586176753044f, 0.015045748092234135f, -0.006839638575911522f,
};

/* Xavier(uniform, avg, 3) on (256, 20): bound sqrt(3 / 138), and the first 6 elements of
 * "dense0_weight" with seed 3. */
#define REF_XAVIER_256_20_BOUND 0.14744195342063904f
static const float ref_xavier_dense0_weight[6] INIT_REF_UNUSED = {
    -0.03925224021077156f, -0.1266576498746872f, -0.12110596150159836f, 0.02590237930417061f, -0.013903305865824223f, 0.13249945640563965f,
};

/* clang-format on */

#endif
