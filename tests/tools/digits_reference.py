#!/usr/bin/python3
"""Reference numbers for test_train's digits checks, computed from sklearn's copy of the UCI
digits independently of Lamina's C reader: the pixel total (0..16 values), the label counts of
the whole file, and those of the 360-image test split that tools/data.c makes with its fixed
Fisher-Yates shuffle (splitmix64, seed 20150), re-implemented here.

Run: /usr/bin/python3 tests/tools/digits_reference.py > tests/tools/data/digits_reference.txt
"""
import gzip

PATH = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
M = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return state, z ^ (z >> 31)


rows = [[int(float(v)) for v in line.split(",")]
        for line in gzip.open(PATH, "rt") if line.strip()]
assert len(rows) == 1797 and all(len(r) == 65 for r in rows)
order = list(range(len(rows)))
s = 20150
for i in range(len(rows) - 1, 0, -1):
    s, r = splitmix64(s)
    j = r % (i + 1)
    order[i], order[j] = order[j], order[i]
test = [rows[k] for k in order[1437:]]
print("pixel_total", sum(sum(r[:64]) for r in rows))
print("labels", " ".join(str(sum(r[64] == c for r in rows)) for c in range(10)))
print("test_labels", " ".join(str(sum(r[64] == c for r in test)) for c in range(10)))
print("test_first_pixels", " ".join(str(v) for v in test[0][:64]), "label", test[0][64])
