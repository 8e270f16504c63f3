// Matmul kernels at the avx512 level (the GEMM for many rows is in
// gemm_packed_avx512.cpp): 16 floats per vector, f16/bf16 weights
// widened to f32 in registers (exact), products accumulated in f32 with FMA.
//
// Dot-product form: each weight row and each x row is contiguous along K, so a
// tile of MB x-rows by R weight-rows keeps MB·R vector accumulators and loads
// MB + R vectors per 16 steps of K; at the end each accumulator is summed
// across its lanes (four at a time, reduce4). No packing of W is needed, which
// keeps the decode path a pure stream of the stored (often mmapped) weight.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/gemm_blocking.h"
#include "kernels/cpu/gemm_table.h"

// GCC 12's AVX-512 headers make "undefined" vectors as `__m512i __Y = __Y;`, which
// -Wmaybe-uninitialized reports inside inlined intrinsics: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace qilin::cpu {
namespace {

using W = GemmWeight;

template <W kW>
struct WeightLoad;
template <>
struct WeightLoad<W::f32> {
  using T = float;
  static __m512 full(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 part(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
template <>
struct WeightLoad<W::f16> {
  using T = uint16_t;
  static __m512 full(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 part(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};
template <>
struct WeightLoad<W::bf16> {
  using T = uint16_t;
  static __m512 widen(__m256i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)); }
  static __m512 full(const uint16_t* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 part(const uint16_t* p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
};

// The lane sums of four vectors, as one 4-float vector {Σa, Σb, Σc, Σd}.
inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const __m512 abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 half = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
  return _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
}

// The decode GEMV (gemv_one_row) asks for the weight this far ahead of its one
// sequential stream: without it a DRAM-resident weight streamed at ~75% of the
// read probe; 2-3 KiB ahead measured best (SmolLM2 f16 tg 77 -> 85 t/s from 512 B;
// 4 KiB slower again).
constexpr int64_t kOneRowPrefetchBytes = 3072;

// One tile of the dot-product kernel (see kernels/cpu/gemm_blocking.h).
template <W kW>
struct Tiles {
  template <int MB, int R>
  struct Tile {
    static void run(const GemmArgs& a, int64_t i0, int64_t n0, int64_t k0, int64_t k1, bool accumulate) {
      using T = typename WeightLoad<kW>::T;
      const T* w[R];
      for (int r = 0; r < R; ++r) {
        w[r] = reinterpret_cast<const T*>(static_cast<const char*>(a.w) + (n0 + r) * a.w_stride);
      }
      const float* x[MB];
      for (int mb = 0; mb < MB; ++mb) x[mb] = a.x + (i0 + mb) * a.ldx;

      __m512 acc[MB][R];
      for (int mb = 0; mb < MB; ++mb)
        for (int r = 0; r < R; ++r) acc[mb][r] = _mm512_setzero_ps();
      int64_t k = k0;
      for (; k + 16 <= k1; k += 16) {
        __m512 xv[MB];
        for (int mb = 0; mb < MB; ++mb) xv[mb] = _mm512_loadu_ps(x[mb] + k);
        for (int r = 0; r < R; ++r) {
          const __m512 wv = WeightLoad<kW>::full(w[r] + k);
          for (int mb = 0; mb < MB; ++mb) acc[mb][r] = _mm512_fmadd_ps(xv[mb], wv, acc[mb][r]);
        }
      }
      if (k < k1) {
        const auto mask = static_cast<__mmask16>((1u << (k1 - k)) - 1);
        __m512 xv[MB];
        for (int mb = 0; mb < MB; ++mb) xv[mb] = _mm512_maskz_loadu_ps(mask, x[mb] + k);
        for (int r = 0; r < R; ++r) {
          const __m512 wv = WeightLoad<kW>::part(w[r] + k, mask);
          for (int mb = 0; mb < MB; ++mb) acc[mb][r] = _mm512_fmadd_ps(xv[mb], wv, acc[mb][r]);
        }
      }
      store(a, i0, n0, acc, accumulate);
    }

    static void store(const GemmArgs& a, int64_t i0, int64_t n0, __m512 (&acc)[MB][R], bool accumulate) {
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
};

// One row of x (decode): the weight rows one after another, each with four
// accumulators, so a thread reads its range of W as one sequential stream (rows are
// contiguous). Interleaving 8 rows instead (8 streams of ~2 KB for Qwen2.5's K=896)
// left the hardware prefetchers restarting at every row block: Qwen2.5-0.5B f16 tg
// 21.5 -> 26.9 t/s (69% -> 89% of the DRAM read probe), SmolLM2 69 -> 85.
template <W kW>
void gemv_one_row(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  using T = typename WeightLoad<kW>::T;
  const float* x = a.x;
  const int64_t k1 = a.k;
  for (int64_t n = n_begin; n < n_end; ++n) {
    const T* w = reinterpret_cast<const T*>(static_cast<const char*>(a.w) + n * a.w_stride);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t k = 0;
    for (; k + 64 <= k1; k += 64) {
      for (size_t line = 0; line < 64 * sizeof(T); line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(w + k) + kOneRowPrefetchBytes + line, _MM_HINT_T0);
      }
      for (int u = 0; u < 4; ++u) {
        acc[u] = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 16 * u), WeightLoad<kW>::full(w + k + 16 * u), acc[u]);
      }
    }
    for (; k + 16 <= k1; k += 16) {
      acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), WeightLoad<kW>::full(w + k), acc[0]);
    }
    if (k < k1) {
      const auto mask = static_cast<__mmask16>((1u << (k1 - k)) - 1);
      acc[1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, x + k), WeightLoad<kW>::part(w + k, mask), acc[1]);
    }
    a.y[n] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  }
}

// Few rows: stream each weight row once per group of x rows, the whole K at once.
// One row (decode): 8 weight rows at a time, 8 independent accumulators; more
// rows: 6x4 tiles (24 accumulators), so up to 12 rows stream W at most twice.
// Many rows go to the packed GEMM (gemm_packed_avx512.cpp).
template <W kW>
void gemv(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  if (a.m == 1) return gemv_one_row<kW>(a, n_begin, n_end);
  blocked<Tiles<kW>::template Tile, 6, 4>(a, n_begin, n_end, a.k, n_end - n_begin);
}

// f32 -> bf16, round to nearest even, NaN kept quiet (as core/half.h's f32_to_bf16).
__m256i round_bf16_16(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  __m512i out = _mm512_srli_epi32(rounded, 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  out = _mm512_mask_or_epi32(out, nan, _mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(out);
}

void round_to_bf16(const float* src, uint16_t* dst, int64_t n) noexcept {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), round_bf16_16(_mm512_loadu_ps(src + i)));
  }
  if (i < n) {
    const auto mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(dst + i, mask, round_bf16_16(_mm512_maskz_loadu_ps(mask, src + i)));
  }
}

}  // namespace

void fill_gemm_avx512(GemmTable& t) noexcept {
  t.gemv[0] = {gemv<W::f32>, "avx512 gemv f32", 0, 8};
  t.gemv[1] = {gemv<W::f16>, "avx512 gemv f16", 0, 8};
  t.gemv[2] = {gemv<W::bf16>, "avx512 gemv bf16 (widened to f32)", 0, 8};
  t.gemv_max_m = 12;
  t.round_to_bf16 = round_to_bf16;
}

}  // namespace qilin::cpu
