// Session: one conversation (or completion) on one KV-cache slot of a Model.
//
// The session remembers the tokens its slot holds. Each call appends a prompt,
// prefills only what the cache does not already hold — a chat turn re-renders the
// whole conversation with the chat template, and the tokens shared with the cache
// (all earlier turns) are reused, not recomputed — then samples new tokens one at a
// time, streaming their text to a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "models/sampler.h"
#include "models/tokenizer/chat_template.h"

namespace qilin {

class Model;

struct GenerateOptions {
  SamplerOptions sampling;
  int32_t max_new_tokens = 256;    // < 0: until EOS, a stop string or the context limit
  std::vector<std::string> stop;   // stop strings (not emitted)
  bool ignore_eos = false;         // keep going past the end-of-sequence token (benchmarks)
};

enum class StopReason { eos, max_tokens, stop_string, context_full, cancelled };
std::string_view name_of(StopReason r) noexcept;

struct GenerateStats {
  int64_t prompt_tokens = 0;     // tokens prefilled by this call (cached ones not counted)
  int64_t reused_tokens = 0;     // prompt tokens found in the cache
  int64_t generated_tokens = 0;  // tokens sampled
  double prompt_seconds = 0;
  double generate_seconds = 0;
  double prompt_tokens_per_second() const noexcept { return prompt_seconds > 0 ? prompt_tokens / prompt_seconds : 0; }
  double generate_tokens_per_second() const noexcept {
    return generate_seconds > 0 ? generated_tokens / generate_seconds : 0;
  }
};

struct GenerateResult {
  std::string text;              // what was emitted (stop strings excluded)
  std::vector<int32_t> tokens;   // the sampled ids (a final EOS included)
  StopReason stop_reason = StopReason::max_tokens;
  GenerateStats stats;
};

// Receives each piece of text as soon as it is complete; return false to stop.
using TextCallback = std::function<bool(std::string_view piece)>;

class Session {
 public:
  // Uses slot `slot` of the model's KV cache (cleared here).
  explicit Session(Model& model, int64_t slot = 0);

  // Continues the context with `prompt` (raw text: no template) and generates.
  GenerateResult complete(std::string_view prompt, const GenerateOptions& options, const TextCallback& on_text = {});
  // The same with token ids (e.g. random ids for benchmarks on vocabulary-less models).
  GenerateResult complete_tokens(std::span<const int32_t> prompt, const GenerateOptions& options,
                                 const TextCallback& on_text = {});

  // One chat turn: appends the user's message to the conversation, renders it with
  // the model's chat template and answers; the answer joins the conversation. Only the
  // template's markers become special tokens: messages are encoded as plain text.
  GenerateResult chat(std::string_view user_message, const GenerateOptions& options,
                      const TextCallback& on_text = {});
  void set_system_prompt(std::string system);
  const std::vector<ChatMessage>& messages() const noexcept { return messages_; }

  // Forgets the conversation and the cached tokens.
  void reset();
  // Tokens the slot holds (prompt and generated).
  const std::vector<int32_t>& tokens() const noexcept { return tokens_; }

 private:
  // Brings the cache to `wanted` (reusing the longest common prefix), then samples.
  GenerateResult run(const std::vector<int32_t>& wanted, const GenerateOptions& options, const TextCallback& on_text);
  void prefill(std::span<const int32_t> ids);
  const float* step(int32_t id);

  Model& model_;
  int64_t slot_;
  std::vector<int32_t> tokens_;  // mirrors the slot's cache contents
  std::vector<ChatMessage> messages_;
  std::string system_;
  ChatTemplate template_;
  std::vector<float> logits_;    // the last position's logits (vocab)
};

}  // namespace qilin
