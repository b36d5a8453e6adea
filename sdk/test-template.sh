#!/bin/sh
# test-template.sh BUILD_DIR: installs the Lamina built in BUILD_DIR into a temporary prefix,
# checks the installed layout, builds sdk/template out of tree against it twice (CMake's
# find_package(lamina), then pkg-config with the template's Makefile) and runs
# `lamina conform` on each result. Exit status 0 when everything passes.
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
cmake=${CMAKE:-cmake}
work=$(mktemp -d "${TMPDIR:-/tmp}/lamina-sdk-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix

step() { printf '\n== %s\n' "$*"; }

step "install $build into $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" || {
  cat "$work/install.log"; exit 1; }
missing=0
for f in bin/lamina lib/liblamina.so include/lamina/lamina.h include/lamina/plugin.h \
         include/lamina/common.h lib/pkgconfig/lamina.pc lib/cmake/lamina/lamina-config.cmake \
         lib/cmake/lamina/lamina-config-version.cmake share/lamina/plugin.exports \
         lib/lamina/plugins/lamina_backend_cpu.so lib/lamina/plugins/lamina_layer_dense.so \
         share/lamina/template/mylayer.c; do
  if [ ! -e "$prefix/$f" ]; then
    echo "missing from the install: $f"
    missing=1
  fi
done
[ $missing = 0 ] || exit 1
# The installed CLI finds its installed plugins without any environment.
env -u LAMINA_PLUGIN_PATH "$prefix/bin/lamina" plugins >"$work/plugins.txt" || {
  cat "$work/plugins.txt"; exit 1; }
grep -q "lamina_layer_dense.so" "$work/plugins.txt"

step "template with find_package(lamina)"
cp -R "$here/template" "$work/src-cmake"
"$cmake" -S "$work/src-cmake" -B "$work/build-cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS=-Werror >"$work/cmake.log" 2>&1 || {
  cat "$work/cmake.log"; exit 1; }
"$cmake" --build "$work/build-cmake" >"$work/cmake-build.log" 2>&1 || {
  cat "$work/cmake-build.log"; exit 1; }
"$prefix/bin/lamina" conform "$work/build-cmake/lamina_layer_mylayer.so" --seed 5
(cd "$work/build-cmake" && ctest --output-on-failure >"$work/ctest.log" 2>&1) || {
  cat "$work/ctest.log"; exit 1; }
if readelf -d "$work/build-cmake/lamina_layer_mylayer.so" | grep -q 'NEEDED.*liblamina'; then
  echo "the template plugin links liblamina"
  exit 1
fi

step "template with pkg-config (Makefile)"
cp -R "$here/template" "$work/src-make"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" make -C "$work/src-make" CFLAGS="-O2 -g -Werror" \
  >"$work/make.log" 2>&1 || { cat "$work/make.log"; exit 1; }
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" make -C "$work/src-make" --no-print-directory conform

step "ok: the template builds out of tree with CMake and pkg-config and passes lamina conform"
