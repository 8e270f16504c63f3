// Qilin's own matmul kernels for float weights, one table per ISA level.
//
// Every kernel computes y[i, n] = sum_k x[i, k] · w[n, k] for all rows i < m
// and the output columns n in [n_begin, n_end): the dispatcher (kernels/matmul.cpp)
// splits N across the thread pool, so a kernel never sees a thread.
//
// Two shapes of kernel per weight dtype:
//   gemv  few activation rows: streams each weight row once per group of x rows;
//         the decode path (M = 1), bound by memory bandwidth.
//   gemm  many rows: cache-blocked over K and N so a block of W stays in L2
//         while every row of x passes over it; bound by the FMA units.
// Both accept any m (a gemv re-streams W for each group of rows), so the
// dispatcher's choice between them is a matter of speed, never of correctness.
//
// bf16 weights: a kernel may ask for the activations rounded to bf16 too
// (GemmKernel::wants_bf16_x), so that it can multiply pairs with vdpbf16ps;
// the dispatcher then converts x once per call into GemmArgs::x_bf16.
#pragma once

#include <cstdint>

#include "kernels/cpu/isa.h"

namespace qilin::cpu {

struct GemmArgs {
  const float* x = nullptr;          // m rows of k floats, row stride ldx (elements)
  const uint16_t* x_bf16 = nullptr;  // x rounded to bf16, row stride ldx_bf16; only for wants_bf16_x
  const void* w = nullptr;           // rows of k weights (the kernel's dtype), row stride w_stride (bytes)
  float* y = nullptr;                // m rows, row stride ldy (elements)
  int64_t m = 0, k = 0;
  int64_t ldx = 0, ldx_bf16 = 0, ldy = 0, w_stride = 0;
};

using GemmFn = void (*)(const GemmArgs& args, int64_t n_begin, int64_t n_end) noexcept;

struct GemmKernel {
  GemmFn fn = nullptr;
  bool wants_bf16_x = false;  // reads x_bf16 instead of x (bf16 dot products)
  const char* name = "";      // for the verbose plan, e.g. "avx512 gemv f32"
};

// Index of a weight dtype in the tables below.
enum class GemmWeight : uint8_t { f32, f16, bf16 };
inline constexpr int kGemmWeightCount = 3;

struct GemmTable {
  GemmKernel gemv[kGemmWeightCount];
  GemmKernel gemm[kGemmWeightCount];
  // The largest m for which gemv is the faster kernel (measured; see docs/performance.md).
  int64_t gemv_max_m = 1;
  // Granularity of the N split across threads, in rows: a multiple of the
  // kernels' register block so that no thread is left with a ragged tail.
  int64_t n_grain = 1;
  // x -> bf16 with round-to-nearest-even, for kernels that want bf16 activations.
  void (*round_to_bf16)(const float* src, uint16_t* dst, int64_t n) noexcept = nullptr;
};

// The table for one level; built once for all levels (each copies the level below
// and overrides what it does better). Levels above the CPU's are still built but
// must not be called.
const GemmTable& gemm_table(Isa isa) noexcept;

// Fill functions, one per level (kernels/cpu/<level>/gemm_*.cpp).
void fill_gemm_ref(GemmTable& t) noexcept;
void fill_gemm_avx2(GemmTable& t) noexcept;
void fill_gemm_avx512(GemmTable& t) noexcept;
void fill_gemm_avx512_bf16(GemmTable& t) noexcept;

}  // namespace qilin::cpu
