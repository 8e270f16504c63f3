// This machine's own limits, measured in the same run as the figures judged
// against them: streaming-read bandwidth (decode, M = 1, is a weight stream)
// and the f32 FMA peak (prefill, large M, is arithmetic).
//
// Shared by the end-to-end `bench` tool and the kernel benchmarks (bench/):
// both compare with the same probes.
#pragma once

#include <cstddef>
#include <string>

#include "core/thread_pool.h"

namespace qilin::tools {

// GB/s that the pool's threads read from a buffer of `bytes`, each thread
// streaming its own contiguous slice; the best of `passes` passes. The default
// working set (1 GiB) is far beyond any last-level cache; a buffer the size of a
// small model's weights measures what that model's decode can read at best.
double measure_read_gbs(ThreadPool& pool, size_t bytes = size_t{1} << 30, int passes = 5);

// f32 GFLOP/s of back-to-back independent FMAs on every thread of the pool:
// AVX-512 (16 lanes) when the CPU has it, else AVX2 (8 lanes), 0 without either;
// best of `passes`.
double measure_fma_gflops(ThreadPool& pool, int passes = 5);

// The probes above for `threads` threads (on a pool of their own), measured on
// first use and cached for the run.
double dram_read_gbs(int threads);
// The DRAM probe measured again now (3 passes) and cached in place of the
// earlier figure: for benchmarks that compare against it while the machine's
// load may have changed since the start of the run.
double dram_read_gbs_now(int threads);
double fma_peak_gflops(int threads);

// The CPU's model name (/proc/cpuinfo's "model name"), or "cpu" where there is none.
std::string cpu_model_name();

// A pool of `threads` threads kept for the whole run (the probes' and benchmarks').
ThreadPool& shared_pool(int threads);

}  // namespace qilin::tools
