// This machine's limits for the kernel benchmarks: the probes live in
// tools/common/roofline.h (the end-to-end `bench` tool uses them too); this
// header names them in qilin::bench, where the benchmarks look for them.
#pragma once

#include "common/roofline.h"

namespace qilin::bench {

using tools::dram_read_gbs;
using tools::dram_read_gbs_now;
using tools::fma_peak_gflops;
using tools::measure_fma_gflops;
using tools::measure_read_gbs;
using tools::shared_pool;

}  // namespace qilin::bench
