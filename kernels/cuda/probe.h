// A GPU's own limits, measured in the same run as the figures judged against them
// (qilin-bench's GPU roofline, as tools/common/roofline.h is the CPU's): the read
// bandwidth of device memory (decode at batch 1 streams the weights) and cuBLAS's
// bf16 GEMM throughput (prefill is large matmuls).
//
// Header free of CUDA: the CPU-only build compiles against kernels/cuda/stub/,
// where every probe throws "no CUDA backend".
#pragma once

#include <cstddef>
#include <cstdint>

namespace qilin::cuda {

// GB/s that one kernel reads from a buffer of `bytes` of device memory on `device`
// (-1: the current device), every byte once per launch (16-byte loads, all SMs busy);
// the best of `passes` passes of several launches each. The default 1 GiB is far
// beyond the L2 cache. The buffer is cudaMalloc'ed and freed here, outside the caching
// allocator, so none of it stays reserved for later.
double measure_read_gbs(size_t bytes = size_t{1} << 30, int passes = 5, int device = -1);

// GFLOP/s of cuBLAS GEMMs of bf16 matrices m = n = k = `size` with f32 accumulation
// (cublasGemmEx, CUBLAS_COMPUTE_32F: tensor cores) on `device`; best of `passes`.
// Inputs hold small non-zero values (tensor cores draw less power on zeros).
double measure_bf16_gemm_gflops(int64_t size = 8192, int passes = 5, int device = -1);

}  // namespace qilin::cuda
