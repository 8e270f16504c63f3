#!/usr/bin/env python3
"""Tiny random-weight decoder models (Llama, Qwen2, Qwen3, GLM, GLM-4) and their reference logits, for the
model tests: Qilin's f32 logits must match these within 1e-4 of the largest |logit|.

Usage:
  HF_HUB_OFFLINE=1 python3 tests/data/models/make_model_fixtures.py           writes the folders
  HF_HUB_OFFLINE=1 python3 tests/data/models/make_model_fixtures.py --check   recomputes, compares
Needs: pip install torch transformers safetensors numpy
       (written with torch 2.15.0, transformers 5.23.0, safetensors 0.8.0, numpy 2.4; CPU only)

Writes tests/data/models/<family>/ for family in llama, qwen2, qwen3, glm, glm4: a Hugging Face folder as
`save_pretrained` writes it (config.json, model.safetensors in float32, generation_config.json),
no tokenizer (but glm/ and glm4/: see GLM_TOKENS), plus reference.json. Every parameter (embeddings, projections, biases, RMSNorm
weights, Qwen3's q_norm/k_norm) is re-drawn from a seeded generator, so a bug in any of them
changes the logits; norm weights are 1 + 0.1*randn, biases 0.5*randn.

glm (GlmForCausalLM, GLM-4-9B-chat's layout) and glm4 (Glm4ForCausalLM, GLM-4-0414's): Q/K/V bias,
2 KV heads for 4 query heads, rotary on the first half of each head in the interleaved (2i, 2i+1)
layout, gate and up fused in mlp.gate_up_proj (gate rows first); glm4 adds post_self_attn_layernorm
and post_mlp_layernorm, drawn as 1 + 0.3*randn so that a post-norm left out or put on the wrong
side of a residual shows. glm has head_dim 16 (hidden/heads), glm4 head_dim 32 (set apart from
hidden/heads, and a multiple of 32 for the q8_0 KV cache).

config.json: transformers 5 writes RoPE as "rope_parameters": {"rope_theta", "rope_type"} and the
weight type as "dtype"; checkpoints written by transformers 4 (most on the Hub, SmolLM2's and
Qwen2.5's included) have top-level "rope_theta" and "torch_dtype". The llama folder is rewritten
into that older layout (transformers reads both; the reference logits are computed from the
folder as reloaded, so they hold for what is on disk); qwen2, qwen3 and glm4 keep the new layout,
so a loader is tested on both. glm is rewritten too, as THUDM/glm-4-9b-chat-hf's config.json is,
and without "partial_rotary_factor": GlmConfig's default (0.5) must be what a loader assumes. Tied models (qwen2, qwen3) have no lm_head.weight in the safetensors.

reference.json (one per family):
  {
    "family": "llama" | "qwen2" | "qwen3",
    "vocab_size": 320,
    "input_ids": [[13 ids], [5 ids]],          two independent sequences, each from position 0
    "logits_encoding": "base64 float32 little-endian, row-major [seq_len][vocab_size]",
    "logits": ["<base64>", "<base64>"],        one string per sequence, seq_len*vocab_size floats
    "max_abs_logit": [m0, m1],                 per sequence, of the float32 logits
    "f32_vs_f64_max_rel_err": [e0, e1]         max |l32 - l64| / max |l64|, per sequence
  }
Each sequence is run alone (batch 1, no padding, no attention mask) in float32 with
attn_implementation="eager". The f64 figure is the same model converted to float64: it shows how
far float32 rounding alone moves the logits, which is what the 1e-4 tolerance must cover.
Base64 keeps a file at about a third of the size of decimal lists.
"""
import argparse
import base64
import json
import os
import shutil
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when transformers is imported

import numpy as np
import torch
from transformers import (AutoModelForCausalLM, Glm4Config, Glm4ForCausalLM, GlmConfig, GlmForCausalLM,
                          LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config,
                          Qwen3ForCausalLM)

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = 320
SEQ_LENS = (13, 5)
TOLERANCE = 1e-4  # relative to max |logit|, the C++ test's bound; f32 rounding must be well under

COMMON = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, intermediate_size=160, max_position_embeddings=256,
              bos_token_id=1, eos_token_id=2)

# The GLM folders carry tests/data/tokenizer/glm4's tokenizer (320 ids, GLM-4's special tokens
# at 310..319): EOS as GLM-4's config.json lists them (<|endoftext|>, <|user|>, <|observation|>),
# no BOS ("[gMASK]<sop>" comes from the tokenizer's post-processor).
GLM_TOKENS = dict(bos_token_id=None, eos_token_id=[310, 317, 319], pad_token_id=None)
GLM_TOKENIZER = os.path.join(HERE, "..", "tokenizer", "glm4")

FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM,
              dict(COMMON, rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False), 1),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM,
              dict(COMMON, rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True), 2),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM,
              dict(COMMON, head_dim=32, rope_theta=1000000.0, rms_norm_eps=1e-6,
                   tie_word_embeddings=True), 3),
    "glm": (GlmConfig, GlmForCausalLM,
            dict(COMMON, **GLM_TOKENS, head_dim=16, rms_norm_eps=1e-5, tie_word_embeddings=False,
                 attention_bias=True), 4),
    "glm4": (Glm4Config, Glm4ForCausalLM,
             dict(COMMON, **GLM_TOKENS, head_dim=32, rms_norm_eps=1e-5, tie_word_embeddings=False,
                  attention_bias=True,
                  rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.5)),
             5),
}
LEGACY_CONFIG = {"llama", "glm"}  # rewritten into transformers 4's config.json layout


def init_parameters(model, seed):
    """Re-draws every parameter. Scales keep activations O(1) and logits O(1..10): a linear
    layer's weights have std 1/sqrt(fan_in) (q and k 2x that, so attention is not near-uniform);
    embeddings std 0.5, so tied and untied output rows give logits of std about 4."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # a tied lm_head is the embedding: drawn once
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if "post_self_attn_layernorm" in name or "post_mlp_layernorm" in name:
                p.copy_(1.0 + 0.3 * noise)
            elif "norm" in name:
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.5 * noise)
            elif "embed_tokens" in name or name == "lm_head.weight":
                p.copy_(0.5 * noise)
            else:
                scale = 2.0 if ("q_proj" in name or "k_proj" in name) else 1.0
                p.copy_(scale / np.sqrt(p.shape[1]) * noise)


def rewrite_config_legacy(path):
    """Rewrites config.json into the layout transformers 4 wrote (see the header)."""
    with open(path) as f:
        cfg = json.load(f)
    rope = cfg.pop("rope_parameters")
    assert rope.get("rope_type", "default") == "default", rope
    cfg["rope_theta"] = rope["rope_theta"]
    if cfg["model_type"] == "glm":
        assert rope["partial_rotary_factor"] == 0.5  # left to GlmConfig's default
    else:
        cfg["rope_scaling"] = None
    cfg["torch_dtype"] = cfg.pop("dtype")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def input_ids_for(seed):
    gen = np.random.default_rng(1000 + seed)
    seqs = [gen.integers(0, VOCAB, size=n).tolist() for n in SEQ_LENS]
    seqs[0][1], seqs[0][2] = 0, VOCAB - 1  # the first and last rows of the embedding
    return seqs


def logits_of(model, ids, dtype):
    model = model.to(dtype)
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]
    return out.to(torch.float64).numpy()


def reference_for(family, folder, seed):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    ids = input_ids_for(seed)
    logits, max_abs, rel_err = [], [], []
    for seq in ids:
        l32 = logits_of(model, seq, torch.float32).astype(np.float32)
        l64 = logits_of(model, seq, torch.float64)
        model.to(torch.float32)
        logits.append(l32)
        max_abs.append(float(np.abs(l32).max()))
        rel_err.append(float(np.abs(l32 - l64).max() / np.abs(l64).max()))
    return ids, logits, max_abs, rel_err


def check_sensitivity(family, folder, ids, logits):
    """Neutralises each parameter in turn (norm weights to 1, everything else to 0): the logits
    must move by far more than the tolerance, or the test could not see a bug in that tensor."""
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    scale = np.abs(logits[0]).max()
    weakest = (np.inf, "")
    for name, p in model.named_parameters():
        with torch.no_grad():
            p.fill_(1.0) if "norm" in name else p.zero_()
        moved = np.abs(logits_of(model, ids[0], torch.float32) - logits[0]).max() / scale
        weakest = min(weakest, (moved, name))
        model.load_state_dict(saved)
    print(f"  {family}: neutralising any one parameter moves the logits by >= {weakest[0]:.1e} "
          f"of max|logit| (least: {weakest[1]})")
    assert weakest[0] > 100 * TOLERANCE, f"{family}: {weakest[1]} barely changes the logits"


def dump_one_key_per_line(obj):
    return "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in obj.items()) + "\n}\n"


def encode(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def decode(s, rows):
    return np.frombuffer(base64.b64decode(s), dtype="<f4").reshape(rows, VOCAB)


def describe(family, ids, logits, max_abs, rel_err):
    for seq, l, m, e in zip(ids, logits, max_abs, rel_err):
        last = l[-1]
        print(f"  {family} len {len(seq):2}: max|logit| {m:6.2f}, std {l.std():5.2f}, "
              f"last-position top-3 ids {np.argsort(-last)[:3].tolist()}, "
              f"f32 vs f64 max rel err {e:.2e} ({e / TOLERANCE:.1%} of the 1e-4 tolerance)")


def write(family):
    config_cls, model_cls, kwargs, seed = FAMILIES[family]
    torch.manual_seed(seed)
    config = config_cls(**kwargs, attn_implementation="eager")
    model = model_cls(config).eval()
    init_parameters(model, seed)
    folder = os.path.join(HERE, family)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder)
    if family in LEGACY_CONFIG:
        rewrite_config_legacy(os.path.join(folder, "config.json"))
    if family.startswith("glm"):
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(os.path.join(GLM_TOKENIZER, name), os.path.join(folder, name))
    ids, logits, max_abs, rel_err = reference_for(family, folder, seed)
    # The reloaded folder must be the model drawn above (a loader that dropped a tensor or
    # misread the rewritten config would make the references describe a different model).
    with torch.no_grad():
        direct = model(input_ids=torch.tensor([ids[0]]), use_cache=False).logits[0].numpy()
    assert np.array_equal(direct, logits[0]), f"{family}: reloaded folder gives other logits"
    ref = {
        "family": family,
        "vocab_size": VOCAB,
        "input_ids": ids,
        "logits_encoding": "base64 float32 little-endian, row-major [seq_len][vocab_size]",
        "logits": [encode(l) for l in logits],
        "max_abs_logit": max_abs,
        "f32_vs_f64_max_rel_err": rel_err,
    }
    with open(os.path.join(folder, "reference.json"), "w") as f:
        f.write(dump_one_key_per_line(ref))
    describe(family, ids, logits, max_abs, rel_err)
    check_sensitivity(family, folder, ids, logits)
    return max(rel_err)


def check(family):
    """Recomputes the logits from the committed folder and compares with reference.json."""
    folder = os.path.join(HERE, family)
    with open(os.path.join(folder, "reference.json")) as f:
        ref = json.load(f)
    ids, logits, max_abs, rel_err = reference_for(family, folder, FAMILIES[family][3])
    assert ids == ref["input_ids"], f"{family}: input ids differ"
    for seq, l, s in zip(ids, logits, ref["logits"]):
        stored = decode(s, len(seq))
        err = np.abs(stored - l).max() / np.abs(l).max()
        # Same weights, same library: only thread-count-dependent f32 summation order differs.
        assert err < TOLERANCE / 10, f"{family}: stored logits differ by {err:.2e}"
    describe(family, ids, logits, max_abs, rel_err)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only recompute and compare")
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    worst = 0.0
    for family in FAMILIES:
        if args.check:
            check(family)
        else:
            worst = max(worst, write(family))
    if not args.check:
        print(f"worst f32 vs f64 max rel err: {worst:.2e} (tolerance {TOLERANCE:.0e})")
        if worst > TOLERANCE / 10:
            sys.exit("f32 rounding alone is more than a tenth of the tolerance: rescale the init")
    print("ok")


if __name__ == "__main__":
    main()
