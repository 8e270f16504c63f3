// Tokenizer units: pre-tokenizer pieces (expected pieces are Hugging Face's
// pre_tokenize_str output for the same configurations), UTF-8 and NFC,
// streaming decode, the plain-vector and GGUF constructors, and bad input.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/gguf.h"
#include "models/tokenizer/pretokenizer.h"
#include "models/tokenizer/token_decoder.h"
#include "models/tokenizer/tokenizer.h"
#include "models/tokenizer/unicode.h"

using namespace qilin;
namespace fs = std::filesystem;

namespace {

const fs::path kData = fs::path(QILIN_TEST_DATA_DIR) / "tokenizer";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<int32_t> read_ids(const fs::path& p) {
  std::istringstream in(read_file(p));
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

std::vector<std::string> pieces(PreTokenizer kind, std::string_view text) {
  std::vector<TextSpan> spans;
  pre_tokenize(kind, text, spans);
  std::vector<std::string> out;
  for (const TextSpan& s : spans) out.emplace_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

using Pieces = std::vector<std::string>;

}  // namespace

TEST_CASE("pre-tokenizers split like Hugging Face", "[tokenizer]") {
  using enum PreTokenizer;
  CHECK(pieces(smollm, "Hello world's 12345 end") ==
        Pieces{"Hello", " world", "'s", " ", "1", "2", "3", "4", "5", " end"});
  CHECK(pieces(qwen2, "Hello world's 12345 end") ==
        Pieces{"Hello", " world", "'s", " ", "1", "2", "3", "4", "5", " end"});
  CHECK(pieces(llama3, "Hello world's 12345 end") == Pieces{"Hello", " world", "'s", " ", "123", "45", " end"});
  CHECK(pieces(smollm, "  a\n\n  b\t\tc  ") == Pieces{" ", " a", "\n\n ", " b", "\t", "\t", "c", "  "});
  CHECK(pieces(qwen2, "  a\n\n  b\t\tc  ") == Pieces{" ", " a", "\n\n", " ", " b", "\t", "\tc", "  "});
  CHECK(pieces(qwen2, "x  \n\r\n y") == Pieces{"x", "  \n\r\n", " y"});
  CHECK(pieces(smollm, "(hi) 'S don'T...") == Pieces{"(", "hi", ")", " '", "S", " don", "'", "T", "..."});
  CHECK(pieces(qwen2, "(hi) 'S don'T...") == Pieces{"(hi", ")", " '", "S", " don", "'T", "..."});
  CHECK(pieces(qwen2,
               "\xE4\xB8\xAD\xE6\x96\x87"
               "abc \xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x81") == Pieces{"\xE4\xB8\xAD\xE6\x96\x87"
                                                                     "abc",
                                                                     " \xE4\xBD\xA0\xE5\xA5\xBD", "\xEF\xBC\x81"});
  CHECK(pieces(qwen2, "'\xC5\xBFx") == Pieces{"'\xC5\xBF", "x"});  // (?i) folds U+017F to s
  CHECK(pieces(smollm, "'\xC5\xBF a") == Pieces{"'", "\xC5\xBF", " a"});
  CHECK(pieces(llama3, "1 23 4567") == Pieces{"1", " ", "23", " ", "456", "7"});
  CHECK(pieces(smollm, "1 23 4567") == Pieces{"1", " ", "2", "3", " ", "4", "5", "6", "7"});
  // Invalid UTF-8 bytes are characters of their own class and are kept.
  CHECK(pieces(gpt2, "a\xFF\xFE b") == Pieces{"a", "\xFF\xFE", " b"});
  CHECK(pieces(qwen2, "").empty());
}

TEST_CASE("UTF-8: decoding, incomplete suffixes and lossy repair", "[tokenizer]") {
  const std::string euro = "\xE2\x82\xAC";
  CHECK(unicode::incomplete_utf8_suffix("ab") == 0);
  CHECK(unicode::incomplete_utf8_suffix("a\xE2") == 1);
  CHECK(unicode::incomplete_utf8_suffix("a\xE2\x82") == 2);
  CHECK(unicode::incomplete_utf8_suffix("a" + euro) == 0);
  CHECK(unicode::incomplete_utf8_suffix("\xF0\x9F\x98") == 3);
  CHECK(unicode::incomplete_utf8_suffix("a\xFF") == 0);      // never valid: nothing to wait for
  CHECK(unicode::incomplete_utf8_suffix("a\xED\xA0") == 0);  // a surrogate can never complete
  // One U+FFFD per maximal invalid subpart, as Rust's from_utf8_lossy.
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(unicode::to_valid_utf8("a\xE2\x82z") == "a" + fffd + "z");
  CHECK(unicode::to_valid_utf8("\xFF\xFE") == fffd + fffd);
  CHECK(unicode::to_valid_utf8("\xC0\xAF") == fffd + fffd);  // overlong
  CHECK(unicode::to_valid_utf8(euro + "\xF0\x9F") == euro + fffd);
  CHECK(unicode::char_class(U'a') == unicode::kLetter);
  CHECK(unicode::char_class(U'\u4E2D') == unicode::kLetter);
  CHECK(unicode::char_class(U'\u0663') == unicode::kNumber);
  CHECK(unicode::char_class(U'\u3000') == unicode::kSpace);
  CHECK(unicode::char_class(U'\u0085') == unicode::kSpace);
  CHECK(unicode::char_class(U'!') == 0);
}

TEST_CASE("NFC composes, reorders and keeps compatibility characters", "[tokenizer]") {
  CHECK(unicode::nfc("cafe\xCC\x81") == "caf\xC3\xA9");                           // e + U+0301 -> é
  CHECK(unicode::nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8") == "\xEA\xB0\x81");  // jamo -> 각
  CHECK(unicode::nfc("e\xCC\xA3\xCC\x82") == "\xE1\xBB\x87");                     // e + dot below + circumflex -> ệ
  CHECK(unicode::nfc("e\xCC\x82\xCC\xA3") == "\xE1\xBB\x87");                     // the other mark order too
  CHECK(unicode::nfc("\xE2\x84\xAB") == "\xC3\x85");                              // Angstrom sign -> Å
  CHECK(unicode::nfc("\xEF\xAC\x81") == "\xEF\xAC\x81");  // the ﬁ ligature stays (NFKC would not)
  CHECK(unicode::nfc("a\xFF"
                     "e\xCC\x81") == "a\xFF\xC3\xA9");  // invalid bytes pass through
  CHECK(unicode::is_nfc_stable("plain ascii and \xE4\xB8\xAD"));
  CHECK_FALSE(unicode::is_nfc_stable("e\xCC\x81"));
}

TEST_CASE("a tokenizer from plain vectors", "[tokenizer]") {
  TokenizerConfig c;
  c.tokens = {"a",
              "b",
              "c",
              "ab",
              "abc",
              "\xC4\xA0",
              "\xC4\xA0"
              "a"};  // "Ġ" is the space byte
  c.merges = {{"a", "b"}, {"ab", "c"}, {"\xC4\xA0", "a"}};
  c.added_tokens = {{"<eos>", 7, true}};
  c.eos_id = 7;
  c.pre_tokenizer = PreTokenizer::gpt2;
  const Tokenizer tok(std::move(c));
  CHECK(tok.vocab_size() == 8);
  // " ab" is Ġ a b: (a, b) has the lower rank, so it merges first and (Ġ, a) never applies.
  CHECK(tok.encode("abc ab a<eos>") == std::vector<int32_t>{4, 5, 3, 6, 7});
  CHECK(tok.encode("<eos>", {.parse_special = false}) != std::vector<int32_t>{7});
  CHECK(tok.decode(std::vector<int32_t>{4, 6, 1, 7}) == "abc ab<eos>");
  CHECK(tok.decode(std::vector<int32_t>{4, 7}, true) == "abc");
  CHECK_THROWS_AS(tok.decode(std::vector<int32_t>{8}), Error);
  CHECK_THROWS_AS(tok.decode(std::vector<int32_t>{-1}), Error);

  TokenizerConfig bad;
  bad.tokens = {"a"};
  bad.merges = {{"a", "zzz"}};
  CHECK_THROWS_WITH(Tokenizer(std::move(bad)), Catch::Contains("not in the vocabulary"));
}

TEST_CASE("streaming decode holds back split characters", "[tokenizer]") {
  const Tokenizer tok = Tokenizer::from_json_file((kData / "smollm2" / "tokenizer.json").string());
  for (const char* name : {"chinese", "emoji", "mixed", "random"}) {
    const std::vector<int32_t> ids = read_ids(kData / "smollm2" / "expected" / (std::string(name) + ".ids"));
    TokenDecoder stream(tok);
    std::string text;
    size_t held = 0;
    for (int32_t id : ids) {
      const std::string piece = stream.push(id);
      CHECK(unicode::to_valid_utf8(piece) == piece);  // never half a character
      held += stream.pending_bytes() > 0;
      text += piece;
    }
    text += stream.flush();
    CHECK(text == tok.decode(ids));
    CHECK(held > 0);  // these texts do split characters across tokens
  }
  // SentencePiece: byte tokens and the prefix space.
  const Tokenizer spm = Tokenizer::from_json_file((kData / "spm" / "tokenizer.json").string());
  const std::string text = "Hi \xE9\xBA\x92\xE9\xBA\x9F!";
  const std::vector<int32_t> ids = spm.encode(text, {.add_special = false});
  TokenDecoder stream(spm);
  std::string out;
  for (int32_t id : ids) out += stream.push(id);
  CHECK(stream.pending_bytes() == 0);
  CHECK(out == text);
  CHECK_THROWS_AS(stream.push(100000), Error);
}

TEST_CASE("GGUF tokenizer metadata gives the same ids as tokenizer.json", "[tokenizer]") {
  for (const char* name : {"llama3", "spm"}) {
    const GgufFile file = GgufFile::open((kData / name / "tokenizer.gguf").string());
    const Tokenizer tok = Tokenizer::from_gguf(file);
    for (const auto& entry : fs::directory_iterator(kData / "corpus")) {
      const std::string text = read_file(entry.path());
      const std::vector<int32_t> expected =
          read_ids(kData / name / "expected" / (entry.path().stem().string() + ".ids"));
      INFO(name << " on " << entry.path().filename().string());
      CHECK(tok.encode(text) == expected);
    }
  }
}

TEST_CASE("bad tokenizer.json input is a clear error", "[tokenizer]") {
  CHECK_THROWS_AS(Tokenizer::from_json("{not json"), Error);
  CHECK_THROWS_WITH(Tokenizer::from_json(R"({"model": {"type": "WordPiece", "vocab": {}}})"),
                    Catch::Contains("WordPiece"));
  CHECK_THROWS_WITH(Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
      "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}})"),
                    Catch::Contains("pre-tokenizer"));
  CHECK_THROWS_WITH(Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": {"a": -3}, "merges": []}})"),
                    Catch::Contains("bad id"));
  CHECK_THROWS_AS(Tokenizer::from_json_file("/nonexistent/tokenizer.json"), Error);
}

TEST_CASE("random bytes encode without error and decode back", "[tokenizer]") {
  // Text with truncated UTF-8 sequences must round-trip through the byte tokens:
  // decode(encode(x)) is x with invalid sequences shown as U+FFFD. (Bytes that
  // never occur in UTF-8, like 0xFF, are not in every vocabulary: SmolLM2 lacks
  // them and drops them as Hugging Face does.)
  const char* alphabet[] = {"a",
                            " ",
                            "  ",
                            "\n",
                            "\r\n",
                            "\t",
                            "7",
                            "'s",
                            "\xE4\xB8\xAD",
                            "\xF0\x9F\x98\x80",
                            "e\xCC\x81",
                            "<|im_start|>",
                            "<|im_",
                            "\xE4\xB8",
                            "\xC3",
                            "!",
                            "\xE2\x80\x83"};
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<size_t>(state >> 33);
  };
  for (const char* folder : {"smollm2", "qwen2", "llama3", "spm"}) {
    const Tokenizer tok = Tokenizer::from_json_file((kData / folder / "tokenizer.json").string());
    for (int round = 0; round < 200; ++round) {
      std::string text;
      const size_t n = next() % 40;
      for (size_t i = 0; i < n; ++i) text += alphabet[next() % std::size(alphabet)];
      const std::vector<int32_t> ids = tok.encode(text, {.add_special = false});
      for (int32_t id : ids) REQUIRE((id >= 0 && id < tok.vocab_size()));
      const std::string expected = tok.pre_tokenizer() == PreTokenizer::qwen2 ? unicode::nfc(text) : text;
      INFO(folder << " round " << round);
      CHECK(tok.decode(ids) == unicode::to_valid_utf8(expected));
    }
  }
}
