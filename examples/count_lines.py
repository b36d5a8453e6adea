#!/usr/bin/env python3
"""Counts lines of code as examples/LINES.md does: a line counts when anything but a comment or
white space is left on it once comments are removed (C/C++ /* */ and //, Python #); #include,
`import` and `from ... import` lines do not count.

usage: count_lines.py FILE                   the whole file
       count_lines.py FILE START [END]       from the first line matching regex START to the
                                             first later line matching regex END (default: the
                                             end of the definition START opens: a line `}` or
                                             `};` at column 0, or for Python the next line at
                                             START's indentation or less), both included
"""

import re
import sys


def code_lines(text, python):
    out = []
    in_block = False
    for raw in text.split("\n"):
        line = raw
        if python:
            line = re.sub(r"#.*", "", line)
        else:
            kept = ""
            i = 0
            while i < len(line):
                if in_block:
                    j = line.find("*/", i)
                    if j < 0:
                        i = len(line)
                    else:
                        in_block = False
                        i = j + 2
                elif line.startswith("/*", i):
                    in_block = True
                    i += 2
                elif line.startswith("//", i):
                    break
                else:
                    kept += line[i]
                    i += 1
            line = kept
        out.append((raw, line.strip()))
    return out


def counts(line, python):
    if not line:
        return False
    if python:
        return not re.match(r"(import |from \S+ import )", line)
    return not line.startswith("#include")


def main():
    path = sys.argv[1]
    python = path.endswith(".py")
    lines = code_lines(open(path).read(), python)
    lo, hi = 0, len(lines)
    if len(sys.argv) > 2:
        start = re.compile(sys.argv[2])
        lo = next(i for i, (raw, _) in enumerate(lines) if start.search(raw))
        if len(sys.argv) > 3:
            end = re.compile(sys.argv[3])
            hi = next(i for i in range(lo + 1, len(lines)) if end.search(lines[i][0])) + 1
        elif python:
            ind = len(lines[lo][0]) - len(lines[lo][0].lstrip())
            hi = next((i for i in range(lo + 1, len(lines))
                       if lines[i][1] and len(lines[i][0]) - len(lines[i][0].lstrip()) <= ind),
                      len(lines))
        else:
            hi = next(i for i in range(lo, len(lines)) if re.match(r"^};?\s*$", lines[i][0])) + 1
    print(sum(1 for _, line in lines[lo:hi] if counts(line, python)))


if __name__ == "__main__":
    main()
