// Pre-tokenizers: split text into the pieces that BPE encodes one at a time.
//
// Each kind reproduces one Hugging Face pre-tokenizer configuration exactly,
// with its regex matched by hand (Hugging Face runs them through Oniguruma):
//   gpt2    ByteLevel(use_regex): 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   smollm  Digits(individual_digits) then gpt2 on each run between digits (SmolLM2, StarCoder)
//   qwen2   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
//   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ llama3  the qwen2 regex with \p{N}{1,3} (Llama-3, GLM-4)
// Invalid UTF-8 bytes count as one-byte characters of no class (like punctuation).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace qilin {

enum class PreTokenizer { none, gpt2, smollm, qwen2, llama3 };

std::string_view name_of(PreTokenizer kind) noexcept;

// A piece of the text: bytes [begin, end).
struct TextSpan {
  uint32_t begin, end;
};

// Appends the pieces of `text` to `out`; together they cover `text` in order.
void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<TextSpan>& out);

}  // namespace qilin
