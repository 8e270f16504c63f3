// The GLM tokenizers and chat templates against Hugging Face (fixtures made by
// tests/data/tokenizer/make_glm_fixtures.py): a GLM-4-style byte-level BPE vocabulary
// whose encodings start with "[gMASK]<sop>", from tokenizer.json and from the GGUF
// metadata llama.cpp's ChatGLM converter writes; the GLM-4-9B-chat, GLM-4-0414 and
// ChatGLM3 templates against transformers' apply_chat_template, multi-turn.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/gguf.h"
#include "models/tokenizer/chat_template.h"
#include "models/tokenizer/tokenizer.h"

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

// Ids of the fixture's special tokens (GLM-4's order, after 310 regular tokens).
constexpr int32_t kEndOfText = 310, kGMask = 312, kSop = 314, kUser = 317, kAssistant = 318;

// Checks `tok` against the Hugging Face ids of every corpus file (which start with the prefix).
void check_corpus(const Tokenizer& tok) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kData / "corpus")) {
    if (entry.path().extension() != ".txt") continue;
    const std::string text = read_file(entry.path());
    const std::vector<int32_t> expected =
        read_ids(kData / "glm4" / "expected" / (entry.path().stem().string() + ".ids"));
    INFO(entry.path().filename().string());
    REQUIRE(expected.size() >= 2);
    CHECK(tok.encode(text) == expected);
    // Without special tokens: no prefix, and the text comes back.
    const std::vector<int32_t> plain = tok.encode(text, {.add_special = false});
    CHECK(plain == std::vector<int32_t>(expected.begin() + 2, expected.end()));
    CHECK(tok.decode(plain) == text);
    ++files;
  }
  CHECK(files >= 9);
}

// Mirrors CONVERSATIONS (make_tokenizer_fixtures.py) + GLM_CONVERSATIONS (make_glm_fixtures.py).
const std::map<std::string, std::vector<ChatMessage>> kConversations = {
    {"single_user", {{"user", "Hello!"}}},
    {"with_system", {{"system", "You are terse."}, {"user", "2+2?"}, {"assistant", "4"}, {"user", "And 3+3?"}}},
    {"multiline",
     {{"user", "Line one\nLine two\n\n  indented \xE4\xB8\xAD\xE6\x96\x87"}, {"assistant", " padded answer \n"}}},
    {"late_system", {{"user", "Hi"}, {"assistant", ""}, {"system", "Be brief."}, {"user", "Why?"}}},
};

}  // namespace

TEST_CASE("GLM-4 tokenizer.json: Llama-3 split regex, [gMASK]<sop> before every encoding", "[tokenizer][glm]") {
  const Tokenizer tok = Tokenizer::from_json_file((kData / "glm4" / "tokenizer.json").string());
  CHECK(tok.pre_tokenizer() == PreTokenizer::llama3);
  CHECK(tok.vocab_size() == 320);
  CHECK(tok.token_id("[gMASK]") == kGMask);
  CHECK(tok.is_special(kSop));
  CHECK(tok.eos_id() == kEndOfText);  // <|endoftext|>, named by the added tokens
  CHECK(tok.bos_id() == -1);          // two tokens before $A are a prefix, not a BOS
  CHECK(tok.encode("").size() == 2);
  check_corpus(tok);
  // The chat template comes from tokenizer_config.json.
  CHECK(ChatTemplate::detect(tok.chat_template()).family == ChatFamily::glm4);
}

TEST_CASE("GLM-4 GGUF tokenizer (llama.cpp's chatglm layout) encodes as tokenizer.json", "[tokenizer][glm]") {
  const GgufFile file = GgufFile::open((kData / "glm4" / "tokenizer.gguf").string());
  REQUIRE(file.get_string("tokenizer.ggml.pre", "") == "chatglm-bpe");
  REQUIRE_FALSE(file.get_bool("tokenizer.ggml.add_bos_token", true));
  const Tokenizer tok = Tokenizer::from_gguf(file);
  CHECK(tok.eos_id() == kEndOfText);
  // llama.cpp leaves "[gMASK]<sop>" to the chat template; Qilin adds it for the chatglm
  // and glm4 architectures, as the Hugging Face tokenizer does.
  check_corpus(tok);
  // A chat render holds the prefix itself: encoded without special tokens, it appears once.
  const ChatTemplate t = ChatTemplate::detect(tok.chat_template());
  const std::vector<int32_t> ids = tok.encode(t.render(kConversations.at("with_system"), true), {.add_special = false});
  REQUIRE(ids.size() > 4);
  CHECK(ids[0] == kGMask);
  CHECK(ids[1] == kSop);
  CHECK(ids.back() == kAssistant);
  CHECK(std::count(ids.begin(), ids.end(), kGMask) == 1);
  CHECK(std::count(ids.begin(), ids.end(), kUser) == 2);
}

TEST_CASE("GLM chat templates match transformers, multi-turn", "[tokenizer][glm]") {
  const std::map<std::string, ChatFamily> families = {
      {"glm4", ChatFamily::glm4}, {"glm4_0414", ChatFamily::glm4}, {"chatglm3", ChatFamily::chatglm3}};
  for (const auto& [name, family] : families) {
    const ChatTemplate t = ChatTemplate::detect(read_file(kData / "chat" / (name + ".jinja")));
    CHECK(t.family == family);
    CHECK(t.warning.empty());
    CHECK(t.skip_empty == (name == "glm4"));
    CHECK(t.system_first == (name == "glm4_0414"));
    for (const auto& [conversation, messages] : kConversations) {
      for (bool gen : {false, true}) {
        INFO(name << " " << conversation << " gen=" << gen);
        const std::string expected =
            read_file(kData / "chat" / (name + "." + conversation + (gen ? ".gen" : ".nogen") + ".txt"));
        CHECK(t.render(messages, gen) == expected);
      }
    }
  }
}
