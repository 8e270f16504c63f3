// Quantized-matmul kernels at the avx2 level: the kernels of qgemm_simd.h on
// 256-bit vectors (8 weight rows, half a packed group) with vpmaddubsw +
// vpmaddwd, Q8_0 for many rows on int16 (qgemm_q8_0_madd.h), and the AVX2
// activation quantizer.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/qgemm_q8_0_madd.h"
#include "kernels/cpu/qgemm_simd.h"
#include "kernels/cpu/qgemm_table.h"

namespace qilin::cpu {
namespace {

struct V256 {
  using I = __m256i;
  using F = __m256;
  static constexpr int kLanes = 8;
  static constexpr bool kVnni = false;
  static constexpr int kMaxTileRows = 4;  // 4 int + 4 float accumulators of 16 registers
  static constexpr int kPairMaxRows = 2;  // two weight vectors (a group's halves): 2·2 int + 2·2 float

  static I load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static I zero() { return _mm256_setzero_si256(); }
  static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  static I bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
  }
  static I nib_lo(I v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0f)); }
  static I nib_hi(I v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f)); }
  static I bits45(I v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x30)); }
  template <int kBits>
  static I shl16(I v) {
    return _mm256_slli_epi16(v, kBits);
  }
  template <int kBits>
  static I shr16(I v) {
    return _mm256_srli_epi16(v, kBits);
  }
  static I or_(I a, I b) { return _mm256_or_si256(a, b); }
  static I add16(I a, I b) { return _mm256_add_epi16(a, b); }
  static I add32(I a, I b) { return _mm256_add_epi32(a, b); }
  static I maddubs(I u, I s) { return _mm256_maddubs_epi16(u, s); }
  static I madd1(I v) { return _mm256_madd_epi16(v, _mm256_set1_epi16(1)); }
  static I madd(I a, I b) { return _mm256_madd_epi16(a, b); }
  static I dpbusd(I, I, I);  // no VNNI at this level: never instantiated

  struct Signed {
    I abs;
    I sign;
  };
  static Signed prep_signed(I w_u8) {
    const I w = _mm256_xor_si256(w_u8, _mm256_set1_epi8(static_cast<char>(0x80)));
    return {_mm256_abs_epi8(w), w};
  }
  static I apply_sign(I x, const Signed& w) { return _mm256_sign_epi8(x, w.sign); }

  static F cvt(I v) { return _mm256_cvtepi32_ps(v); }
  static F f16(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static F u8f(const uint8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static F i8f(const uint8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static F loadf(const float* p) { return _mm256_loadu_ps(p); }
  static F zerof() { return _mm256_setzero_ps(); }
  static F set1f(float v) { return _mm256_set1_ps(v); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  static void store(float* y, F v, int valid) {
    if (valid == 8) return _mm256_storeu_ps(y, v);
    const I mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(y, mask, v);
  }
};

// 8 values of x·inv clipped to [-127, 127] (NaN to -127, as the ref level) and rounded to nearest even.
__m256i quantize8(__m256 v, __m256 inv) {
  __m256 s = _mm256_max_ps(_mm256_mul_ps(v, inv), _mm256_set1_ps(-127.0f));
  s = _mm256_min_ps(s, _mm256_set1_ps(127.0f));
  return _mm256_cvttps_epi32(_mm256_round_ps(s, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

void quantize_x_avx2(const float* x, int64_t ldx, int64_t m, int64_t k, int8_t* q, float* d, float* ds,
                     int32_t* sums16) noexcept {
  const int64_t nb = k / kXBlock;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + i * ldx + b * kXBlock;
      __m256 v[4];
      for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(xb + 8 * j);
      const __m256 a = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                                     _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
      const float amax = hmax(a);
      const float scale = amax / 127.0f;
      const __m256 inv = _mm256_set1_ps(scale != 0.0f ? 1.0f / scale : 0.0f);
      __m256i qi[4];
      for (int j = 0; j < 4; ++j) qi[j] = quantize8(v[j], inv);
      // Saturating packs interleave 128-bit lanes; the permutation restores element order.
      const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
      const __m256i ordered = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i * k + b * kXBlock), ordered);
      const int32_t s0 = hsum(_mm256_add_epi32(qi[0], qi[1])), s1 = hsum(_mm256_add_epi32(qi[2], qi[3]));
      d[i * nb + b] = scale;
      ds[i * nb + b] = scale * static_cast<float>(s0 + s1);
      sums16[i * 2 * nb + 2 * b] = s0;
      sums16[i * 2 * nb + 2 * b + 1] = s1;
    }
  }
}

}  // namespace

void fill_qgemm_avx2(QGemmTable& t) noexcept {
  static constexpr const char* kNames[kQFormatCount] = {"avx2 q8_0 (vpmaddubsw, sign trick)", "avx2 q4_0 (vpmaddubsw)",
                                                        "avx2 q4_1 (vpmaddubsw)", "avx2 q4_k (vpmaddubsw)",
                                                        "avx2 q6_k (vpmaddubsw)"};
  QKernels<V256>::fill(t, kNames);
  constexpr int kQ8 = static_cast<int>(QFormat::q8_0);
  t.large[kQ8] = Q8MaddKernel<V256>::entry("avx2 q8_0 (vpmaddwd on int16, many rows)");
  // From 16 rows the int16 kernel is ahead despite widening the weight per call
  // (matmul_quant_kernel/avx2*/q8_0 in bench/bench_matmul_quant.cpp: 1 thread, 576x1536,
  // M=8 ~94 vs ~105 GFLOP/s, M=16 ~111 vs ~105, M=512 ~129 vs ~95).
  t.large_min_m[kQ8] = 16;
  t.quantize_x = quantize_x_avx2;
}

}  // namespace qilin::cpu
