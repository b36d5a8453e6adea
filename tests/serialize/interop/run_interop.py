#!/usr/bin/python3
"""The interoperability round trip, both directions (a ctest: serialize_interop).

usage: run_interop.py INTEROP_HELPER WORKDIR

1. NumPy -> Lamina: write_numpy.py writes every convertible dtype; Lamina's dump must hold the
   float32 values NumPy itself converts to (bit for bit; BF16 as its top 16 bits).
2. Lamina -> NumPy: interop_helper writes a list, a dict and a parameters file with shared
   parameters; read_numpy.py checks layout, checksum, alias table and values.
3. NumPy -> Lamina -> NumPy: Lamina re-saves the NumPy file; NumPy reads it back.
4. PyTorch, when importable: bf16/f16/f32 tensors made and rounded by torch load in Lamina with
   torch's float values, and torch reads Lamina's list file through torch.frombuffer.
5. The safetensors package, when importable: it loads Lamina's files and Lamina loads its own.
Parts 4 and 5 print SKIP with the reason when the package is missing. Exit status 77 (a ctest
skip) when NumPy is missing, 1 on any failure.
"""
import json
import os
import subprocess
import sys

try:
    import numpy as np
except ImportError as e:  # pragma: no cover
    print("SKIP: NumPy is not importable by %s (%s); install python3-numpy" % (sys.executable, e))
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import read_numpy  # noqa: E402
import write_numpy  # noqa: E402

failures = []


def fail(msg):
    print("FAIL " + msg)
    failures.append(msg)


def dump(helper, path):
    out = subprocess.run([helper, "dump", path], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("dump %s: %s" % (path, out.stderr.strip()))
    doc = json.loads(out.stdout)
    return doc["kind"], {t["name"]: (t["shape"], np.array(t["bits"], dtype=np.uint32))
                         for t in doc["tensors"]}


def as_f32_bits(dtype, arr):
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).ravel()
    with np.errstate(over="ignore"):  # F64 -1e300 becomes -inf, as in Lamina
        return np.ascontiguousarray(arr.astype(np.float32)).view(np.uint32).ravel()


def numpy_to_lamina(helper, work):
    path = os.path.join(work, "numpy.safetensors")
    items = write_numpy.tensors()
    write_numpy.write(path, items, {"creator": "run_interop.py"})
    kind, got = dump(helper, path)
    if kind != "dict":
        fail("numpy file loaded as %s" % kind)
    for name, dtype, arr in items:
        shape, bits = got[name]
        if shape != list(arr.shape) or bits.tobytes() != as_f32_bits(dtype, arr).tobytes():
            fail("numpy -> lamina: %s (%s) got %s %s" % (name, dtype, shape, bits))
    print("ok   numpy -> lamina: %d tensors, dtypes %s" % (len(items),
                                                         sorted({d for _, d, _ in items})))
    return path, items


def lamina_to_numpy(helper, work):
    subprocess.run([helper, "write", work], check=True)
    for kind in ("list", "dict", "params"):
        path = os.path.join(work, "lamina_%s.safetensors" % kind)
        if not read_numpy.check(path, kind):
            fail("lamina -> numpy: %s" % path)
        else:
            print("ok   lamina -> numpy: %s" % os.path.basename(path))


def numpy_lamina_numpy(helper, work, src, items):
    back = os.path.join(work, "numpy_back.safetensors")
    subprocess.run([helper, "resave", src, back], check=True)
    tensors, meta, _ = read_numpy.read(back)
    for name, dtype, arr in items:
        if tensors[name].dtype != np.float32 or \
                tensors[name].view(np.uint32).ravel().tobytes() != as_f32_bits(dtype, arr).tobytes():
            fail("numpy -> lamina -> numpy: %s" % name)
    if meta.get("lamina.kind") != "dict":
        fail("numpy -> lamina -> numpy: kind %s" % meta.get("lamina.kind"))
    print("ok   numpy -> lamina -> numpy: float32 values kept bit for bit")


def torch_part(helper, work):
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        print("SKIP torch part: torch is not importable (%s); apt-get install python3-torch" % e)
        return
    g = torch.Generator().manual_seed(5)
    src = torch.randn(3, 5, generator=g) * 100
    made = [("bf16", "BF16", src.to(torch.bfloat16)), ("f16", "F16", src.to(torch.float16)),
            ("f32", "F32", src.clone()), ("f64", "F64", src.to(torch.float64))]
    header, blobs, pos = {}, [], 0
    for name, dtype, t in made:
        raw = t.contiguous().view(torch.uint8).numpy().tobytes() if t.dtype != torch.float64 \
            else t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    path = os.path.join(work, "torch.safetensors")
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))
    _, got = dump(helper, path)
    for name, _, t in made:
        want = t.to(torch.float32).contiguous().view(torch.int32).numpy().view(np.uint32).ravel()
        if got[name][1].tobytes() != want.tobytes():
            fail("torch -> lamina: %s" % name)
    # Lamina's list file, read with torch alone.
    raw = open(os.path.join(work, "lamina_list.safetensors"), "rb").read()
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8:8 + n])
    b, e = hdr["0"]["data_offsets"]
    t0 = torch.frombuffer(bytearray(raw[8 + n + b:8 + n + e]), dtype=torch.float32).reshape(2, 3)
    want = torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1
    if not torch.equal(t0, want):
        fail("lamina -> torch: %s" % t0)
    print("ok   torch %s: bf16/f16/f32/f64 -> lamina, lamina -> torch.frombuffer" % torch.__version__)


def safetensors_part(helper, work):
    try:
        from safetensors.numpy import load_file, save_file
    except Exception as e:
        print("SKIP safetensors part: the safetensors package is not importable (%s); Debian 12 "
              "has no python3-safetensors and this test does not use pip" % e)
        return
    for kind in ("list", "dict", "params"):
        path = os.path.join(work, "lamina_%s.safetensors" % kind)
        loaded = load_file(path)
        want = read_numpy.expected(kind)
        for name, arr in want.items():
            if not read_numpy.same_bits(loaded[name], arr):
                fail("lamina -> safetensors: %s %s" % (kind, name))
    path = os.path.join(work, "by_safetensors.safetensors")
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1.5], dtype=np.float16)}
    save_file(arrays, path, metadata={"by": "safetensors"})
    _, got = dump(helper, path)
    for name, arr in arrays.items():
        if got[name][1].tobytes() != as_f32_bits("F", arr).tobytes():
            fail("safetensors -> lamina: %s" % name)
    print("ok   safetensors package: both directions")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    helper, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    print("numpy %s (%s)" % (np.__version__, sys.executable))
    src, items = numpy_to_lamina(helper, work)
    lamina_to_numpy(helper, work)
    numpy_lamina_numpy(helper, work, src, items)
    torch_part(helper, work)
    safetensors_part(helper, work)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("interop: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
