#!/usr/bin/python3
"""Writes tests/autograd/ref/train_ref.h: PyTorch reference for the training-parity test.

Run from anywhere (the output path is relative to this file):

    /usr/bin/python3 tests/autograd/ref/gen_train_ref.py

Needs NumPy and PyTorch (Debian: apt-get install -y python3-numpy python3-torch).

The chapter's MLP, nn.Linear(20, 256) -> ReLU -> nn.Linear(256, 10), starts from fixed weights
(drawn from a NumPy seed, stored as float32) and trains for STEPS steps on one fixed batch of 8
inputs with integer labels, with the softmax cross-entropy averaged over the batch
(F.cross_entropy, reduction='mean'), under three optimizers:

    sgd       torch.optim.SGD(lr=0.1)
    momentum  torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=1e-4)
    adam      torch.optim.Adam(lr=1e-3)   (betas 0.9, 0.999, eps 1e-8)

Every optimizer sees every parameter (weight decay applies to the biases too). The reference
runs in float64 from the float32 starting values; the loss recorded for step k is the one the
step's backward starts from (before its update). The same training also runs in float32 and
must agree with float64 well inside the test's tolerance, and every hidden pre-activation of
every step stays at least MARGIN from relu's kink: otherwise the script redraws, so the
reference is not sensitive to float32 rounding.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from refheader import Header  # noqa: E402

SEED = 20240501
STEPS = 5
BATCH = 8
MARGIN = 1e-5
RTOL, ATOL = 1e-5, 1e-6  # the test's tolerance; float32 PyTorch must be within a tenth of it
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_ref.h")

OPTIMIZERS = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-4),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8),
}

rng = np.random.default_rng(SEED)


def draw(shape, lo, hi):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def train(init, x, y, opt_name, dtype):
    l1 = torch.nn.Linear(20, 256).to(dtype)
    l2 = torch.nn.Linear(256, 10).to(dtype)
    with torch.no_grad():
        for p, k in ((l1.weight, "w1"), (l1.bias, "b1"), (l2.weight, "w2"), (l2.bias, "b2")):
            p.copy_(torch.tensor(init[k].astype(np.float64)).to(dtype))
    params = [l1.weight, l1.bias, l2.weight, l2.bias]
    opt = OPTIMIZERS[opt_name](params)
    xt = torch.tensor(x.astype(np.float64)).to(dtype)
    yt = torch.tensor(y, dtype=torch.int64)
    losses, margin = [], float("inf")
    for _ in range(STEPS):
        opt.zero_grad()
        z = l1(xt)
        margin = min(margin, float(z.abs().min()))
        loss = F.cross_entropy(l2(torch.relu(z)), yt, reduction="mean")
        loss.backward()
        opt.step()
        losses.append(float(loss))
    final = {k: p.detach().to(torch.float64).numpy()
             for k, p in zip(("w1", "b1", "w2", "b2"), params)}
    return np.array(losses), final, margin


def worst(got, want):
    """The largest |got - want| / (ATOL + RTOL |want|) over all elements (1 = at tolerance)."""
    return float(np.max(np.abs(got - want) / (ATOL + RTOL * np.abs(want))))


tries = 0
while True:
    tries += 1
    init = {
        "w1": draw((256, 20), -0.2, 0.2),
        "b1": draw((256,), -0.1, 0.1),
        "w2": draw((10, 256), -0.1, 0.1),
        "b2": draw((10,), -0.1, 0.1),
    }
    x = draw((BATCH, 20), -1.0, 1.0)
    y = rng.integers(0, 10, size=BATCH)
    results, ok, ratio32 = {}, True, 0.0
    for name in OPTIMIZERS:
        l64, f64, m64 = train(init, x, y, name, torch.float64)
        l32, f32, m32 = train(init, x, y, name, torch.float32)
        r = max([worst(l32, l64)] + [worst(f32[k], f64[k]) for k in f64])
        ratio32 = max(ratio32, r)
        ok = ok and min(m64, m32) >= MARGIN and r < 0.1
        results[name] = (l64, f64)
    if ok:
        break
    assert tries < 50, "no draw met the margin and float32 agreement"

h = Header("LAMINA_TESTS_AUTOGRAD_TRAIN_REF_H", "tr_")
h.define("TR_STEPS", str(STEPS), "training steps per optimizer")
h.define("TR_BATCH", str(BATCH), "batch size")
h.define("TR_RTOL", "%g" % RTOL, "tolerance |got - want| <= TR_ATOL + TR_RTOL |want|")
h.define("TR_ATOL", "%g" % ATOL)
h.array("x", x, "the batch (8, 20)")
h.array("y", y.astype(np.float32), "labels (8,), class indices as floats")
h.array("w1", init["w1"], "starting hidden weight (256, 20)")
h.array("b1", init["b1"], "starting hidden bias (256,)")
h.array("w2", init["w2"], "starting output weight (10, 256)")
h.array("b2", init["b2"], "starting output bias (10,)")
for name, (losses, final) in results.items():
    h.array(name + "_loss", losses, "%s: mean loss of steps 1..%d (before each update)" %
            (name, STEPS))
    for k in ("w1", "b1", "w2", "b2"):
        h.array("%s_%s" % (name, k), final[k], "%s: %s after %d steps" % (name, k, STEPS))
h.write(OUT, [
    "train_ref.h - PyTorch reference for the training-parity test (tests/autograd).",
    "",
    "GENERATED FILE, do not edit. Regenerate from the repository root with:",
    "    /usr/bin/python3 tests/autograd/ref/gen_train_ref.py",
    "",
    "PyTorch %s, NumPy %s, seed %d (draw %d). MLP Linear(20, 256) -> ReLU ->" %
    (torch.__version__, np.__version__, SEED, tries),
    "Linear(256, 10), cross-entropy averaged over a batch of 8, %d steps of: SGD(lr=0.1);" % STEPS,
    "SGD(lr=0.1, momentum=0.9, weight_decay=1e-4); Adam(lr=1e-3). Trained in float64 from the",
    "float32 starting values; float32 PyTorch agrees within %.3f of the tolerance." % ratio32,
])
print("wrote %s after %d draw(s); float32 torch at %.4f of the tolerance" % (OUT, tries, ratio32))
