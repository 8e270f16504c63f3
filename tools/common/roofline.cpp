// Roofline probes (tools/common/roofline.h).
//
// The probe loops are compiled for AVX-512 or AVX2 with function attributes
// (tools/ are built at the baseline flags) and run only where the CPU has them.
#include "common/roofline.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include "core/allocator.h"
#include "kernels/cpu/isa.h"

// GCC 12's AVX-512 headers make "undefined" vectors as `__m512i __Y = __Y;`, which
// -Wuninitialized reports inside inlined intrinsics: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace qilin::tools {
namespace {

using Clock = std::chrono::steady_clock;

// Reads [p, p + bytes) once as kStreams interleaved sequential streams (the
// slice cut into kStreams parts, read in lockstep): one stream per thread
// leaves DRAM bandwidth unused on this kind of VM, and a matmul's GEMV reads
// 8 weight rows at once. The XOR of all lines keeps the loads alive.
constexpr size_t kStreams = 8;

__attribute__((target("avx512f"))) uint64_t read_avx512(const char* p, size_t bytes) {
  const size_t part = bytes / kStreams / 128 * 128;
  __m512i a[kStreams];
  for (size_t s = 0; s < kStreams; ++s) a[s] = _mm512_setzero_si512();
  for (size_t i = 0; i < part; i += 128) {
    for (size_t s = 0; s < kStreams; ++s) {
      const char* q = p + s * part + i;
      a[s] = _mm512_xor_si512(a[s], _mm512_xor_si512(_mm512_load_si512(q), _mm512_load_si512(q + 64)));
    }
  }
  __m512i all = a[0];
  for (size_t s = 1; s < kStreams; ++s) all = _mm512_xor_si512(all, a[s]);
  return static_cast<uint64_t>(_mm_cvtsi128_si64(_mm512_castsi512_si128(all)));
}

__attribute__((target("avx2"))) uint64_t read_avx2(const char* p, size_t bytes) {
  const size_t part = bytes / kStreams / 64 * 64;
  __m256i a[kStreams];
  for (size_t s = 0; s < kStreams; ++s) a[s] = _mm256_setzero_si256();
  for (size_t i = 0; i < part; i += 64) {
    for (size_t s = 0; s < kStreams; ++s) {
      const auto* q = reinterpret_cast<const __m256i*>(p + s * part + i);
      a[s] = _mm256_xor_si256(a[s], _mm256_xor_si256(_mm256_load_si256(q), _mm256_load_si256(q + 1)));
    }
  }
  __m256i all = a[0];
  for (size_t s = 1; s < kStreams; ++s) all = _mm256_xor_si256(all, a[s]);
  return static_cast<uint64_t>(_mm_cvtsi128_si64(_mm256_castsi256_si128(all)));
}

uint64_t read_scalar(const char* p, size_t bytes) {
  uint64_t a = 0;
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    a ^= v;
  }
  return a;
}

// 12 independent accumulators hide the FMA latency (4 cycles) on two FMA ports;
// the chains are only summed at the end, so no FMA can be optimised away.
constexpr int kFmaChains = 12;

__attribute__((target("avx512f"))) float fma_avx512(int64_t iterations) {
  __m512 acc[kFmaChains];
  for (int i = 0; i < kFmaChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kFmaChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < kFmaChains; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) float fma_avx2(int64_t iterations) {
  __m256 acc[kFmaChains];
  for (int i = 0; i < kFmaChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kFmaChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < kFmaChains; ++i) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

int fma_lanes() {
  if (cpu::isa_supported(cpu::Isa::avx512)) return 16;
  return cpu::isa_supported(cpu::Isa::avx2) ? 8 : 0;
}

volatile uint64_t g_sink;  // results of the probes land here so no pass is optimised away

}  // namespace

double measure_read_gbs(ThreadPool& pool, size_t bytes, int passes) {
  bytes = bytes / 4096 * 4096;
  AlignedBuffer buffer(bytes);
  std::memset(buffer.data(), 1, bytes);  // commit every page before timing
  const char* base = static_cast<const char*>(buffer.data());
  const bool avx512 = cpu::isa_supported(cpu::Isa::avx512), avx2 = cpu::isa_supported(cpu::Isa::avx2);
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    const auto t0 = Clock::now();
    pool.run([&](int t, int nt) {
      const size_t slice = bytes / static_cast<size_t>(nt) / 4096 * 4096;
      const char* p = base + slice * static_cast<size_t>(t);
      g_sink = avx512 ? read_avx512(p, slice) : (avx2 ? read_avx2(p, slice) : read_scalar(p, slice));
    });
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const size_t read = bytes / static_cast<size_t>(pool.size()) / 4096 * 4096 * static_cast<size_t>(pool.size());
    best = std::max(best, static_cast<double>(read) / seconds / 1e9);
  }
  return best;
}

double measure_fma_gflops(ThreadPool& pool, int passes) {
  const int lanes = fma_lanes();
  if (lanes == 0) return 0;
  constexpr int64_t kIterations = 20'000'000;  // ~0.1 s per pass at ~2.5 GHz
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    const auto t0 = Clock::now();
    pool.run([&](int, int) {
      const float r = lanes == 16 ? fma_avx512(kIterations) : fma_avx2(kIterations);
      g_sink = static_cast<uint64_t>(r);
    });
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const double flops = 2.0 * lanes * kFmaChains * static_cast<double>(kIterations) * pool.size();
    best = std::max(best, flops / seconds / 1e9);
  }
  return best;
}

static std::mutex g_dram_mutex;  // guards g_dram_gbs
static std::map<int, double> g_dram_gbs;

double dram_read_gbs(int threads) {
  std::lock_guard lock(g_dram_mutex);
  auto [it, fresh] = g_dram_gbs.try_emplace(threads, 0.0);
  if (fresh) it->second = measure_read_gbs(shared_pool(threads));
  return it->second;
}

double dram_read_gbs_now(int threads) {
  std::lock_guard lock(g_dram_mutex);
  return g_dram_gbs[threads] = measure_read_gbs(shared_pool(threads), size_t{1} << 30, 3);
}

double fma_peak_gflops(int threads) {
  static std::mutex mutex;
  static std::map<int, double> cache;
  std::lock_guard lock(mutex);
  auto [it, fresh] = cache.try_emplace(threads, 0.0);
  if (fresh) it->second = measure_fma_gflops(shared_pool(threads));
  return it->second;
}

std::string cpu_model_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (!line.starts_with("model name")) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    const size_t begin = line.find_first_not_of(" \t", colon + 1);
    return begin == std::string::npos ? std::string("cpu") : line.substr(begin);
  }
  return "cpu";
}

ThreadPool& shared_pool(int threads) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  std::lock_guard lock(mutex);
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

}  // namespace qilin::tools
