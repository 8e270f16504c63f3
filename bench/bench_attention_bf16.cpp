// Prefill attention, f32 kernels against bf16 compute (AMX tiles where the CPU has them):
// n_q queries at positions 0..n_q-1 over an f32, f16 or q8_0 cache, 2 threads, at the
// best ISA level. Names: ops/attention_prefill/<compute>/<model>/<cache>/prefill:<n>/threads:2,
// compute f32 (allow_bf16_compute off) or bf16 (on). GFLOP/s counts the multiply-adds of
// QK and PV over the keys each query sees (2 * heads * head_dim * n_q (n_q + 1) / 2, twice).
#include <benchmark/benchmark.h>

#include <random>
#include <string>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/ops.h"

namespace qilin::bench {
namespace {

struct AttentionShape {
  const char* name;
  int64_t n_heads, n_kv_heads, head_dim;
};
constexpr AttentionShape kShapes[] = {{"smollm2-135m", 9, 3, 64}, {"qwen2.5-0.5b", 14, 2, 64}};

Tensor uniform(Shape shape, uint32_t seed) {
  Tensor t = Tensor::empty(shape, DType::f32);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = dist(rng);
  return t;
}

ThreadPool& two_threads() {
  static ThreadPool pool(2);
  return pool;
}

[[maybe_unused]] const bool registered = [] {
  for (const AttentionShape& m : kShapes) {
    for (DType dtype : {DType::f32, DType::f16, DType::q8_0}) {
      for (int64_t n_q : {128, 512}) {
        for (bool bf16 : {false, true}) {
          const std::string name = std::string("ops/attention_prefill/") + (bf16 ? "bf16/" : "f32/") + m.name + "/" +
                                   std::string(name_of(dtype)) + "/prefill:" + std::to_string(n_q) + "/threads:2";
          const double flops =
              4.0 * static_cast<double>(m.n_heads * m.head_dim) * static_cast<double>(n_q * (n_q + 1) / 2);
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
            const Shape kv_shape{m.n_kv_heads, n_q, m.head_dim};
            Tensor k = Tensor::empty(kv_shape, dtype), v = Tensor::empty(kv_shape, dtype);
            const Tensor kf = uniform(kv_shape, 1), vf = uniform(kv_shape, 2);
            traits(dtype).from_float(kf.data_as<float>(), k.data(), kf.numel());
            traits(dtype).from_float(vf.data_as<float>(), v.data(), vf.numel());
            const Tensor q = uniform({n_q, m.n_heads, m.head_dim}, 3);
            Tensor out = Tensor::empty({n_q, m.n_heads, m.head_dim}, DType::f32);
            ThreadPool& pool = two_threads();
            attention(q, k, v, 0, out, pool, std::nullopt, bf16);  // warm-up
            for (auto _ : state) {
              attention(q, k, v, 0, out, pool, std::nullopt, bf16);
              benchmark::ClobberMemory();
            }
            state.counters["GFLOP/s"] =
                benchmark::Counter(static_cast<double>(state.iterations()) * flops / 1e9, benchmark::Counter::kIsRate);
          })->UseRealTime();
        }
      }
    }
  }
  return true;
}();

}  // namespace
}  // namespace qilin::bench
