// The avx512 level's GEMM for many rows: W packed per block, outer products.
//
// Both operands of y = x·Wᵀ run along K in memory, so one of them has to be
// transposed for the output to be computed a vector at a time. For each block
// of kKc × kNc of W (its rows are y's columns), the block is widened to f32 and
// transposed into panels of 32 columns × kKc (a 32 KiB panel stays in L1,
// the whole 256 KiB block in L2), then a 12 × 32 micro-kernel keeps 24
// accumulators and per step of K loads two panel vectors and broadcasts 12
// elements of x: 24 FMAs per 14 loads, no horizontal sums. The packing costs
// about a quarter of a cycle per weight element (16 × 16 transposes), paid
// once per block for all rows of x: worth it from a few dozen rows on.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/gemm_table.h"

// GCC 12's AVX-512 headers make "undefined" vectors as `__m512i __Y = __Y;`, which
// -Wuninitialized reports inside inlined intrinsics: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace qilin::cpu {
namespace {

using W = GemmWeight;

constexpr int kMr = 12;       // rows of x per micro-kernel
constexpr int kNr = 32;       // columns of y (rows of W) per panel
constexpr int64_t kKc = 256;  // K per block
constexpr int64_t kNc = 256;  // columns of y per block: 8 panels, 256 KiB packed
constexpr size_t kScratchBytes = static_cast<size_t>(kKc * kNc) * sizeof(float);

// 16 weights of row `p` from element k, widened to f32; lanes at or past `n` are zero.
template <W kW>
inline __m512 load16(const void* p, int64_t k, __mmask16 mask) {
  if constexpr (kW == W::f32) {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(p) + k);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(p) + k);
    if constexpr (kW == W::f16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// Transposes 16 vectors of 16 floats in place: r[i][j] -> r[j][i].
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  __m512 u[16];
  for (int g = 0; g < 16; g += 4) {
    const __m512d a = _mm512_castps_pd(t[g]), b = _mm512_castps_pd(t[g + 1]);
    const __m512d c = _mm512_castps_pd(t[g + 2]), d = _mm512_castps_pd(t[g + 3]);
    u[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));      // columns 0, 4, 8, 12 of rows g..g+3
    u[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));  // columns 1, 5, 9, 13
    u[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));  // columns 2, 6, 10, 14
    u[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));  // columns 3, 7, 11, 15
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[c + 8] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
    r[c + 4] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[c + 12] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
  }
}

// Packs W[n0:n1, k0:k1] as panels of kNr columns: panel p, step k holds the
// kNr weights W[n0 + kNr·p + j, k0 + k] for j < kNr, contiguous (zero past n1).
// Panels are kc_pad = k1 - k0 rounded up to 16 steps long.
template <W kW>
void pack_block(const GemmArgs& a, int64_t n0, int64_t n1, int64_t k0, int64_t k1, float* out) {
  const int64_t kc_pad = (k1 - k0 + 15) / 16 * 16;
  for (int64_t p0 = n0; p0 < n1; p0 += kNr) {
    float* panel = out + (p0 - n0) / kNr * kc_pad * kNr;
    for (int64_t k = k0; k < k1; k += 16) {
      const auto mask = static_cast<__mmask16>(k1 - k >= 16 ? 0xffff : (1u << (k1 - k)) - 1);
      for (int half = 0; half < 2; ++half) {
        __m512 r[16];
        for (int j = 0; j < 16; ++j) {
          const int64_t n = p0 + half * 16 + j;
          const void* row = static_cast<const char*>(a.w) + n * a.w_stride;
          r[j] = n < n1 ? load16<kW>(row, k, mask) : _mm512_setzero_ps();
        }
        transpose16(r);
        for (int q = 0; q < 16; ++q) _mm512_storeu_ps(panel + (k - k0 + q) * kNr + half * 16, r[q]);
      }
    }
  }
}

// y[i0 + i, c0 + j] (+)= Σ_k x[i0 + i, k0 + k] · panel[k][j] for i < MR, j < cols.
template <int MR>
void micro(const GemmArgs& a, int64_t i0, int64_t k0, int64_t kc, const float* panel, int64_t c0, int64_t cols,
           bool accumulate) {
  __m512 c[MR][2];
  for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = _mm512_setzero_ps();
  const float* x = a.x + i0 * a.ldx + k0;
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(panel + k * kNr), b1 = _mm512_loadu_ps(panel + k * kNr + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 xi = _mm512_set1_ps(x[i * a.ldx + k]);
      c[i][0] = _mm512_fmadd_ps(xi, b0, c[i][0]);
      c[i][1] = _mm512_fmadd_ps(xi, b1, c[i][1]);
    }
  }
  const auto m0 = static_cast<__mmask16>(cols >= 16 ? 0xffff : (1u << cols) - 1);
  const auto m1 = static_cast<__mmask16>(cols >= 32 ? 0xffff : (cols > 16 ? (1u << (cols - 16)) - 1 : 0));
  for (int i = 0; i < MR; ++i) {
    float* y = a.y + (i0 + i) * a.ldy + c0;
    if (accumulate) {
      c[i][0] = _mm512_add_ps(c[i][0], _mm512_maskz_loadu_ps(m0, y));
      c[i][1] = _mm512_add_ps(c[i][1], _mm512_maskz_loadu_ps(m1, y + 16));
    }
    _mm512_mask_storeu_ps(y, m0, c[i][0]);
    _mm512_mask_storeu_ps(y + 16, m1, c[i][1]);
  }
}

// The last rows (< kMr) of x, with a micro-kernel exactly that tall.
template <int MR>
void micro_tail(int64_t rows, const GemmArgs& a, int64_t i0, int64_t k0, int64_t kc, const float* panel, int64_t c0,
                int64_t cols, bool accumulate) {
  if constexpr (MR > 0) {
    if (rows == MR) return micro<MR>(a, i0, k0, kc, panel, c0, cols, accumulate);
    micro_tail<MR - 1>(rows, a, i0, k0, kc, panel, c0, cols, accumulate);
  }
}

template <W kW>
void gemm_packed(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  float* packed = static_cast<float*>(a.scratch);
  for (int64_t k0 = 0; k0 < a.k; k0 += kKc) {
    const int64_t k1 = k0 + kKc < a.k ? k0 + kKc : a.k;
    const int64_t kc_pad = (k1 - k0 + 15) / 16 * 16;
    for (int64_t nb = n_begin; nb < n_end; nb += kNc) {
      const int64_t nb1 = nb + kNc < n_end ? nb + kNc : n_end;
      pack_block<kW>(a, nb, nb1, k0, k1, packed);
      int64_t i = 0;
      for (; i + kMr <= a.m; i += kMr) {
        for (int64_t p0 = nb; p0 < nb1; p0 += kNr) {
          const float* panel = packed + (p0 - nb) / kNr * kc_pad * kNr;
          micro<kMr>(a, i, k0, k1 - k0, panel, p0, nb1 - p0 < kNr ? nb1 - p0 : kNr, k0 > 0);
        }
      }
      if (i < a.m) {
        for (int64_t p0 = nb; p0 < nb1; p0 += kNr) {
          const float* panel = packed + (p0 - nb) / kNr * kc_pad * kNr;
          micro_tail<kMr - 1>(a.m - i, a, i, k0, k1 - k0, panel, p0, nb1 - p0 < kNr ? nb1 - p0 : kNr, k0 > 0);
        }
      }
    }
  }
}

}  // namespace

void fill_gemm_packed_avx512(GemmTable& t) noexcept {
  t.gemm[0] = {gemm_packed<W::f32>, "avx512 gemm f32 (packed, 12x32)", kScratchBytes, kNr};
  t.gemm[1] = {gemm_packed<W::f16>, "avx512 gemm f16 (packed, 12x32)", kScratchBytes, kNr};
  t.gemm[2] = {gemm_packed<W::bf16>, "avx512 gemm bf16 (packed, 12x32)", kScratchBytes, kNr};
}

}  // namespace qilin::cpu
