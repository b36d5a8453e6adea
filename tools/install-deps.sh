#!/bin/sh
# Installs what a fresh Debian 12 machine lacks to build and test Lamina (run as root).
# Does nothing when everything is already there.
set -eu
pkgs="build-essential cmake pkg-config libopenblas-dev libcriterion-dev libjansson-dev
      libisal-dev zlib1g-dev clang clang-format binutils python3 python3-numpy python3-sklearn
      mesa-vulkan-drivers libvulkan-dev glslc spirv-tools vulkan-validationlayers
      openmpi-bin libopenmpi-dev libdnnl-dev"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install-deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing
fi
