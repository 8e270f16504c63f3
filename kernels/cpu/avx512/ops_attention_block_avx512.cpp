// AVX-512 blocked causal attention for prefill (OpsTable::attention_block_f32 /
// _f16 / _q8_0, kernels/cpu/ops_table.h): "flash attention" on the CPU.
//
// A block of query rows (tokens x heads sharing one KV head) meets the keys one
// chunk at a time. The block's queries are transposed once, scale folded in, into
// qt[d][row], so that query rows lie along the vector lanes:
//   scores   s[j][rows] = sum_d k_j[d] * qt[d][rows]: an outer-product microkernel
//            (Jr keys x Rv vectors of rows in registers, one broadcast key element
//            and Rv loads per step), no horizontal reduction anywhere;
//   softmax  per lane, down the key axis: running max and sum are plain vector ops,
//            the causal limit is a lane compare, needed only on diagonal chunks;
//   values   out[row][d..] = out * correction + sum_j p[j][row] v_j[d..]: Rr rows x
//            Dv vectors of head_dim in registers, one V load feeds Rr FMAs.
// The rows are cut into column blocks of at most 4 vectors (64 rows); each stops at
// the last key its own rows can see, so the causal triangle costs little extra.
// An f16 or q8_0 cache is converted chunk by chunk into stack buffers once for the block.
// The output accumulates in place and is divided by the softmax sum at the end.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/avx512/kv_q8_0_avx512.h"
#include "kernels/cpu/avx512/ops_math_avx512.h"
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {
namespace {

using namespace avx512;

constexpr int64_t kMaxRows = 128;               // attention_block_max_rows() at most
constexpr int64_t kMaxChunk = 64;               // attention_block_chunk_keys() at most
constexpr int64_t kLanes = 64;                  // rows of one column block: 4 vectors
constexpr int64_t kScoreRows = kMaxChunk + 16;  // keys of a chunk, padded to the microkernel's Jr
static_assert(attention_block_max_rows(1) == kMaxRows && attention_block_chunk_keys(1) == kMaxChunk);

// The weights are 2^x (avx512::exp2): scores are kept in log2 units, log2(e) folded
// into the queries, and a masked score (-inf) weighs exactly nothing.

// s[j][0..16 Rv) = sum_d k_j[d] qt[d][..] for keys j in [0, n) of the chunk (k_j = k + j * head_dim);
// qt rows are qt_stride floats apart, s rows kLanes. With `causal`, key c0 + j scores -inf for rows
// whose position (row_pos) is below it. max[..] becomes the maximum of itself and the scores.
// Rows of s from n to the next multiple of Jr are written too (they repeat key n - 1, so they
// cannot raise the maximum) and never read.
template <int Rv, int Jr>
void scores(const float* qt, int64_t qt_stride, const float* k, int64_t n, int64_t head_dim, bool causal,
            const int32_t* row_pos, int64_t c0, float* s, float* max) {
  __m512 m[Rv];
#pragma GCC unroll 4
  for (int r = 0; r < Rv; ++r) m[r] = _mm512_load_ps(max + 16 * r);
  for (int64_t j0 = 0; j0 < n; j0 += Jr) {
    const float* kr[Jr];
#pragma GCC unroll 16
    for (int jj = 0; jj < Jr; ++jj) kr[jj] = k + (j0 + jj < n ? j0 + jj : n - 1) * head_dim;
    __m512 acc[Jr][Rv];
#pragma GCC unroll 16
    for (int jj = 0; jj < Jr; ++jj) {
#pragma GCC unroll 4
      for (int r = 0; r < Rv; ++r) acc[jj][r] = _mm512_setzero_ps();
    }
    for (int64_t d = 0; d < head_dim; ++d) {
      __m512 qv[Rv];
#pragma GCC unroll 4
      for (int r = 0; r < Rv; ++r) qv[r] = _mm512_load_ps(qt + d * qt_stride + 16 * r);
#pragma GCC unroll 16
      for (int jj = 0; jj < Jr; ++jj) {
        const __m512 kb = _mm512_set1_ps(kr[jj][d]);
#pragma GCC unroll 4
        for (int r = 0; r < Rv; ++r) acc[jj][r] = _mm512_fmadd_ps(kb, qv[r], acc[jj][r]);
      }
    }
    if (causal) {
      const __m512 minus_inf = _mm512_set1_ps(-__builtin_inff());
#pragma GCC unroll 16
      for (int jj = 0; jj < Jr; ++jj) {
        const __m512i key = _mm512_set1_epi32(static_cast<int32_t>(c0 + j0 + jj));
#pragma GCC unroll 4
        for (int r = 0; r < Rv; ++r) {
          const __mmask16 sees = _mm512_cmp_epi32_mask(_mm512_load_si512(row_pos + 16 * r), key, _MM_CMPINT_NLT);
          acc[jj][r] = _mm512_mask_blend_ps(sees, minus_inf, acc[jj][r]);
        }
      }
    }
#pragma GCC unroll 16
    for (int jj = 0; jj < Jr; ++jj) {
#pragma GCC unroll 4
      for (int r = 0; r < Rv; ++r) {
        _mm512_store_ps(s + (j0 + jj) * kLanes + 16 * r, acc[jj][r]);
        m[r] = _mm512_max_ps(m[r], acc[jj][r]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < Rv; ++r) _mm512_store_ps(max + 16 * r, m[r]);
}

// Jr keys per step: Jr x Rv accumulators (16 or 24) plus Rv query vectors stay in registers.
void scores_any(int64_t rv, const float* qt, int64_t qt_stride, const float* k, int64_t n, int64_t head_dim,
                bool causal, const int32_t* row_pos, int64_t c0, float* s, float* max) {
  switch (rv) {
    case 1:
      return scores<1, 16>(qt, qt_stride, k, n, head_dim, causal, row_pos, c0, s, max);
    case 2:
      return scores<2, 8>(qt, qt_stride, k, n, head_dim, causal, row_pos, c0, s, max);
    case 3:
      return scores<3, 8>(qt, qt_stride, k, n, head_dim, causal, row_pos, c0, s, max);
    default:
      return scores<4, 4>(qt, qt_stride, k, n, head_dim, causal, row_pos, c0, s, max);
  }
}

// Online softmax of one chunk for the 16 rows of one vector: s[j] (j in [0, n), rows kLanes
// apart, causal limit applied) becomes 2^(s[j] - new_max); the running sum is rescaled and
// updated, max becomes new_max, and corr gets 2^(old max - new max) for what was accumulated
// before (0 on the first chunk, where the old max is -inf).
inline void softmax_chunk(float* s, int64_t n, const float* new_max, float* max, float* sum, float* corr) {
  // Every row sees key 0, so the new max is finite and s[j] - m is never NaN.
  const __m512 m = _mm512_load_ps(new_max);
  __m512 total0 = _mm512_setzero_ps(), total1 = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const __m512 p0 = exp2(_mm512_sub_ps(_mm512_load_ps(s + j * kLanes), m));
    const __m512 p1 = exp2(_mm512_sub_ps(_mm512_load_ps(s + (j + 1) * kLanes), m));
    _mm512_store_ps(s + j * kLanes, p0);
    _mm512_store_ps(s + (j + 1) * kLanes, p1);
    total0 = _mm512_add_ps(total0, p0);
    total1 = _mm512_add_ps(total1, p1);
  }
  if (j < n) {
    const __m512 p0 = exp2(_mm512_sub_ps(_mm512_load_ps(s + j * kLanes), m));
    _mm512_store_ps(s + j * kLanes, p0);
    total0 = _mm512_add_ps(total0, p0);
  }
  const __m512 c = exp2(_mm512_sub_ps(_mm512_load_ps(max), m));
  _mm512_store_ps(corr, c);
  _mm512_store_ps(max, m);
  _mm512_store_ps(sum, _mm512_fmadd_ps(_mm512_load_ps(sum), c, _mm512_add_ps(total0, total1)));
}

// o[r][d..] = o[r][d..] * corr[r] + sum_j p[j][r] v_j[d..] for Rr rows (o[r] their output rows,
// p[j][r] = p[j * kLanes + r]) and Dv 16-wide slices of head_dim from d, the last one masked by
// `last`. On the first chunk (`first`) the old o is not read.
template <int Rr, int Dv>
void values(const float* p, const float* v, int64_t n, int64_t head_dim, int64_t d, float* const* o, const float* corr,
            bool first, __mmask16 last) {
  // The loops over registers are unrolled early (the pragmas): otherwise GCC keeps a
  // copy of every accumulator on the stack and stores it on each step.
  __m512 acc[Rr][Dv];
#pragma GCC unroll 8
  for (int r = 0; r < Rr; ++r) {
#pragma GCC unroll 4
    for (int x = 0; x < Dv; ++x) acc[r][x] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < n; ++j) {
    __m512 vv[Dv];
#pragma GCC unroll 4
    for (int x = 0; x < Dv; ++x)
      vv[x] = _mm512_maskz_loadu_ps(x == Dv - 1 ? last : 0xffff, v + j * head_dim + d + 16 * x);
#pragma GCC unroll 8
    for (int r = 0; r < Rr; ++r) {
      const __m512 pb = _mm512_set1_ps(p[j * kLanes + r]);
#pragma GCC unroll 4
      for (int x = 0; x < Dv; ++x) acc[r][x] = _mm512_fmadd_ps(pb, vv[x], acc[r][x]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < Rr; ++r) {
    const __m512 c = _mm512_set1_ps(corr[r]);
#pragma GCC unroll 4
    for (int x = 0; x < Dv; ++x) {
      const __mmask16 m = x == Dv - 1 ? last : 0xffff;
      const __m512 total =
          first ? acc[r][x] : _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, o[r] + d + 16 * x), c, acc[r][x]);
      _mm512_mask_storeu_ps(o[r] + d + 16 * x, m, total);
    }
  }
}

constexpr int kRowsPerStep = 6;  // Rr: 6 x 4 accumulators + 4 V vectors + a broadcast fit 32 registers
using ValuesFn = void (*)(const float*, const float*, int64_t, int64_t, int64_t, float* const*, const float*, bool,
                          __mmask16);
template <int Rr>
constexpr ValuesFn kValuesRow[5] = {nullptr, values<Rr, 1>, values<Rr, 2>, values<Rr, 3>, values<Rr, 4>};
constexpr const ValuesFn* kValues[kRowsPerStep + 1] = {nullptr,       kValuesRow<1>, kValuesRow<2>, kValuesRow<3>,
                                                       kValuesRow<4>, kValuesRow<5>, kValuesRow<6>};

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
  alignas(64) float k[kAttentionBlockFloats];
  alignas(64) float v[kAttentionBlockFloats];
};
template <>
struct ChunkBuffers<float> {};

// Transposes a 16 x 16 tile in registers: rows[i][j] becomes rows[j][i]. Pairs of rows
// interleave (unpack ps, then pd) into 4 x 4 blocks within each 128-bit lane, and two
// rounds of 128-bit lane shuffles put the blocks in place.
inline void transpose16(__m512 (&rows)[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // rows[4i + k], lane L: rows 4i..4i+3 of column 4L + k
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), e = _mm512_castps_pd(t[4 * i + 3]);
    rows[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    rows[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    rows[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
    rows[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
  }
  for (int k = 0; k < 4; ++k) {
    const __m512 u0 = _mm512_shuffle_f32x4(rows[k], rows[4 + k], 0x88);  // lanes 0, 2 of each
    const __m512 u1 = _mm512_shuffle_f32x4(rows[k], rows[4 + k], 0xDD);  // lanes 1, 3
    const __m512 u2 = _mm512_shuffle_f32x4(rows[8 + k], rows[12 + k], 0x88);
    const __m512 u3 = _mm512_shuffle_f32x4(rows[8 + k], rows[12 + k], 0xDD);
    t[k] = _mm512_shuffle_f32x4(u0, u2, 0x88);       // column k: lane 0 of each group of 4 rows
    t[k + 8] = _mm512_shuffle_f32x4(u0, u2, 0xDD);   // column 8 + k: lane 2
    t[k + 4] = _mm512_shuffle_f32x4(u1, u3, 0x88);   // column 4 + k: lane 1
    t[k + 12] = _mm512_shuffle_f32x4(u1, u3, 0xDD);  // column 12 + k: lane 3
  }
  for (int i = 0; i < 16; ++i) rows[i] = t[i];
}

template <class KV>
void attention_block(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const KV* k, const KV* v,
                     int64_t pos, int64_t head_dim, float scale, float* out) noexcept {
  alignas(64) float qt[kAttentionBlockFloats];  // [head_dim][rows_pad]: the scaled queries, transposed
  alignas(64) float s[kScoreRows * kLanes];     // scores, then weights, of one column block and chunk
  alignas(64) float max[kMaxRows], sum[kMaxRows], corr[kMaxRows];
  alignas(64) int32_t row_pos[kMaxRows];
  float* out_row[kMaxRows];  // output row of each query row (precomputed: divisions are slow)
  [[maybe_unused]] ChunkBuffers<KV> buffers;

  const int64_t rows = n_tokens * n_heads, rows_pad = (rows + 15) / 16 * 16;
  // Scores in log2 units: 2^(s log2 e) = e^s, so the weights need only exp2.
  const __m512 q_scale = _mm512_set1_ps(scale * 1.44269504088896341f);
  for (int64_t r0 = 0; r0 < rows_pad; r0 += 16) {
    const float* qr[16];
    for (int64_t l = 0; l < 16; ++l) {
      const int64_t r = r0 + l < rows ? r0 + l : rows - 1;
      const int64_t offset = r / n_heads * token_stride + r % n_heads * head_dim;
      qr[l] = r0 + l < rows ? q + offset : nullptr;
      out_row[r0 + l] = out + offset;
      row_pos[r0 + l] = static_cast<int32_t>(pos + r / n_heads);  // padding rows act as the last row
      max[r0 + l] = -__builtin_inff(), sum[r0 + l] = 0.0f;
    }
    for (int64_t d = 0; d < head_dim; d += 16) {
      const int64_t cols = head_dim - d < 16 ? head_dim - d : 16;
      const __mmask16 m = tail_mask(cols);
      __m512 tile[16];
      for (int l = 0; l < 16; ++l) tile[l] = qr[l] ? _mm512_maskz_loadu_ps(m, qr[l] + d) : _mm512_setzero_ps();
      transpose16(tile);
      for (int64_t c = 0; c < cols; ++c) _mm512_store_ps(qt + (d + c) * rows_pad + r0, _mm512_mul_ps(tile[c], q_scale));
    }
  }

  // Column blocks: rows_pad / 16 vectors in near-equal blocks of at most 4.
  const int64_t n_vectors = rows_pad / 16, n_blocks = (n_vectors + 3) / 4;
  const int64_t chunk = attention_block_chunk_keys(head_dim);
  const int64_t n_keys = pos + n_tokens;  // keys the last token sees
  for (int64_t c0 = 0; c0 < n_keys; c0 += chunk) {
    const int64_t n = n_keys - c0 < chunk ? n_keys - c0 : chunk;
    const float* kc;
    const float* vc;
    if constexpr (sizeof(KV) != sizeof(float)) {  // f16 or q8_0: converted once per chunk
      convert_rows(row_at(k, c0, head_dim), buffers.k, n * head_dim);
      convert_rows(row_at(v, c0, head_dim), buffers.v, n * head_dim);
      kc = buffers.k, vc = buffers.v;
    } else {
      kc = k + c0 * head_dim, vc = v + c0 * head_dim;
    }
    for (int64_t b = 0, v0 = 0; b < n_blocks; ++b) {
      const int64_t rv = (n_vectors - v0) / (n_blocks - b);  // vectors in this block
      const int64_t l0 = 16 * v0;
      const int64_t l1 = l0 + 16 * rv < rows ? l0 + 16 * rv : rows;  // real rows [l0, l1)
      v0 += rv;
      // Keys of this chunk that the block's rows see: up to the position of its last row.
      const int64_t last_pos = pos + (l1 - 1) / n_heads;
      if (c0 > last_pos) continue;
      const int64_t nb = last_pos - c0 + 1 < n ? last_pos - c0 + 1 : n;
      const bool causal = c0 + nb - 1 > pos + l0 / n_heads;  // some row sees fewer keys than nb

      alignas(64) float new_max[kLanes];
      for (int64_t x = 0; x < rv; ++x) _mm512_store_ps(new_max + 16 * x, _mm512_load_ps(max + l0 + 16 * x));
      scores_any(rv, qt + l0, rows_pad, kc, nb, head_dim, causal, row_pos + l0, c0, s, new_max);
      for (int64_t x = 0; x < rv; ++x) {
        const int64_t l = l0 + 16 * x;
        softmax_chunk(s + 16 * x, nb, new_max + 16 * x, max + l, sum + l, corr + l);
      }
      for (int64_t r0 = l0; r0 < l1; r0 += kRowsPerStep) {
        const int64_t rr = l1 - r0 < kRowsPerStep ? l1 - r0 : kRowsPerStep;
        const ValuesFn* fns = kValues[rr];
        for (int64_t d = 0; d < head_dim; d += 64) {
          const int64_t left = head_dim - d < 64 ? head_dim - d : 64;
          const int64_t dv = (left + 15) / 16;
          fns[dv](s + (r0 - l0), vc, nb, head_dim, d, out_row + r0, corr + r0, c0 == 0,
                  tail_mask(left - 16 * (dv - 1)));
        }
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* o = out_row[r];
    const __m512 inv = _mm512_set1_ps(1.0f / sum[r]);
    for (int64_t d = 0; d < head_dim; d += 16) {
      const __mmask16 m = tail_mask(head_dim - d < 16 ? head_dim - d : 16);
      _mm512_mask_storeu_ps(o + d, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, o + d), inv));
    }
  }
}

void attention_block_f32(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const float* k,
                         const float* v, int64_t pos, int64_t head_dim, float scale, float* out) noexcept {
  attention_block(q, n_tokens, n_heads, token_stride, k, v, pos, head_dim, scale, out);
}
void attention_block_f16(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const uint16_t* k,
                         const uint16_t* v, int64_t pos, int64_t head_dim, float scale, float* out) noexcept {
  attention_block(q, n_tokens, n_heads, token_stride, k, v, pos, head_dim, scale, out);
}
void attention_block_q8_0(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const BlockQ8_0* k,
                          const BlockQ8_0* v, int64_t pos, int64_t head_dim, float scale, float* out) noexcept {
  attention_block(q, n_tokens, n_heads, token_stride, k, v, pos, head_dim, scale, out);
}

}  // namespace

void fill_ops_attention_block_avx512(OpsTable& t) noexcept {
  t.attention_block_f32 = attention_block_f32;
  t.attention_block_f16 = attention_block_f16;
  t.attention_block_q8_0 = attention_block_q8_0;
}

}  // namespace qilin::cpu
