#!/usr/bin/env bash
# The main job, from a fresh checkout: installs dependencies, builds the
# release preset, then runs the kernel self-check (every ISA level and matmul
# path against the scalar reference) and the headline kernel benchmarks.
# (Text generation with SmolLM2 replaces this once the models land.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
build/release/tools/qilin-selfcheck -t "$(nproc)"
build/release/bench/qilin_bench_kernels --benchmark_min_time=0.2 \
  --benchmark_filter='roofline|matmul/.*/(576x1536|896x4864)/m:(1|512)/' "$@"
