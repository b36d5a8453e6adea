#!/usr/bin/python3
"""bench/scaling_model.py - the data-parallel step-time model of bench/SCALING.md.

usage: bench/scaling_model.py [bench/dist_results.json] [--cnn-step-s S --cnn-bytes B]

Reads the figures bench/run_dist measured on this machine (the compute phases of the MLP
steps on one rank x one thread, and the alpha-beta fit of raw MPI_Allreduce over shared
memory) and prints, as Markdown, the modelled step time and scaling efficiency for 2 to 1,024
nodes (one rank per node, the per-rank batch fixed: weak scaling) on the measured shared
memory and on three typical links. Everything printed for more than 2 ranks, and for any link
but shared memory, is extrapolated by the model; nothing there was measured.

Model (one rank per node, p ranks, gradient bytes n in buckets n_1..n_k):
  ring allreduce of m bytes   T_ar(m) = 2 (p-1) alpha + 2 (p-1)/p * m * beta
  no overlap                  T = T_fwd + T_bwd + sum_i T_ar(n_i) + T_upd
  bucketed, overlapped        bucket i is ready when backward has produced its gradients,
                              taken proportional to bytes (dense layers: the weight gradient
                              costs batch x its size): r_i = T_bwd * (n_1 + .. + n_i) / n;
                              reductions run one at a time in bucket order:
                              s_i = max(r_i, e_{i-1}), e_i = s_i + T_ar(n_i);
                              T = T_fwd + max(T_bwd, e_k) + T_upd
  efficiency = (T_fwd + T_bwd + T_upd) / T   (1 = perfect weak scaling)
  for comparison, recursive doubling (what MPI libraries pick for small messages):
                              T_rd(m) = ceil(log2 p) * (alpha + m * beta)
"""
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20
# Typical links (assumed, not measured here): per-message latency alpha of an MPI allreduce
# step and the link's line rate as beta = 1 / bandwidth.
LINKS = [
    ("25 Gb/s Ethernet (TCP)", 15e-6, 8 / 25e9),
    ("100 Gb/s InfiniBand EDR", 1.5e-6, 8 / 100e9),
    ("400 Gb/s InfiniBand NDR", 1.0e-6, 8 / 400e9),
]
NODES = [2, 4, 8, 16, 64, 256, 1024]


def t_ar(m, p, alpha, beta):
    return 0.0 if p == 1 else 2 * (p - 1) * alpha + 2 * (p - 1) / p * m * beta


def t_rd(m, p, alpha, beta):
    return 0.0 if p == 1 else math.ceil(math.log2(p)) * (alpha + m * beta)


def buckets(n, cap):
    k = max(1, math.ceil(n / cap))
    return [cap] * (k - 1) + [n - cap * (k - 1)]


def step(model, p, alpha, beta, cap, overlap):
    f, b, u, n = model["fwd"], model["bwd"], model["upd"], model["bytes"]
    bs = buckets(n, cap)
    if not overlap:
        return f + b + sum(t_ar(m, p, alpha, beta) for m in bs) + u
    e, done = 0.0, 0
    for m in bs:
        done += m
        e = max(b * done / n, e) + t_ar(m, p, alpha, beta)
    return f + max(b, e) + u


def table(model, alpha, beta, out):
    comp = model["fwd"] + model["bwd"] + model["upd"]
    out.append("| nodes | ring allreduce of all gradients | (recursive doubling) | step, no "
               "overlap | eff. | step, 25 MiB buckets overlapped | eff. | step, 1 MiB buckets "
               "overlapped | eff. |")
    out.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in NODES:
        ar = sum(t_ar(m, p, alpha, beta) for m in buckets(model["bytes"], 25 * MIB))
        rd = t_rd(model["bytes"], p, alpha, beta)
        row = [str(p), ms(ar), ms(rd)]
        for cap, ov in ((25 * MIB, False), (25 * MIB, True), (MIB, True)):
            t = step(model, p, alpha, beta, cap, ov)
            row += [ms(t), "%.0f%%" % (100 * comp / t)]
        out.append("| " + " | ".join(row) + " |")


def ms(t):
    return "%.3g ms" % (1e3 * t)


def main(argv):
    path = os.path.join(HERE, "dist_results.json")
    cnn_s, cnn_bytes = None, None
    args = argv[1:]
    while args:
        a = args.pop(0)
        if a == "--cnn-step-s":
            cnn_s = float(args.pop(0))
        elif a == "--cnn-bytes":
            cnn_bytes = int(args.pop(0))
        else:
            path = a
    r = json.load(open(path))
    big = r["step"]["step 1 rank"]
    small = r["small_mlp_step"]
    models = [
        ("MLP 784-1024-1024-10, batch 256 per rank (7.45 MB of gradients)",
         {"fwd": big["forward_s"], "bwd": big["backward_s"], "upd": big["trainer_step_s"],
          "bytes": 7454760}),
        ("MLP 20-256-10 (`lamina train`'s default), batch 64 per rank (31.8 kB)",
         {"fwd": small["forward_s"], "bwd": small["backward_s"], "upd": small["trainer_step_s"],
          "bytes": (20 * 256 + 256 + 256 * 10 + 10) * 4}),
    ]
    if cnn_s and cnn_bytes:
        # Only the whole step was measured: split as the big MLP's phases split.
        tot = big["forward_s"] + big["backward_s"] + big["trainer_step_s"]
        models.append(("CNN of `lamina train --model cnn` (digits), batch 64 per rank "
                       "(%.1f kB)" % (cnn_bytes / 1e3),
                       {"fwd": cnn_s * big["forward_s"] / tot,
                        "bwd": cnn_s * big["backward_s"] / tot,
                        "upd": cnn_s * big["trainer_step_s"] / tot, "bytes": cnn_bytes}))
    alpha, beta = r["alpha_s"], r["beta_s_per_byte"]
    out = []
    links = [("shared memory, this machine (alpha %.2f us, beta %.3f ns/B = %.2f GB/s: "
              "measured on 2 ranks)" % (1e6 * alpha, 1e9 * beta, 1e-9 / beta), alpha, beta)]
    links += [("%s (alpha %.1f us, %.2f GB/s: assumed)" % (n, 1e6 * a, 1e-9 / b), a, b)
              for n, a, b in LINKS]
    for name, m in models:
        out.append("### %s" % name)
        out.append("")
        out.append("Compute on one rank (measured, one thread): forward %s, backward %s, "
                   "update %s." % (ms(m["fwd"]), ms(m["bwd"]), ms(m["upd"])))
        out.append("")
        for lname, a, b in links:
            out.append("**%s**" % lname)
            out.append("")
            table(m, a, b, out)
            out.append("")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
