// The BPE merge engine shared by byte-level BPE and SentencePiece-style BPE.
//
// Tokens are handled as raw bytes: a byte-level vocabulary is stored decoded
// from GPT-2's printable form, so "Ġthe" is the 4 bytes " the". A word starts
// as one symbol per byte (byte-level) or per UTF-8 character (SentencePiece,
// where a character outside the vocabulary becomes its <0xXX> byte tokens or
// the unknown token). Adjacent symbols then merge, lowest merge rank first and
// leftmost first among equals, exactly as Hugging Face's BPE model does.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace qilin {

class BpeModel {
 public:
  enum class Symbols { bytes, chars };
  struct Options {
    Symbols initial = Symbols::bytes;
    bool ignore_merges = false;  // a word that is itself a token is taken whole (Llama-3)
    bool byte_fallback = false;  // characters outside the vocabulary become <0xXX> tokens
    int32_t unk_id = -1;         // otherwise the unknown token (consecutive ones fused), or dropped if -1
  };

  // `tokens[id]` holds each token's raw bytes; `is_byte_token[id]` marks
  // SentencePiece's <0xXX> tokens (their bytes are the one byte they stand for),
  // which are used for byte fallback only. `merges[rank]` is a pair of ids.
  BpeModel(std::span<const std::string> tokens, std::span<const uint8_t> is_byte_token,
           std::span<const std::pair<int32_t, int32_t>> merges, Options options);

  // Appends the ids of `word`.
  void encode(std::string_view word, std::vector<int32_t>& out) const;

  // The id of the (non-byte) token with these raw bytes, or -1.
  int32_t find(std::string_view bytes) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  const Merge* find_merge(int32_t left, int32_t right) const noexcept;
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids, std::vector<uint32_t>& lens) const;

  Options options_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids_;
  int32_t byte_token_[256];
  // Open addressing: keys_[slot] = (left << 32 | right) + 1, 0 = empty.
  std::vector<uint64_t> merge_keys_;
  std::vector<Merge> merge_values_;
  uint64_t merge_mask_ = 0;
};

}  // namespace qilin
