#!/usr/bin/python3
"""Writes tests/nn/ref/nn_refs.h: NumPy reference results for the NN ops of lamina.h
(lam_op_matmul_batched, lam_op_conv2d, lam_op_max_pool2d, lam_op_avg_pool2d, lam_op_pad,
lam_op_moments) and their gradients.

Run from anywhere (the output path is relative to this file):

    /usr/bin/python3 tests/nn/ref/gen_nn_refs.py

Only NumPy is needed. Every op is written here from its definition (PyTorch's semantics: conv2d
as cross-correlation, pooling windows with floor/ceil sizes and PyTorch's last-window rule,
max pooling ties to the first element in row-major window order, avg pooling divisors with and
without count_include_pad), with explicit loops rather than NumPy's convolution helpers, so the
references do not share code with the library. Inputs are float32 drawn from a fixed seed and
rounded to two decimals; references are computed in float64 and rounded to float32 once. Each
gradient is that of sum(out * G) for a random head gradient G (also written out). The header
is deterministic.
"""

import math
import os

import numpy as np

SEED = 20261204
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn_refs.h")

rng = np.random.default_rng(SEED)
arrays = []  # (name, float32 ndarray)
defines = []  # (name, text)


def rand(shape, lo=-2.0, hi=2.0):
    return np.round(rng.uniform(lo, hi, size=shape), 2).astype(np.float32)


def emit(name, value, allow_int=False):
    value = np.asarray(value)
    assert np.all(np.isfinite(value)), name
    arrays.append((name, value.astype(np.float32)))


def d(x):
    return np.asarray(x, dtype=np.float64)


def fd_check(name, f, inputs, grads, g, picks=4):
    """Asserts the analytic gradients of sum(f(*inputs) * g) against central differences (float64)
    at a few coordinates of each input: the references' own gradients are checked here."""
    inputs = [d(v).copy() for v in inputs]
    for k, (v, gr) in enumerate(zip(inputs, grads)):
        if gr is None:
            continue
        for _ in range(picks):
            i = tuple(int(rng.integers(0, n)) for n in v.shape)
            old, eps = v[i], 1e-3
            v[i] = old + eps
            fp = float(np.sum(f(*inputs) * d(g)))
            v[i] = old - eps
            fm = float(np.sum(f(*inputs) * d(g)))
            v[i] = old
            fd = (fp - fm) / (2 * eps)
            assert abs(fd - gr[i]) <= 1e-6 + 1e-6 * abs(fd), (name, k, i, fd, gr[i])


# ---- batched matmul -------------------------------------------------------------------------
def op_t(x, t):
    return np.swapaxes(x, 1, 2) if t else x


def bmm(a, b, ta, tb):
    a, b = op_t(d(a), ta), op_t(d(b), tb)
    batch = max(a.shape[0], b.shape[0])
    out = np.zeros((batch, a.shape[1], b.shape[2]))
    for i in range(batch):
        ai = a[0] if a.shape[0] == 1 else a[i]
        bi = b[0] if b.shape[0] == 1 else b[i]
        out[i] = ai @ bi
    return out


def bmm_grads(a, b, ta, tb, g):
    """Gradients of sum(bmm(a, b) * g), summed over the batch for a shared (batch 1) operand."""
    A, B, G = op_t(d(a), ta), op_t(d(b), tb), d(g)
    batch = G.shape[0]
    dA = np.zeros(A.shape)
    dB = np.zeros(B.shape)
    for i in range(batch):
        ia = 0 if A.shape[0] == 1 else i
        ib = 0 if B.shape[0] == 1 else i
        dA[ia] += G[i] @ B[ib].T
        dB[ib] += A[ia].T @ G[i]
    return op_t(dA, ta), op_t(dB, tb)


MM_CASES = [
    # name, a shape (stored), b shape (stored), ta, tb
    ("mm_plain", (3, 2, 4), (3, 4, 5), 0, 0),
    ("mm_shared_a", (1, 2, 4), (3, 4, 5), 0, 0),
    ("mm_shared_b_tt", (3, 4, 2), (1, 5, 4), 1, 1),
    ("mm_ta_shared_a", (1, 4, 3), (2, 4, 2), 1, 0),
]
for name, sa, sb, ta, tb in MM_CASES:
    a, b = rand(sa), rand(sb)
    out = bmm(a, b, ta, tb)
    g = rand(out.shape)
    da, db = bmm_grads(a, b, ta, tb, g)
    fd_check(name, lambda a_, b_: bmm(a_, b_, ta, tb), [a, b], [da, db], g)
    emit(name + "_a", a)
    emit(name + "_b", b)
    emit(name + "_out", out)
    emit(name + "_g", g)
    emit(name + "_da", da)
    emit(name + "_db", db)


# ---- window sizes -----------------------------------------------------------------------------
def out_len(n, k, s, p, dil, ceil_mode):
    span = n + 2 * p - dil * (k - 1) - 1
    if ceil_mode:
        o = -(-span // s) + 1
        if (o - 1) * s >= n + p:  # the last window must start inside the input or left padding
            o -= 1
    else:
        o = span // s + 1
    return o


# ---- conv2d -------------------------------------------------------------------------------------
def conv2d(x, w, bias, stride, pad, dil, groups):
    x, w = d(x), d(w)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh = out_len(h, kh, stride[0], pad[0], dil[0], False)
    ow = out_len(wd, kw, stride[1], pad[1], dil[1], False)
    og = o // groups
    y = np.zeros((n, o, oh, ow))
    for ni in range(n):
        for oc in range(o):
            gi = oc // og
            for p in range(oh):
                for q in range(ow):
                    acc = 0.0
                    for ci in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                hh = p * stride[0] - pad[0] + i * dil[0]
                                ww = q * stride[1] - pad[1] + j * dil[1]
                                if 0 <= hh < h and 0 <= ww < wd:
                                    acc += x[ni, gi * cg + ci, hh, ww] * w[oc, ci, i, j]
                    y[ni, oc, p, q] = acc + (bias[oc] if bias is not None else 0.0)
    return y


def conv2d_grads(x, w, stride, pad, dil, groups, g):
    x, w, g = d(x), d(w), d(g)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    dx, dw = np.zeros(x.shape), np.zeros(w.shape)
    for ni in range(n):
        for oc in range(o):
            gi = oc // og
            for p in range(g.shape[2]):
                for q in range(g.shape[3]):
                    gv = g[ni, oc, p, q]
                    for ci in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                hh = p * stride[0] - pad[0] + i * dil[0]
                                ww = q * stride[1] - pad[1] + j * dil[1]
                                if 0 <= hh < h and 0 <= ww < wd:
                                    dx[ni, gi * cg + ci, hh, ww] += gv * w[oc, ci, i, j]
                                    dw[oc, ci, i, j] += gv * x[ni, gi * cg + ci, hh, ww]
    db = g.sum(axis=(0, 2, 3))
    return dx, dw, db


CONV_CASES = [
    # name, x shape, w shape, bias?, stride, pad, dilation, groups
    ("conv_basic", (2, 3, 7, 6), (4, 3, 3, 3), True, (1, 1), (1, 1), (1, 1), 1),
    ("conv_s2d2", (2, 2, 9, 8), (3, 2, 3, 2), False, (2, 2), (2, 1), (2, 2), 1),
    ("conv_groups", (2, 4, 5, 7), (6, 2, 3, 3), True, (2, 1), (1, 0), (1, 1), 2),
]
for name, sx, sw, has_bias, stride, pad, dil, groups in CONV_CASES:
    x, w = rand(sx), rand(sw)
    bias = rand((sw[0],)) if has_bias else None
    y = conv2d(x, w, None if bias is None else d(bias), stride, pad, dil, groups)
    g = rand(y.shape)
    dx, dw, db = conv2d_grads(x, w, stride, pad, dil, groups, g)
    fd_check(name, lambda x_, w_: conv2d(x_, w_, None, stride, pad, dil, groups), [x, w], [dx, dw], g)
    emit(name + "_x", x)
    emit(name + "_w", w)
    if bias is not None:
        emit(name + "_bias", bias)
        emit(name + "_dbias", db)
    emit(name + "_out", y)
    emit(name + "_g", g)
    emit(name + "_dx", dx)
    emit(name + "_dw", dw)


# ---- pooling --------------------------------------------------------------------------------
def max_pool(x, k, s, p, dil, ceil_mode):
    x = d(x)
    n, c, h, wd = x.shape
    oh = out_len(h, k[0], s[0], p[0], dil[0], ceil_mode)
    ow = out_len(wd, k[1], s[1], p[1], dil[1], ceil_mode)
    y = np.zeros((n, c, oh, ow))
    idx = np.zeros((n, c, oh, ow), dtype=np.int64)
    for ni in range(n):
        for ci in range(c):
            for a in range(oh):
                for b in range(ow):
                    best, bi = None, -1
                    for i in range(k[0]):  # row-major window order: the first maximum wins
                        for j in range(k[1]):
                            hh = a * s[0] - p[0] + i * dil[0]
                            ww = b * s[1] - p[1] + j * dil[1]
                            if 0 <= hh < h and 0 <= ww < wd:
                                v = x[ni, ci, hh, ww]
                                if best is None or v > best:
                                    best, bi = v, hh * wd + ww
                    y[ni, ci, a, b] = best
                    idx[ni, ci, a, b] = bi
    return y, idx


def max_pool_grad(xshape, idx, g):
    dx = np.zeros(xshape)
    n, c, h, wd = xshape
    for ni in range(n):
        for ci in range(c):
            for a in range(idx.shape[2]):
                for b in range(idx.shape[3]):
                    i = idx[ni, ci, a, b]
                    dx[ni, ci, i // wd, i % wd] += g[ni, ci, a, b]
    return dx


def avg_taps(a, b, h, wd, k, s, p, include_pad):
    taps = []
    count = 0
    for i in range(k[0]):
        for j in range(k[1]):
            hh = a * s[0] - p[0] + i
            ww = b * s[1] - p[1] + j
            inside = 0 <= hh < h and 0 <= ww < wd
            padded = -p[0] <= hh < h + p[0] and -p[1] <= ww < wd + p[1]
            if inside:
                taps.append((hh, ww))
            if (padded if include_pad else inside):
                count += 1
    return taps, count


def avg_pool(x, k, s, p, ceil_mode, include_pad):
    x = d(x)
    n, c, h, wd = x.shape
    oh = out_len(h, k[0], s[0], p[0], 1, ceil_mode)
    ow = out_len(wd, k[1], s[1], p[1], 1, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    for a in range(oh):
        for b in range(ow):
            taps, count = avg_taps(a, b, h, wd, k, s, p, include_pad)
            for (hh, ww) in taps:
                y[:, :, a, b] += x[:, :, hh, ww]
            y[:, :, a, b] = y[:, :, a, b] / count if count else 0.0
    return y


def avg_pool_grad(xshape, k, s, p, include_pad, g):
    g = d(g)
    n, c, h, wd = xshape
    dx = np.zeros(xshape)
    for a in range(g.shape[2]):
        for b in range(g.shape[3]):
            taps, count = avg_taps(a, b, h, wd, k, s, p, include_pad)
            for (hh, ww) in taps:
                dx[:, :, hh, ww] += g[:, :, a, b] / count
    return dx


MAX_CASES = [
    # name, x shape, kernel, stride, pad, dilation, ceil, tie-heavy input
    ("maxp_odd", (2, 3, 7, 7), (3, 3), (2, 2), (1, 1), (1, 1), False, False),
    ("maxp_ceil", (1, 2, 6, 6), (3, 3), (2, 2), (0, 0), (1, 1), True, False),
    ("maxp_ceil_pad", (1, 2, 6, 5), (3, 2), (2, 2), (1, 1), (1, 1), True, False),
    ("maxp_dil", (1, 2, 7, 8), (2, 2), (1, 2), (0, 1), (2, 2), False, False),
    ("maxp_ties", (2, 2, 5, 6), (2, 3), (1, 2), (0, 1), (1, 1), False, True),
]
for name, sx, k, s, p, dil, ceil_mode, ties in MAX_CASES:
    if ties:  # few distinct values: windows hold equal maxima, and the first must win
        x = rng.integers(0, 3, size=sx).astype(np.float32)
    else:  # distinct values, so finite differences are exact away from kinks
        x = (rng.permutation(int(np.prod(sx))).reshape(sx) * 0.25 - 3.0).astype(np.float32)
    y, idx = max_pool(x, k, s, p, dil, ceil_mode)
    g = rand(y.shape)
    emit(name + "_x", x)
    emit(name + "_out", y)
    emit(name + "_idx", idx)
    emit(name + "_g", g)
    dx = max_pool_grad(sx, idx, d(g))
    if not ties:  # distinct values 0.25 apart: no kink within the step
        fd_check(name, lambda x_: max_pool(x_, k, s, p, dil, ceil_mode)[0], [x], [dx], g)
    emit(name + "_dx", dx)

AVG_CASES = [
    # name, x shape, kernel, stride, pad, ceil, count_include_pad
    ("avgp_odd", (2, 2, 7, 7), (3, 3), (2, 2), (1, 1), False, False),
    ("avgp_incl", (2, 2, 7, 7), (3, 3), (2, 2), (1, 1), False, True),
    ("avgp_ceil_incl", (1, 2, 6, 5), (3, 3), (2, 2), (1, 1), True, True),
    ("avgp_ceil", (1, 2, 6, 5), (3, 2), (2, 2), (1, 0), True, False),
]
for name, sx, k, s, p, ceil_mode, incl in AVG_CASES:
    x = rand(sx)
    y = avg_pool(x, k, s, p, ceil_mode, incl)
    g = rand(y.shape)
    emit(name + "_x", x)
    emit(name + "_out", y)
    emit(name + "_g", g)
    dx = avg_pool_grad(sx, k, s, p, incl, g)
    fd_check(name, lambda x_: avg_pool(x_, k, s, p, ceil_mode, incl), [x], [dx], g)
    emit(name + "_dx", dx)

# ---- pad --------------------------------------------------------------------------------------
PAD_BEFORE, PAD_AFTER, PAD_VALUE = (1, 0, 2), (0, 2, 1), 0.5
x = rand((2, 3, 4))
y = np.full(tuple(x.shape[i] + PAD_BEFORE[i] + PAD_AFTER[i] for i in range(3)), PAD_VALUE)
y[1:3, 0:3, 2:6] = x
g = rand(y.shape)
emit("pad_x", x)
emit("pad_out", y)
emit("pad_g", g)
emit("pad_dx", d(g)[1:3, 0:3, 2:6])

# ---- moments ----------------------------------------------------------------------------------
MOM_CASES = [
    # name, x shape, axes, keepdims
    ("mom_bn", (3, 4, 5, 2), (0, 2, 3), 0),  # batch norm over NCHW: axes not adjacent
    ("mom_ln", (3, 4, 5, 2), (-1,), 1),  # layer norm over the last axis
    ("mom_mid", (3, 4, 5, 2), (1, 2), 1),  # adjacent middle axes
    ("mom_all", (3, 4, 5, 2), (), 0),  # every axis
]
for name, sx, axes, keep in MOM_CASES:
    x = rand(sx)
    ax = tuple(a % len(sx) for a in axes) if axes else tuple(range(len(sx)))
    X = d(x)
    mean = X.mean(axis=ax, keepdims=True)
    var = ((X - mean) ** 2).mean(axis=ax, keepdims=True)
    n = int(np.prod([sx[a] for a in ax]))
    shape_out = mean.shape if keep else tuple(s for i, s in enumerate(sx) if i not in ax)
    gm, gv = rand(shape_out), rand(shape_out)
    gmk, gvk = d(gm).reshape(mean.shape), d(gv).reshape(mean.shape)
    dx = gmk / n + gvk * 2.0 * (X - mean) / n

    def mom(x_):
        m_ = x_.mean(axis=ax, keepdims=True)
        return np.sum(m_ * gmk) + np.sum(((x_ - m_) ** 2).mean(axis=ax, keepdims=True) * gvk)

    fd_check(name, mom, [x], [dx], 1.0)
    emit(name + "_x", x)
    emit(name + "_mean", mean.reshape(shape_out))
    emit(name + "_var", var.reshape(shape_out))
    emit(name + "_gm", gm)
    emit(name + "_gv", gv)
    emit(name + "_dx", dx)
    defines.append((name.upper() + "_NAXES", str(len(axes))))
    defines.append((name.upper() + "_AXES", "{" + ", ".join(str(a) for a in axes) + "}" if axes else "{0}"))
    defines.append((name.upper() + "_KEEP", str(keep)))


# ---- max pooling over wide rows ----------------------------------------------------------------
# Rows wide enough that the CPU backend's row-at-a-time path (windows wholly inside the row) runs
# several vector widths plus a remainder, with padded windows at the ends. Appended after the
# cases above so that their random inputs stay as they were.
WIDE_MAX_CASES = [
    # name, x shape, kernel, stride, pad, dilation, ceil, tie-heavy input
    ("maxp_lenet", (2, 3, 12, 28), (2, 2), (2, 2), (0, 0), (1, 1), False, False),
    ("maxp_wide_ties", (1, 2, 9, 45), (3, 3), (2, 2), (1, 1), (1, 1), False, True),
    ("maxp_wide_s3", (1, 2, 8, 61), (2, 3), (2, 3), (0, 1), (1, 2), True, False),
    # LeNet's second pooling (rows of 5), and a padded 2x2 over 7 x 15 with ties: 4 x 8
    # windows, the first row's and each row's first half in the padding, 7 inside per row
    ("maxp_lenet2", (2, 4, 10, 10), (2, 2), (2, 2), (0, 0), (1, 1), False, False),
    ("maxp_2x2_pad", (1, 3, 7, 15), (2, 2), (2, 2), (1, 1), (1, 1), False, True),
]
for name, sx, k, s, p, dil, ceil_mode, ties in WIDE_MAX_CASES:
    if ties:
        x = rng.integers(0, 3, size=sx).astype(np.float32)
    else:
        x = (rng.permutation(int(np.prod(sx))).reshape(sx) * 0.25 - 300.0).astype(np.float32)
    y, idx = max_pool(x, k, s, p, dil, ceil_mode)
    g = rand(y.shape)
    emit(name + "_x", x)
    emit(name + "_out", y)
    emit(name + "_idx", idx)
    emit(name + "_g", g)
    dx = max_pool_grad(sx, idx, d(g))
    if not ties:
        fd_check(name, lambda x_: max_pool(x_, k, s, p, dil, ceil_mode)[0], [x], [dx], g)
    emit(name + "_dx", dx)


# ---- write ----------------------------------------------------------------------------------
def fmt(v):
    s = repr(float(v))
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


with open(OUT, "w") as f:
    f.write("/*\n * nn_refs.h - NumPy reference inputs and results for the Lamina NN op tests.\n")
    f.write(" *\n * GENERATED FILE, do not edit. Regenerate from the repository root with:\n")
    f.write(" *     /usr/bin/python3 tests/nn/ref/gen_nn_refs.py\n *\n")
    f.write(" * NumPy %s, seed %d. Inputs are float32; references are computed in float64 from\n"
            " * those inputs and rounded to float32.\n */\n" % (np.__version__, SEED))
    f.write("#ifndef LAMINA_TESTS_NN_REFS_H\n#define LAMINA_TESTS_NN_REFS_H\n\n/* clang-format off */\n\n")
    f.write("#include <stddef.h>\n#include <stdint.h>\n\n")
    f.write("/* An array with its shape (row-major). */\ntypedef struct nn_ref {\n    uint32_t ndim;\n"
            "    int64_t dims[8];\n    size_t count;\n    const float *data;\n} nn_ref;\n\n")
    for name, text in defines:
        f.write("#define REF_%s %s\n" % (name, text))
    f.write("\n")
    for name, a in arrays:
        flat = a.reshape(-1)
        f.write("static const float ref_%s_data[%d] = {\n" % (name, max(1, flat.size)))
        items = [fmt(v) for v in flat] or ["0.0f"]
        for i in range(0, len(items), 8):
            f.write("    " + ", ".join(items[i:i + 8]) + ",\n")
        f.write("};\n")
        dims = ", ".join(str(int(s)) for s in a.shape) or "0"
        f.write("static const nn_ref ref_%s __attribute__((unused)) = {%d, {%s}, %d, ref_%s_data};\n\n"
                % (name, a.ndim, dims, flat.size, name))
    f.write("/* clang-format on */\n\n#endif\n")
