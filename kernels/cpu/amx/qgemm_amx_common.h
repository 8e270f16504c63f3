// For the AMX quantized-matmul kernels (kernels/cpu/amx/qgemm_amx.cpp): the
// unpacking of one packed group (16 weight rows, qgemm_pack.h) into int8 quads
// (q - offset) with f32 per-block scales; the tile plumbing is amx_tiles.h.
// Include only from kernels/cpu/amx/; internal linkage throughout.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/amx/amx_tiles.h"
#include "kernels/cpu/qgemm_pack.h"
#include "kernels/cpu/qgemm_table.h"

namespace qilin::cpu {
namespace {

constexpr int kBlockBytes = 512;  // one 32-element block of a group as int8: 8 quads of 16 rows

// A group unpacked: per block, 8 int8 quads (q - offset), the scale A of quads 0-3
// and of quads 4-7 (they differ only for Q6_K) and the min B (0 unless Q4_1, Q4_K).
struct Unpacked {
  int8_t* quads;  // [block][8 quads][16 rows][4]
  float* scale;   // [block][2][16]
  float* min;     // [block][16]
};
constexpr size_t kUnpackedPerK = kBlockBytes / 32 + 3 * kTile * sizeof(float) / 32;  // bytes per element of K

// Carves an Unpacked for k elements from p (64-byte aligned); returns the end.
inline uint8_t* carve_unpacked(uint8_t* p, int64_t k, Unpacked* u) {
  const int64_t nb = k / 32;
  u->quads = reinterpret_cast<int8_t*>(p);
  u->scale = reinterpret_cast<float*>(p + nb * kBlockBytes);
  u->min = u->scale + nb * 2 * kTile;
  return p + nb * (kBlockBytes + 3 * kTile * sizeof(float));
}

inline __m512i nib_lo(__m512i p) { return _mm512_and_si512(p, _mm512_set1_epi8(0x0f)); }
inline __m512i nib_hi(__m512i p) { return _mm512_and_si512(_mm512_srli_epi16(p, 4), _mm512_set1_epi8(0x0f)); }
inline __m512 f16x16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 u8x16(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
inline __m512 i8x16(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// 4 nibble vectors (quad j low, j + 4 high) -> 8 int8 quads minus `offset`.
inline void unpack_nibbles(const uint8_t* q, int8_t offset, int8_t* dst) {
  const __m512i off = _mm512_set1_epi8(offset);
  for (int j = 0; j < 4; ++j) {
    const __m512i p = _mm512_loadu_si512(q + kQuadBytes * j);
    _mm512_storeu_si512(dst + kQuadBytes * j, _mm512_sub_epi8(nib_lo(p), off));
    _mm512_storeu_si512(dst + kQuadBytes * (j + 4), _mm512_sub_epi8(nib_hi(p), off));
  }
}

inline void put_scales(const Unpacked& u, int64_t b, __m512 lo, __m512 hi, __m512 min) {
  _mm512_storeu_ps(u.scale + b * 2 * kTile, lo);
  _mm512_storeu_ps(u.scale + b * 2 * kTile + kTile, hi);
  _mm512_storeu_ps(u.min + b * kTile, min);
}

// Blocks [b0, b1) of one packed group into u (at their own block indices; for Q4_K
// and Q6_K, b0 and b1 are multiples of 8: whole super-blocks). Scales are exact in
// f32 (an f16 times a 6- or 8-bit integer); Q4_K's min is stored negated (w = A·q + B).
template <QFormat kF>
void unpack_group(const uint8_t* g, int64_t b0, int64_t b1, const Unpacked& u) {
  const __m512 zero = _mm512_setzero_ps();
  if constexpr (kF == QFormat::q4_k || kF == QFormat::q6_k) {
    for (int64_t sb = b0 / 8; sb < b1 / 8; ++sb) {
      const uint8_t* unit = g + sb * qpack_unit_bytes(kF);
      const __m512 d = f16x16(unit + qpack::kScales);
      for (int sub = 0; sub < 8; ++sub) {
        const int64_t b = sb * 8 + sub;
        int8_t* dst = u.quads + b * kBlockBytes;
        if constexpr (kF == QFormat::q4_k) {
          const __m512 a = _mm512_mul_ps(u8x16(unit + qpack::kQ4KSc + kPackRows * sub), d);
          const __m512 m = _mm512_mul_ps(u8x16(unit + qpack::kQ4KM + kPackRows * sub), f16x16(unit + qpack::kMins));
          put_scales(u, b, a, a, _mm512_sub_ps(zero, m));
          unpack_nibbles(unit + qpack::kQ4KQuants + 256 * sub, 0, dst);
        } else {
          const __m512 lo = _mm512_mul_ps(i8x16(unit + qpack::kQ6KSc + kPackRows * (2 * sub)), d);
          const __m512 hi = _mm512_mul_ps(i8x16(unit + qpack::kQ6KSc + kPackRows * (2 * sub + 1)), d);
          put_scales(u, b, lo, hi, zero);
          const uint8_t* blk = unit + qpack::kQ6KBlocks + qpack::kQ6KBlockBytes * sub;
          const __m512i m30 = _mm512_set1_epi8(0x30), off = _mm512_set1_epi8(32);
          for (int j = 0; j < 4; ++j) {
            const __m512i p = _mm512_loadu_si512(blk + kQuadBytes * j);
            const __m512i h = _mm512_loadu_si512(blk + kQuadBytes * (4 + j / 2));
            // Quad j's high bits at bits 0-1 (j even) or 4-5 (j odd) of h, quad j + 4's two above.
            const __m512i hl = j % 2 == 0 ? _mm512_slli_epi16(h, 4) : h;
            const __m512i hh = j % 2 == 0 ? _mm512_slli_epi16(h, 2) : _mm512_srli_epi16(h, 2);
            const __m512i ql = _mm512_or_si512(nib_lo(p), _mm512_and_si512(hl, m30));
            const __m512i qh = _mm512_or_si512(nib_hi(p), _mm512_and_si512(hh, m30));
            _mm512_storeu_si512(dst + kQuadBytes * j, _mm512_sub_epi8(ql, off));
            _mm512_storeu_si512(dst + kQuadBytes * (j + 4), _mm512_sub_epi8(qh, off));
          }
        }
      }
    }
    return;
  }
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* unit = g + b * qpack_unit_bytes(kF);
    const __m512 d = f16x16(unit + qpack::kScales);
    int8_t* dst = u.quads + b * kBlockBytes;
    if constexpr (kF == QFormat::q8_0) {
      put_scales(u, b, d, d, zero);
      for (int j = 0; j < 8; ++j) {  // u8 = int8 + 128 back to int8
        const __m512i p = _mm512_loadu_si512(unit + qpack::kQ8Quants + kQuadBytes * j);
        _mm512_storeu_si512(dst + kQuadBytes * j, _mm512_xor_si512(p, _mm512_set1_epi8(static_cast<char>(0x80))));
      }
    } else if constexpr (kF == QFormat::q4_0) {
      put_scales(u, b, d, d, zero);
      unpack_nibbles(unit + qpack::kQ4_0Quants, 8, dst);
    } else {
      put_scales(u, b, d, d, f16x16(unit + qpack::kMins));
      unpack_nibbles(unit + qpack::kQ4_1Quants, 0, dst);
    }
  }
}

}  // namespace
}  // namespace qilin::cpu
