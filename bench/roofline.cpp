// The roofline probes (tools/common/roofline.h) as benchmarks, so a kernel
// benchmark run also records the machine's limits it is judged against.
#include "bench/roofline.h"

#include <benchmark/benchmark.h>

namespace qilin::bench {
namespace {

// The probes as benchmarks: one iteration of five passes, the best pass reported.
void BM_roofline_dram_read(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const size_t bytes = static_cast<size_t>(state.range(1)) << 20;
  ThreadPool& pool = shared_pool(threads);
  double best = 0;
  for (auto _ : state) best = measure_read_gbs(pool, bytes, 5);
  state.counters["GB/s"] = best;
  state.counters["threads"] = threads;
}
BENCHMARK(BM_roofline_dram_read)
    ->ArgNames({"threads", "MiB"})
    ->Args({1, 1024})
    ->Args({2, 1024})
    ->Args({2, 64})  // cache-resident, for reference: small models' weights live here
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_roofline_fma_peak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  ThreadPool& pool = shared_pool(threads);
  double best = 0;
  for (auto _ : state) best = measure_fma_gflops(pool, 5);
  state.counters["GFLOP/s"] = best;
  state.counters["threads"] = threads;
}
BENCHMARK(BM_roofline_fma_peak)->ArgName("threads")->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace qilin::bench
