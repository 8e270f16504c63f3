// Row reductions: RMSNorm, LayerNorm, softmax (launch.h). One block per row
// (grid-stride over rows), f32 sums reduced as a tree, so a row of n elements
// carries a relative error of about log2(n)·2^-24 on top of the final roundings.
#include <math.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace qilin::cuda::launch {
namespace {

constexpr int kThreads = 256;

__global__ void rmsnorm_kernel(const float* x, int64_t ldx, const float* w, float eps, float* y, int64_t ldy,
                               int64_t rows, int64_t cols) {
  __shared__ float scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * ldx;
    float sum_sq = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum_sq += xr[c] * xr[c];
    sum_sq = block_sum(sum_sq, scratch);
    const float inv_rms = 1.0f / sqrtf(sum_sq / static_cast<float>(cols) + eps);
    float* yr = y + r * ldy;  // may be xr: each element is read before it is written, by the same thread
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = xr[c] * inv_rms * w[c];
  }
}

// Two passes (mean, then the squared deviations), as the CPU ref: no cancellation
// for rows with a large mean. The mean is summed as an offset from the row's first
// element, so a row of values near 1000 does not carry the f32 rounding of sums of
// 1000s (the CPU ref sums in double).
__global__ void layernorm_kernel(const float* x, int64_t ldx, const float* w, const float* b, float eps, float* y,
                                 int64_t ldy, int64_t rows, int64_t cols) {
  __shared__ float scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * ldx;
    const float shift = xr[0];
    float sum = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += xr[c] - shift;
    const float mean = shift + block_sum(sum, scratch) / static_cast<float>(cols);
    float sum_sq = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum_sq += (xr[c] - mean) * (xr[c] - mean);
    const float inv_std = 1.0f / sqrtf(block_sum(sum_sq, scratch) / static_cast<float>(cols) + eps);
    float* yr = y + r * ldy;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float v = (xr[c] - mean) * inv_std * w[c];
      yr[c] = b != nullptr ? v + b[c] : v;
    }
  }
}

// Max-subtracted; the exponentials are recomputed in the last pass rather than
// stored, so y may alias x (each element is read, then written, by one thread).
__global__ void softmax_kernel(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols) {
  __shared__ float scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * ldx;
    float max = -INFINITY;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) max = fmaxf(max, xr[c]);
    max = block_max(max, scratch);
    float sum = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += expf(xr[c] - max);
    const float inv_sum = 1.0f / block_sum(sum, scratch);
    float* yr = y + r * ldy;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = expf(xr[c] - max) * inv_sum;
  }
}

}  // namespace

void rmsnorm(const float* x, int64_t ldx, const float* w, float eps, float* y, int64_t ldy, int64_t rows, int64_t cols,
             cudaStream_t stream) noexcept {
  if (rows == 0) return;
  rmsnorm_kernel<<<grid_x(rows), kThreads, 0, stream>>>(x, ldx, w, eps, y, ldy, rows, cols);
}

void layernorm(const float* x, int64_t ldx, const float* w, const float* b, float eps, float* y, int64_t ldy,
               int64_t rows, int64_t cols, cudaStream_t stream) noexcept {
  if (rows == 0) return;
  layernorm_kernel<<<grid_x(rows), kThreads, 0, stream>>>(x, ldx, w, b, eps, y, ldy, rows, cols);
}

void softmax(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols,
             cudaStream_t stream) noexcept {
  if (rows == 0) return;
  softmax_kernel<<<grid_x(rows), kThreads, 0, stream>>>(x, ldx, y, ldy, rows, cols);
}

}  // namespace qilin::cuda::launch
