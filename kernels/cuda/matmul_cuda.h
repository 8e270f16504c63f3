// The GPU paths behind matmul() (kernels/matmul.cpp's dispatch): internal to kernels/.
// Declared in every build; without CUDA (kernels/cuda/stub/) they throw.
//
//  - MatmulPath::cuda: own GEMV kernels for M <= kCudaGemvMaxRows (decode): block
//    formats with x quantized to 8-bit blocks and dp4a (gemv_quant.cu), f32/f16/bf16
//    in f32 (gemv_float.cu); more rows run in chunks of kCudaGemvMaxRows.
//  - MatmulPath::cublas: cublasGemmEx for many rows (prefill), f32 accumulation:
//    f32 weights in f32 (CUBLAS_COMPUTE_32F, no TF32); bf16 weights with x rounded to
//    bf16; f16 and block-format weights in f16 (block formats dequantized per call
//    into a per-device scratch, x rounded to f16; |x| beyond 65504 would overflow).
//
// Both queue their kernels on cuda::default_stream() of the current device and
// return without waiting; x, w and y must be on that device.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/matmul_paths.h"

namespace qilin::detail {

inline constexpr int64_t kCudaGemvMaxRows = 8;

// Whether the GPU paths multiply by weights of this dtype (f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k).
bool cuda_accepts(DType w) noexcept;
void run_cuda_gemv(const MatmulCall& call);
void run_cublas(const MatmulCall& call);
// For the verbose plan.
std::string cuda_kernel_name(MatmulPath path, DType w);

}  // namespace qilin::detail
