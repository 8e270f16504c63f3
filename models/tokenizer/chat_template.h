// Chat templates rendered natively (no Jinja engine) for the families Qilin
// supports, chosen from the model's Jinja template by distinctive substrings:
//   chatml    "<|im_start|>"         Qwen, SmolLM2 (with the template's default system prompt)
//   llama3    "<|start_header_id|>"  Llama-3
//   glm4      "[gMASK]<sop>"         GLM-4-9B-chat and GLM-4-0414
//   chatglm3  "[gMASK]sop"           ChatGLM3
// An unknown or missing template falls back to ChatML and says so in `warning`
// (the library never prints; the caller decides).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "models/tokenizer/special_tokens.h"

namespace qilin {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

enum class ChatFamily { chatml, llama3, glm4, chatglm3 };

// A rendered prompt and where the messages' contents lie in it. The template's own text
// names special tokens ("<|user|>", ChatGLM3's "sop"); the contents are the users' text
// and are encoded as plain text (EncodeOptions::plain_ranges = contents), so a message
// that says "sop" or "<|im_end|>" cannot forge a control token.
struct ChatPrompt {
  std::string text;
  std::vector<TextRange> contents;  // in order, disjoint; empty contents are not listed
};

std::string_view name_of(ChatFamily family) noexcept;

struct ChatTemplate {
  ChatFamily family = ChatFamily::chatml;
  // ChatML: the system message a template inserts when the conversation has none
  // (empty: none is inserted).
  std::string default_system;
  // GLM-4-9B-chat's template leaves out messages with empty content; GLM-4-0414's writes
  // every system message first, then the others in order.
  bool skip_empty = false;
  bool system_first = false;
  std::string warning;  // non-empty when the template was not recognised

  // Chooses the family (and ChatML's default system prompt) from a Jinja template.
  static ChatTemplate detect(std::string_view jinja);

  // The prompt; with add_generation_prompt, the opening of the assistant's turn.
  ChatPrompt render_prompt(std::span<const ChatMessage> messages, bool add_generation_prompt) const;
  // Its text alone.
  std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
    return render_prompt(messages, add_generation_prompt).text;
  }

  // The content of the assistant message for `generated`, the text the model wrote after
  // the generation prompt. The GLM templates end that prompt at "<|assistant|>" but write
  // an assistant turn as "<|assistant|>\n" + content (ChatGLM3: "\n " + content), so the
  // model writes the line break first; it is the template's, not the content's, and
  // keeping it would render the next turn with a doubled newline. Other families: as is.
  std::string_view reply_content(std::string_view generated) const;
  // Whether `head`, the first text of a reply, settles what reply_content strips from any
  // reply that starts with it (for streaming: text can be shown once this holds).
  bool reply_start_known(std::string_view head) const;
};

}  // namespace qilin
