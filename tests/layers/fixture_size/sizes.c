/* tests/layers/selftest.py: the size check with --max-function-lines 6 must name `unexplained`
 * (seven long, no reason), and neither `explained` (as long, its comment says why) nor
 * `short_one`. Not compiled. */

/* Adds one to four. */
int unexplained(int n) {
    n += 1;
    n += 2;
    n += 3;
    n += 4;
    return n;
}

/* Seven lines on purpose: one line per step, to read beside the table it follows. */
int explained(int n) {
    n += 1;
    n += 2;
    n += 3;
    n += 4;
    return n;
}

static int short_one(int n) {
    return n;
}
