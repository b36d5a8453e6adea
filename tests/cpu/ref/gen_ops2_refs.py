#!/usr/bin/python3
"""Reference values for tests/cpu/test_cpu_ops2.c (the CPU backend's ABI 2.0 ops).

Run from the repository root:  /usr/bin/python3 tests/cpu/ref/gen_ops2_refs.py
It rewrites tests/cpu/ref/ops2_refs.h, which is committed (the test needs no Python); run
`clang-format -i tests/cpu/ref/ops2_refs.h` after it, as CI checks the formatting.

Every value is computed here independently of the C code: windows by padding the image with
np.pad and slicing, pooling with PyTorch's own formulas (window start/end, clipped pool size),
scatter with np.add.at, moments in float64, and Philox-4x32-10 written from the Random123
paper (round then key bump), checked against Random123's known-answer vectors.
"""

import math
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops2_refs.h")
rng = np.random.default_rng(20261204)
lines = []


def f32(v):
    v = float(np.float32(v))
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    text = "%.9g" % v
    if "." not in text and "e" not in text:
        text += ".0"
    return text + "f"


def emit_f(name, arr):
    a = np.asarray(arr, dtype=np.float32).ravel()
    body = ", ".join(f32(x) for x in a)
    lines.append("static const float %s[%d] = {%s};" % (name, a.size, body))


def emit_i(name, arr, ctype="int32_t"):
    a = np.asarray(arr).ravel()
    body = ", ".join("%d" % int(x) for x in a)
    lines.append("static const %s %s[%d] = {%s};" % (ctype, name, a.size, body))


def emit_u(name, arr):
    a = np.asarray(arr, dtype=np.uint64).ravel()
    body = ", ".join("0x%08Xu" % int(x) for x in a)
    lines.append("static const uint32_t %s[%d] = {%s};" % (name, a.size, body))


def small(shape):
    """Values with few bits (multiples of 1/8 in [-4, 4]), so sums are exact in float32."""
    return (rng.integers(-32, 33, size=shape) / 8.0).astype(np.float32)


# ---- GEMM_BATCHED: A (3, 2, 3), B shared (stride 0) stored (4, 3) used transposed, beta ----
A = small((3, 2, 3))
A[0, 1, 2] = np.nan  # must stay in batch 0
B = small((4, 3))
C0 = small((3, 2, 4))
alpha, beta = 1.5, 0.5
C = np.empty((3, 2, 4), dtype=np.float64)
for b in range(3):
    C[b] = alpha * (A[b].astype(np.float64) @ B.T.astype(np.float64)) + beta * C0[b]
emit_f("bgemm_a", A)
emit_f("bgemm_b", B)
emit_f("bgemm_c0", C0)
emit_f("bgemm_out", C)


# ---- windows ----
def out_size(h, k, s, pb, pa, d, ceil):
    span = h + pb + pa - d * (k - 1) - 1
    if not ceil:
        return span // s + 1
    n = -(-span // s) + 1
    if (n - 1) * s >= h + pb:
        n -= 1
    return n


def im2col_ref(x, k, s, pb, pa, d, ceil=False):
    n, c, h, w = x.shape
    oh = out_size(h, k[0], s[0], pb[0], pa[0], d[0], ceil)
    ow = out_size(w, k[1], s[1], pb[1], pa[1], d[1], ceil)
    # pad generously, then read every tap by slicing the padded image
    extra = 64
    xp = np.pad(x, ((0, 0), (0, 0), (pb[0], pa[0] + extra), (pb[1], pa[1] + extra)))
    cols = np.zeros((n, c, k[0], k[1], oh, ow), dtype=np.float32)
    for i in range(k[0]):
        for j in range(k[1]):
            hs = i * d[0]
            ws = j * d[1]
            tap = xp[:, :, hs:hs + s[0] * oh:s[0], ws:ws + s[1] * ow:s[1]]
            cols[:, :, i, j] = tap
            # taps past pad_after (ceil mode) read the extra zeros, as they should
    return cols.reshape(n, c * k[0] * k[1], oh * ow), (oh, ow)


X1 = small((2, 2, 5, 5))
X1[0, 0, 2, 2] = np.nan  # NaN isolation: sample 1 must stay finite
col1, (oh1, ow1) = im2col_ref(X1, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1))
emit_f("im2col1_x", X1)
emit_f("im2col1_out", col1)
lines.append("#define IM2COL1_OH %d\n#define IM2COL1_OW %d" % (oh1, ow1))

X2 = small((1, 2, 5, 4))
col2, (oh2, ow2) = im2col_ref(X2, (2, 2), (1, 1), (0, 0), (1, 1), (2, 2))
emit_f("im2col2_x", X2)
emit_f("im2col2_out", col2)
lines.append("#define IM2COL2_OH %d\n#define IM2COL2_OW %d" % (oh2, ow2))


def col2im_ref(cols, shape, k, s, pb, pa, d):
    n, c, h, w = shape
    oh = out_size(h, k[0], s[0], pb[0], pa[0], d[0], False)
    ow = out_size(w, k[1], s[1], pb[1], pa[1], d[1], False)
    extra = 64
    img = np.zeros((n, c, h + pb[0] + pa[0] + extra, w + pb[1] + pa[1] + extra))
    cols6 = cols.reshape(n, c, k[0], k[1], oh, ow).astype(np.float64)
    for i in range(k[0]):
        for j in range(k[1]):
            for y in range(oh):
                for x in range(ow):
                    img[:, :, y * s[0] + i * d[0], x * s[1] + j * d[1]] += cols6[:, :, i, j, y, x]
    return img[:, :, pb[0]:pb[0] + h, pb[1]:pb[1] + w]


COLS = small((2, 2 * 3 * 3, oh1 * ow1))
emit_f("col2im_x", COLS)
emit_f("col2im_out", col2im_ref(COLS, (2, 2, 5, 5), (3, 3), (2, 2), (1, 1), (1, 1), (1, 1)))


def max_pool_ref(x, k, s, p, ceil=False, d=(1, 1)):
    n, c, h, w = x.shape
    oh = out_size(h, k[0], s[0], p[0], p[0], d[0], ceil)
    ow = out_size(w, k[1], s[1], p[1], p[1], d[1], ceil)
    vals = np.zeros((n, c, oh, ow), dtype=np.float32)
    idx = np.zeros((n, c, oh, ow), dtype=np.int64)
    for a in range(n):
        for b in range(c):
            for y in range(oh):
                for z in range(ow):
                    cand = []
                    for i in range(k[0]):
                        for j in range(k[1]):
                            hh = y * s[0] - p[0] + i * d[0]
                            ww = z * s[1] - p[1] + j * d[1]
                            if 0 <= hh < h and 0 <= ww < w:
                                cand.append((float(x[a, b, hh, ww]), hh * w + ww))
                    nans = [t for t in cand if math.isnan(t[0])]
                    if nans:
                        best = nans[0]
                    else:
                        m = max(t[0] for t in cand)
                        best = next(t for t in cand if t[0] == m)
                    vals[a, b, y, z] = best[0]
                    idx[a, b, y, z] = best[1]
    return vals, idx


# ties: values from a tiny set; one NaN in sample 0 only
XP = (rng.integers(0, 3, size=(2, 1, 5, 5))).astype(np.float32)
XP[0, 0, 3, 1] = np.nan
v, ix = max_pool_ref(XP, (3, 3), (2, 2), (1, 1))
emit_f("mp_x", XP)
emit_f("mp_vals", v)
emit_i("mp_idx", ix)
v2, ix2 = max_pool_ref(XP, (2, 2), (2, 2), (0, 0), ceil=True)
emit_f("mp_ceil_vals", v2)
emit_i("mp_ceil_idx", ix2)
lines.append("#define MP_CEIL_OH %d" % v2.shape[2])
v3, ix3 = max_pool_ref(XP, (2, 2), (1, 1), (0, 0), d=(2, 2))
emit_f("mp_dil_vals", v3)
emit_i("mp_dil_idx", ix3)

# backward of an overlapping pool (3x3 stride 1): several outputs pick one input
XB = small((1, 1, 4, 4))
vb, ib = max_pool_ref(XB, (3, 3), (1, 1), (1, 1))
GB = small(vb.shape)
gin = np.zeros((1, 1, 16), dtype=np.float64)
for o in range(ib.size):
    gin[0, 0, ib.ravel()[o]] += GB.ravel()[o]
emit_f("mpb_x", XB)
emit_i("mpb_idx", ib)
emit_f("mpb_g", GB)
emit_f("mpb_out", gin.reshape(1, 1, 4, 4))


def avg_pool_ref(x, k, s, p, ceil, include_pad):
    """PyTorch's avg_pool2d: window [start, start + k) clipped to the padded input gives the
    divisor with count_include_pad, clipped to the input otherwise."""
    n, c, h, w = x.shape
    oh = out_size(h, k[0], s[0], p[0], p[0], 1, ceil)
    ow = out_size(w, k[1], s[1], p[1], p[1], 1, ceil)
    out = np.zeros((n, c, oh, ow))
    for y in range(oh):
        for z in range(ow):
            hs, ws = y * s[0] - p[0], z * s[1] - p[1]
            he, we = min(hs + k[0], h + p[0]), min(ws + k[1], w + p[1])
            pool = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            div = pool if include_pad else (he - hs) * (we - ws)
            out[:, :, y, z] = x[:, :, hs:he, ws:we].astype(np.float64).sum(axis=(2, 3)) / div
    return out


def avg_pool_backward_ref(g, shape, k, s, p, ceil, include_pad):
    n, c, h, w = shape
    oh, ow = g.shape[2], g.shape[3]
    gin = np.zeros(shape)
    for y in range(oh):
        for z in range(ow):
            hs, ws = y * s[0] - p[0], z * s[1] - p[1]
            he, we = min(hs + k[0], h + p[0]), min(ws + k[1], w + p[1])
            pool = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            div = pool if include_pad else (he - hs) * (we - ws)
            gin[:, :, hs:he, ws:we] += (g[:, :, y, z].astype(np.float32) /
                                        np.float32(div))[:, :, None, None]
    return gin


XA = small((2, 1, 6, 6))
XA[1, 0, 0, 0] = np.nan  # sample 1 only
emit_f("ap_x", XA)
for name, ceil, inc in (("ap_floor", False, False), ("ap_floor_inc", False, True),
                        ("ap_ceil", True, False), ("ap_ceil_inc", True, True)):
    o = avg_pool_ref(XA, (3, 3), (2, 2), (1, 1), ceil, inc)
    emit_f(name, o)
    lines.append("#define %s_O %d" % (name.upper(), o.shape[2]))
    g = small(o.shape)
    emit_f(name + "_g", g)
    emit_f(name + "_gin", avg_pool_backward_ref(g, XA.shape, (3, 3), (2, 2), (1, 1), ceil, inc))

# ---- gather / scatter ----
T = small((4, 3))
gi = np.array([3, 0, 3, 1, 2])
emit_f("gather_table", T)
emit_i("gather_idx", gi)
emit_f("gather_out", T[gi])
SV = small((5, 3))
S0 = small((4, 3))
S = S0.astype(np.float64).copy()
np.add.at(S, gi, SV)
emit_f("scatter_x", SV)
emit_f("scatter_out0", S0)
emit_f("scatter_out", S)


# ---- Philox-4x32-10 (Salmon et al. 2011, Random123) ----
M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def philox(ctr, key):
    x0, x1, x2, x3 = ctr
    k0, k1 = key
    for _ in range(10):
        hi0, lo0 = divmod(M0 * x0, 1 << 32)
        hi1, lo1 = divmod(M1 * x2, 1 << 32)
        x0, x1, x2, x3 = hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0
        k0, k1 = (k0 + W0) & MASK, (k1 + W1) & MASK
    return [x0, x1, x2, x3]


KAT = [([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
       ([MASK] * 4, [MASK] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
       ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1])]
for ctr, key, want in KAT:
    assert philox(ctr, key) == want, "Philox does not match Random123's known answers"


def word(seed, key, pos):
    n = pos // 4
    blk = philox([n & MASK, n >> 32, key & MASK, key >> 32], [seed & MASK, seed >> 32])
    return blk[pos % 4]


SEED, KEY, OFF, COUNT = 0x0123456789ABCDEF, 0xFEDCBA9876543210, 5, 11
words = [word(SEED, KEY, OFF + i) for i in range(COUNT)]
lines.append("#define RAND_SEED 0x%016XULL\n#define RAND_KEY 0x%016XULL\n#define RAND_OFFSET %d"
             % (SEED, KEY, OFF))
emit_u("rand_words", words)
f = [np.float32((u >> 8) * 2.0 ** -24) for u in words]
lo, hi = np.float32(-2.0), np.float32(3.0)
emit_f("rand_uniform", [lo + (hi - lo) * x for x in f])  # exact: (hi - lo) * f has 24 bits
emit_f("rand_bernoulli", [1.0 if x < np.float32(0.3) else 0.0 for x in f])
normal = []
for i in range(COUNT):
    k = i - (i & 1)
    u1, u2 = words[k], word(SEED, KEY, OFF + k + 1)
    f1 = ((u1 >> 8) + 1) * 2.0 ** -24
    f2 = (u2 >> 8) * 2.0 ** -24
    r = math.sqrt(-2.0 * math.log(f1))
    z = r * (math.sin(2 * math.pi * f2) if i & 1 else math.cos(2 * math.pi * f2))
    normal.append(0.5 + 2.0 * z)
emit_f("rand_normal", normal)
kat0 = [word(0, 0, i) for i in range(4)]
emit_u("rand_kat0", kat0)

# ---- moments ----
XM = rng.standard_normal((2, 5, 3)).astype(np.float32)
emit_f("mom_x", XM)
emit_f("mom_mean", XM.astype(np.float64).mean(axis=1))
emit_f("mom_var", XM.astype(np.float64).var(axis=1))

# ---- argmax with ties and NaN, and int64 gather indices via the same table ----
XR = np.array([[1, 3, 3, 2], [np.nan, 5, np.nan, 1], [-1, -1, -2, -1]], dtype=np.float32)
emit_f("argmax_x", XR)
am = [0] * 3
for r in range(3):
    row = list(XR[r])
    nan = [i for i, v in enumerate(row) if math.isnan(v)]
    am[r] = nan[0] if nan else row.index(max(row))
emit_i("argmax_out", am)

with open(OUT, "w") as fh:
    fh.write("/* Generated by tests/cpu/ref/gen_ops2_refs.py (NumPy %s); do not edit. */\n"
             % np.__version__)
    fh.write("#ifndef LAMINA_TEST_OPS2_REFS_H\n#define LAMINA_TEST_OPS2_REFS_H\n\n")
    fh.write("#include <math.h>\n#include <stdint.h>\n\n")
    fh.write("\n".join(lines))
    fh.write("\n\n#endif\n")
print("wrote", OUT)
