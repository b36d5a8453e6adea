#!/bin/sh
# check_no_allocator.sh PROGRAM...: no shipped program defines malloc & co. (the
# allocation-failure injector is liblamina_failalloc.so, preloaded only where a sweep runs).
set -eu
fail=0
for prog in "$@"; do
  defined=$(nm -D --defined-only "$prog" | awk '{print $NF}' |
    grep -Ex 'malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign|valloc|pvalloc' |
    tr '\n' ' ' || true)
  if [ -n "$defined" ]; then
    echo "FAIL $prog exports $defined"
    fail=1
  else
    echo "ok: $prog exports no allocator function"
  fi
done
exit $fail
