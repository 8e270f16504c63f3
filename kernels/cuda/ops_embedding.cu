// Embedding lookup and KV-cache stores (launch.h): the two ops that convert between
// the storage formats and f32, both bit-identical to the CPU reference (element
// loaders and q8_0 rounding from quant_math.h, shared with the host tests).
#include <math.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace qilin::cuda::launch {
namespace {

constexpr int kThreads = 256;

// One block per token (grid-stride), threads over the row's elements.
template <DType F>
__global__ void embedding_kernel(const uint8_t* table, int64_t row_stride, int64_t vocab, int64_t dim,
                                 const int32_t* ids, int64_t n, float* out, int64_t ldo) {
  for (int64_t t = blockIdx.x; t < n; t += gridDim.x) {
    const int64_t id = ids[t];
    float* o = out + t * ldo;
    if (id < 0 || id >= vocab) {  // the checked API refuses this for host ids
      for (int64_t e = threadIdx.x; e < dim; e += blockDim.x) o[e] = NAN;
      continue;
    }
    const uint8_t* row = table + id * row_stride;
    for (int64_t e = threadIdx.x; e < dim; e += blockDim.x) o[e] = load_element<F>(row, e);
  }
}

template <DType F>
void run_embedding(const void* table, int64_t row_stride, int64_t vocab, int64_t dim, const int32_t* ids, int64_t n,
                   float* out, int64_t ldo, cudaStream_t stream) {
  embedding_kernel<F><<<grid_x(n), kThreads, 0, stream>>>(static_cast<const uint8_t*>(table), row_stride, vocab, dim,
                                                          ids, n, out, ldo);
}

// f32 and f16 caches: one thread per element; r = (t * heads + h) * head_dim + d in src order.
template <bool kHalf>
__global__ void kv_store_kernel(const float* src, int64_t n, int64_t heads, int64_t head_dim, void* dst,
                                int64_t max_pos, int64_t pos0) {
  const int64_t total = n * heads * head_dim;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < total;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t d = r % head_dim, th = r / head_dim, h = th % heads, t = th / heads;
    const int64_t at = (h * max_pos + pos0 + t) * head_dim + d;
    if constexpr (kHalf) {
      static_cast<uint16_t*>(dst)[at] = float_to_half_bits(src[r]);
    } else {
      static_cast<float*>(dst)[at] = src[r];
    }
  }
}

// q8_0 cache: one warp per block of 32 (lane = element), as the CPU's f32_row_to_q8_0.
__global__ void kv_store_q8_0_kernel(const float* src, int64_t n, int64_t heads, int64_t head_dim, BlockQ8_0* dst,
                                     int64_t max_pos, int64_t pos0) {
  const int64_t blocks_per_row = head_dim / kQK;
  const int64_t total = n * heads * blocks_per_row;
  const int lane = threadIdx.x % 32;
  const int64_t warps_per_grid = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t wb = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; wb < total;
       wb += warps_per_grid) {
    const int64_t b = wb % blocks_per_row, th = wb / blocks_per_row, h = th % heads, t = th / heads;
    const float x = src[th * head_dim + b * kQK + lane];
    const float amax = warp_max(fabsf(x));
    const uint16_t d16 = kv_q8_0_scale_bits(amax);
    const float d = half_bits_to_float(d16);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_0& out = dst[(h * max_pos + pos0 + t) * blocks_per_row + b];
    out.qs[lane] = kv_q8_0_element(x, id);
    if (lane == 0) out.d = d16;
  }
}

}  // namespace

void embedding(DType dtype, const void* table, int64_t row_stride, int64_t vocab, int64_t dim, const int32_t* ids,
               int64_t n, float* out, int64_t ldo, cudaStream_t stream) noexcept {
  if (n == 0) return;
  switch (dtype) {
    case DType::f32:
      return run_embedding<DType::f32>(table, row_stride, vocab, dim, ids, n, out, ldo, stream);
    case DType::f16:
      return run_embedding<DType::f16>(table, row_stride, vocab, dim, ids, n, out, ldo, stream);
    case DType::bf16:
      return run_embedding<DType::bf16>(table, row_stride, vocab, dim, ids, n, out, ldo, stream);
    case DType::q8_0:
      return run_embedding<DType::q8_0>(table, row_stride, vocab, dim, ids, n, out, ldo, stream);
    case DType::q4_0:
      return run_embedding<DType::q4_0>(table, row_stride, vocab, dim, ids, n, out, ldo, stream);
    case DType::q4_1:
      return run_embedding<DType::q4_1>(table, row_stride, vocab, dim, ids, n, out, ldo, stream);
    case DType::q4_k:
      return run_embedding<DType::q4_k>(table, row_stride, vocab, dim, ids, n, out, ldo, stream);
    case DType::q6_k:
      return run_embedding<DType::q6_k>(table, row_stride, vocab, dim, ids, n, out, ldo, stream);
    default:
      return;  // refused by the checked API
  }
}

void kv_store(DType dtype, const float* src, int64_t n, int64_t heads, int64_t head_dim, void* dst, int64_t max_pos,
              int64_t pos0, cudaStream_t stream) noexcept {
  const int64_t total = n * heads * head_dim;
  if (total == 0) return;
  const unsigned grid = grid_x(total, kThreads) > 65536 ? 65536 : grid_x(total, kThreads);
  if (dtype == DType::q8_0) {
    kv_store_q8_0_kernel<<<grid, kThreads, 0, stream>>>(src, n, heads, head_dim, static_cast<BlockQ8_0*>(dst), max_pos,
                                                        pos0);
  } else if (dtype == DType::f16) {
    kv_store_kernel<true><<<grid, kThreads, 0, stream>>>(src, n, heads, head_dim, dst, max_pos, pos0);
  } else {
    kv_store_kernel<false><<<grid, kThreads, 0, stream>>>(src, n, heads, head_dim, dst, max_pos, pos0);
  }
}

}  // namespace qilin::cuda::launch
