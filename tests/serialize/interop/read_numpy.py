#!/usr/bin/python3
"""Reads a safetensors file written by Lamina with NumPy, json and struct only, and checks it.

usage: read_numpy.py FILE [--expect list|dict|params]

Checks the format rules a strict reader applies (header length, JSON object, dtype F32,
contiguous data from 0 to the end, header padded to 8 bytes) and the lamina.crc32c checksum
(computed here bit by bit, independently of Lamina), then prints every tensor. With --expect,
also checks the values interop_helper writes (formulas computed here with NumPy).
Exit status 0 when everything holds, 1 otherwise.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "u1",
          "BF16": "<u2"}


def crc32c(data):
    crc = 0xFFFFFFFF
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def read(path):
    """(tensors as NumPy arrays in header order, metadata); raises ValueError on a bad file."""
    raw = open(path, "rb").read()
    if len(raw) < 8:
        raise ValueError("file too small")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("header length beyond the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    spans, tensors = [], {}
    for name, e in header.items():
        dt = DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        count = int(np.prod(e["shape"], dtype=np.int64))
        if count * np.dtype(dt).itemsize != end - begin:
            raise ValueError("%s: size mismatch" % name)
        arr = np.frombuffer(data[begin:end], dtype=dt).reshape(e["shape"])
        if e["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = arr
        spans.append((begin, end))
    pos = 0
    for begin, end in sorted(spans):
        if begin != pos:
            raise ValueError("gap or overlap at %d" % begin)
        pos = end
    if pos != len(data):
        raise ValueError("%d bytes after the last tensor" % (len(data) - pos))
    if "lamina.crc32c" in meta:
        have = "%08x" % crc32c(data)
        if have != meta["lamina.crc32c"]:
            raise ValueError("checksum %s, metadata says %s" % (have, meta["lamina.crc32c"]))
    return tensors, meta, n


def same_bits(a, b):
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    return a.shape == b.shape and a.view(np.uint32).tobytes() == b.view(np.uint32).tobytes()


def expected(kind):
    f = np.float32
    if kind == "list":
        special = np.array([0x7FC00001, 0x80000000, 0x00000001, 0xFF800000], dtype=np.uint32)
        return {
            "0": (np.arange(6, dtype=f) * f(0.5) - f(1)).reshape(2, 3),
            "1": np.array(3.25, dtype=f),
            "2": ((np.arange(4, dtype=f) + 1) ** 2) / f(8),
            "3": special.view(np.float32),
        }
    if kind == "dict":
        return {
            "alpha": (f(1) / (np.arange(6, dtype=f) + f(1))).reshape(3, 2),
            "beta.gamma": np.zeros((0,), dtype=f),
        }
    shapes = [(3, 2), (3,), (3, 3), (3,), (1, 3), (1,)]
    keys = ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
    out = {}
    for k, (key, shape) in enumerate(zip(keys, shapes)):
        n = int(np.prod(shape))
        out[key] = (f(k) + np.arange(n, dtype=f) / f(64)).reshape(shape)
    return out


def check(path, kind):
    tensors, meta, n = read(path)
    ok = True
    if n % 8 != 0:
        print("FAIL %s: header length %d is not a multiple of 8" % (path, n))
        ok = False
    want_kind = {"list": "list", "dict": "dict", "params": "parameters"}[kind]
    if meta.get("lamina.kind") != want_kind:
        print("FAIL %s: lamina.kind is %r, expected %r" % (path, meta.get("lamina.kind"), want_kind))
        ok = False
    want = expected(kind)
    if list(tensors) != list(want):
        print("FAIL %s: tensors %s, expected %s" % (path, list(tensors), list(want)))
        return False
    for name, arr in want.items():
        if not same_bits(tensors[name], arr):
            print("FAIL %s: %s is %s, expected %s" % (path, name, tensors[name], arr))
            ok = False
    if kind == "params":
        aliases = json.loads(meta.get("lamina.aliases", "{}"))
        if aliases != {"2.weight": "1.weight", "2.bias": "1.bias"}:
            print("FAIL %s: aliases %s" % (path, aliases))
            ok = False
    return ok


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[1]
    try:
        tensors, meta, _ = read(path)
    except (ValueError, KeyError, UnicodeDecodeError, json.JSONDecodeError) as e:
        print("FAIL %s: %s" % (path, e))
        return 1
    for name, arr in tensors.items():
        print("%s %s %s %s" % (name, arr.dtype, list(arr.shape), np.array2string(arr.ravel()[:8])))
    for k, v in meta.items():
        print("metadata %s = %s" % (k, v))
    if len(sys.argv) == 4 and sys.argv[2] == "--expect":
        if not check(path, sys.argv[3]):
            return 1
        print("OK %s: values as expected (%s)" % (path, sys.argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
