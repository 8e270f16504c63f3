// AVX2 causal attention of a group of queries sharing one KV head
// (OpsTable::attention_f32 / _f16 / _q8_0, kernels/cpu/ops_table.h).
//
// The scheme of the AVX-512 level (kernels/cpu/avx512/ops_attention_avx512.cpp), 8 lanes
// wide: keys stream in chunks through an online softmax (running max and sum per
// query, accumulators rescaled when the max grows). Per chunk:
//   scores  a few keys at a time, each 8-wide slice of a K row is converted to f32 once,
//           in registers, and feeds the G queries' dot products; the G x 8 partial sums
//           of an 8-key block are then reduced together (one hadd tree per query);
//   weights exp(score - max), 8 at a time;
//   values  the group's accumulators for a few 8-wide slices of head_dim stay in
//           registers while the chunk's V rows stream past, converted in registers.
// An f16 or q8_0 cache is read where it lies (no staging copy in f32), so every element
// is loaded and converted once; q8_0 block scales are converted once per chunk.
#include <immintrin.h>

#include <cstdint>

#include "core/half.h"
#include "kernels/cpu/avx2/ops_math_avx2.h"
#include "kernels/cpu/kv_prefetch.h"
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {
namespace {

using namespace avx2;

constexpr int64_t kChunk = 128;  // keys per online-softmax update

// The K or V rows of one chunk of an f32 or f16 cache. load8(row(j), d) reads elements
// [d, d + 8) of row j as f32; load8_tail the first `count` (< 8) of them, the rest zero.
template <class KV>
struct ChunkRows {
  const KV* first = nullptr;
  int64_t head_dim;
  void start(const KV* cache, int64_t c0, int64_t /*n*/) { first = cache + c0 * head_dim; }
  const KV* row(int64_t j) const { return first + j * head_dim; }
};
inline __m256 load8(const float* row, int64_t d) { return _mm256_loadu_ps(row + d); }
inline __m256 load8_tail(const float* row, int64_t d, int64_t count) {
  return _mm256_maskload_ps(row + d, tail_mask(count));
}
inline __m256 load8(const uint16_t* row, int64_t d) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d)));
}
inline __m256 load8_tail(const uint16_t* row, int64_t d, int64_t count) {
  alignas(16) uint16_t part[8] = {};  // no masked 16-bit loads in AVX2
  for (int64_t i = 0; i < count; ++i) part[i] = row[d + i];
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(part)));
}

// A q8_0 row: its head_dim / 32 blocks and their scales as f32.
struct Q8Row {
  const BlockQ8_0* blocks;
  const float* scales;
};
// q8_0 rows: the chunk's block scales are converted up front, once per block.
template <>
struct ChunkRows<BlockQ8_0> {
  const BlockQ8_0* first = nullptr;
  int64_t head_dim;
  float scales[kChunk * (kAttentionMaxHeadDim / kQK)];
  void start(const BlockQ8_0* cache, int64_t c0, int64_t n) {
    const int64_t per_row = head_dim / kQK;
    first = cache + c0 * per_row;
    for (int64_t i = 0; i < n * per_row; ++i) scales[i] = _cvtsh_ss(first[i].d);
  }
  Q8Row row(int64_t j) const { return {first + j * (head_dim / kQK), scales + j * (head_dim / kQK)}; }
};
// A slice never straddles a block (head_dim is a multiple of 32), so there is no tail.
inline __m256 load8(Q8Row row, int64_t d) {
  const __m128i qs = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row.blocks[d / kQK].qs + d % kQK));
  return _mm256_mul_ps(_mm256_broadcast_ss(row.scales + d / kQK), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(qs)));
}
inline __m256 load8_tail(Q8Row row, int64_t d, int64_t) { return load8(row, d); }

// Reduces eight 8-lane sums to one vector of their eight totals.
inline __m256 reduce8(const __m256 (&a)[8]) {
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// partial[g][i + r] = the 8 lane-wise partial sums of q_g . k_(j+r) for R consecutive keys
// (q_g = q + g * head_dim): each K slice is loaded and converted once for the G queries,
// each q slice loaded once for the R keys.
template <int G, int R, class KV>
inline void dot_keys(const float* q, const ChunkRows<KV>& keys, int64_t j, int64_t i, int64_t head_dim,
                     __m256 (&partial)[G][8]) {
  const int64_t whole = head_dim & ~int64_t{7};
  decltype(keys.row(0)) row[R];
  __m256 a[R][G];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    row[r] = keys.row(j + r);
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) a[r][g] = _mm256_setzero_ps();
  }
  auto step = [&](const __m256(&kv)[R], auto load_q) {
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
      const __m256 qv = load_q(q + g * head_dim);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) a[r][g] = _mm256_fmadd_ps(kv[r], qv, a[r][g]);
    }
  };
  for (int64_t d = 0; d < whole; d += 8) {
    __m256 kv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) kv[r] = load8(row[r], d);
    step(kv, [d](const float* qg) { return _mm256_loadu_ps(qg + d); });
  }
  if (whole < head_dim) {  // zero lanes past head_dim in both operands
    const int64_t count = head_dim - whole;
    __m256 kv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) kv[r] = load8_tail(row[r], whole, count);
    step(kv, [whole, count](const float* qg) { return _mm256_maskload_ps(qg + whole, tail_mask(count)); });
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) partial[g][i + r] = a[r][g];
  }
}

// scores[g * p_stride + i] = scale * q_g . k_(j+i) for the G queries and the n <= 8 keys
// from j; lanes past n are -inf. Keys go in fours, twos or ones as the 16 registers allow.
template <int G, class KV>
inline void score_block(const float* q, const ChunkRows<KV>& keys, int64_t j, int64_t n, int64_t head_dim, float scale,
                        float* scores, int64_t p_stride, __m256 (&partial)[G][8]) {
  constexpr int R = G <= 2 ? 4 : (G <= 4 ? 2 : 1);
  int64_t i = 0;
  for (; i + R <= n; i += R) dot_keys<G, R>(q, keys, j + i, i, head_dim, partial);
  for (; i < n; ++i) dot_keys<G, 1>(q, keys, j + i, i, head_dim, partial);
  for (; i < 8; ++i) {  // their lanes are replaced by -inf below
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) partial[g][i] = _mm256_setzero_ps();
  }
  const __m256 minus_inf = _mm256_set1_ps(-__builtin_inff()), vscale = _mm256_set1_ps(scale);
  const __m256 valid = _mm256_castsi256_ps(tail_mask(n));
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
    const __m256 dots = _mm256_mul_ps(reduce8(partial[g]), vscale);
    _mm256_storeu_ps(scores + g * p_stride, _mm256_blendv_ps(minus_inf, dots, valid));
  }
}

// acc[g][d..] += sum_j p[g][j] v_j[d..] over the chunk's n keys for S consecutive 8-wide
// slices from d (S = 1 and `count` < 8 for the tail of head_dim): G x S accumulators stay
// in registers and each converted V slice feeds G FMAs.
template <int G, int S, class KV>
inline void accumulate_slices(const float* p, int64_t p_stride, const ChunkRows<KV>& values, int64_t n,
                              int64_t head_dim, int64_t d, float* acc, int64_t count) {
  const __m256i last = tail_mask(count);
  __m256 a[G][S];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s)
      a[g][s] = _mm256_maskload_ps(acc + g * head_dim + d + 8 * s, s == S - 1 ? last : _mm256_set1_epi32(-1));
  }
  for (int64_t j = 0; j < n; ++j) {
    const auto row = values.row(j);
    __m256 vv[S];
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s) vv[s] = count < 8 ? load8_tail(row, d + 8 * s, count) : load8(row, d + 8 * s);
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
      const __m256 pg = _mm256_broadcast_ss(p + g * p_stride + j);
#pragma GCC unroll 8
      for (int s = 0; s < S; ++s) a[g][s] = _mm256_fmadd_ps(pg, vv[s], a[g][s]);
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s)
      _mm256_maskstore_ps(acc + g * head_dim + d + 8 * s, s == S - 1 ? last : _mm256_set1_epi32(-1), a[g][s]);
  }
}

// Slices per pass: as many as keep G x S accumulators, the S V slices and a weight
// within the 16 registers.
template <int G, class KV>
void accumulate(const float* p, int64_t p_stride, const ChunkRows<KV>& values, int64_t n, int64_t head_dim,
                float* acc) {
  constexpr int kSlices = G <= 2 ? 4 : (G <= 6 ? 2 : 1);
  int64_t d = 0;
  for (; d + 8 * kSlices <= head_dim; d += 8 * kSlices) {
    accumulate_slices<G, kSlices>(p, p_stride, values, n, head_dim, d, acc, 8);
  }
  for (; d < head_dim; d += 8) {
    accumulate_slices<G, 1>(p, p_stride, values, n, head_dim, d, acc, head_dim - d < 8 ? head_dim - d : 8);
  }
}

inline float exp1(float x) { return _mm256_cvtss_f32(avx2::exp(_mm256_set1_ps(x))); }

template <int G, class KV>
void attention(const float* q, const KV* k, const KV* v, int64_t n_ctx, int64_t head_dim, float scale,
               float* out) noexcept {
  alignas(32) float acc[G * kAttentionMaxHeadDim];
  alignas(32) float p[G * kChunk];  // scores, then softmax weights, of one chunk
  __m256 partial[G][8];
  float max[G], sum[G];
  ChunkRows<KV> keys, values;
  keys.head_dim = values.head_dim = head_dim;
  for (int64_t i = 0; i < G * head_dim; ++i) acc[i] = 0.0f;
  for (int g = 0; g < G; ++g) max[g] = -__builtin_inff(), sum[g] = 0.0f;

  // K rows are prefetched kAhead keys ahead of the scores (across chunk ends); V rows
  // while the same chunk's scores are computed, for the values pass that follows.
  constexpr int64_t kAhead = 32;
  prefetch_rows(k, 0, n_ctx < kAhead ? n_ctx : kAhead, head_dim);
  for (int64_t c0 = 0; c0 < n_ctx; c0 += kChunk) {
    const int64_t n = n_ctx - c0 < kChunk ? n_ctx - c0 : kChunk;
    keys.start(k, c0, n);
    values.start(v, c0, n);
    for (int64_t j = 0; j < n; j += 8) {
      const int64_t r = c0 + j, ahead_end = r + kAhead + 8 < n_ctx ? r + kAhead + 8 : n_ctx;
      if (r + kAhead < ahead_end) prefetch_rows(k, r + kAhead, ahead_end, head_dim);
      prefetch_rows(v, r, r + 8 < n_ctx ? r + 8 : n_ctx, head_dim);
      score_block<G>(q, keys, j, n - j < 8 ? n - j : 8, head_dim, scale, p + j, kChunk, partial);
    }
    // Online softmax: weights relative to the running max; rescale what came before.
    const int64_t n8 = (n + 7) & ~int64_t{7};  // score_block padded the last block with -inf
    for (int g = 0; g < G; ++g) {
      float* pg = p + g * kChunk;
      __m256 vmax = _mm256_set1_ps(max[g]);
      for (int64_t j = 0; j < n8; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(pg + j));
      const float new_max = hmax(vmax);
      const __m256 vm = _mm256_set1_ps(new_max);
      __m256 vsum = _mm256_setzero_ps();
      for (int64_t j = 0; j < n8; j += 8) {
        const __m256 e = avx2::exp(_mm256_sub_ps(_mm256_loadu_ps(pg + j), vm));
        _mm256_storeu_ps(pg + j, e);
        vsum = _mm256_add_ps(vsum, e);
      }
      if (new_max > max[g] && max[g] != -__builtin_inff()) {  // on the first chunk sum and acc are still 0
        const float correction = exp1(max[g] - new_max);
        const __m256 vcorr = _mm256_set1_ps(correction);
        float* ag = acc + g * head_dim;
        for (int64_t d = 0; d < head_dim; d += 8) {
          const __m256i m = tail_mask(head_dim - d < 8 ? head_dim - d : 8);
          _mm256_maskstore_ps(ag + d, m, _mm256_mul_ps(_mm256_maskload_ps(ag + d, m), vcorr));
        }
        sum[g] *= correction;
      }
      max[g] = new_max;
      sum[g] += hsum(vsum);
    }
    accumulate<G>(p, kChunk, values, n, head_dim, acc);
  }
  for (int g = 0; g < G; ++g) {
    const __m256 inv = _mm256_set1_ps(1.0f / sum[g]);
    for (int64_t d = 0; d < head_dim; d += 8) {
      const __m256i m = tail_mask(head_dim - d < 8 ? head_dim - d : 8);
      _mm256_maskstore_ps(out + g * head_dim + d, m, _mm256_mul_ps(_mm256_maskload_ps(acc + g * head_dim + d, m), inv));
    }
  }
}

// OpsTable::attention_*: the group size is a template argument so that each query's
// accumulators are registers.
template <class KV>
void attention_group(const float* q, int64_t n_q, const KV* k, const KV* v, int64_t n_ctx, int64_t head_dim,
                     float scale, float* out) noexcept {
  using Kernel = void (*)(const float*, const KV*, const KV*, int64_t, int64_t, float, float*) noexcept;
  static constexpr Kernel kKernels[kAttentionMaxGroup + 1] = {nullptr,          attention<1, KV>, attention<2, KV>,
                                                              attention<3, KV>, attention<4, KV>, attention<5, KV>,
                                                              attention<6, KV>, attention<7, KV>, attention<8, KV>};
  kKernels[n_q](q, k, v, n_ctx, head_dim, scale, out);
}

}  // namespace

void fill_ops_attention_avx2(OpsTable& t) noexcept {
  t.attention_f32 = attention_group<float>;
  t.attention_f16 = attention_group<uint16_t>;
  t.attention_q8_0 = attention_group<BlockQ8_0>;
  fill_ops_attention_block_avx2(t);
}

}  // namespace qilin::cpu
