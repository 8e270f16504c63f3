// q8_0 KV-cache rows at the AVX2 level: quantize on store (OpsTable::f32_row_to_q8_0)
// and dequantize a chunk of rows to f32 inside the attention kernels.
//
// Included only by translation units compiled with the AVX2 flags; everything is
// `static inline` so no AVX2 code can leak into another TU through the linker.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "core/half.h"
#include "core/quant_blocks.h"

namespace qilin::cpu::avx2 {

// dst[32 b + i] = d_b * qs_b[i] for n_blocks consecutive blocks: the f32 product is
// exact (an 11-bit scale times an 8-bit quant), so every level dequantizes alike.
static inline void dequantize_q8_0(const BlockQ8_0* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(src[b].d));
    const auto* qs = reinterpret_cast<const __m128i*>(src[b].qs);
    const __m128i lo = _mm_loadu_si128(qs), hi = _mm_loadu_si128(qs + 1);
    float* y = dst + b * kQK;
    _mm256_storeu_ps(y, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
  }
}

// The quantizer of OpsTable::f32_row_to_q8_0 (see there), bit for bit the ref level's:
// the same scalar scale arithmetic, one f32 multiply per element, nearest-even rounding
// and max/min clamps whose NaN rule (the second operand) is the ref's comparisons'.
static inline void quantize_q8_0(const float* src, BlockQ8_0* dst, int64_t n_blocks) {
  const __m256 sign = _mm256_set1_ps(-0.0f), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* x = src + b * kQK;
    __m256 v[4];
    for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(x + 8 * i);
    const __m256 amax8 = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                       _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const uint16_t d16 = f32_to_f16(_mm_cvtss_f32(m) / 127.0f);
    const float d = f16_to_f32(d16);
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) {
      __m256 r = _mm256_round_ps(_mm256_mul_ps(v[i], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
      q[i] = _mm256_cvttps_epi32(r);
    }
    // packs work within 128-bit lanes: bytes come out as groups of 4 in the order
    // 0 2 4 6 1 3 5 7 (of 8 groups), which the permute puts back in place.
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    dst[b].d = d16;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst[b].qs), _mm256_permutevar8x32_epi32(bytes, order));
  }
}

}  // namespace qilin::cpu::avx2
