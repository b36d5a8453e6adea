#!/bin/sh
# peer_crash.sh SOURCE_DIR BUILD_DIR - bench/run with a peer that dies of SIGILL (issue 19,
# item 1): the case is FAILED, the run exits 1 and never says "OK, every case ran"; both when
# the peer dies during a case and when it dies before answering at all.
src=$1
build=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() {
    echo "FAIL: $1"
    cat "$out/log"
    exit 1
}
for when in case start; do
    FAKE_PEER_CRASH=$when "$src/bench/run" --smoke --only forward --out "$out" \
        --peer "torch=$src/tests/bench/crashing_peer.py" "$build" >"$out/log" 2>&1
    rc=$?
    [ $rc -eq 1 ] || fail "crash at $when: exit status $rc, expected 1"
    grep -q "OK, every case ran" "$out/log" && fail "crash at $when: reported OK"
    grep -q "killed by SIGILL (status -4)" "$out/log" || fail "crash at $when: no SIGILL named"
    grep -q "^- \*\*mlp_forward_1t: FAILED\*\* (torch-1t-.* killed by SIGILL" "$out/RESULTS.md" ||
        fail "crash at $when: RESULTS.md does not mark mlp_forward_1t FAILED"
done
echo "ok: a crashing peer fails its case and the run"
