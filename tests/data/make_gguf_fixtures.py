#!/usr/bin/env python3
"""GGUF fixtures for tests/test_gguf.cpp, written and checked with the `gguf` Python package.

Usage:
  python3 tests/data/make_gguf_fixtures.py                 writes tests/data/gguf/python_v3.gguf
  python3 tests/data/make_gguf_fixtures.py --check FILE    reads FILE with gguf.GGUFReader and checks
                                                           it holds exactly the content below
Needs: pip install gguf numpy   (written with gguf 0.19.0)

python_v3.gguf has every metadata value type, arrays of each, nested arrays, a custom
general.alignment (64) and tensors of several dtypes (f32 1-4 D, f16, bf16, i8, i32, q8_0,
q4_0, q4_k). tests/data/gguf/qilin_written.gguf is the same content rewritten by Qilin's
GgufWriter (the C++ test makes it); run --check on it to confirm that the Python package
reads what Qilin writes. The C++ test mirrors the expectations in METADATA and tensor_values().
"""
import argparse
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType as V, GGUFWriter, GGMLQuantizationType as Q, quants

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf")

# key -> (type, value, array element type)
METADATA = {
    "general.architecture": (V.STRING, "qilintest", None),
    "general.alignment": (V.UINT32, 64, None),
    "test.u8": (V.UINT8, 200, None),
    "test.i8": (V.INT8, -100, None),
    "test.u16": (V.UINT16, 60000, None),
    "test.i16": (V.INT16, -30000, None),
    "test.u32": (V.UINT32, 4000000000, None),
    "test.i32": (V.INT32, -2000000000, None),
    "test.u64": (V.UINT64, 2**63 + 5, None),
    "test.i64": (V.INT64, -(2**62), None),
    "test.f32": (V.FLOAT32, 0.15625, None),
    "test.f64": (V.FLOAT64, 3.141592653589793, None),
    "test.bool": (V.BOOL, True, None),
    "test.string": (V.STRING, "h\u00e9llo, \u4e16\u754c", None),
    "test.arr_u8": (V.ARRAY, [1, 2, 255], V.UINT8),
    "test.arr_i16": (V.ARRAY, [-1, 2, -3], V.INT16),
    "test.arr_u64": (V.ARRAY, [2**64 - 1, 0], V.UINT64),
    "test.arr_i64": (V.ARRAY, [-5, 7], V.INT64),
    "test.arr_f32": (V.ARRAY, [0.5, -1.25], V.FLOAT32),
    "test.arr_f64": (V.ARRAY, [1e300, -2.5], V.FLOAT64),
    "test.arr_bool": (V.ARRAY, [True, False, True], V.BOOL),
    "test.arr_str": (V.ARRAY, ["a", "", "\u00fc"], V.STRING),
    "test.nested": (V.ARRAY, [[1, 2, 3], [4], [5, 6]], V.ARRAY),  # inner arrays of i32
    "test.nested_str": (V.ARRAY, [["x", "y"], ["z"]], V.ARRAY),
    "test.nested3": (V.ARRAY, [[[1], [2, 3]], [[4]]], V.ARRAY),
}


def value(i: np.ndarray) -> np.ndarray:
    """Tensor contents: multiples of 1/8 in [-1.375, 1.375], exact in f16 and bf16."""
    return (((i * 7) % 23) - 11).astype(np.float32) * np.float32(0.125)


def to_bf16_bytes(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(*x.shape[:-1], -1)


def tensors():
    """name -> (numpy shape outermost first, ggml type, raw bytes or typed array)."""
    out = {}

    def v(shape):
        return value(np.arange(int(np.prod(shape)))).reshape(shape)

    out["f32_2d"] = ((3, 8), Q.F32, v((3, 8)))
    out["f16_1d"] = ((32,), Q.F16, v((32,)).astype(np.float16))
    out["bf16_2d"] = ((2, 16), Q.BF16, to_bf16_bytes(v((2, 16))))
    out["q8_0"] = ((2, 64), Q.Q8_0, quants.quantize(v((2, 64)), Q.Q8_0))
    out["q4_0"] = ((3, 32), Q.Q4_0, quants.quantize(v((3, 32)), Q.Q4_0))
    out["q4_k"] = ((1, 256), Q.Q4_K, ((np.arange(144) * 37 + 11) & 0xFF).astype(np.uint8).reshape(1, 144))
    out["f32_4d"] = ((2, 1, 3, 4), Q.F32, v((2, 1, 3, 4)))
    out["i32_1d"] = ((5,), Q.I32, (np.arange(5, dtype=np.int32) ** 2 - 3).astype(np.int32))
    out["i8_2d"] = ((2, 3), Q.I8, (np.arange(6, dtype=np.int8) - 3).reshape(2, 3))
    return out


def write(path: str) -> None:
    w = GGUFWriter(path, "qilintest")
    for key, (vt, val, sub) in METADATA.items():
        if key == "general.architecture":
            continue  # GGUFWriter adds it first
        if key == "general.alignment":
            w.add_custom_alignment(val)
        else:
            w.add_key_value(key, val, vt, sub_type=sub)
    for name, (shape, qt, data) in tensors().items():
        raw = qt not in (Q.F32, Q.F16, Q.I8, Q.I32)
        w.add_tensor(name, data, raw_shape=None, raw_dtype=qt if raw else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def flatten(x):
    return [y for item in x for y in flatten(item)] if isinstance(x, list) else [x]


def check(path: str) -> None:
    r = GGUFReader(path)
    errors = []
    fields = {k: f for k, f in r.fields.items() if not k.startswith("GGUF.")}
    if list(fields) != list(METADATA):
        errors.append(f"keys {list(fields)} != {list(METADATA)}")
    for key, (vt, val, sub) in METADATA.items():
        f = fields.get(key)
        if f is None:
            continue
        if f.types[0] != vt or (sub is not None and f.types[1] != sub):
            errors.append(f"{key}: types {f.types}")
        got = f.contents()
        if sub == V.ARRAY:  # GGUFReader.contents() flattens nested arrays; compare the leaves
            val = flatten(val)
        if vt == V.FLOAT32:
            ok = np.float32(got) == np.float32(val)
        elif sub == V.FLOAT32:
            ok = list(np.float32(got)) == list(np.float32(val))
        else:
            ok = got == val
        if not ok:
            errors.append(f"{key}: {got!r} != {val!r}")
    got_tensors = {t.name: t for t in r.tensors}
    if list(got_tensors) != list(tensors()):
        errors.append(f"tensors {list(got_tensors)}")
    for name, (shape, qt, data) in tensors().items():
        t = got_tensors.get(name)
        if t is None:
            continue
        if t.tensor_type != qt or tuple(int(x) for x in reversed(t.shape)) != shape:
            errors.append(f"{name}: {t.tensor_type!r} {list(t.shape)}")
        if t.data_offset % 64 != 0:
            errors.append(f"{name}: data offset {t.data_offset} is not 64-aligned")
        if bytes(np.ascontiguousarray(t.data).view(np.uint8).ravel()) != bytes(data.view(np.uint8).ravel()):
            errors.append(f"{name}: data differs")
    if errors:
        sys.exit(f"{path}: " + "; ".join(errors))
    print(f"{path}: OK ({len(fields)} keys, {len(got_tensors)} tensors)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", metavar="FILE")
    args = ap.parse_args()
    if args.check:
        check(args.check)
        return
    os.makedirs(HERE, exist_ok=True)
    path = os.path.join(HERE, "python_v3.gguf")
    write(path)
    check(path)


if __name__ == "__main__":
    main()
