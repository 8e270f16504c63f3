// The one main of qilin_bench_kernels: every bench/*.cpp registers its
// benchmarks, this runs them (see --help for filters and repetitions).
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
