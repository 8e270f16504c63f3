// The Q8_0 kernel for many rows of x on levels without VNNI (avx2, avx512): int8
// weights and activations widened to int16 and multiplied with vpmaddwd.
//
// Why: without VNNI the kernels of qgemm_simd.h multiply int8 by int8 with the sign
// trick, per 32 multiply-adds vpsignb, vpmaddubsw and vpmaddwd on the two vector-multiply
// ports (plus a vpaddd, and vpabsb per weight vector): at most ~21 multiply-adds per
// cycle, ~100 GFLOP/s per thread here where f32 FMA peaks at ~107, so a Q8_0 prefill
// on an AVX2-only dispatch ran 5% slower than oneDNN's f32 GEMM (docs/performance.md).
// vpmaddwd on int16 pairs needs per 32 two µops on those ports and two vpaddd on any of
// three: ~24 per cycle, ~130 GFLOP/s per thread here (bench/bench_matmul_quant.cpp,
// matmul_quant_kernel/avx2*/q8_0). The products are exact (|w·x| ≤ 128·127, a block's
// sum below 2^20), so each block's integer sum equals ref's; the f32 part (the sum
// converted, times d_w·d_x, fused-added in block order) repeats the qgemm_simd.h
// kernels' operations one for one, so the results are the same bits as theirs.
//
// The price is widening: each group of 16 weight rows once per call into the thread's
// scratch (its "panel", shared by every row of x), and x once per chunk of groups.
// The loop: chunks of kMaddChunkGroups groups → their panels → tiles of kMaddRows rows
// of x widened into scratch (L1) → each group (two at 512 bits) against the tile over
// all of K. Changing the order (x widened 16-64 rows at a time, each panel meeting them
// from L1) or the chunk (2, 4, 16 groups) measured the same or slower: the vector ports
// are the limit, not the caches.
//
// Include from a kernels/cpu/<level>/ file after defining its vector type V (as for
// qgemm_simd.h, which lists what V supplies; this also needs V::madd, V::loadf);
// internal linkage throughout.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/qgemm_pack.h"
#include "kernels/cpu/qgemm_table.h"

namespace qilin::cpu {
namespace {

// A group's panel, per 32-element block: 16 pairs p of K, each 16 int32 lanes (one per
// weight row r) holding s16 w[r][2p] (low half) and w[r][2p + 1]; then the 16 rows' d as
// f32. A 256-bit load at (p, half h) holds rows 8h .. 8h + 7; a 512-bit load all 16.
constexpr int64_t kMaddPairsBytes = 16 * 64;
constexpr int64_t kMaddBlockBytes = kMaddPairsBytes + 16 * 4;
constexpr int64_t kMaddChunkGroups = 8;  // groups whose panels are built before the rows of x pass over them
constexpr int kMaddRows = 4;             // rows of x per tile (divides kXRowPadding: no tail tile)

// Scratch: the chunk's panels, the widened x tile (kMaddRows rows of k int16) and the
// f32 accumulators (kMaddRows x 32 floats: rows x 16 weight rows, or 2 groups at 512 bits x 16).
constexpr size_t kMaddScratchPerK = kMaddChunkGroups * kMaddBlockBytes / 32 + kMaddRows * 2;
constexpr size_t kMaddScratchFixed = kMaddRows * 32 * sizeof(float) + 64;

// The packed groups (qgemm_pack.h: per block 16 f16 d, then 8 quad vectors of
// u8 = int8 + 128, byte 4r + t = element 4j + t of row r) to their panels.
void build_q8_0_panel(const uint8_t* group, int64_t nb, uint8_t* panel) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  // Per 128-bit lane (4 rows x 4 elements): the rows' elements 0, 1, then their 2, 3.
  const __m256i split = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13,
                                         2, 3, 6, 7, 10, 11, 14, 15);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* unit = group + b * qpack_unit_bytes(QFormat::q8_0);
    uint8_t* out = panel + b * kMaddBlockBytes;
    auto* d = reinterpret_cast<float*>(out + kMaddPairsBytes);
    _mm256_storeu_ps(d, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(unit + qpack::kScales))));
    _mm256_storeu_ps(d + 8,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(unit + qpack::kScales + 16))));
    for (int j = 0; j < 8; ++j) {
      for (int h = 0; h < 2; ++h) {
        const __m256i q = _mm256_xor_si256(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(unit + qpack::kQ8Quants + kQuadBytes * j + 32 * h)),
            flip);
        // Rows 8h .. 8h + 7: elements 4j, 4j + 1 in the low 128 bits, 4j + 2, 4j + 3 in the high.
        const __m256i pairs = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(q, split), _MM_SHUFFLE(3, 1, 2, 0));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 * (2 * j) + 32 * h),
                            _mm256_cvtepi8_epi16(_mm256_castsi256_si128(pairs)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 * (2 * j + 1) + 32 * h),
                            _mm256_cvtepi8_epi16(_mm256_extracti128_si256(pairs, 1)));
      }
    }
  }
}

// kMaddRows (4) rows of quantized x (row stride k) to int16 pairs, interleaved by pair:
// dst[4p + r] holds row r's elements 2p, 2p + 1, so a tile's broadcasts share one pointer.
void widen_x_tile(const int8_t* q, int64_t k, int32_t* dst) {
  static_assert(kMaddRows == 4);
  for (int64_t e = 0; e < k; e += 16, dst += 32) {  // 8 pairs of each row
    __m256i r[4];
    for (int i = 0; i < 4; ++i)
      r[i] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i * k + e)));
    // 4 x 4 transposes of int32 in each 128-bit lane: u[j] holds pair j (low lane) and j + 4 of rows 0-3.
    const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    auto* out = reinterpret_cast<__m256i*>(dst);
    _mm256_storeu_si256(out + 0, _mm256_permute2x128_si256(u0, u1, 0x20));
    _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
    _mm256_storeu_si256(out + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
    _mm256_storeu_si256(out + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
  }
}

template <class V>
struct Q8MaddKernel {
  using I = typename V::I;
  using F = typename V::F;
  static constexpr int L = V::kLanes;

  // One vector of weight rows: its panel bytes (already at its half for L = 8) and output columns.
  struct WVec {
    const uint8_t* panel;
    int64_t n0;
    int valid;  // columns to store (0: padding rows only)
  };

  // y rows [i0, i0 + kMaddRows) x C weight vectors, over all of K.
  template <int C>
  static void tile(const QGemmArgs& a, const int32_t* xs, int64_t i0, const WVec (&w)[C], F* __restrict acc) {
    constexpr int R = kMaddRows;
    const int64_t nb = a.x.k / kXBlock;
    const float* xd = a.x.d + i0 * nb;
    const uint8_t* panel[C];
    for (int c = 0; c < C; ++c) panel[c] = w[c].panel;
    for (int i = 0; i < R * C; ++i) acc[i] = V::zerof();
    for (int64_t b = 0; b < nb; ++b) {
      const int32_t* xb = xs + 16 * R * b;
      I s[R][C];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) s[r][c] = V::zero();
#pragma GCC unroll 16
      for (int p = 0; p < 16; ++p) {
        I wp[C];
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) wp[c] = V::load(panel[c] + 64 * p);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const I xp = V::set1(xb[R * p + r]);
#pragma GCC unroll 4
          for (int c = 0; c < C; ++c) {
            s[r][c] = V::add32(s[r][c], V::madd(wp[c], xp));
            // Keeps the sum in order: GCC otherwise reassociates a block's 16 vpaddd into a
            // tree over the products, which keeps them all live and spills most of them.
            asm("" : "+v"(s[r][c]));
          }
        }
      }
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        const F d = V::loadf(reinterpret_cast<const float*>(panel[c] + kMaddPairsBytes));
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          F& y = acc[r * C + c];
          y = V::fmadd(V::cvt(s[r][c]), V::mul(d, V::set1f(xd[r * nb + b])), y);
        }
        panel[c] += kMaddBlockBytes;
      }
    }
    for (int r = 0; r < R && i0 + r < a.x.m; ++r)
      for (int c = 0; c < C; ++c)
        if (w[c].valid > 0) V::store(a.y + (i0 + r) * a.ldy + w[c].n0, acc[r * C + c], w[c].valid);
  }

  static WVec vec(const uint8_t* panel, int64_t n0, int64_t n_end) {
    const int64_t v = n_end - n0;
    return {panel, n0, static_cast<int>(v < L ? (v > 0 ? v : 0) : L)};
  }

  static void kernel(const QGemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
    const int64_t k = a.x.k, nb = k / kXBlock;
    auto* panels = static_cast<uint8_t*>(a.scratch);
    const int64_t panel_bytes = nb * kMaddBlockBytes;
    auto* xs = reinterpret_cast<int32_t*>(panels + kMaddChunkGroups * panel_bytes);
    F* acc = reinterpret_cast<F*>(xs + kMaddRows * k / 2);
    const auto* base = static_cast<const uint8_t*>(a.w);
    const int64_t group_bytes = qpack_group_bytes(QFormat::q8_0, k);
    const int64_t g_end = (n_end + kPackRows - 1) / kPackRows;
    for (int64_t g0 = n_begin / kPackRows; g0 < g_end; g0 += kMaddChunkGroups) {
      const int64_t groups = g_end - g0 < kMaddChunkGroups ? g_end - g0 : kMaddChunkGroups;
      for (int64_t g = 0; g < groups; ++g)
        build_q8_0_panel(base + (g0 + g) * group_bytes, nb, panels + g * panel_bytes);
      for (int64_t i0 = 0; i0 < a.x.m; i0 += kMaddRows) {
        widen_x_tile(a.x.q + i0 * k, k, xs);
        for (int64_t g = 0; g < groups; ++g) {
          const uint8_t* p = panels + g * panel_bytes;
          const int64_t n0 = (g0 + g) * kPackRows;
          if constexpr (L == 8) {
            const WVec w[2] = {vec(p, n0, n_end), vec(p + 32, n0 + 8, n_end)};
            tile<2>(a, xs, i0, w, acc);
          } else if (g + 1 < groups) {  // 512 bits: two groups per tile
            const WVec w[2] = {vec(p, n0, n_end), vec(p + panel_bytes, n0 + kPackRows, n_end)};
            tile<2>(a, xs, i0, w, acc);
            ++g;
          } else {
            const WVec w[1] = {vec(p, n0, n_end)};
            tile<1>(a, xs, i0, w, acc);
          }
        }
      }
    }
  }

  static QGemmKernel entry(const char* name) {
    QGemmKernel kernel{Q8MaddKernel::kernel, name, kPackRows, true};
    kernel.scratch_per_k = kMaddScratchPerK;
    kernel.scratch_fixed = kMaddScratchFixed;
    return kernel;
  }
};

}  // namespace
}  // namespace qilin::cpu
