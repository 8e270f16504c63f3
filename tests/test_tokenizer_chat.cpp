// Chat templates: Qilin's native rendering against transformers'
// apply_chat_template output (tests/data/tokenizer/chat/, made by
// make_tokenizer_fixtures.py) for the SmolLM2 and Qwen2 templates, and the
// family detection for the others.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

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

// Mirrors CONVERSATIONS in make_tokenizer_fixtures.py: keep the two in step.
const std::map<std::string, std::vector<ChatMessage>> kConversations = {
    {"single_user", {{"user", "Hello!"}}},
    {"with_system", {{"system", "You are terse."}, {"user", "2+2?"}, {"assistant", "4"}, {"user", "And 3+3?"}}},
    {"multiline",
     {{"user", "Line one\nLine two\n\n  indented \xE4\xB8\xAD\xE6\x96\x87"}, {"assistant", " padded answer \n"}}},
};

}  // namespace

TEST_CASE("chat templates match transformers for SmolLM2 and Qwen2", "[tokenizer]") {
  for (const char* family : {"smollm2", "qwen2"}) {
    const Tokenizer tok = Tokenizer::from_json_file((kData / family / "tokenizer.json").string());
    REQUIRE_FALSE(tok.chat_template().empty());
    const ChatTemplate t = ChatTemplate::detect(tok.chat_template());
    CHECK(t.family == ChatFamily::chatml);
    CHECK(t.warning.empty());
    for (const auto& [name, messages] : kConversations) {
      for (bool gen : {false, true}) {
        const std::string expected =
            read_file(kData / "chat" / (std::string(family) + "." + name + (gen ? ".gen" : ".nogen") + ".txt"));
        INFO(family << " " << name << " gen=" << gen);
        CHECK(t.render(messages, gen) == expected);
      }
    }
  }
}

TEST_CASE("chat template families are detected from the Jinja text", "[tokenizer]") {
  const std::vector<ChatMessage> chat = {{"system", "S"}, {"user", " hi \n"}};
  const ChatTemplate llama3 = ChatTemplate::detect(
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
      "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}...");
  CHECK(llama3.family == ChatFamily::llama3);
  CHECK(llama3.render(chat, true) ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_"
        "id|>"
        "\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  const ChatTemplate glm4 = ChatTemplate::detect("[gMASK]<sop>{% for item in messages %}<|{{ item['role'] }}|>...");
  CHECK(glm4.family == ChatFamily::glm4);
  CHECK(glm4.render(chat, true) == "[gMASK]<sop><|system|>\nS<|user|>\n hi \n<|assistant|>");  // as transformers
  const ChatTemplate glm3 = ChatTemplate::detect("{% if loop.first %}[gMASK]sop<|{{ message['role'] }}|>\n ...");
  CHECK(glm3.family == ChatFamily::chatglm3);
  CHECK(glm3.render(chat, true) == "[gMASK]sop<|system|>\n S<|user|>\n  hi \n<|assistant|>");
  // ChatML without a default system prompt, and the fallback with its warning.
  const ChatTemplate plain = ChatTemplate::detect("{{'<|im_start|>' + message['role'] + '\\n' + message['content']}}");
  CHECK(plain.default_system.empty());
  CHECK(plain.render(std::vector<ChatMessage>{{"user", "x"}}, false) == "<|im_start|>user\nx<|im_end|>\n");
  const ChatTemplate unknown = ChatTemplate::detect("{{ bos_token }}[INST] {{ message['content'] }} [/INST]");
  CHECK(unknown.family == ChatFamily::chatml);
  CHECK_FALSE(unknown.warning.empty());
  CHECK_FALSE(ChatTemplate::detect("").warning.empty());
}
