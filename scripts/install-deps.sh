#!/usr/bin/env bash
# Installs what Qilin needs to build and test, from Debian packages (and PyPI
# for the Python reference tools). Idempotent: a second run only checks.
# CUDA is optional and taken from /usr/local/cuda when present.
set -euo pipefail

debian_packages=(
  build-essential cmake ninja-build git pkg-config python3 python3-pip
  libeigen3-dev libdnnl-dev libfmt-dev catch2 libbenchmark-dev nlohmann-json3-dev
  qemu-user  # runs the test suite on an emulated CPU without AVX2 (tests/no_avx2)
)

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: Debian packages ready"
