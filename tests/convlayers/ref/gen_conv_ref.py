#!/usr/bin/python3
"""Writes tests/convlayers/ref/conv_ref.h: PyTorch float64 references for the layer plugins
Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D and Flatten (tests/convlayers).

Run from anywhere (the output path is relative to this file):

    /usr/bin/python3 tests/convlayers/ref/gen_conv_ref.py

Needs NumPy and PyTorch (Debian: apt-get install -y python3-numpy python3-torch).

Each case is one layer, built with Lamina's attribute text and with the PyTorch module that
computes the same function (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, adaptive average pooling to
1x1, flatten). Inputs, weights, biases and a head gradient hg are drawn from a fixed NumPy seed
and stored as float32; forward and backward run in float64 on those float32 values, with
loss = sum(hg * layer(x)). The header holds the output and the gradients of the input, the
weight and the bias. Cases with relu are redrawn until every pre-activation is at least MARGIN
away from 0, so float32 rounding cannot move an element across the kink; max-pool windows are
random floats (no ties).
"""

import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "autograd", "ref"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from refheader import cfloat  # noqa: E402

SEED = 20261204
MARGIN = 0.01
OUT = os.path.join(HERE, "conv_ref.h")

rng = np.random.default_rng(SEED)


def draw(shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def t64(a, grad=False):
    t = torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)
    return t.requires_grad_(grad)


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def text(v):
    a, b = pair(v)
    return "(%d, %d)" % (a, b)


ACTS = {"none": lambda z: z, "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
        "softrelu": F.softplus}


def conv_case(name, n, c, h, w, channels, kernel, strides=1, padding=0, dilation=1, groups=1,
              use_bias=True, activation="none"):
    kh, kw = pair(kernel)
    attrs = "channels=%d, kernel_size=%s" % (channels, text(kernel))
    if pair(strides) != (1, 1):
        attrs += ", strides=%s" % text(strides)
    if pair(padding) != (0, 0):
        attrs += ", padding=%s" % text(padding)
    if pair(dilation) != (1, 1):
        attrs += ", dilation=%s" % text(dilation)
    if groups != 1:
        attrs += ", groups=%d" % groups
    if not use_bias:
        attrs += ", use_bias=false"
    if activation != "none":
        attrs += ", activation=%s" % activation
    while True:
        x = draw((n, c, h, w))
        wt = draw((channels, c // groups, kh, kw), -0.5, 0.5)
        b = draw((channels,), -0.3, 0.3) if use_bias else None
        xt, wtt = t64(x, True), t64(wt, True)
        bt = t64(b, True) if use_bias else None
        z = F.conv2d(xt, wtt, bt, stride=pair(strides), padding=pair(padding),
                     dilation=pair(dilation), groups=groups)
        if activation != "relu" or float(z.detach().abs().min()) >= MARGIN:
            break
    y = ACTS[activation](z)
    hg = draw(tuple(y.shape))
    (y * t64(hg)).sum().backward()
    return {
        "name": name, "type": "Conv2D", "attrs": attrs,
        "x": x, "hg": hg, "y": y.detach().numpy(), "dx": xt.grad.numpy(),
        "w": wt, "dw": wtt.grad.numpy(),
        "b": b, "db": bt.grad.numpy() if use_bias else None,
    }


def pool_case(name, typ, shape, pool_size=2, strides=None, padding=0, ceil_mode=False,
              count_include_pad=True):
    attrs = []
    if pair(pool_size) != (2, 2):
        attrs.append("pool_size=%s" % text(pool_size))
    if strides is not None:
        attrs.append("strides=%s" % text(strides))
    if pair(padding) != (0, 0):
        attrs.append("padding=%s" % text(padding))
    if ceil_mode:
        attrs.append("ceil_mode=true")
    if not count_include_pad:
        attrs.append("count_include_pad=false")
    x = draw(shape)
    xt = t64(x, True)
    stride = pair(strides if strides is not None else pool_size)
    if typ == "MaxPool2D":
        y = F.max_pool2d(xt, pair(pool_size), stride, pair(padding), ceil_mode=ceil_mode)
    else:
        y = F.avg_pool2d(xt, pair(pool_size), stride, pair(padding), ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)
    hg = draw(tuple(y.shape))
    (y * t64(hg)).sum().backward()
    return {"name": name, "type": typ, "attrs": ", ".join(attrs), "x": x, "hg": hg,
            "y": y.detach().numpy(), "dx": xt.grad.numpy(), "w": None, "dw": None, "b": None,
            "db": None}


def simple_case(name, typ, shape, fn):
    x = draw(shape)
    xt = t64(x, True)
    y = fn(xt)
    hg = draw(tuple(y.shape))
    (y * t64(hg)).sum().backward()
    return {"name": name, "type": typ, "attrs": "", "x": x, "hg": hg, "y": y.detach().numpy(),
            "dx": xt.grad.numpy(), "w": None, "dw": None, "b": None, "db": None}


CASES = [
    conv_case("conv_plain", 2, 3, 6, 7, 4, 3),
    conv_case("conv_strided_padded", 2, 3, 7, 8, 5, (3, 2), strides=(2, 3), padding=(1, 2)),
    conv_case("conv_dilated", 2, 2, 8, 9, 3, 3, padding=(2, 1), dilation=(2, 3)),
    conv_case("conv_grouped", 3, 4, 5, 6, 6, 3, strides=2, padding=1, groups=2),
    conv_case("conv_depthwise_tanh", 2, 3, 6, 6, 6, 2, dilation=(1, 2), groups=3,
              use_bias=False, activation="tanh"),
    conv_case("conv_lenet_relu", 1, 1, 6, 6, 3, 5, padding=2, activation="relu"),
    conv_case("conv_sigmoid", 1, 2, 5, 5, 2, 1, activation="sigmoid"),
    conv_case("conv_softrelu", 2, 2, 4, 5, 3, (2, 3), strides=(1, 2), activation="softrelu"),
    pool_case("max_default", "MaxPool2D", (2, 3, 6, 7)),
    pool_case("max_padded_ceil", "MaxPool2D", (2, 2, 7, 8), pool_size=3, strides=2, padding=1,
              ceil_mode=True),
    pool_case("max_rect", "MaxPool2D", (1, 2, 5, 6), pool_size=(3, 2), strides=(1, 2)),
    pool_case("avg_default", "AvgPool2D", (2, 3, 6, 7)),
    pool_case("avg_padded_ceil_exclude", "AvgPool2D", (2, 2, 7, 8), pool_size=3, strides=2,
              padding=1, ceil_mode=True, count_include_pad=False),
    pool_case("avg_padded_ceil_include", "AvgPool2D", (2, 2, 7, 8), pool_size=3, strides=2,
              padding=1, ceil_mode=True),
    pool_case("avg_padded_exclude", "AvgPool2D", (1, 2, 5, 6), pool_size=(3, 2),
              strides=(2, 1), padding=(1, 1), count_include_pad=False),
    simple_case("global_avg", "GlobalAvgPool2D", (2, 3, 5, 6),
                lambda t: F.adaptive_avg_pool2d(t, 1)),
    simple_case("flatten", "Flatten", (2, 3, 4, 5), lambda t: t.reshape(t.shape[0], -1)),
]


def emit_array(out, name, arr):
    flat = np.asarray(arr, dtype=np.float32).reshape(-1)
    assert np.all(np.isfinite(flat)), name
    out.append("static const float %s[%d] = {" % (name, flat.size))
    for i in range(0, flat.size, 6):
        out.append("    " + ", ".join(cfloat(v) for v in flat[i:i + 6]) + ",")
    out.append("};")


def emit_shape(arr):
    s = np.asarray(arr).shape
    return "{%d, {%s}}" % (len(s), ", ".join(str(d) for d in s))


out = [
    "/*",
    " * conv_ref.h - PyTorch references for tests/convlayers (Conv2D, pooling, Flatten).",
    " *",
    " * GENERATED FILE, do not edit. Regenerate from the repository root with:",
    " *     /usr/bin/python3 tests/convlayers/ref/gen_conv_ref.py",
    " *",
    " * PyTorch %s, NumPy %s, seed %d. Inputs are float32; forward and backward ran in" %
    (torch.__version__, np.__version__, SEED),
    " * float64 on them (results rounded to float32 once). loss = sum(hg * layer(x)).",
    " */",
    "#ifndef LAMINA_TESTS_CONVLAYERS_CONV_REF_H",
    "#define LAMINA_TESTS_CONVLAYERS_CONV_REF_H",
    "",
    "/* clang-format off */",
    "",
    "#include <stddef.h>",
    "#include <stdint.h>",
    "",
    "/* A shape: rank and dims. */",
    "typedef struct conv_ref_shape {",
    "    uint32_t ndim;",
    "    int64_t dims[4];",
    "} conv_ref_shape;",
    "",
    "/* One layer: its type and attributes, the input x and head gradient hg, the output y and",
    " * the gradients (dx, and dw / db where the layer has a weight / bias; NULL otherwise). */",
    "typedef struct conv_ref_case {",
    "    const char *name;",
    "    const char *type;",
    "    const char *attrs;",
    "    conv_ref_shape x_shape, y_shape, w_shape;",
    "    const float *x, *hg, *y, *dx, *w, *dw, *b, *db;",
    "    size_t nx, ny, nw, nb;",
    "} conv_ref_case;",
    "",
    "#define CONV_REF_MARGIN %gf /* relu pre-activations are at least this far from 0 */" %
    MARGIN,
    "",
]
for c in CASES:
    for key in ("x", "hg", "y", "dx", "w", "dw", "b", "db"):
        if c[key] is not None:
            emit_array(out, "%s_%s" % (c["name"], key), c[key])
    out.append("")
out.append("static const conv_ref_case conv_ref_cases[] = {")
for c in CASES:
    def ref(key):
        return "%s_%s" % (c["name"], key) if c[key] is not None else "NULL"
    nw = np.asarray(c["w"]).size if c["w"] is not None else 0
    nb = np.asarray(c["b"]).size if c["b"] is not None else 0
    out.append('    {"%s", "%s", "%s", %s, %s, %s,' % (
        c["name"], c["type"], c["attrs"], emit_shape(c["x"]), emit_shape(c["y"]),
        emit_shape(c["w"]) if c["w"] is not None else "{0, {0}}"))
    out.append("     %s, %s, %s, %s, %s, %s, %s, %s, %d, %d, %d, %d}," % (
        ref("x"), ref("hg"), ref("y"), ref("dx"), ref("w"), ref("dw"), ref("b"), ref("db"),
        c["x"].size, c["y"].size, nw, nb))
out += ["};", "", "/* clang-format on */", "", "#endif", ""]
with open(OUT, "w") as f:
    f.write("\n".join(out))
print("wrote %s (%d cases)" % (OUT, len(CASES)))
