#!/usr/bin/python3
"""Writes tests/core/ref/op_refs.h: NumPy reference results for the ops of lamina.h.

Run from anywhere (the output path is relative to this file):

    /usr/bin/python3 tests/core/ref/gen_op_refs.py

Only NumPy is needed (Debian: apt-get install -y python3-numpy). Inputs are literal values or
drawn from a fixed seed, rounded to two decimals and stored as float32; every reference is
computed in float64 from those float32 inputs and rounded to float32 once, at the end. The
header is deterministic: running the script twice gives the same file.
"""

import os
import sys

import numpy as np

SEED = 20240501
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "op_refs.h")

rng = np.random.default_rng(SEED)
arrays = []  # (name, float32 ndarray), in output order
defines = []  # (name, C text)
reduce_cases = []  # (name, axes or None, keepdims)


def f32(x):
    return np.asarray(x, dtype=np.float32)


def rand(shape, lo=-2.0, hi=2.0):
    """Float32 values from the fixed stream, rounded to two decimals so the header reads well."""
    return f32(np.round(rng.uniform(lo, hi, size=shape), 2))


def nonzero(shape, lo=0.5, hi=2.0):
    """Values whose magnitude lies in [lo, hi] with a random sign (safe denominators)."""
    mag = rng.uniform(lo, hi, size=shape)
    sign = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    return f32(np.round(mag * sign, 2))


def emit(name, value):
    """Records an array; `value` is computed in float64 and rounded to float32 here."""
    value = np.asarray(value)
    assert np.all(np.isfinite(value)), name
    arrays.append((name, value.astype(np.float32)))
    return value


def d(x):
    return np.asarray(x, dtype=np.float64)


# ---- matmul: every transpose combination, stored operands differ per case ----------------
def op_t(x, t):
    return x.T if t else x


for tag, ta, tb, sa, sb in [
    ("nn", 0, 0, (3, 5), (5, 4)),
    ("tn", 1, 0, (5, 3), (5, 4)),
    ("nt", 0, 1, (3, 5), (4, 5)),
    ("tt", 1, 1, (5, 3), (4, 5)),
]:
    a = emit("matmul_%s_a" % tag, rand(sa))
    b = emit("matmul_%s_b" % tag, rand(sb))
    emit("matmul_%s_out" % tag, op_t(d(a), ta) @ op_t(d(b), tb))

# A Dense-sized product: (2, 20) x (20, 256), and the same input against a (256, 20) weight.
x = emit("matmul_big_x", rand((2, 20)))
w = emit("matmul_big_w", rand((20, 256)))
emit("matmul_big_out", d(x) @ d(w))
wt = emit("matmul_big_wt", rand((256, 20)))
emit("matmul_big_nt_out", d(x) @ d(wt).T)

# ---- dot --------------------------------------------------------------------------------------
v = emit("dot_v5", rand((5,)))
u = emit("dot_u5", rand((5,)))
m = emit("dot_m35", rand((3, 5)))
n = emit("dot_n54", rand((5, 4)))
emit("dot_vv_out", np.dot(d(v), d(u)))  # shape ()
emit("dot_mv_out", np.dot(d(m), d(v)))  # (3,)
emit("dot_vm_out", np.dot(d(v), d(n)))  # (4,)
emit("dot_mm_out", np.dot(d(m), d(n)))  # (3, 4)

# ---- element-wise binary ops with broadcasting -------------------------------------------
BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "maximum": np.maximum,
    "minimum": np.minimum,
}
for case, sa, sb in [
    ("same", (2, 3), (2, 3)),
    ("row", (2, 3), (3,)),
    ("outer", (2, 1), (1, 3)),
    ("rank3", (4, 1, 3), (2, 1)),
    ("scalar_rhs", (2, 3), ()),
    ("scalar_lhs", (), (2, 3)),
]:
    a = emit("bin_%s_a" % case, rand(sa))
    b = emit("bin_%s_b" % case, nonzero(sb))
    for op, fn in BINARY.items():
        emit("%s_%s_out" % (op, case), fn(d(a), d(b)))

# maximum / minimum with ties and equal magnitudes of opposite sign
a = emit("minmax_ties_a", [[1.0, -2.0, 3.0], [0.0, 5.5, -7.25]])
b = emit("minmax_ties_b", [[1.0, 2.0, -3.0], [-0.0, 5.5, -7.5]])
emit("maximum_ties_out", np.maximum(d(a), d(b)))
emit("minimum_ties_out", np.minimum(d(a), d(b)))

# ---- scalar ops -------------------------------------------------------------------------------
S = 1.5
defines.append(("REF_SCALAR_S", "1.5f"))
xs = emit("scalar_x", [[-2.5, -1.0, -0.5], [0.5, 1.25, 3.0]])
emit("add_scalar_out", d(xs) + S)
emit("sub_scalar_out", d(xs) - S)
emit("rsub_scalar_out", S - d(xs))
emit("mul_scalar_out", d(xs) * S)
emit("div_scalar_out", d(xs) / S)
emit("rdiv_scalar_out", S / d(xs))
# pow: a fractional exponent on positive bases, an integer one on mixed signs.
xp = emit("pow_pos_x", [[0.25, 0.5, 1.0], [2.0, 4.5, 9.0]])
defines.append(("REF_POW_FRAC", "2.5f"))
emit("pow_frac_out", d(xp) ** 2.5)
defines.append(("REF_POW_HALF", "0.5f"))
emit("pow_half_out", d(xp) ** 0.5)
defines.append(("REF_POW_CUBE", "3.0f"))
emit("pow_cube_out", d(xs) ** 3)

# ---- unary ops --------------------------------------------------------------------------------
wide = emit(
    "unary_wide_x",
    [-100.0, -50.0, -20.0, -3.5, -1.0, -0.25, 0.0, 0.25, 1.0, 3.5, 20.0, 50.0, 100.0],
)
wd = d(wide)
emit("neg_out", -wd)
emit("abs_out", np.abs(wd))
emit("square_out", wd * wd)
emit("relu_out", np.maximum(wd, 0.0))
emit("sigmoid_out", 1.0 / (1.0 + np.exp(-wd)))
emit("tanh_out", np.tanh(wd))
emit("softrelu_out", np.logaddexp(0.0, wd))
mid = emit("unary_mid_x", [[-50.0, -10.0, -3.5, -1.0], [-0.25, 0.0, 0.25, 1.0], [3.5, 10.0, 20.0, 50.0]])
emit("exp_out", np.exp(d(mid)))
pos = emit("unary_pos_x", [1e-3, 0.25, 1.0, 2.0, 10.0, 1000.0])
emit("sqrt_out", np.sqrt(d(pos)))
emit("log_out", np.log(d(pos)))

# ---- reductions -------------------------------------------------------------------------------
rx = emit("red_x", rand((2, 3, 4), -5.0, 5.0))
REDUCE = {
    "sum": np.sum,
    "mean": np.mean,
    "max": np.max,
    "min": np.min,
}
for case, axes, keep in [
    ("all", None, False),
    ("all_keep", None, True),
    ("all_listed", (0, 1, 2), False),
    ("axis1", (1,), False),
    ("axis1_keep", (1,), True),
    ("axes02", (0, 2), False),
    ("axes02_keep", (0, 2), True),
    ("neg1", (-1,), False),
    ("neg1_keep", (-1,), True),
    ("neg_unordered", (-1, -3), False),
]:
    reduce_cases.append((case, axes, keep))
    for op, fn in REDUCE.items():
        emit("%s_%s_out" % (op, case), fn(d(rx), axis=axes, keepdims=keep))

for tag, axis in [("axis0", 0), ("axis1", 1), ("axis2", 2), ("neg1", -1)]:
    emit("argmax_%s_out" % tag, np.argmax(d(rx), axis=axis))
ties = emit("argmax_ties_x", [[1.0, 3.0, 3.0], [2.0, 2.0, 1.0], [-3.0, -1.0, -2.0]])
emit("argmax_ties_axis0_out", np.argmax(d(ties), axis=0))
emit("argmax_ties_axis1_out", np.argmax(d(ties), axis=1))


# ---- softmax / log_softmax -------------------------------------------------------------------
def softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis):
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


sx = emit("sm_x", rand((3, 4), -3.0, 3.0))
big = emit("sm_big", [[1000.0, 1001.0, 1002.0, 999.0], [-1000.0, -999.0, -1001.0, -1000.0]])
s3 = emit("sm_x3", rand((2, 3, 4), -3.0, 3.0))
for name, src in [("x", sx), ("big", big)]:
    emit("softmax_%s_last_out" % name, softmax(d(src), -1))
    emit("softmax_%s_axis0_out" % name, softmax(d(src), 0))
    emit("log_softmax_%s_last_out" % name, log_softmax(d(src), -1))
    emit("log_softmax_%s_axis0_out" % name, log_softmax(d(src), 0))
emit("softmax_x3_axis1_out", softmax(d(s3), 1))
emit("log_softmax_x3_axis1_out", log_softmax(d(s3), 1))

# ---- transpose, assign ------------------------------------------------------------------------
tx = emit("transpose_x", rand((3, 5)))
emit("transpose_out", d(tx).T)
asrc_row = emit("assign_row_src", [10.0, 20.0, 30.0])
asrc_col = emit("assign_col_src", [[-1.0], [2.5]])
asrc_scl = emit("assign_scalar_src", 4.25)
emit("assign_row_out", np.broadcast_to(d(asrc_row), (2, 3)))
emit("assign_col_out", np.broadcast_to(d(asrc_col), (2, 3)))
emit("assign_scalar_out", np.broadcast_to(d(asrc_scl), (2, 3)))


# ---- writing ----------------------------------------------------------------------------------
def cfloat(v):
    # The shortest decimal that reads back as the same float32 (a C compiler rounds a float
    # literal correctly), so the header stays readable.
    s = np.format_float_positional(np.float32(v), unique=True, trim="0")
    if "e" in s or len(s) > 14:
        s = np.format_float_scientific(np.float32(v), unique=True, trim="0")
    if not any(c in s for c in ".en"):
        s += ".0"
    return s + "f"


def carray(name, a):
    flat = a.reshape(-1)
    count = flat.size
    dims = ", ".join(str(int(x)) for x in a.shape) or "0"
    lines = []
    line = "   "
    for val in flat:
        item = " " + cfloat(val) + ","
        if len(line) + len(item) > 100:
            lines.append(line)
            line = "   "
        line += item
    lines.append(line)
    body = "\n".join(lines)
    return (
        "static const float ref_%s_data[%d] REF_UNUSED = {\n%s\n};\n"
        "static const ref_array ref_%s REF_UNUSED = {\n    %d, {%s}, %d, ref_%s_data};\n"
        % (name, count, body, name, a.ndim, dims, count, name)
    )


def creduce(name, axes, keep):
    ax = ", ".join(str(a) for a in axes) if axes else "0"
    n = len(axes) if axes else 0
    return "static const ref_reduce_case ref_red_case_%s REF_UNUSED = {{%s}, %d, %d};\n" % (
        name,
        ax,
        n,
        1 if keep else 0,
    )


def main():
    out = []
    out.append(
        "/*\n"
        " * op_refs.h - NumPy reference inputs and results for the Lamina op tests.\n"
        " *\n"
        " * GENERATED FILE, do not edit. Regenerate from the repository root with:\n"
        " *     /usr/bin/python3 tests/core/ref/gen_op_refs.py\n"
        " *\n"
        " * NumPy %s, seed %d. Inputs are float32; references are computed in float64 from\n"
        " * those inputs and rounded to float32. A scalar shape () has ndim 0 and one element.\n"
        " */\n" % (np.__version__, SEED)
    )
    out.append("#ifndef LAMINA_TESTS_OP_REFS_H\n#define LAMINA_TESTS_OP_REFS_H\n\n")
    out.append("/* clang-format off */\n\n")
    out.append("#include <stddef.h>\n#include <stdint.h>\n\n")
    out.append(
        "#if defined(__GNUC__)\n#define REF_UNUSED __attribute__((unused))\n#else\n"
        "#define REF_UNUSED\n#endif\n\n"
    )
    out.append(
        "/* An array with its shape (row-major). */\n"
        "typedef struct ref_array {\n"
        "    uint32_t ndim;\n"
        "    int64_t dims[8];\n"
        "    size_t count;\n"
        "    const float *data;\n"
        "} ref_array;\n\n"
        "/* Axes of a reduction (n_axes 0: all axes) and whether reduced axes are kept. */\n"
        "typedef struct ref_reduce_case {\n"
        "    int32_t axes[8];\n"
        "    uint32_t n_axes;\n"
        "    int32_t keepdims;\n"
        "} ref_reduce_case;\n\n"
    )
    for name, text in defines:
        out.append("#define %s %s\n" % (name, text))
    out.append("\n")
    for name, axes, keep in reduce_cases:
        out.append(creduce(name, axes, keep))
    out.append("\n")
    for name, a in arrays:
        out.append(carray(name, a))
        out.append("\n")
    out.append("/* clang-format on */\n\n#endif /* LAMINA_TESTS_OP_REFS_H */\n")
    with open(OUT, "w", encoding="ascii") as f:
        f.write("".join(out))
    print("wrote %s (%d arrays)" % (OUT, len(arrays)), file=sys.stderr)


if __name__ == "__main__":
    main()
