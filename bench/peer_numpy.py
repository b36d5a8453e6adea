#!/usr/bin/python3
"""NumPy's side of the benchmarks in bench/ (driven by bench/run): np.save / np.load of the
same 100 MB of parameters, and np.matmul for the GEMM table. Same protocol as peer_torch.py:

    peer_numpy.py <case> [key=value ...]   one sample, then exit
    peer_numpy.py serve                    "<case> key=value ..." lines on stdin
"""
import os
import sys

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_common import measure, openblas_info, serve_main  # noqa: E402


def case_saveload(a, min_time, fixed):
    """One .npy file per weight (what np.save writes), each followed by os.fsync: the same
    durability as Lamina's save, which fsyncs before it renames; load reads them fully (no
    mmap)."""
    layers, units = a.get("layers", 4), a.get("units", 2500)
    rng = np.random.default_rng(0)
    ws = [rng.random((units, units), dtype=np.float32) for _ in range(layers)]
    paths = [os.path.join(a.get("dir", "/tmp"), "numpy_bench_w%d.npy" % i) for i in range(layers)]

    def save(n):
        for _ in range(n):
            for p, w in zip(paths, ws):
                with open(p, "wb") as f:
                    np.save(f, w)
                    f.flush()
                    os.fsync(f.fileno())

    def load(n):
        for _ in range(n):
            for p in paths:
                np.load(p)

    try:
        s_save, iters = measure(save, min_time, fixed)
        s_load, load_iters = measure(load, min_time, fixed)
    finally:
        for p in paths:
            if os.path.exists(p):
                os.remove(p)
    return ({"save": s_save, "load": s_load}, iters,
            {"bytes": layers * units * units * 4, "load_iters": load_iters})


def case_gemm(a, min_time, fixed):
    n = a.get("n", 256)
    rng = np.random.default_rng(0)
    x, y = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)

    def run(k):
        for _ in range(k):
            np.matmul(x, y, out=c)

    sec, iters = measure(run, min_time, fixed)
    return {"numpy": sec}, iters, {}


def case_info(a, min_time, fixed):
    info = openblas_info()
    info["numpy"] = np.__version__
    return {}, 1, info


if __name__ == "__main__":
    sys.exit(serve_main(sys.argv, {"saveload": case_saveload, "gemm": case_gemm,
                                   "info": case_info}, __doc__))
