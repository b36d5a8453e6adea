#!/bin/sh
# Checks every plugin in a directory: exactly one exported symbol, lamina_plugin_entry, and no
# dependency on liblamina (plugins reach the host only through the host table).
set -eu
dir=$1
n=0
fail=0
for so in "$dir"/lamina_*.so; do
  [ -e "$so" ] || continue
  n=$((n + 1))
  syms=$(nm -D --defined-only "$so" | awk '{print $NF}' | sort | tr '\n' ' ')
  if [ "$syms" != "lamina_plugin_entry " ]; then
    echo "FAIL $so exports: $syms"
    fail=1
  fi
  if readelf -d "$so" | grep -q 'NEEDED.*liblamina'; then
    echo "FAIL $so links liblamina"
    fail=1
  fi
done
if [ "$n" = 0 ]; then
  echo "FAIL no plugins found in $dir"
  exit 1
fi
[ $fail = 0 ] && echo "ok: $n plugins export only lamina_plugin_entry and do not link liblamina"
exit $fail
