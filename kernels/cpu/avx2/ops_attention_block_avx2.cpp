// AVX2 blocked causal attention for prefill (OpsTable::attention_block_f32 /
// _f16 / _q8_0, kernels/cpu/ops_table.h).
//
// The scheme of the AVX-512 level (kernels/cpu/avx512/ops_attention_block_avx512.cpp)
// on 8 lanes and 16 registers: the block's scaled queries are transposed once so
// that query rows lie along the lanes; per chunk of keys and per column block of
// at most 16 rows, the scores are an outer-product microkernel (Jr keys x Rv
// vectors), the online softmax runs down the key axis with plain vector ops (the
// causal limit is a lane compare on diagonal chunks only), and the weighted values
// accumulate in place in the output rows (Rr rows x 2 vectors of head_dim). An
// f16 or q8_0 cache is converted chunk by chunk to f32 once for the whole block.
#include <immintrin.h>

#include <cstdint>

#include "core/half.h"
#include "kernels/cpu/avx2/kv_q8_0_avx2.h"
#include "kernels/cpu/avx2/ops_math_avx2.h"
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {
namespace {

using namespace avx2;

constexpr int64_t kMaxRows = 128;              // attention_block_max_rows() at most
constexpr int64_t kMaxChunk = 64;              // attention_block_chunk_keys() at most
constexpr int64_t kLanes = 16;                 // rows of one column block: 2 vectors
constexpr int64_t kScoreRows = kMaxChunk + 8;  // keys of a chunk, padded to the microkernel's Jr
static_assert(attention_block_max_rows(1) == kMaxRows && attention_block_chunk_keys(1) == kMaxChunk);

// 2^x for the weights (scores are kept in log2 units, log2(e) folded into the queries):
// x = n + f with |f| <= 1/2, Cephes' exp2f polynomial for 2^f (relative error below
// 2 ulp) and 2^n built in the exponent field. Lanes below -125 give exactly 0, so a
// masked score (-inf) weighs nothing and no subnormal weight reaches the FMAs; NaN
// stays NaN.
inline __m256 exp2_weights(__m256 x) {
  const __m256 kept = _mm256_cmp_ps(x, _mm256_set1_ps(-125.0f), _CMP_NLT_UQ);
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  // 2^n for n in [-125, 0]; the lanes that do not fit are the ones `kept` clears.
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(bits)), kept);
}

// s[j][0..8 Rv) = sum_d k_j[d] qt[d][..] for keys j in [0, n) of the chunk (k_j = k + j * head_dim);
// qt rows are qt_stride floats apart, s rows kLanes. With `causal`, key c0 + j scores -inf for rows
// whose position (row_pos) is below it. max[..] becomes the maximum of itself and the scores.
// Rows of s from n to the next multiple of Jr are written too (they repeat key n - 1, so they
// cannot raise the maximum) and never read. The loops over registers are unrolled early (the
// pragmas): otherwise GCC keeps a copy of every accumulator on the stack and stores it on each step.
template <int Rv, int Jr>
void scores(const float* qt, int64_t qt_stride, const float* k, int64_t n, int64_t head_dim, bool causal,
            const int32_t* row_pos, int64_t c0, float* s, float* max) {
  __m256 m[Rv];
#pragma GCC unroll 4
  for (int r = 0; r < Rv; ++r) m[r] = _mm256_load_ps(max + 8 * r);
  for (int64_t j0 = 0; j0 < n; j0 += Jr) {
    const float* kr[Jr];
#pragma GCC unroll 16
    for (int jj = 0; jj < Jr; ++jj) kr[jj] = k + (j0 + jj < n ? j0 + jj : n - 1) * head_dim;
    __m256 acc[Jr][Rv];
#pragma GCC unroll 16
    for (int jj = 0; jj < Jr; ++jj) {
#pragma GCC unroll 4
      for (int r = 0; r < Rv; ++r) acc[jj][r] = _mm256_setzero_ps();
    }
    for (int64_t d = 0; d < head_dim; ++d) {
      __m256 qv[Rv];
#pragma GCC unroll 4
      for (int r = 0; r < Rv; ++r) qv[r] = _mm256_load_ps(qt + d * qt_stride + 8 * r);
#pragma GCC unroll 16
      for (int jj = 0; jj < Jr; ++jj) {
        const __m256 kb = _mm256_broadcast_ss(kr[jj] + d);
#pragma GCC unroll 4
        for (int r = 0; r < Rv; ++r) acc[jj][r] = _mm256_fmadd_ps(kb, qv[r], acc[jj][r]);
      }
    }
    if (causal) {
      const __m256 minus_inf = _mm256_set1_ps(-__builtin_inff());
#pragma GCC unroll 16
      for (int jj = 0; jj < Jr; ++jj) {
        // Row position >= key, as position > key - 1.
        const __m256i key_minus_1 = _mm256_set1_epi32(static_cast<int32_t>(c0 + j0 + jj - 1));
#pragma GCC unroll 4
        for (int r = 0; r < Rv; ++r) {
          const __m256i pos_r = _mm256_load_si256(reinterpret_cast<const __m256i*>(row_pos + 8 * r));
          const __m256 sees = _mm256_castsi256_ps(_mm256_cmpgt_epi32(pos_r, key_minus_1));
          acc[jj][r] = _mm256_blendv_ps(minus_inf, acc[jj][r], sees);
        }
      }
    }
#pragma GCC unroll 16
    for (int jj = 0; jj < Jr; ++jj) {
#pragma GCC unroll 4
      for (int r = 0; r < Rv; ++r) {
        _mm256_store_ps(s + (j0 + jj) * kLanes + 8 * r, acc[jj][r]);
        m[r] = _mm256_max_ps(m[r], acc[jj][r]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < Rv; ++r) _mm256_store_ps(max + 8 * r, m[r]);
}

// Online softmax of one chunk for the 8 rows of one vector (see the AVX-512 level): s[j]
// (causal limit applied) becomes 2^(s[j] - new_max); sum is rescaled and updated, max
// becomes new_max and corr gets 2^(old max - new max) (0 on the first chunk).
inline void softmax_chunk(float* s, int64_t n, const float* new_max, float* max, float* sum, float* corr) {
  // Every row sees key 0, so the new max is finite and s[j] - m is never NaN.
  const __m256 m = _mm256_load_ps(new_max);
  __m256 total0 = _mm256_setzero_ps(), total1 = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const __m256 p0 = exp2_weights(_mm256_sub_ps(_mm256_load_ps(s + j * kLanes), m));
    const __m256 p1 = exp2_weights(_mm256_sub_ps(_mm256_load_ps(s + (j + 1) * kLanes), m));
    _mm256_store_ps(s + j * kLanes, p0);
    _mm256_store_ps(s + (j + 1) * kLanes, p1);
    total0 = _mm256_add_ps(total0, p0);
    total1 = _mm256_add_ps(total1, p1);
  }
  if (j < n) {
    const __m256 p0 = exp2_weights(_mm256_sub_ps(_mm256_load_ps(s + j * kLanes), m));
    _mm256_store_ps(s + j * kLanes, p0);
    total0 = _mm256_add_ps(total0, p0);
  }
  const __m256 c = exp2_weights(_mm256_sub_ps(_mm256_load_ps(max), m));
  _mm256_store_ps(corr, c);
  _mm256_store_ps(max, m);
  _mm256_store_ps(sum, _mm256_fmadd_ps(_mm256_load_ps(sum), c, _mm256_add_ps(total0, total1)));
}

// o[r][d..] = o[r][d..] * corr[r] + sum_j p[j][r] v_j[d..] for Rr rows and Dv 8-wide slices of
// head_dim from d, the last one masked by `last` when kTail; the old o is not read when `first`.
// The loops over registers here and in scores() are unrolled early (the pragmas):
// otherwise GCC keeps a copy of every accumulator on the stack and stores it on each step.
template <int Rr, int Dv, bool kTail>
void values(const float* p, const float* v, int64_t n, int64_t head_dim, int64_t d, float* const* o, const float* corr,
            bool first, __m256i last) {
  auto load = [&](const float* x, int slice) {
    return kTail && slice == Dv - 1 ? _mm256_maskload_ps(x, last) : _mm256_loadu_ps(x);
  };
  __m256 acc[Rr][Dv];
#pragma GCC unroll 8
  for (int r = 0; r < Rr; ++r) {
    const __m256 c = _mm256_set1_ps(corr[r]);
#pragma GCC unroll 4
    for (int x = 0; x < Dv; ++x) acc[r][x] = first ? _mm256_setzero_ps() : _mm256_mul_ps(load(o[r] + d + 8 * x, x), c);
  }
  for (int64_t j = 0; j < n; ++j) {
    __m256 vv[Dv];
#pragma GCC unroll 4
    for (int x = 0; x < Dv; ++x) vv[x] = load(v + j * head_dim + d + 8 * x, x);
#pragma GCC unroll 8
    for (int r = 0; r < Rr; ++r) {
      const __m256 pb = _mm256_broadcast_ss(p + j * kLanes + r);
#pragma GCC unroll 4
      for (int x = 0; x < Dv; ++x) acc[r][x] = _mm256_fmadd_ps(pb, vv[x], acc[r][x]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < Rr; ++r) {
#pragma GCC unroll 4
    for (int x = 0; x < Dv; ++x) {
      if (kTail && x == Dv - 1) {
        _mm256_maskstore_ps(o[r] + d + 8 * x, last, acc[r][x]);
      } else {
        _mm256_storeu_ps(o[r] + d + 8 * x, acc[r][x]);
      }
    }
  }
}

constexpr int kRowsPerStep = 6;  // Rr: 6 x 2 accumulators + 2 V vectors + a broadcast fit 16 registers
using ValuesFn = void (*)(const float*, const float*, int64_t, int64_t, int64_t, float* const*, const float*, bool,
                          __m256i);
// [dv - 1][tail]: one or two slices, the last one full or masked.
template <int Rr>
constexpr ValuesFn kValuesRow[4] = {values<Rr, 1, false>, values<Rr, 1, true>, values<Rr, 2, false>,
                                    values<Rr, 2, true>};
constexpr const ValuesFn* kValues[kRowsPerStep + 1] = {nullptr,       kValuesRow<1>, kValuesRow<2>, kValuesRow<3>,
                                                       kValuesRow<4>, kValuesRow<5>, kValuesRow<6>};

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
  alignas(32) float k[kAttentionBlockFloats];
  alignas(32) float v[kAttentionBlockFloats];
};
template <>
struct ChunkBuffers<float> {};

// Transposes an 8 x 8 tile in registers: rows[i][j] becomes rows[j][i].
inline void transpose8(__m256 (&rows)[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {  // u[4i + k], lane L: rows 4i..4i+3 of column 4L + k
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int k = 0; k < 4; ++k) {
    rows[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
    rows[k + 4] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
  }
}

template <class KV>
void attention_block(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const KV* k, const KV* v,
                     int64_t pos, int64_t head_dim, float scale, float* out) noexcept {
  alignas(32) float qt[kAttentionBlockFloats];  // [head_dim][rows_pad]: the scaled queries, transposed
  alignas(32) float s[kScoreRows * kLanes];     // scores, then weights, of one column block and chunk
  alignas(32) float max[kMaxRows], sum[kMaxRows], corr[kMaxRows];
  alignas(32) int32_t row_pos[kMaxRows];
  float* out_row[kMaxRows];  // output row of each query row (precomputed: divisions are slow)
  [[maybe_unused]] ChunkBuffers<KV> buffers;

  const int64_t rows = n_tokens * n_heads, rows_pad = (rows + 7) / 8 * 8;
  // Scores in log2 units: 2^(s log2 e) = e^s, so the weights need only exp2_weights.
  const __m256 q_scale = _mm256_set1_ps(scale * 1.44269504088896341f);
  for (int64_t r0 = 0; r0 < rows_pad; r0 += 8) {
    const float* qr[8];
    for (int64_t l = 0; l < 8; ++l) {
      const int64_t r = r0 + l < rows ? r0 + l : rows - 1;
      const int64_t offset = r / n_heads * token_stride + r % n_heads * head_dim;
      qr[l] = r0 + l < rows ? q + offset : nullptr;
      out_row[r0 + l] = out + offset;
      row_pos[r0 + l] = static_cast<int32_t>(pos + r / n_heads);  // padding rows act as the last row
      max[r0 + l] = -__builtin_inff(), sum[r0 + l] = 0.0f;
    }
    for (int64_t d = 0; d < head_dim; d += 8) {
      const int64_t cols = head_dim - d < 8 ? head_dim - d : 8;
      const __m256i m = tail_mask(cols);
      __m256 tile[8];
      for (int l = 0; l < 8; ++l) tile[l] = qr[l] ? _mm256_maskload_ps(qr[l] + d, m) : _mm256_setzero_ps();
      transpose8(tile);
      for (int64_t c = 0; c < cols; ++c) _mm256_store_ps(qt + (d + c) * rows_pad + r0, _mm256_mul_ps(tile[c], q_scale));
    }
  }

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
    // Column blocks of 16 rows (the last one 8 when rows_pad is an odd number of vectors).
    for (int64_t l0 = 0; l0 < rows_pad; l0 += kLanes) {
      const int64_t rv = rows_pad - l0 < kLanes ? 1 : 2;
      const int64_t l1 = l0 + 8 * rv < rows ? l0 + 8 * rv : rows;  // real rows [l0, l1)
      const int64_t last_pos = pos + (l1 - 1) / n_heads;
      if (c0 > last_pos) continue;
      const int64_t nb = last_pos - c0 + 1 < n ? last_pos - c0 + 1 : n;
      const bool causal = c0 + nb - 1 > pos + l0 / n_heads;  // some row sees fewer keys than nb

      alignas(32) float new_max[kLanes];
      for (int64_t x = 0; x < rv; ++x) _mm256_store_ps(new_max + 8 * x, _mm256_load_ps(max + l0 + 8 * x));
      if (rv == 1) {
        scores<1, 8>(qt + l0, rows_pad, kc, nb, head_dim, causal, row_pos + l0, c0, s, new_max);
      } else {
        scores<2, 4>(qt + l0, rows_pad, kc, nb, head_dim, causal, row_pos + l0, c0, s, new_max);
      }
      for (int64_t x = 0; x < rv; ++x) {
        const int64_t l = l0 + 8 * x;
        softmax_chunk(s + 8 * x, nb, new_max + 8 * x, max + l, sum + l, corr + l);
      }
      for (int64_t r0 = l0; r0 < l1; r0 += kRowsPerStep) {
        const int64_t rr = l1 - r0 < kRowsPerStep ? l1 - r0 : kRowsPerStep;
        const ValuesFn* fns = kValues[rr];
        for (int64_t d = 0; d < head_dim; d += 16) {
          const int64_t left = head_dim - d < 16 ? head_dim - d : 16;
          const int64_t dv = (left + 7) / 8, tail = left % 8 != 0 ? 1 : 0;
          fns[2 * (dv - 1) + tail](s + (r0 - l0), vc, nb, head_dim, d, out_row + r0, corr + r0, c0 == 0,
                                   tail_mask(left % 8));
        }
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* o = out_row[r];
    const __m256 inv = _mm256_set1_ps(1.0f / sum[r]);
    for (int64_t d = 0; d < head_dim; d += 8) {
      const __m256i m = tail_mask(head_dim - d < 8 ? head_dim - d : 8);
      _mm256_maskstore_ps(o + d, m, _mm256_mul_ps(_mm256_maskload_ps(o + d, m), inv));
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

void fill_ops_attention_block_avx2(OpsTable& t) noexcept {
  t.attention_block_f32 = attention_block_f32;
  t.attention_block_f16 = attention_block_f16;
  t.attention_block_q8_0 = attention_block_q8_0;
}

}  // namespace qilin::cpu
