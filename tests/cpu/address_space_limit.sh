#!/bin/sh
# address_space_limit.sh LAMINA_BIN SANITIZED - `lamina train` under `ulimit -v` (issue 11,
# item 13). OpenBLAS allocates a 128 MiB GEMM buffer per thread and retries for ever when that
# fails, so before the fix these runs hung. Now the CPU backend checks the room first:
#  - 150 MB: not even one buffer fits: the cpu device is refused with the reason, exit 1;
#  - 300 MB, 2 threads asked: one thread's buffers fit: OpenBLAS runs 1 thread, says so, and
#    training completes.
# Each run is bounded by `timeout`: a hang is exit status 124 and fails the test.
lamina=$1
if [ "$2" = 1 ]; then
    echo "skipped: a sanitizer build reserves terabytes of address space; ulimit -v cannot apply"
    exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail() {
    echo "FAIL: $1"
    cat "$out"
    exit 1
}

(ulimit -v 150000 && exec timeout 60 "$lamina" train --epochs 1 --backend cpu) >"$out" 2>&1
rc=$?
[ $rc -eq 124 ] && fail "150 MB: lamina train hung (killed by timeout after 60 s)"
[ $rc -eq 1 ] || fail "150 MB: exit status $rc, expected 1"
grep -q "lamina train: cpu: Device unavailable, OpenBLAS needs 128 MiB of address space for its GEMM buffer, and the address-space limit (ulimit -v 150000 KiB) leaves less" "$out" ||
    fail "150 MB: no message naming the limit"

(ulimit -v 300000 && LAMINA_NUM_THREADS=2 LAMINA_LOG=warn exec timeout 120 "$lamina" train \
    --epochs 1 --backend cpu) >"$out" 2>&1
rc=$?
[ $rc -eq 124 ] && fail "300 MB: lamina train hung (killed by timeout after 120 s)"
[ $rc -eq 0 ] || fail "300 MB: exit status $rc, expected 0"
grep -q "cpu: OpenBLAS runs 1 of 2 threads: the address-space limit (ulimit -v 300000 KiB)" "$out" ||
    fail "300 MB: no warning that OpenBLAS runs fewer threads"
grep -q "test accuracy" "$out" || fail "300 MB: training did not report its accuracy"
echo "ok: refused cleanly at 150 MB, trained on 1 thread at 300 MB"
