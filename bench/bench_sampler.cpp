// Sampler::sample() per token, at the vocabularies of SmolLM2 (49152) and Qwen2.5
// (151936), on logits shaped like a language model's: a few likely tokens over a
// long normal tail. Configurations: llama.cpp's defaults (top-k 40 first, so the
// rest of the chain sees 40 tokens), no top-k with top-p 0.9 (the whole vocabulary
// goes through top-p), the same without min-p (the worst case: nothing narrows
// top-p's input), a flat distribution (a nucleus of thousands of tokens), and greedy.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "models/sampler.h"

namespace {

enum class Config { defaults, top_p_0_9, top_p_0_9_no_min_p, flat_top_p_0_9, greedy };

std::vector<float> lm_logits(size_t n, float tail_scale) {
  std::mt19937 gen(1);
  std::normal_distribution<float> normal(0.0f, tail_scale);
  std::vector<float> l(n);
  for (float& v : l) v = normal(gen);
  // A handful of likely tokens spread over the vocabulary, as after a real prompt.
  for (size_t i = 0; i < 8; ++i) l[(i * 7919 + 13) % n] = 12.0f - static_cast<float>(i);
  return l;
}

void BM_Sample(benchmark::State& state, Config config) {
  const auto n = static_cast<int32_t>(state.range(0));
  qilin::SamplerOptions o;  // llama.cpp's defaults
  std::vector<float> logits = lm_logits(static_cast<size_t>(n), 2.0f);
  switch (config) {
    case Config::defaults:
      break;
    case Config::top_p_0_9:
      o.top_k = 0;
      o.top_p = 0.9f;
      break;
    case Config::top_p_0_9_no_min_p:
      o.top_k = 0;
      o.top_p = 0.9f;
      o.min_p = 0.0f;
      break;
    case Config::flat_top_p_0_9:
      o.top_k = 0;
      o.top_p = 0.9f;
      o.min_p = 0.0f;
      logits = lm_logits(static_cast<size_t>(n), 0.5f);
      for (size_t i = 0; i < 8; ++i) logits[(i * 7919 + 13) % logits.size()] = 0.0f;
      break;
    case Config::greedy:
      o.temperature = 0.0f;
      break;
  }
  qilin::Sampler sampler(n, o);
  for (int32_t t = 0; t < 64; ++t) sampler.accept(t * 31 % n);  // a penalty window, as in generation
  for (auto _ : state) benchmark::DoNotOptimize(sampler.sample(logits));
  state.SetItemsProcessed(state.iterations());
}

void vocab_sizes(benchmark::internal::Benchmark* b) { b->Arg(49152)->Arg(151936)->Unit(benchmark::kMicrosecond); }

BENCHMARK_CAPTURE(BM_Sample, defaults, Config::defaults)->Apply(vocab_sizes);
BENCHMARK_CAPTURE(BM_Sample, top_k0_top_p90, Config::top_p_0_9)->Apply(vocab_sizes);
BENCHMARK_CAPTURE(BM_Sample, top_k0_top_p90_min_p0, Config::top_p_0_9_no_min_p)->Apply(vocab_sizes);
BENCHMARK_CAPTURE(BM_Sample, flat_top_k0_top_p90_min_p0, Config::flat_top_p_0_9)->Apply(vocab_sizes);
BENCHMARK_CAPTURE(BM_Sample, greedy, Config::greedy)->Apply(vocab_sizes);

}  // namespace
