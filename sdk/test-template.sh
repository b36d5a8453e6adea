#!/bin/sh
# test-template.sh BUILD_DIR: the SDK as a distribution packager and a plugin author meet it.
#
# Lamina, configured like BUILD_DIR (build type, sanitizers) but for a Debian-style multiarch
# layout (-DCMAKE_INSTALL_LIBDIR=lib/<triplet>), is installed with `cmake --install` by component
# (runtime, development, examples) into a temporary prefix: the layout and the split are
# checked, then lamina.pc and the CMake package (an application linked each way; a plugin gets
# the same compile flags each way). The installed template is then built out of tree twice,
# with CMake's find_package(lamina) and with pkg-config (its Makefile); each plugin is installed
# (`cmake --install`, `make install`) into the directory the installed Lamina searches, must be
# listed as loaded by the installed `lamina plugins` without LAMINA_PLUGIN_PATH, and must pass
# `lamina conform` there. Installing into a directory of one's own plus LAMINA_PLUGIN_PATH is
# checked too. Exit status 0 when everything passes.
#
# When BUILD_DIR itself is configured with CMAKE_INSTALL_LIBDIR=lib/<triplet> it is installed
# directly; otherwise the multiarch build lives in BUILD_DIR/sdk-multiarch (kept, so the next
# run only rebuilds what changed).
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
cmake=${CMAKE:-cmake}
work=$(mktemp -d "${TMPDIR:-/tmp}/lamina-sdk-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*"; exit 1; }
run_logged() { # LOG CMD...: runs CMD, shows LOG only when it fails
  log=$1; shift
  "$@" >"$log" 2>&1 || { cat "$log"; fail "$*"; }
}
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }

triplet=$(${CC:-cc} -print-multiarch 2>/dev/null || true)
[ -n "$triplet" ] || triplet=x86_64-linux-gnu
libdir=lib/$triplet

# An application linking a sanitized liblamina must load the sanitizer runtime first.
app_sanitize=
case $(cache_value LAMINA_SANITIZE) in
  ON|on|1|TRUE|true|YES|yes) app_sanitize=-fsanitize=address,undefined ;;
esac

if [ "$(cache_value CMAKE_INSTALL_LIBDIR)" = "$libdir" ]; then
  lbuild=$build
else
  lbuild=$build/sdk-multiarch
  step "configure and build Lamina for $libdir in $lbuild"
  run_logged "$work/configure.log" "$cmake" -S "$src" -B "$lbuild" \
    -DCMAKE_INSTALL_LIBDIR="$libdir" -DCMAKE_BUILD_TYPE="$(cache_value CMAKE_BUILD_TYPE)" \
    -DLAMINA_SANITIZE="$(cache_value LAMINA_SANITIZE)" \
    -DLAMINA_BUILD_TESTS=OFF -DLAMINA_BUILD_BENCH=OFF
  run_logged "$work/build.log" "$cmake" --build "$lbuild" -j"${LAMINA_JOBS:-2}"
fi

prefix=$work/usr
plugindir=$prefix/$libdir/lamina/plugins
step "install $lbuild into $prefix by component (runtime, development, examples)"
for c in runtime development examples; do
  run_logged "$work/install-$c.log" "$cmake" --install "$lbuild" --prefix "$prefix" --component "$c"
done
missing=0
for f in bin/lamina "$libdir/liblamina.so" "$libdir/liblamina.so.0" include/lamina/lamina.h \
         include/lamina/plugin.h include/lamina/common.h include/lamina/version.h \
         "$libdir/pkgconfig/lamina.pc" "$libdir/cmake/lamina/lamina-config.cmake" \
         "$libdir/cmake/lamina/lamina-config-version.cmake" \
         "$libdir/cmake/lamina/lamina-targets.cmake" share/lamina/plugin.exports \
         "$libdir/lamina/plugins/lamina_backend_cpu.so" "$libdir/lamina/plugins/lamina_layer_dense.so" \
         "$libdir/lamina/plugins/lamina_layer_mydense.so" share/lamina/template/mylayer.c \
         share/doc/lamina/LICENSE; do
  [ -e "$prefix/$f" ] || { echo "missing from the install: $f"; missing=1; }
done
[ $missing = 0 ] || fail "the installed layout"
# Nothing lands in plain lib/ when the libdir is lib/<triplet>.
stray=$(cd "$prefix/lib" && find . -mindepth 1 -maxdepth 1 ! -name "$triplet")
[ -z "$stray" ] || fail "installed into lib/ instead of $libdir: $stray"
if readelf -d "$prefix/bin/lamina" | grep -q 'R.*PATH.*\$ORIGIN/\.\./'"$libdir"; then :; else
  readelf -d "$prefix/bin/lamina" | grep PATH || true
  fail "bin/lamina has no \$ORIGIN/../$libdir run path"
fi

# The components split the install: together they are exactly the full install.
run_logged "$work/install-all.log" "$cmake" --install "$lbuild" --prefix "$work/all"
(cd "$work/all" && find . | sort) >"$work/all.txt"
(cd "$prefix" && find . | sort) >"$work/components.txt"
diff -u "$work/all.txt" "$work/components.txt" ||
  fail "files installed by the full install but by no component (or the reverse)"
# runtime alone: the CLI, liblamina.so.N and the system plugins; no development files, no
# tutorial plugins.
rt=$work/runtime
run_logged "$work/install-rt.log" "$cmake" --install "$lbuild" --prefix "$rt" --component runtime
for f in bin/lamina "$libdir/liblamina.so.0" "$libdir/lamina/plugins/lamina_layer_dense.so" \
         share/doc/lamina/LICENSE; do
  [ -e "$rt/$f" ] || fail "the runtime component lacks $f"
done
for f in "$libdir/liblamina.so" include "$libdir/pkgconfig" "$libdir/cmake" share/lamina \
         "$libdir/lamina/plugins/lamina_layer_mydense.so" \
         "$libdir/lamina/plugins/lamina_layer_centered.so"; do
  [ ! -e "$rt/$f" ] || fail "the runtime component installs $f"
done
env -u LAMINA_PLUGIN_PATH "$rt/bin/lamina" plugins >"$work/rt-plugins.txt" 2>&1 ||
  { cat "$work/rt-plugins.txt"; fail "lamina plugins (runtime component only)"; }
grep -Eq '^lamina_layer_dense\.so .* loaded ' "$work/rt-plugins.txt" ||
  { cat "$work/rt-plugins.txt"; fail "the runtime-only install does not load its plugins"; }

step "lamina.pc and the CMake package"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
unset LAMINA_PLUGIN_PATH
header_version=$(sed -n 's/^#define LAMINA_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' \
  "$prefix/include/lamina/version.h" | paste -sd. -)
[ "$(pkg-config --modversion lamina)" = "$header_version" ] ||
  fail "lamina.pc has version $(pkg-config --modversion lamina), lamina/version.h $header_version"
[ "$(pkg-config --variable=plugindir lamina)" = "$plugindir" ] ||
  fail "plugindir is $(pkg-config --variable=plugindir lamina), expected $plugindir"
[ "$(pkg-config --variable=libdir lamina)" = "$prefix/$libdir" ] ||
  fail "libdir is $(pkg-config --variable=libdir lamina), expected $prefix/$libdir"
case "$(pkg-config --libs lamina)" in
  *rpath*) fail "pkg-config --libs lamina carries a run path: $(pkg-config --libs lamina)" ;;
esac
cat >"$work/app.c" <<'APP'
#include <stdio.h>
#include <string.h>
#include <lamina/lamina.h>
int main(void) {
    int major, minor, patch;
    const char *v = lam_version(&major, &minor, &patch);
    if (strcmp(v, LAMINA_VERSION_STRING) != 0 || major != LAMINA_VERSION_MAJOR ||
        minor != LAMINA_VERSION_MINOR || patch != LAMINA_VERSION_PATCH) {
        printf("library %s, headers %s\n", v, LAMINA_VERSION_STRING);
        return 1;
    }
    printf("%s\n", v);
    return 0;
}
APP
# shellcheck disable=SC2046
run_logged "$work/app-pc.log" ${CC:-cc} -Werror $app_sanitize -o "$work/app-pc" "$work/app.c" \
  $(pkg-config --cflags --libs lamina)
LD_LIBRARY_PATH="$prefix/$libdir" "$work/app-pc" >"$work/app-pc.txt" ||
  { cat "$work/app-pc.txt"; fail "application built with pkg-config"; }
[ "$(cat "$work/app-pc.txt")" = "$header_version" ] || fail "lam_version() says $(cat "$work/app-pc.txt")"

# A CMake project: an application on lamina::lamina, and a plugin whose compile flags must be
# exactly pkg-config's plugin_cflags (one C dialect, whichever way a plugin is built).
mkdir "$work/probe"
cp "$work/app.c" "$work/probe/app.c"
printf '#include <lamina/plugin.h>\n' >"$work/probe/probe.c"
cat >"$work/probe/CMakeLists.txt" <<'PROBE'
cmake_minimum_required(VERSION 3.20)
project(probe LANGUAGES C)
find_package(lamina REQUIRED)
add_executable(app app.c)
target_link_libraries(app PRIVATE lamina::lamina)
lamina_add_plugin(layer probe SOURCES probe.c)
file(WRITE ${CMAKE_BINARY_DIR}/plugin_dir.txt "${LAMINA_PLUGIN_DIR}")
PROBE
run_logged "$work/probe.log" "$cmake" -S "$work/probe" -B "$work/probe/build" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DCMAKE_EXE_LINKER_FLAGS="$app_sanitize"
run_logged "$work/probe-build.log" "$cmake" --build "$work/probe/build" --target app
"$work/probe/build/app" >"$work/app-cmake.txt" ||
  { cat "$work/app-cmake.txt"; fail "application built with find_package(lamina)"; }
[ "$(cat "$work/probe/build/plugin_dir.txt")" = "$plugindir" ] ||
  fail "LAMINA_PLUGIN_DIR is $(cat "$work/probe/build/plugin_dir.txt"), expected $plugindir"
cmd=$(sed -n 's/^ *"command": "\(.*probe\.c\)",*$/\1/p' "$work/probe/build/compile_commands.json")
[ -n "$cmd" ] || fail "no compile command for probe.c in compile_commands.json"
cmake_flags=$(
  skip=1
  # shellcheck disable=SC2086
  for t in $cmd; do
    if [ $skip = 1 ]; then skip=0; continue; fi
    case $t in
      -o|-c|-isystem|-I) skip=1 ;;
      -I*|*probe.c) ;;
      *) echo "$t" ;;
    esac
  done | sort)
pc_flags=$(for t in $(pkg-config --variable=plugin_cflags lamina); do echo "$t"; done | sort)
if [ "$cmake_flags" != "$pc_flags" ]; then
  echo "lamina_add_plugin compiles with:"; echo "$cmake_flags"
  echo "pkg-config plugin_cflags:"; echo "$pc_flags"
  fail "a plugin gets different compile flags from CMake and from pkg-config"
fi
echo "plugin flags, CMake and pkg-config alike:" $pc_flags

loaded_without_path() { # LABEL: the installed lamina lists the template's plugin as loaded
  env -u LAMINA_PLUGIN_PATH "$prefix/bin/lamina" plugins >"$work/plugins.txt" 2>&1 ||
    { cat "$work/plugins.txt"; fail "$1: lamina plugins"; }
  grep -Eq '^lamina_layer_mylayer\.so +layer +MyLayer .* loaded ' "$work/plugins.txt" ||
    { cat "$work/plugins.txt"; fail "$1: the installed lamina does not load lamina_layer_mylayer.so"; }
}

step "the installed template with find_package(lamina)"
cp -R "$prefix/share/lamina/template" "$work/src-cmake"
run_logged "$work/cmake.log" "$cmake" -S "$work/src-cmake" -B "$work/build-cmake" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS=-Werror
run_logged "$work/cmake-build.log" "$cmake" --build "$work/build-cmake"
if readelf -d "$work/build-cmake/lamina_layer_mylayer.so" | grep -q 'NEEDED.*liblamina'; then
  fail "the template plugin links liblamina"
fi
(cd "$work/build-cmake" && ctest --output-on-failure >"$work/ctest.log" 2>&1) ||
  { cat "$work/ctest.log"; fail "the template's ctest (lamina conform)"; }
run_logged "$work/cmake-install.log" "$cmake" --install "$work/build-cmake"
[ -f "$plugindir/lamina_layer_mylayer.so" ] ||
  { cat "$work/cmake-install.log"; fail "cmake --install did not put the plugin into $plugindir"; }
loaded_without_path "cmake --install"
env -u LAMINA_PLUGIN_PATH "$prefix/bin/lamina" conform "$plugindir/lamina_layer_mylayer.so" --seed 5
rm "$plugindir/lamina_layer_mylayer.so"
# A directory of one's own, named at configure time, plus LAMINA_PLUGIN_PATH.
run_logged "$work/cmake-own.log" "$cmake" -S "$work/src-cmake" -B "$work/build-cmake" \
  -DLAMINA_PLUGIN_INSTALL_DIR="$work/own-plugins"
run_logged "$work/cmake-install-own.log" "$cmake" --install "$work/build-cmake"
[ -f "$work/own-plugins/lamina_layer_mylayer.so" ] && [ ! -e "$plugindir/lamina_layer_mylayer.so" ] ||
  fail "LAMINA_PLUGIN_INSTALL_DIR=$work/own-plugins was not honoured"
LAMINA_PLUGIN_PATH="$work/own-plugins" "$prefix/bin/lamina" plugins >"$work/own.txt" 2>&1
grep -Eq '^lamina_layer_mylayer\.so +layer +MyLayer .* loaded ' "$work/own.txt" ||
  { cat "$work/own.txt"; fail "a plugin in LAMINA_PLUGIN_PATH is not loaded"; }

step "the installed template with pkg-config (Makefile)"
cp -R "$prefix/share/lamina/template" "$work/src-make"
run_logged "$work/make.log" make -C "$work/src-make" CFLAGS="-O2 -g -Werror"
if readelf -d "$work/src-make/lamina_layer_mylayer.so" | grep -q 'NEEDED.*liblamina'; then
  fail "the template plugin (pkg-config) links liblamina"
fi
run_logged "$work/make-install.log" make -C "$work/src-make" install
[ -f "$plugindir/lamina_layer_mylayer.so" ] ||
  { cat "$work/make-install.log"; fail "make install did not put the plugin into $plugindir"; }
loaded_without_path "make install"
env -u LAMINA_PLUGIN_PATH "$prefix/bin/lamina" conform "$plugindir/lamina_layer_mylayer.so" --seed 5
make -C "$work/src-make" --no-print-directory conform >"$work/make-conform.log" 2>&1 ||
  { cat "$work/make-conform.log"; fail "make conform"; }

step "ok: installed for $libdir by component; the template builds with CMake and pkg-config with the same flags, installs where the installed lamina finds it, and passes lamina conform"
