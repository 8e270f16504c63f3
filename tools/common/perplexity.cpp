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

}  // namespace

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
  const int64_t step = std::min(decoder.options().max_batch_tokens, decoder.options().max_logit_rows);
  const int64_t vocab = decoder.config().vocab_size;
  // Logits at positions [first, window - 1) predict tokens [first + 1, window).
  const int64_t first = window / 2;
  std::vector<int32_t> ids(static_cast<size_t>(window));
  std::vector<double> nll(static_cast<size_t>(step));

  PerplexityResult result;
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const auto t0 = std::chrono::steady_clock::now();
    std::copy_n(tokens.begin() + chunk * window, window, ids.begin());
    if (options.bos_id >= 0) ids[0] = options.bos_id;
    model.cache().clear(0);
    for (int64_t begin = 0; begin < window; begin += step) {
      const int64_t count = std::min(step, window - begin);
      const bool scored = begin + count > first;  // the context-only part needs no logits
      const ForwardRequest request{
          0, std::span<const int32_t>(ids).subspan(static_cast<size_t>(begin), static_cast<size_t>(count)), scored};
      const TensorView logits = decoder.forward({&request, 1}, model.cache(), model.pool());
      if (!scored) continue;
      const int64_t lo = std::max(first, begin), hi = std::min(window - 1, begin + count);  // positions scored
      model.pool().parallel_for(hi - lo, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          const int64_t pos = lo + i;
          nll[static_cast<size_t>(i)] = negative_log_likelihood(static_cast<const float*>(logits.row(pos - begin)),
                                                                vocab, ids[static_cast<size_t>(pos + 1)]);
        }
      });
      for (int64_t i = 0; i < hi - lo; ++i) {
        result.nll_sum += nll[static_cast<size_t>(i)];
        result.nll2_sum += nll[static_cast<size_t>(i)] * nll[static_cast<size_t>(i)];
      }
      result.scored_tokens += std::max<int64_t>(0, hi - lo);
    }
    model.cache().clear(0);
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
