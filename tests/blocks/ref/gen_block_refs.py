#!/usr/bin/python3
"""Writes tests/blocks/ref/block_refs.h: reference values for the block and parameter tests.

Run from anywhere (the output path is relative to this file):

    /usr/bin/python3 tests/blocks/ref/gen_block_refs.py

Needs NumPy (Debian: apt-get install -y python3-numpy). Two kinds of references:

 * Layer values: inputs and weights are drawn from a fixed NumPy seed, rounded to two decimals
   (three for the MLP weights) and stored as float32; every result is computed in float64 from
   those float32 values with the layer's textbook formula (Gluon's Dense: act(x . W^T + b);
   MyDense: relu(x . W + b); Centered: x - mean(x); softrelu = log(1 + exp(x))) and rounded to
   float32 once.
 * Initial parameter values: a second, independent implementation of the random streams that
   lamina.h documents (Philox-4x32-10 with Random123's constants, checked against Random123's
   known-answer vectors before anything is written; stream key FNV-1a over the structural key
   from a seed-dependent basis, finalized by splitmix64's mixer; a uniform number from the top
   24 bits of one output, lo + (hi - lo) * u rounded once to float32). These let the tests
   check the chapter's MyInit, Gluon's default Uniform(0.07) and Xavier element by element.

The header is deterministic: running the script twice gives the same file.
"""

import math
import os
import struct

import numpy as np

SEED = 20240604
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "block_refs.h")

rng = np.random.default_rng(SEED)
arrays = []  # (name, comment, float32 ndarray)
defines = []  # (name, C text)


def f32a(x):
    return np.asarray(x, dtype=np.float32)


def rand(shape, lo=-2.0, hi=2.0, decimals=2):
    return f32a(np.round(rng.uniform(lo, hi, size=shape), decimals))


def d(x):
    return np.asarray(x, dtype=np.float64)


def emit(name, value, comment=""):
    value = np.asarray(value)
    assert np.all(np.isfinite(value)), name
    arrays.append((name, comment, value.astype(np.float32)))


ACTS = {
    "none": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "softrelu": lambda z: np.log1p(np.exp(z)),
}

# ---- Dense: y = act(x . W^T + b), W (units, in_units) ----------------------------------------
x = rand((2, 5))
w = rand((4, 5), -1.0, 1.0)
b = rand((4,), -1.0, 1.0)
emit("dense_x", x, "Dense input (2, 5)")
emit("dense_w", w, "Dense weight (units 4, in_units 5)")
emit("dense_b", b, "Dense bias (4,)")
for act, fn in ACTS.items():
    emit("dense_out_" + act, fn(d(x) @ d(w).T + d(b)), "Dense(4, activation=%s)(x)" % act)
emit("dense_out_nobias", d(x) @ d(w).T, "Dense(4, use_bias=false)(x)")

x3 = rand((2, 3, 4))
w12 = rand((4, 12), -1.0, 1.0)
b12 = rand((4,), -1.0, 1.0)
emit("dense3_x", x3, "input (2, 3, 4) for flatten=true and flatten=false")
emit("dense_flat_w", w12, "flatten=true: weight (4, 12)")
emit("dense_flat_b", b12, "flatten=true: bias (4,)")
emit("dense_flat_out", d(x3).reshape(2, 12) @ d(w12).T + d(b12), "flatten=true output (2, 4)")
w4 = rand((5, 4), -1.0, 1.0)
b4 = rand((5,), -1.0, 1.0)
emit("dense_last_w", w4, "flatten=false: weight (5, 4)")
emit("dense_last_b", b4, "flatten=false: bias (5,)")
emit("dense_last_out", np.tanh(d(x3) @ d(w4).T + d(b4)),
     "flatten=false, activation=tanh output (2, 3, 5): the last axis")

# ---- MyDense: relu(x . W + b), W (in_units, units) -------------------------------------------
mx = rand((2, 5))
mw = rand((5, 3), -1.0, 1.0)
mb = rand((3,), -1.0, 1.0)
emit("mydense_x", mx, "MyDense input (2, 5)")
emit("mydense_w", mw, "MyDense weight (in_units 5, units 3)")
emit("mydense_b", mb, "MyDense bias (3,)")
emit("mydense_out", np.maximum(d(mx) @ d(mw) + d(mb), 0.0), "relu(x . W + b)")

# ---- Centered and Activation -----------------------------------------------------------------
cx = rand((2, 3), -5.0, 5.0)
emit("centered_x", cx, "Centered input (2, 3)")
emit("centered_out", d(cx) - d(cx).mean(), "x - mean(x) over all elements")

ax = rand((2, 6), -3.0, 3.0)
emit("act_x", ax, "Activation input (2, 6)")
for act in ("relu", "sigmoid", "tanh", "softrelu"):
    emit("act_out_" + act, ACTS[act](d(ax)), "Activation(%s)(x)" % act)

# ---- the chapter's MLP: Dense(256, relu) then Dense(10), on a (2, 20) input --------------------
px = rand((2, 20), 0.0, 1.0)
pw1 = rand((256, 20), -0.3, 0.3, 3)
pb1 = rand((256,), -0.1, 0.1, 3)
pw2 = rand((10, 256), -0.2, 0.2, 3)
pb2 = rand((10,), -0.1, 0.1, 3)
emit("mlp_x", px, "MLP input (2, 20)")
emit("mlp_w1", pw1, "hidden weight (256, 20)")
emit("mlp_b1", pb1, "hidden bias (256,)")
emit("mlp_w2", pw2, "output weight (10, 256)")
emit("mlp_b2", pb2, "output bias (10,)")
hid = np.maximum(d(px) @ d(pw1).T + d(pb1), 0.0)
emit("mlp_hidden", hid, "relu(x . W1^T + b1) (2, 256)")
emit("mlp_out", hid @ d(pw2).T + d(pb2), "hidden . W2^T + b2 (2, 10)")

# ---- random streams (independent Philox implementation) --------------------------------------
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF

# Random123 tests/kat_vectors, "philox4x32 10": counter, key, expected output.
KAT = [
    ([0x00000000, 0x00000000, 0x00000000, 0x00000000], [0x00000000, 0x00000000],
     [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], [0xFFFFFFFF, 0xFFFFFFFF],
     [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


def philox4x32_10(ctr, key):
    x0, x1, x2, x3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0 = (k0 + 0x9E3779B9) & M32
            k1 = (k1 + 0xBB67AE85) & M32
        p0 = 0xD2511F53 * x0
        p1 = 0xCD9E8D57 * x2
        x0, x1, x2, x3 = (((p1 >> 32) ^ x1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ x3 ^ k1) & M32,
                          p0 & M32)
    return [x0, x1, x2, x3]


def mix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def below(v):
    bits = struct.unpack("<I", struct.pack("<f", v))[0]
    return struct.unpack("<f", struct.pack("<I", bits - 1))[0]


class Stream:
    def __init__(self, seed, key):
        h = 0xCBF29CE484222325 ^ mix64(seed)
        data = key.encode("utf-8")
        for byte in data:
            h = ((h ^ byte) * 0x100000001B3) & M64
        h = mix64(h ^ len(data))
        self.key = [h & M32, h >> 32]
        self.counter = 0
        self.buf = []

    def u32(self):
        if not self.buf:
            c = self.counter
            self.buf = philox4x32_10([(c >> (32 * i)) & M32 for i in range(4)], self.key)
            self.counter = c + 1
        return self.buf.pop(0)

    def uniform(self, lo, hi):
        u = (self.u32() >> 8) / float(1 << 24)
        v = f32(lo + (hi - lo) * u)
        if lo < hi and v >= hi:
            v = below(hi)
        return v


for ctr, key, want in KAT:
    assert philox4x32_10(ctr, key) == want, (ctr, key)


def cfloat(v):
    """The shortest text that reads back as the same float32 (C's strtof rounds to nearest)."""
    s = repr(np.float32(v))
    return s + "f" if ("." in s or "e" in s) else s + ".0f"


def my_init(seed, key, n):
    """The chapter's MyInit: uniform in [-10, 10), then zero every |x| < 5."""
    s = Stream(seed, key)
    out = []
    for _ in range(n):
        v = s.uniform(-10.0, 10.0)
        out.append(0.0 if abs(v) < 5.0 else v)
    return np.array(out, dtype=np.float32)


def uniform_init(seed, key, n, scale):
    s = Stream(seed, key)
    sc = f32(scale)
    return np.array([s.uniform(-sc, sc) for _ in range(n)], dtype=np.float32)


defines.append(("BR_MYINIT_SEED", "5u"))
emit("myinit_0_weight", my_init(5, "0.weight", 12).reshape(4, 3),
     "MyInit on \"0.weight\" (4, 3), seed 5")
emit("myinit_1_weight", my_init(5, "1.weight", 8).reshape(2, 4),
     "MyInit on \"1.weight\" (2, 4), seed 5")
defines.append(("BR_UNIFORM_SEED", "11u"))
emit("uniform_0_weight", uniform_init(11, "0.weight", 12, 0.07).reshape(4, 3),
     "the default Uniform(0.07) on \"0.weight\" (4, 3), seed 11")
emit("uniform_weight", uniform_init(11, "weight", 12, 0.07).reshape(4, 3),
     "the default Uniform(0.07) on \"weight\" (4, 3) (a Dense initialized alone), seed 11")
# Xavier(uniform, avg, 3) on (4, 3): fan_in 3, fan_out 4, scale sqrt(3 / 3.5) in float32.
xav_scale = f32(math.sqrt(3.0 / 3.5))
defines.append(("BR_XAVIER_SEED", "13u"))
emit("xavier_0_weight", uniform_init(13, "0.weight", 12, xav_scale).reshape(4, 3),
     "Xavier(uniform, avg, 3) on \"0.weight\" (4, 3), seed 13: scale sqrt(3 / 3.5)")
defines.append(("BR_XAVIER_SCALE", cfloat(xav_scale)))


# ---- writing ----------------------------------------------------------------------------------
def main():
    out = []
    w_ = out.append
    w_("/*")
    w_(" * block_refs.h - reference values for the block and parameter tests (tests/blocks).")
    w_(" *")
    w_(" * GENERATED FILE, do not edit. Regenerate from the repository root with:")
    w_(" *     /usr/bin/python3 tests/blocks/ref/gen_block_refs.py")
    w_(" *")
    w_(" * NumPy %s, seed %d. Layer inputs and weights are float32; results are computed in" %
       (np.__version__, SEED))
    w_(" * float64 from them and rounded to float32. Initial parameter values come from an")
    w_(" * independent Philox-4x32-10 implementation checked against Random123's vectors.")
    w_(" */")
    w_("#ifndef LAMINA_TESTS_BLOCK_REFS_H")
    w_("#define LAMINA_TESTS_BLOCK_REFS_H")
    w_("")
    w_("/* clang-format off */")
    w_("")
    w_("#include <stddef.h>")
    w_("#include <stdint.h>")
    w_("")
    w_("#if defined(__GNUC__)")
    w_("#define BR_UNUSED __attribute__((unused))")
    w_("#else")
    w_("#define BR_UNUSED")
    w_("#endif")
    w_("")
    w_("/* An array with its shape (row-major). */")
    w_("typedef struct br_array {")
    w_("    uint32_t ndim;")
    w_("    int64_t dims[8];")
    w_("    size_t count;")
    w_("    const float *data;")
    w_("} br_array;")
    w_("")
    for name, text in defines:
        w_("#define %s %s" % (name, text))
    w_("")
    for name, comment, arr in arrays:
        flat = arr.reshape(-1)
        if comment:
            w_("/* %s */" % comment)
        w_("static const float br_%s_data[%d] BR_UNUSED = {" % (name, flat.size))
        for i in range(0, flat.size, 6):
            w_("    " + ", ".join(cfloat(v) for v in flat[i:i + 6]) + ",")
        w_("};")
        dims = ", ".join(str(n) for n in arr.shape)
        w_("static const br_array br_%s BR_UNUSED = {%d, {%s}, %d, br_%s_data};" %
           (name, arr.ndim, dims, flat.size, name))
        w_("")
    w_("/* clang-format on */")
    w_("")
    w_("#endif")
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
