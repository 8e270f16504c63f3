// Perplexity of a token sequence, as llama-perplexity computes it: the tokens are
// cut into non-overlapping windows of `window` tokens, each evaluated from an empty
// cache; the first half of a window is context only, and each later position
// scores the probability the model gave the next token. The estimate is
// exp(mean negative log-likelihood) over all scored tokens, with the standard
// error of that mean carried through the exp.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "models/model.h"

namespace qilin::tools {

struct PerplexityOptions {
  int64_t window = 512;     // tokens per window (llama-perplexity's -c)
  int64_t max_chunks = -1;  // windows evaluated at most; -1: every whole window
  // When >= 0, the first token of each window is replaced by this id (the
  // tokenizer's BOS, as llama-perplexity does for models that add one).
  int32_t bos_id = -1;
  // When set, every window also runs through this model (same tokenizer and vocabulary,
  // e.g. the f32 weights of a quantized model), and the result compares the two
  // distributions at each scored position, like llama-perplexity's --kl-divergence.
  Model* reference = nullptr;
};

// How far a model's next-token distributions are from a reference's.
struct DivergenceStats {
  double kl_sum = 0, kl2_sum = 0;  // KL(reference || model) in nats, and its square
  double ref_nll_sum = 0;          // -log p of the right token under the reference
  int64_t same_top = 0;            // positions where both rank the same token first
  std::vector<float> kl;           // per scored position, for the quantiles

  double mean_kl() const;
  double kl_error() const;             // standard error of the mean
  double kl_quantile(double q) const;  // e.g. 0.99; 0 when empty
};

struct PerplexityResult {
  int64_t chunks = 0;                // windows evaluated
  int64_t scored_tokens = 0;         // next-token predictions scored
  int64_t evaluated_tokens = 0;      // tokens run through the model
  double nll_sum = 0, nll2_sum = 0;  // sums of -log p and its square over the scored tokens
  double seconds = 0;                // forward passes and scoring
  DivergenceStats divergence;        // filled when PerplexityOptions::reference is set

  double perplexity() const;        // exp(mean nll)
  double perplexity_error() const;  // standard error of the estimate (0 with < 2 scored tokens)
  double tokens_per_second() const { return seconds > 0 ? static_cast<double>(evaluated_tokens) / seconds : 0; }
  double reference_perplexity() const;  // exp(mean reference nll); with a reference
  double same_top_fraction() const;     // with a reference
};

// Evaluates the windows on slot 0 of the model (its cache is cleared before each),
// `model.decoder().options().max_logit_rows` tokens per forward pass at most. Calls
// `on_chunk` with the running result after each window. Throws qilin::Error when
// the window does not fit the model's context, is shorter than 3 tokens (one to score after the context half), or the
// tokens do not fill one window.
PerplexityResult evaluate_perplexity(Model& model, std::span<const int32_t> tokens, const PerplexityOptions& options,
                                     const std::function<void(const PerplexityResult&)>& on_chunk = {});

// The ids to feed a model with a vocabulary: the text tokenized whole, special
// tokens in it treated as plain text; and the BOS id its windows start with
// (-1 when the tokenizer adds none).
struct TokenizedText {
  std::vector<int32_t> ids;
  int32_t bos_id = -1;
};
TokenizedText tokenize_for_perplexity(const Tokenizer& tokenizer, std::string_view text);

}  // namespace qilin::tools
