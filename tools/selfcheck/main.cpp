// qilin-selfcheck: what this machine offers Qilin, and proof that every
// kernel level and matmul path computes the same answer, with its speed.
//
//   qilin-selfcheck [-t THREADS]
//
// For each supported ISA level and each matmul path it multiplies random
// activations by random weights at SmolLM2-135M's MLP shape (576 -> 1536),
// compares with the scalar reference and prints the error and GFLOP/s.
// Exits non-zero when any result is off.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/cpu/isa.h"
#include "kernels/cuda/device.h"
#include "kernels/matmul.h"

namespace {

using namespace qilin;

void print_machine() {
  const cpu::CpuFeatures& f = cpu::cpu_features();
  auto yn = [](bool b) { return b ? "yes" : "no"; };
  fmt::print(
      "CPU features: avx2={} fma={} f16c={} avx512f/bw/vl/dq={}/{}/{}/{} vnni={} avx512_bf16={} amx "
      "tile/bf16/int8={}/{}/{}\n",
      yn(f.avx2), yn(f.fma), yn(f.f16c), yn(f.avx512f), yn(f.avx512bw), yn(f.avx512vl), yn(f.avx512dq),
      yn(f.avx512vnni), yn(f.avx512bf16), yn(f.amx_tile), yn(f.amx_bf16), yn(f.amx_int8));
  fmt::print("OS support:   ymm={} zmm={} amx tiles={}\n", yn(f.os_avx), yn(f.os_avx512), yn(f.os_amx));
  std::string levels;
  for (int i = 0; i < cpu::kIsaCount; ++i) {
    const auto isa = static_cast<cpu::Isa>(i);
    if (cpu::isa_supported(isa)) levels += std::string(levels.empty() ? "" : ", ") + std::string(cpu::name_of(isa));
  }
  fmt::print("ISA levels:   {} (active: {})\n", levels, cpu::name_of(cpu::active_isa()));
  const auto gpus = cuda::devices();
  if (gpus.empty()) fmt::print("CUDA:         {}\n", cuda::unavailable_reason());
  for (const auto& g : gpus)
    fmt::print("CUDA:         device {}: {} (sm_{}{}, {:.1f} GiB)\n", g.index, g.name, g.sm_major, g.sm_minor,
               static_cast<double>(g.total_bytes) / (1 << 30));
}

Tensor random_weight(int64_t n, int64_t k, DType dtype, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> values(static_cast<size_t>(n * k));
  for (float& v : values) v = dist(rng);
  Tensor w = Tensor::empty({n, k}, dtype);
  traits(dtype).from_float(values.data(), w.data(), n * k);
  return w;
}

struct Outcome {
  double max_rel_err;
  double gflops;
};

Outcome run_path(const TensorView& x, MatmulWeight& w, const TensorView& y, const std::vector<float>& expect,
                 ThreadPool& pool, MatmulOptions opts) {
  const int64_t m = x.dim(0), n = w.n(), k = w.k();
  matmul(x, w, y, pool, opts);  // warm-up; builds any packs
  int reps = 0;
  const auto start = std::chrono::steady_clock::now();
  double seconds = 0;
  do {
    matmul(x, w, y, pool, opts);
    ++reps;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (seconds < 0.2);
  double max_abs = 0, max_err = 0;
  for (size_t i = 0; i < expect.size(); ++i) {
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(expect[i])));
    max_err = std::max(max_err, static_cast<double>(std::fabs(expect[i] - y.data_as<float>()[i])));
  }
  return {max_err / std::max(max_abs, 1e-30), 2.0 * static_cast<double>(m * n * k) * reps / seconds / 1e9};
}

}  // namespace

int main(int argc, char** argv) try {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < argc; ++i) {
    if ((std::strcmp(argv[i], "-t") == 0 || std::strcmp(argv[i], "--threads") == 0) && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      fmt::print(stderr, "usage: qilin-selfcheck [-t THREADS]\n");
      return 2;
    }
  }
  print_machine();
  ThreadPool pool(threads);
  std::mt19937 rng(42);
  const int64_t n = 1536, k = 576;
  bool ok = true;
  fmt::print("\nmatmul y[M,{}] = x[M,{}] . W^T, {} threads; error relative to the largest |y| of the ref path\n", n, k,
             threads);
  fmt::print("{:<12} {:<5} {:>4} {:<8} {:>12} {:>10}\n", "isa", "W", "M", "path", "rel. error", "GFLOP/s");
  const cpu::Isa active = cpu::active_isa();
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    Tensor wt = random_weight(n, k, dtype, rng);
    MatmulWeight w(wt.view());
    for (int64_t m : {int64_t{1}, int64_t{64}}) {
      Tensor x = random_weight(m, k, DType::f32, rng);
      Tensor y = Tensor::empty({m, n}, DType::f32);
      cpu::set_active_isa(cpu::Isa::ref);
      matmul(x.view(), w, y.view(), pool, {MatmulPath::ref});
      const std::vector<float> expect(y.data_as<float>(), y.data_as<float>() + m * n);
      for (int level = 0; level < cpu::kIsaCount; ++level) {
        const auto isa = static_cast<cpu::Isa>(level);
        if (!cpu::isa_supported(isa)) continue;
        cpu::set_active_isa(isa);
        for (MatmulPath path : {MatmulPath::simd, MatmulPath::eigen, MatmulPath::onednn}) {
          MatmulOptions opts;
          opts.force = path;
          try {
            const Outcome o = run_path(x.view(), w, y.view(), expect, pool, opts);
            // bf16 paths round activations to 8 mantissa bits: allow 2^-7 relative; others f32 rounding.
            const bool bf16_math = dtype == DType::bf16;
            const double tolerance = bf16_math ? 1.0 / 128 : 1e-4;
            const bool good = o.max_rel_err <= tolerance;
            ok = ok && good;
            fmt::print("{:<12} {:<5} {:>4} {:<8} {:>12.2e} {:>10.1f}{}\n", cpu::name_of(isa), name_of(dtype), m,
                       name_of(path), o.max_rel_err, o.gflops, good ? "" : "  <-- WRONG");
          } catch (const Error& e) {
            fmt::print("{:<12} {:<5} {:>4} {:<8} {}\n", cpu::name_of(isa), name_of(dtype), m, name_of(path), e.what());
          }
        }
      }
    }
  }
  cpu::set_active_isa(active);
  fmt::print("\n{}\n", ok ? "selfcheck: all paths agree with the reference" : "selfcheck: SOME PATHS ARE WRONG");
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  fmt::print(stderr, "qilin-selfcheck: {}\n", e.what());
  return 1;
}
