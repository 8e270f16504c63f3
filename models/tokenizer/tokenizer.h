// Tokenizer: text <-> token ids for the vocabularies Qilin's models use.
//
// Two models share one BPE engine (bpe_model.h):
//   byte_level_bpe     GPT-2 style (SmolLM2, Qwen2, Llama-3, GLM-4): added tokens are split
//                      out first, then an optional NFC normalizer, a pre-tokenizer
//                      (pretokenizer.h), and BPE over the bytes of each piece.
//   sentencepiece_bpe  llama-spm style: spaces become "▁", a "▁" prefix, BPE over
//                      characters with <0xXX> byte fallback, merges from the file or
//                      derived from the piece scores (GGUF).
// Loaders: a Hugging Face tokenizer.json, GGUF tokenizer.ggml.* metadata, or the
// plain vectors of TokenizerConfig. Everything a loader rejects throws qilin::Error.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "models/tokenizer/bpe_model.h"
#include "models/tokenizer/pretokenizer.h"
#include "models/tokenizer/special_tokens.h"

namespace qilin {

class GgufFile;

enum class TokenizerModel { byte_level_bpe, sentencepiece_bpe };
enum class Normalizer { none, nfc };
// llama.cpp's token types, as stored in tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6
};

// Where SentencePiece puts its "▁" prefix.
enum class SpacePrefix {
  never,
  every_segment,       // before each piece of text between added tokens (HF Prepend normalizer, llama.cpp)
  every_segment_once,  // the same unless the piece already starts with a space (HF Metaspace "always")
  first_segment_once,  // only for text at the very start, unless it starts with a space (HF Metaspace "first")
};

// The plain-data description every loader builds.
struct TokenizerConfig {
  TokenizerModel model = TokenizerModel::byte_level_bpe;
  std::vector<std::string> tokens;                          // as stored: GPT-2 byte-level text, or pieces
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<float> scores;             // SentencePiece: when merges is empty, merges are derived from these
  std::vector<TokenType> types;          // optional; SentencePiece <0xXX> tokens are also recognised by name
  std::vector<AddedToken> added_tokens;  // split out of the text first; ids may lie past tokens.size()
  PreTokenizer pre_tokenizer = PreTokenizer::gpt2;  // byte-level BPE only
  Normalizer normalizer = Normalizer::none;
  bool ignore_merges = false;
  SpacePrefix space_prefix = SpacePrefix::every_segment;  // SentencePiece only
  bool split_on_space = false;  // SentencePiece: BPE each "▁word" separately (HF Metaspace split)
  int32_t bos_id = -1, eos_id = -1, unk_id = -1;
  bool add_bos = false, add_eos = false;  // what encode() adds with add_special
  std::string chat_template;              // the model's Jinja template, if any (see chat_template.h)
  // Special tokens encode() puts first with add_special (after BOS, if any): GLM's
  // "[gMASK]<sop>" / "[gMASK]sop", which its tokenizers prepend to every encoding.
  std::vector<int32_t> prefix_ids;
};

// A Hugging Face tokenizer.json parsed into the plain description, without building the
// Tokenizer (what `convert` writes into GGUF); Tokenizer::from_json builds on it.
TokenizerConfig tokenizer_config_from_json(std::string_view json, std::string_view name = "tokenizer.json");
// The same from a file, with the chat template from tokenizer_config.json (or
// chat_template.jinja) beside it.
TokenizerConfig tokenizer_config_from_json_file(const std::string& path);

struct EncodeOptions {
  bool add_special = true;    // add BOS/EOS as the tokenizer's config says (HF add_special_tokens)
  bool parse_special = true;  // recognise special tokens written in the text; false for untrusted text
  // Byte ranges of the text where special tokens are never recognised, even with
  // parse_special: the message contents of a rendered chat prompt (ChatPrompt::contents),
  // so that only the template's own markers become control tokens. Sorted, disjoint.
  std::span<const TextRange> plain_ranges = {};
};

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerConfig config);
  // A Hugging Face tokenizer.json; `name` is used in messages.
  static Tokenizer from_json(std::string_view json, std::string_view name = "tokenizer.json");
  // Reads the file, and the chat template from tokenizer_config.json beside it when present.
  static Tokenizer from_json_file(const std::string& path);
  // tokenizer.ggml.* metadata (model "gpt2" or "llama").
  static Tokenizer from_gguf(const GgufFile& file);

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Text of the ids; invalid UTF-8 from a cut-off sequence becomes U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  int32_t vocab_size() const noexcept { return static_cast<int32_t>(text_.size()); }
  const std::string& token_text(int32_t id) const;  // as stored in the vocabulary
  // The bytes a token stands for in decoded text (SentencePiece: "▁" as a space,
  // <0xXX> as its byte), before the leading space is stripped.
  const std::string& token_bytes(int32_t id) const;
  int32_t token_id(std::string_view text) const noexcept;  // by stored text; -1 if none
  bool is_special(int32_t id) const noexcept;
  // decode() drops one leading space (SentencePiece's prefix).
  bool strips_leading_space() const noexcept { return strip_leading_space_; }

  TokenizerModel model() const noexcept { return config_.model; }
  PreTokenizer pre_tokenizer() const noexcept { return config_.pre_tokenizer; }
  int32_t bos_id() const noexcept { return config_.bos_id; }
  int32_t eos_id() const noexcept { return config_.eos_id; }
  const std::string& chat_template() const noexcept { return config_.chat_template; }
  void set_chat_template(std::string t) { config_.chat_template = std::move(t); }

 private:
  void check_id(int32_t id) const;
  void encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const;

  TokenizerConfig config_;                        // tokens and merges moved out after construction
  std::vector<std::string> text_;                 // by id, as stored ("" for ids that are not used)
  std::vector<std::string> bytes_;                // by id, decoded bytes
  std::vector<uint8_t> flags_;                    // by id: kUsed | kSpecial
  std::unordered_map<std::string, int32_t> ids_;  // stored text -> id
  std::unique_ptr<BpeModel> bpe_;
  AddedTokenMatcher added_;
  bool strip_leading_space_ = false;
};

}  // namespace qilin
