#!/usr/bin/env bash
# The quantization accuracy report of docs/performance.md: SmolLM2-135M-Instruct in each
# weight type against its f32 weights, on a fixed English + Chinese text.
#
#   scripts/accuracy-report.sh [BUILD_DIR] [OUT_DIR]
#
# The only SmolLM2 weights this project can fetch are the Q4_1 GGUF (scripts/fetch-model.sh),
# so "f32" is that file dequantized: every other type is quantized from it, and each is
# compared with it (perplexity, KL divergence of the next-token distributions, same top
# token). Prints a Markdown table; the GGUFs land in OUT_DIR (default /tmp/qilin-accuracy).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build/release}"
out="${2:-/tmp/qilin-accuracy}"
threads="${THREADS:-2}"
mkdir -p "$out"

model="$("$here/scripts/fetch-model.sh")"
text="$out/text.txt"
cat "$here/tests/data/text/pride_and_prejudice_ch1.txt" "$here/tests/data/text/zh_essays.txt" >"$text"

f32="$out/smollm2-f32.gguf"
[ -f "$f32" ] || "$build/tools/qilin-quantize" --threads "$threads" "$model" "$f32" f32 >&2

echo "| weights | size (MiB) | bits/weight | PPL | PPL / f32 | mean KL | 99% KL | same top token |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for type in f32 f16 q8_0 q6_k q4_k_m q4_k q4_1 q4_0; do
  file="$out/smollm2-$type.gguf"
  if [ "$type" != f32 ] && [ ! -f "$file" ]; then
    "$build/tools/qilin-quantize" --threads "$threads" "$f32" "$file" "$type" >"$out/$type.quantize.log" 2>&1
  fi
  [ "$type" = f32 ] && file="$f32"
  log="$out/$type.perplexity.log"
  "$build/tools/qilin-perplexity" -m "$file" --kl-reference "$f32" -f "$text" -c 512 --no-bf16 -t "$threads" >"$log" 2>&1
  ppl=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\) +\/- \([0-9.]*\)/\1 ± \2/p' "$log")
  ratio=$(sed -n 's/.*PPL ratio = \([0-9.]*\)/\1/p' "$log")
  kl=$(sed -n 's/^KL divergence: mean \([0-9.]*\) +\/- [0-9.]*, median [0-9.]*, 99% \([0-9.]*\).*/\1 \2/p' "$log")
  top=$(sed -n 's/^Same top token: \(.*\)/\1/p' "$log")
  bytes=$(stat -c %s "$file")
  mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
  # Bits per weight of the whole file (the tokenizer's ~1 MB included) over the model's
  # 134,515,008 parameters.
  bpw=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", 8 * b / 134515008 }')
  echo "| $type | $mib | $bpw | $ppl | $ratio | ${kl% *} | ${kl#* } | $top |"
done
