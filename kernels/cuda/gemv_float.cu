// Decode GEMV for f32, f16 and bf16 weights (launch.h): one warp per weight row,
// f32 products and sums. Where the weight rows and x rows are 16-byte aligned the
// lanes read 16 bytes of weights at a time (8 halves or 4 floats) and the matching
// x as float4; elsewhere (and for the tail of a row) one element per lane and step.

#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace qilin::cuda::launch {
namespace {

constexpr int kRowsPerBlock = 4;
constexpr int kThreads = kRowsPerBlock * 32;

template <DType F>
constexpr int kElementBytes = F == DType::f32 ? 4 : 2;
template <DType F>
constexpr int kPerVector = 16 / kElementBytes<F>;

// The kPerVector weights in 16 bytes, as f32.
template <DType F>
__device__ __forceinline__ void unpack(const uint4& raw, float* out) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (F == DType::f32) {
      out[i] = __uint_as_float(words[i]);
    } else if constexpr (F == DType::f16) {
      out[2 * i] = half_bits_to_float(static_cast<uint16_t>(words[i] & 0xffffu));
      out[2 * i + 1] = half_bits_to_float(static_cast<uint16_t>(words[i] >> 16));
    } else {
      out[2 * i] = __uint_as_float(words[i] << 16);
      out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
  }
}

template <DType F, int M, bool kVector>
__global__ void __launch_bounds__(kThreads) gemv_float_kernel(const uint8_t* w, int64_t w_stride, int64_t n, int64_t k,
                                                              const float* x, int64_t ldx, float* y, int64_t ldy) {
  const int lane = threadIdx.x % 32;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (r >= n) return;  // the whole warp
  const uint8_t* row = w + r * w_stride;
  float acc[M];
#pragma unroll
  for (int i = 0; i < M; ++i) acc[i] = 0.0f;
  int64_t tail = 0;
  if constexpr (kVector) {
    constexpr int V = kPerVector<F>;
    tail = k / V * V;
    for (int64_t e = static_cast<int64_t>(lane) * V; e < tail; e += 32 * V) {
      float wv[V];
      unpack<F>(*reinterpret_cast<const uint4*>(row + e * kElementBytes<F>), wv);
#pragma unroll
      for (int i = 0; i < M; ++i) {
        const float4* xv = reinterpret_cast<const float4*>(x + i * ldx + e);
#pragma unroll
        for (int c = 0; c < V / 4; ++c) {
          const float4 xc = xv[c];
          acc[i] += wv[4 * c] * xc.x + wv[4 * c + 1] * xc.y + wv[4 * c + 2] * xc.z + wv[4 * c + 3] * xc.w;
        }
      }
    }
  }
  for (int64_t e = tail + lane; e < k; e += 32) {
    const float wv = load_element<F>(row, e);
#pragma unroll
    for (int i = 0; i < M; ++i) acc[i] += wv * x[i * ldx + e];
  }
#pragma unroll
  for (int i = 0; i < M; ++i) acc[i] = warp_sum(acc[i]);
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < M; ++i) y[i * ldy + r] = acc[i];
  }
}

template <DType F, bool kVector>
void run_rows(const void* w, int64_t w_stride, int64_t n, int64_t k, const float* x, int64_t ldx, int64_t m, float* y,
              int64_t ldy, cudaStream_t stream) {
  const unsigned grid = grid_x(n, kRowsPerBlock);
  const auto* wb = static_cast<const uint8_t*>(w);
  switch (m) {
#define QILIN_GEMV_CASE(M)                                                                               \
  case M:                                                                                                \
    gemv_float_kernel<F, M, kVector><<<grid, kThreads, 0, stream>>>(wb, w_stride, n, k, x, ldx, y, ldy); \
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
      return;
  }
}

template <DType F>
void run_format(const void* w, int64_t w_stride, int64_t n, int64_t k, const float* x, int64_t ldx, int64_t m, float* y,
                int64_t ldy, cudaStream_t stream) {
  const bool aligned = reinterpret_cast<uintptr_t>(w) % 16 == 0 && w_stride % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(x) % 16 == 0 && ldx % 4 == 0;
  if (aligned) {
    run_rows<F, true>(w, w_stride, n, k, x, ldx, m, y, ldy, stream);
  } else {
    run_rows<F, false>(w, w_stride, n, k, x, ldx, m, y, ldy, stream);
  }
}

}  // namespace

void gemv_float(DType w_type, const void* w, int64_t w_stride, int64_t n, int64_t k, const float* x, int64_t ldx,
                int64_t m, float* y, int64_t ldy, cudaStream_t stream) noexcept {
  if (m == 0 || n == 0) return;
  switch (w_type) {
    case DType::f32:
      return run_format<DType::f32>(w, w_stride, n, k, x, ldx, m, y, ldy, stream);
    case DType::f16:
      return run_format<DType::f16>(w, w_stride, n, k, x, ldx, m, y, ldy, stream);
    case DType::bf16:
      return run_format<DType::bf16>(w, w_stride, n, k, x, ldx, m, y, ldy, stream);
    default:
      return;  // refused by the checked API
  }
}

}  // namespace qilin::cuda::launch
