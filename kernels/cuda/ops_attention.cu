// Attention over a KV cache, split over the context ("flash-decoding"; launch.h,
// attention_plan.h).
//
// Kernel 1, grid (split, KV head x head slice, query): the block's warps take the
// keys of its chunk in turn; for each key a warp loads the K and V rows once (each
// lane a contiguous run of dims_per_lane elements), computes the scores of all the
// block's query heads (one warp-wide sum each) and updates their online softmax
// (running max m, sum of exponentials l, weighted sum of V). The warps' states are
// merged in shared memory and written as the split's partial (m, l, unnormalised acc).
// Kernel 2, one block per (query, head): rescales the splits' partials to the common
// maximum and divides by the total sum.
//
// f32 arithmetic with expf, the scores and sums rounded differently from the CPU's
// double-precision reference but within a few ulp of it relative to the output's scale.
// Causal: query i sits at position pos0 + i and sees keys 0 .. pos0 + i.
#include <math.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace qilin::cuda::launch {
namespace {

constexpr int kThreads = kAttentionWarps * 32;

// Element d of cache row `row` (rows of head_dim elements; q8_0 rows are head_dim/32 blocks).
__device__ __forceinline__ const float* kv_row(const float* base, int64_t row, int64_t hd) { return base + row * hd; }
__device__ __forceinline__ const uint16_t* kv_row(const uint16_t* base, int64_t row, int64_t hd) {
  return base + row * hd;
}
__device__ __forceinline__ const BlockQ8_0* kv_row(const BlockQ8_0* base, int64_t row, int64_t hd) {
  return base + row * (hd / kQK);
}
__device__ __forceinline__ float kv_load(const float* row, int64_t d) { return row[d]; }
__device__ __forceinline__ float kv_load(const uint16_t* row, int64_t d) { return half_bits_to_float(row[d]); }
__device__ __forceinline__ float kv_load(const BlockQ8_0* row, int64_t d) {
  const BlockQ8_0& b = row[d / kQK];
  return half_bits_to_float(b.d) * static_cast<float>(b.qs[d % kQK]);  // as the CPU's load(): one f32 product
}

template <class KV, int D, int G>
__global__ void __launch_bounds__(kThreads) attention_split_kernel(AttentionArgs a) {
  extern __shared__ float smem[];
  const int64_t hd = a.head_dim;
  float* q_s = smem;           // [G][hd]
  float* red = smem + G * hd;  // [warps][G][hd + 2]: acc, then m, l
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  const int split = blockIdx.x;
  const int64_t kv = blockIdx.y / a.plan.n_slices, slice = blockIdx.y % a.plan.n_slices;
  const int64_t i = blockIdx.z;
  int64_t h0, j0, j1;
  int nh;
  slice_heads(a.plan, a.n_heads / a.n_kv_heads, kv, slice, &h0, &nh);
  if (nh <= 0) return;  // uniform over the block
  split_keys(a.plan, split, a.pos0 + i + 1, &j0, &j1);

  const float* q = a.q + (i * a.n_heads + h0) * hd;  // the nh heads are contiguous
  for (int64_t idx = threadIdx.x; idx < nh * hd; idx += blockDim.x) q_s[idx] = q[idx];
  __syncthreads();

  float qr[G][D], acc[G][D], m[G], l[G];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    m[h] = -INFINITY;
    l[h] = 0.0f;
#pragma unroll
    for (int t = 0; t < D; ++t) {
      const int64_t d = lane * D + t;
      qr[h][t] = h < nh && d < hd ? q_s[h * hd + d] : 0.0f;
      acc[h][t] = 0.0f;
    }
  }

  const KV* k = static_cast<const KV*>(a.k);
  const KV* v = static_cast<const KV*>(a.v);
  const int64_t row0 = kv * a.max_pos;
  for (int64_t j = j0 + warp; j < j1; j += kAttentionWarps) {
    const KV* kr = kv_row(k, row0 + j, hd);
    const KV* vr = kv_row(v, row0 + j, hd);
    float kreg[D], vreg[D];
#pragma unroll
    for (int t = 0; t < D; ++t) {
      const int64_t d = lane * D + t;
      kreg[t] = d < hd ? kv_load(kr, d) : 0.0f;
      vreg[t] = d < hd ? kv_load(vr, d) : 0.0f;
    }
#pragma unroll
    for (int h = 0; h < G; ++h) {
      if (h < nh) {  // uniform over the warp: the shuffles below see every lane
        float part = 0.0f;
#pragma unroll
        for (int t = 0; t < D; ++t) part += qr[h][t] * kreg[t];
        const OnlineStep step = online_step(m[h], warp_sum(part) * a.scale);
        l[h] = l[h] * step.correction + step.p;
#pragma unroll
        for (int t = 0; t < D; ++t) acc[h][t] = acc[h][t] * step.correction + step.p * vreg[t];
        m[h] = step.m;
      }
    }
  }

  // Merge the warps: each leaves its state in shared memory, then the block's
  // threads combine them per (head, dim) into the split's partial.
#pragma unroll
  for (int h = 0; h < G; ++h) {
    if (h < nh) {
      float* r = red + (warp * G + h) * (hd + 2);
#pragma unroll
      for (int t = 0; t < D; ++t) {
        const int64_t d = lane * D + t;
        if (d < hd) r[d] = acc[h][t];
      }
      if (lane == 0) {
        r[hd] = m[h];
        r[hd + 1] = l[h];
      }
    }
  }
  __syncthreads();
  for (int64_t idx = threadIdx.x; idx < nh * hd; idx += blockDim.x) {
    const int h = static_cast<int>(idx / hd);
    const int64_t d = idx % hd;
    float m_max = -INFINITY;
    for (int w = 0; w < kAttentionWarps; ++w) m_max = fmaxf(m_max, red[(w * G + h) * (hd + 2) + hd]);
    float sum_acc = 0.0f, sum_l = 0.0f;
    if (m_max != -INFINITY) {
      for (int w = 0; w < kAttentionWarps; ++w) {
        const float* r = red + (w * G + h) * (hd + 2);
        const float e = rescale_weight(r[hd], m_max);  // 0 for a warp that saw no key
        sum_acc += r[d] * e;
        sum_l += r[hd + 1] * e;
      }
    }
    const int64_t p = (i * a.n_heads + h0 + h) * a.plan.n_splits + split;
    a.partial_acc[p * hd + d] = sum_acc;
    if (d == 0) {
      a.partial_ml[2 * p] = m_max;
      a.partial_ml[2 * p + 1] = sum_l;
    }
  }
}

// One block per (query, head): out = Σ_s acc_s·e^(m_s - M) / Σ_s l_s·e^(m_s - M).
__global__ void attention_combine_kernel(const float* partial_acc, const float* partial_ml, float* out, int64_t hd,
                                         int n_splits) {
  __shared__ float weight[kAttentionMaxSplits];
  __shared__ float scratch[32];
  const int64_t qh = blockIdx.x;  // query * n_heads + head
  const float* ml = partial_ml + 2 * qh * n_splits;
  float m_max = -INFINITY;
  for (int s = threadIdx.x; s < n_splits; s += blockDim.x) m_max = fmaxf(m_max, ml[2 * s]);
  m_max = block_max(m_max, scratch);  // finite: split 0 holds at least key 0
  float sum_l = 0.0f;
  for (int s = threadIdx.x; s < n_splits; s += blockDim.x) {
    const float e = rescale_weight(ml[2 * s], m_max);
    weight[s] = e;
    sum_l += ml[2 * s + 1] * e;
  }
  const float inv_l = 1.0f / block_sum(sum_l, scratch);  // block_sum's barriers also publish weight[]
  const float* acc = partial_acc + qh * n_splits * hd;
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.0f;
    for (int s = 0; s < n_splits; ++s) o += acc[s * hd + d] * weight[s];
    out[qh * hd + d] = o * inv_l;
  }
}

template <class KV, int D, int G>
void run_split(const AttentionArgs& a, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(a.plan.n_splits), static_cast<unsigned>(a.n_kv_heads * a.plan.n_slices),
                  static_cast<unsigned>(a.n_q));
  attention_split_kernel<KV, D, G><<<grid, kThreads, attention_shared_bytes(a.plan, a.head_dim), stream>>>(a);
}

template <class KV>
void run_kv(const AttentionArgs& a, cudaStream_t stream) {
  switch (a.plan.dims_per_lane) {
    case 2:
      return run_split<KV, 2, 8>(a, stream);
    case 4:
      return run_split<KV, 4, 8>(a, stream);
    case 8:
      return run_split<KV, 8, 8>(a, stream);
    default:
      return run_split<KV, 16, 4>(a, stream);
  }
}

}  // namespace

void attention(const AttentionArgs& a, cudaStream_t stream) noexcept {
  if (a.n_q == 0) return;
  switch (a.kv_type) {
    case DType::f32:
      run_kv<float>(a, stream);
      break;
    case DType::f16:
      run_kv<uint16_t>(a, stream);
      break;
    default:
      run_kv<BlockQ8_0>(a, stream);
      break;
  }
  attention_combine_kernel<<<static_cast<unsigned>(a.n_q * a.n_heads), 128, 0, stream>>>(
      a.partial_acc, a.partial_ml, a.out, a.head_dim, a.plan.n_splits);
}

}  // namespace qilin::cuda::launch
