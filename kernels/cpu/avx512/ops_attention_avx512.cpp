// AVX-512 causal attention of a group of queries sharing one KV head
// (OpsTable::attention_f32 / _f16 / _q8_0, kernels/cpu/ops_table.h).
//
// Keys stream in chunks through an online softmax (running max and sum per query,
// accumulators rescaled when the max grows). Per chunk:
//   scores  a few keys at a time, each 16-wide slice of a K row is converted to f32 once,
//           in registers, and feeds the G queries' dot products; the G x 16 partial sums
//           of a 16-key block are then reduced together (reduce16);
//   weights exp(score - max), 16 at a time;
//   values  the group's accumulators for four 16-wide slices of head_dim stay in registers
//           while the chunk's V rows stream past, converted in registers (each V slice
//           feeds G FMAs).
// An f16 or q8_0 cache is read where it lies: no staging copy in f32, so every element is
// loaded and converted exactly once (q8_0 block scales are converted once per chunk).
// Tails of head_dim are masked loads, so odd head sizes need no scalar code.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/avx512/ops_math_avx512.h"
#include "kernels/cpu/kv_prefetch.h"
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {
namespace {

using namespace avx512;

constexpr int64_t kChunk = 128;  // keys per online-softmax update (measured: 128 beats 64)

// The K or V rows of one chunk of an f32 or f16 cache; load16(row(j), d, m) reads
// elements [d, d + 16) of row j as f32, lanes outside m zero.
template <class KV>
struct ChunkRows {
  const KV* first = nullptr;
  int64_t head_dim;
  void start(const KV* cache, int64_t c0, int64_t /*n*/) { first = cache + c0 * head_dim; }
  const KV* row(int64_t j) const { return first + j * head_dim; }
};
inline __m512 load16(const float* row, int64_t d, __mmask16 m) { return _mm512_maskz_loadu_ps(m, row + d); }
inline __m512 load16(const uint16_t* row, int64_t d, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + d));
}

// A q8_0 row: its head_dim / 32 blocks and their scales as f32.
struct Q8Row {
  const BlockQ8_0* blocks;
  const float* scales;
};
// q8_0 rows: the chunk's block scales are gathered and converted 16 at a time up front,
// so a 16-element slice costs a sign extension, a conversion and a multiply.
template <>
struct ChunkRows<BlockQ8_0> {
  const BlockQ8_0* first = nullptr;
  int64_t head_dim;
  alignas(64) float scales[kChunk * (kAttentionMaxHeadDim / kQK)];
  void start(const BlockQ8_0* cache, int64_t c0, int64_t n) {
    const int64_t per_row = head_dim / kQK, count = n * per_row;
    first = cache + c0 * per_row;
    // Byte offsets of 16 consecutive blocks; the dword at each holds d in its low half.
    const __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32(static_cast<int>(sizeof(BlockQ8_0))));
    for (int64_t i = 0; i < count; i += 16) {
      const __mmask16 m = tail_mask(count - i < 16 ? count - i : 16);
      const __m512i d = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, offsets, first + i, 1);
      _mm512_mask_storeu_ps(scales + i, m, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
    }
  }
  Q8Row row(int64_t j) const { return {first + j * (head_dim / kQK), scales + j * (head_dim / kQK)}; }
};
// A slice never straddles a block (head_dim is a multiple of 32) and is never masked.
inline __m512 load16(Q8Row row, int64_t d, __mmask16) {
  const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row.blocks[d / kQK].qs + d % kQK));
  return _mm512_mul_ps(_mm512_set1_ps(row.scales[d / kQK]), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(qs)));
}

// Reduces sixteen 16-lane sums to one vector whose lane j is the total of a[j]:
// four levels, each adding pairs of half-width pieces of two vectors (two shuffles
// and one add per pair), 31 shuffles for 16 totals.
inline __m512 reduce16(const __m512 (&a)[16]) {
  __m512 b[8], c[4], d[2];
  for (int i = 0; i < 8; ++i) {  // 256-bit halves: b_i = [a_i | a_{i+8}], 8 partials each
    b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[i], a[i + 8], 0x44), _mm512_shuffle_f32x4(a[i], a[i + 8], 0xEE));
  }
  for (int i = 0; i < 4; ++i) {  // 128-bit lanes: c_i = [a_i, a_{i+8}, a_{i+4}, a_{i+12}], 4 partials each
    c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[i], b[i + 4], 0x88), _mm512_shuffle_f32x4(b[i], b[i + 4], 0xDD));
  }
  for (int i = 0; i < 2; ++i) {  // pairs within lanes: lane 0 of d_i = [a_i, a_i, a_{i+2}, a_{i+2}]
    d[i] = _mm512_add_ps(_mm512_shuffle_ps(c[i], c[i + 2], 0x88), _mm512_shuffle_ps(c[i], c[i + 2], 0xDD));
  }
  // Totals in the order 0 2 1 3 | 8 10 9 11 | 4 6 5 7 | 12 14 13 15; that order is its own inverse.
  const __m512 e = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xDD));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15), e);
}

// partial[g][i + r] = the 16 lane-wise partial sums of q_g . k_(j+r) for R consecutive keys
// (q_g = q + g * head_dim): each K slice is loaded and converted once for the G queries,
// each q slice loaded once for the R keys; R x G independent FMA chains.
template <int G, int R, class KV>
inline void dot_keys(const float* q, const ChunkRows<KV>& keys, int64_t j, int64_t i, int64_t head_dim,
                     __m512 (&partial)[G][16]) {
  const int64_t whole = head_dim & ~int64_t{15};
  const __mmask16 tail = tail_mask(head_dim - whole);
  decltype(keys.row(0)) row[R];
  __m512 a[R][G];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    row[r] = keys.row(j + r);
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) a[r][g] = _mm512_setzero_ps();
  }
  auto step = [&](int64_t d, __mmask16 m) {  // zero lanes outside m in both operands
    __m512 kv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) kv[r] = load16(row[r], d, m);
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + g * head_dim + d);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) a[r][g] = _mm512_fmadd_ps(kv[r], qv, a[r][g]);
    }
  };
  for (int64_t d = 0; d < whole; d += 16) step(d, 0xffff);
  if (tail != 0) step(whole, tail);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) partial[g][i + r] = a[r][g];
  }
}

// scores[g * p_stride + i] = scale * q_g . k_(j+i) for the G queries and the n <= 16 keys
// from j; lanes past n are -inf. The block's partial sums wait in `partial` (keys in
// fours, or threes for G > 4, to keep enough FMA chains going), then reduce16 makes each
// query's 16 totals at once.
template <int G, class KV>
inline void score_block(const float* q, const ChunkRows<KV>& keys, int64_t j, int64_t n, int64_t head_dim, float scale,
                        float* scores, int64_t p_stride, __m512 (&partial)[G][16]) {
  constexpr int R = G <= 4 ? 4 : 3;
  int64_t i = 0;
  for (; i + R <= n; i += R) dot_keys<G, R>(q, keys, j + i, i, head_dim, partial);
  for (; i < n; ++i) dot_keys<G, 1>(q, keys, j + i, i, head_dim, partial);
  for (; i < 16; ++i) {  // their lanes are replaced by -inf below
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) partial[g][i] = _mm512_setzero_ps();
  }
  const __m512 minus_inf = _mm512_set1_ps(-__builtin_inff()), vscale = _mm512_set1_ps(scale);
  const __mmask16 valid = tail_mask(n);
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
    const __m512 dots = _mm512_mul_ps(reduce16(partial[g]), vscale);
    _mm512_storeu_ps(scores + g * p_stride, _mm512_mask_blend_ps(valid, minus_inf, dots));
  }
}

// acc[g][d..] += sum_j p[g][j] v_j[d..] over the chunk's n keys for S consecutive 16-wide
// slices starting at d (the last one masked by `last`): G x S accumulators stay in
// registers, each converted V slice feeds G FMAs (weights broadcast from memory). With
// fewer than 8 accumulators, even and odd keys go to separate sets (U = 2) so that
// enough FMA chains run at once. The loops over registers are unrolled early (the
// pragmas): otherwise GCC keeps a copy of every accumulator on the stack.
template <int G, int S, class KV>
inline void accumulate_slices(const float* p, int64_t p_stride, const ChunkRows<KV>& values, int64_t n,
                              int64_t head_dim, int64_t d, float* acc, __mmask16 last) {
  constexpr int U = G * S < 8 ? 2 : 1;
  __m512 a[U][G][S];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s) {
      a[0][g][s] = _mm512_maskz_loadu_ps(s == S - 1 ? last : 0xffff, acc + g * head_dim + d + 16 * s);
      if constexpr (U == 2) a[1][g][s] = _mm512_setzero_ps();
    }
  }
  auto step = [&](int u, int64_t j) {
    const auto row = values.row(j);
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s) {
      const __m512 vv = load16(row, d + 16 * s, s == S - 1 ? last : 0xffff);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) a[u][g][s] = _mm512_fmadd_ps(_mm512_set1_ps(p[g * p_stride + j]), vv, a[u][g][s]);
    }
  };
  int64_t j = 0;
  for (; j + U <= n; j += U) {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) step(u, j + u);
  }
  for (; j < n; ++j) step(0, j);
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s) {
      __m512 total = a[0][g][s];
      if constexpr (U == 2) total = _mm512_add_ps(total, a[1][g][s]);
      _mm512_mask_storeu_ps(acc + g * head_dim + d + 16 * s, s == S - 1 ? last : 0xffff, total);
    }
  }
}

// Four slices per pass (head_dim 64 in one pass): up to 8 x 4 accumulators and the V
// slice in flight fit the 32 registers with the weights as memory operands.
template <int G, class KV>
void accumulate(const float* p, int64_t p_stride, const ChunkRows<KV>& values, int64_t n, int64_t head_dim,
                float* acc) {
  constexpr int kSlices = 4;
  int64_t d = 0;
  for (; d + 16 * kSlices <= head_dim; d += 16 * kSlices) {
    accumulate_slices<G, kSlices>(p, p_stride, values, n, head_dim, d, acc, 0xffff);
  }
  for (; d < head_dim; d += 16) {
    accumulate_slices<G, 1>(p, p_stride, values, n, head_dim, d, acc, tail_mask(head_dim - d < 16 ? head_dim - d : 16));
  }
}

template <int G, class KV>
void attention(const float* q, const KV* k, const KV* v, int64_t n_ctx, int64_t head_dim, float scale,
               float* out) noexcept {
  alignas(64) float acc[G * kAttentionMaxHeadDim];
  alignas(64) float p[G * kChunk];  // scores, then softmax weights, of one chunk
  __m512 partial[G][16];
  float max[G], sum[G];
  ChunkRows<KV> keys, values;
  keys.head_dim = values.head_dim = head_dim;
  for (int64_t i = 0; i < G * head_dim; ++i) acc[i] = 0.0f;
  for (int g = 0; g < G; ++g) max[g] = -__builtin_inff(), sum[g] = 0.0f;
  const __m512 minus_inf = _mm512_set1_ps(-__builtin_inff());

  // K rows are prefetched kAhead keys ahead of the scores (across chunk ends); V rows
  // while the same chunk's scores are computed, for the values pass that follows.
  constexpr int64_t kAhead = 32;
  prefetch_rows(k, 0, n_ctx < kAhead ? n_ctx : kAhead, head_dim);
  for (int64_t c0 = 0; c0 < n_ctx; c0 += kChunk) {
    const int64_t n = n_ctx - c0 < kChunk ? n_ctx - c0 : kChunk;
    keys.start(k, c0, n);
    values.start(v, c0, n);
    for (int64_t j = 0; j < n; j += 16) {
      const int64_t r = c0 + j, ahead_end = r + kAhead + 16 < n_ctx ? r + kAhead + 16 : n_ctx;
      if (r + kAhead < ahead_end) prefetch_rows(k, r + kAhead, ahead_end, head_dim);
      prefetch_rows(v, r, r + 16 < n_ctx ? r + 16 : n_ctx, head_dim);
      score_block<G>(q, keys, j, n - j < 16 ? n - j : 16, head_dim, scale, p + j, kChunk, partial);
    }
    // Online softmax: weights relative to the running max; rescale what came before.
    for (int g = 0; g < G; ++g) {
      float* pg = p + g * kChunk;
      __m512 vmax = _mm512_set1_ps(max[g]);
      for (int64_t j = 0; j < n; j += 16) {
        vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(minus_inf, tail_mask(n - j < 16 ? n - j : 16), pg + j));
      }
      const float new_max = _mm512_reduce_max_ps(vmax);
      const __m512 vm = _mm512_set1_ps(new_max);
      __m512 vsum = _mm512_setzero_ps();
      for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = tail_mask(n - j < 16 ? n - j : 16);
        const __m512 e = _mm512_maskz_mov_ps(m, exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, pg + j), vm)));
        _mm512_mask_storeu_ps(pg + j, m, e);
        vsum = _mm512_add_ps(vsum, e);
      }
      if (new_max > max[g] && max[g] != -__builtin_inff()) {  // on the first chunk sum and acc are still 0
        const __m512 correction = exp(_mm512_set1_ps(max[g] - new_max));
        float* ag = acc + g * head_dim;
        for (int64_t d = 0; d < head_dim; d += 16) {
          const __mmask16 m = tail_mask(head_dim - d < 16 ? head_dim - d : 16);
          _mm512_mask_storeu_ps(ag + d, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, ag + d), correction));
        }
        sum[g] *= _mm512_cvtss_f32(correction);
      }
      max[g] = new_max;
      sum[g] += _mm512_reduce_add_ps(vsum);
    }
    accumulate<G>(p, kChunk, values, n, head_dim, acc);
  }
  for (int g = 0; g < G; ++g) {
    const __m512 inv = _mm512_set1_ps(1.0f / sum[g]);
    for (int64_t d = 0; d < head_dim; d += 16) {
      const __mmask16 m = tail_mask(head_dim - d < 16 ? head_dim - d : 16);
      _mm512_mask_storeu_ps(out + g * head_dim + d, m,
                            _mm512_mul_ps(_mm512_maskz_loadu_ps(m, acc + g * head_dim + d), inv));
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

void fill_ops_attention_avx512(OpsTable& t) noexcept {
  t.attention_f32 = attention_group<float>;
  t.attention_f16 = attention_group<uint16_t>;
  t.attention_q8_0 = attention_group<BlockQ8_0>;
  fill_ops_attention_block_avx512(t);
}

}  // namespace qilin::cpu
