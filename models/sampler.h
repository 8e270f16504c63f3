// Sampler: picks the next token from a row of logits, as llama.cpp's default chain
// does: penalties -> top-k -> top-p -> min-p -> temperature -> random draw; greedy
// (argmax, ties to the lowest id) when temperature <= 0 or top_k == 1.
//
// Reproducible: the same seed gives the same tokens on every run and machine. The
// generator is our own (xoshiro256**), exp() is our own polynomial, and every sum
// that decides a token is an integer sum (probabilities in fixed point), so no
// result depends on the libm, the standard library's algorithms or summation order.
//
// Cheap per token: all buffers are allocated by the constructor (sample() never
// allocates) and the vocabulary is never sorted — top-k is a bounded heap, top-p a
// radix selection by probability mass (see sampler.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace qilin {

struct SamplerOptions {
  float temperature = 0.8f;           // <= 0: greedy
  int32_t top_k = 40;                 // <= 0: no limit; 1: greedy
  float top_p = 0.95f;                // in [0, 1]; 1: off; 0: only the most likely token
  float min_p = 0.05f;                // in [0, 1]; 0: off; keeps p >= min_p * p_max
  float repeat_penalty = 1.0f;        // > 0; 1: off (llama.cpp/HF: logit > 0 ? logit / p : logit * p)
  int32_t repeat_last_n = 64;         // window of accepted tokens the penalties look at; 0: off; -1: all
  float presence_penalty = 0.0f;      // OpenAI: logit -= presence (once per token in the window)
  float frequency_penalty = 0.0f;     // OpenAI: logit -= count * frequency
  uint64_t seed = 0x5eed5eed5eedULL;  // fixed by default: runs are reproducible unless the caller varies it
};

// Throws qilin::Error when an option is out of its range (NaN, top_p > 1, penalty <= 0, ...).
void validate(const SamplerOptions& options);

class Sampler {
 public:
  // Allocates every buffer sample() needs for `vocab_size` logits.
  explicit Sampler(int32_t vocab_size, SamplerOptions options = {});

  // Returns the next token id. NaN logits count as -inf and +inf as the largest
  // finite float; if no logit is above -inf it throws qilin::Error (a model that
  // produces no finite logit is broken, and token 0 would hide it). Throws
  // qilin::Error when logits.size() != vocab_size.
  int32_t sample(std::span<const float> logits);

  // Adds `token` to the penalty history (call it for each prompt token that should
  // count, and each generated token).
  void accept(int32_t token);
  // Forgets the history and restarts the random sequence from options().seed.
  void reset();

  // The penalties sample() applies, on a caller's copy (for tests and for callers
  // that show adjusted logits). Touches only the tokens in the history window.
  void apply_penalties(std::span<float> logits) const;

  const SamplerOptions& options() const noexcept { return options_; }
  int32_t vocab_size() const noexcept { return vocab_size_; }

 private:
  bool penalties_active() const noexcept;
  int32_t draw(float max_logit);
  size_t gather_top_k(size_t k, float max_logit);
  int32_t nucleus_end(size_t n, uint64_t target);
  uint64_t next_random() noexcept;

  int32_t vocab_size_;
  SamplerOptions options_;
  float log_min_p_ = 0.0f;
  uint64_t rng_[4];

  // Penalty history: counts_[t] occurrences of t in the window, window_ a ring of
  // the last repeat_last_n tokens, active_ the distinct tokens with count > 0.
  std::vector<int32_t> counts_;
  std::vector<int32_t> active_;
  std::vector<int32_t> active_pos_;  // index of t in active_, -1 if absent
  std::vector<int32_t> window_;
  size_t window_head_ = 0;

  // Per-call work buffers, vocab-sized: the sanitised, penalised logits; the
  // candidates (logit, id, mass: exp(logit - max) in fixed point, see sampler.cpp) as
  // parallel arrays so the loops over them vectorise; a scratch set of the same shape
  // for the selections; a histogram for the radix selection.
  std::vector<float> logits_;
  std::vector<float> cand_logit_, scratch_logit_;
  std::vector<int32_t> cand_id_, scratch_id_;
  std::vector<uint32_t> cand_mass_, scratch_mass_;
  std::vector<uint64_t> histogram_;
};

}  // namespace qilin
