// How the CUDA attention kernel splits its work ("flash-decoding") and merges the
// pieces: plain C++ shared with the host (hd.h), so the decomposition is tested on
// any machine by replaying it (tests/test_cuda_quant_math.cpp).
//
// A thread block handles one query, a slice of at most max_heads query heads that
// share one KV head (GQA: each K/V row is read once for all of them), and one chunk
// of the context. Decode has one query and few KV heads, so the context is split
// until there are about two blocks per SM; each block leaves an unnormalised partial
// (running max m, sum of exponentials l, weighted sum of V) and a second kernel
// combines the chunks. Prefill has parallelism in its queries and splits less, which
// also bounds the partials' scratch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/hd.h"

namespace qilin::cuda {

inline constexpr int kAttentionWarps = 4;          // warps per block, each streaming its own keys
inline constexpr int64_t kAttentionMinChunk = 32;  // keys per split at least (a few per warp)
inline constexpr int kAttentionMaxSplits = 256;
inline constexpr int64_t kAttentionMaxPartials = int64_t{1} << 17;  // (query, head, split) triples per call
inline constexpr int64_t kAttentionMaxHeadDim = 512;                // as the CPU kernels (cpu::kAttentionMaxHeadDim)
inline constexpr size_t kAttentionMaxSharedBytes = 48 * 1024;       // without opting in to more

struct AttentionPlan {
  int dims_per_lane = 0;    // head_dim / 32 rounded up to 2, 4, 8 or 16: a lane's contiguous dims
  int max_heads = 0;        // query heads a block may hold in registers (8, or 4 for 16 dims per lane)
  int heads_per_block = 0;  // query heads of one KV group per block (balanced over the slices)
  int n_slices = 0;         // blocks per KV group and query
  int n_splits = 0;         // chunks of the context
  int64_t chunk = 0;        // keys per chunk
  int64_t partials = 0;     // n_q * n_heads * n_splits
};

inline AttentionPlan plan_attention(int64_t n_q, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, int64_t pos0,
                                    int sm_count) {
  AttentionPlan p;
  p.dims_per_lane = head_dim <= 64 ? 2 : head_dim <= 128 ? 4 : head_dim <= 256 ? 8 : 16;
  p.max_heads = p.dims_per_lane <= 8 ? 8 : 4;
  const int64_t group = n_heads / n_kv_heads;
  p.n_slices = static_cast<int>((group + p.max_heads - 1) / p.max_heads);
  p.heads_per_block = static_cast<int>((group + p.n_slices - 1) / p.n_slices);
  const int64_t max_ctx = pos0 + n_q;  // the last query's context
  const int64_t blocks_per_split = n_q * n_kv_heads * p.n_slices;
  const int64_t want = (2 * static_cast<int64_t>(std::max(sm_count, 1)) + blocks_per_split - 1) / blocks_per_split;
  const int64_t by_length = (max_ctx + kAttentionMinChunk - 1) / kAttentionMinChunk;
  const int64_t by_scratch = std::max<int64_t>(1, kAttentionMaxPartials / std::max<int64_t>(1, n_q * n_heads));
  const int64_t splits = std::max<int64_t>(1, std::min({want, by_length, by_scratch, int64_t{kAttentionMaxSplits}}));
  p.chunk = (max_ctx + splits - 1) / splits;
  p.n_splits = static_cast<int>((max_ctx + p.chunk - 1) / p.chunk);  // no empty trailing split
  p.partials = n_q * n_heads * p.n_splits;
  return p;
}

// Dynamic shared memory of the split kernel: q of max_heads heads, then each warp's
// state per head (head_dim accumulators, m, l).
inline size_t attention_shared_bytes(const AttentionPlan& p, int64_t head_dim) {
  const auto g = static_cast<size_t>(p.max_heads), hd = static_cast<size_t>(head_dim);
  return sizeof(float) * (g * hd + kAttentionWarps * g * (hd + 2));
}

// Keys [*j0, *j1) of `split` for a query that sees n_ctx keys (empty when *j1 <= *j0).
QILIN_HD void split_keys(const AttentionPlan& p, int64_t split, int64_t n_ctx, int64_t* j0, int64_t* j1) {
  *j0 = split * p.chunk;
  *j1 = *j0 + p.chunk < n_ctx ? *j0 + p.chunk : n_ctx;
}

// Query heads [*h0, *h0 + *nh) of head slice `slice` of KV head `kv` (*nh <= 0: none).
QILIN_HD void slice_heads(const AttentionPlan& p, int64_t group, int64_t kv, int64_t slice, int64_t* h0, int* nh) {
  *h0 = kv * group + slice * p.heads_per_block;
  const int64_t left = (kv + 1) * group - *h0;
  *nh = static_cast<int>(left < p.heads_per_block ? left : p.heads_per_block);
}

// One key of the online softmax: with running max m and the key's score s, the new
// max, the factor for the old sum and accumulator, and the key's weight.
struct OnlineStep {
  float m, correction, p;
};
QILIN_HD OnlineStep online_step(float m, float s) {
  const float m_new = fmaxf(m, s);
  return {m_new, expf(m - m_new), expf(s - m_new)};  // correction 0 on the first key (m = -inf)
}

// Factor that brings a partial with max m_part to the common max m_max (0 for a partial that saw no key).
QILIN_HD float rescale_weight(float m_part, float m_max) { return m_part == -INFINITY ? 0.0f : expf(m_part - m_max); }

}  // namespace qilin::cuda
