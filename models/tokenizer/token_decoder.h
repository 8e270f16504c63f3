// Streaming detokenization: text for each new token as soon as it is complete.
//
// A token may end inside a UTF-8 character (byte-level BPE splits rare
// characters into bytes; SentencePiece emits <0xXX> tokens). push() holds such
// bytes back until the character is complete, so a consumer never prints half
// a character; the concatenated output equals Tokenizer::decode of all ids.
#pragma once

#include <cstdint>
#include <string>

namespace qilin {

class Tokenizer;

class TokenDecoder {
 public:
  explicit TokenDecoder(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(&tokenizer), skip_special_(skip_special) {}

  // The text that `id` completes (possibly empty). Throws Error for an unknown id.
  std::string push(int32_t id);
  // What is still held back, with an unfinished character as U+FFFD; resets the decoder.
  std::string flush();

  size_t pending_bytes() const noexcept { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  bool at_start_ = true;  // SentencePiece's prefix space is dropped from the first text
  std::string pending_;
};

}  // namespace qilin
