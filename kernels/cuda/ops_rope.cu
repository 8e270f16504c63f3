// Rotary position embedding (launch.h). One thread per rotated pair. The rotation
// is computed as the CPU ref does it, x0·c - x1·s in double rounded once to f32:
// both products of f32 values are exact in double, so whether the compiler fuses
// one into an FMA does not change the result, and GPU and CPU agree bit for bit.
#include <math.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace qilin::cuda::launch {
namespace {

template <bool kNeox>
__global__ void rope_kernel(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t rot_dim,
                            const int32_t* positions, const float* table, int64_t max_pos) {
  const int64_t half = rot_dim / 2;
  const int64_t pairs = n_tokens * n_heads * half;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < pairs;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = p % half, th = p / half;  // th = token * n_heads + head
    const int64_t t = th / n_heads;
    float* v = x + th * head_dim;
    float* a = kNeox ? v + i : v + 2 * i;
    float* b = kNeox ? v + i + half : v + 2 * i + 1;
    const int64_t pos = positions[t];
    if (pos < 0 || pos >= max_pos) {  // the checked API refuses this for host positions
      *a = *b = NAN;
      continue;
    }
    const double c = table[pos * rot_dim + i], s = table[pos * rot_dim + half + i];
    const double x0 = *a, x1 = *b;
    *a = static_cast<float>(x0 * c - x1 * s);
    *b = static_cast<float>(x0 * s + x1 * c);
  }
}

}  // namespace

void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const int32_t* positions,
          const float* table, int64_t max_pos, bool neox, cudaStream_t stream) noexcept {
  const int64_t pairs = n_tokens * n_heads * (rot_dim / 2);
  if (pairs == 0) return;
  constexpr int kThreads = 256;
  const unsigned grid = grid_x(pairs, kThreads) > 65536 ? 65536 : grid_x(pairs, kThreads);
  if (neox) {
    rope_kernel<true>
        <<<grid, kThreads, 0, stream>>>(x, n_tokens, n_heads, head_dim, rot_dim, positions, table, max_pos);
  } else {
    rope_kernel<false>
        <<<grid, kThreads, 0, stream>>>(x, n_tokens, n_heads, head_dim, rot_dim, positions, table, max_pos);
  }
}

}  // namespace qilin::cuda::launch
