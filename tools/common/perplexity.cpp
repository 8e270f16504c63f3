#include "common/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace qilin::tools {
namespace {

// -log softmax(row)[target], in double: a vocabulary of 150k terms summed in f32
// would lose the small probabilities the estimate is made of.
double negative_log_likelihood(const float* row, int64_t vocab, int32_t target) {
  const float max = *std::max_element(row, row + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(row[i] - max));
  return std::log(sum) - static_cast<double>(row[target] - max);
}

// One scored position against a reference: the model's and the reference's -log p
// of the target, KL(reference || model) over the whole vocabulary, and whether both
// rank the same token first. In double for the same reason as above.
struct PositionScores {
  double nll, ref_nll, kl;
  bool same_top;
};
PositionScores compare_with_reference(const float* row, const float* ref, int64_t vocab, int32_t target) {
  const int64_t top = std::max_element(row, row + vocab) - row;
  const int64_t ref_top = std::max_element(ref, ref + vocab) - ref;
  const double max = row[top], ref_max = ref[ref_top];
  double sum = 0, ref_sum = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    sum += std::exp(static_cast<double>(row[i]) - max);
    ref_sum += std::exp(static_cast<double>(ref[i]) - ref_max);
  }
  const double log_z = max + std::log(sum), ref_log_z = ref_max + std::log(ref_sum);
  double kl = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const double ref_logp = static_cast<double>(ref[i]) - ref_log_z;
    kl += std::exp(ref_logp) * (ref_logp - (static_cast<double>(row[i]) - log_z));
  }
  return {log_z - row[target], ref_log_z - ref[target], std::max(kl, 0.0), top == ref_top};
}

}  // namespace

double DivergenceStats::mean_kl() const { return kl.empty() ? 0.0 : kl_sum / static_cast<double>(kl.size()); }

double DivergenceStats::kl_error() const {
  if (kl.size() < 2) return 0;
  const auto n = static_cast<double>(kl.size());
  const double mean = kl_sum / n, variance = kl2_sum / n - mean * mean;
  return variance > 0 ? std::sqrt(variance / (n - 1)) : 0.0;
}

double DivergenceStats::kl_quantile(double q) const {
  if (kl.empty()) return 0;
  std::vector<float> sorted(kl);
  const auto i = static_cast<size_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1));
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(i), sorted.end());
  return sorted[i];
}

double PerplexityResult::reference_perplexity() const {
  return scored_tokens > 0 ? std::exp(divergence.ref_nll_sum / static_cast<double>(scored_tokens)) : 0.0;
}

double PerplexityResult::same_top_fraction() const {
  return scored_tokens > 0 ? static_cast<double>(divergence.same_top) / static_cast<double>(scored_tokens) : 0.0;
}

double PerplexityResult::perplexity() const {
  return scored_tokens > 0 ? std::exp(nll_sum / static_cast<double>(scored_tokens)) : 0.0;
}

double PerplexityResult::perplexity_error() const {
  if (scored_tokens < 2) return 0;
  const auto n = static_cast<double>(scored_tokens);
  const double mean = nll_sum / n, variance = nll2_sum / n - mean * mean;
  return variance > 0 ? perplexity() * std::sqrt(variance / (n - 1)) : 0.0;
}

PerplexityResult evaluate_perplexity(Model& model, std::span<const int32_t> tokens, const PerplexityOptions& options,
                                     const std::function<void(const PerplexityResult&)>& on_chunk) {
  const int64_t window = options.window;
  QILIN_CHECK(window >= 3, "perplexity", "the window (-c) must hold at least 3 tokens, not {}", window);
  QILIN_CHECK(window <= model.context(), "perplexity", "a window of {} tokens does not fit the context of {}", window,
              model.context());
  const auto n_tokens = static_cast<int64_t>(tokens.size());
  int64_t chunks = n_tokens / window;
  QILIN_CHECK(chunks >= 1, "perplexity", "{} tokens do not fill one window of {} (use a smaller -c)", n_tokens, window);
  if (options.max_chunks >= 0) chunks = std::min(chunks, options.max_chunks);

  Decoder& decoder = model.decoder();
  int64_t step = std::min(decoder.options().max_batch_tokens, decoder.options().max_logit_rows);
  const int64_t vocab = decoder.config().vocab_size;
  Model* const reference = options.reference;
  if (reference != nullptr) {
    const Decoder& ref = reference->decoder();
    QILIN_CHECK(ref.config().vocab_size == vocab, "perplexity",
                "the reference's vocabulary ({}) is not the model's ({})", ref.config().vocab_size, vocab);
    QILIN_CHECK(window <= reference->context(), "perplexity", "a window of {} tokens does not fit the reference's {}",
                window, reference->context());
    step = std::min({step, ref.options().max_batch_tokens, ref.options().max_logit_rows});
  }
  // Logits at positions [first, window - 1) predict tokens [first + 1, window).
  const int64_t first = window / 2;
  std::vector<int32_t> ids(static_cast<size_t>(window));
  std::vector<double> nll(static_cast<size_t>(step));
  std::vector<PositionScores> compared(reference != nullptr ? static_cast<size_t>(step) : 0);

  PerplexityResult result;
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const auto t0 = std::chrono::steady_clock::now();
    std::copy_n(tokens.begin() + chunk * window, window, ids.begin());
    if (options.bos_id >= 0) ids[0] = options.bos_id;
    model.cache().clear(0);
    if (reference != nullptr) reference->cache().clear(0);
    for (int64_t begin = 0; begin < window; begin += step) {
      const int64_t count = std::min(step, window - begin);
      const bool scored = begin + count > first;  // the context-only part needs no logits
      const ForwardRequest request{
          0, std::span<const int32_t>(ids).subspan(static_cast<size_t>(begin), static_cast<size_t>(count)), scored};
      const TensorView logits = decoder.forward({&request, 1}, model.cache(), model.pool());
      const TensorView ref_logits =
          reference != nullptr ? reference->decoder().forward({&request, 1}, reference->cache(), reference->pool())
                               : TensorView();
      if (!scored) continue;
      const int64_t lo = std::max(first, begin), hi = std::min(window - 1, begin + count);  // positions scored
      model.pool().parallel_for(hi - lo, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          const int64_t pos = lo + i;
          const auto* row = static_cast<const float*>(logits.row(pos - begin));
          const int32_t target = ids[static_cast<size_t>(pos + 1)];
          if (reference == nullptr) {
            nll[static_cast<size_t>(i)] = negative_log_likelihood(row, vocab, target);
            continue;
          }
          const PositionScores s =
              compare_with_reference(row, static_cast<const float*>(ref_logits.row(pos - begin)), vocab, target);
          compared[static_cast<size_t>(i)] = s;
          nll[static_cast<size_t>(i)] = s.nll;
        }
      });
      for (int64_t i = 0; reference != nullptr && i < hi - lo; ++i) {
        const PositionScores& s = compared[static_cast<size_t>(i)];
        DivergenceStats& d = result.divergence;
        d.kl_sum += s.kl;
        d.kl2_sum += s.kl * s.kl;
        d.ref_nll_sum += s.ref_nll;
        d.same_top += s.same_top ? 1 : 0;
        d.kl.push_back(static_cast<float>(s.kl));
      }
      for (int64_t i = 0; i < hi - lo; ++i) {
        result.nll_sum += nll[static_cast<size_t>(i)];
        result.nll2_sum += nll[static_cast<size_t>(i)] * nll[static_cast<size_t>(i)];
      }
      result.scored_tokens += std::max<int64_t>(0, hi - lo);
    }
    model.cache().clear(0);
    if (reference != nullptr) reference->cache().clear(0);
    result.chunks += 1;
    result.evaluated_tokens += window;
    result.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_chunk) on_chunk(result);
  }
  return result;
}

TokenizedText tokenize_for_perplexity(const Tokenizer& tokenizer, std::string_view text) {
  TokenizedText out;
  const EncodeOptions options{.add_special = true, .parse_special = false};
  // Whether this tokenizer starts a sequence with BOS: what it makes of no text.
  const std::vector<int32_t> empty = tokenizer.encode("", options);
  if (!empty.empty() && empty.front() == tokenizer.bos_id() && tokenizer.bos_id() >= 0) out.bos_id = tokenizer.bos_id();
  out.ids = tokenizer.encode(text, options);
  return out;
}

}  // namespace qilin::tools
