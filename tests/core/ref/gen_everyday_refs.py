#!/usr/bin/python3
"""Writes tests/core/ref/everyday_refs.h: PyTorch float64 references (values and gradients)
for the everyday ops tested by tests/core/test_everyday_ops.c: norm, clamp, take, where,
slice, one_hot and arange.

Run from anywhere (the output path is relative to this file):

    /usr/bin/python3 tests/core/ref/gen_everyday_refs.py

Needs PyTorch (1.13 was used). Inputs are drawn from a fixed seed, rounded to two decimals and
stored as float32; every reference is computed by torch in float64 from those float32 inputs
and rounded to float32 once. A gradient is d(sum(w * f(x)))/dx for a stored head weight w. The
header is deterministic.
"""

import os

import numpy as np
import torch

SEED = 20261204
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "everyday_refs.h")
rng = np.random.default_rng(SEED)
arrays = []
defines = []


def rand(shape, lo=-2.0, hi=2.0):
    return np.round(rng.uniform(lo, hi, size=shape), 2).astype(np.float32)


def emit(name, value, comment):
    value = np.asarray(value, dtype=np.float64)
    assert np.all(np.isfinite(value)), name
    arrays.append((name, value.astype(np.float32), comment))


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def grad_of(fn, *inputs, name):
    """Forward value, head weight and the gradients of sum(w * fn(inputs)) per input."""
    xs = [t64(x, True) for x in inputs]
    y = fn(*xs)
    w = rand(tuple(y.shape), 0.5, 1.5)
    (t64(w) * y).sum().backward()
    emit(name + "_y", y.detach().numpy(), "forward")
    emit(name + "_w", w, "head weight")
    for i, x in enumerate(xs):
        emit("%s_g%d" % (name, i), x.grad.numpy(), "gradient of input %d" % i)


# norm: all elements, over axis 1, over axis 0 kept (values away from 0)
x = rand((3, 4))
emit("norm_x", x, "input (3, 4)")
grad_of(lambda a: torch.linalg.norm(a), x, name="norm_all")
grad_of(lambda a: torch.linalg.norm(a, dim=1), x, name="norm_ax1")
grad_of(lambda a: torch.linalg.norm(a, dim=0, keepdim=True), x, name="norm_ax0k")

# clamp to [-0.5, 0.7]: inputs at least 0.05 from either bound
c = rand((2, 5))
c[np.abs(c + 0.5) < 0.05] += 0.1
c[np.abs(c - 0.7) < 0.05] += 0.1
emit("clamp_x", c, "input (2, 5)")
grad_of(lambda a: torch.clamp(a, -0.5, 0.7), c, name="clamp")

# take along axis 0 with a repeated index: x (5, 2, 3), indices (2, 2)
tx = rand((5, 2, 3))
idx = np.array([[4, 0], [2, 4]], dtype=np.int64)
defines.append("static const int64_t er_take_idx[4] REF_UNUSED = {4, 0, 2, 4}; /* (2, 2) */")
emit("take_x", tx, "input (5, 2, 3)")
grad_of(lambda a: a[torch.tensor(idx)], tx, name="take")

# where: cond 0/1, x, y (3, 4)
cond = (rng.uniform(size=(3, 4)) < 0.5).astype(np.float32)
wx, wy = rand((3, 4)), rand((3, 4))
emit("where_c", cond, "condition (3, 4)")
emit("where_a", wx, "x")
emit("where_b", wy, "y")
grad_of(lambda a, b: torch.where(t64(cond) != 0, a, b), wx, wy, name="where")

# slice: x (4, 6), axis 1, elements 1, 3, 5
sx = rand((4, 6))
emit("slice_x", sx, "input (4, 6)")
grad_of(lambda a: a[:, 1:6:2], sx, name="slice")

# one_hot: int32 indices (2, 3), depth 5
oh = np.array([[0, 4, 2], [2, 1, 3]], dtype=np.int64)
defines.append("static const int32_t er_onehot_idx[6] REF_UNUSED = {0, 4, 2, 2, 1, 3}; /* (2, 3) */")
emit("onehot_y", torch.nn.functional.one_hot(torch.tensor(oh), 5).double().numpy(), "one_hot(., 5)")

# arange(0.5, 3, 0.75) and arange(3, 0, -1)
emit("arange_a", torch.arange(0.5, 3, 0.75, dtype=torch.float64).numpy(), "arange(0.5, 3, 0.75)")
emit("arange_b", torch.arange(3, 0, -1, dtype=torch.float64).numpy(), "arange(3, 0, -1)")

# norm where it is 0: all elements of a zero (2, 3), and over axis 1 of a (3, 4) whose row 1 is
# zero (PyTorch's gradient there is 0, the other rows' x / norm). Drawn after everything above,
# so the earlier references keep their values.
z = np.zeros((2, 3), dtype=np.float32)
emit("norm0_zeros", z, "input (2, 3), all zero")
grad_of(lambda a: torch.linalg.norm(a), z, name="norm0_all")
nz = rand((3, 4))
nz[1] = 0
emit("norm0_x", nz, "input (3, 4), row 1 zero")
grad_of(lambda a: torch.linalg.norm(a, dim=1), nz, name="norm0_ax1")


def lit(v):
    s = "%.9g" % v
    return s + ("f" if ("." in s or "e" in s) else ".0f")


def c_array(name, a, comment):
    flat = a.reshape(-1)
    body = ", ".join(lit(v) for v in flat)
    dims = ", ".join(str(d) for d in a.shape) or "0"
    lines = ["/* %s */" % comment]
    lines.append("static const float er_%s_data[%d] REF_UNUSED = {%s};" % (name, max(flat.size, 1), body or "0"))
    lines.append("static const ref_array er_%s REF_UNUSED = {%d, {%s}, %d, er_%s_data};"
                 % (name, a.ndim, dims, flat.size, name))
    return "\n".join(lines)


with open(OUT, "w") as f:
    f.write("/*\n * everyday_refs.h - PyTorch float64 references for tests/core/test_everyday_ops.c.\n")
    f.write(" *\n * GENERATED FILE, do not edit. Regenerate from the repository root with:\n")
    f.write(" *     /usr/bin/python3 tests/core/ref/gen_everyday_refs.py\n *\n")
    f.write(" * PyTorch %s, seed %d. Include after test_util.h (ref_array).\n */\n" % (torch.__version__, SEED))
    f.write("#ifndef LAMINA_TESTS_EVERYDAY_REFS_H\n#define LAMINA_TESTS_EVERYDAY_REFS_H\n\n/* clang-format off */\n\n")
    for d in defines:
        f.write(d + "\n")
    f.write("\n")
    for name, a, comment in arrays:
        f.write(c_array(name, a, comment) + "\n\n")
    f.write("/* clang-format on */\n\n#endif\n")
