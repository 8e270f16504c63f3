#!/usr/bin/env python3
"""Makes the GLM tokenizer and chat-template fixtures under tests/data/tokenizer/.

Offline (HF_HUB_OFFLINE=1); needs tokenizers, transformers and gguf from PyPI. Reuses the
helpers of make_tokenizer_fixtures.py (same corpus, same JSON layout).

  HF_HUB_OFFLINE=1 python3 tests/data/tokenizer/make_glm_fixtures.py

glm4/  A GLM-4-style byte-level BPE vocabulary small enough for the tiny model fixtures
       (320 ids, tests/data/models/glm*): 256 byte tokens and 54 merges learnt from the
       corpus by the tokenizers BPE trainer (ids 0..309), then GLM-4's first ten special
       tokens in GLM-4's order (ids 310..319: <|endoftext|> [MASK] [gMASK] [sMASK] <sop>
       <eop> <|system|> <|user|> <|assistant|> <|observation|>). Pre-tokenizer: GLM-4's
       split regex (the Llama-3 / cl100k one) + ByteLevel, as glm-4-9b-chat-hf's
       tokenizer.json has it; its post-processor puts "[gMASK]<sop>" before every
       encoding (TemplateProcessing, two tokens before $A).
       tokenizer.json, tokenizer_config.json (GLM-4-9B-chat's chat template),
       expected/<corpus file>.ids (HF tokenizers, special tokens added), and
       tokenizer.gguf: the same vocabulary as llama.cpp's ChatGLM converter writes it
       (model gpt2, pre "chatglm-bpe", eos <|endoftext|>, eot <|user|>, no BOS added).
chat/  apply_chat_template renders (transformers' Jinja, trim_blocks + lstrip_blocks) of
       three templates over make_tokenizer_fixtures.py's CONVERSATIONS plus a GLM-only one:
         glm4       GLM-4-9B-chat (skips messages with empty content)
         glm4_0414  GLM-4-0414 (system messages first, then the others)
         chatglm3   ChatGLM3-6B ("[gMASK]sop", a space after each role line)
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_tokenizer_fixtures as base  # noqa: E402

SPECIALS = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>",
            "<|assistant|>", "<|observation|>"]
N_REGULAR = 310  # ids below are the BPE vocabulary, the specials follow

# GLM-4-9B-chat's template (tokenizer_config.json of THUDM/glm-4-9b-chat), with the tool
# descriptions shortened: they render only for messages that carry "tools".
GLM4_TEMPLATE = (
    "[gMASK]<sop>{% for item in messages %}{% if item['tools'] is defined %}<|system|>\n"
    "你是一个名为 ChatGLM 的人工智能助手。\n\n# 可用工具{% set tools = item['tools'] %}{% for tool in tools %}"
    "{% if tool['type'] == 'function' %}\n\n## {{ tool['function']['name'] }}\n\n"
    "{{ tool['function'] | tojson(indent=4) }}\n......{% endif %}{% endfor %}{% endif %}"
    "{% if item['content'] %}<|{{ item['role'] }}|>{{ item['metadata'] }}\n{{ item['content'] }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")

# GLM-4-0414's template (THUDM/GLM-4-9B-0414), without its tool section.
GLM4_0414_TEMPLATE = """[gMASK]<sop>
{%- for msg in messages %}
    {%- if msg.role == 'system' %}
<|system|>
{{ msg.content }}
    {%- endif %}
{%- endfor %}
{%- for message in messages if message.role != 'system' %}
    {%- set role = message['role'] %}
    {%- set content = message['content'] %}
    {%- set meta = message.get("metadata", "") %}
    {%- if role == 'user' %}
<|user|>
{{ content }}
    {%- elif role == 'assistant' and not meta %}
<|assistant|>
{{ content }}
    {%- elif role == 'assistant' and meta %}
<|assistant|>{{ meta }}
{{ content }}
    {%- elif role == 'observation' %}
<|observation|>
{{ content }}
    {%- endif %}
{%- endfor %}
{% if add_generation_prompt %}<|assistant|>{% endif %}"""

# ChatGLM3-6B's template (tokenizer_config.json of THUDM/chatglm3-6b).
CHATGLM3_TEMPLATE = (
    "{% for message in messages %}{% if loop.first %}[gMASK]sop<|{{ message['role'] }}|>\n "
    "{{ message['content'] }}{% else %}<|{{ message['role'] }}|>\n {{ message['content'] }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")

# Where the GLM templates differ from a plain loop: a system message after the first
# turn, and an assistant turn with empty content; and a second turn after a multi-line
# reply (the model writes the newline after "<|assistant|>" itself: the reply's content is
# what follows it). Mirrored in tests/test_tokenizer_glm.cpp.
GLM_CONVERSATIONS = {
    "late_system": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""},
                    {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}],
    "reply": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?\nAsk away."},
              {"role": "user", "content": "Why?"}],
}


def train_vocab():
    """256 byte tokens + merges learnt from the corpus, under GLM-4's pre-tokenizer."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(base.LLAMA3_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=N_REGULAR, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train([str(f) for f in base.corpus_files()], trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = model["vocab"]
    assert len(vocab) == N_REGULAR and sorted(vocab.values()) == list(range(N_REGULAR)), len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return vocab, merges


def glm4_tokenizer():
    import gguf
    vocab, merges = train_vocab()
    specials = [(N_REGULAR + i, t) for i, t in enumerate(SPECIALS)]
    pre = {"type": "Sequence", "pretokenizers": [base.split_regex(base.LLAMA3_REGEX), base.byte_level(False)]}
    js = base.tokenizer_json(base.bpe_json(vocab, merges, merges_as_pairs=True), pre,
                             [base.added(i, t) for i, t in specials])
    gmask, sop = N_REGULAR + 2, N_REGULAR + 4
    js["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[gMASK]", "type_id": 0}}, {"SpecialToken": {"id": "<sop>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "[gMASK]", "type_id": 0}}, {"SpecialToken": {"id": "<sop>", "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"[gMASK]": {"id": "[gMASK]", "ids": [gmask], "tokens": ["[gMASK]"]},
                           "<sop>": {"id": "<sop>", "ids": [sop], "tokens": ["<sop>"]}}}
    out = HERE / "glm4"
    tok = base.save(js, out / "tokenizer.json")
    (out / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": GLM4_TEMPLATE, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
         "added_tokens_decoder": {str(i): base.added(i, t) for i, t in specials}},
        ensure_ascii=False, indent=1), encoding="utf-8")
    base.write_goldens(tok, out, check_roundtrip=False)  # decode() would show the prefix
    ids = tok.encode("hi").ids
    assert ids[:2] == [gmask, sop], ids

    # The same vocabulary as llama.cpp's ChatGLM converter writes it (set_vocab of
    # ChatGLMModel for glm-4-9b-chat: gpt2 model, get_vocab_base's pre name).
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])] + SPECIALS
    w = gguf.GGUFWriter(str(out / "tokenizer.gguf"), "chatglm")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("chatglm-bpe")
    w.add_token_list(tokens)
    w.add_token_types([1] * N_REGULAR + [3] * len(SPECIALS))
    w.add_token_merges([" ".join(m) for m in merges])
    w.add_eos_token_id(N_REGULAR)      # <|endoftext|>
    w.add_eot_token_id(N_REGULAR + 7)  # <|user|>
    w.add_unk_token_id(N_REGULAR)
    w.add_add_bos_token(False)
    w.add_chat_template(GLM4_TEMPLATE)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def chat():
    from transformers import PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast(tokenizer_file=str(HERE / "glm4" / "tokenizer.json"))
    out = HERE / "chat"
    conversations = dict(base.CONVERSATIONS, **GLM_CONVERSATIONS)
    templates = {"glm4": GLM4_TEMPLATE, "glm4_0414": GLM4_0414_TEMPLATE, "chatglm3": CHATGLM3_TEMPLATE}
    for family, template in templates.items():
        tok.chat_template = template
        for name, messages in conversations.items():
            for gen in (False, True):
                text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
                (out / f"{family}.{name}.{'gen' if gen else 'nogen'}.txt").write_text(text, encoding="utf-8")
    # The template files themselves, for the detection test.
    for family, template in templates.items():
        (out / f"{family}.jinja").write_text(template, encoding="utf-8")
    print(f"  chat: {len(templates) * len(conversations) * 2} renders")


def main():
    glm4_tokenizer()
    chat()
    return 0


if __name__ == "__main__":
    sys.exit(main())
