#!/usr/bin/env python3
"""Reference data for tests/test_quantize.cpp, from the `gguf` Python package (gguf-py, which
mirrors ggml), and a reader that checks GGUF files written by qilin-quantize.

Usage:
  python3 tests/data/quant/make_quant_reference.py              # (re)write the committed files
  python3 tests/data/quant/make_quant_reference.py --check      # compare them with what gguf computes now
  python3 tests/data/quant/make_quant_reference.py --read-back HF_FOLDER OUT.gguf:TYPE [OUT.gguf:TYPE ...]
Needs: pip install gguf numpy   (written with gguf 0.19.0, numpy 2.x)

The requantize path: a quantized tensor is dequantized to f32, then quantized again.
Values that come out of a block format lie on that format's grid, where rounding ties
(x/d exactly k + 0.5) and exact maxima are common -- cases Gaussian test data seldom hits.
Files written to tests/data/quant/ (little-endian, raw):
  requant_source.bin   random valid blocks of 256 elements in each of q4_1, q8_0, q4_k, q6_k
                       and q4_0 (ROWS), back to back: 160 + 272 + 144 + 210 + 144 bytes
  requant_input.f32    5 x 256 float32: gguf.quants.dequantize of each source row
  requant_<fmt>.bin    gguf.quants.quantize(requant_input, fmt) for q8_0, q4_0, q4_1 (gguf 0.19 has
                       no Q4_K/Q6_K quantizer; test_quant.cpp covers those against ggml's C code)

--read-back opens each file with gguf.GGUFReader (so the layout, alignment and offsets are
checked by an independent reader) and compares it with the Hugging Face folder it was
quantized from: general.file_type and general.quantization_version, every tensor's name and
shape, and its data -- byte for byte against gguf.quants.quantize for f32, f16, bf16, q8_0,
q4_0 and q4_1; for q4_k and q6_k (no gguf quantizer) gguf's dequantization must be within the
format's rounding error of the source. Exits 1 with a message on the first mismatch.
"""
import json
import os
import struct
import sys

import numpy as np
from gguf import GGUFReader, quants
from gguf.constants import GGMLQuantizationType as T

HERE = os.path.dirname(os.path.abspath(__file__))
COLS = 256
ROWS = [T.Q4_1, T.Q8_0, T.Q4_K, T.Q6_K, T.Q4_0]  # the format each input row was dequantized from
TARGETS = {"q8_0": T.Q8_0, "q4_0": T.Q4_0, "q4_1": T.Q4_1}
# llama.cpp's llama_ftype for each qilin-quantize TYPE.
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q4_k": 14, "q4_k_m": 15, "q6_k": 18, "bf16": 32}


def random_blocks(rng, qtype, n_elements):
    """Random bytes for n_elements of qtype, with every f16 scale/min a finite value of varied size."""
    block_size, type_size = quants.GGML_QUANT_SIZES[qtype]
    n = n_elements // block_size
    b = rng.integers(0, 256, (n, type_size), dtype=np.uint8)

    def f16(count):
        v = (rng.standard_normal(count) * 10.0 ** rng.integers(-3, 1, count)).astype(np.float16)
        return v.view(np.uint8).reshape(n, -1)

    if qtype in (T.Q8_0, T.Q4_0):
        b[:, 0:2] = f16(n)
    elif qtype in (T.Q4_1, T.Q4_K):
        b[:, 0:4] = f16(2 * n)
    elif qtype == T.Q6_K:
        b[:, 208:210] = f16(n)
    return b.reshape(-1)


def make_reference():
    rng = np.random.default_rng(20250305)
    sources = [random_blocks(rng, q, COLS) for q in ROWS]
    rows = [quants.dequantize(s, q).reshape(-1).astype(np.float32) for s, q in zip(sources, ROWS)]
    x = np.stack(rows)
    out = {"requant_source.bin": np.concatenate(sources).tobytes(), "requant_input.f32": x.tobytes()}
    for name, q in TARGETS.items():
        out[f"requant_{name}.bin"] = quants.quantize(x, q).tobytes()
    return out


def write_or_check(check):
    bad = 0
    for name, data in make_reference().items():
        path = os.path.join(HERE, name)
        if check:
            with open(path, "rb") as f:
                same = f.read() == data
            print(f"{'ok' if same else 'DIFFERS'}  {name}")
            bad += not same
        else:
            with open(path, "wb") as f:
                f.write(data)
            print(f"wrote {name} ({len(data)} bytes)")
    return 1 if bad else 0


# --- read-back of qilin-quantize files -------------------------------------------------------

SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16}


def read_safetensors(folder):
    """{name: float32 array} of every model*.safetensors file in the folder (F32, F16, BF16)."""
    tensors = {}
    for fname in sorted(os.listdir(folder)):
        if not fname.endswith(".safetensors"):
            continue
        with open(os.path.join(folder, fname), "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + n])
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            data = raw[base + begin : base + end]
            if info["dtype"] == "BF16":
                a = (np.frombuffer(data, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                a = np.frombuffer(data, SAFETENSORS_DTYPES[info["dtype"]]).astype(np.float32)
            tensors[name] = a.reshape(info["shape"])
    return tensors


HF_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_tensors_of(folder):
    """{GGUF name: float32 rows as the GGUF file holds them} for a llama/qwen2/qwen3 folder."""
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    llama = config["architectures"][0].startswith("Llama")
    heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    out = {}
    for hf, w in read_safetensors(folder).items():
        if hf == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif hf == "model.norm.weight":
            name = "output_norm.weight"
        elif hf == "lm_head.weight":
            if config.get("tie_word_embeddings"):
                continue
            name = "output.weight"
        elif hf.startswith("model.layers."):
            layer, rest = hf[len("model.layers.") :].split(".", 1)
            if rest not in HF_LAYER_NAMES:
                continue  # buffers such as rotary_emb.inv_freq
            name = f"blk.{layer}.{HF_LAYER_NAMES[rest]}"
        else:
            continue
        n_head = heads if name.endswith("attn_q.weight") else kv_heads if name.endswith("attn_k.weight") else 0
        if llama and n_head:  # llama.cpp's LlamaModel.permute
            w = w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
        out[name] = np.ascontiguousarray(w, np.float32)
    return out


def expected_bytes(x, qtype):
    if qtype == T.F32:
        return x.astype(np.float32).tobytes()
    if qtype == T.F16:
        return x.astype(np.float16).tobytes()
    return quants.quantize(x, qtype).tobytes()


# Relative RMS error bounds for the k-quants: a 4-bit (6-bit) code over a sub-block's range
# leaves rms error range/15/sqrt(12) (range/63/sqrt(12)); for the uniform test weights the
# range is sqrt(12) times their rms, so 1/15 = 0.067 (1/63 = 0.016), plus the 6/8-bit scales.
KQUANT_BOUND = {T.Q4_K: 0.10, T.Q6_K: 0.03}


def read_back(folder, files):
    source = gguf_tensors_of(folder)
    for spec in files:
        path, qtype_name = spec.rsplit(":", 1)
        reader = GGUFReader(path)

        def scalar(key):
            field = reader.get_field(key)
            if field is None:
                raise SystemExit(f"{path}: no {key}")
            return int(field.parts[field.data[0]][0])

        if scalar("general.file_type") != FILE_TYPE[qtype_name]:
            raise SystemExit(f"{path}: general.file_type {scalar('general.file_type')}, want {FILE_TYPE[qtype_name]}")
        if scalar("general.quantization_version") != 2:
            raise SystemExit(f"{path}: general.quantization_version is not 2")
        names = [t.name for t in reader.tensors]
        if sorted(names) != sorted(source):
            raise SystemExit(f"{path}: tensors {sorted(set(names) ^ set(source))} differ from the folder's")
        types = {}
        for t in reader.tensors:
            want = source[t.name]
            shape = tuple(int(d) for d in reversed(t.shape.tolist()))  # ne[0] is innermost
            if shape != want.shape:
                raise SystemExit(f"{path}: {t.name} has shape {shape}, the folder {want.shape}")
            qtype = T(t.tensor_type)
            types[qtype.name] = types.get(qtype.name, 0) + 1
            data = np.asarray(t.data).tobytes()
            if qtype in KQUANT_BOUND:
                got = quants.dequantize(np.frombuffer(data, np.uint8).reshape(want.shape[0], -1), qtype)
                err = np.sqrt(np.mean((got - want) ** 2) / np.mean(want**2))
                if not err <= KQUANT_BOUND[qtype]:
                    raise SystemExit(f"{path}: {t.name} ({qtype.name}) relative rms error {err:.4f}")
            elif data != expected_bytes(want, qtype):
                raise SystemExit(f"{path}: {t.name} ({qtype.name}) differs from gguf.quants.quantize")
        print(f"ok {path}: {len(names)} tensors {types}")
    return 0


def main(argv):
    if argv[:1] == ["--read-back"] and len(argv) >= 3:
        return read_back(argv[1], argv[2:])
    if argv in ([], ["--check"]):
        return write_or_check(argv == ["--check"])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
