// The pre-tokenizer regexes as hand-written matchers over decoded characters.
// Each matcher tries the regex's alternatives in order at a position, as a
// backtracking regex engine does, and returns where the first match ends.
#include "models/tokenizer/pretokenizer.h"

#include "models/tokenizer/unicode.h"

namespace qilin {
namespace {

struct Char {
  uint32_t offset;  // byte offset in the text
  char32_t cp;      // U+FFFD for an invalid byte
  uint8_t cls;      // unicode::kLetter / kNumber / kSpace
};

// Decodes `text` into characters, with a sentinel at the end holding its size.
void decode(std::string_view text, std::vector<Char>& chars) {
  chars.clear();
  const char* base = text.data();
  const char* end = base + text.size();
  for (const char* p = base; p < end;) {
    const unicode::Utf8Char c = unicode::decode_utf8(p, end);
    chars.push_back({static_cast<uint32_t>(p - base), c.cp, c.valid ? unicode::char_class(c.cp) : uint8_t{0}});
    p += c.len;
  }
  chars.push_back({static_cast<uint32_t>(text.size()), 0, 0});
}

class Matcher {
 public:
  // `chars` excludes the sentinel: n is the number of characters.
  Matcher(const Char* chars, size_t n) : c_(chars), n_(n) {}

  bool letter(size_t i) const { return i < n_ && (c_[i].cls & unicode::kLetter); }
  bool number(size_t i) const { return i < n_ && (c_[i].cls & unicode::kNumber); }
  bool space(size_t i) const { return i < n_ && (c_[i].cls & unicode::kSpace); }
  // [^\s\p{L}\p{N}]
  bool other(size_t i) const {
    return i < n_ && !(c_[i].cls & (unicode::kLetter | unicode::kNumber | unicode::kSpace));
  }
  bool is(size_t i, char32_t cp) const { return i < n_ && c_[i].cp == cp; }
  bool newline(size_t i) const { return is(i, '\r') || is(i, '\n'); }
  char32_t lower(size_t i) const {
    const char32_t cp = i < n_ ? c_[i].cp : 0;
    if (cp == 0x17F) return 's';  // LATIN SMALL LETTER LONG S case-folds to 's' in Oniguruma's (?i)
    return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
  }

  // 's|'t|'re|'ve|'m|'ll|'d at i; the end, or i when none matches.
  size_t contraction(size_t i, bool ignore_case) const {
    if (!is(i, '\'')) return i;
    auto at = [&](size_t k) { return ignore_case ? lower(k) : (k < n_ ? c_[k].cp : 0); };
    const char32_t a = at(i + 1), b = at(i + 2);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return i;
  }

  size_t run(size_t i, bool (Matcher::*pred)(size_t) const) const {
    while ((this->*pred)(i)) ++i;
    return i;
  }

  // \s+(?!\S)|\s+ at a whitespace character i.
  size_t trailing_space(size_t i) const {
    const size_t e = run(i, &Matcher::space);
    if (e == n_ || e - i == 1) return e;  // all of it, or the lone \s+
    return e - 1;                         // leave one space to lead the next piece
  }

  size_t gpt2(size_t i) const {
    if (size_t e = contraction(i, false); e != i) return e;
    const size_t j = is(i, ' ') ? i + 1 : i;  // the optional leading space
    if (letter(j)) return run(j, &Matcher::letter);
    if (number(j)) return run(j, &Matcher::number);
    if (other(j)) return run(j, &Matcher::other);
    return trailing_space(i);  // c[i] is whitespace here
  }

  size_t qwen2(size_t i, size_t max_digits) const {
    if (size_t e = contraction(i, true); e != i) return e;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!newline(i) && !letter(i) && !number(i) && letter(i + 1)) return run(i + 1, &Matcher::letter);
    if (letter(i)) return run(i, &Matcher::letter);
    // \p{N} or \p{N}{1,3}
    if (number(i)) {
      size_t e = i;
      while (e - i < max_digits && number(e)) ++e;
      return e;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    const size_t j = is(i, ' ') && other(i + 1) ? i + 1 : i;
    if (other(j)) return run(run(j, &Matcher::other), &Matcher::newline);
    // \s*[\r\n]+ : up to the last newline of the whitespace run
    const size_t e = run(i, &Matcher::space);
    for (size_t k = e; k > i; --k)
      if (newline(k - 1)) return k;
    return trailing_space(i);
  }

 private:
  const Char* c_;
  size_t n_;
};

template <class Match>
void split(const std::vector<Char>& chars, size_t first, size_t last, std::vector<TextSpan>& out, Match match) {
  // Characters [first, last) form one independent segment: the regex sees its end as the end of the text.
  Matcher m(chars.data() + first, last - first);
  for (size_t i = 0; i < last - first;) {
    const size_t e = match(m, i);
    out.push_back({chars[first + i].offset, chars[first + e].offset});
    i = e;
  }
}

}  // namespace

std::string_view name_of(PreTokenizer kind) noexcept {
  switch (kind) {
    case PreTokenizer::none:
      return "none";
    case PreTokenizer::gpt2:
      return "gpt2";
    case PreTokenizer::smollm:
      return "smollm";
    case PreTokenizer::qwen2:
      return "qwen2";
    case PreTokenizer::llama3:
      return "llama3";
  }
  return "?";
}

void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<TextSpan>& out) {
  if (text.empty()) return;
  if (kind == PreTokenizer::none) {
    out.push_back({0, static_cast<uint32_t>(text.size())});
    return;
  }
  thread_local std::vector<Char> chars;
  decode(text, chars);
  const size_t n = chars.size() - 1;
  switch (kind) {
    case PreTokenizer::gpt2:
      split(chars, 0, n, out, [](const Matcher& m, size_t i) { return m.gpt2(i); });
      break;
    case PreTokenizer::smollm:
      // Every digit is a piece of its own; the gpt2 regex runs on the text between digits.
      for (size_t i = 0; i < n;) {
        if (chars[i].cls & unicode::kNumber) {
          out.push_back({chars[i].offset, chars[i + 1].offset});
          ++i;
          continue;
        }
        size_t e = i;
        while (e < n && !(chars[e].cls & unicode::kNumber)) ++e;
        split(chars, i, e, out, [](const Matcher& m, size_t k) { return m.gpt2(k); });
        i = e;
      }
      break;
    case PreTokenizer::qwen2:
      split(chars, 0, n, out, [](const Matcher& m, size_t i) { return m.qwen2(i, 1); });
      break;
    case PreTokenizer::llama3:
      split(chars, 0, n, out, [](const Matcher& m, size_t i) { return m.qwen2(i, 3); });
      break;
    case PreTokenizer::none:
      break;
  }
}

}  // namespace qilin
