#!/usr/bin/python3
"""Writes tests/autograd/ref/shared_ref.h: PyTorch reference for the shared-parameter net.

Run from anywhere (the output path is relative to this file):

    /usr/bin/python3 tests/autograd/ref/gen_shared_ref.py

Needs NumPy and PyTorch (Debian: apt-get install -y python3-numpy python3-torch).

The chapter's net (Gluon section 4.2, "Shared Parameters"):

    Dense(8, relu) -> shared = Dense(8, relu) -> Dense(8, relu, params=shared.params) -> Dense(10)

is built in PyTorch with ONE nn.Linear(8, 8) module used twice, so autograd sums the two uses
into its .grad. Inputs and weights are drawn from a fixed NumPy seed and stored as float32;
the forward and backward run in float64 on those float32 values (nn.Linear's weight is
(out, in) like Gluon's Dense). The head gradient hg weights every output element:
loss = sum(hg * net(x)). The script redraws until every pre-activation is at least MARGIN
away from relu's kink, so float32 rounding cannot move an element across it.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from refheader import Header  # noqa: E402

SEED = 20240422
MARGIN = 0.02
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shared_ref.h")

rng = np.random.default_rng(SEED)


def draw(shape, lo, hi):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def t64(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)


def build():
    v = {
        "x": draw((2, 20), -1.0, 1.0),
        "w0": draw((8, 20), -0.5, 0.5),
        "b0": draw((8,), -0.3, 0.3),
        "ws": draw((8, 8), -0.6, 0.6),
        "bs": draw((8,), -0.3, 0.3),
        "w3": draw((10, 8), -0.6, 0.6),
        "b3": draw((10,), -0.3, 0.3),
        "hg": draw((2, 10), -1.0, 1.0),
    }
    first = torch.nn.Linear(20, 8).double()
    shared = torch.nn.Linear(8, 8).double()
    last = torch.nn.Linear(8, 10).double()
    with torch.no_grad():
        first.weight.copy_(t64(v["w0"]))
        first.bias.copy_(t64(v["b0"]))
        shared.weight.copy_(t64(v["ws"]))
        shared.bias.copy_(t64(v["bs"]))
        last.weight.copy_(t64(v["w3"]))
        last.bias.copy_(t64(v["b3"]))
    x = t64(v["x"]).requires_grad_(True)
    z1 = first(x)
    h1 = torch.relu(z1)
    z2 = shared(h1)
    h2 = torch.relu(z2)
    z3 = shared(h2)  # the same module again: its parameters get the sum of both uses
    h3 = torch.relu(z3)
    y = last(h3)
    (y * t64(v["hg"])).sum().backward()
    margin = min(float(z.abs().min()) for z in (z1, z2, z3))
    alive = [int((z > 0).sum()) for z in (z1, z2, z3)]
    return v, (first, shared, last), x, y, margin, alive


while True:
    vals, (first, shared, last), x, y, margin, alive = build()
    # Keep a few units alive in every layer, so the gradients are not all zero.
    if margin >= MARGIN and min(alive) >= 6:
        break

h = Header("LAMINA_TESTS_AUTOGRAD_SHARED_REF_H", "sr_")
h.define("SR_MARGIN", "%gf" % MARGIN, "every pre-activation is at least this far from 0")
h.array("x", vals["x"], "input (2, 20)")
h.array("w0", vals["w0"], "Dense(8, relu) weight (8, 20)")
h.array("b0", vals["b0"], "Dense(8, relu) bias (8,)")
h.array("ws", vals["ws"], "the shared Dense(8, relu) weight (8, 8)")
h.array("bs", vals["bs"], "the shared Dense(8, relu) bias (8,)")
h.array("w3", vals["w3"], "Dense(10) weight (10, 8)")
h.array("b3", vals["b3"], "Dense(10) bias (10,)")
h.array("hg", vals["hg"], "head gradient (2, 10): loss = sum(hg * net(x))")
h.array("out", y.detach().numpy(), "net(x) (2, 10)")
h.array("grad_x", x.grad.numpy(), "d loss / d x (2, 20)")
h.array("grad_w0", first.weight.grad.numpy(), "d loss / d w0 (8, 20)")
h.array("grad_b0", first.bias.grad.numpy(), "d loss / d b0 (8,)")
h.array("grad_ws", shared.weight.grad.numpy(), "d loss / d ws: the sum over both uses (8, 8)")
h.array("grad_bs", shared.bias.grad.numpy(), "d loss / d bs: the sum over both uses (8,)")
h.array("grad_w3", last.weight.grad.numpy(), "d loss / d w3 (10, 8)")
h.array("grad_b3", last.bias.grad.numpy(), "d loss / d b3 (10,)")
h.write(OUT, [
    "shared_ref.h - PyTorch reference for the shared-parameter test (tests/autograd).",
    "",
    "GENERATED FILE, do not edit. Regenerate from the repository root with:",
    "    /usr/bin/python3 tests/autograd/ref/gen_shared_ref.py",
    "",
    "PyTorch %s, NumPy %s, seed %d. Net: Dense(8, relu) -> shared Dense(8, relu) ->" %
    (torch.__version__, np.__version__, SEED),
    "Dense(8, relu, params=shared) -> Dense(10), built with one nn.Linear(8, 8) used twice.",
    "Inputs are float32; forward and backward ran in float64 on them (results rounded to",
    "float32 once). loss = sum(hg * net(x)).",
])
print("wrote %s (margin %.4f, alive units %s)" % (OUT, margin, alive))
