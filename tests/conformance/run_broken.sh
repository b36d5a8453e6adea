#!/bin/sh
# run_broken.sh LAMINA PLUGIN CHECK FINDING: `lamina conform PLUGIN` must exit with status 1,
# report CHECK as FAIL, and say FINDING (an extended regex) about it.
set -u
lamina=$1
plugin=$2
check=$3
finding=$4
out=$("$lamina" conform "$plugin" --seed 3 2>/dev/null)
rc=$?
echo "$out"
if [ "$rc" != 1 ]; then
  echo "run_broken: expected exit status 1, got $rc"
  exit 1
fi
line=$(echo "$out" | grep -E "^FAIL $check( |$)" | head -n 1)
if [ -z "$line" ]; then
  echo "run_broken: $check is not reported as FAIL"
  exit 1
fi
# The finding may be on the FAIL line or on its expected/found lines.
block=$(echo "$out" | awk -v c="$check" '$1 == "FAIL" && $2 == c { p = 1; print; next }
  p && /^       / { print; next } { p = 0 }')
if ! echo "$block" | grep -Eq "$finding"; then
  echo "run_broken: $check fails, but not with '$finding'"
  exit 1
fi
repro=$(echo "$block" | grep -E "repro: +lamina conform .* --seed 3 --filter $check" | head -n 1)
if [ -z "$repro" ]; then
  echo "run_broken: no reproduction command for $check"
  exit 1
fi
echo "ok: $check fails with '$finding'"
