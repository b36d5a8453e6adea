#!/usr/bin/env python3
"""Self-test of tools/check_layers.py: it must fail, naming each fault, on fixture_bad (an
upward include, a file missing from the level table, two same-level headers including each
other, two object files calling each other), and pass on fixture_good; its size check must
fail on a file one line over the limit and pass at the limit, and fail on a function one line
over its limit unless its comment says why (fixture_size).

usage: selftest.py --script tools/check_layers.py --nm NM --src tests/layers --obj OBJDIR
where OBJDIR holds the object directories of layers_fixture_bad and layers_fixture_good
(the CMakeFiles directory of this folder's build).
"""

import argparse
import os
import subprocess
import sys


def run(script, nm, src, *args):
    cmd = [sys.executable, script, "--source", src, "--nm", nm, *args]
    res = subprocess.run(cmd, capture_output=True, text=True)
    return res.returncode, res.stdout + res.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--script", required=True)
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--src", required=True)
    ap.add_argument("--obj", required=True)
    a = ap.parse_args()
    bad_obj = os.path.join(a.obj, "layers_fixture_bad.dir")
    good_obj = os.path.join(a.obj, "layers_fixture_good.dir")
    failures = []

    def expect(what, rc_want, got, needles):
        rc, out = got
        if rc != rc_want:
            failures.append(f"{what}: exit status {rc}, expected {rc_want}; output:\n{out}")
            return
        for n in needles:
            if n not in out:
                failures.append(f"{what}: output lacks `{n}`; output:\n{out}")

    bad = f"bad=fixture_bad:{bad_obj}"
    good = f"good=fixture_good:{good_obj}"
    expect(
        "includes of fixture_bad",
        1,
        run(a.script, a.nm, a.src, "--target", bad, "--levels", "bad"),
        [
            "FAIL bad: base.c (level 0) includes top.h of a higher level (1)",
            "FAIL bad: stray.c is not in the level table",
            "FAIL bad: modules of level 1 include each other: left -> right (left.h includes "
            "right.h); right -> left (right.h includes left.h)",
        ],
    )
    expect(
        "call graph of fixture_bad",
        1,
        run(a.script, a.nm, a.src, "--target", bad, "--cycles", "bad"),
        [
            "FAIL bad: call cycle of 2 files: fixture_bad/base.c -> fixture_bad/top.c "
            "(top_count); fixture_bad/top.c -> fixture_bad/base.c (base_count)"
        ],
    )
    expect(
        "fixture_good",
        0,
        run(a.script, a.nm, a.src, "--target", good, "--levels", "good", "--cycles", "good"),
        ["good: includes follow the levels", "good: no call cycle between the object files"],
    )
    expect(
        "an object directory that is not there",
        1,
        run(a.script, a.nm, a.src, "--target", "gone=fixture_good:/nonexistent/x.dir",
            "--cycles", "gone"),
        ["FAIL gone: no object directory /nonexistent/x.dir"],
    )
    expect(
        "a tree without a level table",
        1,
        run(a.script, a.nm, a.src, "--target", f"notable=.:{good_obj}", "--levels", "notable"),
        ["FAIL notable: no level table"],
    )
    expect(
        "a file over the size limit",
        1,
        run(a.script, a.nm, a.src, "--target", good, "--size", "good", "--max-lines", "6"),
        ["FAIL good: high.c has 7 lines, over the limit of 6"],
    )
    rc, out = run(a.script, a.nm, a.src, "--target", good, "--size", "good", "--max-lines", "6")
    if "low.c" in out:
        failures.append(f"size check: low.c (5 lines) reported over 6; output:\n{out}")
    expect(
        "files within the size limit",
        0,
        run(a.script, a.nm, a.src, "--target", good, "--size", "good", "--max-lines", "7"),
        ["good: no file of", "over 7 lines"],
    )
    sizes = "sizes=fixture_size:/nonexistent/sizes.dir"
    expect(
        "a long function without a reason",
        1,
        run(a.script, a.nm, a.src, "--target", sizes, "--size", "sizes",
            "--max-function-lines", "6"),
        ["FAIL sizes: sizes.c:6: unexplained has 7 lines, over the limit of 6, and its comment "
         "does not say why"],
    )
    rc, out = run(a.script, a.nm, a.src, "--target", sizes, "--size", "sizes",
                  "--max-function-lines", "6")
    for name in ("explained has", "short_one"):
        if f" {name}" in out:
            failures.append(f"function size check: reported `{name}`; output:\n{out}")
    expect(
        "functions within the limit",
        0,
        run(a.script, a.nm, a.src, "--target", sizes, "--size", "sizes",
            "--max-function-lines", "7"),
        ["no function over 7 lines without a reason"],
    )
    expect("no check asked for", 2, run(a.script, a.nm, a.src), ["nothing to check"])
    for f in failures:
        print(f"FAIL {f}")
    if not failures:
        print("check_layers.py: fails on every fault of fixture_bad, passes on fixture_good")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
