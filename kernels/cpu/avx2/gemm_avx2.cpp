// Matmul kernels at the avx2 level: 8 floats per vector, f16 (F16C) and bf16
// weights widened to f32 in registers (exact), FMA accumulation in f32.
//
// The same dot-product tiles as the avx512 level (see that file for the why),
// with 16 vector registers instead of 32: tiles are smaller, and K tails go
// through a zero-padded copy, as AVX2 has no 16-bit masked loads.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "core/half.h"
#include "kernels/cpu/gemm_blocking.h"
#include "kernels/cpu/gemm_table.h"

namespace qilin::cpu {
namespace {

using W = GemmWeight;

template <W kW>
struct WeightLoad;
template <>
struct WeightLoad<W::f32> {
  using T = float;
  static __m256 full(const float* p) { return _mm256_loadu_ps(p); }
};
template <>
struct WeightLoad<W::f16> {
  using T = uint16_t;
  static __m256 full(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};
template <>
struct WeightLoad<W::bf16> {
  using T = uint16_t;
  static __m256 full(const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
};

// {Σa, Σb, Σc, Σd} over the 8 lanes of each.
inline __m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

inline float reduce1(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Software prefetch distance of the decode GEMV, as at the avx512 level.
constexpr int64_t kOneRowPrefetchBytes = 3072;

// One row of x (decode): weight rows one after another, four accumulators each, so a
// thread reads its range of W as one sequential stream (as at the avx512 level, where
// it took a DRAM-resident f16 weight from 69% to 89% of the read probe).
template <W kW>
void gemv_one_row(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  using T = typename WeightLoad<kW>::T;
  const float* x = a.x;
  const int64_t k1 = a.k;
  for (int64_t n = n_begin; n < n_end; ++n) {
    const T* w = reinterpret_cast<const T*>(static_cast<const char*>(a.w) + n * a.w_stride);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t k = 0;
    for (; k + 32 <= k1; k += 32) {
      for (size_t line = 0; line < 32 * sizeof(T); line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(w + k) + kOneRowPrefetchBytes + line, _MM_HINT_T0);
      }
      for (int u = 0; u < 4; ++u) {
        acc[u] = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 8 * u), WeightLoad<kW>::full(w + k + 8 * u), acc[u]);
      }
    }
    for (; k + 8 <= k1; k += 8) {
      acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), WeightLoad<kW>::full(w + k), acc[0]);
    }
    if (k < k1) {  // fewer than 8 left: multiply zero-padded copies
      const auto rem = static_cast<size_t>(k1 - k);
      float xt[8] = {};
      T wt[8] = {};
      std::memcpy(xt, x + k, rem * sizeof(float));
      std::memcpy(wt, w + k, rem * sizeof(T));
      acc[1] = _mm256_fmadd_ps(_mm256_loadu_ps(xt), WeightLoad<kW>::full(wt), acc[1]);
    }
    a.y[n] = reduce1(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  }
}

template <W kW>
struct Tiles {
  template <int MB, int R>
  struct Tile {
    using T = typename WeightLoad<kW>::T;

    static void run(const GemmArgs& a, int64_t i0, int64_t n0, int64_t k0, int64_t k1, bool accumulate) {
      const T* w[R];
      for (int r = 0; r < R; ++r) {
        w[r] = reinterpret_cast<const T*>(static_cast<const char*>(a.w) + (n0 + r) * a.w_stride);
      }
      const float* x[MB];
      for (int mb = 0; mb < MB; ++mb) x[mb] = a.x + (i0 + mb) * a.ldx;

      __m256 acc[MB][R];
      for (int mb = 0; mb < MB; ++mb)
        for (int r = 0; r < R; ++r) acc[mb][r] = _mm256_setzero_ps();
      int64_t k = k0;
      for (; k + 8 <= k1; k += 8) {
        __m256 xv[MB];
        for (int mb = 0; mb < MB; ++mb) xv[mb] = _mm256_loadu_ps(x[mb] + k);
        for (int r = 0; r < R; ++r) {
          const __m256 wv = WeightLoad<kW>::full(w[r] + k);
          for (int mb = 0; mb < MB; ++mb) acc[mb][r] = _mm256_fmadd_ps(xv[mb], wv, acc[mb][r]);
        }
      }
      if (k < k1) {  // fewer than 8 left: multiply zero-padded copies
        const auto rem = static_cast<size_t>(k1 - k);
        __m256 xv[MB];
        for (int mb = 0; mb < MB; ++mb) {
          float xt[8] = {};
          std::memcpy(xt, x[mb] + k, rem * sizeof(float));
          xv[mb] = _mm256_loadu_ps(xt);
        }
        for (int r = 0; r < R; ++r) {
          T wt[8] = {};
          std::memcpy(wt, w[r] + k, rem * sizeof(T));
          const __m256 wv = WeightLoad<kW>::full(wt);
          for (int mb = 0; mb < MB; ++mb) acc[mb][r] = _mm256_fmadd_ps(xv[mb], wv, acc[mb][r]);
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
            const float s = reduce1(acc[mb][r]);
            y[r] = accumulate ? y[r] + s : s;
          }
        }
      }
    }
  };
};

template <W kW>
void gemv(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  if (a.m == 1) return gemv_one_row<kW>(a, n_begin, n_end);
  blocked<Tiles<kW>::template Tile, 2, 4>(a, n_begin, n_end, a.k, n_end - n_begin);
}

// 3x4 tiles for f32 (12 accumulators + 3 x + 1 w = all 16 registers); 2x4 for
// the widened types, which need a scratch register for the conversion.
// K blocks of 512 and N blocks of 128 rows, as at the avx512 level.
template <W kW>
void gemm(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  constexpr int kRowsOfX = kW == W::f32 ? 3 : 2;
  blocked<Tiles<kW>::template Tile, kRowsOfX, 4>(a, n_begin, n_end, 512, 128);
}

// f32 -> bf16, round to nearest even, NaN kept quiet (as core/half.h's f32_to_bf16).
void round_to_bf16(const float* src, uint16_t* dst, int64_t n) noexcept {
  const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), quiet = _mm256_set1_epi32(0x40);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i high = _mm256_srli_epi32(bits, 16);
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(bias, _mm256_and_si256(high, one))), 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    const __m256i out = _mm256_blendv_epi8(rounded, _mm256_or_si256(high, quiet), nan);
    // Pack the 8 low halves: packus works per 128-bit lane, then gather lanes 0 and 2.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(out, out), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_castsi256_si128(packed));
  }
  for (; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

}  // namespace

void fill_gemm_avx2(GemmTable& t) noexcept {
  t.gemv[0] = {gemv<W::f32>, "avx2 gemv f32", 0, 8};
  t.gemv[1] = {gemv<W::f16>, "avx2 gemv f16", 0, 8};
  t.gemv[2] = {gemv<W::bf16>, "avx2 gemv bf16 (widened to f32)", 0, 8};
  t.gemm[0] = {gemm<W::f32>, "avx2 gemm f32", 0, 8};
  t.gemm[1] = {gemm<W::f16>, "avx2 gemm f16", 0, 8};
  t.gemm[2] = {gemm<W::bf16>, "avx2 gemm bf16 (widened to f32)", 0, 8};
  t.gemv_max_m = 4;
  t.round_to_bf16 = round_to_bf16;
}

}  // namespace qilin::cpu
