#include "models/gguf_export.h"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/gguf_writer.h"
#include "models/model_config.h"
#include "models/tokenizer/tokenizer.h"

namespace qilin {
namespace {

// tokenizer.ggml.pre: the name llama.cpp gives each pre-tokenizer Qilin implements
// (Tokenizer::from_gguf maps these names back). GLM-4's split regex is Llama-3's, but
// llama.cpp's converter names glm-4-9b-chat's tokenizer "chatglm-bpe" (glm-4-9b-hf's
// "glm4"), and its loader gives both GLM-4's pre-tokenizer type (BPE merges applied, no BOS
// id), where "llama-bpe" would skip merges for pieces that are whole tokens.
std::string_view gguf_pre_name(PreTokenizer p, ModelFamily family) {
  switch (p) {
    case PreTokenizer::smollm:
      return "smollm";
    case PreTokenizer::qwen2:
      return "qwen2";
    case PreTokenizer::llama3:
      return family == ModelFamily::chatglm || family == ModelFamily::glm4 ? "chatglm-bpe" : "llama-bpe";
    case PreTokenizer::gpt2:
    case PreTokenizer::none:
      break;
  }
  return "gpt-2";
}

}  // namespace

uint32_t gguf_file_type(DType type) {
  switch (type) {
    case DType::f32:
      return 0;
    case DType::f16:
      return 1;
    case DType::q4_0:
      return 2;
    case DType::q4_1:
      return 3;
    case DType::q8_0:
      return 7;
    case DType::q4_k:
      return 14;  // LLAMA_FTYPE_MOSTLY_Q4_K_S: the Q4_K file without Q4_K_M's q6_k layers
    case DType::q6_k:
      return 18;
    case DType::bf16:
      return 32;
    default:
      fail("gguf_export", "{} has no llama.cpp file type (f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k)",
           name_of(type));
  }
}

void add_model_metadata(GgufWriter& w, const ModelConfig& c, uint32_t file_type) {
  const std::string arch(name_of(c.family));
  const auto key = [&](std::string_view suffix) { return fmt::format("{}.{}", arch, suffix); };
  const auto u32 = [](int64_t v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
  w.add("general.architecture", GgufValue::string(arch));
  w.add("general.type", GgufValue::string("model"));
  if (!c.name.empty()) w.add("general.name", GgufValue::string(c.name));
  w.add(key("block_count"), u32(c.n_layers));
  w.add(key("context_length"), u32(c.max_context));
  w.add(key("embedding_length"), u32(c.d_model));
  w.add(key("feed_forward_length"), u32(c.d_ff));
  w.add(key("attention.head_count"), u32(c.n_heads));
  w.add(key("attention.head_count_kv"), u32(c.n_kv_heads));
  w.add(key("attention.key_length"), u32(c.head_dim));
  w.add(key("attention.value_length"), u32(c.head_dim));
  // f32, as llama.cpp stores it (a theta like 1e6 or 5e5 is exact).
  w.add(key("rope.freq_base"), GgufValue::f32(static_cast<float>(c.rope_theta)));
  w.add(key("rope.dimension_count"), u32(c.rope_dim));
  w.add(key("attention.layer_norm_rms_epsilon"), GgufValue::f32(c.norm_eps));
  w.add(key("vocab_size"), u32(c.vocab_size));
  w.add("general.file_type", GgufValue::u32(file_type));
  w.add("general.quantization_version", GgufValue::u32(kGgmlQuantVersion));
}

void add_token_ids(GgufWriter& w, int32_t bos_id, int32_t eos_id) {
  if (bos_id >= 0) w.add("tokenizer.ggml.bos_token_id", GgufValue::u32(static_cast<uint32_t>(bos_id)));
  if (eos_id >= 0) w.add("tokenizer.ggml.eos_token_id", GgufValue::u32(static_cast<uint32_t>(eos_id)));
}

void add_tokenizer_metadata(GgufWriter& w, const TokenizerConfig& t, ModelFamily family, int64_t n_vocab,
                            int32_t bos_id, int32_t eos_id) {
  if (t.model != TokenizerModel::byte_level_bpe) {
    fail("gguf_export", "a SentencePiece tokenizer.json cannot be written to GGUF yet (it has no piece scores)");
  }
  const auto check_id = [&](int64_t id, std::string_view what) {
    QILIN_CHECK(id < n_vocab, "gguf_export", "the tokenizer's {} has id {} but the model's vocab_size is {}", what, id,
                n_vocab);
  };
  check_id(static_cast<int64_t>(t.tokens.size()) - 1, "last token");
  std::vector<std::string> tokens(static_cast<size_t>(n_vocab));
  std::vector<int32_t> types(static_cast<size_t>(n_vocab), static_cast<int32_t>(TokenType::unused));
  for (size_t id = 0; id < t.tokens.size(); ++id) {
    if (t.tokens[id].empty()) continue;  // an id the vocabulary skips
    tokens[id] = t.tokens[id];
    types[id] = static_cast<int32_t>(TokenType::normal);
  }
  // Added tokens: control when special, user-defined otherwise (llama.cpp matches both in the text).
  for (const AddedToken& a : t.added_tokens) {
    QILIN_CHECK(a.id >= 0, "gguf_export", "added token '{}' has id {}", a.content, a.id);
    check_id(a.id, fmt::format("added token '{}'", a.content));
    tokens[static_cast<size_t>(a.id)] = a.content;
    types[static_cast<size_t>(a.id)] = static_cast<int32_t>(a.special ? TokenType::control : TokenType::user_defined);
  }
  for (size_t id = 0; id < tokens.size(); ++id)
    if (tokens[id].empty()) tokens[id] = fmt::format("[PAD{}]", id);
  std::vector<std::string> merges;
  merges.reserve(t.merges.size());
  for (const auto& [left, right] : t.merges) merges.push_back(left + ' ' + right);

  w.add("tokenizer.ggml.model", GgufValue::string("gpt2"));
  w.add("tokenizer.ggml.pre", GgufValue::string(std::string(gguf_pre_name(t.pre_tokenizer, family))));
  w.add("tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens)));
  w.add("tokenizer.ggml.token_type", GgufValue::i32_array(types));
  w.add("tokenizer.ggml.merges", GgufValue::string_array(std::move(merges)));
  check_id(bos_id, "BOS token");
  check_id(eos_id, "EOS token");
  add_token_ids(w, bos_id, eos_id);
  if (t.unk_id >= 0) {
    check_id(t.unk_id, "unknown token");
    w.add("tokenizer.ggml.unknown_token_id", GgufValue::u32(static_cast<uint32_t>(t.unk_id)));
  }
  w.add("tokenizer.ggml.add_bos_token", GgufValue::boolean(t.add_bos));
  w.add("tokenizer.ggml.add_eos_token", GgufValue::boolean(t.add_eos));
  if (!t.chat_template.empty()) w.add("tokenizer.chat_template", GgufValue::string(t.chat_template));
}

}  // namespace qilin
