#!/bin/sh
# check-template-sync.sh MYDENSE_C MYLAYER_C: sdk/template/mylayer.c must stay the in-tree
# plugins/layers/mydense/mydense.c, renamed. The documented differences, and the only ones
# allowed:
#   - each file's leading block comment (up to the first line ending in "*/") is its own;
#   - each file's descriptor `.doc = "...",` line is its own;
#   - mydense.c's "mydense" / "MyDense" are "mylayer" / "MyLayer" in the template.
# Prints the difference and exits 1 when the files drift apart (fix the one that is behind).
# check-template-sync.sh --self-test MYDENSE_C MYLAYER_C: also proves the check fails on a
# change to either file's code (ctest sdk_template_sync runs this form).
set -eu

normalize() { # FILE RENAME(0|1)
  awk 'body == 0 { if ($0 ~ /\*\/[ \t]*$/) body = 1; next } { print }' "$1" |
    sed -e '/^    \.doc = ".*",$/d' |
    if [ "$2" = 1 ]; then sed -e 's/mydense/mylayer/g' -e 's/MyDense/MyLayer/g'; else cat; fi
}

check() { # MYDENSE_C MYLAYER_C
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/lamina-sync-XXXXXX")
  normalize "$1" 1 >"$tmp/from-mydense.c"
  normalize "$2" 0 >"$tmp/mylayer.c"
  if [ ! -s "$tmp/mylayer.c" ]; then
    echo "$2: no code after the leading comment"
    rm -rf "$tmp"
    return 1
  fi
  if diff -u "$tmp/from-mydense.c" "$tmp/mylayer.c" >"$tmp/diff"; then
    rm -rf "$tmp"
    return 0
  fi
  echo "$2 differs from $1 (renamed MyDense -> MyLayer) beyond the documented differences:"
  sed -e "1s|.*|--- $1 (renamed)|" -e "2s|.*|+++ $2|" "$tmp/diff"
  rm -rf "$tmp"
  return 1
}

if [ "${1:-}" = --self-test ]; then
  [ $# -eq 3 ] || { echo "usage: $0 --self-test MYDENSE_C MYLAYER_C" >&2; exit 2; }
  mydense=$2
  mylayer=$3
  check "$mydense" "$mylayer"
  work=$(mktemp -d "${TMPDIR:-/tmp}/lamina-sync-self-XXXXXX")
  trap 'rm -rf "$work"' EXIT INT TERM
  # Each drift must be caught: a fix to mydense.c not carried over, an edit to the template
  # only, a line dropped from the template, a rename left half done.
  sed -e '0,/return LAM_OK;/s//return LAM_ERR_INTERNAL;/' "$mydense" >"$work/mydense-fixed.c"
  sed -e 's/s->units = units;/s->units = units + 1;/' "$mylayer" >"$work/mylayer-edited.c"
  sed -e '/free(state);/d' "$mylayer" >"$work/mylayer-dropped.c"
  sed -e '0,/mylayer_state/s//mydense_state/' "$mylayer" >"$work/mylayer-half.c"
  for pair in "$work/mydense-fixed.c $mylayer" "$mydense $work/mylayer-edited.c" \
              "$mydense $work/mylayer-dropped.c" "$mydense $work/mylayer-half.c"; do
    # shellcheck disable=SC2086
    set -- $pair
    if cmp -s "$1" "$mydense" && cmp -s "$2" "$mylayer"; then
      echo "self-test: the drift was not made ($pair)"
      exit 1
    fi
    if check "$1" "$2" >/dev/null; then
      echo "self-test: a drift went unnoticed: $pair"
      exit 1
    fi
  done
  echo "ok: $mylayer is $mydense renamed, and each kind of drift is caught"
  exit 0
fi

[ $# -eq 2 ] || { echo "usage: $0 MYDENSE_C MYLAYER_C | --self-test MYDENSE_C MYLAYER_C" >&2; exit 2; }
check "$1" "$2"
echo "ok: $2 is $1 renamed"
