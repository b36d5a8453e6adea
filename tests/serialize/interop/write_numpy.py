#!/usr/bin/python3
"""Writes safetensors files with NumPy, json and struct only (no safetensors package).

usage: write_numpy.py OUT [--unsupported]

OUT gets one tensor of each dtype Lamina converts (F32, F16, BF16, F64, I32, I64, U8), a scalar
() tensor, an empty (0, 3) tensor and string metadata; the header is padded with spaces to a
multiple of 8 bytes, as the safetensors library does. With --unsupported, OUT holds a BOOL and an
I8 tensor instead (which Lamina must refuse by name).

tests/serialize/data/numpy_dtypes.safetensors and numpy_unsupported.safetensors were made with
this script; test_tensors.c checks the values below, worked by hand, without Python.
"""
import json
import struct
import sys

import numpy as np


def bf16_bits(values):
    """BF16 bit patterns of values that BF16 holds exactly (the top half of the float32)."""
    f = np.asarray(values, dtype=np.float32)
    bits = f.view(np.uint32)
    assert np.all(bits & 0xFFFF == 0), "not exactly representable in BF16"
    return (bits >> 16).astype("<u2")


def tensors():
    return [
        ("f32", "F32", np.array([[1.5, -2.25, 0.0], [-0.0, 3.0e38, 1e-45]], dtype="<f4")),
        ("f16", "F16", np.array([1.0, -0.5, 65504.0, 2.0**-24], dtype="<f2")),
        ("bf16", "BF16", bf16_bits([1.0, -2.5, 3.140625, -(2.0**100)]).reshape(2, 2)),
        ("f64", "F64", np.array([0.1, -1e300, 1.0 / 3.0], dtype="<f8")),
        ("i32", "I32", np.array([-7, 0, 2147483647], dtype="<i4")),
        ("i64", "I64", np.array([-(2**40), 16777217], dtype="<i8")),
        ("u8", "U8", np.array([[0, 1], [128, 255]], dtype="u1")),
        ("scalar", "F32", np.array(42.5, dtype="<f4")),
        ("empty", "F32", np.zeros((0, 3), dtype="<f4")),
    ]


def unsupported():
    return [
        ("mask", "BOOL", np.array([True, False, True], dtype="u1")),
        ("small", "I8", np.array([-1, 2], dtype="i1")),
    ]


def write(path, items, metadata):
    header = {"__metadata__": metadata}
    blobs, pos = [], 0
    for name, dtype, arr in items:
        raw = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    if "--unsupported" in sys.argv[2:]:
        write(sys.argv[1], unsupported(), {"creator": "write_numpy.py"})
    else:
        write(sys.argv[1], tensors(), {"creator": "write_numpy.py", "note": "caf\u00e9 \u2713"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
