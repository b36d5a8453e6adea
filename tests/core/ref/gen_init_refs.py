#!/usr/bin/python3
"""Writes tests/core/ref/init_refs.h: reference values for core/rng.c and core/init.c.

Run from anywhere (the output path is relative to this file):

    /usr/bin/python3 tests/core/ref/gen_init_refs.py

Plain Python 3, no packages. This is a second, independent implementation of what rng.c
documents: Philox-4x32-10 with Random123's constants (checked here against Random123's
published known-answer vectors before anything is written), the stream key (FNV-1a over the
parameter key from a seed-dependent basis, finalized by splitmix64's mixer), uniform numbers
from the top 24 bits of an output, and Box-Muller normals in pairs. Floats are rounded to
float32 the way C's (float) cast does (round to nearest even). The header is deterministic.
"""

import math
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "init_refs.h")
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF

# Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter, key, expected output.
KAT = [
    ([0x00000000, 0x00000000, 0x00000000, 0x00000000], [0x00000000, 0x00000000],
     [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], [0xFFFFFFFF, 0xFFFFFFFF],
     [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


def philox4x32_10(ctr, key):
    """Random123's philox4x32_R(10, ...): a round, then bump the key before each later round."""
    x0, x1, x2, x3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0 = (k0 + 0x9E3779B9) & M32
            k1 = (k1 + 0xBB67AE85) & M32
        p0 = 0xD2511F53 * x0
        p1 = 0xCD9E8D57 * x2
        x0, x1, x2, x3 = ((p1 >> 32) ^ x1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ x3 ^ k1) & M32, p0 & M32
    return [x0, x1, x2, x3]


def mix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def stream_key(seed, key):
    h = 0xCBF29CE484222325 ^ mix64(seed)
    data = key.encode("utf-8")
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return mix64(h ^ len(data))


class Stream:
    def __init__(self, seed, key):
        h = stream_key(seed, key)
        self.key = [h & M32, h >> 32]
        self.counter = 0  # 128-bit integer; word 0 is the least significant
        self.buf = []
        self.spare = None

    def u32(self):
        if not self.buf:
            c = self.counter
            self.buf = philox4x32_10([(c >> (32 * i)) & M32 for i in range(4)], self.key)
            self.counter = (c + 1) % (1 << 128)
        return self.buf.pop(0)

    def uniform(self, lo, hi):
        u = (self.u32() >> 8) / float(1 << 24)
        v = f32(lo + (hi - lo) * u)
        if lo < hi and v >= hi:
            v = below(hi)
        return v

    def normal(self, mean, std):
        if self.spare is not None:
            z, self.spare = self.spare, None
        else:
            u1 = (self.u32() + 1.0) / 2.0**32
            u2 = self.u32() / 2.0**32
            r = math.sqrt(-2.0 * math.log(u1))
            z = r * math.cos(2.0 * math.pi * u2)
            self.spare = r * math.sin(2.0 * math.pi * u2)
        return f32(mean + std * z)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def below(x):
    """The float32 just below a positive float32 x."""
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    return struct.unpack("<f", struct.pack("<I", bits - 1))[0]


def cfloat(x):
    s = repr(f32(x))
    return s + "f" if ("." in s or "e" in s) else s + ".0f"


def main():
    for ctr, key, want in KAT:
        got = philox4x32_10(ctr, key)
        assert got == want, (ctr, key, [hex(g) for g in got])

    out = []
    w = out.append
    w("/*")
    w(" * init_refs.h - reference values for the Philox streams and initializers (test_init.c).")
    w(" *")
    w(" * GENERATED FILE, do not edit. Regenerate from the repository root with:")
    w(" *     /usr/bin/python3 tests/core/ref/gen_init_refs.py")
    w(" *")
    w(" * Computed by an independent Python implementation of Philox-4x32-10, checked against")
    w(" * Random123's known-answer vectors (repeated below). Normals depend on log/cos/sin, so the")
    w(" * tests compare them with a small tolerance; everything else is exact.")
    w(" */")
    w("#ifndef LAMINA_TESTS_INIT_REFS_H")
    w("#define LAMINA_TESTS_INIT_REFS_H")
    w("")
    w("/* clang-format off */")
    w("")
    w("#include <stdint.h>")
    w("")
    w("#if defined(__GNUC__)")
    w("#define INIT_REF_UNUSED __attribute__((unused))")
    w("#else")
    w("#define INIT_REF_UNUSED")
    w("#endif")
    w("")
    w("/* Random123 kat_vectors, philox4x32 10: counter, key, output. */")
    w("typedef struct ref_philox_kat {")
    w("    uint32_t ctr[4];")
    w("    uint32_t key[2];")
    w("    uint32_t out[4];")
    w("} ref_philox_kat;")
    w("")
    w("static const ref_philox_kat ref_philox_kats[%d] INIT_REF_UNUSED = {" % len(KAT))
    for ctr, key, want in KAT:
        hx = lambda v: ", ".join("0x%08Xu" % x for x in v)
        w("    {{%s}, {%s}, {%s}}," % (hx(ctr), hx(key), hx(want)))
    w("};")
    w("")

    keys = [(0, "0.weight"), (0, ""), (42, "dense0_weight"), (0xFFFFFFFFFFFFFFFF, "hidden.bias")]
    w("/* Stream keys: lam__rng_stream_key(seed, key). */")
    w("typedef struct ref_stream_key {")
    w("    uint64_t seed;")
    w("    const char *key;")
    w("    uint64_t hash;")
    w("} ref_stream_key;")
    w("")
    w("static const ref_stream_key ref_stream_keys[%d] INIT_REF_UNUSED = {" % len(keys))
    for seed, key in keys:
        w('    {0x%016Xu, "%s", 0x%016Xu},' % (seed, key, stream_key(seed, key)))
    w("};")
    w("")

    s = Stream(0, "0.weight")
    raw = [s.u32() for _ in range(10)]
    w('/* The first 10 raw outputs of the stream (seed 0, "0.weight"): two blocks and a half. */')
    w("static const uint32_t ref_raw_0_weight[10] INIT_REF_UNUSED = {")
    w("    " + ", ".join("0x%08Xu" % x for x in raw) + ",")
    w("};")
    w("")

    s = Stream(0, "0.weight")
    uni = [s.uniform(f32(-0.07), f32(0.07)) for _ in range(12)]
    w('/* Uniform(scale=0.07) filling "0.weight" with seed 0: the first 12 elements. */')
    w("static const float ref_uniform_0_weight[12] INIT_REF_UNUSED = {")
    for i in range(0, 12, 4):
        w("    " + ", ".join(cfloat(x) for x in uni[i:i + 4]) + ",")
    w("};")
    w("")

    s = Stream(7, "1.weight")
    nor = [s.normal(0.0, f32(0.01)) for _ in range(9)]
    w('/* Normal(sigma=0.01) filling "1.weight" with seed 7: the first 9 elements (odd, so the')
    w(" * last one leaves a spare unused). */")
    w("static const float ref_normal_1_weight[9] INIT_REF_UNUSED = {")
    for i in range(0, 9, 3):
        w("    " + ", ".join(cfloat(x) for x in nor[i:i + 3]) + ",")
    w("};")
    w("")

    # Xavier uniform, avg, magnitude 3 on (256, 20): fan_in 20, fan_out 256, factor 138.
    bound = f32(math.sqrt(3.0 / 138.0))
    s = Stream(3, "dense0_weight")
    xav = [s.uniform(-bound, bound) for _ in range(6)]
    w("/* Xavier(uniform, avg, 3) on (256, 20): bound sqrt(3 / 138), and the first 6 elements of")
    w(' * "dense0_weight" with seed 3. */')
    w("#define REF_XAVIER_256_20_BOUND %s" % cfloat(bound))
    w("static const float ref_xavier_dense0_weight[6] INIT_REF_UNUSED = {")
    w("    " + ", ".join(cfloat(x) for x in xav) + ",")
    w("};")
    w("")
    w("/* clang-format on */")
    w("")
    w("#endif")
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
