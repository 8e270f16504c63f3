#!/usr/bin/env python3
"""safetensors fixtures for tests/test_safetensors.cpp, written with the `safetensors` Python package.

Usage:
  python3 tests/data/make_safetensors_fixtures.py          writes tests/data/safetensors/ (and checks it)
  python3 tests/data/make_safetensors_fixtures.py --check  only reads the files back and checks them
Needs: pip install safetensors numpy   (written with safetensors 0.8.0, numpy 2.4)

single.safetensors: F32 (1-D to 4-D and a scalar), F16, BF16, I8, I32, an I64 buffer (a dtype
Qilin lists but does not load) and __metadata__.
sharded/: a two-shard checkpoint (model-0000{1,2}-of-00002.safetensors) with the
model.safetensors.index.json that transformers writes.

Float values are value(i, seed) below: multiples of 1/8 in [-1.375, 1.375], exact in F16 and
BF16, so the C++ test recomputes them and compares exactly. Keep TENSORS in sync with the table
in tests/test_safetensors.cpp.
"""
import json
import os
import sys

import numpy as np
from safetensors import TensorSpec, deserialize, serialize_file

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors")

# name -> (safetensors dtype, shape, seed); integer tensors ignore the seed.
SINGLE = {
    "f32_2d": ("F32", (3, 8), 1),
    "f32_4d": ("F32", (2, 1, 3, 4), 2),
    "f32_scalar": ("F32", (), 3),
    "f16_1d": ("F16", (32,), 4),
    "bf16_2d": ("BF16", (2, 16), 5),
    "i8_2d": ("I8", (2, 3), 0),
    "i32_1d": ("I32", (5,), 0),
    "i64_buffer": ("I64", (3,), 0),
}
METADATA = {"format": "pt", "note": "qilin fixture \u00e9\u4e16"}

SHARDS = {
    "model-00001-of-00002.safetensors": {
        "model.embed_tokens.weight": ("BF16", (4, 8), 11),
        "model.layers.0.mlp.up_proj.weight": ("F16", (8, 8), 12),
    },
    "model-00002-of-00002.safetensors": {
        "model.layers.0.self_attn.q_proj.weight": ("F32", (8, 8), 13),
        "model.norm.weight": ("F32", (8,), 14),
        "lm_head.weight": ("BF16", (4, 8), 15),
    },
}

SPEC_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "I8": "int8", "I32": "int32", "I64": "int64"}


def value(n: int, seed: int) -> np.ndarray:
    i = np.arange(n, dtype=np.int64) + 5 * seed
    return (((i * 7) % 23) - 11).astype(np.float32) * np.float32(0.125)


def tensor_bytes(dtype: str, shape, seed: int) -> bytes:
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == "F32":
        return value(n, seed).astype("<f4").tobytes()
    if dtype == "F16":
        return value(n, seed).astype("<f2").tobytes()
    if dtype == "BF16":  # exact: the values have at most 4 significant bits
        return (value(n, seed).view(np.uint32) >> 16).astype("<u2").tobytes()
    if dtype == "I8":
        return (np.arange(n) - 3).astype(np.int8).tobytes()
    if dtype == "I32":
        return (np.arange(n) ** 2 - 3).astype("<i4").tobytes()
    if dtype == "I64":
        return (np.arange(n) * 1_000_000_007 - 1).astype("<i8").tobytes()
    raise ValueError(dtype)


def write(path: str, tensors: dict, metadata=None) -> None:
    buffers = {name: np.frombuffer(tensor_bytes(dt, shape, seed), dtype=np.uint8).copy()
               for name, (dt, shape, seed) in tensors.items()}
    specs = {name: TensorSpec(dtype=SPEC_DTYPE[dt], shape=list(shape), data_ptr=buffers[name].ctypes.data,
                             data_len=buffers[name].nbytes)
             for name, (dt, shape, _) in tensors.items()}
    serialize_file(specs, path, metadata=metadata)  # `buffers` stays alive until here


def check(path: str, tensors: dict) -> None:
    with open(path, "rb") as f:
        got = dict(deserialize(f.read()))
    assert set(got) == set(tensors), (path, sorted(got))
    for name, (dt, shape, seed) in tensors.items():
        t = got[name]
        assert t["dtype"].upper() in (dt, SPEC_DTYPE[dt].upper()), (name, t["dtype"])
        assert list(t["shape"]) == list(shape), (name, t["shape"])
        assert bytes(t["data"]) == tensor_bytes(dt, shape, seed), name


def main() -> None:
    sharded = os.path.join(HERE, "sharded")
    if "--check" not in sys.argv:
        os.makedirs(sharded, exist_ok=True)
        write(os.path.join(HERE, "single.safetensors"), SINGLE, METADATA)
        total = 0
        weight_map = {}
        for file, tensors in SHARDS.items():
            write(os.path.join(sharded, file), tensors, {"format": "pt"})
            for name, (dt, shape, seed) in tensors.items():
                total += len(tensor_bytes(dt, shape, seed))
                weight_map[name] = file
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        with open(os.path.join(sharded, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)
            f.write("\n")
    check(os.path.join(HERE, "single.safetensors"), SINGLE)
    for file, tensors in SHARDS.items():
        check(os.path.join(sharded, file), tensors)
    print("safetensors fixtures OK:", HERE)


if __name__ == "__main__":
    main()
