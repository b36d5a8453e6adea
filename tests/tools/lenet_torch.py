#!/usr/bin/python3
"""PyTorch's side of the LeNet key map (README, "Loading a Lamina CNN into PyTorch").

A PyTorch LeNet (conv1, bn1, conv2, bn2, fc: the modules of `lamina train --model cnn`) loads
Lamina's safetensors file through KEY_MAP with load_state_dict(strict=True).

  lenet_torch.py generate LAMINA
      Writes the fixtures the C test (test_cnn, lenet_logits_match_pytorch) reads:
      tests/tools/data/lenet_digits.safetensors  parameters saved by
          `LAMINA train --model cnn --epochs 2 --seed 0 --backend cpu --save ...`
      tests/tools/data/lenet_digits_io.safetensors  "input": the first 16 test digits of the
          fixed split (16, 1, 8, 8); "logits": what PyTorch's LeNet computes for them in eval
          mode after loading the parameters with KEY_MAP (16, 10).
  lenet_torch.py check LAMINA
      Checks the file that LAMINA writes today: trains for one epoch with --save, loads the
      file into PyTorch (strict: no key missing or left over, every shape as PyTorch's), and
      requires PyTorch's test accuracy on the 360 test digits to equal the one LAMINA printed
      for its reloaded model. Exits 77 (skipped) without torch.

Only the Python standard library, NumPy and torch are used (no safetensors package): the
format is an 8-byte little-endian header length, a JSON header and the raw data.
"""
import gzip
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:
    print("lenet_torch.py: torch is not installed (Debian: python3-torch); skipped")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
DIGITS = os.environ.get("LAMINA_DIGITS") or \
    "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"

# Lamina's key (the Sequential's structural key) -> PyTorch's state_dict key.
KEY_MAP = {
    "0.weight": "conv1.weight",          # Conv2D (O, C, KH, KW), as nn.Conv2d
    "0.bias": "conv1.bias",
    "1.gamma": "bn1.weight",             # BatchNorm's gamma/beta are nn.BatchNorm2d's weight/bias
    "1.beta": "bn1.bias",
    "1.running_mean": "bn1.running_mean",
    "1.running_var": "bn1.running_var",
    "4.weight": "conv2.weight",
    "4.bias": "conv2.bias",
    "5.gamma": "bn2.weight",
    "5.beta": "bn2.bias",
    "5.running_mean": "bn2.running_mean",
    "5.running_var": "bn2.running_var",
    "10.weight": "fc.weight",            # Dense (units, in_units), as nn.Linear: no transpose
    "10.bias": "fc.bias",
}


class LeNet(nn.Module):
    def __init__(self, channels=1, height=8, width=8, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16, eps=1e-5)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32, eps=1e-5)
        self.pool = nn.MaxPool2d(2, 2)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(32 * (height // 4) * (width // 4), classes)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        return self.fc(self.drop(torch.flatten(x, 1)))  # NCHW order, as Lamina's Flatten


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + a:8 + n + b], dtype="<f4").reshape(e["shape"])
    return out


def write_safetensors(path, tensors):
    header, data = {}, b""
    for name, t in tensors.items():
        raw = np.ascontiguousarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def load_lenet(path):
    """The Lamina file's tensors into a fresh LeNet, strictly; raises on any mismatch."""
    tensors = read_safetensors(path)
    if set(tensors) != set(KEY_MAP):
        raise SystemExit("%s: keys %s, the key map expects %s"
                         % (path, sorted(tensors), sorted(KEY_MAP)))
    fc_in = tensors["10.weight"].shape[1]
    side = int(round((fc_in / 32) ** 0.5)) * 4
    net = LeNet(tensors["0.weight"].shape[1], side, side, tensors["10.weight"].shape[0])
    state = {KEY_MAP[k]: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    # PyTorch counts BatchNorm's batches (used only with momentum=None); Lamina has no such key.
    state["bn1.num_batches_tracked"] = torch.tensor(0)
    state["bn2.num_batches_tracked"] = torch.tensor(0)
    net.load_state_dict(state, strict=True)
    return net.eval()


def splitmix64(state):
    m = (1 << 64) - 1
    state = (state + 0x9E3779B97F4A7C15) & m
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return state, z ^ (z >> 31)


def digits_test_set():
    """The 360 test digits of tools/data.c's fixed split (x scaled to [0, 1], labels)."""
    rows = [[int(float(v)) for v in line.split(",")]
            for line in gzip.open(DIGITS, "rt") if line.strip()]
    order = list(range(len(rows)))
    s = 20150
    for i in range(len(rows) - 1, 0, -1):
        s, r = splitmix64(s)
        j = r % (i + 1)
        order[i], order[j] = order[j], order[i]
    test = np.array([rows[k] for k in order[1437:]], dtype=np.float32)
    return (test[:, :64] / 16.0).reshape(-1, 1, 8, 8), test[:, 64].astype(np.int64)


def generate(lamina):
    params = os.path.join(DATA, "lenet_digits.safetensors")
    subprocess.run([lamina, "train", "--model", "cnn", "--epochs", "2", "--seed", "0",
                    "--backend", "cpu", "--save", params], check=True)
    net = load_lenet(params)
    x, _ = digits_test_set()
    x = x[:16]
    with torch.no_grad():
        logits = net(torch.from_numpy(x.copy())).numpy()
    write_safetensors(os.path.join(DATA, "lenet_digits_io.safetensors"),
                      {"input": x, "logits": logits})
    print("wrote", params, "and lenet_digits_io.safetensors; logits[0] =", logits[0])


def check(lamina):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "cnn.safetensors")
        out = subprocess.run([lamina, "train", "--model", "cnn", "--epochs", "1", "--seed", "3",
                              "--backend", "cpu", "--save", path],
                             check=True, capture_output=True, text=True).stdout
        m = re.search(r"reloaded into a fresh model: test accuracy ([0-9.]+)%", out)
        if not m:
            raise SystemExit("no accuracy in lamina's output:\n" + out)
        net = load_lenet(path)
    x, y = digits_test_set()
    with torch.no_grad():
        pred = net(torch.from_numpy(x.copy())).argmax(1).numpy()
    acc = 100.0 * float((pred == y).mean())
    print("lamina: %s%%, PyTorch with the key map: %.2f%%" % (m.group(1), acc))
    if "%.2f" % acc != m.group(1):
        raise SystemExit("PyTorch's accuracy %.2f%% differs from Lamina's %s%%"
                         % (acc, m.group(1)))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("generate", "check"):
        raise SystemExit("usage: lenet_torch.py generate|check LAMINA")
    if sys.argv[1] == "check" and not os.path.exists(DIGITS):
        print("lenet_torch.py: %s missing (python3-sklearn); skipped" % DIGITS)
        sys.exit(77)
    (generate if sys.argv[1] == "generate" else check)(sys.argv[2])
