#!/bin/sh
# check_frozen_headers.sh SRC: tests/abi/v2.0/lamina/ holds the ABI 2.0 headers verbatim, the
# copy the frozen-ABI plugin (v2.0/frozen_layer.c) is built against. While the SDK headers still
# say ABI 2.0 they must be byte for byte that copy: changing a 2.0 header after the freeze is an
# ABI break (add to a new minor instead, and leave the copy as it is).
set -eu
src=$1
minor=$(sed -n 's/^#define LAM_ABI_VERSION_MINOR \([0-9]*\)$/\1/p' "$src/sdk/include/lamina/common.h")
major=$(sed -n 's/^#define LAM_ABI_VERSION_MAJOR \([0-9]*\)$/\1/p' "$src/sdk/include/lamina/common.h")
if [ "$major.$minor" != 2.0 ]; then
  echo "ok: the SDK is at ABI $major.$minor; tests/abi/v2.0 stays the frozen 2.0 copy"
  exit 0
fi
status=0
for h in common.h plugin.h; do
  if ! cmp -s "$src/sdk/include/lamina/$h" "$src/tests/abi/v2.0/lamina/$h"; then
    echo "sdk/include/lamina/$h differs from its frozen ABI 2.0 copy tests/abi/v2.0/lamina/$h:"
    diff -u "$src/tests/abi/v2.0/lamina/$h" "$src/sdk/include/lamina/$h" | head -40
    status=1
  fi
done
[ $status = 0 ] && echo "ok: tests/abi/v2.0 is the ABI 2.0 headers verbatim"
exit $status
