#!/bin/sh
# test-asan-plugin.sh BUILD_DIR: installs the Lamina built in BUILD_DIR into a temporary prefix
# and checks what `lamina conform` promises about allocators:
#  - the installed `lamina` defines no malloc/free of its own (nm -D);
#  - its allocation-failure sweep finds the installed injector (<libexecdir>/lamina) and runs;
#  - a plugin built out of tree with -fsanitize=address (sdk/template/mylayer.c) conforms with
#    the ordinary `lamina` started as LD_PRELOAD=libasan.so lamina conform PLUGIN, and ASan
#    really watches it: the same plugin with a heap overflow fails with ASan's report.
# Exit status 0 when all hold, 77 (skip) when the compiler has no libasan.
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
cmake=${CMAKE:-cmake}
cc=${CC:-cc}
libasan=$("$cc" -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
  echo "SKIP: $cc has no libasan.so"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/lamina-asan-plugin-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix
fail() { echo "FAIL: $*"; exit 1; }

"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" || {
  cat "$work/install.log"; exit 1; }
lamina=$prefix/bin/lamina
[ -x "$lamina" ] || fail "no $lamina"
# The library directory is the build's CMAKE_INSTALL_LIBDIR (lib, or lib/<triplet>).
dense=$(find "$prefix" -path '*/lamina/plugins/lamina_layer_dense.so' | head -n 1)
[ -n "$dense" ] || fail "no installed lamina_layer_dense.so"

echo "== the installed lamina exports no allocator"
if nm -D --defined-only "$lamina" | awk '{print $NF}' |
   grep -Ex 'malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign'; then
  fail "$lamina defines allocator functions (above)"
fi

# The SDK's flags for a plugin, plus ASan.
build_plugin() { # OUT SOURCE EXTRA...
  out=$1; src=$2; shift 2
  "$cc" -std=c11 -g -O1 -fPIC -shared -fvisibility=hidden -fsanitize=address \
    -fno-omit-frame-pointer -I"$prefix/include" "$@" \
    -Wl,--version-script="$prefix/share/lamina/plugin.exports" -o "$out" "$src"
}

echo "== a plugin built with -fsanitize=address"
build_plugin "$work/lamina_layer_mylayer.so" "$here/template/mylayer.c"
nm -D "$work/lamina_layer_mylayer.so" | grep -q __asan_report || fail "the plugin is not instrumented"

echo "== without ASan, the installed lamina sweeps allocation failures with its injector"
env -u LD_PRELOAD "$lamina" conform "$dense" \
  --filter Dense.leaks.alloc_failure >"$work/sweep.txt" 2>&1 || { cat "$work/sweep.txt"; exit 1; }
cat "$work/sweep.txt"
grep -Eq '^PASS Dense.leaks.alloc_failure +each of [1-9][0-9]* allocation' "$work/sweep.txt" ||
  fail "the sweep did not run"

echo "== LD_PRELOAD=$libasan lamina conform (ASan-built plugin)"
# With ASan's default options: the host reports no leak of its own at exit (no need for
# detect_leaks=0), and the check processes end with _exit, so LeakSanitizer does not judge them.
LD_PRELOAD=$libasan "$lamina" conform \
  "$work/lamina_layer_mylayer.so" >"$work/asan.txt" 2>&1 || { cat "$work/asan.txt"; fail "exit status $?"; }
cat "$work/asan.txt"
grep -Eq '^PASS MyLayer.grad.finite_diff' "$work/asan.txt" || fail "MyLayer.grad.finite_diff did not pass"
grep -Eq '^SKIP MyLayer.leaks.alloc_failure .*AddressSanitizer owns malloc' "$work/asan.txt" ||
  fail "the sweep must say SKIP under ASan"

echo "== ASan is really watching: a heap overflow in the plugin's create is caught"
build_plugin "$work/lamina_layer_overflow.so" "$here/template/mylayer.c" \
  -include "$here/../tests/conformance/asan_overflow.h"
LD_PRELOAD=$libasan "$lamina" conform \
  "$work/lamina_layer_overflow.so" --filter MyLayer.setup >"$work/overflow.txt" 2>&1 && {
  cat "$work/overflow.txt"; fail "a heap overflow passed"; }
grep -q 'heap-buffer-overflow' "$work/overflow.txt" || { cat "$work/overflow.txt"; fail "no ASan report"; }
grep -Eq '^FAIL MyLayer.setup +.*sanitizer' "$work/overflow.txt" || {
  cat "$work/overflow.txt"; fail "MyLayer.setup must fail naming the sanitizer"; }
echo "ok: an ASan-built plugin conforms under LD_PRELOAD=libasan.so; ASan catches its overflow"
