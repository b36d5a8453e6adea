"""Shared writer for the generated reference headers of tests/autograd (not run by itself).

Each generator collects named float32 arrays and integer/float defines, then calls write().
Floats are written as the shortest text that reads back as the same float32, so the header
holds exactly the float32 values the generator used or computed.
"""

import numpy as np


def cfloat(v):
    """The shortest text that reads back as the same float32 (C's strtof rounds to nearest)."""
    s = repr(np.float32(v))
    if s in ("nan", "inf", "-inf"):
        raise ValueError("non-finite value in a reference")
    return s + "f" if ("." in s or "e" in s) else s + ".0f"


class Header:
    def __init__(self, guard, prefix):
        self.guard = guard
        self.prefix = prefix
        self.arrays = []  # (name, comment, float32 ndarray)
        self.defines = []  # (name, C text, comment)

    def array(self, name, value, comment=""):
        value = np.asarray(value)
        assert np.all(np.isfinite(value)), name
        self.arrays.append((name, comment, value.astype(np.float32)))

    def define(self, name, text, comment=""):
        self.defines.append((name, text, comment))

    def write(self, path, doc_lines):
        out = []
        w_ = out.append
        w_("/*")
        for line in doc_lines:
            w_((" * " + line).rstrip())
        w_(" */")
        w_("#ifndef %s" % self.guard)
        w_("#define %s" % self.guard)
        w_("")
        w_("/* clang-format off */")
        w_("")
        w_("#include <stddef.h>")
        w_("#include <stdint.h>")
        w_("")
        w_("#ifndef AG_REF_ARRAY_DEFINED")
        w_("#define AG_REF_ARRAY_DEFINED")
        w_("#if defined(__GNUC__)")
        w_("#define AG_REF_UNUSED __attribute__((unused))")
        w_("#else")
        w_("#define AG_REF_UNUSED")
        w_("#endif")
        w_("/* An array with its shape (row-major). */")
        w_("typedef struct ag_ref_array {")
        w_("    uint32_t ndim;")
        w_("    int64_t dims[8];")
        w_("    size_t count;")
        w_("    const float *data;")
        w_("} ag_ref_array;")
        w_("#endif")
        w_("")
        for name, text, comment in self.defines:
            if comment:
                w_("/* %s */" % comment)
            w_("#define %s %s" % (name, text))
        w_("")
        p = self.prefix
        for name, comment, arr in self.arrays:
            flat = arr.reshape(-1)
            if comment:
                w_("/* %s */" % comment)
            w_("static const float %s%s_data[%d] AG_REF_UNUSED = {" % (p, name, max(flat.size, 1)))
            for i in range(0, flat.size, 6):
                w_("    " + ", ".join(cfloat(v) for v in flat[i:i + 6]) + ",")
            w_("};")
            dims = ", ".join(str(n) for n in arr.shape)
            w_("static const ag_ref_array %s%s AG_REF_UNUSED = {%d, {%s}, %d, %s%s_data};" %
               (p, name, arr.ndim, dims, flat.size, p, name))
            w_("")
        w_("/* clang-format on */")
        w_("")
        w_("#endif")
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
