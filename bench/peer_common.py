"""What peer_torch.py and peer_numpy.py share: the timing harness, the request protocol of
lamina_bench (one sample per request, one JSON line per answer) and the OpenBLAS probe."""
import ctypes
import json
import os
import sys
import time


def openblas_info():
    """Kernel, version and thread count of the OpenBLAS this process loaded (libblas.so.3 is
    Debian's OpenBLAS through the alternatives system)."""
    paths = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if "blas" in os.path.basename(p) and ".so" in p:
                paths.add(p)
    for p in sorted(paths):
        try:
            lib = ctypes.CDLL(p, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return {
                "kernel": lib.openblas_get_corename().decode(),
                "config": lib.openblas_get_config().decode(),
                "blas_threads": lib.openblas_get_num_threads(),
                "blas_lib": p,
            }
        except (OSError, AttributeError):
            continue
    return {"kernel": "unknown (no OpenBLAS loaded yet)"}


def measure(fn, min_time, fixed_iters):
    """One sample, like lamina_bench's: warm up while calibrating (iterations doubled until a
    run lasts min_time), then one timed run; fixed_iters > 0: one warm-up call, then exactly
    that many. Returns (seconds per iteration, iterations). perf_counter is monotonic."""
    if fixed_iters > 0:
        fn(1)
        iters = fixed_iters
    else:
        iters = 1
        while True:
            t0 = time.perf_counter()
            fn(iters)
            dt = time.perf_counter() - t0
            if dt >= min_time:
                iters = max(1, int(iters * min_time * 1.2 / dt + 0.999))
                break
            iters *= 8 if dt < min_time / 16 else 2
    t0 = time.perf_counter()
    fn(iters)
    return (time.perf_counter() - t0) / iters, iters


def _parse(words):
    args = {}
    for w in words:
        if "=" in w:
            k, v = w.split("=", 1)
            for conv in (int, float, str):
                try:
                    args[k] = conv(v)
                    break
                except ValueError:
                    continue
    return args


def _run_request(cases, words):
    name, args = words[0], _parse(words[1:])
    out = {"ok": True, "case": name, "iters": 0, "metrics": {}}
    try:
        if name not in cases:
            raise KeyError("unknown case '%s'" % name)
        metrics, iters, info = cases[name](args, float(args.get("min_time", 0.05)),
                                           int(args.get("iters", 0)))
        out.update(info)
        out["metrics"], out["iters"] = metrics, iters
    except Exception as e:  # report, do not die: the runner decides what a failure means
        out["ok"], out["error"] = False, "%s: %s" % (type(e).__name__, e)
    print(json.dumps(out), flush=True)
    return out["ok"]


def serve_main(argv, cases, doc):
    """`<case> key=value ...`: one sample; `serve`: answer request lines from stdin."""
    if len(argv) < 2:
        print(doc, file=sys.stderr)
        return 2
    if argv[1] == "serve":
        ok = True
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                break
            ok = _run_request(cases, words) and ok
        return 0 if ok else 1
    return 0 if _run_request(cases, argv[1:]) else 1
