#!/bin/sh
# Builds the libFuzzer target with clang in its own build directory and runs it for a bounded
# time on the committed seed corpus (and the regressions).
#
#   tests/fuzz/run.sh SECONDS [BUILD_DIR]      (default BUILD_DIR: <repo>/build-fuzz)
#
# New interesting inputs go to BUILD_DIR/fuzz-corpus (never into the committed corpus). A crash,
# leak or timeout stops the run with exit status 1 and leaves BUILD_DIR/fuzz-artifacts/crash-*:
# copy that file into tests/fuzz/regressions/ so the Criterion suite keeps checking it.
set -eu
secs=${1:?usage: tests/fuzz/run.sh SECONDS [BUILD_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${2:-$root/build-fuzz}
cc=${FUZZ_CC:-clang}
command -v "$cc" >/dev/null || { echo "run.sh: $cc not found (apt-get install clang)" >&2; exit 2; }

mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLAMINA_FUZZ=ON >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 2; }
cmake --build "$build" --target fuzz_load -j"$(nproc)"

work="$build/fuzz-corpus"
art="$build/fuzz-artifacts"
mkdir -p "$work" "$art"
status=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$build/bin/fuzz_load" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -max_len=65536 -print_final_stats=1 -artifact_prefix="$art/" -dict="$here/safetensors.dict" \
  "$work" "$here/corpus" "$here/regressions" || status=$?
if [ "$status" -ne 0 ]; then
  echo "run.sh: the fuzzer found a problem (exit $status); inputs in $art:" >&2
  ls -l "$art" >&2
  echo "run.sh: copy each into tests/fuzz/regressions/ and fix the loader" >&2
  exit 1
fi
echo "run.sh: no crash in $secs s"
