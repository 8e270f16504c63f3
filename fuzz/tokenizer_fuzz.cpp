// libFuzzer target for the tokenizers: any byte string must encode without a crash
// or an out-of-range id, with the SmolLM2 byte-level BPE vocabulary and a
// SentencePiece BPE one with byte fallback (tests/data/tokenizer/, loaded once).
// For valid UTF-8, decode(encode(x)) must give x back (special tokens not parsed,
// nothing added) unless x holds a byte that the byte-level vocabulary has no token
// for (SmolLM2 lacks 21 of the 256, e.g. 0x13 and 0xF1, and drops them as Hugging
// Face does) or, for SentencePiece, the space mark U+2581 itself (it decodes as a
// space, as in Hugging Face), and the streaming TokenDecoder must produce the same text as
// decode(). Inputs are also encoded with special tokens parsed and BOS/EOS added.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "models/tokenizer/byte_level.h"
#include "models/tokenizer/token_decoder.h"
#include "models/tokenizer/tokenizer.h"
#include "models/tokenizer/unicode.h"

namespace {

// A tokenizer and the bytes it can encode losslessly.
struct Vocabulary {
  explicit Vocabulary(const char* path) : tokenizer(qilin::Tokenizer::from_json_file(path)) {
    for (int b = 0; b < 256; ++b) {
      const std::string byte(1, static_cast<char>(b));
      has_byte[b] = tokenizer.model() == qilin::TokenizerModel::sentencepiece_bpe ||  // <0xXX> byte fallback
                    tokenizer.token_id(qilin::byte_level_encode(byte)) >= 0;
    }
  }
  bool round_trips(std::string_view text) const {
    if (tokenizer.model() == qilin::TokenizerModel::sentencepiece_bpe && text.find("\xE2\x96\x81") != text.npos)
      return false;
    for (char c : text)
      if (!has_byte[static_cast<unsigned char>(c)]) return false;
    return true;
  }
  qilin::Tokenizer tokenizer;
  bool has_byte[256] = {};
};

struct Vocabularies {
  Vocabulary smollm2{QILIN_TEST_DATA_DIR "/tokenizer/smollm2/tokenizer.json"};
  Vocabulary spm{QILIN_TEST_DATA_DIR "/tokenizer/spm/tokenizer.json"};
};

const Vocabularies& vocabularies() {
  static const Vocabularies v;
  return v;
}

[[noreturn]] void die(const char* what, const qilin::Tokenizer& t, std::string_view text) {
  std::fprintf(stderr, "tokenizer_fuzz: %s (model %d, %zu input bytes)\n", what, static_cast<int>(t.model()),
               text.size());
  std::abort();
}

void check(const Vocabulary& v, std::string_view text, bool valid_utf8) {
  const qilin::Tokenizer& t = v.tokenizer;
  qilin::EncodeOptions plain;
  plain.add_special = false;
  plain.parse_special = false;
  const std::vector<int32_t> ids = t.encode(text, plain);
  for (int32_t id : ids)
    if (id < 0 || id >= t.vocab_size()) die("id out of range", t, text);
  const std::string decoded = t.decode(ids);
  if (valid_utf8 && v.round_trips(text) && decoded != text) die("decode(encode(x)) != x", t, text);
  if (qilin::unicode::to_valid_utf8(decoded) != decoded) die("decode() returned invalid UTF-8", t, text);

  qilin::TokenDecoder stream(t);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  if (streamed != decoded) die("TokenDecoder's text differs from decode()", t, text);

  const std::vector<int32_t> special = t.encode(text);  // specials parsed, BOS/EOS as configured
  for (int32_t id : special)
    if (id < 0 || id >= t.vocab_size()) die("id out of range (specials parsed)", t, text);
  (void)t.decode(special, /*skip_special=*/true);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  try {
    vocabularies();
  } catch (const qilin::Error& e) {
    std::fprintf(stderr, "tokenizer_fuzz: cannot load the fixtures: %s\n", e.what());
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool valid_utf8 = qilin::unicode::to_valid_utf8(text) == text;
  const Vocabularies& v = vocabularies();
  check(v.smollm2, text, valid_utf8);
  check(v.spm, text, valid_utf8);
  return 0;
}
