// 16-wide helpers of the AVX-512 non-matmul kernels: tail masks and exp / erf by
// polynomial approximation (the same polynomials as the AVX2 level).
//
// Included only by translation units compiled with the AVX-512 flags; everything
// is `static inline` so no AVX-512 code can leak into another TU through the linker.
#pragma once

#include <immintrin.h>

#include <cstdint>

// GCC 12 reports (maybe-)uninitialized values inside its own AVX-512 intrinsics
// (the _mm512_undefined_* pass-through operands, GCC bug 105593): false positives.
// Silenced for the rest of each including TU, which are only the AVX-512 ops files.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace qilin::cpu::avx512 {

// Lanes [0, n) set, for n in [0, 16].
static inline __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// 2^x: x = n + f with |f| <= 1/2, Cephes' exp2f polynomial for 2^f (relative error
// below 2 ulp) and scalef for the 2^n. Lanes below -126 give exactly 0 (so -inf gives
// 0 and no subnormal comes out); NaN stays NaN. For softmax weights in log2 units.
static inline __m512 exp2(__m512 x) {
  const __mmask16 kept = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_NLT_UQ);
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(kept, p, n);
}

// e^x. Cody-Waite reduction x = n ln2 + r (|r| <= ln2/2), Cephes' degree-6
// polynomial for e^r (relative error below 2 ulp), and scalef for p * 2^n, which
// underflows gracefully (subnormals, then 0 below -103.3: exp(-inf) = 0) and stays
// finite up to the clamp at 88.7. NaN stays NaN.
static inline __m512 exp(__m512 x) {
  // Constant first: min/max return the second operand when one is NaN.
  x = _mm512_min_ps(_mm512_set1_ps(88.7f), x);
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln2 split in two for an exact n*ln2_hi
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// x / (1 + e^-x).
static inline __m512 silu(__m512 x) {
  const __m512 e = exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

// GPT-2's GELU: 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3).
static inline __m512 gelu_tanh(__m512 x) {
  const __m512 x2 = _mm512_mul_ps(x, x);
  const __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(x2, x), _mm512_set1_ps(0.044715f), x);
  const __m512 minus_2u = _mm512_mul_ps(inner, _mm512_set1_ps(-2.0f * 0.7978845608028654f));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), exp(minus_2u)));
}

// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), with Abramowitz & Stegun 7.1.26:
// erfc(z) = t (a1 + t (a2 + ...)) e^(-z^2), t = 1 / (1 + p z), z >= 0, absolute
// error below 1.5e-7. For x < 0 the result is 0.5 x erfc(|z|) directly (no cancellation).
static inline __m512 gelu_erf(__m512 x) {
  const __m512 z = _mm512_abs_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.7071067811865476f)));
  const __m512 t =
      _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(z, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
  __m512 poly = _mm512_set1_ps(1.061405429f);
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-1.453152027f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(1.421413741f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-0.284496736f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(0.254829592f));
  const __m512 erfc =
      _mm512_mul_ps(_mm512_mul_ps(poly, t), exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z))));
  // 1 + erf(x/sqrt2) is 2 - erfc(z) for x >= 0 and erfc(z) for x < 0.
  const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 one_plus_erf = _mm512_mask_blend_ps(negative, _mm512_sub_ps(_mm512_set1_ps(2.0f), erfc), erfc);
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), one_plus_erf);
}

}  // namespace qilin::cpu::avx512
