// Added tokens (special and user-defined): found in the raw text before any
// normalisation or pre-tokenisation, so "<|im_start|>" is one id and the text
// on either side is encoded on its own, as Hugging Face does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qilin {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = true;       // control tokens; matched only when special tokens are parsed
  bool lstrip = false;       // swallows the whitespace on its left
  bool rstrip = false;       // swallows the whitespace on its right
  bool single_word = false;  // matches only when not inside a word
};

// Bytes [begin, end) of a text.
struct TextRange {
  size_t begin = 0, end = 0;
};

// A piece of text between added tokens (id == -1), or one added token.
struct TextSegment {
  std::string_view text;
  int32_t id;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  // Splits `text` at the leftmost-longest occurrences of added tokens. With
  // parse_special false, special tokens are left in the text as plain text; so are those
  // that would overlap one of the `plain` ranges (sorted, disjoint: a chat prompt's
  // message contents, where only the template's own markers may be special tokens).
  void split(std::string_view text, bool parse_special, std::vector<TextSegment>& out,
             std::span<const TextRange> plain = {}) const;

  const std::vector<AddedToken>& tokens() const noexcept { return tokens_; }

 private:
  struct Match {
    size_t begin, end, token;
  };
  bool find_next(std::string_view text, size_t from, bool parse_special, std::span<const TextRange> plain,
                 Match& m) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::vector<uint32_t>> by_first_byte_;  // token indices, longest first
};

}  // namespace qilin
