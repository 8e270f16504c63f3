#!/usr/bin/env python3
"""Hugging Face `tokenizers` encoding throughput, single-threaded, on the text
bench/bench_tokenizer.cpp encodes (corpus/*.txt in name order, concatenated,
repeated 20 times). Prints MB/s (1e6 bytes/s of UTF-8) per tokenizer: the median of 7 runs.

  RAYON_NUM_THREADS=1 python3 tests/data/tokenizer/bench_hf_tokenizers.py
"""
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402

HERE = Path(__file__).resolve().parent


def main():
    one = b"".join(p.read_bytes() for p in sorted((HERE / "corpus").glob("*.txt")))
    text = (one * 20).decode("utf-8")
    nbytes = len(one) * 20
    for name in ["smollm2", "qwen2", "llama3", "spm"]:
        tok = Tokenizer.from_file(str(HERE / name / "tokenizer.json"))
        tok.encode(text)  # warm the word cache, as the C++ benchmark's first iterations do
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            n = len(tok.encode(text).ids)
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        print(f"{name:8s} {nbytes / t / 1e6:7.2f} MB/s  ({n} tokens, {t * 1e3:.1f} ms, {nbytes} bytes)")


if __name__ == "__main__":
    main()
