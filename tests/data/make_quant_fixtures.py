#!/usr/bin/env python3
"""Golden data for tests/test_quant.cpp, made with the `gguf` Python package (which mirrors ggml).

Usage: python3 tests/data/make_quant_fixtures.py [--ggml-lib PATH/libggml-base.so]
Needs: pip install gguf numpy   (written with gguf 0.19.0, numpy 2.x)

Writes tests/data/quant/ (all little-endian, raw):
  input.f32                 4 rows x 512 float32: the rows every quantizer is tested on
  <fmt>.bin, <fmt>.deq.f32  gguf.quants.quantize(input) and gguf.quants.dequantize of those bytes,
                            for q8_0, q4_0, q4_1
  <fmt>_blocks.bin, <fmt>_blocks.deq.f32
                            random but valid blocks (every bit pattern of scales/quants) and their
                            gguf dequantization, for all five formats
  q4_k.bin, q6_k.bin (+ .deq.f32)
                            gguf 0.19 has no Q4_K/Q6_K quantizer, so these come from ggml's own
                            quantize_row_q4_K_ref / quantize_row_q6_K_ref, called through ctypes
                            from the library given with --ggml-lib; without it they are kept as
                            committed (and only their .deq.f32 is rebuilt)
  f16_round.bin, bf16_round.bin
                            pairs (uint32 f32 bits, uint16 expected bits) of tricky f32 -> f16
                            (numpy astype) and f32 -> bf16 (gguf's port of ggml) conversions
"""
import argparse
import ctypes
import os
import sys

import numpy as np
from gguf import quants
from gguf.constants import GGMLQuantizationType as T

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quant")
ROWS, COLS = 4, 512


def make_input(rng: np.random.Generator) -> np.ndarray:
    x = np.empty((ROWS, COLS), np.float32)
    # Row 0: plain Gaussian weights.
    x[0] = rng.standard_normal(COLS) * 0.05
    # Row 1: an all-zero block, tiny values (scales underflow to f16 subnormals / zero),
    # constant runs (max == min) and a negative-only block.
    x[1] = rng.standard_normal(COLS) * 1e-6
    x[1, 0:64] = 0.0
    x[1, 64:96] = 0.25
    x[1, 96:128] = -rng.random(32) - 0.5
    x[1, 256:288] = rng.standard_normal(32) * 1e-9
    # Row 2: Gaussian with outliers 1000x the rest.
    x[2] = rng.standard_normal(COLS)
    x[2, rng.integers(0, COLS, 12)] *= 1000.0
    # Row 3: exact halves that land on rounding ties (roundf vs nearest-even), a wide
    # uniform part and all-positive values.
    x[3, 0:32] = np.arange(-16, 16) + 0.5
    x[3, 31] = 127.0
    x[3, 32:256] = (rng.random(224) * 2 - 1) * 30.0
    x[3, 256:] = rng.random(256) + 0.1
    return x


def random_blocks(rng: np.random.Generator, qtype: T, n_blocks: int) -> np.ndarray:
    """Random bytes with the f16 scale fields replaced by finite values of varied magnitude."""
    _, type_size = quants.GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)

    def f16(shape):
        v = (rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 2, shape)).astype(np.float16)
        return v.view(np.uint8).reshape(*shape[:-1], -1)

    if qtype in (T.Q8_0, T.Q4_0):
        b[:, 0:2] = f16((n_blocks, 1))
    elif qtype in (T.Q4_1, T.Q4_K):
        b[:, 0:4] = f16((n_blocks, 2))
    elif qtype == T.Q6_K:
        b[:, 208:210] = f16((n_blocks, 1))
    return b


def f16_cases(rng: np.random.Generator) -> np.ndarray:
    tricky = [0.0, -0.0, 1.0, 65504.0, 65519.996, 65520.0, 65536.0, -65520.0, 1e10, np.inf, -np.inf,
              2.0**-14, 2.0**-14 - 2.0**-25, 2.0**-24, 2.0**-25, 2.0**-25 * 1.0000001, 2.0**-26, 3 * 2.0**-25,
              2.0**-24 * 1.5, 2.0**-24 * 2.5, 1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 1.0 + 2.0**-11 + 2.0**-23,
              2048.0 + 1.0, 2048.0 + 3.0, 0.1, 1.0 / 3.0, 1e-8, -1e-8]
    bits = [np.float32(v).view(np.uint32) for v in tricky]
    # Every f32 one ulp around each f16 rounding midpoint, over all binades.
    for e in range(-25, 16):
        for m in rng.integers(0, 1024, 4):
            mid = np.float32((1024 + m + 0.5) * 2.0 ** (e - 10)).view(np.uint32)
            bits += [mid - 1, mid, mid + 1]
    bits += list(rng.integers(0, 2**32, 800, dtype=np.uint64).astype(np.uint32))
    f = np.array(bits, np.uint32)
    f = f[~np.isnan(f.view(np.float32))]  # NaN payloads are tested by property in C++
    with np.errstate(over="ignore"):  # overflow to inf is one of the cases
        h = f.view(np.float32).astype(np.float16).view(np.uint16)
    return f, h


def bf16_cases(rng: np.random.Generator):
    base = [0x00000000, 0x80000000, 0x3f800000, 0x3f808000, 0x3f818000, 0x3f807fff, 0x3f808001, 0x7f7fffff,
            0x7f7f8000, 0x7f7f7fff, 0xff7fffff, 0x7f800000, 0x00008000, 0x00018000, 0x00000001, 0x007fffff]
    f = np.array(base + list(rng.integers(0, 2**32, 1000, dtype=np.uint64).astype(np.uint32)), np.uint32)
    f = f[~np.isnan(f.view(np.float32))]
    h = quants.quantize(f.view(np.float32).reshape(1, -1), T.BF16).view(np.uint16).reshape(-1)
    return f, h


def write_pairs(path: str, f: np.ndarray, h: np.ndarray) -> None:
    rec = np.zeros(len(f), dtype=[("f", "<u4"), ("h", "<u2")])
    rec["f"], rec["h"] = f, h
    rec.tofile(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ggml-lib", help="a libggml-base.so exporting quantize_row_q4_K_ref / quantize_row_q6_K_ref")
    args = ap.parse_args()
    os.makedirs(HERE, exist_ok=True)
    rng = np.random.default_rng(20240607)

    x = make_input(rng)
    x.tofile(os.path.join(HERE, "input.f32"))
    for name, qt in (("q8_0", T.Q8_0), ("q4_0", T.Q4_0), ("q4_1", T.Q4_1)):
        q = quants.quantize(x, qt)
        q.tofile(os.path.join(HERE, f"{name}.bin"))
        quants.dequantize(q, qt).astype(np.float32).tofile(os.path.join(HERE, f"{name}.deq.f32"))

    for name, qt, fn in (("q4_k", T.Q4_K, "quantize_row_q4_K_ref"), ("q6_k", T.Q6_K, "quantize_row_q6_K_ref")):
        path = os.path.join(HERE, f"{name}.bin")
        _, type_size = quants.GGML_QUANT_SIZES[qt]
        if args.ggml_lib:
            lib = ctypes.CDLL(args.ggml_lib)
            f = getattr(lib, fn)
            f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            out = np.zeros((ROWS, COLS // 256 * type_size), np.uint8)
            xc = np.ascontiguousarray(x)
            f(xc.ctypes.data, out.ctypes.data, x.size)
            out.tofile(path)
        elif not os.path.exists(path):
            sys.exit(f"{path} is missing: run with --ggml-lib to create it")
        q = np.fromfile(path, np.uint8).reshape(ROWS, -1)
        quants.dequantize(q, qt).astype(np.float32).tofile(os.path.join(HERE, f"{name}.deq.f32"))

    for name, qt in (("q8_0", T.Q8_0), ("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q4_k", T.Q4_K), ("q6_k", T.Q6_K)):
        block_size, _ = quants.GGML_QUANT_SIZES[qt]
        b = random_blocks(rng, qt, 8 * 32 // block_size if block_size == 32 else 4)
        b.tofile(os.path.join(HERE, f"{name}_blocks.bin"))
        quants.dequantize(b, qt).astype(np.float32).tofile(os.path.join(HERE, f"{name}_blocks.deq.f32"))

    write_pairs(os.path.join(HERE, "f16_round.bin"), *f16_cases(rng))
    write_pairs(os.path.join(HERE, "bf16_round.bin"), *bf16_cases(rng))
    total = sum(os.path.getsize(os.path.join(HERE, p)) for p in os.listdir(HERE))
    print(f"wrote {len(os.listdir(HERE))} files, {total} bytes, to {HERE}")


if __name__ == "__main__":
    main()
