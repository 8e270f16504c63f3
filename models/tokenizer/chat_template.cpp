#include "models/tokenizer/chat_template.h"

namespace qilin {
namespace {

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

// Jinja's trim filter: Python's str.strip() (ASCII whitespace is what chat text carries).
std::string_view trim(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// The default system prompt of a ChatML template: the text after
// "<|im_start|>system\n" up to "<|im_end|>" in a string literal of the
// template, where "\n" may be written as an escape. Literal text only: a
// system prompt built from variables (Qwen2.5's tool prompt) is not followed.
std::string chatml_default_system(std::string_view jinja) {
  for (std::string_view opener :
       {std::string_view("<|im_start|>system\\n"), std::string_view("<|im_start|>system\n")}) {
    const size_t at = jinja.find(opener);
    if (at == std::string_view::npos) continue;
    const size_t begin = at + opener.size();
    const size_t end = jinja.find("<|im_end|>", begin);
    if (end == std::string_view::npos) continue;
    const std::string_view text = jinja.substr(begin, end - begin);
    if (contains(text, "'") || contains(text, "{")) continue;  // the literal ends inside: not a constant prompt
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
        out += '\n';
        ++i;
      } else {
        out += text[i];
      }
    }
    return out;
  }
  return {};
}

}  // namespace

std::string_view name_of(ChatFamily family) noexcept {
  switch (family) {
    case ChatFamily::chatml:
      return "chatml";
    case ChatFamily::llama3:
      return "llama3";
    case ChatFamily::glm4:
      return "glm4";
    case ChatFamily::chatglm3:
      return "chatglm3";
  }
  return "?";
}

ChatTemplate ChatTemplate::detect(std::string_view jinja) {
  ChatTemplate t;
  if (contains(jinja, "<|im_start|>")) {
    t.family = ChatFamily::chatml;
    t.default_system = chatml_default_system(jinja);
  } else if (contains(jinja, "<|start_header_id|>")) {
    t.family = ChatFamily::llama3;
  } else if (contains(jinja, "[gMASK]<sop>")) {
    t.family = ChatFamily::glm4;
    t.skip_empty = contains(jinja, "{% if item['content'] %}");
    t.system_first = contains(jinja, "message.role != 'system'");
  } else if (contains(jinja, "[gMASK]sop")) {
    t.family = ChatFamily::chatglm3;
  } else {
    t.family = ChatFamily::chatml;
    t.warning = jinja.empty() ? "the model has no chat template; using ChatML"
                              : "the model's chat template is not one Qilin recognises; using ChatML";
  }
  return t;
}

ChatPrompt ChatTemplate::render_prompt(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  ChatPrompt p;
  std::string& out = p.text;
  const auto content = [&](std::string_view text) {
    if (text.empty()) return;
    p.contents.push_back({out.size(), out.size() + text.size()});
    out += text;
  };
  switch (family) {
    case ChatFamily::chatml:
      if (!default_system.empty() && !messages.empty() && messages.front().role != "system")
        out += "<|im_start|>system\n" + default_system + "<|im_end|>\n";
      for (const ChatMessage& m : messages) {
        out += "<|im_start|>" + m.role + "\n";
        content(m.content);
        out += "<|im_end|>\n";
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    case ChatFamily::llama3:
      out += "<|begin_of_text|>";  // Meta's template writes the BOS text itself
      for (const ChatMessage& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n";
        content(trim(m.content));
        out += "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatFamily::glm4: {
      // No newline after the last "<|assistant|>": the model writes it (both templates).
      out += "[gMASK]<sop>";
      const auto turn = [&](const ChatMessage& m) {
        if (skip_empty && m.content.empty()) return;
        out += "<|" + m.role + "|>\n";
        content(m.content);
      };
      for (const ChatMessage& m : messages)
        if (!system_first || m.role == "system") turn(m);
      if (system_first)
        for (const ChatMessage& m : messages)
          if (m.role != "system") turn(m);
      if (add_generation_prompt) out += "<|assistant|>";
      break;
    }
    case ChatFamily::chatglm3:
      out += "[gMASK]sop";
      for (const ChatMessage& m : messages) {
        out += "<|" + m.role + "|>\n ";
        content(m.content);
      }
      if (add_generation_prompt) out += "<|assistant|>";
      break;
  }
  return p;
}

std::string_view ChatTemplate::reply_content(std::string_view generated) const {
  if (family != ChatFamily::glm4 && family != ChatFamily::chatglm3) return generated;
  // A reply without the line break opens with a metadata line (GLM's tool calls), which
  // ChatMessage does not model: it is kept whole.
  if (!generated.starts_with('\n')) return generated;
  generated.remove_prefix(1);
  // ChatGLM3 writes "\n" then content with SentencePiece's prefix space ("\n▁Hello").
  if (family == ChatFamily::chatglm3 && generated.starts_with(' ')) generated.remove_prefix(1);
  return generated;
}

bool ChatTemplate::reply_start_known(std::string_view head) const {
  if (family == ChatFamily::glm4) return !head.empty();
  if (family == ChatFamily::chatglm3) return !head.empty() && (!head.starts_with('\n') || head.size() >= 2);
  return true;
}

}  // namespace qilin
