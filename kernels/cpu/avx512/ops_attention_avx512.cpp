// AVX-512 causal attention of a group of queries sharing one KV head
// (OpsTable::attention_f32 / _f16 / _q8_0, kernels/cpu/ops_table.h).
//
// The same scheme as the AVX2 level (kernels/cpu/avx2/ops_attention_avx2.cpp):
// keys stream in chunks through an online softmax; scores are computed 16 keys at
// a time and reduced together; the group's accumulators for each 16-wide slice
// of head_dim stay in registers while the chunk's V rows stream past. An f16 or
// q8_0 cache is converted (dequantized) chunk by chunk into stack buffers. Tails of head_dim are
// masked loads, so odd head sizes need no scalar code.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/avx512/kv_q8_0_avx512.h"
#include "kernels/cpu/avx512/ops_math_avx512.h"
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {
namespace {

using namespace avx512;

constexpr int64_t kMaxChunk = 64;           // keys per chunk
constexpr int64_t kChunkFloats = 64 * 128;  // f16 conversion buffer: kMaxChunk keys of head_dim 128

// Keys per chunk: a multiple of 8, at most kMaxChunk, and chunk * head_dim <= kChunkFloats.
inline int64_t chunk_keys(int64_t head_dim) {
  int64_t c = kChunkFloats / head_dim / 8 * 8;
  return c < 8 ? 8 : (c > kMaxChunk ? kMaxChunk : c);
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

// scores[g][j] = scale * q_g . k_j for the n_q queries (q_g = q + g * head_dim) and
// keys j in [0, n) (n <= 16, k_j = k + j * head_dim); scores rows are p_stride apart.
// Rows past n repeat the last one (valid memory) and their scores are -inf.
inline void score_block(const float* q, int64_t n_q, const float* k, int64_t n, int64_t head_dim, float scale,
                        float* scores, int64_t p_stride) {
  const float* r[16];
  for (int64_t j = 0; j < 16; ++j) r[j] = k + (j < n ? j : n - 1) * head_dim;
  const __m512 minus_inf = _mm512_set1_ps(-__builtin_inff()), vscale = _mm512_set1_ps(scale);
  const __mmask16 valid = tail_mask(n);
  for (int64_t g = 0; g < n_q; ++g) {
    const float* qg = q + g * head_dim;
    __m512 a[16];
    for (int j = 0; j < 16; ++j) a[j] = _mm512_setzero_ps();
    for (int64_t d = 0; d < head_dim; d += 16) {
      const __mmask16 m = tail_mask(head_dim - d < 16 ? head_dim - d : 16);
      const __m512 qv = _mm512_maskz_loadu_ps(m, qg + d);  // zero lanes cancel whatever k holds there
      for (int j = 0; j < 16; ++j) a[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r[j] + d), qv, a[j]);
    }
    const __m512 dots = _mm512_mul_ps(reduce16(a), vscale);
    _mm512_storeu_ps(scores + g * p_stride, _mm512_mask_blend_ps(valid, minus_inf, dots));
  }
}

// acc[g][d..] += sum_j p[g][j] v_j[d..] over the chunk for S consecutive 16-wide
// slices starting at d (the last one masked by `last`): G x S accumulators stay in
// registers and each V load feeds G FMAs. With fewer than 8 accumulators, even and
// odd keys go to separate sets (U = 2) so that enough FMA chains run at once.
// The loops over registers are unrolled early (the pragmas): otherwise GCC keeps a copy
// of every accumulator on the stack and stores it on each key.
template <int G, int S>
inline void accumulate_slices(const float* p, int64_t p_stride, const float* v, int64_t n, int64_t head_dim, int64_t d,
                              float* acc, __mmask16 last) {
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
    __m512 vv[S];
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s)
      vv[s] = _mm512_maskz_loadu_ps(s == S - 1 ? last : 0xffff, v + j * head_dim + d + 16 * s);
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
      const __m512 pg = _mm512_set1_ps(p[g * p_stride + j]);
#pragma GCC unroll 8
      for (int s = 0; s < S; ++s) a[u][g][s] = _mm512_fmadd_ps(pg, vv[s], a[u][g][s]);
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

// Slices per pass: 4 (head_dim 64 in one pass) while G x 4 accumulators fit in 24 of
// the 32 registers, else 2.
template <int G>
void accumulate(const float* p, int64_t p_stride, const float* v, int64_t n, int64_t head_dim, float* acc) {
  constexpr int kSlices = G <= 6 ? 4 : 2;
  int64_t d = 0;
  for (; d + 16 * kSlices <= head_dim; d += 16 * kSlices) {
    accumulate_slices<G, kSlices>(p, p_stride, v, n, head_dim, d, acc, 0xffff);
  }
  for (; d < head_dim; d += 16) {
    accumulate_slices<G, 1>(p, p_stride, v, n, head_dim, d, acc, tail_mask(head_dim - d < 16 ? head_dim - d : 16));
  }
}

using AccumulateFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*);
constexpr AccumulateFn kAccumulate[kAttentionMaxGroup + 1] = {nullptr,       accumulate<1>, accumulate<2>,
                                                              accumulate<3>, accumulate<4>, accumulate<5>,
                                                              accumulate<6>, accumulate<7>, accumulate<8>};

inline void convert_rows(const uint16_t* src, float* dst, int64_t count) {
  for (int64_t i = 0; i < count; i += 16) {
    const __mmask16 m = tail_mask(count - i < 16 ? count - i : 16);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_cvtph_ps(m, _mm256_maskz_loadu_epi16(m, src + i)));
  }
}

// Cache row j from a chunk start: head_dim elements, or head_dim / 32 q8_0 blocks.
inline const float* row_at(const float* base, int64_t j, int64_t head_dim) { return base + j * head_dim; }
inline const uint16_t* row_at(const uint16_t* base, int64_t j, int64_t head_dim) { return base + j * head_dim; }
inline const BlockQ8_0* row_at(const BlockQ8_0* base, int64_t j, int64_t head_dim) {
  return base + j * (head_dim / kQK);
}

// count elements of q8_0 rows (a multiple of 32: whole rows) to f32.
inline void convert_rows(const BlockQ8_0* src, float* dst, int64_t count) { dequantize_q8_0(src, dst, count / kQK); }

// Stack buffers for one chunk of an f16 or q8_0 cache converted to f32; none for an f32 cache.
template <class KV>
struct ChunkBuffers {
  alignas(64) float k[kChunkFloats];
  alignas(64) float v[kChunkFloats];
};
template <>
struct ChunkBuffers<float> {};

template <class KV>
void attention(const float* q, int64_t n_q, const KV* k, const KV* v, int64_t n_ctx, int64_t head_dim, float scale,
               float* out) noexcept {
  alignas(64) float acc[kAttentionMaxGroup * kAttentionMaxHeadDim];
  alignas(64) float p[kAttentionMaxGroup * kMaxChunk];  // scores, then softmax weights, of one chunk
  float max[kAttentionMaxGroup], sum[kAttentionMaxGroup];
  [[maybe_unused]] ChunkBuffers<KV> buffers;
  for (int64_t i = 0; i < n_q * head_dim; ++i) acc[i] = 0.0f;
  for (int64_t g = 0; g < n_q; ++g) max[g] = -__builtin_inff(), sum[g] = 0.0f;
  const int64_t chunk = chunk_keys(head_dim);
  const AccumulateFn accumulate_group = kAccumulate[n_q];
  const __m512 minus_inf = _mm512_set1_ps(-__builtin_inff());

  for (int64_t c0 = 0; c0 < n_ctx; c0 += chunk) {
    const int64_t n = n_ctx - c0 < chunk ? n_ctx - c0 : chunk;
    const float* kc;
    const float* vc;
    if constexpr (sizeof(KV) != sizeof(float)) {  // f16 or q8_0: converted once per chunk
      convert_rows(row_at(k, c0, head_dim), buffers.k, n * head_dim);
      convert_rows(row_at(v, c0, head_dim), buffers.v, n * head_dim);
      kc = buffers.k, vc = buffers.v;
    } else {
      kc = k + c0 * head_dim, vc = v + c0 * head_dim;
    }
    for (int64_t j = 0; j < n; j += 16) {
      score_block(q, n_q, kc + j * head_dim, n - j < 16 ? n - j : 16, head_dim, scale, p + j, kMaxChunk);
    }
    // Online softmax: weights relative to the running max; rescale what came before.
    for (int64_t g = 0; g < n_q; ++g) {
      float* pg = p + g * kMaxChunk;
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
    accumulate_group(p, kMaxChunk, vc, n, head_dim, acc);
  }
  for (int64_t g = 0; g < n_q; ++g) {
    const __m512 inv = _mm512_set1_ps(1.0f / sum[g]);
    for (int64_t d = 0; d < head_dim; d += 16) {
      const __mmask16 m = tail_mask(head_dim - d < 16 ? head_dim - d : 16);
      _mm512_mask_storeu_ps(out + g * head_dim + d, m,
                            _mm512_mul_ps(_mm512_maskz_loadu_ps(m, acc + g * head_dim + d), inv));
    }
  }
}

void attention_f32(const float* q, int64_t n_q, const float* k, const float* v, int64_t n_ctx, int64_t head_dim,
                   float scale, float* out) noexcept {
  attention(q, n_q, k, v, n_ctx, head_dim, scale, out);
}
void attention_f16(const float* q, int64_t n_q, const uint16_t* k, const uint16_t* v, int64_t n_ctx, int64_t head_dim,
                   float scale, float* out) noexcept {
  attention(q, n_q, k, v, n_ctx, head_dim, scale, out);
}
void attention_q8_0(const float* q, int64_t n_q, const BlockQ8_0* k, const BlockQ8_0* v, int64_t n_ctx,
                    int64_t head_dim, float scale, float* out) noexcept {
  attention(q, n_q, k, v, n_ctx, head_dim, scale, out);
}

}  // namespace

void fill_ops_attention_avx512(OpsTable& t) noexcept {
  t.attention_f32 = attention_f32;
  t.attention_f16 = attention_f16;
  t.attention_q8_0 = attention_q8_0;
  fill_ops_attention_block_avx512(t);
}

}  // namespace qilin::cpu
