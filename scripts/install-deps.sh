#!/usr/bin/env bash
# Installs what dsa-batch builds against, from Debian/Ubuntu packages. CUDA (nvcc, NCCL) is
# optional and not installed here: where nvcc is found the CUDA backend is built too.
set -euo pipefail
packages=(cmake g++ make libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools
          libboost-program-options-dev nlohmann-json3-dev libgtest-dev
          clang libclang-rt-14-dev)  # clang + libFuzzer/sanitizer runtimes: the fuzz test
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
