// q8_0 KV-cache rows at the AVX-512 level: quantize on store (OpsTable::f32_row_to_q8_0)
// and dequantize a chunk of rows to f32 inside the attention kernels.
//
// Included only by translation units compiled with the AVX-512 flags; everything is
// `static inline` so no AVX-512 code can leak into another TU through the linker.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "core/half.h"
#include "core/quant_blocks.h"

namespace qilin::cpu::avx512 {

// dst[32 b + i] = d_b * qs_b[i] for n_blocks consecutive blocks: the f32 product is
// exact (an 11-bit scale times an 8-bit quant), so every level dequantizes alike.
static inline void dequantize_q8_0(const BlockQ8_0* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(src[b].d));
    const auto* qs = reinterpret_cast<const __m128i*>(src[b].qs);
    float* y = dst + b * kQK;
    _mm512_storeu_ps(y, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qs)))));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qs + 1)))));
  }
}

// The quantizer of OpsTable::f32_row_to_q8_0 (see there), bit for bit the ref level's:
// the same scalar scale arithmetic, one f32 multiply per element, nearest-even rounding
// and max/min clamps whose NaN rule (the second operand) is the ref's comparisons'.
static inline void quantize_q8_0(const float* src, BlockQ8_0* dst, int64_t n_blocks) {
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* x = src + b * kQK;
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const uint16_t d16 = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(d16);
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    auto quants = [&](__m512 v) {
      __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(v, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
      return _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(r));
    };
    dst[b].d = d16;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst[b].qs), quants(v0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst[b].qs + 16), quants(v1));
  }
}

}  // namespace qilin::cpu::avx512
