// Qilin's own matmul kernels for block-quantized weights (Q8_0, Q4_0, Q4_1,
// Q4_K, Q6_K), one table per ISA level.
//
// y[i, n] = sum_k x[i, k] · w[n, k] is computed from integers: the activations
// x are quantized once per call to 8-bit blocks of 32 (QuantizedX: int8 values
// with one f32 scale per block, as ggml's Q8_0 but with an f32 scale), each
// 32-element block of a weight row is multiplied with the matching block of x
// as an exact integer dot product, and only the per-block sums are scaled and
// added up in f32. For each format the weight element is w = A·(q - offset) + B
// with q an unsigned integer and A, B per-block floats:
//   q8_0  A = d, q = stored int8 + 128, offset 128          (the kernels' u8 view of an int8)
//   q4_0  A = d, offset 8
//   q4_1  A = d, B = m
//   q4_k  A = d·sc, B = -dmin·m    (6-bit sc, m per sub-block of 32; d, dmin per 256)
//   q6_k  A = d·sc, offset 32      (8-bit signed sc per sub-block of 16)
// so a block contributes A·dx·(Σ q·xq - offset·Σ xq) + B·dx·Σ xq, where the
// offset term is a per-x-block integer (QuantizedX::corr) and dx·Σ xq a per-x-block
// float (QuantizedX::ds), both computed once per call.
//
// The scalar ref kernels read the stored rows as they are (GGUF block layout)
// and compute Σ (q - offset)·xq directly: they are the oracle of the integer parts.
// The SIMD kernels read the weight repacked once (kernels/cpu/qgemm_pack.h) into
// groups of 16 rows interleaved so that one vector holds 4 consecutive elements
// of each of 16 rows (AVX2: two vectors of 8 rows): one vpdpbusd / vpmaddubsw per
// 4 elements of x broadcast, no horizontal sums, and the 16 rows' scales in one load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "kernels/cpu/isa.h"

namespace qilin::cpu {

enum class QFormat : uint8_t { q8_0, q4_0, q4_1, q4_k, q6_k };
inline constexpr int kQFormatCount = 5;

// Elements per activation block; every format's (sub-)blocks align with them.
inline constexpr int kXBlock = 32;

// Activations quantized for one format: m rows of k values (k a multiple of 32).
//   q[i*k + e]        int8 in [-127, 127], x ≈ d·q
//   d[i*k/32 + b]     f32 scale of block b: amax/127
//   ds[i*k/32 + b]    d · (sum of the block's q), f32
//   corr[i*k/16 + j]  -offset · (sum of q over a block of 32, at j = b; for q6_k of 16, at j = sub-block)
struct QuantizedX {
  const int8_t* q = nullptr;
  const float* d = nullptr;
  const float* ds = nullptr;
  const int32_t* corr = nullptr;
  // x rounded to bf16 (for kernels with bf16_x; null otherwise), laid out as the AMX
  // A tiles they load: rows in tiles of 16 (the last padded with zero rows), each tile
  // k/32 blocks of 16 rows × 32 values, 1 KiB contiguous (see xb_tiled_offset).
  const uint16_t* xb = nullptr;
  int64_t m = 0, k = 0;
};

struct QGemmArgs {
  QuantizedX x;
  const void* w = nullptr;  // ref: the stored rows (row stride w_stride bytes); SIMD: the packed groups
  int64_t w_stride = 0;
  int64_t n = 0;       // rows of the weight (the packed form pads the last group of 16)
  float* y = nullptr;  // m rows, row stride ldy (elements)
  int64_t ldy = 0;
  void* scratch = nullptr;  // QGemmKernel::scratch_bytes(k), 64-byte aligned, this thread's alone
};

// Computes y[i, n] for all i < m and n in [n_begin, n_end); n_begin is a multiple of n_grain.
using QGemmFn = void (*)(const QGemmArgs& args, int64_t n_begin, int64_t n_end) noexcept;

struct QGemmKernel {
  QGemmFn fn = nullptr;
  const char* name = "";  // for the verbose plan, e.g. "avx512_vnni q4_0 (vpdpbusd)"
  int64_t n_grain = 1;    // rows per unit of the thread split (16: one packed group)
  bool packed = false;    // reads the packed form (qgemm_pack.h) instead of the stored rows
  bool bf16_x = false;    // reads QuantizedX::xb (x rounded to bf16), not the int8 form
  // Per-thread scratch: scratch_per_k · k + scratch_fixed bytes (0: none).
  size_t scratch_per_k = 0, scratch_fixed = 0;
  size_t scratch_bytes(int64_t k) const noexcept { return scratch_per_k * static_cast<size_t>(k) + scratch_fixed; }
};

// Rows of quantized x are stored rounded up to a multiple of this (the extra rows
// zero), so kernels working on tiles of 16 rows need no tail case.
inline constexpr int64_t kXRowPadding = 16;

// Where element e of row r of x sits in QuantizedX::xb (k a multiple of 32).
constexpr int64_t xb_tiled_offset(int64_t r, int64_t e, int64_t k) {
  return ((r / 16) * (k / 32) + e / 32) * 512 + (r % 16) * 32 + e % 32;
}

// Quantizes m rows of x (row stride ldx floats, k a multiple of 32) to out.q/out.d/out.ds,
// and the plain block sums to sums16 (sum of q over each 16 elements, m*k/16 entries).
// Bit-identical on every level: round to nearest even, the same f32 operations.
using QuantizeXFn = void (*)(const float* x, int64_t ldx, int64_t m, int64_t k, int8_t* q, float* d, float* ds,
                             int32_t* sums16) noexcept;

struct QGemmTable {
  QGemmKernel kernel[kQFormatCount];  // any m
  QGemmKernel large[kQFormatCount];   // m >= large_min_m (where a level has a kernel for many rows)
  int64_t large_min_m[kQFormatCount] = {kNever, kNever, kNever, kNever, kNever};
  QuantizeXFn quantize_x = nullptr;

  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  const QGemmKernel& for_rows(QFormat f, int64_t m) const noexcept {
    const int i = static_cast<int>(f);
    return m >= large_min_m[i] ? large[i] : kernel[i];
  }
};

const QGemmTable& qgemm_table(Isa isa) noexcept;

// Fill functions, one per level (kernels/cpu/<level>/qgemm_*.cpp).
void fill_qgemm_ref(QGemmTable& t) noexcept;
void fill_qgemm_avx2(QGemmTable& t) noexcept;
void fill_qgemm_avx512(QGemmTable& t) noexcept;
void fill_qgemm_avx512_vnni(QGemmTable& t) noexcept;  // the avx512_bf16 level (it includes VNNI)
void fill_qgemm_amx(QGemmTable& t) noexcept;          // many rows on AMX-BF16 tiles, weights dequantized

}  // namespace qilin::cpu
