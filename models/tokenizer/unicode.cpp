// Character classes, UTF-8 and NFC from the generated tables in unicode_data.inc.
#include "models/tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <vector>

namespace qilin::unicode {
namespace {

struct ClassRange {
  char32_t first, last;
  uint8_t flags;
};
struct CccRange {
  char32_t first, last;
  uint8_t ccc;
};
struct Decomposition {
  char32_t cp;
  uint16_t offset;
  uint8_t length;
};
struct Composition {
  char32_t first, second, composite;
};

#include "models/tokenizer/unicode_data.inc"

constexpr std::array<uint8_t, 128> make_ascii_classes() {
  std::array<uint8_t, 128> t{};
  for (const ClassRange& r : kClassRanges)
    for (char32_t cp = r.first; cp <= r.last && cp < 128; ++cp) t[cp] = r.flags;
  return t;
}
constexpr std::array<uint8_t, 128> kAsciiClasses = make_ascii_classes();

template <class Range>
const Range* find_range(const Range* begin, const Range* end, char32_t cp) noexcept {
  const Range* it = std::upper_bound(begin, end, cp, [](char32_t c, const Range& r) { return c < r.first; });
  if (it == begin) return nullptr;
  --it;
  return cp <= it->last ? it : nullptr;
}

uint8_t combining_class(char32_t cp) noexcept {
  if (cp < 0x300) return 0;
  const CccRange* r = find_range(std::begin(kCombiningClass), std::end(kCombiningClass), cp);
  return r ? r->ccc : 0;
}

// Hangul syllables are composed and decomposed by arithmetic (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

char32_t compose(char32_t a, char32_t b) noexcept {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const Composition* it = std::lower_bound(std::begin(kComposition), std::end(kComposition), std::pair{a, b},
                                           [](const Composition& c, std::pair<char32_t, char32_t> key) {
                                             return c.first != key.first ? c.first < key.first : c.second < key.second;
                                           });
  return it != std::end(kComposition) && it->first == a && it->second == b ? it->composite : 0;
}

// Invalid bytes travel through NFC as values above the Unicode range.
constexpr char32_t kRawByte = 0x80000000u;

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* it = std::lower_bound(std::begin(kDecomposition), std::end(kDecomposition), cp,
                                             [](const Decomposition& d, char32_t c) { return d.cp < c; });
  if (it != std::end(kDecomposition) && it->cp == cp) {
    out.insert(out.end(), kDecompositionPool + it->offset, kDecompositionPool + it->offset + it->length);
  } else {
    out.push_back(cp);
  }
}

}  // namespace

uint8_t char_class(char32_t cp) noexcept {
  if (cp < 128) return kAsciiClasses[cp];
  const ClassRange* r = find_range(std::begin(kClassRanges), std::end(kClassRanges), cp);
  return r ? r->flags : 0;
}

Utf8Char decode_utf8(const char* p, const char* end) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(p);
  const size_t n = static_cast<size_t>(end - p);
  const unsigned c0 = s[0];
  if (c0 < 0x80) return {c0, 1, true};
  // Length and the allowed range of the second byte (which rules out overlong
  // forms, surrogates and values above U+10FFFF).
  uint32_t len = 0;
  unsigned lo = 0x80, hi = 0xBF;
  char32_t cp = 0;
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    len = 2, cp = c0 & 0x1F;
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    len = 3, cp = c0 & 0x0F;
    if (c0 == 0xE0) lo = 0xA0;
    if (c0 == 0xED) hi = 0x9F;
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    len = 4, cp = c0 & 0x07;
    if (c0 == 0xF0) lo = 0x90;
    if (c0 == 0xF4) hi = 0x8F;
  } else {
    return {0xFFFD, 1, false};
  }
  for (uint32_t i = 1; i < len; ++i) {
    if (i >= n) return {0xFFFD, i, false};  // truncated: the maximal subpart is what is there
    const unsigned c = s[i];
    if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xBF)) return {0xFFFD, i, false};
    cp = (cp << 6) | (c & 0x3F);
  }
  return {cp, len, true};
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t incomplete_utf8_suffix(std::string_view s) noexcept {
  // Only the last 3 bytes can belong to an unfinished sequence.
  for (size_t back = std::min<size_t>(3, s.size()); back > 0; --back) {
    const char* p = s.data() + s.size() - back;
    const Utf8Char c = decode_utf8(p, s.data() + s.size());
    const auto lead = static_cast<unsigned char>(*p);
    if (!c.valid && c.len == back && lead >= 0xC2 && lead <= 0xF4) return back;
  }
  return 0;
}

std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const char* p = s.data();
  const char* end = p + s.size();
  while (p < end) {
    const Utf8Char c = decode_utf8(p, end);
    if (c.valid) {
      out.append(p, c.len);
    } else {
      append_utf8(out, 0xFFFD);
    }
    p += c.len;
  }
  return out;
}

bool is_nfc_stable(std::string_view s) noexcept {
  const char* p = s.data();
  const char* end = p + s.size();
  while (p < end) {
    if (static_cast<unsigned char>(*p) < 0x80) {
      ++p;
      continue;
    }
    const Utf8Char c = decode_utf8(p, end);
    if (c.valid && (char_class(c.cp) & kNfcUnstable)) return false;
    p += c.len;
  }
  return true;
}

std::string nfc(std::string_view s) {
  if (is_nfc_stable(s)) return std::string(s);
  // 1. Full canonical decomposition.
  std::vector<char32_t> d;
  d.reserve(s.size());
  for (const char* p = s.data(); p < s.data() + s.size();) {
    const Utf8Char c = decode_utf8(p, s.data() + s.size());
    if (c.valid) {
      decompose(c.cp, d);
    } else {
      for (uint32_t i = 0; i < c.len; ++i) d.push_back(kRawByte | static_cast<unsigned char>(p[i]));
    }
    p += c.len;
  }
  auto ccc = [](char32_t cp) -> uint8_t { return cp & kRawByte ? 0 : combining_class(cp); };
  // 2. Canonical ordering: a stable sort of each run of non-starters by class.
  for (size_t i = 0; i < d.size();) {
    if (ccc(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && ccc(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + static_cast<ptrdiff_t>(i), d.begin() + static_cast<ptrdiff_t>(j),
                     [&](char32_t a, char32_t b) { return ccc(a) < ccc(b); });
    i = j;
  }
  // 3. Canonical composition: each character joins the last starter unless blocked.
  std::vector<char32_t> out;
  out.reserve(d.size());
  ptrdiff_t starter = -1;
  int last_ccc = -1;  // -1: nothing between the starter and this character
  for (char32_t cp : d) {
    const int cc = ccc(cp);
    if (starter >= 0 && !(cp & kRawByte) && !(out[static_cast<size_t>(starter)] & kRawByte) &&
        (last_ccc == -1 || last_ccc < cc)) {
      if (char32_t composite = compose(out[static_cast<size_t>(starter)], cp)) {
        out[static_cast<size_t>(starter)] = composite;
        continue;
      }
    }
    if (cc == 0) {
      starter = static_cast<ptrdiff_t>(out.size());
      last_ccc = -1;
    } else {
      last_ccc = cc;
    }
    out.push_back(cp);
  }
  std::string result;
  result.reserve(s.size());
  for (char32_t cp : out) {
    if (cp & kRawByte) {
      result += static_cast<char>(cp & 0xFF);
    } else {
      append_utf8(result, cp);
    }
  }
  return result;
}

}  // namespace qilin::unicode
