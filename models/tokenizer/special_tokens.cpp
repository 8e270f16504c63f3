#include "models/tokenizer/special_tokens.h"

#include <algorithm>

#include "models/tokenizer/unicode.h"

namespace qilin {
namespace {

bool is_word_char(std::string_view text, size_t pos, bool before) {
  // The character just before `pos` (before=true) or starting at `pos`.
  if (before) {
    if (pos == 0) return false;
    size_t start = pos - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    const auto c = unicode::decode_utf8(text.data() + start, text.data() + text.size());
    return c.valid && (unicode::char_class(c.cp) & (unicode::kLetter | unicode::kNumber));
  }
  if (pos >= text.size()) return false;
  const auto c = unicode::decode_utf8(text.data() + pos, text.data() + text.size());
  return c.cp == '_' || (c.valid && (unicode::char_class(c.cp) & (unicode::kLetter | unicode::kNumber)));
}

// Whether bytes [begin, end) touch one of the sorted, disjoint `ranges`.
bool overlaps(std::span<const TextRange> ranges, size_t begin, size_t end) {
  const auto it =
      std::partition_point(ranges.begin(), ranges.end(), [&](const TextRange& r) { return r.end <= begin; });
  return it != ranges.end() && it->begin < end;
}

bool is_space_byte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  by_first_byte_.resize(256);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(static_cast<uint32_t>(i));
  }
  for (auto& bucket : by_first_byte_)
    std::stable_sort(bucket.begin(), bucket.end(),
                     [&](uint32_t a, uint32_t b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
}

bool AddedTokenMatcher::find_next(std::string_view text, size_t from, bool parse_special,
                                  std::span<const TextRange> plain, Match& m) const {
  for (size_t pos = from; pos < text.size(); ++pos) {
    for (uint32_t index : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      const AddedToken& t = tokens_[index];
      if (t.special && !parse_special) continue;
      if (text.compare(pos, t.content.size(), t.content) != 0) continue;
      const size_t end = pos + t.content.size();
      if (t.special && overlaps(plain, pos, end)) continue;
      if (t.single_word && (is_word_char(text, pos, true) || is_word_char(text, end, false))) continue;
      m = {pos, end, index};
      if (t.lstrip)
        while (m.begin > from && is_space_byte(text[m.begin - 1])) --m.begin;
      if (t.rstrip)
        while (m.end < text.size() && is_space_byte(text[m.end])) ++m.end;
      return true;
    }
  }
  return false;
}

void AddedTokenMatcher::split(std::string_view text, bool parse_special, std::vector<TextSegment>& out,
                              std::span<const TextRange> plain) const {
  size_t pos = 0;
  Match m{};
  while (!tokens_.empty() && find_next(text, pos, parse_special, plain, m)) {
    if (m.begin > pos) out.push_back({text.substr(pos, m.begin - pos), -1});
    out.push_back({text.substr(m.begin, m.end - m.begin), tokens_[m.token].id});
    pos = m.end;
  }
  if (pos < text.size()) out.push_back({text.substr(pos), -1});
}

}  // namespace qilin
