// Matmul benchmarks: every dispatch path over real models' weight shapes and
// M in {1, 8, 64, 512}, each figure also as a percentage of this machine's
// limits measured in the same run (bench/roofline.h):
//   GB/s      weight bytes streamed per second; %dram = of the DRAM read probe
//   GFLOP/s   2·M·N·K per second;                %fma  = of the f32 FMA probe
// plus oneDNN called directly (no Qilin in between) as the baseline that the
// dispatch point's large-M bf16 path is held to, and a probe of how Qilin's
// thread pool and oneDNN's OpenMP team share the cores.
//
// Names: matmul/<path>/<weight dtype>/<K>x<N>/M:<rows>; the label says which
// path `auto` took. Threads: QILIN_BENCH_THREADS, default all cores.
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <dnnl.hpp>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>

#include "bench/roofline.h"
#include "core/half.h"
#include "kernels/matmul.h"

namespace qilin::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct WeightShape {
  int64_t k, n;
};
// K x N: SmolLM2-135M MLP up and down, Qwen2.5-0.5B MLP up, a 7B MLP up.
constexpr WeightShape kModelShapes[] = {{576, 1536}, {1536, 576}, {896, 4864}, {4096, 11008}};
constexpr int64_t kRows[] = {1, 8, 64, 512};
// A weight far beyond any cache for the decode bandwidth target: 256 MiB in bf16, 512 MiB in f32.
constexpr WeightShape kDramShape{8192, 16384};

int bench_threads() {
  if (const char* env = std::getenv("QILIN_BENCH_THREADS"); env != nullptr && std::atoi(env) > 0) return std::atoi(env);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

ThreadPool& bench_pool() {
  static ThreadPool pool(bench_threads());
  return pool;
}

Tensor random_tensor(int64_t rows, int64_t cols, DType dtype, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  Tensor t = Tensor::empty({rows, cols}, dtype);
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float f = dist(rng);
    if (dtype == DType::f32) t.data_as<float>()[i] = f;
    if (dtype == DType::f16) t.data_as<uint16_t>()[i] = f32_to_f16(f);
    if (dtype == DType::bf16) t.data_as<uint16_t>()[i] = f32_to_bf16(f);
  }
  return t;
}

// The weight of the running benchmark; benchmarks of one shape run in a row,
// so one cached tensor saves refilling hundreds of MB without holding them all.
const Tensor& weight_tensor(WeightShape s, DType dtype) {
  static Tensor cached;
  static int64_t cached_k = 0, cached_n = 0;
  static DType cached_type = DType::i8;
  if (cached_k != s.k || cached_n != s.n || cached_type != dtype) {
    cached = Tensor();
    cached = random_tensor(s.n, s.k, dtype, 42);
    cached_k = s.k, cached_n = s.n, cached_type = dtype;
  }
  return cached;
}

// Sets the rate counters from the loop's own clock; `dram_gbs` is the DRAM
// probe to compare with (0: the figure measured at the start of the run).
void report(benchmark::State& state, double seconds, int64_t m, WeightShape s, size_t weight_bytes,
            double dram_gbs = 0) {
  const int threads = bench_pool().size();
  if (dram_gbs == 0) dram_gbs = dram_read_gbs(threads);
  const double iters = static_cast<double>(state.iterations());
  const double gbs = static_cast<double>(weight_bytes) * iters / seconds / 1e9;
  const double gflops = 2.0 * static_cast<double>(m * s.n * s.k) * iters / seconds / 1e9;
  state.counters["GB/s"] = gbs;
  state.counters["GFLOP/s"] = gflops;
  state.counters["%dram"] = 100.0 * gbs / dram_gbs;
  state.counters["%fma"] = 100.0 * gflops / fma_peak_gflops(threads);
}

void run_matmul(benchmark::State& state, MatmulPath path, DType dtype, WeightShape s, int64_t m, bool allow_bf16,
                bool fresh_probe = false) {
  ThreadPool& pool = bench_pool();
  MatmulWeight weight(weight_tensor(s, dtype));
  MatmulOptions opts;
  opts.force = path;
  opts.allow_bf16_compute = allow_bf16;
  weight.prepare(m, opts);  // oneDNN's weight reorder happens here, once
  const Tensor x = random_tensor(m, s.k, DType::f32, 7);
  Tensor y = Tensor::empty({m, s.n}, DType::f32);
  matmul(x, weight, y, pool, opts);  // warm-up: primitives, scratch
  state.SetLabel(std::string(name_of(plan_matmul(m, weight, opts))));
  // The weight-stream targets compare with the probe taken just before, under the same load.
  const double dram_gbs = fresh_probe ? dram_read_gbs_now(pool.size()) : 0.0;
  const auto t0 = Clock::now();
  for (auto _ : state) {
    matmul(x, weight, y, pool, opts);
    benchmark::ClobberMemory();
  }
  report(state, std::chrono::duration<double>(Clock::now() - t0).count(), m, s, weight.view().nbytes(), dram_gbs);
}

// ---- oneDNN alone: the baseline for the dispatch point's large-M bf16 path ----

void set_omp_threads(int n) {
  using SetThreads = void (*)(int);
  static const auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (set != nullptr) set(n);
}

// dnnl::matmul with bf16 (or f32) activations and weights already in oneDNN's
// layout: only the primitive's execution is timed.
void run_onednn_alone(benchmark::State& state, dnnl::memory::data_type type, WeightShape s, int64_t m) {
  using dnnl::memory;
  set_omp_threads(bench_pool().size());
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc src_md({m, s.k}, type, memory::format_tag::ab);
  const memory::desc any_md({s.k, s.n}, type, memory::format_tag::any);
  const memory::desc dst_md({m, s.n}, memory::data_type::f32, memory::format_tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, any_md, dst_md), engine);
  const DType dtype = type == memory::data_type::bf16 ? DType::bf16 : DType::f32;
  const Tensor w = random_tensor(s.n, s.k, dtype, 42), x = random_tensor(m, s.k, dtype, 7);
  Tensor y = Tensor::empty({m, s.n}, DType::f32);
  memory user_w(memory::desc({s.k, s.n}, type, memory::format_tag::ba), engine, w.data());
  memory packed_w(pd.weights_desc(), engine);
  dnnl::reorder(user_w, packed_w).execute(stream, user_w, packed_w);
  memory src(src_md, engine, x.data()), dst(dst_md, engine, y.data());
  const dnnl::matmul mm(pd);
  const std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, packed_w}, {DNNL_ARG_DST, dst}};
  mm.execute(stream, args);
  stream.wait();
  state.SetLabel(pd.impl_info_str());
  const auto t0 = Clock::now();
  for (auto _ : state) {
    mm.execute(stream, args);
    stream.wait();
  }
  report(state, std::chrono::duration<double>(Clock::now() - t0).count(), m, s, w.nbytes());
}

// ---- do the two thread pools fight? ----
// A prefill step alternates oneDNN matmuls (OpenMP team) with Qilin-pool work;
// each side's threads spin for a while after their job. Compare a pair's time
// with the sum of each alone (pools/onednn + pools/simd).
void run_pools(benchmark::State& state, bool onednn, bool simd) {
  ThreadPool& pool = bench_pool();
  const WeightShape s{896, 4864};
  static const Tensor w = random_tensor(s.n, s.k, DType::bf16, 42);
  MatmulWeight big(w), small(w);
  MatmulOptions to_onednn, to_simd;
  to_onednn.force = MatmulPath::onednn;
  to_simd.force = MatmulPath::simd;
  big.prepare(512, to_onednn);
  const Tensor x512 = random_tensor(512, s.k, DType::f32, 1), x1 = random_tensor(1, s.k, DType::f32, 2);
  Tensor y512 = Tensor::empty({512, s.n}, DType::f32), y1 = Tensor::empty({1, s.n}, DType::f32);
  matmul(x512, big, y512, pool, to_onednn);
  matmul(x1, small, y1, pool, to_simd);
  for (auto _ : state) {
    if (onednn) matmul(x512, big, y512, pool, to_onednn);
    if (simd) matmul(x1, small, y1, pool, to_simd);
  }
}

// ---- registration ----

std::string dtype_name(DType t) { return std::string(name_of(t)); }

void register_all() {
  struct Variant {
    MatmulPath path;
    bool allow_bf16;
    const char* name;
  };
  const Variant variants[] = {{MatmulPath::automatic, false, "auto"},
                              {MatmulPath::simd, false, "simd"},
                              {MatmulPath::onednn, false, "onednn"},
                              {MatmulPath::onednn, true, "onednn_bf16compute"},
                              {MatmulPath::eigen, false, "eigen"}};
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    for (const WeightShape& s : kModelShapes) {
      for (const Variant& v : variants) {
        if (v.path == MatmulPath::onednn && dtype == DType::f16 && !v.allow_bf16) continue;  // no f16 in oneDNN 2.6
        if (v.allow_bf16 && dtype == DType::bf16) continue;                                  // the same as plain onednn
        for (int64_t m : kRows) {
          const std::string name = "matmul/" + std::string(v.name) + "/" + dtype_name(dtype) + "/" +
                                   std::to_string(s.k) + "x" + std::to_string(s.n) + "/M:" + std::to_string(m);
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
            run_matmul(st, v.path, dtype, s, m, v.allow_bf16);
          })->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  // Where the plan table's thresholds come from: each path of each dtype over
  // a fine range of M on one shape (Qwen2.5-0.5B's MLP up-projection).
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    for (MatmulPath path : {MatmulPath::simd, MatmulPath::onednn}) {
      if (path == MatmulPath::onednn && dtype == DType::f16) continue;
      for (int64_t m : {1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64}) {
        const std::string name = "matmul_crossover/" + std::string(name_of(path)) + "/" + dtype_name(dtype) +
                                 "/896x4864/M:" + std::to_string(m);
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
          run_matmul(st, path, dtype, {896, 4864}, m, false);
        })->Unit(benchmark::kMicrosecond);
      }
    }
  }
  // bf16 compute at prefill shapes: the own AMX kernel (simd, converting weight panels
  // on the fly) against oneDNN's (weights reordered to bf16 once, at prepare()).
  // K x N: Qwen2.5-0.5B's MLP up and down projections; SmolLM2-135M's MLP up and down
  // and its attention Q/O.
  for (DType dtype : {DType::f16, DType::f32, DType::bf16}) {
    for (WeightShape s : {WeightShape{896, 4864}, WeightShape{4864, 896}, WeightShape{576, 1536},
                          WeightShape{1536, 576}, WeightShape{576, 576}}) {
      for (MatmulPath path : {MatmulPath::simd, MatmulPath::onednn}) {
        for (int64_t m : {8, 64, 512}) {
          const std::string name = "matmul_bf16compute/" + std::string(name_of(path)) + "/" + dtype_name(dtype) + "/" +
                                   std::to_string(s.k) + "x" + std::to_string(s.n) + "/M:" + std::to_string(m);
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
            run_matmul(st, path, dtype, s, m, true);
          })->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (MatmulPath path : {MatmulPath::automatic, MatmulPath::simd}) {
      const std::string name = "matmul_dram/" + std::string(name_of(path)) + "/" + dtype_name(dtype) + "/" +
                               std::to_string(kDramShape.k) + "x" + std::to_string(kDramShape.n) + "/M:1";
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
        run_matmul(st, path, dtype, kDramShape, 1, false, true);
      })->Unit(benchmark::kMicrosecond);
    }
  }
  for (auto [type, tname] : {std::pair{dnnl::memory::data_type::bf16, "bf16"}, {dnnl::memory::data_type::f32, "f32"}}) {
    const std::string name = std::string("onednn_alone/") + tname + "/896x4864/M:512";
    benchmark::RegisterBenchmark(name.c_str(), [type](benchmark::State& st) {
      run_onednn_alone(st, type, {896, 4864}, 512);
    })->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("pools/onednn_bf16_512x896x4864", [](benchmark::State& st) {
    run_pools(st, true, false);
  })->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("pools/simd_bf16_1x896x4864", [](benchmark::State& st) {
    run_pools(st, false, true);
  })->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("pools/alternating_both", [](benchmark::State& st) {
    run_pools(st, true, true);
  })->Unit(benchmark::kMicrosecond);
}

[[maybe_unused]] const int registered = (register_all(), 0);

}  // namespace
}  // namespace qilin::bench
