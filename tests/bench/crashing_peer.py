#!/usr/bin/python3
"""A fake bench/run peer that dies of SIGILL, as PyTorch with OPENBLAS_CORETYPE=SkylakeX does on
a CPU without AVX-512 (issue 19). FAKE_PEER_CRASH=start: dies before answering anything;
otherwise it answers `info` and dies on the first measurement request."""
import json
import os
import signal
import sys

if os.environ.get("FAKE_PEER_CRASH") == "start":
    os.kill(os.getpid(), signal.SIGILL)
for line in sys.stdin:
    words = line.split()
    if not words or words[0] == "quit":
        break
    if words[0] == "info":
        print(json.dumps({"ok": True, "case": "info", "iters": 1, "metrics": {},
                          "kernel": os.environ.get("OPENBLAS_CORETYPE", "default")}), flush=True)
        continue
    os.kill(os.getpid(), signal.SIGILL)
