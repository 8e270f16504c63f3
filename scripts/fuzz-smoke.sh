#!/usr/bin/env bash
# Fuzz smoke run: builds every libFuzzer target of fuzz/ (clang, ASan + UBSan)
# in build/fuzz and runs each for FUZZ_SECONDS (default 30) over its seed
# corpus fuzz/corpus/<name> (new inputs go to build/fuzz/corpus/<name>, the
# repository's seeds are only read). Exits non-zero if any target finds a
# crash, a leak, a timeout or an out-of-memory; the reproducer is left under
# build/fuzz/crashes/<name>/ and the log under build/fuzz/logs/<name>.log.
# The per-input timeout is a generous 60 s (inputs take milliseconds) so that a
# loaded, shared CI machine does not report stalls as hangs.
# Idempotent: installs clang and its fuzzer runtime when missing.
# Usage: scripts/fuzz-smoke.sh            FUZZ_SECONDS=120 scripts/fuzz-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
build=build/fuzz

scripts/install-deps.sh  # cmake, ninja and the libraries the configure step looks for

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "fuzz-smoke: installing ${missing[*]}"
  local sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
apt_install clang
# libFuzzer and the sanitizer runtimes come with compiler-rt of the same major version as clang.
clang_major=$(clang++ --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)
apt_install "libclang-rt-${clang_major}-dev"

start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ -DQILIN_FUZZ=ON \
  -DQILIN_CUDA=OFF -DQILIN_BUILD_TESTS=OFF -DQILIN_BUILD_BENCH=OFF -DQILIN_BUILD_TOOLS=OFF >/dev/null
cmake --build "$build" --target qilin_fuzz_all -j "$(nproc)"
echo "fuzz-smoke: built in $(($(date +%s) - start)) s; running each target for ${seconds} s"

status=0
mkdir -p "$build/logs"
for exe in "$build"/fuzz/qilin_fuzz_*; do
  name=${exe##*/qilin_fuzz_}
  seeds=fuzz/corpus/$name
  corpus=$build/corpus/$name
  mkdir -p "$corpus" "$build/crashes/$name"
  args=(-max_total_time="$seconds" -timeout=60 -print_final_stats=1 -artifact_prefix="$build/crashes/$name/")
  [ -f "fuzz/$name.dict" ] && args+=(-dict="fuzz/$name.dict")
  dirs=("$corpus")
  if [ -d "$seeds" ]; then dirs+=("$seeds"); else echo "fuzz-smoke: warning: no seed corpus $seeds"; fi
  log=$build/logs/$name.log
  if "$exe" "${args[@]}" "${dirs[@]}" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
    grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -n 20 || true
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2)
  echo "fuzz-smoke: $name: $result, ${runs:-?} runs, ${rate:-?} exec/s, coverage ${cov:-?} edges, corpus $(ls "$corpus" | wc -l) new + seeds (log $log)"
done
echo "fuzz-smoke: done in $(($(date +%s) - start)) s"
exit $status
