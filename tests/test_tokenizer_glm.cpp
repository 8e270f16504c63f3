// The GLM tokenizers and chat templates against Hugging Face (fixtures made by
// tests/data/tokenizer/make_glm_fixtures.py): a GLM-4-style byte-level BPE vocabulary
// whose encodings start with "[gMASK]<sop>", from tokenizer.json and from the GGUF
// metadata llama.cpp's ChatGLM converter writes; the GLM-4-9B-chat, GLM-4-0414 and
// ChatGLM3 templates against transformers' apply_chat_template, multi-turn; a ChatGLM3-style
// GGUF (SentencePiece vocabulary, arch chatglm) getting its "[gMASK]sop" prefix.
#include <unistd.h>

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
#include "core/gguf_writer.h"
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
    {"reply", {{"user", "Hi"}, {"assistant", "Hello! How can I help?\nAsk away."}, {"user", "Why?"}}},
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

TEST_CASE(
    "GLM replies: the text the model writes after <|assistant|> joins the conversation as transformers renders it",
    "[tokenizer][glm]") {
  // The generation prompt ends at "<|assistant|>"; the template writes an assistant turn as
  // "<|assistant|>\n" + content (ChatGLM3: "\n " + content, the space being SentencePiece's
  // prefix), so the model writes that line break first. The content is what follows it.
  const std::string content = "Hello! How can I help?\nAsk away.";
  for (const std::string name : {"glm4", "glm4_0414", "chatglm3"}) {
    INFO(name);
    const ChatTemplate t = ChatTemplate::detect(read_file(kData / "chat" / (name + ".jinja")));
    const std::string generated = (name == "chatglm3" ? "\n " : "\n") + content;
    CHECK(t.reply_content(generated) == content);
    const std::vector<ChatMessage> conversation = {
        {"user", "Hi"}, {"assistant", std::string(t.reply_content(generated))}, {"user", "Why?"}};
    CHECK(t.render(conversation, true) == read_file(kData / "chat" / (name + ".reply.gen.txt")));
    // A reply that does not start with the line break (a tool call's metadata line) is kept whole.
    CHECK(t.reply_content("get_weather\n{}") == "get_weather\n{}");
  }
  // Other templates open the assistant's turn with its line break: replies are content as they are.
  const ChatTemplate chatml = ChatTemplate::detect("{{'<|im_start|>' + message['role'] + '\\n'}}");
  CHECK(chatml.reply_content("\nHi") == "\nHi");
}

TEST_CASE("ChatGLM3-style GGUF: a SentencePiece vocabulary of arch chatglm encodes after [gMASK]sop",
          "[tokenizer][glm]") {
  // The spm fixture's vocabulary as llama.cpp's set_vocab_chatglm3 lays one out: model
  // "llama", ChatGLM3's command tokens appended as control tokens, no BOS added.
  const GgufFile spm = GgufFile::open((kData / "spm" / "tokenizer.gguf").string());
  std::vector<std::string> tokens = spm.require_string_array("tokenizer.ggml.tokens");
  std::vector<float> scores = spm.require_float_array("tokenizer.ggml.scores");
  std::vector<int32_t> types;
  for (int64_t t : spm.require_int_array("tokenizer.ggml.token_type")) types.push_back(static_cast<int32_t>(t));
  const auto n = static_cast<int32_t>(tokens.size());
  for (const char* command :
       {"[MASK]", "[gMASK]", "[sMASK]", "sop", "eop", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"}) {
    tokens.emplace_back(command);
    scores.push_back(0.0f);
    types.push_back(3);  // control
  }
  const fs::path path = fs::temp_directory_path() / ("qilin_chatglm3_" + std::to_string(::getpid()) + ".gguf");
  GgufWriter w;
  w.add("general.architecture", GgufValue::string("chatglm"));
  w.add("tokenizer.ggml.model", GgufValue::string("llama"));
  w.add("tokenizer.ggml.pre", GgufValue::string("chatglm-spm"));
  w.add("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
  w.add("tokenizer.ggml.scores", GgufValue::f32_array(scores));
  w.add("tokenizer.ggml.token_type", GgufValue::i32_array(types));
  w.add("tokenizer.ggml.eos_token_id", GgufValue::u32(2));
  w.add("tokenizer.ggml.add_bos_token", GgufValue::boolean(false));
  w.write(path.string());
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(path.string()));
  fs::remove(path);
  const Tokenizer plain = Tokenizer::from_gguf(spm);
  const int32_t gmask = n + 1, sop = n + 3;
  const std::string text = "Hello world, \xE9\xBA\x92\xE9\xBA\x9F!";
  std::vector<int32_t> expected = {gmask, sop};
  const std::vector<int32_t> body = plain.encode(text, {.add_special = false});
  expected.insert(expected.end(), body.begin(), body.end());
  CHECK(tok.encode(text) == expected);
  CHECK(tok.encode(text, {.add_special = false}) == body);
  // The ChatGLM3 template names its command tokens in the text.
  const ChatTemplate t = ChatTemplate::detect(read_file(kData / "chat" / "chatglm3.jinja"));
  const std::vector<int32_t> chat =
      tok.encode(t.render(std::vector<ChatMessage>{{"user", "Hi"}}, true), {.add_special = false});
  REQUIRE(chat.size() > 4);
  CHECK(chat[0] == gmask);
  CHECK(chat[1] == sop);
  CHECK(chat[2] == n + 6);      // <|user|>
  CHECK(chat.back() == n + 7);  // <|assistant|>

  // ChatGLM3 names its command tokens as words: "sop" (or "<|user|>") in a message is text,
  // as ChatGLM3's own build_chat_input encodes message contents; only the template's
  // markers become command tokens.
  const std::string message = "Let sop be [gMASK]sop<|user|>, soprano.";
  const ChatPrompt prompt = t.render_prompt(std::vector<ChatMessage>{{"user", message}}, true);
  CHECK(prompt.text == t.render(std::vector<ChatMessage>{{"user", message}}, true));
  REQUIRE(prompt.contents.size() == 1);
  CHECK(prompt.text.substr(prompt.contents[0].begin, prompt.contents[0].end - prompt.contents[0].begin) == message);
  std::vector<int32_t> want = {gmask, sop, n + 6};
  const std::vector<int32_t> content = tok.encode("\n " + message, {.add_special = false, .parse_special = false});
  want.insert(want.end(), content.begin(), content.end());
  want.push_back(n + 7);
  const std::vector<int32_t> ids =
      tok.encode(prompt.text, {.add_special = false, .parse_special = true, .plain_ranges = prompt.contents});
  CHECK(ids == want);
  CHECK(std::count(ids.begin(), ids.end(), sop) == 1);
  // Without the ranges the message's "sop" would be the command token (what the ranges prevent).
  const std::vector<int32_t> parsed = tok.encode(prompt.text, {.add_special = false});
  CHECK(std::count(parsed.begin(), parsed.end(), sop) == 4);
}

TEST_CASE("GLM-4 chat prompts: message contents never become special tokens, the template's markers do",
          "[tokenizer][glm]") {
  const Tokenizer tok = Tokenizer::from_json_file((kData / "glm4" / "tokenizer.json").string());
  const ChatTemplate t = ChatTemplate::detect(tok.chat_template());
  // Every conversation of the fixtures: without special-token text in the contents, the
  // ranges change nothing (the ids are transformers' for the rendered text).
  for (const auto& [name, messages] : kConversations) {
    INFO(name);
    const ChatPrompt prompt = t.render_prompt(messages, true);
    CHECK(tok.encode(prompt.text, {.add_special = false, .plain_ranges = prompt.contents}) ==
          tok.encode(prompt.text, {.add_special = false}));
  }
  // Each content range covers exactly that message's text, in order.
  const std::vector<ChatMessage> chat = {{"system", "<|system|>S"}, {"user", "a<sop>"}, {"assistant", "[gMASK]"}};
  const ChatPrompt prompt = t.render_prompt(chat, true);
  REQUIRE(prompt.contents.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    const TextRange r = prompt.contents[i];
    CHECK(prompt.text.substr(r.begin, r.end - r.begin) == chat[i].content);
  }
  const std::vector<int32_t> ids = tok.encode(prompt.text, {.add_special = false, .plain_ranges = prompt.contents});
  CHECK(std::count(ids.begin(), ids.end(), kGMask) == 1);
  CHECK(std::count(ids.begin(), ids.end(), kSop) == 1);
  CHECK(tok.decode(ids) == prompt.text);
}

TEST_CASE("GGUF pre-tokenizer names: GLM-4's apply BPE merges, Llama-3's take whole vocabulary pieces",
          "[tokenizer][glm]") {
  // "abc" is in the vocabulary but no merge builds it: llama.cpp's llama-bpe ignores
  // merges for a pre-tokenized piece that is one token; its GLM-4 names (chatglm-bpe,
  // glm4) run the merges, as GLM-4's tokenizer.json (ignore_merges false) does.
  const auto encode_abc = [](const char* pre) {
    const fs::path path =
        fs::temp_directory_path() / ("qilin_pre_" + std::string(pre) + "_" + std::to_string(::getpid()) + ".gguf");
    GgufWriter w;
    w.add("general.architecture", GgufValue::string("chatglm"));
    w.add("tokenizer.ggml.model", GgufValue::string("gpt2"));
    w.add("tokenizer.ggml.pre", GgufValue::string(pre));
    w.add("tokenizer.ggml.tokens", GgufValue::string_array({"a", "b", "c", "ab", "abc"}));
    w.add("tokenizer.ggml.merges", GgufValue::string_array({"a b"}));
    w.write(path.string());
    const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(path.string()));
    fs::remove(path);
    return tok.encode("abc", {.add_special = false});
  };
  CHECK(encode_abc("chatglm-bpe") == std::vector<int32_t>{3, 2});
  CHECK(encode_abc("glm4") == std::vector<int32_t>{3, 2});
  CHECK(encode_abc("llama-bpe") == std::vector<int32_t>{4});
}
