#include "models/tokenizer/byte_level.h"

#include <array>

#include "models/tokenizer/unicode.h"

namespace qilin {
namespace {

// Printable Latin-1 bytes map to themselves; the other 68 bytes, in order, to U+0100 onwards.
constexpr std::array<char32_t, 256> make_byte_to_unicode() {
  std::array<char32_t, 256> t{};
  char32_t next = 256;
  for (unsigned b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    t[b] = printable ? b : next++;
  }
  return t;
}
constexpr std::array<char32_t, 256> kByteToUnicode = make_byte_to_unicode();

constexpr std::array<int16_t, 324> make_unicode_to_byte() {
  std::array<int16_t, 324> t{};
  for (auto& v : t) v = -1;
  for (unsigned b = 0; b < 256; ++b) t[kByteToUnicode[b]] = static_cast<int16_t>(b);
  return t;
}
constexpr std::array<int16_t, 324> kUnicodeToByte = make_unicode_to_byte();

}  // namespace

char32_t byte_to_unicode(unsigned char byte) noexcept { return kByteToUnicode[byte]; }

std::optional<std::string> byte_level_decode(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (const char* p = token.data(); p < token.data() + token.size();) {
    const unicode::Utf8Char c = unicode::decode_utf8(p, token.data() + token.size());
    if (!c.valid || c.cp >= kUnicodeToByte.size() || kUnicodeToByte[c.cp] < 0) return std::nullopt;
    out += static_cast<char>(kUnicodeToByte[c.cp]);
    p += c.len;
  }
  return out;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char b : bytes) unicode::append_utf8(out, kByteToUnicode[static_cast<unsigned char>(b)]);
  return out;
}

}  // namespace qilin
