#!/usr/bin/python3
"""PyTorch's side of the benchmarks in bench/ (driven by bench/run).

Speaks the protocol of lamina_bench: one sample per request, one JSON line per answer.

    peer_torch.py <case> [key=value ...]   one sample, then exit
    peer_torch.py serve                    "<case> key=value ..." lines on stdin, one answer each

The thread count comes from the environment bench/run sets (OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS) and is applied with torch.set_num_threads too; the OpenBLAS kernel from
OPENBLAS_CORETYPE as OpenBLAS reads it at load. Nothing here tunes anything else.
"""
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_common import measure, openblas_info, serve_main  # noqa: E402

THREADS = int(os.environ.get("BENCH_THREADS", "0") or 0)
if THREADS > 0:
    torch.set_num_threads(THREADS)


def mlp(i, h, o):
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o))


def shared_mlp(i, h, o):
    shared = nn.Linear(h, h)
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(),
                         nn.Linear(h, o))


def case_mlp_forward(a, min_time, fixed):
    net = mlp(a.get("in", 20), a.get("hidden", 256), a.get("out", 10))
    x = torch.rand(a.get("batch", 2), a.get("in", 20))

    def run(n):
        with torch.no_grad():
            for _ in range(n):
                net(x)

    sec, iters = measure(run, min_time, fixed)
    return {"forward": sec}, iters, {"mode": "torch.no_grad"}


def step_case(net, batch, inp, out, min_time, fixed):
    x = torch.rand(batch, inp)
    y = torch.arange(batch) * 7 % out
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def run(n):
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()

    sec, iters = measure(run, min_time, fixed)
    return {"step": sec}, iters, {}


def case_shared_step(a, min_time, fixed):
    i, h, o = a.get("in", 20), a.get("hidden", 8), a.get("out", 10)
    return step_case(shared_mlp(i, h, o), a.get("batch", 2), i, o, min_time, fixed)


def case_mlp_step(a, min_time, fixed):
    i, h, o = a.get("in", 784), a.get("hidden", 256), a.get("out", 10)
    return step_case(mlp(i, h, o), a.get("batch", 256), i, o, min_time, fixed)


def case_step_gemms(a, min_time, fixed):
    """The five products of mlp_step with torch.mm (transposes as views: no copies)."""
    b, i, h, o = a.get("batch", 256), a.get("in", 784), a.get("hidden", 256), a.get("out", 10)
    x, w1, z = torch.rand(b, i), torch.rand(h, i), torch.rand(b, h)
    w2, y = torch.rand(o, h), torch.rand(b, o)
    out_z, out_y = torch.empty(b, h), torch.empty(b, o)
    dw2, da, dw1 = torch.empty(o, h), torch.empty(b, h), torch.empty(h, i)

    def run(n):
        for _ in range(n):
            torch.mm(x, w1.t(), out=out_z)
            torch.mm(z, w2.t(), out=out_y)
            torch.mm(y.t(), z, out=dw2)
            torch.mm(y, w2, out=da)
            torch.mm(da.t(), x, out=dw1)

    sec, iters = measure(run, min_time, fixed)
    return {"gemms": sec}, iters, {}


def case_layer2(a, min_time, fixed):
    """Forward + backward of the layer issue 14's test plugins implement, at its sizes; the
    input requires a gradient (the embedding's indices do not), loss = sum of the output."""
    kind, small = a.get("kind", "layernorm"), int(a.get("small", 0))
    shape = (8, 16) if small else (256, 512)
    if kind == "layernorm":
        net = nn.LayerNorm(shape[-1])
    elif kind == "conv":
        shape = (2, 4, 8, 8) if small else (32, 16, 28, 28)
        net = nn.Conv2d(shape[1], 4 if small else 32, 3, padding=1)
    elif kind == "maxpool":
        shape = (2, 4, 8, 8) if small else (32, 32, 28, 28)
        net = nn.MaxPool2d(2, 2)
    elif kind == "embedding":
        v, d, m = (100, 8, 16) if small else (10000, 128, 1024)
        net = nn.Embedding(v, d)
        x = (torch.arange(m) * 7919 % v).to(torch.int32)
    elif kind == "dropout":
        net = nn.Dropout(0.5)
    elif kind == "gelu":
        net = nn.GELU(approximate="tanh")
    else:
        raise ValueError("layer2: unknown kind " + kind)
    net.train()
    if kind != "embedding":
        x = torch.sin(0.37 * torch.arange(int(torch.tensor(shape).prod()),
                                          dtype=torch.float32)).reshape(shape)
        x.requires_grad_(True)

    def run(n):
        for _ in range(n):
            net(x).sum().backward()

    sec, iters = measure(run, min_time, fixed)
    return {"fwdbwd": sec}, iters, {}


def case_ew_bandwidth(a, min_time, fixed):
    """y = 1.5 * x over mb MB (a new tensor each call, as Lamina's op)."""
    x = torch.rand(a.get("mb", 64) * (1 << 20) // 4)

    def run(n):
        for _ in range(n):
            torch.mul(x, 1.5)

    sec, iters = measure(run, min_time, fixed)
    return {"ew": sec}, iters, {}


CONV_SHAPES = {  # (n, c, h, o, k, pad), small versions second
    "big": ((8, 64, 56, 64, 3, 1), (2, 8, 10, 8, 3, 1)),
    "lenet1": ((64, 1, 28, 6, 5, 2), (4, 1, 12, 6, 5, 2)),
    "lenet2": ((64, 6, 14, 16, 5, 0), (4, 6, 8, 16, 5, 0)),
}


def case_conv(a, min_time, fixed):
    n, c, h, o, k, pad = CONV_SHAPES[a.get("kind", "big")][int(a.get("small", 0))]
    x = torch.rand(n, c, h, h) * 2 - 1
    x.requires_grad_(True)
    net = nn.Conv2d(c, o, k, padding=pad)

    def fwd(m):
        with torch.no_grad():
            for _ in range(m):
                net(x)

    def fwdbwd(m):
        for _ in range(m):
            net(x).sum().backward()

    s_fwd, _ = measure(fwd, min_time, fixed)
    s_all, iters = measure(fwdbwd, min_time, fixed)
    return {"fwd": s_fwd, "fwdbwd": s_all}, iters, {"mkldnn": torch.backends.mkldnn.is_available()}


def case_batchnorm(a, min_time, fixed):
    small = int(a.get("small", 0))
    shape = (4, 4, 6, 6) if small else (32, 16, 28, 28)
    x = torch.rand(*shape) * 2 - 1
    x.requires_grad_(True)
    net = nn.BatchNorm2d(shape[1])
    net.train()

    def run(m):
        for _ in range(m):
            net(x).sum().backward()

    sec, iters = measure(run, min_time, fixed)
    return {"fwdbwd": sec}, iters, {}


def case_lenet_step(a, min_time, fixed):
    batch = a.get("batch", 64)
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                        nn.Linear(84, 10))
    x = torch.rand(batch, 1, 28, 28) * 2 - 1
    y = torch.arange(batch) * 7 % 10
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def run(n):
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            opt.step()

    sec, iters = measure(run, min_time, fixed)
    return {"step": sec}, iters, {}


def case_gemm(a, min_time, fixed):
    n = a.get("n", 256)
    x, y, c = torch.rand(n, n), torch.rand(n, n), torch.empty(n, n)

    def run(k):
        for _ in range(k):
            torch.mm(x, y, out=c)

    sec, iters = measure(run, min_time, fixed)
    return {"torch": sec}, iters, {}


def case_saveload(a, min_time, fixed):
    layers, units = a.get("layers", 4), a.get("units", 2500)
    net = nn.Sequential(*[nn.Linear(units, units, bias=False) for _ in range(layers)])
    path = os.path.join(a.get("dir", "/tmp"), "torch_bench_params.pt")
    sd = net.state_dict()

    def save(n):
        for _ in range(n):  # fsync'd, as Lamina's save is
            with open(path, "wb") as f:
                torch.save(sd, f)
                f.flush()
                os.fsync(f.fileno())

    def load(n):
        for _ in range(n):
            torch.load(path)

    try:
        s_save, iters = measure(save, min_time, fixed)
        s_load, load_iters = measure(load, min_time, fixed)
    finally:
        if os.path.exists(path):
            os.remove(path)
    return ({"save": s_save, "load": s_load}, iters,
            {"bytes": layers * units * units * 4, "load_iters": load_iters})


def case_info(a, min_time, fixed):
    info = openblas_info()
    info.update({"torch": torch.__version__, "torch_threads": torch.get_num_threads()})
    return {}, 1, info


CASES = {name[5:]: fn for name, fn in list(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(serve_main(sys.argv, CASES, __doc__))
