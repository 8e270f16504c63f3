// How the CUDA attention kernel splits its work ("flash-decoding"): plain C++, so
// the plan is tested on any machine (tests/test_cuda_quant_math.cpp).
//
// A thread block handles one query, a slice of at most kAttentionMaxHeads query
// heads that share one KV head (GQA: each K/V row is read once for all of them),
// and one chunk of the context. Decode has one query and few KV heads, so the
// context is split until there are about two blocks per SM; each block leaves an
// unnormalised partial (running max, sum of exponentials, weighted sum of V) and a
// second kernel combines the chunks. Prefill has parallelism in its queries and
// splits less, which also bounds the partials' scratch.
#pragma once

#include <algorithm>
#include <cstdint>

namespace qilin::cuda {

inline constexpr int kAttentionWarps = 4;          // warps per block, each streaming its own keys
inline constexpr int64_t kAttentionMinChunk = 32;  // keys per split at least (a few per warp)
inline constexpr int kAttentionMaxSplits = 256;
inline constexpr int64_t kAttentionMaxPartials = int64_t{1} << 17;  // (query, head, split) triples per call
inline constexpr int64_t kAttentionMaxHeadDim = 512;                // as the CPU kernels (cpu::kAttentionMaxHeadDim)

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

}  // namespace qilin::cuda
