// Qilin's own matmul kernels for float weights, one table per ISA level.
//
// Every kernel computes y[i, n] = sum_k x[i, k] · w[n, k] for all rows i < m
// and the output columns n in [n_begin, n_end): the dispatcher (kernels/matmul.cpp)
// splits N across the thread pool, so a kernel never sees a thread.
//
// Two shapes of kernel per weight dtype:
//   gemv  few activation rows: streams each weight row once per group of x rows;
//         the decode path (M = 1), bound by memory bandwidth.
//   gemm  many rows: cache-blocked over K and N so a block of W stays in cache
//         while every row of x passes over it; bound by the FMA units. It may
//         ask for per-thread scratch (GemmKernel::scratch_bytes), e.g. to pack
//         a block of W, which the dispatcher hands it in GemmArgs::scratch.
// Both accept any m (a gemv re-streams W for each group of rows), so the
// dispatcher's choice between them is a matter of speed, never of correctness.
// f16/bf16 weights are widened to f32 (exactly); sums are f32.
//
// A third kind, gemm_bf16, multiplies with both operands rounded to bf16
// (MatmulOptions::allow_bf16_compute): x is rounded once per call by the
// dispatcher (GemmArgs::xb), each weight as the kernel reads it; products of
// two bf16 are exact in f32 and sums are f32. The amx level runs it on the
// tiles (TDPBF16PS), converting the weight panel by panel into scratch, so no
// bf16 copy of the weight outlives the call.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/isa.h"

namespace qilin::cpu {

struct GemmArgs {
  const float* x = nullptr;  // m rows of k floats, row stride ldx (elements)
  const void* w = nullptr;   // rows of k weights (the kernel's dtype), row stride w_stride (bytes)
  float* y = nullptr;        // m rows, row stride ldy (elements)
  int64_t m = 0, k = 0;
  int64_t ldx = 0, ldy = 0, w_stride = 0;
  void* scratch = nullptr;  // GemmKernel::scratch_bytes, 64-byte aligned, this thread's alone
  // For gemm_bf16 kernels only (x is not read): x rounded to bf16, rows padded with
  // zeros to a multiple of kBf16RowPad and each row with zeros to ldxb elements, a
  // multiple of kBf16KPad at least k.
  const uint16_t* xb = nullptr;
  int64_t ldxb = 0;
};
inline constexpr int64_t kBf16RowPad = 16;  // an AMX tile's rows
inline constexpr int64_t kBf16KPad = 32;    // an AMX tile's bf16 columns

using GemmFn = void (*)(const GemmArgs& args, int64_t n_begin, int64_t n_end) noexcept;

struct GemmKernel {
  GemmFn fn = nullptr;
  const char* name = "";     // for the verbose plan, e.g. "avx512 gemv f32"
  size_t scratch_bytes = 0;  // per thread; 0 for kernels that need none (every gemv)
  // Granularity of the N split across threads, in rows: a multiple of the
  // kernel's register block so that no thread is left with a ragged tail.
  int64_t n_grain = 1;
};

// Index of a weight dtype in the tables below.
enum class GemmWeight : uint8_t { f32, f16, bf16 };
inline constexpr int kGemmWeightCount = 3;

struct GemmTable {
  GemmKernel gemv[kGemmWeightCount];
  GemmKernel gemm[kGemmWeightCount];
  // Operands rounded to bf16, f32 sums (see above). Every level has them (ref: scalar,
  // the oracle); the simd path takes them only where gemm_bf16_fast is set.
  GemmKernel gemm_bf16[kGemmWeightCount];
  bool gemm_bf16_fast = false;  // gemm_bf16 beats every other path at many rows (the amx level)
  // The largest m for which gemv is the faster kernel (measured; see docs/performance.md).
  int64_t gemv_max_m = 1;
  // x -> bf16 with round-to-nearest-even (activations for oneDNN's bf16 matmul).
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
void fill_gemm_packed_avx512(GemmTable& t) noexcept;  // the avx512 level's packed GEMM (own file)
void fill_gemm_avx512_bf16(GemmTable& t) noexcept;
void fill_gemm_amx(GemmTable& t) noexcept;

}  // namespace qilin::cpu
