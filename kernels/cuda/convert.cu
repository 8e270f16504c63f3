// Conversions feeding cuBLAS (launch.h): weights of any format dequantized (or
// converted) into f16/bf16 rows, activations rounded from f32 to f16/bf16. Both
// round to nearest even; a block-format weight goes through the f32 value of
// quant_math.h's load_element (the CPU dequantizer's, bit for bit) first.
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace qilin::cuda::launch {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint16_t to_half_bits(float v, bool to_bf16) {
  return to_bf16 ? float_to_bf16_bits(v) : float_to_half_bits(v);
}

// Rows over blockIdx.y (grid-stride), elements over x.
template <DType F>
__global__ void weight_to_half_kernel(const uint8_t* w, int64_t w_stride, int64_t n, int64_t k, uint16_t* dst,
                                      bool to_bf16) {
  for (int64_t r = blockIdx.y; r < n; r += gridDim.y) {
    const uint8_t* row = w + r * w_stride;
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < k;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      dst[r * k + e] = to_half_bits(load_element<F>(row, e), to_bf16);
    }
  }
}

__global__ void rows_to_half_kernel(const float* x, int64_t ldx, int64_t m, int64_t k, uint16_t* dst, bool to_bf16) {
  for (int64_t r = blockIdx.y; r < m; r += gridDim.y) {
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < k;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      dst[r * k + e] = to_half_bits(x[r * ldx + e], to_bf16);
    }
  }
}

dim3 grid_for(int64_t rows, int64_t cols) {
  const unsigned gx = grid_x(cols, kThreads);
  return dim3(gx > 256 ? 256 : gx, grid_yz(rows));
}

template <DType F>
void run_weight(const void* w, int64_t w_stride, int64_t n, int64_t k, void* dst, bool to_bf16, cudaStream_t stream) {
  weight_to_half_kernel<F><<<grid_for(n, k), kThreads, 0, stream>>>(static_cast<const uint8_t*>(w), w_stride, n, k,
                                                                    static_cast<uint16_t*>(dst), to_bf16);
}

}  // namespace

void weight_to_half(DType w_type, const void* w, int64_t w_stride, int64_t n, int64_t k, void* dst, bool to_bf16,
                    cudaStream_t stream) noexcept {
  if (n == 0 || k == 0) return;
  switch (w_type) {
    case DType::f32:
      return run_weight<DType::f32>(w, w_stride, n, k, dst, to_bf16, stream);
    case DType::f16:
      return run_weight<DType::f16>(w, w_stride, n, k, dst, to_bf16, stream);
    case DType::bf16:
      return run_weight<DType::bf16>(w, w_stride, n, k, dst, to_bf16, stream);
    case DType::q8_0:
      return run_weight<DType::q8_0>(w, w_stride, n, k, dst, to_bf16, stream);
    case DType::q4_0:
      return run_weight<DType::q4_0>(w, w_stride, n, k, dst, to_bf16, stream);
    case DType::q4_1:
      return run_weight<DType::q4_1>(w, w_stride, n, k, dst, to_bf16, stream);
    case DType::q4_k:
      return run_weight<DType::q4_k>(w, w_stride, n, k, dst, to_bf16, stream);
    case DType::q6_k:
      return run_weight<DType::q6_k>(w, w_stride, n, k, dst, to_bf16, stream);
    default:
      return;
  }
}

void rows_to_half(const float* x, int64_t ldx, int64_t m, int64_t k, void* dst, bool to_bf16,
                  cudaStream_t stream) noexcept {
  if (m == 0 || k == 0) return;
  rows_to_half_kernel<<<grid_for(m, k), kThreads, 0, stream>>>(x, ldx, m, k, static_cast<uint16_t*>(dst), to_bf16);
}

}  // namespace qilin::cuda::launch
