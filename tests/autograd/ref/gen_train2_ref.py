#!/usr/bin/python3
"""Writes tests/autograd/ref/train2_ref.h: PyTorch references for the optimizers, schedules,
clipping and integer-label cross-entropy of tests/autograd/test_trainer2.c.

Run from anywhere (the output path is relative to this file):

    /usr/bin/python3 tests/autograd/ref/gen_train2_ref.py

Needs NumPy and PyTorch (Debian: apt-get install -y python3-numpy python3-torch).

Training runs: an MLP nn.Linear(6, 16) -> tanh -> nn.Linear(16, 4) (tanh: no kink, so float32
rounding cannot flip a branch) from fixed float32 weights, STEPS steps on one batch of 8 with
F.cross_entropy(reduction='mean'), in float64, under:

    adamw        AdamW(lr=0.01, weight_decay=0.1)
    rmsprop      RMSprop(lr=0.01)
    rmsprop_cm   RMSprop(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.5,
                         centered=True)
    adam_clip    Adam(lr=0.01) with clip_grad_norm_(params, 0.05) before each step; the
                 pre-clip norms of every step are recorded
    adamw_sched  AdamW(lr=0.02, weight_decay=0.05) with SequentialLR([LinearLR(0.25,
                 total_iters=2), CosineAnnealingLR(T_max=3, eta_min=0.001)], milestones=[2]),
                 scheduler.step() after each optimizer.step()

Schedules alone (the learning rate each of 12 steps uses, base 0.1, in float64):
    step      StepLR(step_size=3, gamma=0.5)
    cosine    CosineAnnealingLR(T_max=8, eta_min=0.001) (beyond T_max it rises again)
    warm_step SequentialLR([LinearLR(0.2, total_iters=4), StepLR(3, 0.5)], milestones=[4])
    warm_cos  SequentialLR([LinearLR(0.2, total_iters=4), CosineAnnealingLR(6)], [4])

Clipping alone: the gradients of the summed loss at the starting weights,
clip_grad_norm_(params, 0.5): the norm and the clipped gradients.

Cross-entropy with integer labels: logits (5, 7) float32, labels int64 in [0, 7):
F.cross_entropy(reduction='none') per sample, and the gradient of sum(weights * loss) with
respect to the logits for fixed weights; the same with class probabilities (5, 7) as targets.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from refheader import Header  # noqa: E402

SEED = 20261204
STEPS = 6
BATCH = 8
SCHED_STEPS = 12
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train2_ref.h")

rng = np.random.default_rng(SEED)


def draw(shape, lo, hi):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


init = {
    "w1": draw((16, 6), -0.5, 0.5),
    "b1": draw((16,), -0.2, 0.2),
    "w2": draw((4, 16), -0.5, 0.5),
    "b2": draw((4,), -0.2, 0.2),
}
x = draw((BATCH, 6), -1.0, 1.0)
y = rng.integers(0, 4, size=BATCH)


def model():
    l1 = torch.nn.Linear(6, 16).double()
    l2 = torch.nn.Linear(16, 4).double()
    with torch.no_grad():
        for p, k in ((l1.weight, "w1"), (l1.bias, "b1"), (l2.weight, "w2"), (l2.bias, "b2")):
            p.copy_(torch.tensor(init[k].astype(np.float64)))
    return l1, l2, [l1.weight, l1.bias, l2.weight, l2.bias]


def forward(l1, l2):
    return l2(torch.tanh(l1(torch.tensor(x.astype(np.float64)))))


def warm(opt, factor, iters, main, milestone):
    return torch.optim.lr_scheduler.SequentialLR(
        opt, [torch.optim.lr_scheduler.LinearLR(opt, start_factor=factor, total_iters=iters), main],
        milestones=[milestone])


RUNS = {
    "adamw": (lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1), None, None),
    "rmsprop": (lambda ps: torch.optim.RMSprop(ps, lr=0.01), None, None),
    "rmsprop_cm": (lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6,
                                                  weight_decay=0.01, momentum=0.5,
                                                  centered=True), None, None),
    "adam_clip": (lambda ps: torch.optim.Adam(ps, lr=0.01), 0.05, None),
    "adamw_sched": (lambda ps: torch.optim.AdamW(ps, lr=0.02, weight_decay=0.05), None,
                    lambda o: warm(o, 0.25, 2, torch.optim.lr_scheduler.CosineAnnealingLR(
                        o, T_max=3, eta_min=0.001), 2)),
}


def train(name):
    make, clip, sched = RUNS[name]
    l1, l2, params = model()
    opt = make(params)
    s = sched(opt) if sched else None
    losses, norms, lrs = [], [], []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = F.cross_entropy(forward(l1, l2), torch.tensor(y), reduction="mean")
        loss.backward()
        if clip is not None:
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, clip)))
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if s is not None:
            s.step()
        losses.append(float(loss))
    final = [p.detach().numpy() for p in params]
    return np.array(losses), final, np.array(norms), lrs


def schedule_lrs(make):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    s = make(opt)
    out = []
    for _ in range(SCHED_STEPS):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return out


SCHEDULES = {
    "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=0.001),
    "warm_step": lambda o: warm(o, 0.2, 4, torch.optim.lr_scheduler.StepLR(o, 3, 0.5), 4),
    "warm_cos": lambda o: warm(o, 0.2, 4, torch.optim.lr_scheduler.CosineAnnealingLR(o, 6), 4),
}

h = Header("LAMINA_TESTS_AUTOGRAD_TRAIN2_REF_H", "t2_")
h.define("T2_STEPS", str(STEPS), "training steps per run")
h.define("T2_BATCH", str(BATCH), "batch size")
h.define("T2_SCHED_STEPS", str(SCHED_STEPS), "steps of each schedule")
h.array("x", x, "the batch (8, 6)")
h.array("y", y.astype(np.float32), "labels (8,), class indices")
for k in ("w1", "b1", "w2", "b2"):
    h.array(k, init[k], "starting %s" % k)
for name in RUNS:
    losses, final, norms, lrs = train(name)
    h.array(name + "_loss", losses, "%s: mean loss of each step (before its update)" % name)
    for k, v in zip(("w1", "b1", "w2", "b2"), final):
        h.array("%s_%s" % (name, k), v, "%s: %s after %d steps" % (name, k, STEPS))
    if len(norms):
        h.array(name + "_norm", norms, "%s: global gradient norm of each step before clipping"
                % name)
    if name == "adamw_sched":
        h.array(name + "_lr", lrs, "%s: learning rate of each step" % name)
for name, make in SCHEDULES.items():
    # float32 in the header: the test compares the float64 rates within 1e-7 relative
    h.array("sched_" + name, schedule_lrs(make), "%s: learning rate of steps 0..%d, base 0.1"
            % (name, SCHED_STEPS - 1))

# clipping alone
l1, l2, params = model()
F.cross_entropy(forward(l1, l2), torch.tensor(y), reduction="sum").backward()
norm = float(torch.nn.utils.clip_grad_norm_(params, 0.5))
h.array("clip_norm", [norm], "clip_grad_norm_(max_norm=0.5) of the summed loss's gradients")
for k, p in zip(("w1", "b1", "w2", "b2"), params):
    h.array("clip_g" + k, p.grad.numpy(), "clipped gradient of %s" % k)

# cross-entropy with integer labels
logits = draw((5, 7), -3.0, 3.0)
labels = rng.integers(0, 7, size=5)
weights = draw((5,), 0.5, 2.0)
lt = torch.tensor(logits.astype(np.float64), requires_grad=True)
ce = F.cross_entropy(lt, torch.tensor(labels), reduction="none")
(ce * torch.tensor(weights.astype(np.float64))).sum().backward()
h.array("ce_logits", logits, "logits (5, 7)")
h.array("ce_labels", labels.astype(np.float32), "labels (5,), written as int32/int64 by the test")
h.array("ce_weights", weights, "head gradient (5,)")
h.array("ce_loss", ce.detach().numpy(), "cross_entropy(reduction='none')")
h.array("ce_grad", lt.grad.numpy(), "d sum(weights * loss) / d logits")

# cross-entropy with class probabilities (float targets of the logits' shape)
probs = rng.uniform(0.0, 1.0, size=(5, 7))
probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
lt = torch.tensor(logits.astype(np.float64), requires_grad=True)
ce = F.cross_entropy(lt, torch.tensor(probs.astype(np.float64)), reduction="none")
(ce * torch.tensor(weights.astype(np.float64))).sum().backward()
h.array("ce_probs", probs, "class probabilities (5, 7), rows summing to 1")
h.array("ce_soft_loss", ce.detach().numpy(), "cross_entropy with probabilities, per sample")
h.array("ce_soft_grad", lt.grad.numpy(), "d sum(weights * loss) / d logits")

h.write(OUT, [
    "train2_ref.h - PyTorch references for test_trainer2.c (tests/autograd).",
    "",
    "GENERATED FILE, do not edit. Regenerate from the repository root with:",
    "    /usr/bin/python3 tests/autograd/ref/gen_train2_ref.py",
    "",
    "PyTorch %s, NumPy %s, seed %d; the runs are described in the script." %
    (torch.__version__, np.__version__, SEED),
])
print("wrote %s" % OUT)
