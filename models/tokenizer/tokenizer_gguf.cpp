// Tokenizer::from_gguf: the tokenizer.ggml.* metadata llama.cpp's converters write.
#include "core/error.h"
#include "core/gguf.h"
#include "models/tokenizer/tokenizer.h"

namespace qilin {
namespace {

// llama.cpp's tokenizer.ggml.pre names, by the regex family they use.
PreTokenizer pre_tokenizer_for(const std::string& pre, const std::string& file) {
  for (const char* name : {"qwen2", "deepseek-r1-qwen"})
    if (pre == name) return PreTokenizer::qwen2;
  // GLM-4's names ("chatglm-bpe": glm-4-9b-chat; "glm4": glm-4-9b-hf, GLM-4.5) and
  // smaug-bpe use Llama-3's regex in llama.cpp, under pre-tokenizer types of their own.
  for (const char* name : {"llama3", "llama-bpe", "llama-v3", "chatglm-bpe", "glm4", "smaug-bpe"})
    if (pre == name) return PreTokenizer::llama3;
  for (const char* name : {"smollm", "starcoder", "refact", "codeshell", "command-r"})
    if (pre == name) return PreTokenizer::smollm;
  for (const char* name : {"gpt-2", "gpt2", "default", "phi-2", "jina-es", "olmo"})
    if (pre == name) return PreTokenizer::gpt2;
  fail(file, "tokenizer.ggml.pre '{}' is not a pre-tokenizer Qilin implements", pre);
}

// llama.cpp ignores merges (a pre-tokenized piece that is a whole token stays one) only
// for its Llama-3 pre-tokenizer type, not for the others that share the regex
// (chatglm-bpe, glm4, smaug-bpe).
bool pre_ignores_merges(const std::string& pre) { return pre == "llama3" || pre == "llama-bpe" || pre == "llama-v3"; }

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  const std::string& path = file.path();
  const std::string model = file.require_string("tokenizer.ggml.model");
  TokenizerConfig c;
  c.tokens = file.require_string_array("tokenizer.ggml.tokens");
  const size_t n = c.tokens.size();
  if (file.has("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> types = file.require_int_array("tokenizer.ggml.token_type");
    QILIN_CHECK(types.size() == n, path, "tokenizer.ggml.token_type has {} entries for {} tokens", types.size(), n);
    for (int64_t t : types) {
      QILIN_CHECK(t >= 0 && t <= 6, path, "tokenizer.ggml.token_type holds {}, not a token type", t);
      c.types.push_back(static_cast<TokenType>(t));
    }
  }
  if (model == "gpt2") {
    c.model = TokenizerModel::byte_level_bpe;
    const std::string pre = file.get_string("tokenizer.ggml.pre", "default");
    c.pre_tokenizer = pre_tokenizer_for(pre, path);
    c.ignore_merges = pre_ignores_merges(pre);
    for (const std::string& m : file.require_string_array("tokenizer.ggml.merges")) {
      const size_t space = m.find(' ');
      QILIN_CHECK(space != std::string::npos && m.find(' ', space + 1) == std::string::npos, path,
                  "tokenizer.ggml.merges entry '{}' is not two tokens", m);
      c.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
    }
  } else if (model == "llama") {
    c.model = TokenizerModel::sentencepiece_bpe;
    c.scores = file.require_float_array("tokenizer.ggml.scores");
    QILIN_CHECK(c.scores.size() == n, path, "tokenizer.ggml.scores has {} entries for {} tokens", c.scores.size(), n);
    c.space_prefix =
        file.get_bool("tokenizer.ggml.add_space_prefix", true) ? SpacePrefix::every_segment : SpacePrefix::never;
  } else {
    fail(path, "tokenizer.ggml.model '{}' is not supported (gpt2 or llama)", model);
  }
  // Control tokens are special; user-defined ones are always matched in the text.
  for (size_t id = 0; id < c.types.size(); ++id) {
    if (c.types[id] != TokenType::control && c.types[id] != TokenType::user_defined) continue;
    if (c.tokens[id].empty()) continue;
    c.added_tokens.push_back({c.tokens[id], static_cast<int32_t>(id), c.types[id] == TokenType::control});
  }
  auto id_of = [&](const char* key) {
    const int64_t id = file.get_int(key, -1);
    QILIN_CHECK(id >= -1 && id < static_cast<int64_t>(n), path, "{} is {} but there are {} tokens", key, id, n);
    return static_cast<int32_t>(id);
  };
  c.bos_id = id_of("tokenizer.ggml.bos_token_id");
  c.eos_id = id_of("tokenizer.ggml.eos_token_id");
  c.unk_id = id_of("tokenizer.ggml.unknown_token_id");
  const bool spm = c.model == TokenizerModel::sentencepiece_bpe;
  c.add_bos = file.get_bool("tokenizer.ggml.add_bos_token", spm) && c.bos_id >= 0;
  c.add_eos = file.get_bool("tokenizer.ggml.add_eos_token", false) && c.eos_id >= 0;
  c.chat_template = file.get_string("tokenizer.chat_template", "");
  // GLM's tokenizers prepend "[gMASK]<sop>" (GLM-4) or "[gMASK]sop" (ChatGLM3) to every
  // encoding; llama.cpp's converters record neither (add_bos_token false) and leave it to
  // the chat template. Qilin adds it as Hugging Face does, so a GGUF file encodes as the
  // folder it came from.
  const std::string arch = file.get_string("general.architecture", "");
  if (arch == "chatglm" || arch == "glm4") {
    const auto find = [&](std::string_view text) -> int32_t {
      for (size_t id = 0; id < n; ++id)
        if (c.tokens[id] == text) return static_cast<int32_t>(id);
      return -1;
    };
    const int32_t gmask = find("[gMASK]");
    int32_t sop = find("<sop>");
    if (sop < 0) sop = find("sop");
    if (gmask >= 0 && sop >= 0) c.prefix_ids = {gmask, sop};
  }
  try {
    return Tokenizer(std::move(c));
  } catch (const Error& e) {
    fail(path, "{}", e.what());
  }
}

}  // namespace qilin
