// StopStrings: stop strings found across piece boundaries, text held back only while it
// could still start a stop string, and the same result however the text is cut.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "models/stop_strings.h"

using namespace qilin;

namespace {

struct Streamed {
  std::vector<std::string> emitted;  // what each feed() returned
  std::string text;                  // everything emitted, flush included
  bool stopped = false;
  std::string matched;
};

Streamed stream(std::vector<std::string> stops, const std::vector<std::string>& pieces) {
  StopStrings s(std::move(stops));
  Streamed out;
  for (const std::string& p : pieces) {
    out.emitted.push_back(s.feed(p));
    out.text += out.emitted.back();
  }
  out.text += s.flush();
  out.stopped = s.stopped();
  out.matched = s.matched();
  return out;
}

// Every split of `text` into one, two and three pieces, and byte by byte.
std::vector<std::vector<std::string>> splits(const std::string& text) {
  std::vector<std::vector<std::string>> all = {{text}};
  for (size_t a = 0; a <= text.size(); ++a) {
    all.push_back({text.substr(0, a), text.substr(a)});
    for (size_t b = a; b <= text.size(); ++b) all.push_back({text.substr(0, a), text.substr(a, b - a), text.substr(b)});
  }
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  all.push_back(bytes);
  return all;
}

}  // namespace

TEST_CASE("stop strings: a stop spanning several pieces", "[stop_strings]") {
  const Streamed s = stream({"</s>"}, {"Hello", " world<", "/", "s>", " ignored"});
  CHECK(s.emitted == std::vector<std::string>{"Hello", " world", "", "", ""});
  CHECK(s.text == "Hello world");
  CHECK(s.stopped);
  CHECK(s.matched == "</s>");
}

TEST_CASE("stop strings: a prefix that turns out not to be a stop is released", "[stop_strings]") {
  const Streamed s = stream({"<|end|>"}, {"a <|e", "nd", "ing", " b"});
  CHECK(s.emitted == std::vector<std::string>{"a ", "", "<|ending", " b"});
  CHECK(s.text == "a <|ending b");
  CHECK_FALSE(s.stopped);
  CHECK(s.matched.empty());
  // A held-back prefix at the end comes out of flush().
  StopStrings t({"STOP"});
  CHECK(t.feed("go ST") == "go ");
  CHECK(t.flush() == "ST");
  CHECK(t.flush().empty());
  // A later part of the held text can itself start a stop: "aab" with stop "ab".
  const Streamed u = stream({"ab"}, {"a", "a", "b"});
  CHECK(u.emitted == std::vector<std::string>{"", "a", ""});
  CHECK(u.matched == "ab");
}

TEST_CASE("stop strings: overlapping stops, the one that ends first wins", "[stop_strings]") {
  // "bc" completes before "abcd" does, so it wins even though "abcd" starts earlier.
  for (const auto& pieces : splits("xabcdy")) {
    const Streamed s = stream({"abcd", "bc"}, pieces);
    CHECK(s.text == "xa");
    CHECK(s.matched == "bc");
  }
  // Stops sharing a prefix: "ab" ends first.
  for (const auto& pieces : splits("xxabcd")) {
    const Streamed s = stream({"abc", "ab", "abd"}, pieces);
    CHECK(s.text == "xx");
    CHECK(s.matched == "ab");
  }
  // Same end: the longer one (it starts first) is hidden whole.
  for (const auto& pieces : splits("1 User: hi")) {
    const Streamed s = stream({"r:", "User:"}, pieces);
    CHECK(s.text == "1 ");
    CHECK(s.matched == "User:");
  }
  // Held text is the longest suffix that starts some stop.
  StopStrings t({"xyz", "yzw"});
  CHECK(t.feed("axy") == "a");
  CHECK(t.feed("z") == "");
  CHECK(t.matched() == "xyz");
}

TEST_CASE("stop strings: the result does not depend on how the text is cut", "[stop_strings]") {
  const std::vector<std::string> stops = {"\n\nUser", "###", "ab"};
  for (const std::string text : {"plain text with no stop", "line\n\nUse it\n\nUser: x", "a#b##c###d", "xaab"}) {
    const Streamed whole = stream(stops, {text});
    for (const auto& pieces : splits(text)) {
      const Streamed s = stream(stops, pieces);
      CHECK(s.text == whole.text);
      CHECK(s.matched == whole.matched);
    }
  }
}

TEST_CASE("stop strings: UTF-8 stops", "[stop_strings]") {
  // "。" is E3 80 82 and "終" is E7 B5 82: pieces may split a character's bytes.
  const std::string text = "答案是四。終わり";
  for (const auto& pieces : splits(text)) {
    const Streamed s = stream({"。終"}, pieces);
    CHECK(s.text == "答案是四");
    CHECK(s.matched == "。終");
  }
  // A stop sharing a lead byte with the text is not mistaken for it: "。" vs "〃" (E3 80 83).
  const Streamed s = stream({"〃"}, {"a。", "b"});
  CHECK(s.text == "a。b");
  CHECK_FALSE(s.stopped);
}

TEST_CASE("stop strings: no stops passes everything through at once", "[stop_strings]") {
  const Streamed s = stream({}, {"a", "<", "/s>", ""});
  CHECK(s.emitted == std::vector<std::string>{"a", "<", "/s>", ""});
  CHECK_FALSE(s.stopped);
  // Empty strings are ignored, not treated as an immediate stop.
  const Streamed e = stream({"", ""}, {"abc"});
  CHECK(e.emitted == std::vector<std::string>{"abc"});
  CHECK_FALSE(e.stopped);
}

TEST_CASE("stop strings: after a stop, nothing more; reset starts over", "[stop_strings]") {
  StopStrings s({"END"});
  CHECK(s.feed("xEN") == "x");
  CHECK(s.feed("Dyz") == "");
  CHECK(s.stopped());
  CHECK(s.feed("more") == "");
  CHECK(s.flush() == "");
  s.reset();
  CHECK_FALSE(s.stopped());
  CHECK(s.matched().empty());
  CHECK(s.feed("abc") == "abc");
}
