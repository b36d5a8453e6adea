#!/usr/bin/python3
"""Writes tests/stdlayers/ref/stdlayers_ref.h: PyTorch float64 references for the BatchNorm,
LayerNorm, Embedding and Dropout layer plugins (tests/stdlayers/test_stdlayers.c).

Run from anywhere (the output path is relative to this file):

    /usr/bin/python3 tests/stdlayers/ref/gen_stdlayers_ref.py

Needs NumPy and PyTorch (Debian: apt-get install -y python3-numpy python3-torch).

Inputs, parameters and head gradients are drawn from a fixed NumPy seed and stored as float32;
PyTorch computes forward and backward in float64 on those values, and every loss is
sum(hg * y) with a drawn head gradient hg.

 - BatchNorm: torch.nn.BatchNorm2d / BatchNorm1d. Gluon's momentum m is PyTorch's 1 - m. Three
   training steps (outputs, input/gamma/beta gradients of the first, running statistics after
   each: PyTorch updates the running variance with the UNBIASED batch variance), then eval
   mode (output and gradients with the running statistics).
 - LayerNorm: torch.nn.functional.layer_norm over the last axis; Gluon's axis=1 on (2, 3, 4)
   is the same with that axis moved last.
 - Embedding: torch.nn.functional.embedding with repeated indices (the weight gradient sums).
 - Dropout: the mask is computed here independently of Lamina, from the documented stream:
   the layer's RNG key is lam__rng_stream_key(0, "dropout0") (FNV-1a 64 from a splitmix64-mixed
   basis, finalized by splitmix64's mixer), element i of a forward takes Philox-4x32-10 word
   (offset + i) % 4 of the block at counter {lo(n), hi(n), lo(key), hi(key)}, n = (offset + i)
   / 4, Philox key {lo(seed), hi(seed)}; kept where (u >> 8) * 2^-24 < float32(1 - rate). Two
   consecutive training forwards: offsets 0 and numel. PyTorch then computes y = x * mask /
   (1 - rate) and its gradient.
"""

import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "autograd", "ref"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from refheader import Header  # noqa: E402

SEED = 20261204
OUT = os.path.join(HERE, "stdlayers_ref.h")
rng = np.random.default_rng(SEED)
M64 = (1 << 64) - 1
M32 = (1 << 32) - 1


def draw(shape, lo, hi):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def np64(t):
    return t.detach().numpy()


h = Header("LAMINA_TESTS_STDLAYERS_REF_H", "ref_")

# ---- BatchNorm on NCHW (3, 2, 2, 3): defaults (momentum 0.9 -> PyTorch 0.1, eps 1e-5) ----
shift = np.array([0.5, -1.0], dtype=np.float32).reshape(1, 2, 1, 1)
spread = np.array([2.0, 0.5], dtype=np.float32).reshape(1, 2, 1, 1)
xs = [(draw((3, 2, 2, 3), -1, 1) * spread + shift).astype(np.float32) for _ in range(3)]
gamma = draw((2,), 0.5, 1.5)
beta = draw((2,), -0.5, 0.5)
hg = draw((3, 2, 2, 3), -1, 1)
bn = torch.nn.BatchNorm2d(2, eps=1e-5, momentum=0.1).double()
with torch.no_grad():
    bn.weight.copy_(t64(gamma))
    bn.bias.copy_(t64(beta))
bn.train()
for k, x in enumerate(xs):
    h.array("bn_x%d" % k, x)
    xt = t64(x, True)
    bn.zero_grad()
    y = bn(xt)
    (y * t64(hg)).sum().backward()
    h.array("bn_y%d" % k, np64(y))
    if k == 0:
        h.array("bn_dx0", np64(xt.grad))
        h.array("bn_dgamma0", np64(bn.weight.grad))
        h.array("bn_dbeta0", np64(bn.bias.grad))
    h.array("bn_rm%d" % k, np64(bn.running_mean))
    h.array("bn_rv%d" % k, np64(bn.running_var))
h.array("bn_gamma", gamma)
h.array("bn_beta", beta)
h.array("bn_hg", hg)
bn.eval()
xe = (draw((3, 2, 2, 3), -1, 1) * spread + shift).astype(np.float32)
xt = t64(xe, True)
bn.zero_grad()
y = bn(xt)
(y * t64(hg)).sum().backward()
h.array("bn_xe", xe)
h.array("bn_ye", np64(y))
h.array("bn_dxe", np64(xt.grad))
h.array("bn_dgammae", np64(bn.weight.grad))
h.array("bn_dbetae", np64(bn.bias.grad))

# ---- BatchNorm on (5, 4): momentum 0.8 (PyTorch 0.2), epsilon 1e-3, one training step ----
x2 = draw((5, 4), -2, 2)
g2 = draw((4,), 0.5, 1.5)
b2 = draw((4,), -0.5, 0.5)
hg2 = draw((5, 4), -1, 1)
bn1 = torch.nn.BatchNorm1d(4, eps=1e-3, momentum=0.2).double()
with torch.no_grad():
    bn1.weight.copy_(t64(g2))
    bn1.bias.copy_(t64(b2))
bn1.train()
xt = t64(x2, True)
y = bn1(xt)
(y * t64(hg2)).sum().backward()
for name, v in (("bn2_x", x2), ("bn2_gamma", g2), ("bn2_beta", b2), ("bn2_hg", hg2),
                ("bn2_y", np64(y)), ("bn2_dx", np64(xt.grad)), ("bn2_dgamma", np64(bn1.weight.grad)),
                ("bn2_dbeta", np64(bn1.bias.grad)), ("bn2_rm", np64(bn1.running_mean)),
                ("bn2_rv", np64(bn1.running_var))):
    h.array(name, v)

# ---- BatchNorm on NHWC (2, 3, 3, 4) with axis=-1: PyTorch's BatchNorm2d on the permuted input ----
x3 = draw((2, 3, 3, 4), -1, 3)
g3 = draw((4,), 0.5, 1.5)
b3 = draw((4,), -0.5, 0.5)
hg3 = draw((2, 3, 3, 4), -1, 1)
bn3 = torch.nn.BatchNorm2d(4, eps=1e-5, momentum=0.1).double()
with torch.no_grad():
    bn3.weight.copy_(t64(g3))
    bn3.bias.copy_(t64(b3))
bn3.train()
xt = t64(x3, True)
y = bn3(xt.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
(y * t64(hg3)).sum().backward()
for name, v in (("bn3_x", x3), ("bn3_gamma", g3), ("bn3_beta", b3), ("bn3_hg", hg3),
                ("bn3_y", np64(y)), ("bn3_dx", np64(xt.grad)), ("bn3_dgamma", np64(bn3.weight.grad)),
                ("bn3_dbeta", np64(bn3.bias.grad)), ("bn3_rm", np64(bn3.running_mean)),
                ("bn3_rv", np64(bn3.running_var))):
    h.array(name, v)

# ---- LayerNorm over the last axis of (2, 3, 4), and over axis 1 ----
lx = draw((2, 3, 4), -2, 2)
lg = draw((4,), 0.5, 1.5)
lb = draw((4,), -0.5, 0.5)
lhg = draw((2, 3, 4), -1, 1)
xt, gt, bt = t64(lx, True), t64(lg, True), t64(lb, True)
y = F.layer_norm(xt, (4,), gt, bt, 1e-5)
(y * t64(lhg)).sum().backward()
for name, v in (("ln_x", lx), ("ln_gamma", lg), ("ln_beta", lb), ("ln_hg", lhg), ("ln_y", np64(y)),
                ("ln_dx", np64(xt.grad)), ("ln_dgamma", np64(gt.grad)), ("ln_dbeta", np64(bt.grad))):
    h.array(name, v)
lg1 = draw((3,), 0.5, 1.5)
lb1 = draw((3,), -0.5, 0.5)
xt, gt, bt = t64(lx, True), t64(lg1, True), t64(lb1, True)
y = F.layer_norm(xt.permute(0, 2, 1), (3,), gt, bt, 1e-3).permute(0, 2, 1)
(y * t64(lhg)).sum().backward()
for name, v in (("ln1_gamma", lg1), ("ln1_beta", lb1), ("ln1_y", np64(y)), ("ln1_dx", np64(xt.grad)),
                ("ln1_dgamma", np64(gt.grad)), ("ln1_dbeta", np64(bt.grad))):
    h.array(name, v)

# ---- Embedding (7 -> 5), indices (2, 3) with repeats ----
ew = draw((7, 5), -1, 1)
eidx = np.array([[1, 6, 1], [0, 3, 6]], dtype=np.int64)
ehg = draw((2, 3, 5), -1, 1)
wt = t64(ew, True)
y = F.embedding(torch.tensor(eidx), wt)
(y * t64(ehg)).sum().backward()
h.array("emb_w", ew)
h.array("emb_idx", eidx.astype(np.float32), "the indices (as float; the test converts them)")
h.array("emb_hg", ehg)
h.array("emb_y", np64(y))
h.array("emb_dw", np64(wt.grad))


# ---- Dropout: the mask from the documented Philox stream ----
def mix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def stream_key(seed, key):
    hh = 0xCBF29CE484222325 ^ mix64(seed)
    for ch in key.encode():
        hh ^= ch
        hh = (hh * 0x100000001B3) & M64
    return mix64(hh ^ len(key.encode()))


def philox(ctr, key):
    c = list(ctr)
    k = list(key)
    for r in range(10):
        if r > 0:
            k[0] = (k[0] + 0x9E3779B9) & M32
            k[1] = (k[1] + 0xBB67AE85) & M32
        p0 = 0xD2511F53 * c[0]
        p1 = 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & M32, (p0 >> 32) ^ c[3] ^ k[1], p0 & M32]
    return c


def bernoulli(seed, key, offset, count, prob):
    out = np.zeros(count, dtype=np.float64)
    threshold = float(np.float32(prob))
    for i in range(count):
        n = (offset + i) // 4
        block = philox([n & M32, n >> 32, key & M32, key >> 32], [seed & M32, seed >> 32])
        u = block[(offset + i) % 4]
        out[i] = 1.0 if (u >> 8) * 2.0 ** -24 < threshold else 0.0
    return out


DSEED, DRATE = 42, 0.3
dx_ = draw((4, 5), -1, 1)
dhg = draw((4, 5), -1, 1)
dkey = stream_key(0, "dropout0")
h.array("drop_x", dx_)
h.array("drop_hg", dhg)
for k in range(2):
    mask = bernoulli(DSEED, dkey, k * dx_.size, dx_.size, 1.0 - DRATE).reshape(dx_.shape)
    xt = t64(dx_, True)
    y = xt * t64(mask) / (1.0 - DRATE)
    (y * t64(dhg)).sum().backward()
    h.array("drop_y%d" % k, np64(y))
    h.array("drop_dx%d" % k, np64(xt.grad))
h.define("REF_DROP_SEED", "%du" % DSEED)
h.define("REF_DROP_RATE", repr(DRATE))

h.write(OUT, [
    "stdlayers_ref.h - generated by gen_stdlayers_ref.py (PyTorch %s, NumPy %s, float64);" %
    (torch.__version__, np.__version__),
    "do not edit: rerun the script. Arrays are float32 (inputs exactly as drawn).",
])
