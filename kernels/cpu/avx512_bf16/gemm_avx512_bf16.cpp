// Matmul kernels at the avx512_bf16 level: bf16 weights multiplied with
// vdpbf16ps, which takes pairs of bf16 along K from both operands and adds
// both products into one f32 lane: 32 multiply-adds per instruction, twice an
// f32 FMA. The activations must then be bf16 too: the dispatcher rounds x once
// per call (round_to_bf16 below), which costs accuracy (2^-8 relative per
// element of x, see tests/test_matmul.cpp) but not speed. Whether a kernel of
// this level or the widening one of the avx512 level serves bf16 weights is
// measured (docs/performance.md).
//
// f32 and f16 weights keep the avx512 kernels.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/gemm_blocking.h"
#include "kernels/cpu/gemm_table.h"

// GCC 12's AVX-512 headers make "undefined" vectors as `__m512i __Y = __Y;`, which
// -Wuninitialized reports inside inlined intrinsics: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace qilin::cpu {
namespace {

inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const __m512 abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 half = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
  return _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
}

inline __m512bh load_bf16(const uint16_t* p) { return reinterpret_cast<__m512bh>(_mm512_loadu_si512(p)); }
inline __m512bh load_bf16(const uint16_t* p, __mmask32 m) {
  return reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(m, p));
}

// One tile (kernels/cpu/gemm_blocking.h) over bf16 x (args.x_bf16) and bf16 w.
template <int MB, int R>
struct DotTile {
  static void run(const GemmArgs& a, int64_t i0, int64_t n0, int64_t k0, int64_t k1, bool accumulate) {
    const uint16_t* w[R];
    for (int r = 0; r < R; ++r) {
      w[r] = reinterpret_cast<const uint16_t*>(static_cast<const char*>(a.w) + (n0 + r) * a.w_stride);
    }
    const uint16_t* x[MB];
    for (int mb = 0; mb < MB; ++mb) x[mb] = a.x_bf16 + (i0 + mb) * a.ldx_bf16;

    __m512 acc[MB][R];
    for (int mb = 0; mb < MB; ++mb)
      for (int r = 0; r < R; ++r) acc[mb][r] = _mm512_setzero_ps();
    int64_t k = k0;
    for (; k + 32 <= k1; k += 32) {
      __m512bh xv[MB];
      for (int mb = 0; mb < MB; ++mb) xv[mb] = load_bf16(x[mb] + k);
      for (int r = 0; r < R; ++r) {
        const __m512bh wv = load_bf16(w[r] + k);
        for (int mb = 0; mb < MB; ++mb) acc[mb][r] = _mm512_dpbf16_ps(acc[mb][r], xv[mb], wv);
      }
    }
    if (k < k1) {
      const auto mask = static_cast<__mmask32>((1u << (k1 - k)) - 1);  // k1 - k < 32
      __m512bh xv[MB];
      for (int mb = 0; mb < MB; ++mb) xv[mb] = load_bf16(x[mb] + k, mask);
      for (int r = 0; r < R; ++r) {
        const __m512bh wv = load_bf16(w[r] + k, mask);
        for (int mb = 0; mb < MB; ++mb) acc[mb][r] = _mm512_dpbf16_ps(acc[mb][r], xv[mb], wv);
      }
    }
    for (int mb = 0; mb < MB; ++mb) {
      float* y = a.y + (i0 + mb) * a.ldy + n0;
      if constexpr (R % 4 == 0) {
        for (int r = 0; r < R; r += 4) {
          __m128 s = reduce4(acc[mb][r], acc[mb][r + 1], acc[mb][r + 2], acc[mb][r + 3]);
          if (accumulate) s = _mm_add_ps(s, _mm_loadu_ps(y + r));
          _mm_storeu_ps(y + r, s);
        }
      } else {
        for (int r = 0; r < R; ++r) {
          const float s = _mm512_reduce_add_ps(acc[mb][r]);
          y[r] = accumulate ? y[r] + s : s;
        }
      }
    }
  }
};

void gemv_bf16(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  if (a.m == 1) return blocked<DotTile, 1, 8>(a, n_begin, n_end, a.k, n_end - n_begin);
  blocked<DotTile, 4, 4>(a, n_begin, n_end, a.k, n_end - n_begin);
}

// K blocks of 1024 bf16 (2 KiB per row, as the f32 kernels' 512) keep the
// tile's slices in L1; N blocks of 128 rows (256 KiB) in L2.
void gemm_bf16(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  blocked<DotTile, 6, 4>(a, n_begin, n_end, 1024, 128);
}

// vcvtneps2bf16 rounds to nearest even like core/half.h's f32_to_bf16 (it
// treats denormal inputs as zero, as vdpbf16ps does with its operands anyway).
void round_to_bf16(const float* src, uint16_t* dst, int64_t n) noexcept {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256bh b = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), reinterpret_cast<__m256i>(b));
  }
  if (i < n) {
    const auto mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m256bh b = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + i));
    _mm256_mask_storeu_epi16(dst + i, mask, reinterpret_cast<__m256i>(b));
  }
}

}  // namespace

void fill_gemm_avx512_bf16(GemmTable& t) noexcept {
  t.gemv[2] = {gemv_bf16, true, "avx512_bf16 gemv bf16 (vdpbf16ps, x rounded to bf16)"};
  t.gemm[2] = {gemm_bf16, true, "avx512_bf16 gemm bf16 (vdpbf16ps, x rounded to bf16)"};
  t.round_to_bf16 = round_to_bf16;
}

}  // namespace qilin::cpu
