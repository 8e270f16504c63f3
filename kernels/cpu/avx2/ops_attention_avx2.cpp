// AVX2 causal attention of a group of queries sharing one KV head
// (OpsTable::attention_f32 / _f16 / _q8_0, kernels/cpu/ops_table.h).
//
// Keys stream in chunks through an online softmax (running max and sum per
// query, accumulator rescaled when the max grows), so no score buffer grows with
// the context. Per chunk:
//   scores  8 keys at a time per query: 8 dot products in 8 registers, reduced
//           together by one hadd tree (one horizontal reduction per 8 keys);
//   weights exp(score - max), 8 at a time;
//   values  for each 8-wide slice of head_dim, the group's accumulators stay in
//           registers while the chunk's V rows stream past (each V load feeds G FMAs).
// An f16 or q8_0 cache is converted (dequantized) chunk by chunk into stack
// buffers first, so all element types share the f32 code and every K/V element
// is converted once.
#include <immintrin.h>

#include <cstdint>

#include "core/half.h"
#include "kernels/cpu/avx2/kv_q8_0_avx2.h"
#include "kernels/cpu/avx2/ops_math_avx2.h"
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {
namespace {

using namespace avx2;

constexpr int64_t kMaxChunk = 64;           // keys per chunk
constexpr int64_t kChunkFloats = 64 * 128;  // f16 conversion buffer: kMaxChunk keys of head_dim 128

// Keys per chunk: a multiple of 8, at most kMaxChunk, and chunk * head_dim <= kChunkFloats.
inline int64_t chunk_keys(int64_t head_dim) {
  int64_t c = kChunkFloats / head_dim / 8 * 8;
  return c < 8 ? 8 : (c > kMaxChunk ? kMaxChunk : c);
}

// Reduces eight 8-lane sums to one vector of their eight totals.
inline __m256 reduce8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6, __m256 a7) {
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// scores[j] = scale * q . k_j for j in [0, n) (n <= 8); k_j = k + j * head_dim.
// Rows past n repeat the last one (valid memory) and their scores are -inf.
inline void score_block(const float* q, const float* k, int64_t n, int64_t head_dim, float scale, float* scores) {
  const float* r[8];
  for (int64_t j = 0; j < 8; ++j) r[j] = k + (j < n ? j : n - 1) * head_dim;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  const int64_t d8 = head_dim & ~int64_t{7};
  for (int64_t d = 0; d < d8; d += 8) {
    const __m256 qv = _mm256_loadu_ps(q + d);
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r[0] + d), qv, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r[1] + d), qv, a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r[2] + d), qv, a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r[3] + d), qv, a3);
    a4 = _mm256_fmadd_ps(_mm256_loadu_ps(r[4] + d), qv, a4);
    a5 = _mm256_fmadd_ps(_mm256_loadu_ps(r[5] + d), qv, a5);
    a6 = _mm256_fmadd_ps(_mm256_loadu_ps(r[6] + d), qv, a6);
    a7 = _mm256_fmadd_ps(_mm256_loadu_ps(r[7] + d), qv, a7);
  }
  alignas(32) float dots[8];
  _mm256_store_ps(dots, reduce8(a0, a1, a2, a3, a4, a5, a6, a7));
  for (int64_t j = 0; j < 8; ++j) {
    float dot = dots[j];
    for (int64_t d = d8; d < head_dim; ++d) dot += q[d] * r[j][d];
    scores[j] = j < n ? dot * scale : -__builtin_inff();
  }
}

// acc[g][d] += sum_j p[g][j] v_j[d] over the chunk, for the d-slice [d, d + 8) (masked when kTail).
template <int G, bool kTail>
inline void accumulate_slice(const float* p, int64_t p_stride, const float* v, int64_t n, int64_t head_dim, int64_t d,
                             float* acc, __m256i mask) {
  __m256 a[G];
  for (int g = 0; g < G; ++g) {
    a[g] = kTail ? _mm256_maskload_ps(acc + g * head_dim + d, mask) : _mm256_loadu_ps(acc + g * head_dim + d);
  }
  for (int64_t j = 0; j < n; ++j) {
    const float* vj = v + j * head_dim + d;
    const __m256 vv = kTail ? _mm256_maskload_ps(vj, mask) : _mm256_loadu_ps(vj);
    for (int g = 0; g < G; ++g) a[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + g * p_stride + j), vv, a[g]);
  }
  for (int g = 0; g < G; ++g) {
    if (kTail) {
      _mm256_maskstore_ps(acc + g * head_dim + d, mask, a[g]);
    } else {
      _mm256_storeu_ps(acc + g * head_dim + d, a[g]);
    }
  }
}

template <int G>
void accumulate(const float* p, int64_t p_stride, const float* v, int64_t n, int64_t head_dim, float* acc) {
  const int64_t d8 = head_dim & ~int64_t{7};
  for (int64_t d = 0; d < d8; d += 8) accumulate_slice<G, false>(p, p_stride, v, n, head_dim, d, acc, __m256i{});
  if (d8 < head_dim) accumulate_slice<G, true>(p, p_stride, v, n, head_dim, d8, acc, tail_mask(head_dim - d8));
}

using AccumulateFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*);
constexpr AccumulateFn kAccumulate[kAttentionMaxGroup + 1] = {nullptr,       accumulate<1>, accumulate<2>,
                                                              accumulate<3>, accumulate<4>, accumulate<5>,
                                                              accumulate<6>, accumulate<7>, accumulate<8>};

inline float exp1(float x) { return _mm256_cvtss_f32(avx2::exp(_mm256_set1_ps(x))); }

inline void convert_rows(const uint16_t* src, float* dst, int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  }
  for (; i < count; ++i) dst[i] = f16_to_f32(src[i]);
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
  alignas(32) float k[kChunkFloats];
  alignas(32) float v[kChunkFloats];
};
template <>
struct ChunkBuffers<float> {};

template <class KV>
void attention(const float* q, int64_t n_q, const KV* k, const KV* v, int64_t n_ctx, int64_t head_dim, float scale,
               float* out) noexcept {
  alignas(32) float acc[kAttentionMaxGroup * kAttentionMaxHeadDim];
  alignas(32) float p[kAttentionMaxGroup * kMaxChunk];  // scores, then softmax weights, of one chunk
  float max[kAttentionMaxGroup], sum[kAttentionMaxGroup];
  [[maybe_unused]] ChunkBuffers<KV> buffers;
  for (int64_t i = 0; i < n_q * head_dim; ++i) acc[i] = 0.0f;
  for (int64_t g = 0; g < n_q; ++g) max[g] = -__builtin_inff(), sum[g] = 0.0f;
  const int64_t chunk = chunk_keys(head_dim);
  const AccumulateFn accumulate_group = kAccumulate[n_q];

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
    for (int64_t j = 0; j < n; j += 8) {
      for (int64_t g = 0; g < n_q; ++g) {
        score_block(q + g * head_dim, kc + j * head_dim, n - j < 8 ? n - j : 8, head_dim, scale, p + g * kMaxChunk + j);
      }
    }
    // Online softmax: weights relative to the running max; rescale what came before.
    const int64_t n8 = (n + 7) & ~int64_t{7};  // score_block padded the last block with -inf
    for (int64_t g = 0; g < n_q; ++g) {
      float* pg = p + g * kMaxChunk;
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
    accumulate_group(p, kMaxChunk, vc, n, head_dim, acc);
  }
  for (int64_t g = 0; g < n_q; ++g) {
    const __m256 inv = _mm256_set1_ps(1.0f / sum[g]);
    for (int64_t d = 0; d < head_dim; d += 8) {
      const __m256i m = tail_mask(head_dim - d < 8 ? head_dim - d : 8);
      _mm256_maskstore_ps(out + g * head_dim + d, m, _mm256_mul_ps(_mm256_maskload_ps(acc + g * head_dim + d, m), inv));
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

void fill_ops_attention_avx2(OpsTable& t) noexcept {
  t.attention_f32 = attention_f32;
  t.attention_f16 = attention_f16;
  t.attention_q8_0 = attention_q8_0;
  fill_ops_attention_block_avx2(t);
}

}  // namespace qilin::cpu
