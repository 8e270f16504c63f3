// The matmuls of one decode step of a whole quantized model, through the dispatch
// point as the decoder calls them (Q/K/V and gate/up as matmul_group), with every
// layer's weights distinct: an upper bound on decode tokens/s from the matmuls alone,
// and the weight stream of a model that (SmolLM2-135M, 75 MB in q4_0) or that does
// not (Qwen2.5-0.5B, 330 MB) fit in the caches.
//
// Names: matmul_quant_decode/<model>/<format>/M:1. Counters: tok/s (steps per
// second), GB/s of weight bytes, %dram of the DRAM read probe taken just before.
// The output projection (tied embeddings; K is not a multiple of 256) is q8_0, as in
// llama.cpp's files of these models. Threads: QILIN_BENCH_THREADS, default all cores.
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
#include "kernels/matmul.h"

namespace qilin::bench {
namespace {

struct ModelShape {
  const char* name;
  int64_t d, q_dim, kv_dim, d_ff, layers, vocab;
};
constexpr ModelShape kModels[] = {{"smollm2-135m", 576, 576, 192, 1536, 30, 49152},
                                  {"qwen2.5-0.5b", 896, 896, 128, 4864, 24, 151936}};

int threads() {
  if (const char* env = std::getenv("QILIN_BENCH_THREADS"); env != nullptr && std::atoi(env) > 0) return std::atoi(env);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

Tensor quantized(int64_t n, int64_t k, DType dtype, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> row(static_cast<size_t>(k));
  Tensor t = Tensor::empty({n, k}, dtype);
  for (int64_t r = 0; r < n; ++r) {
    for (float& v : row) v = dist(rng);
    traits(dtype).from_float(row.data(), t.view().row(r), k);
  }
  return t;
}

struct Model {
  std::vector<Tensor> tensors;
  std::vector<std::unique_ptr<MatmulWeight>> weights;  // per layer: q, k, v, o, gate, up, down; then output
  size_t bytes = 0;
};

Model build(const ModelShape& s, DType dtype, ThreadPool& pool) {
  Model m;
  std::mt19937 rng(1);
  auto add = [&](int64_t n, int64_t k, DType t) {
    m.tensors.push_back(quantized(n, k, t, rng));
    m.weights.push_back(std::make_unique<MatmulWeight>(m.tensors.back().view()));
    m.weights.back()->prepare(1, {}, &pool);
    m.bytes += m.tensors.back().nbytes();
  };
  m.tensors.reserve(static_cast<size_t>(7 * s.layers + 1));
  for (int64_t l = 0; l < s.layers; ++l) {
    add(s.q_dim, s.d, dtype);
    add(s.kv_dim, s.d, dtype);
    add(s.kv_dim, s.d, dtype);
    add(s.d, s.q_dim, dtype);
    add(s.d_ff, s.d, dtype);
    add(s.d_ff, s.d, dtype);
    add(s.d, s.d_ff, dtype);
  }
  add(s.vocab, s.d, DType::q8_0);
  return m;
}

void run_decode(benchmark::State& state, const ModelShape& s, DType dtype) {
  ThreadPool& pool = shared_pool(threads());
  const Model model = build(s, dtype, pool);
  const Tensor x = Tensor::zeros({1, std::max(s.d, s.d_ff)}, DType::f32);
  Tensor qkv[3] = {Tensor::empty({1, s.q_dim}, DType::f32), Tensor::empty({1, s.kv_dim}, DType::f32),
                   Tensor::empty({1, s.kv_dim}, DType::f32)};
  Tensor gate_up[2] = {Tensor::empty({1, s.d_ff}, DType::f32), Tensor::empty({1, s.d_ff}, DType::f32)};
  Tensor out = Tensor::empty({1, s.d}, DType::f32), logits = Tensor::empty({1, s.vocab}, DType::f32);
  auto step = [&] {
    const TensorView in(x.data(), {1, s.d}, DType::f32), in_ff(x.data(), {1, s.d_ff}, DType::f32);
    for (int64_t l = 0; l < s.layers; ++l) {
      const auto& w = model.weights;
      const size_t b = static_cast<size_t>(7 * l);
      const MatmulWeight* qkv_w[3] = {w[b].get(), w[b + 1].get(), w[b + 2].get()};
      const TensorView qkv_y[3] = {qkv[0].view(), qkv[1].view(), qkv[2].view()};
      matmul_group(in, qkv_w, qkv_y, pool);
      matmul(TensorView(x.data(), {1, s.q_dim}, DType::f32), *w[b + 3], out, pool);
      const MatmulWeight* gu_w[2] = {w[b + 4].get(), w[b + 5].get()};
      const TensorView gu_y[2] = {gate_up[0].view(), gate_up[1].view()};
      matmul_group(in, gu_w, gu_y, pool);
      matmul(in_ff, *w[b + 6], out, pool);
    }
    matmul(in, *model.weights.back(), logits, pool);
  };
  step();  // warm-up: scratch
  const double dram_gbs = dram_read_gbs_now(pool.size());
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double steps = static_cast<double>(state.iterations());
  const double gbs = static_cast<double>(model.bytes) * steps / seconds / 1e9;
  state.counters["tok/s"] = steps / seconds;
  state.counters["GB/s"] = gbs;
  state.counters["%dram"] = 100.0 * gbs / dram_gbs;
  state.counters["MB"] = static_cast<double>(model.bytes) / 1e6;
}

void register_all() {
  for (const ModelShape& s : kModels) {
    for (DType dtype : {DType::q4_0, DType::q8_0, DType::q4_1}) {
      const std::string name =
          std::string("matmul_quant_decode/") + s.name + "/" + std::string(name_of(dtype)) + "/M:1";
      benchmark::RegisterBenchmark(name.c_str(), [&s, dtype](benchmark::State& st) {
        run_decode(st, s, dtype);
      })->Unit(benchmark::kMillisecond);
    }
  }
}

[[maybe_unused]] const int registered = (register_all(), 0);

}  // namespace
}  // namespace qilin::bench
