// The 512-bit vector type of the quantized-matmul kernels (qgemm_simd.h) and the
// AVX-512 activation quantizer, shared by the avx512 level (kVnni false:
// vpmaddubsw) and the avx512_bf16 level (kVnni true: vpdpbusd). Include only
// from kernels/cpu/avx512*/; internal linkage throughout.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/qgemm_table.h"

// GCC 12's AVX-512 headers make "undefined" vectors as `__m512i __Y = __Y;`, which
// -Wmaybe-uninitialized reports inside inlined intrinsics: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace qilin::cpu {
namespace {

template <bool kVnniLevel>
struct V512 {
  using I = __m512i;
  using F = __m512;
  static constexpr int kLanes = 16;
  static constexpr bool kVnni = kVnniLevel;
  static constexpr int kMaxTileRows = 8;  // 8 int + 8 float accumulators of 32 registers
  static constexpr int kPairMaxRows = 4;  // two weight vectors: 2·4 · 2 int + 2·4 float accumulators

  static I load(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static I zero() { return _mm512_setzero_si512(); }
  static I set1(int32_t v) { return _mm512_set1_epi32(v); }
  static I bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
  }
  static I nib_lo(I v) { return _mm512_and_si512(v, _mm512_set1_epi8(0x0f)); }
  static I nib_hi(I v) { return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0f)); }
  static I nib_hi_in_place(I v) { return _mm512_and_si512(v, _mm512_set1_epi8(static_cast<char>(0xf0))); }
  template <int kBits>
  static I sra32(I v) {
    return _mm512_srai_epi32(v, kBits);
  }
  static I bits45(I v) { return _mm512_and_si512(v, _mm512_set1_epi8(0x30)); }
  template <int kBits>
  static I shl16(I v) {
    return _mm512_slli_epi16(v, kBits);
  }
  template <int kBits>
  static I shr16(I v) {
    return _mm512_srli_epi16(v, kBits);
  }
  static I or_(I a, I b) { return _mm512_or_si512(a, b); }
  static I add16(I a, I b) { return _mm512_add_epi16(a, b); }
  static I add32(I a, I b) { return _mm512_add_epi32(a, b); }
  static I maddubs(I u, I s) { return _mm512_maddubs_epi16(u, s); }
  static I madd1(I v) { return _mm512_madd_epi16(v, _mm512_set1_epi16(1)); }
  static I madd(I a, I b) { return _mm512_madd_epi16(a, b); }
  static I dpbusd(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }  // instantiated at kVnni only

  struct Signed {
    I abs;
    __mmask64 negative;
  };
  static Signed prep_signed(I w_u8) {
    const I w = _mm512_xor_si512(w_u8, _mm512_set1_epi8(static_cast<char>(0x80)));
    return {_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
  }
  static I apply_sign(I x, const Signed& w) { return _mm512_mask_sub_epi8(x, w.negative, _mm512_setzero_si512(), x); }

  static F cvt(I v) { return _mm512_cvtepi32_ps(v); }
  static F f16(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F u8f(const uint8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static F i8f(const uint8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static F loadf(const float* p) { return _mm512_loadu_ps(p); }
  static F zerof() { return _mm512_setzero_ps(); }
  static F set1f(float v) { return _mm512_set1_ps(v); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  static void store(float* y, F v, int valid) {
    if (valid == 16) return _mm512_storeu_ps(y, v);
    _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << valid) - 1), v);
  }
};

// 16 values of x·inv clipped to [-127, 127] (NaN to -127, as the ref level) and rounded to nearest even.
inline __m512i quantize16(__m512 v, __m512 inv) {
  __m512 s = _mm512_max_ps(_mm512_mul_ps(v, inv), _mm512_set1_ps(-127.0f));
  s = _mm512_min_ps(s, _mm512_set1_ps(127.0f));
  return _mm512_cvt_roundps_epi32(s, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

void quantize_x_avx512(const float* x, int64_t ldx, int64_t m, int64_t k, int8_t* q, float* d, float* ds,
                       int32_t* sums16) noexcept {
  const int64_t nb = k / kXBlock;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + i * ldx + b * kXBlock;
      const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
      const float scale = amax / 127.0f;
      const __m512 inv = _mm512_set1_ps(scale != 0.0f ? 1.0f / scale : 0.0f);
      const __m512i q0 = quantize16(v0, inv), q1 = quantize16(v1, inv);
      int8_t* qb = q + i * k + b * kXBlock;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qb), _mm512_cvtepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + 16), _mm512_cvtepi32_epi8(q1));
      const int32_t s0 = _mm512_reduce_add_epi32(q0), s1 = _mm512_reduce_add_epi32(q1);
      d[i * nb + b] = scale;
      ds[i * nb + b] = scale * static_cast<float>(s0 + s1);
      sums16[i * 2 * nb + 2 * b] = s0;
      sums16[i * 2 * nb + 2 * b + 1] = s1;
    }
  }
}

}  // namespace
}  // namespace qilin::cpu
