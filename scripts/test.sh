#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: installs dependencies, builds
# the release preset with warnings as errors, runs every test, then builds the
# asan preset (AddressSanitizer + UBSan) and runs the suite again under it,
# and finally fuzzes the file-format parsers briefly (scripts/fuzz-smoke.sh).
# Usage: scripts/test.sh
#   QILIN_SKIP_ASAN=1 skips the sanitizer pass, QILIN_SKIP_FUZZ=1 the fuzz run,
#   FUZZ_SECONDS=N sets the fuzz time per target (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The real-model tests run SmolLM2-135M-Instruct (fetched once, sha256-checked, cached).
QILIN_SMOLLM2_GGUF=$(scripts/fetch-model.sh)
export QILIN_SMOLLM2_GGUF

jobs=$(nproc)
status=0

cmake --preset release -DQILIN_WERROR=ON >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs" --timeout 900 || status=1

if [ "${QILIN_SKIP_ASAN:-0}" != 1 ]; then
  cmake --preset asan -DQILIN_WERROR=ON >/dev/null
  cmake --build --preset asan -j "$jobs"
  # The install/consumer test repeats the release one, and ASan's shadow memory does
  # not work under qemu's user-mode emulator: skip both under the sanitizers.
  ctest --preset asan -j "$jobs" --timeout 900 -LE "slow|no_avx2" || status=1
fi
if [ "${QILIN_SKIP_FUZZ:-0}" != 1 ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz-smoke.sh || status=1
fi
exit $status
