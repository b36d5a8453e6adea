#!/usr/bin/python3
"""Reference values for the Vulkan backend's ABI 2.0 ops (tests/vulkan/test_vulkan_ops2.c).

Written from the op semantics in sdk/include/lamina/plugin.h with plain loops over NumPy arrays
(float32 results), independently of the backend's shaders: GEMM_BATCHED, IM2COL, COL2IM, the
pools and their gradients, MOMENTS, and RANDOM's Philox-4x32-10 (Random123's constants, checked
against Random123's known-answer vectors before anything is written).

Regenerate from the repository root:  /usr/bin/python3 tests/vulkan/ref/gen_vk2_refs.py
"""
import math
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vk2_refs.h")
M32 = 0xFFFFFFFF

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
        x0, x1, x2, x3 = ((p1 >> 32) ^ x1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ x3 ^ k1) & M32, p0 & M32
    return [x0, x1, x2, x3]


def random_words(seed, key, offset, count):
    """u of element i: word (offset + i) % 4 of the block at counter {lo(n), hi(n), lo(key),
    hi(key)}, n = (offset + i) / 4, key {lo(seed), hi(seed)} (plugin.h, LAM_OP_RANDOM)."""
    out = []
    for i in range(count):
        c = offset + i
        n = c // 4
        blk = philox4x32_10([n & M32, (n >> 32) & M32, key & M32, (key >> 32) & M32],
                            [seed & M32, (seed >> 32) & M32])
        out.append(blk[c % 4])
    return out


def f24(u):
    return np.float32((u >> 8) * 2.0 ** -24)


def window_out(size, k, s, pb, pa, d, ceil_mode):
    span = size + pb + pa - d * (k - 1) - 1
    if span < 0:
        return 0
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and o > 1 and (o - 1) * s >= size + pb:
        o -= 1
    return o


def vals(n, mod=17, shift=8, scale=0.25, mul=37):
    """Exact small floats (quarters), so sums do not depend on their order."""
    return np.array([((i * mul) % mod - shift) * scale for i in range(n)], dtype=np.float32)


# ---- GEMM_BATCHED: A (3, 2, 3), B shared (1, 3, 2), and A transposed (3, 3, 2) ----
A = vals(18).reshape(3, 2, 3)
B = vals(6, mod=7, shift=3, mul=5).reshape(1, 3, 2)
GB = np.stack([A[b] @ B[0] for b in range(3)]).astype(np.float32) * np.float32(0.5)
AT = np.ascontiguousarray(A.transpose(0, 2, 1))

# ---- windows: x (2, 2, 5, 4) ----
X = vals(80, mod=23, shift=11, mul=7).reshape(2, 2, 5, 4)
WIN = dict(k=(3, 2), s=(2, 1), pb=(1, 0), pa=(1, 1), d=(1, 2))


def im2col(x, k, s, pb, pa, d, ceil_mode=False):
    n, c, h, w = x.shape
    oh = window_out(h, k[0], s[0], pb[0], pa[0], d[0], ceil_mode)
    ow = window_out(w, k[1], s[1], pb[1], pa[1], d[1], ceil_mode)
    out = np.zeros((n, c * k[0] * k[1], oh * ow), dtype=np.float32)
    for b in range(n):
        for ch in range(c):
            for i in range(k[0]):
                for j in range(k[1]):
                    for y in range(oh):
                        for z in range(ow):
                            hh = y * s[0] - pb[0] + i * d[0]
                            ww = z * s[1] - pb[1] + j * d[1]
                            if 0 <= hh < h and 0 <= ww < w:
                                out[b, (ch * k[0] + i) * k[1] + j, y * ow + z] = x[b, ch, hh, ww]
    return out, oh, ow


def col2im(cols, shape, k, s, pb, pa, d):
    n, c, h, w = shape
    oh = window_out(h, k[0], s[0], pb[0], pa[0], d[0], False)
    ow = window_out(w, k[1], s[1], pb[1], pa[1], d[1], False)
    out = np.zeros(shape, dtype=np.float32)
    for b in range(n):
        for col in range(oh * ow):  # increasing column, then row
            y, z = divmod(col, ow)
            for ch in range(c):
                for i in range(k[0]):
                    for j in range(k[1]):
                        hh = y * s[0] - pb[0] + i * d[0]
                        ww = z * s[1] - pb[1] + j * d[1]
                        if 0 <= hh < h and 0 <= ww < w:
                            out[b, ch, hh, ww] += cols[b, (ch * k[0] + i) * k[1] + j, col]
    return out


COLS, OH, OW = im2col(X, **WIN)
CX = vals(COLS.size, mod=13, shift=6, mul=11).reshape(COLS.shape)
C2I = col2im(CX, X.shape, **WIN)

# ---- pools: x (1, 2, 5, 5) with ties and a NaN, 3x3 stride 2 pad 1, ceil mode ----
P = np.array([((i * 5) % 7) - 3 for i in range(60)], dtype=np.float32).reshape(1, 2, 6, 5)
P[0, 1, 2, 3] = np.nan
PW = dict(k=(3, 3), s=(2, 2), pb=(1, 1), pa=(1, 1), d=(1, 1))


def max_pool(x, k, s, pb, pa, d, ceil_mode):
    n, c, h, w = x.shape
    oh = window_out(h, k[0], s[0], pb[0], pa[0], d[0], ceil_mode)
    ow = window_out(w, k[1], s[1], pb[1], pa[1], d[1], ceil_mode)
    v = np.zeros((n, c, oh, ow), dtype=np.float32)
    idx = np.zeros((n, c, oh, ow), dtype=np.int32)
    for b in range(n):
        for ch in range(c):
            for y in range(oh):
                for z in range(ow):
                    best, at = None, -1
                    for i in range(k[0]):
                        for j in range(k[1]):
                            hh = y * s[0] - pb[0] + i * d[0]
                            ww = z * s[1] - pb[1] + j * d[1]
                            if not (0 <= hh < h and 0 <= ww < w):
                                continue
                            t = x[b, ch, hh, ww]
                            if best is None or (not np.isnan(best) and (np.isnan(t) or t > best)):
                                best, at = t, hh * w + ww
                    v[b, ch, y, z], idx[b, ch, y, z] = best, at
    return v, idx


def max_pool_backward(g, idx, shape):
    out = np.zeros(shape, dtype=np.float32)
    n, c, h, w = shape
    for b in range(n):
        for ch in range(c):
            for o in range(g.shape[2] * g.shape[3]):
                y, z = divmod(o, g.shape[3])
                at = idx[b, ch, y, z]
                out[b, ch, at // w, at % w] += g[b, ch, y, z]
    return out


def avg_divisor(y, z, h, w, k, s, pb, pa, d, include_pad):
    lo_h, hi_h = (-pb[0], h + pa[0]) if include_pad else (0, h)
    lo_w, hi_w = (-pb[1], w + pa[1]) if include_pad else (0, w)
    cnt = 0
    for i in range(k[0]):
        for j in range(k[1]):
            hh = y * s[0] - pb[0] + i * d[0]
            ww = z * s[1] - pb[1] + j * d[1]
            if lo_h <= hh < hi_h and lo_w <= ww < hi_w:
                cnt += 1
    return cnt


def avg_pool(x, k, s, pb, pa, d, ceil_mode, include_pad):
    n, c, h, w = x.shape
    oh = window_out(h, k[0], s[0], pb[0], pa[0], d[0], ceil_mode)
    ow = window_out(w, k[1], s[1], pb[1], pa[1], d[1], ceil_mode)
    out = np.zeros((n, c, oh, ow), dtype=np.float32)
    for b in range(n):
        for ch in range(c):
            for y in range(oh):
                for z in range(ow):
                    acc = 0.0
                    for i in range(k[0]):
                        for j in range(k[1]):
                            hh = y * s[0] - pb[0] + i * d[0]
                            ww = z * s[1] - pb[1] + j * d[1]
                            if 0 <= hh < h and 0 <= ww < w:
                                acc += float(x[b, ch, hh, ww])
                    cnt = avg_divisor(y, z, h, w, k, s, pb, pa, d, include_pad)
                    out[b, ch, y, z] = acc / cnt if cnt else 0.0
    return out


def avg_pool_backward(g, shape, k, s, pb, pa, d, include_pad):
    n, c, h, w = shape
    out = np.zeros(shape, dtype=np.float64)
    for b in range(n):
        for ch in range(c):
            for y in range(g.shape[2]):
                for z in range(g.shape[3]):
                    cnt = avg_divisor(y, z, h, w, k, s, pb, pa, d, include_pad)
                    for i in range(k[0]):
                        for j in range(k[1]):
                            hh = y * s[0] - pb[0] + i * d[0]
                            ww = z * s[1] - pb[1] + j * d[1]
                            if 0 <= hh < h and 0 <= ww < w and cnt:
                                out[b, ch, hh, ww] += float(g[b, ch, y, z]) / cnt
    return out.astype(np.float32)


MPV, MPI = max_pool(P, ceil_mode=True, **PW)
MG = vals(MPV.size, mod=9, shift=4, mul=5).reshape(MPV.shape)
MPB = max_pool_backward(MG, MPI, P.shape)
PQ = np.nan_to_num(P, nan=0.5)
AP_EX = avg_pool(PQ, ceil_mode=True, include_pad=False, **PW)
AP_IN = avg_pool(PQ, ceil_mode=True, include_pad=True, **PW)
APB_EX = avg_pool_backward(MG, P.shape, include_pad=False, **PW)

# ---- MOMENTS: x (2, 5, 3) ----
MX = vals(30, mod=11, shift=5, mul=3).reshape(2, 5, 3).astype(np.float64)
MEAN = MX.mean(axis=1, keepdims=True).astype(np.float32)
VAR = MX.var(axis=1, keepdims=True).astype(np.float32)

# ---- RANDOM ----
SEED, KEY, OFFSET = 0x0123456789ABCDEF, 0xFEDCBA9876543210, 6
U = random_words(SEED, KEY, OFFSET, 11)
UNI = [f24(u) for u in U]
# an offset whose low word wraps within the call, and whose block number n crosses 2^32
OFFSET_WRAP = (1 << 34) - 6
UNI_WRAP = [f24(u) for u in random_words(SEED, KEY, OFFSET_WRAP, 11)]
UNI_AB = [np.float32(np.float32(-1.0) + np.float32(4.0) * f24(u)) for u in U]
BER = [np.float32(1.0 if f24(u) < np.float32(0.3) else 0.0) for u in U]
NRM = []
UN = random_words(SEED, KEY, OFFSET, 12)
for kk in range(6):
    u1, u2 = UN[2 * kk], UN[2 * kk + 1]
    f1 = ((u1 >> 8) + 1) * 2.0 ** -24
    f2 = (u2 >> 8) * 2.0 ** -24
    r = math.sqrt(-2.0 * math.log(f1))
    NRM += [0.5 + 2.0 * r * math.cos(2 * math.pi * f2), 0.5 + 2.0 * r * math.sin(2 * math.pi * f2)]
NRM = NRM[:11]


def fmt(v):
    t = "%.9g" % v
    return t if ("." in t or "e" in t or "n" in t) else t + ".0"


def main():
    for ctr, key, want in KAT:
        got = philox4x32_10(ctr, key)
        assert got == want, (ctr, key, [hex(g) for g in got])
    lines = []
    w = lines.append
    w("/*")
    w(" * vk2_refs.h - reference values for test_vulkan_ops2.c.")
    w(" *")
    w(" * GENERATED FILE, do not edit. Regenerate from the repository root with:")
    w(" *     /usr/bin/python3 tests/vulkan/ref/gen_vk2_refs.py")
    w(" */")
    w("#ifndef LAMINA_TEST_VK2_REFS_H")
    w("#define LAMINA_TEST_VK2_REFS_H")
    w("")
    w("#include <stdint.h>")
    w("")

    def arr(name, a, kind="float"):
        flat = np.asarray(a).reshape(-1)
        if kind == "float":
            items = ["NAN" if np.isnan(v) else "%sf" % fmt(float(v)) for v in flat]
        elif kind == "u32":
            items = ["0x%08Xu" % int(v) for v in flat]
        else:
            items = ["%d" % int(v) for v in flat]
        ctype = {"float": "float", "u32": "uint32_t", "int": "int32_t"}[kind]
        w("static const %s %s[%d] = {" % (ctype, name, len(items)))
        for i in range(0, len(items), 8):
            w("    " + ", ".join(items[i:i + 8]) + ",")
        w("};")

    arr("ref_gb_a", A)
    arr("ref_gb_at", AT)
    arr("ref_gb_b", B)
    arr("ref_gb_out", GB)
    w("#define REF_WIN_OH %d" % OH)
    w("#define REF_WIN_OW %d" % OW)
    arr("ref_win_x", X)
    arr("ref_im2col", COLS)
    arr("ref_col2im_x", CX)
    arr("ref_col2im", C2I)
    w("#define REF_POOL_OH %d" % MPV.shape[2])
    w("#define REF_POOL_OW %d" % MPV.shape[3])
    arr("ref_pool_x", P)
    arr("ref_maxpool_v", MPV)
    arr("ref_maxpool_i", MPI, "int")
    arr("ref_pool_g", MG)
    arr("ref_maxpool_back", MPB)
    arr("ref_pool_xq", PQ)
    arr("ref_avgpool_ex", AP_EX)
    arr("ref_avgpool_in", AP_IN)
    arr("ref_avgpool_back_ex", APB_EX)
    arr("ref_moments_x", MX.astype(np.float32))
    arr("ref_moments_mean", MEAN)
    arr("ref_moments_var", VAR)
    w("#define REF_RANDOM_SEED 0x%016XULL" % SEED)
    w("#define REF_RANDOM_KEY 0x%016XULL" % KEY)
    w("#define REF_RANDOM_OFFSET %d" % OFFSET)
    w("#define REF_RANDOM_OFFSET_WRAP 0x%XULL" % OFFSET_WRAP)
    arr("ref_random_uniform_wrap", UNI_WRAP)
    arr("ref_random_u", U, "u32")
    arr("ref_random_uniform", UNI)
    arr("ref_random_uniform_m1_3", UNI_AB)
    arr("ref_random_bernoulli_03", BER)
    arr("ref_random_normal_05_2", np.array(NRM, dtype=np.float32))
    w("")
    w("#endif /* LAMINA_TEST_VK2_REFS_H */")
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
