// Benchmarks of the non-matmul ops (kernels/ops.h) at the sizes of real models,
// each ISA level forced in turn: SmolLM2-135M (hidden 576, MLP 1536, 9 query /
// 3 KV heads of 64) and Qwen2.5-0.5B (hidden 896, MLP 4864, 14 / 2 heads of 64).
//
// Names: ops/<op>/<isa>/<shape>. Bytes/s (SetBytesProcessed) counts the bytes an
// op must move at least: its inputs read once and its outputs written once (for
// attention: the K and V cache rows of the context). Inputs are small enough to
// stay in cache between iterations, so these are cache-resident kernel speeds;
// avx512_bf16 and amx use the avx512 kernels and are not repeated.
// Threads: row ops take a one-thread pool (a decode row is too small to share);
// decode attention runs with 1 thread and with QILIN_BENCH_THREADS (default all
// cores); prefill attention (ops/attention/<isa>/<model>/<cache>/prefill:<tokens>/
// threads:2) with 2 threads, reporting GFLOP/s and %fma, its share of the FMA peak
// of 2 threads (bench/roofline.h).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/roofline.h"
#include "core/half.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/cpu/isa.h"
#include "kernels/ops.h"

namespace qilin::bench {
namespace {

struct Model {
  const char* name;
  int64_t hidden, mlp, n_heads, n_kv_heads, head_dim;
};
constexpr Model kModels[] = {{"smollm2-135m", 576, 1536, 9, 3, 64}, {"qwen2.5-0.5b", 896, 4864, 14, 2, 64}};
constexpr int64_t kTokens[] = {1, 64};  // decode, prefill chunk

int all_threads() {
  if (const char* env = std::getenv("QILIN_BENCH_THREADS"); env != nullptr && std::atoi(env) > 0) return std::atoi(env);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

ThreadPool& pool_of(int threads) {
  static ThreadPool one(1);
  static ThreadPool all(all_threads());
  return threads == 1 ? one : all;
}

Tensor random_f32(Shape shape, float lo, float hi, uint32_t seed) {
  Tensor t = Tensor::empty(shape, DType::f32);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = dist(rng);
  return t;
}

std::vector<cpu::Isa> levels() {
  std::vector<cpu::Isa> out;
  for (cpu::Isa isa : {cpu::Isa::ref, cpu::Isa::avx2, cpu::Isa::avx512}) {
    if (cpu::isa_supported(isa)) out.push_back(isa);
  }
  return out;
}

// Registers ops/<op>/<isa>/<shape>: make_call() builds the inputs (untimed) and
// returns the call to time, which runs with `isa` forced.
template <class MakeCall>
void add_bench(const std::string& op, cpu::Isa isa, const std::string& shape, int64_t bytes_per_call,
               MakeCall make_call, double flops_per_call = 0) {
  const std::string name = "ops/" + op + "/" + std::string(cpu::name_of(isa)) + "/" + shape;
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
    const cpu::Isa before = cpu::active_isa();
    cpu::set_active_isa(isa);
    auto call = make_call();  // allocates the inputs outside the timed loop
    call();                   // warm-up
    for (auto _ : state) {
      call();
      benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * bytes_per_call);
    if (flops_per_call > 0) {
      state.counters["GFLOP"] = benchmark::Counter(static_cast<double>(state.iterations()) * flops_per_call / 1e9,
                                                   benchmark::Counter::kIsRate);
    }
    cpu::set_active_isa(before);
  })->UseRealTime();  // wall time: the pool's other threads do part of the work
}

std::string rows_shape(int64_t rows, int64_t cols) { return std::to_string(rows) + "x" + std::to_string(cols); }

void register_row_ops(cpu::Isa isa) {
  ThreadPool& pool = pool_of(1);
  for (const Model& m : kModels) {
    for (int64_t t : kTokens) {
      const Shape hid{t, m.hidden}, mlp{t, m.mlp};
      const int64_t hb = t * m.hidden * 4, mb = t * m.mlp * 4;
      const std::string hs = rows_shape(t, m.hidden), ms = rows_shape(t, m.mlp);
      add_bench("add", isa, hs, 3 * hb, [=, &pool] {
        return [a = random_f32(hid, -1, 1, 1), b = random_f32(hid, -1, 1, 2), &pool] { add_inplace(a, b, pool); };
      });
      add_bench("mul", isa, hs, 3 * hb, [=, &pool] {
        return [a = random_f32(hid, -1, 1, 1), b = random_f32(hid, -1, 1, 2), y = Tensor::empty(hid, DType::f32),
                &pool] { mul(a, b, y, pool); };  // not in place: repeated products would sink into subnormals
      });
      add_bench("scale", isa, hs, 2 * hb,
                [=, &pool] { return [a = random_f32(hid, -1, 1, 1), &pool] { scale(a, 1.0f, a, pool); }; });
      add_bench("rmsnorm", isa, hs, 3 * hb, [=, &pool] {
        return [x = random_f32(hid, -1, 1, 1), w = random_f32({m.hidden}, 0.5, 1.5, 2),
                y = Tensor::empty(hid, DType::f32), &pool] { rmsnorm(x, w, 1e-5f, y, pool); };
      });
      add_bench("layernorm", isa, hs, 3 * hb, [=, &pool] {
        return [x = random_f32(hid, -1, 1, 1), w = random_f32({m.hidden}, 0.5, 1.5, 2),
                b = random_f32({m.hidden}, -1, 1, 3), y = Tensor::empty(hid, DType::f32),
                &pool] { layernorm(x, w, b, 1e-5f, y, pool); };
      });
      add_bench("silu", isa, ms, 2 * mb, [=, &pool] {
        return [x = random_f32(mlp, -8, 8, 1), y = Tensor::empty(mlp, DType::f32), &pool] { silu(x, y, pool); };
      });
      add_bench("gelu_tanh", isa, ms, 2 * mb, [=, &pool] {
        return [x = random_f32(mlp, -8, 8, 1), y = Tensor::empty(mlp, DType::f32), &pool] { gelu_tanh(x, y, pool); };
      });
      add_bench("gelu_erf", isa, ms, 2 * mb, [=, &pool] {
        return [x = random_f32(mlp, -8, 8, 1), y = Tensor::empty(mlp, DType::f32), &pool] { gelu_erf(x, y, pool); };
      });
      add_bench("swiglu", isa, ms, 3 * mb, [=, &pool] {
        return [g = random_f32(mlp, -8, 8, 1), u = random_f32(mlp, -2, 2, 2), y = Tensor::empty(mlp, DType::f32),
                &pool] { swiglu(g, u, y, pool); };
      });
      // RoPE on q and k of one layer, NeoX layout (both models) and interleaved.
      for (RopeLayout layout : {RopeLayout::neox, RopeLayout::interleaved}) {
        const int64_t heads = m.n_heads + m.n_kv_heads;
        const std::string op = layout == RopeLayout::neox ? "rope_neox" : "rope_interleaved";
        add_bench(op, isa, std::to_string(t) + "x" + std::to_string(heads) + "x64", 2 * t * heads * m.head_dim * 4,
                  [=, &pool] {
                    auto cache = std::make_shared<RopeCache>(m.head_dim, 4096, 10000.0);
                    std::vector<int32_t> pos(static_cast<size_t>(t));
                    for (int64_t i = 0; i < t; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(1000 + i);
                    return [x = random_f32({t, heads, m.head_dim}, -1, 1, 1), cache, pos, layout, &pool] {
                      rope(x, pos, layout, *cache, pool);
                    };
                  });
      }
    }
  }
  // Softmax over score rows (attention contexts) and over a vocabulary (sampling).
  for (int64_t n : {128, 512, 2048, 49152}) {
    add_bench("softmax", isa, rows_shape(1, n), 2 * n * 4, [=, &pool] {
      return [x = random_f32({1, n}, -10, 10, 1), &pool] { softmax(x, x, pool); };
    });
  }
}

void register_embedding(cpu::Isa isa) {
  ThreadPool& pool = pool_of(1);
  const int64_t vocab = 8192;
  for (const Model& m : kModels) {
    for (DType dtype : {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0}) {
      if (m.hidden % traits(dtype).block_size != 0) continue;
      for (int64_t t : kTokens) {
        const int64_t bytes = t * (static_cast<int64_t>(row_bytes(dtype, m.hidden)) + m.hidden * 4);
        add_bench("embedding", isa, std::string(name_of(dtype)) + "/" + rows_shape(t, m.hidden), bytes, [=, &pool] {
          auto values = random_f32({vocab, m.hidden}, -1, 1, 1);
          Tensor table = Tensor::empty({vocab, m.hidden}, dtype);
          traits(dtype).from_float(values.data_as<float>(), table.data(), vocab * m.hidden);
          std::vector<int32_t> ids(static_cast<size_t>(t));
          std::mt19937 rng(3);
          for (int32_t& id : ids) id = static_cast<int32_t>(rng() % vocab);
          return
              [table, ids, out = Tensor::empty({t, m.hidden}, DType::f32), &pool] { embedding(table, ids, out, pool); };
        });
      }
    }
  }
}

void register_attention(cpu::Isa isa) {
  const int64_t max_pos = 4096;
  for (const Model& m : kModels) {
    for (DType dtype : {DType::f32, DType::f16, DType::q8_0}) {
      for (int threads : {1, all_threads()}) {
        // Decode: one query at position ctx - 1.
        for (int64_t ctx : {64, 128, 512, 1024, 2048, 4096}) {
          const int64_t kv_bytes = 2 * m.n_kv_heads * ctx * static_cast<int64_t>(row_bytes(dtype, m.head_dim));
          const std::string shape = std::string(m.name) + "/" + std::string(name_of(dtype)) +
                                    "/decode/ctx:" + std::to_string(ctx) + "/threads:" + std::to_string(threads);
          add_bench(
              "attention", isa, shape, kv_bytes,
              [=] {
                Tensor k = Tensor::empty({m.n_kv_heads, max_pos, m.head_dim}, dtype);
                Tensor v = Tensor::empty({m.n_kv_heads, max_pos, m.head_dim}, dtype);
                const Tensor kf = random_f32({m.n_kv_heads, max_pos, m.head_dim}, -1, 1, 1);
                const Tensor vf = random_f32({m.n_kv_heads, max_pos, m.head_dim}, -1, 1, 2);
                traits(dtype).from_float(kf.data_as<float>(), k.data(), kf.numel());
                traits(dtype).from_float(vf.data_as<float>(), v.data(), vf.numel());
                ThreadPool* pool = &pool_of(threads);
                return [q = random_f32({1, m.n_heads, m.head_dim}, -1, 1, 3), k, v,
                        out = Tensor::empty({1, m.n_heads, m.head_dim}, DType::f32), ctx,
                        pool] { attention(q, k, v, ctx - 1, out, *pool); };
              },
              4.0 * static_cast<double>(m.n_heads * ctx * m.head_dim));  // QK and PV multiply-adds
        }
        // A few queries at once (speculative decoding, a short continuation): 4 queries
        // at positions ctx - 4 .. ctx - 1 take the blocked kernels.
        const int64_t n_q = 4, ctx = 1024;
        const std::string shape = std::string(m.name) + "/" + std::string(name_of(dtype)) +
                                  "/decode:" + std::to_string(n_q) + "/ctx:" + std::to_string(ctx) +
                                  "/threads:" + std::to_string(threads);
        add_bench(
            "attention", isa, shape, 2 * m.n_kv_heads * ctx * static_cast<int64_t>(row_bytes(dtype, m.head_dim)),
            [=] {
              Tensor k = Tensor::empty({m.n_kv_heads, max_pos, m.head_dim}, dtype);
              Tensor v = Tensor::empty({m.n_kv_heads, max_pos, m.head_dim}, dtype);
              const Tensor kf = random_f32({m.n_kv_heads, max_pos, m.head_dim}, -1, 1, 1);
              const Tensor vf = random_f32({m.n_kv_heads, max_pos, m.head_dim}, -1, 1, 2);
              traits(dtype).from_float(kf.data_as<float>(), k.data(), kf.numel());
              traits(dtype).from_float(vf.data_as<float>(), v.data(), vf.numel());
              ThreadPool* pool = &pool_of(threads);
              return [q = random_f32({n_q, m.n_heads, m.head_dim}, -1, 1, 3), k, v,
                      out = Tensor::empty({n_q, m.n_heads, m.head_dim}, DType::f32), ctx, n_q,
                      pool] { attention(q, k, v, ctx - n_q, out, *pool); };
            },
            4.0 * static_cast<double>(m.n_heads * m.head_dim) * static_cast<double>(n_q * ctx - n_q * (n_q - 1) / 2));
      }
    }
  }
}

// Prefill: n_q queries at positions 0..n_q-1 (the causal triangle of a prompt from an
// empty cache), 2 threads. FLOPs count the multiply-adds of QK and PV over the keys
// each query sees: 2 * n_heads * head_dim * n_q (n_q + 1) / 2, twice; %fma compares
// them with the FMA peak of as many threads measured in the same run.
void register_attention_prefill(cpu::Isa isa) {
  const int threads = 2;
  for (const Model& m : kModels) {
    for (int64_t n_q : {128, 512}) {
      for (DType dtype : {DType::f32, DType::f16, DType::q8_0}) {
        const double flops =
            4.0 * static_cast<double>(m.n_heads * m.head_dim) * static_cast<double>(n_q * (n_q + 1) / 2);
        const std::string name = "ops/attention/" + std::string(cpu::name_of(isa)) + "/" + m.name + "/" +
                                 std::string(name_of(dtype)) + "/prefill:" + std::to_string(n_q) +
                                 "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
          const cpu::Isa before = cpu::active_isa();
          cpu::set_active_isa(isa);
          ThreadPool& pool = shared_pool(threads);
          const Shape kv_shape{m.n_kv_heads, n_q, m.head_dim};
          Tensor k = Tensor::empty(kv_shape, dtype), v = Tensor::empty(kv_shape, dtype);
          const Tensor kf = random_f32(kv_shape, -1, 1, 1), vf = random_f32(kv_shape, -1, 1, 2);
          traits(dtype).from_float(kf.data_as<float>(), k.data(), kf.numel());
          traits(dtype).from_float(vf.data_as<float>(), v.data(), vf.numel());
          const Tensor q = random_f32({n_q, m.n_heads, m.head_dim}, -1, 1, 3);
          Tensor out = Tensor::empty({n_q, m.n_heads, m.head_dim}, DType::f32);
          attention(q, k, v, 0, out, pool);  // warm-up
          const auto t0 = std::chrono::steady_clock::now();
          for (auto _ : state) {
            attention(q, k, v, 0, out, pool);
            benchmark::ClobberMemory();
          }
          const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          const double gflops = static_cast<double>(state.iterations()) * flops / seconds / 1e9;
          state.counters["GFLOP/s"] = gflops;
          state.counters["%fma"] = 100.0 * gflops / fma_peak_gflops(threads);
          cpu::set_active_isa(before);
        })->UseRealTime();
      }
    }
  }
}

[[maybe_unused]] const bool registered = [] {
  for (cpu::Isa isa : levels()) {
    register_row_ops(isa);
    register_embedding(isa);
    register_attention(isa);
    register_attention_prefill(isa);
  }
  return true;
}();

}  // namespace
}  // namespace qilin::bench
