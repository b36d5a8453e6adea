#!/usr/bin/env python3
"""Checks that a directory of C files is layered: no file includes a header of a higher level,
and no two files call each other, directly or through others.

usage: check_layers.py [--source DIR] [--build DIR] [--nm NM] [--max-lines N]
                       [--max-function-lines N]
                       [--target NAME=SRC:OBJ[:GLOB]]... [--levels NAME]... [--cycles NAME]...
                       [--size NAME]...

  --levels NAME   include check of target NAME against its level table, SRC/LEVELS
  --cycles NAME   call-cycle check of target NAME's object files (read with nm)
  --size NAME     size check of target NAME: no .c or .h file over --max-lines lines, no
                  function over --max-function-lines lines without a reason in its comment
  --max-lines N   the file size limit (default 850)
  --max-function-lines N
                  the function size limit (default 120)
  --source DIR    the source tree (default: the directory above this script)
  --build DIR     the CMake build tree holding the object files (default: SOURCE/build)
  --nm NM         the nm program (default: nm)
  --target        defines (or redefines) a target: SRC relative to --source, OBJ relative to
                  --build (or absolute), GLOB the file names it covers (default *)

Known targets (SRC, OBJ):
  core     core, core/CMakeFiles/lamina.dir
  cpu      plugins/backends/cpu, plugins/backends/cpu/CMakeFiles/lamina_backend_cpu.dir
  vulkan   plugins/backends/vulkan, plugins/backends/vulkan/CMakeFiles/lamina_backend_vulkan.dir
  conform  tools (conform*), tools/CMakeFiles/lamina_conform.dir

The level table SRC/LEVELS has one line per module, `<level> <module>`, where a module is a
file name without its .c or .h (`3 vk_memory` covers vk_memory.c and vk_memory.h); `#` starts
a comment. The include check fails when
  - a .c or .h file of the target is not in the table (or the table names a module with no file),
  - a file includes a private header (one found in SRC) of a higher level,
  - private headers of modules on the same level include each other (directly or in a ring).
A target without a LEVELS file fails the include check: write the table first, then switch the
check on. ctest's `check_layers` (tests/layers/CMakeLists.txt) runs the targets that are clean
so far; core (whose core/LEVELS comes with the core refactor), cpu and conform are switched on
there, one `--levels NAME --cycles NAME` pair each, once they pass.

The size check fails for each .c or .h file of the target with more than --max-lines lines
(core/README.md states the limit for core/: a file that grows past it is split along a seam),
and for each function of a .c file longer than --max-function-lines lines (from the first line
of its definition to its closing brace) whose comment, the block comment right above the
definition, does not say why it is long: the comment must mention its `lines` ("Over 100 lines
on purpose: one line per ABI struct ..."). Functions are found as formatted by clang-format: a
definition starts in column 0 and ends at the next line that is `}`.

The cycle check reads every object file under OBJ (whose source name matches GLOB) with
`nm -P`, draws an edge from A to B when A uses a symbol that B defines, and fails on any
cycle, printing one path of it with the symbols that make each step.

Exit status: 0 when every requested check passes, 1 when one fails, 2 on a usage error.
"""

import argparse
import fnmatch
import os
import re
import subprocess
import sys

KNOWN_TARGETS = {
    "core": ("core", "core/CMakeFiles/lamina.dir", "*"),
    "cpu": ("plugins/backends/cpu", "plugins/backends/cpu/CMakeFiles/lamina_backend_cpu.dir", "*"),
    "vulkan": (
        "plugins/backends/vulkan",
        "plugins/backends/vulkan/CMakeFiles/lamina_backend_vulkan.dir",
        "*",
    ),
    "conform": ("tools", "tools/CMakeFiles/lamina_conform.dir", "conform*"),
}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)
COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)


class Target:
    def __init__(self, name, src, obj, glob):
        self.name = name
        self.src = src
        self.obj = obj
        self.glob = glob


# ---- the level table and the include check ----


def read_levels(path):
    """Returns ({module: level}, [problems]) from a LEVELS file."""
    levels = {}
    problems = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or not re.fullmatch(r"-?\d+", parts[0]):
                problems.append(f"{path}:{n}: expected `<level> <module>`, got `{line}`")
                continue
            level, module = int(parts[0]), parts[1]
            if module in levels:
                problems.append(f"{path}:{n}: module {module} listed twice")
                continue
            levels[module] = level
    return levels, problems


def source_files(src, glob):
    """The .c and .h files under src whose names match glob, as paths relative to src."""
    found = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            if name.endswith((".c", ".h")) and fnmatch.fnmatch(name, glob):
                found.append(os.path.relpath(os.path.join(root, name), src))
    return found


def module_of(rel):
    return os.path.splitext(rel)[0].replace(os.sep, "/")


def private_includes(src, rel):
    """The private headers (files under src) that src/rel includes, relative to src."""
    path = os.path.join(src, rel)
    with open(path, encoding="utf-8", errors="replace") as f:
        text = COMMENT_RE.sub("", f.read())
    out = []
    for name in INCLUDE_RE.findall(text):
        for base in (os.path.dirname(path), src):
            cand = os.path.normpath(os.path.join(base, name))
            if os.path.isfile(cand):
                inside = os.path.relpath(cand, src)
                if not inside.startswith(".."):
                    out.append(inside)
                break
    return out


def check_levels(t):
    """Returns the problems of target t's includes against its level table."""
    table = os.path.join(t.src, "LEVELS")
    if not os.path.isfile(table):
        return [f"{t.name}: no level table {table} (write one before switching the check on)"]
    levels, problems = read_levels(table)
    files = source_files(t.src, t.glob)
    if not files:
        return [f"{t.name}: no .c or .h files matching {t.glob} in {t.src}"]
    modules = {module_of(f) for f in files}
    for f in files:
        if module_of(f) not in levels:
            problems.append(f"{t.name}: {f} is not in the level table {table}")
    for m in sorted(set(levels) - modules):
        problems.append(f"{t.name}: {table} lists {m}, which has no .c or .h file")
    edges = {}  # same-level module include graph
    for f in files:
        mf = module_of(f)
        if mf not in levels:
            continue
        for h in private_includes(t.src, f):
            mh = module_of(h)
            if mh == mf:
                continue
            if mh not in levels:
                problems.append(f"{t.name}: {f} includes {h}, which is not in the level table")
            elif levels[mh] > levels[mf]:
                problems.append(
                    f"{t.name}: {f} (level {levels[mf]}) includes {h} of a higher level "
                    f"({levels[mh]})"
                )
            elif levels[mh] == levels[mf]:
                edges.setdefault(mf, {}).setdefault(mh, []).append(f"{f} includes {h}")
    for comp in cycles(edges):
        problems.append(
            f"{t.name}: modules of level {levels[comp[0]]} include each other: "
            + "; ".join(describe_cycle(comp, edges))
        )
    return problems


# ---- file sizes ----


def check_size(t, max_lines):
    """Returns a problem for each .c or .h file of target t longer than max_lines lines."""
    files = source_files(t.src, t.glob)
    if not files:
        return [f"{t.name}: no .c or .h files matching {t.glob} in {t.src}"]
    problems = []
    for f in files:
        with open(os.path.join(t.src, f), encoding="utf-8", errors="replace") as fh:
            n = sum(1 for _ in fh)
        if n > max_lines:
            problems.append(
                f"{t.name}: {f} has {n} lines, over the limit of {max_lines} "
                f"(split it along a seam)"
            )
    return problems


FUNC_START_RE = re.compile(r"[A-Za-z_][\w \t*]*\b(\w+)\s*\(")


def long_functions(path, max_lines):
    """(name, first line, length) of each function in path longer than max_lines lines whose
    comment does not mention its lines."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = FUNC_START_RE.match(lines[i])
        if m is None or lines[i].startswith(("typedef", "struct", "enum", "union")):
            i += 1
            continue
        j = i  # the signature may span lines; it ends with `{` (a definition) or `;`
        sig = lines[i].rstrip()
        while not sig.endswith(("{", ";")) and j + 1 < len(lines) and j - i < 10:
            j += 1
            sig += " " + lines[j].strip()
        if not sig.endswith("{") or "=" in sig.split("(", 1)[0]:
            i += 1
            continue
        k = j + 1
        while k < len(lines) and lines[k] != "}":
            k += 1
        length = k - i + 1
        if length > max_lines:
            comment = ""
            c = i - 1
            if c >= 0 and lines[c].rstrip().endswith("*/"):
                while c >= 0 and "/*" not in lines[c]:
                    c -= 1
                comment = " ".join(lines[max(c, 0) : i])
            if not re.search(r"\blines\b", comment):
                out.append((m.group(1), i + 1, length))
        i = k + 1
    return out


def check_function_sizes(t, max_lines):
    problems = []
    for f in source_files(t.src, t.glob):
        if not f.endswith(".c"):
            continue
        for name, line, length in long_functions(os.path.join(t.src, f), max_lines):
            problems.append(
                f"{t.name}: {f}:{line}: {name} has {length} lines, over the limit of "
                f"{max_lines}, and its comment does not say why (split it, or say why in "
                f"its comment, mentioning its lines)"
            )
    return problems


# ---- the object-file call graph ----


def object_files(obj, glob):
    found = []
    for root, dirs, files in os.walk(obj):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith((".o", ".obj")):
                continue
            source = os.path.splitext(name)[0]  # vk_queue.c.o -> vk_queue.c
            if fnmatch.fnmatch(source, glob):
                found.append(os.path.join(root, name))
    return found


def symbols(nm, path):
    """(defined, undefined) global symbol sets of one object file."""
    res = subprocess.run([nm, "-P", path], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{nm} -P {path} failed: {res.stderr.strip()}")
    defined, undefined = set(), set()
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind in ("U", "w", "v"):
            undefined.add(name)
        elif kind.isupper():
            defined.add(name)
    return defined, undefined


def call_graph(nm, objs, obj_root):
    """{unit: {unit: [symbols]}} where a unit is the object's source path under obj_root."""
    names = {}
    defs = {}
    uses = {}
    for path in objs:
        unit = os.path.splitext(os.path.relpath(path, obj_root))[0]
        names[path] = unit
        d, u = symbols(nm, path)
        uses[unit] = u
        for s in d:
            defs.setdefault(s, set()).add(unit)
    graph = {unit: {} for unit in names.values()}
    for unit, used in uses.items():
        for s in sorted(used):
            for other in defs.get(s, ()):
                if other != unit:
                    graph[unit].setdefault(other, []).append(s)
    return graph


def has_source(t, obj_path):
    """False for an object whose source is gone (a file deleted or renamed since an earlier
    build leaves its .o behind in an incremental build directory; it is not part of the
    target). Sources are looked for in the tree and, for generated ones, in the target's
    binary directory (the parent of CMakeFiles/)."""
    unit = os.path.splitext(os.path.relpath(obj_path, t.obj))[0]  # vk_queue.c
    binary_dir = os.path.dirname(os.path.dirname(os.path.normpath(t.obj)))
    src = os.path.normpath(t.src)
    candidates = [os.path.join(d, unit) for d in (src, os.path.dirname(src), binary_dir)]
    candidates.append(os.path.join(src, os.path.basename(unit)))
    return any(os.path.exists(c) for c in candidates)


def check_cycles(t, nm):
    if not os.path.isdir(t.obj):
        return [f"{t.name}: no object directory {t.obj} (build the target first)"]
    objs = [o for o in object_files(t.obj, t.glob) if has_source(t, o)]
    if not objs:
        return [f"{t.name}: no object files matching {t.glob} under {t.obj}"]
    graph = call_graph(nm, objs, t.obj)
    return [
        f"{t.name}: call cycle of {len(comp)} files: " + "; ".join(describe_cycle(comp, graph))
        for comp in cycles(graph)
    ]


# ---- graphs ----


def cycles(graph):
    """The strongly connected components of more than one node, each sorted (Tarjan)."""
    index = {}
    low = {}
    stack = []
    on_stack = set()
    out = []
    counter = [0]

    def visit(v):
        # iterative, so a long chain cannot hit the recursion limit
        work = [(v, iter(sorted(graph.get(v, {}))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, {})))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def describe_cycle(comp, graph):
    """One closed path through comp, as `a -> b (why)` steps."""
    members = set(comp)
    start = comp[0]
    # breadth-first from start's successors back to start, inside the component
    prev = {}
    frontier = [start]
    seen = set()
    while frontier and start not in prev:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, {})):
                if w in members and w not in seen:
                    seen.add(w)
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    path = [start]
    v = prev.get(start)
    while v is not None and v != start:
        path.append(v)
        v = prev.get(v)
    path.append(start)
    path.reverse()
    steps = []
    for a, b in zip(path, path[1:]):
        why = graph[a][b]
        shown = ", ".join(why[:3]) + (", ..." if len(why) > 3 else "")
        steps.append(f"{a} -> {b} ({shown})")
    return steps


# ---- command line ----


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(
        prog="check_layers.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=argparse.SUPPRESS,
    )
    ap.add_argument("--source", default=os.path.dirname(here))
    ap.add_argument("--build")
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--target", action="append", default=[])
    ap.add_argument("--levels", action="append", default=[])
    ap.add_argument("--cycles", action="append", default=[])
    ap.add_argument("--size", action="append", default=[])
    ap.add_argument("--max-lines", type=int, default=850)
    ap.add_argument("--max-function-lines", type=int, default=120)
    args = ap.parse_args(argv)
    build = args.build or os.path.join(args.source, "build")
    specs = dict(KNOWN_TARGETS)
    for t in args.target:
        m = re.fullmatch(r"([\w.-]+)=([^:]+):([^:]+)(?::(.+))?", t)
        if not m:
            ap.error(f"--target {t}: expected NAME=SRC:OBJ[:GLOB]")
        specs[m.group(1)] = (m.group(2), m.group(3), m.group(4) or "*")
    if not args.levels and not args.cycles and not args.size:
        ap.error("nothing to check: give --levels NAME, --cycles NAME and/or --size NAME")
    if args.max_lines < 1 or args.max_function_lines < 1:
        ap.error("--max-lines and --max-function-lines: expected a positive number of lines")
    targets = {}
    for name in args.levels + args.cycles + args.size:
        if name not in specs:
            ap.error(f"unknown target {name} (known: {', '.join(sorted(specs))})")
        src, obj, glob = specs[name]
        targets[name] = Target(
            name, os.path.join(args.source, src), os.path.join(build, obj), glob
        )
    problems = []
    for name in args.levels:
        found = check_levels(targets[name])
        problems += found
        if not found:
            print(f"{name}: includes follow the levels of {targets[name].src}/LEVELS")
    for name in args.size:
        found = check_size(targets[name], args.max_lines)
        found += check_function_sizes(targets[name], args.max_function_lines)
        problems += found
        if not found:
            print(
                f"{name}: no file of {targets[name].src} over {args.max_lines} lines, no "
                f"function over {args.max_function_lines} lines without a reason"
            )
    for name in args.cycles:
        try:
            found = check_cycles(targets[name], args.nm)
        except (OSError, RuntimeError) as e:
            found = [f"{name}: {e}"]
        problems += found
        if not found:
            print(f"{name}: no call cycle between the object files of {targets[name].obj}")
    for p in problems:
        print(f"FAIL {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
