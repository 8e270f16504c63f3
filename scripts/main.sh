#!/usr/bin/env bash
# The main job, from a fresh checkout: installs dependencies, fetches the default
# model (SmolLM2-135M-Instruct, Q4_1 GGUF; scripts/fetch-model.sh checks its sha256),
# builds the release preset and asks the model a question through qilin-generate.
# Extra arguments go to qilin-generate, e.g.  scripts/main.sh -p "Tell me a joke" -n 64
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
model=$(scripts/fetch-model.sh)
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
prompt="What is the capital of France, and what is it famous for?"
build/release/tools/qilin-generate -m "$model" -i -p "$prompt" -n 128 --temp 0 "$@" </dev/null
