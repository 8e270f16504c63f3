#!/usr/bin/env bash
# Runs docs/examples/generate_example on SmolLM2-135M-Instruct and checks the answer.
# Model: $QILIN_SMOLLM2_GGUF, else the cache of scripts/fetch-model.sh. Exit code 4
# (ctest: skipped) when the model has not been fetched.
set -uo pipefail
example=$1
model=${QILIN_SMOLLM2_GGUF:-${QILIN_MODEL_DIR:-$HOME/.cache/qilin/models}/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ ! -f "$model" ]; then
  echo "SKIPPED: $model not found; run scripts/fetch-model.sh"
  exit 4
fi
out=$("$example" "$model" "Which city is the capital of France?") || { echo "the example failed"; exit 1; }
echo "example printed: $out"
case "$out" in
  *Paris*) exit 0 ;;
  *) echo "the answer does not mention Paris"; exit 1 ;;
esac
