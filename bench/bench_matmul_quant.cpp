// Quantized-weight matmul benchmarks: each block format on each ISA level's
// kernels (forced with set_active_isa) over real models' MLP shapes and
// M in {1, 8, 64, 512}, with the same counters as bench_matmul.cpp:
//   GB/s      weight bytes (as stored, in the block format) per second; %dram of the DRAM probe
//   GFLOP/s   2·M·N·K per second (integer multiply-adds counted as 2 ops); %fma of the f32 FMA probe
// Names: matmul_quant/<isa>/<format>/<K>x<N>/M:<rows>; the label is the kernel that ran.
// K×N: SmolLM2-135M's MLP up (576×1536) and Qwen2.5-0.5B's (896×4864) for the
// 32-element formats; the k-quants need K to be a multiple of 256, so they run on
// the down projections (1536×576, 4864×896), as llama.cpp's Q4_K_M files do too.
// Threads: QILIN_BENCH_THREADS, default all cores.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/roofline.h"
#include "core/allocator.h"
#include "kernels/cpu/gemm_table.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/qgemm_pack.h"
#include "kernels/cpu/qgemm_table.h"
#include "kernels/matmul.h"

namespace qilin::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct QuantShape {
  int64_t k, n;
};
constexpr QuantShape kBlockShapes[] = {{576, 1536}, {896, 4864}};
constexpr QuantShape kSuperBlockShapes[] = {{1536, 576}, {4864, 896}};
constexpr int64_t kRows[] = {1, 8, 64, 512};

int threads() {
  if (const char* env = std::getenv("QILIN_BENCH_THREADS"); env != nullptr && std::atoi(env) > 0) return std::atoi(env);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// The weight of the running benchmark (quantizing 4.4M values to q4_k takes a while,
// and benchmarks of one weight run in a row).
const Tensor& quant_weight(DType dtype, QuantShape s) {
  static Tensor cached;
  static DType cached_type = DType::f32;
  static int64_t cached_k = 0, cached_n = 0;
  if (cached_type != dtype || cached_k != s.k || cached_n != s.n) {
    cached = Tensor();
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<float> row(static_cast<size_t>(s.k));
    cached = Tensor::empty({s.n, s.k}, dtype);
    for (int64_t r = 0; r < s.n; ++r) {
      for (float& v : row) v = dist(rng);
      traits(dtype).from_float(row.data(), cached.view().row(r), s.k);
    }
    cached_type = dtype, cached_k = s.k, cached_n = s.n;
  }
  return cached;
}

void run_quant(benchmark::State& state, cpu::Isa isa, DType dtype, QuantShape s, int64_t m, bool fresh_probe = false) {
  if (!cpu::isa_supported(isa)) {
    state.SkipWithError("ISA level not supported by this CPU");
    return;
  }
  ThreadPool& pool = shared_pool(threads());
  const cpu::Isa saved = cpu::active_isa();
  cpu::set_active_isa(isa);
  MatmulWeight weight(quant_weight(dtype, s));
  weight.prepare(m);  // the interleaved repack happens here, once
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  Tensor x = Tensor::empty({m, s.k}, DType::f32);
  for (int64_t i = 0; i < m * s.k; ++i) x.data_as<float>()[i] = dist(rng);
  Tensor y = Tensor::empty({m, s.n}, DType::f32);
  matmul(x, weight, y, pool);  // warm-up: scratch
  const auto format = static_cast<cpu::QFormat>(static_cast<int>(dtype) - static_cast<int>(DType::q8_0));
  state.SetLabel(cpu::qgemm_table(isa).for_rows(format, m).name);
  // The weight-stream targets compare with the probe taken just before, under the same load.
  const double dram_gbs = fresh_probe ? dram_read_gbs_now(pool.size()) : dram_read_gbs(pool.size());
  const auto t0 = Clock::now();
  for (auto _ : state) {
    matmul(x, weight, y, pool);
    benchmark::ClobberMemory();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  cpu::set_active_isa(saved);
  const double iters = static_cast<double>(state.iterations());
  const double gbs = static_cast<double>(weight.view().nbytes()) * iters / seconds / 1e9;
  const double gflops = 2.0 * static_cast<double>(m * s.n * s.k) * iters / seconds / 1e9;
  state.counters["GB/s"] = gbs;
  state.counters["GFLOP/s"] = gflops;
  state.counters["%dram"] = 100.0 * gbs / dram_gbs;
  state.counters["%fma"] = 100.0 * gflops / fma_peak_gflops(pool.size());
}

// ---- one kernel of the table, called directly on one thread ----
// Where the amx level's kernel for many rows takes over from vpdpbusd (large_min_m):
// each kernel of a level forced at every M, without the dispatcher's choice.
void run_kernel(benchmark::State& state, cpu::Isa isa, bool large, DType dtype, QuantShape s, int64_t m) {
  if (!cpu::isa_supported(isa)) {
    state.SkipWithError("ISA level not supported by this CPU");
    return;
  }
  const auto format = static_cast<cpu::QFormat>(static_cast<int>(dtype) - static_cast<int>(DType::q8_0));
  const cpu::QGemmTable& table = cpu::qgemm_table(isa);
  const cpu::QGemmKernel& kernel =
      large ? table.large[static_cast<int>(format)] : table.kernel[static_cast<int>(format)];
  const Tensor& w = quant_weight(dtype, s);
  AlignedBuffer packed(cpu::qpack_bytes(format, s.n, s.k));
  cpu::qpack_groups(format, w.data(), w.view().row_stride_bytes(), s.n, s.k, 0, (s.n + 15) / 16, packed.data());
  const int64_t rows = (m + 15) / 16 * 16, nb = s.k / 32;  // x rows padded as the dispatcher does
  std::vector<float> x(static_cast<size_t>(rows * s.k), 0.f), d(static_cast<size_t>(rows * nb)),
      ds(static_cast<size_t>(rows * nb));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (int64_t i = 0; i < m * s.k; ++i) x[static_cast<size_t>(i)] = dist(rng);
  std::vector<int8_t> q(static_cast<size_t>(rows * s.k));
  std::vector<int32_t> sums(static_cast<size_t>(rows * 2 * nb)), corr(static_cast<size_t>(rows * 2 * nb), 0);
  std::vector<uint16_t> xb(static_cast<size_t>(rows * s.k));
  table.quantize_x(x.data(), s.k, rows, s.k, q.data(), d.data(), ds.data(), sums.data());
  for (int64_t r = 0; r < rows; ++r) {  // QuantizedX::xb's tiled layout
    for (int64_t e = 0; e < s.k; e += 32) {
      cpu::gemm_table(isa).round_to_bf16(x.data() + r * s.k + e, xb.data() + cpu::xb_tiled_offset(r, e, s.k), 32);
    }
  }
  Tensor y = Tensor::empty({m, s.n}, DType::f32);
  AlignedBuffer scratch(kernel.scratch_bytes(s.k) + 64);
  cpu::QGemmArgs a;
  a.x = {q.data(), d.data(), ds.data(), corr.data(), xb.data(), m, s.k};
  a.w = packed.data();
  a.n = s.n;
  a.y = y.data_as<float>();
  a.ldy = s.n;
  a.scratch = scratch.data();
  state.SetLabel(kernel.name);
  for (auto _ : state) {
    kernel.fn(a, 0, s.n);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(m * s.n * s.k) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
  static_assert(static_cast<int>(DType::q6_k) - static_cast<int>(DType::q8_0) == cpu::kQFormatCount - 1);
  for (DType dtype : {DType::q8_0, DType::q4_0, DType::q4_1, DType::q4_k, DType::q6_k}) {
    const bool k_quant = dtype == DType::q4_k || dtype == DType::q6_k;
    for (const QuantShape& s : k_quant ? kSuperBlockShapes : kBlockShapes) {
      for (cpu::Isa isa : {cpu::Isa::avx2, cpu::Isa::avx512, cpu::Isa::avx512_bf16, cpu::Isa::amx}) {
        for (int64_t m : kRows) {
          const std::string name = "matmul_quant/" + std::string(cpu::name_of(isa)) + "/" +
                                   std::string(name_of(dtype)) + "/" + std::to_string(s.k) + "x" + std::to_string(s.n) +
                                   "/M:" + std::to_string(m);
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
            run_quant(st, isa, dtype, s, m);
          })->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
}

[[maybe_unused]] const int registered = (register_all(), 0);

// Decode from a weight far beyond any cache (302 MB in q4_0, 570 MB in q8_0): the
// weight stream against the DRAM read probe taken just before.
void register_dram() {
  constexpr QuantShape kDram{32768, 16384};
  for (DType dtype : {DType::q4_0, DType::q8_0}) {
    const std::string name = "matmul_quant_dram/" + std::string(name_of(dtype)) + "/" + std::to_string(kDram.k) + "x" +
                             std::to_string(kDram.n) + "/M:1";
    benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
      run_quant(st, cpu::best_isa(), dtype, kDram, 1, true);
    })->Unit(benchmark::kMicrosecond);
  }
}
[[maybe_unused]] const int registered_dram = (register_dram(), 0);

void register_kernels() {
  const std::pair<DType, QuantShape> cases[] = {{DType::q8_0, {896, 4864}},
                                                {DType::q4_0, {896, 4864}},
                                                {DType::q4_1, {896, 4864}},
                                                {DType::q4_k, {4864, 896}},
                                                {DType::q6_k, {4864, 896}}};
  for (const auto& [dtype, s] : cases) {
    for (bool large : {false, true}) {
      for (int64_t m : {4, 8, 12, 16, 24, 32, 64}) {
        const std::string name = std::string("matmul_quant_kernel/") + (large ? "amx" : "avx512_bf16") + "/" +
                                 std::string(name_of(dtype)) + "/" + std::to_string(s.k) + "x" + std::to_string(s.n) +
                                 "/M:" + std::to_string(m);
        const cpu::Isa isa = large ? cpu::Isa::amx : cpu::Isa::avx512_bf16;
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
          run_kernel(st, isa, large, dtype, s, m);
        })->Unit(benchmark::kMicrosecond);
      }
    }
  }
}
[[maybe_unused]] const int registered_kernels = (register_kernels(), 0);

// The avx2 level's Q8_0 kernels side by side (one thread): the sign trick of qgemm_simd.h
// ("avx2") against vpmaddwd on int16 panels ("avx2_large", qgemm_q8_0_madd.h), where
// large_min_m switches; K×N: SmolLM2-135M's MLP up and down, Qwen2.5-0.5B's up.
void register_avx2_q8_0_kernels() {
  for (const QuantShape& s : {QuantShape{576, 1536}, QuantShape{1536, 576}, QuantShape{896, 4864}}) {
    for (bool large : {false, true}) {
      for (cpu::Isa isa : {cpu::Isa::avx2, cpu::Isa::avx512}) {
        for (int64_t m : {4, 8, 16, 32, 64, 512}) {
          const std::string name = "matmul_quant_kernel/" + std::string(cpu::name_of(isa)) + (large ? "_large" : "") +
                                   "/q8_0/" + std::to_string(s.k) + "x" + std::to_string(s.n) +
                                   "/M:" + std::to_string(m);
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
            run_kernel(st, isa, large, DType::q8_0, s, m);
          })->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
}
[[maybe_unused]] const int registered_avx2_q8_0 = (register_avx2_q8_0_kernels(), 0);

}  // namespace
}  // namespace qilin::bench
