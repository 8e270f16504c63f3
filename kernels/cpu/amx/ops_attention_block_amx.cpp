// Blocked causal attention for prefill on AMX-BF16 tiles (OpsTable::attention_block_bf16_*,
// kernels/cpu/ops_table.h): the scheme of the AVX-512 kernel (a block of query rows
// meets the keys one chunk at a time, online softmax), with both products on TDPBF16PS:
//   scores  S = Q K^T: A tiles are the block's queries, scale and log2(e) folded in,
//           rounded to bf16 once per call ([rows][head_dim], read as they lie); B tiles
//           are the chunk's keys rounded to bf16 and transposed into pairs along head_dim;
//   softmax per query row in f32 along the chunk's keys (S rows as the C tiles stored
//           them): running max and sum, the causal limit a per-row count of keys;
//           the weights P are rounded to bf16, and the sum adds the rounded weights,
//           so the output is a weighted average with exactly the weights multiplied;
//   values  O += P V: A tiles are P's rows, B tiles the chunk's values rounded to bf16
//           with pairs of keys interleaved; O lives in an f32 buffer that each chunk
//           loads into C tiles, after rescaling the rows whose maximum moved.
// Each chunk goes through the three steps two row tiles at a time, so their scores and
// weights stay in L1 and one pair's vector work overlaps the next pair's tile products.
// Tiles 0-3: C (2 row tiles x 2 key or head_dim tiles); 4, 5: A; 6, 7: B.
// All buffers are on the stack (about 130 KiB per call: the pool's threads have 8 MiB).
// head_dim must be a multiple of 32 (one tile product's K): the caller (kernels/ops.cpp)
// sends any other head_dim to the f32 kernels.
#include "kernels/cpu/amx/amx_tiles.h"
#include "kernels/cpu/avx512/ops_math_avx512.h"
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {
namespace {

constexpr int64_t kMaxRows = 128;       // attention_block_max_rows() at most
constexpr int64_t kRowKeys = 64;        // keys per chunk at most: the row length of S and P
constexpr int64_t kStep = 32;           // K of one tile product (bf16 per A-tile row)
constexpr int64_t kTileElements = 512;  // bf16 in one A or B tile
// bf16 of one converted K or V chunk: 64 keys x 128 or 32 x 512 at most.
constexpr int64_t kChunkElements = 16384;
static_assert(attention_block_max_rows(1) == kMaxRows);
static_assert(attention_block_max_rows(128) * 128 <= kAttentionBlockFloats);

// Keys per chunk: 64 up to head_dim 128, else 32 (kb and vb hold 16384 bf16). 128 keys at
// head_dim 64 (fewer O tile round trips per key) measured the same, within the noise.
inline int64_t chunk_keys(int64_t head_dim) { return head_dim <= 128 ? 64 : 32; }

// 2^x on the lanes of `lanes` (0 elsewhere), for the weights (scores in log2 units):
// x = n + f with |f| <= 1/2, a cubic for 2^f (least squares on the relative error at
// Chebyshev nodes: below 7.8e-5 relative, 2% of the bf16 rounding that follows) and scalef
// for 2^n. Lanes below -126 give exactly 0, so no subnormal weight reaches the tiles.
inline __m512 exp2_weights(__mmask16 lanes, __m512 x) {
  const __mmask16 kept = _mm512_mask_cmp_ps_mask(lanes, x, _mm512_set1_ps(-126.0f), _CMP_NLT_UQ);
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(5.508868380750935e-2f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.426040514594784e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.932762416819616e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.999289403695111e-1f));
  return _mm512_maskz_scalef_ps(kept, p, n);
}

inline __mmask16 first_lanes(int64_t count) {
  return count >= 16 ? static_cast<__mmask16>(0xffff)
                     : (count <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << count) - 1));
}

// 32 elements of a cache row from element d0 (a multiple of 32) as two f32 vectors.
inline void load32(const float* row, int64_t d0, __m512& lo, __m512& hi) {
  lo = _mm512_loadu_ps(row + d0);
  hi = _mm512_loadu_ps(row + d0 + 16);
}
inline void load32(const uint16_t* row, int64_t d0, __m512& lo, __m512& hi) {
  const __m512i h = _mm512_loadu_si512(row + d0);
  lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
  hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
}
inline void load32(const BlockQ8_0* row, int64_t d0, __m512& lo, __m512& hi) {
  const BlockQ8_0& b = row[d0 / kQK];  // d_b * q exactly in f32 (an 11-bit scale times an 8-bit quant)
  const __m512 d = _mm512_set1_ps(_cvtsh_ss(b.d));
  const auto* qs = reinterpret_cast<const __m128i*>(b.qs);
  lo = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qs))));
  hi = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qs + 1))));
}

// Cache row j: head_dim elements, or head_dim / 32 q8_0 blocks.
template <class KV>
inline const KV* row_at(const KV* base, int64_t j, int64_t head_dim) {
  if constexpr (sizeof(KV) == sizeof(BlockQ8_0)) {
    return base + j * (head_dim / kQK);
  } else {
    return base + j * head_dim;
  }
}

// 32 bf16 (nearest even): lo's 16 in words 0..15, hi's in 16..31.
inline __m512i to_bf16(__m512 lo, __m512 hi) { return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)); }

// Keys [0, n) of a chunk (n_pad: n rounded up to 32; keys from n on are 0) as B tiles of
// S = Q K^T: tile (s, t) at kb + (s * n_pad / 16 + t) * 512 holds, in row p, elements
// 32 s + 2 p and + 1 of keys 16 t .. 16 t + 15.
template <class KV>
void convert_keys(const KV* k, int64_t n, int64_t n_pad, int64_t head_dim, uint16_t* kb) {
  const int64_t key_tiles = n_pad / 16;
  for (int64_t t = 0; t < key_tiles; ++t) {
    for (int64_t s = 0; s < head_dim / kStep; ++s) {
      __m512i r[16];
      for (int64_t j = 0; j < 16; ++j) {
        if (16 * t + j < n) {
          __m512 lo, hi;
          load32(row_at(k, 16 * t + j, head_dim), kStep * s, lo, hi);
          r[j] = to_bf16(lo, hi);
        } else {
          r[j] = _mm512_setzero_si512();
        }
      }
      transpose_16x16(r);
      uint16_t* dst = kb + (s * key_tiles + t) * kTileElements;
      for (int p = 0; p < 16; ++p) _mm512_store_si512(dst + 32 * p, r[p]);
    }
  }
}

// Word 2i takes word i of a register, word 2i + 1 word 16 + i: interleaves two 16-bf16 rows.
alignas(64) constexpr uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                  8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

// Values [0, n) of a chunk as B tiles of O += P V: tile (u, c) at vb + (u * head_dim / 16 + c) * 512
// holds, in row p, keys 32 u + 2 p and + 1 interleaved, for elements 16 c .. 16 c + 15. Keys from
// n to n_pad are 0 (never the cache's rows past the causal limit: 0 x NaN would poison P V).
template <class KV>
void convert_values(const KV* v, int64_t n, int64_t n_pad, int64_t head_dim, uint16_t* vb) {
  const __m512i interleave = _mm512_load_si512(kInterleave);
  const int64_t d_tiles = head_dim / 16;
  for (int64_t pair = 0; pair < n_pad / 2; ++pair) {
    const int64_t a = 2 * pair, b = a + 1;
    uint16_t* dst = vb + pair / 16 * d_tiles * kTileElements + pair % 16 * 32;
    for (int64_t d0 = 0; d0 < head_dim; d0 += kStep) {
      __m512 a_lo = _mm512_setzero_ps(), a_hi = a_lo, b_lo = a_lo, b_hi = a_lo;
      if (a < n) load32(row_at(v, a, head_dim), d0, a_lo, a_hi);
      if (b < n) load32(row_at(v, b, head_dim), d0, b_lo, b_hi);
      _mm512_store_si512(dst + d0 / 16 * kTileElements, _mm512_permutexvar_epi16(interleave, to_bf16(a_lo, b_lo)));
      _mm512_store_si512(dst + (d0 / 16 + 1) * kTileElements,
                         _mm512_permutexvar_epi16(interleave, to_bf16(a_hi, b_hi)));
    }
  }
}

// Accumulator tiles 0, 1 (and 2, 3 for a second row tile) set to zero.
template <int kR>
inline void zero_accumulators() {
  _tile_zero(0);
  _tile_zero(1);
  if constexpr (kR == 2) {
    _tile_zero(2);
    _tile_zero(3);
  }
}

// One step of a kR x 2 tile product: tiles 0, 1 += the A tile at a times the B tiles at b and
// b + kTileElements (64-byte rows); with kR == 2 also tiles 2, 3 += the A tile at a + a_next.
template <int kR>
inline void dp_step(const uint16_t* a, int64_t a_stride, int64_t a_next, const uint16_t* b) {
  QILIN_TILE_LOAD(4, a, a_stride);
  QILIN_TILE_LOAD(6, b, 64);
  QILIN_TILE_LOAD(7, b + kTileElements, 64);
  _tile_dpbf16ps(0, 4, 6);
  _tile_dpbf16ps(1, 4, 7);
  if constexpr (kR == 2) {
    QILIN_TILE_LOAD(5, a + a_next, a_stride);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
}

// Scores of query rows [16 rt, 16 (rt + kR)) x keys [0, 16 key_tiles) into s (its rows 0 .. 16 kR,
// kRowKeys floats apart); qb rows are head_dim bf16 apart.
template <int kR>
void score_tiles(const uint16_t* qb, int64_t head_dim, const uint16_t* kb, int64_t key_tiles, int64_t rt, float* s) {
  const int64_t q_stride = head_dim * 2, s_stride = kRowKeys * 4;
  const uint16_t* q_rows = qb + rt * 16 * head_dim;
  float* s_rows = s;
  for (int64_t t = 0; t < key_tiles; t += 2) {
    zero_accumulators<kR>();
    for (int64_t st = 0; st < head_dim / kStep; ++st) {
      dp_step<kR>(q_rows + kStep * st, q_stride, 16 * head_dim, kb + (st * key_tiles + t) * kTileElements);
    }
    float* c = s_rows + 16 * t;
    QILIN_TILE_STORE(0, c, s_stride);
    QILIN_TILE_STORE(1, c + 16, s_stride);
    if constexpr (kR == 2) {
      QILIN_TILE_STORE(2, c + 16 * kRowKeys, s_stride);
      QILIN_TILE_STORE(3, c + 16 * kRowKeys + 16, s_stride);
    }
  }
}

// O rows [16 rt, 16 (rt + kR)) += P V over key_steps steps of 32 keys, P's rows 0 .. 16 kR holding
// their weights; O rows head_dim floats apart, P rows kRowKeys bf16. On the first chunk O is not read.
template <int kR>
void value_tiles(const uint16_t* p, const uint16_t* vb, int64_t key_steps, int64_t head_dim, int64_t rt, float* o,
                 bool first) {
  const int64_t o_stride = head_dim * 4, p_stride = kRowKeys * 2, d_tiles = head_dim / 16;
  const uint16_t* p_rows = p;
  for (int64_t c = 0; c < d_tiles; c += 2) {
    float* o0 = o + rt * 16 * head_dim + 16 * c;
    float* o1 = o0 + 16 * head_dim;
    if (first) {
      zero_accumulators<kR>();
    } else {
      QILIN_TILE_LOAD(0, o0, o_stride);
      QILIN_TILE_LOAD(1, o0 + 16, o_stride);
      if constexpr (kR == 2) {
        QILIN_TILE_LOAD(2, o1, o_stride);
        QILIN_TILE_LOAD(3, o1 + 16, o_stride);
      }
    }
    for (int64_t u = 0; u < key_steps; ++u) {
      dp_step<kR>(p_rows + kStep * u, p_stride, 16 * kRowKeys, vb + (u * d_tiles + c) * kTileElements);
    }
    QILIN_TILE_STORE(0, o0, o_stride);
    QILIN_TILE_STORE(1, o0 + 16, o_stride);
    if constexpr (kR == 2) {
      QILIN_TILE_STORE(2, o1, o_stride);
      QILIN_TILE_STORE(3, o1 + 16, o_stride);
    }
  }
}

// Sums of each of 16 vectors, as one vector (lane r: the sum of t[r]'s lanes): halves of
// pairs of vectors are added in four rounds (46 instructions where 16 reductions take ~130),
// leaving lane 4L + k with the sum of row {0, 8, 4, 12}[L] + {0, 2, 1, 3}[k]; a permutation
// (its own inverse) puts them in order.
alignas(64) constexpr int32_t kSumOrder[16] = {0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15};
inline __m512 row_sums(const __m512* t) {
  __m512 x[8], y[4], z[2];
  for (int i = 0; i < 8; ++i) {  // x[i]: 128-bit lanes 0-1 hold row i's halves summed, 2-3 row i + 8's
    x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(t[i], t[i + 8], 0x44), _mm512_shuffle_f32x4(t[i], t[i + 8], 0xee));
  }
  for (int i = 0; i < 4; ++i) {  // y[i]: lanes hold rows i, i + 8, i + 4, i + 12 (4 partial sums each)
    y[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x[i], x[i + 4], 0x88), _mm512_shuffle_f32x4(x[i], x[i + 4], 0xdd));
  }
  for (int i = 0; i < 2; ++i) {  // z[i]: each lane 2 partial sums of y[i]'s row there, then 2 of y[i + 2]'s
    const __m512d a = _mm512_castps_pd(y[i]), b = _mm512_castps_pd(y[i + 2]);
    z[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  // Lane 4L + k: rows of y[0], y[2], y[1], y[3] in lane L (k = 0..3).
  const __m512 w = _mm512_add_ps(_mm512_shuffle_ps(z[0], z[1], 0x88), _mm512_shuffle_ps(z[0], z[1], 0xdd));
  return _mm512_permutexvar_ps(_mm512_load_si512(kSumOrder), w);
}

// A row keeps its running maximum while the chunk's scores stay within this much of it
// (log2 units): its weights are then at most 2^8, and neither its sum nor its outputs need
// rescaling. The maximum is a factor common to all of a row's weights: any value that keeps
// 2^(s - max) in range gives the same average.
constexpr float kMaxLag = 8.0f;

// One row's weights: 2^(s[j] - m) for j < valid rounded to bf16 into p, 0 up to n_pad; returns
// the rounded weights summed per lane. kFull: valid == n_pad (no masks to compute).
template <bool kFull>
inline __m512 row_weights(const float* s, uint16_t* p, __m512 m, int64_t valid, int64_t n_pad) {
  __m512 total = _mm512_setzero_ps();
  for (int64_t j = 0; j < n_pad; j += 16) {
    const __mmask16 lanes = kFull ? static_cast<__mmask16>(0xffff) : first_lanes(valid - j);
    const __m512 w = exp2_weights(lanes, _mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, s + j), m));
    const __m256i wb = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(w));
    _mm256_store_si256(reinterpret_cast<__m256i*>(p + j), wb);
    total = _mm512_add_ps(total, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(wb), 16)));
  }
  return total;
}

// Online softmax of one chunk for the 16 rows from r0 (rows l of s and p): s[l][j] for the first
// valid[l] keys become bf16 weights 2^(s - max) in p[l] (0 up to n_pad); a row whose scores exceed its
// max by more than kMaxLag (or any row, on the first chunk) takes the chunk's max, and
// its sum and its row of o (not on the first chunk) are rescaled by 2^(old max - new max).
// The sums add the rounded weights: the output is an average with the weights multiplied.
void softmax_rows(const float* s, uint16_t* p, int64_t r0, const int64_t* valid, int64_t n_pad, float* max, float* sum,
                  float* o, int64_t head_dim, bool first) {
  alignas(64) float corr[16];
  bool moved = false;
  for (int64_t l = 0; l < 16; ++l) {
    const float* sr = s + l * kRowKeys;
    const __m512 minus_inf = _mm512_set1_ps(-__builtin_inff());
    __m512 m = minus_inf;
    for (int64_t j = 0; j < valid[l]; j += 16) {
      m = _mm512_max_ps(m, _mm512_mask_loadu_ps(minus_inf, first_lanes(valid[l] - j), sr + j));
    }
    corr[l] = max[r0 + l];  // the old max, for now
    if (first || _mm512_cmp_ps_mask(m, _mm512_set1_ps(max[r0 + l] + kMaxLag), _CMP_GT_OQ) != 0) {
      // Every row sees key 0 on the first chunk: the new maxima are finite.
      const float chunk_max = _mm512_reduce_max_ps(m);
      if (chunk_max > max[r0 + l]) max[r0 + l] = chunk_max, moved = true;
    }
  }
  // An old max of -inf (the first chunk) gives a correction of 0; an unchanged one exactly 1.
  // The accurate 2^x (2 ulp), not the weights' cubic: a correction scales everything a row
  // has accumulated, so its errors compound from chunk to chunk.
  if (moved) {
    const __m512 old_max = _mm512_load_ps(corr), new_max = _mm512_loadu_ps(max + r0);
    const __mmask16 same = _mm512_cmp_ps_mask(old_max, new_max, _CMP_EQ_OQ);
    _mm512_store_ps(corr,
                    _mm512_mask_blend_ps(same, avx512::exp2(_mm512_sub_ps(old_max, new_max)), _mm512_set1_ps(1.0f)));
  } else {
    _mm512_store_ps(corr, _mm512_set1_ps(1.0f));
  }
  __m512 totals[16];
  for (int64_t l = 0; l < 16; ++l) {
    const int64_t r = r0 + l;
    const float* sr = s + l * kRowKeys;
    uint16_t* pr = p + l * kRowKeys;
    const __m512 m = _mm512_set1_ps(max[r]);
    totals[l] =
        valid[l] == n_pad ? row_weights<true>(sr, pr, m, n_pad, n_pad) : row_weights<false>(sr, pr, m, valid[l], n_pad);
    if (!first && corr[l] != 1.0f) {
      const __m512 c = _mm512_set1_ps(corr[l]);
      float* orow = o + r * head_dim;
      for (int64_t d = 0; d < head_dim; d += 16) _mm512_store_ps(orow + d, _mm512_mul_ps(_mm512_load_ps(orow + d), c));
    }
  }
  _mm512_storeu_ps(sum + r0, _mm512_fmadd_ps(_mm512_loadu_ps(sum + r0), _mm512_load_ps(corr), row_sums(totals)));
}

template <class KV>
void attention_block(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const KV* k, const KV* v,
                     int64_t pos, int64_t head_dim, float scale, float* out) noexcept {
  alignas(64) uint16_t qb[kAttentionBlockFloats];  // [rows_pad][head_dim]: scaled queries, bf16
  alignas(64) float o[kAttentionBlockFloats];      // [rows_pad][head_dim]: unnormalized outputs
  alignas(64) float s[32 * kRowKeys];              // [32][kRowKeys]: scores of two row tiles and one chunk
  alignas(64) uint16_t p[32 * kRowKeys];           // [32][kRowKeys]: their bf16 weights
  alignas(64) uint16_t kb[kChunkElements], vb[kChunkElements];
  alignas(64) float max[kMaxRows], sum[kMaxRows];
  int64_t row_pos[kMaxRows];
  float* out_row[kMaxRows];

  const int64_t rows = n_tokens * n_heads, rows_pad = (rows + 15) / 16 * 16, row_tiles = rows_pad / 16;
  // Scores in log2 units: 2^(s log2 e) = e^s, so the weights need only exp2_weights.
  const __m512 q_scale = _mm512_set1_ps(scale * 1.44269504088896341f);
  for (int64_t r = 0; r < rows_pad; ++r) {
    const int64_t real = r < rows ? r : rows - 1;  // padding rows: zero queries at the last row's position
    const int64_t offset = real / n_heads * token_stride + real % n_heads * head_dim;
    out_row[r] = out + offset;
    row_pos[r] = pos + real / n_heads;
    max[r] = -__builtin_inff(), sum[r] = 0.0f;
    uint16_t* dst = qb + r * head_dim;
    for (int64_t d = 0; d < head_dim; d += kStep) {
      __m512i b = _mm512_setzero_si512();
      if (r < rows) {
        const float* src = q + offset + d;
        b = to_bf16(_mm512_mul_ps(_mm512_loadu_ps(src), q_scale), _mm512_mul_ps(_mm512_loadu_ps(src + 16), q_scale));
      }
      _mm512_store_si512(dst + d, b);
    }
  }

  configure_full_tiles();
  const int64_t chunk = chunk_keys(head_dim);
  const int64_t n_keys = pos + n_tokens;  // keys the last token sees
  for (int64_t c0 = 0; c0 < n_keys; c0 += chunk) {
    const int64_t n = n_keys - c0 < chunk ? n_keys - c0 : chunk;
    const int64_t n_pad = (n + kStep - 1) / kStep * kStep;
    convert_keys(row_at(k, c0, head_dim), n, n_pad, head_dim, kb);
    convert_values(row_at(v, c0, head_dim), n, n_pad, head_dim, vb);
    // Rows lie in order of position: the rows that see this chunk are the tiles from rt0 on.
    int64_t rt0 = 0;
    while (row_pos[16 * rt0 + 15] < c0) ++rt0;
    const bool first = c0 == 0;
    // Two row tiles at a time go through all three steps, so that their scores and weights
    // stay in L1 (and the vector work of one pair overlaps the tile products of the next).
    for (int64_t rt = rt0; rt < row_tiles; rt += 2) {
      const bool pair = rt + 2 <= row_tiles;
      if (pair) {
        score_tiles<2>(qb, head_dim, kb, n_pad / 16, rt, s);
      } else {
        score_tiles<1>(qb, head_dim, kb, n_pad / 16, rt, s);
      }
      for (int64_t x = 0; x < (pair ? 2 : 1); ++x) {
        const int64_t r0 = 16 * (rt + x);
        int64_t valid[16];
        for (int64_t l = 0; l < 16; ++l) {
          const int64_t seen = row_pos[r0 + l] - c0 + 1;
          valid[l] = seen < 0 ? 0 : (seen > n ? n : seen);
        }
        softmax_rows(s + 16 * x * kRowKeys, p + 16 * x * kRowKeys, r0, valid, n_pad, max, sum, o, head_dim, first);
      }
      if (pair) {
        value_tiles<2>(p, vb, n_pad / kStep, head_dim, rt, o, first);
      } else {
        value_tiles<1>(p, vb, n_pad / kStep, head_dim, rt, o, first);
      }
    }
  }
  _tile_release();

  for (int64_t r = 0; r < rows; ++r) {
    const __m512 inv = _mm512_set1_ps(1.0f / sum[r]);
    const float* src = o + r * head_dim;
    for (int64_t d = 0; d < head_dim; d += 16) {
      _mm512_storeu_ps(out_row[r] + d, _mm512_mul_ps(_mm512_load_ps(src + d), inv));
    }
  }
}

void attention_block_bf16_f32(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const float* k,
                              const float* v, int64_t pos, int64_t head_dim, float scale, float* out) noexcept {
  attention_block(q, n_tokens, n_heads, token_stride, k, v, pos, head_dim, scale, out);
}
void attention_block_bf16_f16(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride,
                              const uint16_t* k, const uint16_t* v, int64_t pos, int64_t head_dim, float scale,
                              float* out) noexcept {
  attention_block(q, n_tokens, n_heads, token_stride, k, v, pos, head_dim, scale, out);
}
void attention_block_bf16_q8_0(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride,
                               const BlockQ8_0* k, const BlockQ8_0* v, int64_t pos, int64_t head_dim, float scale,
                               float* out) noexcept {
  attention_block(q, n_tokens, n_heads, token_stride, k, v, pos, head_dim, scale, out);
}

}  // namespace

void fill_ops_attention_block_amx(OpsTable& t) noexcept {
  t.attention_block_bf16_f32 = attention_block_bf16_f32;
  t.attention_block_bf16_f16 = attention_block_bf16_f16;
  t.attention_block_bf16_q8_0 = attention_block_bf16_q8_0;
}

}  // namespace qilin::cpu
