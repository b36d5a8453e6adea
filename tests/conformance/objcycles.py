#!/usr/bin/env python3
"""objcycles.py DIR...: the call graph between object files (from `nm`), and its cycles.

Run by ctest (conform_structure) on the objects of `lamina conform`: no two of its files may
call each other (issue 13); a diagnostics file at the bottom, the runner below the command.

Each *.o under DIR is a node; A -> B when A uses a symbol that B alone defines. Prints every
strongly connected component of more than one file, one line each, and exits 1 if there is any.
"""
import subprocess, sys, os, collections

def objs(dirs):
    for d in dirs:
        for root, _, files in os.walk(d):
            for f in files:
                if f.endswith('.o'):
                    yield os.path.join(root, f)

def syms(o):
    out = subprocess.run(['nm', '--defined-only', '-g', o], capture_output=True, text=True).stdout
    defined = {l.split()[-1] for l in out.splitlines() if len(l.split()) >= 3}
    out = subprocess.run(['nm', '-u', o], capture_output=True, text=True).stdout
    undef = {l.split()[-1] for l in out.splitlines() if l.strip()}
    return defined, undef

def main():
    files = sorted(objs(sys.argv[1:]))
    if not files:
        print('no object files'); return 2
    d, u = {}, {}
    for f in files:
        d[f], u[f] = syms(f)
    owner = collections.defaultdict(list)
    for f in files:
        for s in d[f]:
            owner[s].append(f)
    g = {f: set() for f in files}
    for f in files:
        for s in u[f]:
            if len(owner.get(s, [])) == 1 and owner[s][0] != f:
                g[f].add(owner[s][0])
    idx, low, st, on, comps, n = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def sc(v):
        idx[v] = low[v] = n[0]; n[0] += 1; st.append(v); on.add(v)
        for w in g[v]:
            if w not in idx:
                sc(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            c = []
            while True:
                w = st.pop(); on.discard(w); c.append(w)
                if w == v: break
            if len(c) > 1: comps.append(c)
    for v in files:
        if v not in idx: sc(v)
    name = lambda p: os.path.basename(p).replace('.c.o', '.c')
    for c in comps:
        print('cycle of %d: %s' % (len(c), ' '.join(sorted(name(x) for x in c))))
    print('%d object files, %d cycles' % (len(files), len(comps)))
    return 1 if comps else 0

sys.exit(main())
