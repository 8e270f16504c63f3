// Decode GEMV for block-quantized weights (launch.h): x quantized once per call to
// 8-bit blocks of 32 (quant_math.h's XBlock, as the CPU's quantize_x_ref does it),
// then one warp per weight row, each lane taking every 32nd unit of 32 elements:
// the unit's 32 weights are unpacked to signed bytes and multiplied with the x
// block by 8 dp4a, and the f32 block sums are reduced over the warp at the end.
// The integer dots are exact; the f32 sum differs from the CPU ref's double sum by
// about log2(K/32)·2^-24 relative to Σ|w·x|.
//
// Every lane reads whole units (18 to 34 bytes, 2-byte loads), so a warp covers 32
// consecutive units of a row per step. Simple and correct; a GPU session tuning for
// bandwidth would split units over lanes for wider coalesced loads (llama.cpp's mmvq).
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace qilin::cuda::launch {
namespace {

constexpr int kRowsPerBlock = 4;  // one warp per row
constexpr int kThreads = kRowsPerBlock * 32;

// One warp per block of 32 x values: lane e quantizes element e.
__global__ void quantize_x_kernel(const float* x, int64_t ldx, int64_t m, int64_t k, XBlock* out) {
  const int64_t nb = k / kQK, total = m * nb;
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t wb = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; wb < total; wb += warps) {
    const int64_t i = wb / nb, b = wb % nb;
    const float v = x[i * ldx + b * kQK + lane];
    const float scale = x_block_scale(warp_max(fabsf(v)));
    const int32_t q = quantize_x_element(v, x_block_inverse(scale));
    const int32_t sum = warp_sum(q);
    // Gather the bytes of lanes 4w .. 4w+3 into word w (lane 4w's byte lowest).
    uint32_t word = (static_cast<uint32_t>(q) & 0xffu) << (8 * (lane % 4));
    word |= __shfl_xor_sync(kFullMask, word, 1);
    word |= __shfl_xor_sync(kFullMask, word, 2);
    XBlock& o = out[wb];
    if (lane % 4 == 0) o.q[lane / 4] = static_cast<int32_t>(word);
    if (lane == 0) {
      o.d = scale;
      o.sum = sum;
    }
  }
}

template <DType F, int M>
__global__ void __launch_bounds__(kThreads) gemv_quant_kernel(const uint8_t* w, int64_t w_stride, int64_t n,
                                                              int64_t units, const XBlock* xq, float* y, int64_t ldy) {
  const int lane = threadIdx.x % 32;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (r >= n) return;  // the whole warp: no barrier follows
  const uint8_t* row = w + r * w_stride;
  float acc[M];
#pragma unroll
  for (int i = 0; i < M; ++i) acc[i] = 0.0f;
  for (int64_t u = lane; u < units; u += 32) {
    WeightUnit wu;
    load_unit<F>(row, u, wu);
#pragma unroll
    for (int i = 0; i < M; ++i) acc[i] += unit_dot(wu, xq[i * units + u]);
  }
#pragma unroll
  for (int i = 0; i < M; ++i) acc[i] = warp_sum(acc[i]);
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < M; ++i) y[i * ldy + r] = acc[i];
  }
}

template <DType F>
void run_format(const void* w, int64_t w_stride, int64_t n, int64_t units, const XBlock* xq, int64_t m, float* y,
                int64_t ldy, cudaStream_t stream) {
  const unsigned grid = grid_x(n, kRowsPerBlock);
  const auto* wb = static_cast<const uint8_t*>(w);
  switch (m) {
#define QILIN_GEMV_CASE(M)                                                                      \
  case M:                                                                                       \
    gemv_quant_kernel<F, M><<<grid, kThreads, 0, stream>>>(wb, w_stride, n, units, xq, y, ldy); \
    return;
    QILIN_GEMV_CASE(1)
    QILIN_GEMV_CASE(2)
    QILIN_GEMV_CASE(3)
    QILIN_GEMV_CASE(4)
    QILIN_GEMV_CASE(5)
    QILIN_GEMV_CASE(6)
    QILIN_GEMV_CASE(7)
    QILIN_GEMV_CASE(8)
#undef QILIN_GEMV_CASE
    default:
      return;  // m <= kGemvMaxRows: the caller splits larger batches
  }
}

}  // namespace

void quantize_x(const float* x, int64_t ldx, int64_t m, int64_t k, XBlock* out, cudaStream_t stream) noexcept {
  const int64_t blocks = m * (k / kQK);
  if (blocks == 0) return;
  constexpr int kWarps = 8;
  const unsigned grid = grid_x(blocks, kWarps) > 65536 ? 65536 : grid_x(blocks, kWarps);
  quantize_x_kernel<<<grid, kWarps * 32, 0, stream>>>(x, ldx, m, k, out);
}

void gemv_quant(DType w_type, const void* w, int64_t w_stride, int64_t n, int64_t k, const XBlock* xq, int64_t m,
                float* y, int64_t ldy, cudaStream_t stream) noexcept {
  if (m == 0 || n == 0) return;
  const int64_t units = k / kQK;
  switch (w_type) {
    case DType::q8_0:
      return run_format<DType::q8_0>(w, w_stride, n, units, xq, m, y, ldy, stream);
    case DType::q4_0:
      return run_format<DType::q4_0>(w, w_stride, n, units, xq, m, y, ldy, stream);
    case DType::q4_1:
      return run_format<DType::q4_1>(w, w_stride, n, units, xq, m, y, ldy, stream);
    case DType::q4_k:
      return run_format<DType::q4_k>(w, w_stride, n, units, xq, m, y, ldy, stream);
    case DType::q6_k:
      return run_format<DType::q6_k>(w, w_stride, n, units, xq, m, y, ldy, stream);
    default:
      return;  // refused by the checked API
  }
}

}  // namespace qilin::cuda::launch
