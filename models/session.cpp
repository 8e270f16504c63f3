#include "models/session.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_set>

#include "core/error.h"
#include "models/model.h"
#include "models/stop_strings.h"
#include "models/tokenizer/token_decoder.h"

namespace qilin {

std::string_view name_of(StopReason r) noexcept {
  switch (r) {
    case StopReason::eos:
      return "eos";
    case StopReason::max_tokens:
      return "max_tokens";
    case StopReason::stop_string:
      return "stop_string";
    case StopReason::context_full:
      return "context_full";
    case StopReason::cancelled:
      return "cancelled";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The tokens that end a turn: the model's EOS plus the end-of-turn markers of the chat
// formats (llama.cpp's "end of generation" set), when the vocabulary has them as special tokens.
std::unordered_set<int32_t> end_of_generation_ids(const Model& model) {
  std::unordered_set<int32_t> ids;
  if (model.config().eos_id >= 0) ids.insert(model.config().eos_id);
  if (!model.has_tokenizer()) return ids;
  const Tokenizer& tok = model.tokenizer();
  if (tok.eos_id() >= 0) ids.insert(tok.eos_id());
  for (const char* text :
       {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<|user|>", "<|observation|>", "<|end|>"}) {
    const int32_t id = tok.token_id(text);
    if (id >= 0 && tok.is_special(id)) ids.insert(id);
  }
  return ids;
}

}  // namespace

Session::Session(Model& model, int64_t slot) : model_(model), slot_(slot) {
  QILIN_CHECK(slot >= 0 && slot < model.cache().n_slots(), "session", "slot {} out of range ({} slots)", slot,
              model.cache().n_slots());
  model_.cache().clear(slot_);
  if (model.has_tokenizer()) template_ = ChatTemplate::detect(model.tokenizer().chat_template());
  logits_.resize(static_cast<size_t>(model.config().vocab_size));
}

void Session::reset() {
  model_.cache().clear(slot_);
  tokens_.clear();
  messages_.clear();
}

void Session::set_system_prompt(std::string system) { system_ = std::move(system); }

GenerateResult Session::complete(std::string_view prompt, const GenerateOptions& options, const TextCallback& on_text) {
  EncodeOptions enc;
  enc.add_special = tokens_.empty();  // BOS (when the tokenizer wants one) only at the very start
  std::vector<int32_t> wanted = tokens_;
  const std::vector<int32_t> ids = model_.tokenizer().encode(prompt, enc);
  wanted.insert(wanted.end(), ids.begin(), ids.end());
  return run(wanted, options, on_text);
}

GenerateResult Session::complete_tokens(std::span<const int32_t> prompt, const GenerateOptions& options,
                                        const TextCallback& on_text) {
  std::vector<int32_t> wanted = tokens_;
  wanted.insert(wanted.end(), prompt.begin(), prompt.end());
  return run(wanted, options, on_text);
}

GenerateResult Session::chat(std::string_view user_message, const GenerateOptions& options,
                             const TextCallback& on_text) {
  std::vector<ChatMessage> conversation;
  if (!system_.empty()) conversation.push_back({"system", system_});
  conversation.insert(conversation.end(), messages_.begin(), messages_.end());
  conversation.push_back({"user", std::string(user_message)});
  const ChatPrompt prompt = template_.render_prompt(conversation, /*add_generation_prompt=*/true);
  EncodeOptions enc;
  enc.add_special = false;  // the template writes its own BOS / special tokens (as HF apply_chat_template)
  // Special tokens come from the template's markers only: message text that names one
  // ("<|user|>", ChatGLM3's "sop") is encoded as text, as THUDM's own tokenizers do in
  // build_chat_input (contents encoded apart from the role tokens).
  enc.plain_ranges = prompt.contents;
  // The streamed text leaves out the template's line break too (GLM), so that what a
  // user sees is the content that joins the conversation. The break may span two pieces
  // (ChatGLM3's "\n "): the first pieces wait until the start of the reply is known.
  std::string head;  // the reply so far, while its start is undecided
  bool deciding = on_text && !template_.reply_start_known(head);
  auto emit_head = [&] {
    deciding = false;
    const std::string_view content = template_.reply_content(head);
    return content.empty() || on_text(content);
  };
  const TextCallback stream = !deciding ? on_text : TextCallback([&](std::string_view piece) {
    if (!deciding) return on_text(piece);
    head += piece;
    return !template_.reply_start_known(head) || emit_head();
  });
  GenerateResult result = run(model_.tokenizer().encode(prompt.text, enc), options, stream);
  if (deciding && !head.empty()) emit_head();
  messages_.push_back({"user", std::string(user_message)});
  // Without the template's own line break that the reply starts with (GLM), so that the
  // next turn renders this one as the chat template (transformers) would.
  messages_.push_back({"assistant", std::string(template_.reply_content(result.text))});
  return result;
}

void Session::prefill(std::span<const int32_t> ids) {
  const int64_t chunk = model_.decoder().options().max_batch_tokens;
  for (size_t at = 0; at < ids.size(); at += static_cast<size_t>(chunk)) {
    const size_t n = std::min(ids.size() - at, static_cast<size_t>(chunk));
    const ForwardRequest request{slot_, ids.subspan(at, n), false};
    const TensorView logits = model_.decoder().forward({&request, 1}, model_.cache(), model_.pool());
    std::memcpy(logits_.data(), logits.row(0), logits_.size() * sizeof(float));
    tokens_.insert(tokens_.end(), ids.begin() + static_cast<ptrdiff_t>(at),
                   ids.begin() + static_cast<ptrdiff_t>(at + n));
  }
}

const float* Session::step(int32_t id) {
  prefill({&id, 1});
  return logits_.data();
}

GenerateResult Session::run(const std::vector<int32_t>& wanted, const GenerateOptions& options,
                            const TextCallback& on_text) {
  GenerateResult result;
  const int64_t context = model_.context();
  QILIN_CHECK(!wanted.empty(), "generate", "the prompt is empty");
  QILIN_CHECK(static_cast<int64_t>(wanted.size()) < context, "generate",
              "the prompt has {} tokens but the context holds {} (raise -c / LoadOptions::context)", wanted.size(),
              context);

  // Reuse the cached prefix; at least the last prompt token runs again for fresh logits.
  size_t common = 0;
  while (common < tokens_.size() && common < wanted.size() && tokens_[common] == wanted[common]) ++common;
  common = std::min(common, wanted.size() - 1);
  model_.cache().truncate(slot_, static_cast<int64_t>(common));
  tokens_.resize(common);

  const auto t0 = Clock::now();
  prefill(std::span<const int32_t>(wanted).subspan(common));
  result.stats.reused_tokens = static_cast<int64_t>(common);
  result.stats.prompt_tokens = static_cast<int64_t>(wanted.size() - common);
  result.stats.prompt_seconds = seconds_since(t0);

  const auto t1 = Clock::now();
  const std::unordered_set<int32_t> end_ids = end_of_generation_ids(model_);
  Sampler sampler(model_.config().vocab_size, options.sampling);
  for (const int32_t id : tokens_) sampler.accept(id);  // penalties see the context, as in llama.cpp
  StopStrings stops(options.stop);
  std::optional<TokenDecoder> text;
  if (model_.has_tokenizer()) text.emplace(model_.tokenizer(), /*skip_special=*/true);
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return true;
    result.text += piece;
    return on_text ? on_text(piece) : true;
  };

  result.stop_reason = StopReason::max_tokens;
  const float* logits = logits_.data();
  while (options.max_new_tokens < 0 || result.stats.generated_tokens < options.max_new_tokens) {
    const int32_t id = sampler.sample({logits, logits_.size()});
    sampler.accept(id);
    result.tokens.push_back(id);
    ++result.stats.generated_tokens;
    if (!options.ignore_eos && end_ids.count(id)) {
      result.stop_reason = StopReason::eos;
      break;
    }
    if (text) {
      if (!emit(stops.feed(text->push(id)))) {
        result.stop_reason = StopReason::cancelled;
        break;
      }
      if (stops.stopped()) {
        result.stop_reason = StopReason::stop_string;
        break;
      }
    }
    if (options.max_new_tokens >= 0 && result.stats.generated_tokens >= options.max_new_tokens) break;
    if (model_.cache().room(slot_) < 1) {
      result.stop_reason = StopReason::context_full;
      break;
    }
    logits = step(id);
  }
  if (text && result.stop_reason != StopReason::stop_string && result.stop_reason != StopReason::cancelled) {
    emit(stops.feed(text->flush()));
    if (!stops.stopped()) emit(stops.flush());
  }
  result.stats.generate_seconds = seconds_since(t1);
  return result;
}

}  // namespace qilin
