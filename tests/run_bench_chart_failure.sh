#!/bin/sh
# qilin-bench --chart: a run that produces no results leaves no chart file behind,
# and does not truncate a chart that is already there. $1: the qilin-bench binary.
set -u
bench="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

if "$bench" -m "$dir/missing.gguf" --chart "$dir/new.svg" -p 0 -n 1 -r 1 --dram-mib 0 2>/dev/null; then
  echo "FAIL: qilin-bench succeeded on a missing model"; exit 1
fi
if [ -e "$dir/new.svg" ]; then echo "FAIL: a failed run created $dir/new.svg"; exit 1; fi

echo "<svg>earlier chart</svg>" > "$dir/old.svg"
"$bench" -m "$dir/missing.gguf" --chart "$dir/old.svg" -p 0 -n 1 -r 1 --dram-mib 0 2>/dev/null
if [ "$(cat "$dir/old.svg")" != "<svg>earlier chart</svg>" ]; then
  echo "FAIL: a failed run changed an existing chart"; exit 1
fi

if "$bench" -m "$dir/missing.gguf" --chart "$dir/no/such/dir/c.svg" -p 0 -n 1 2>"$dir/err"; then
  echo "FAIL: an unwritable chart path was accepted"; exit 1
fi
grep -q "cannot write the chart" "$dir/err" || { echo "FAIL: no error naming the chart path"; cat "$dir/err"; exit 1; }
echo "ok"
