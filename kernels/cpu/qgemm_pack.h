// The interleaved layout the SIMD quantized-matmul kernels read, built once per
// weight (MatmulWeight::prepare or the first call) from the stored GGUF rows.
//
// Rows are taken 16 at a time ("a group"; the last one padded with zero rows).
// A group is a sequence of units along K: one per 32-element block for q8_0,
// q4_0 and q4_1, one per 256-element super-block for q4_k and q6_k. In a unit,
// quants come as "quad vectors" of 64 bytes: byte 4r + t is element 4j + t of
// row r (j the quad, r < 16), so a 512-bit vector times the 4 x values of quad j
// broadcast gives the 16 rows' partial dot products in its 16 lanes; an AVX2
// kernel reads each quad vector as two halves of 8 rows. Nibble formats store
// two quads per vector, quad j in the low nibbles and quad j + 4 in the high ones.
//
// Unit layouts (bytes; "x16" = one entry per row of the group):
//   q8_0  d f16 x16 (32) | 8 quad vectors of u8 = int8 + 128 (512)                  = 544 = 16 · 34
//   q4_0  d f16 x16 (32) | 4 nibble vectors (256)                                   = 288 = 16 · 18
//   q4_1  d f16 x16 (32) | m f16 x16 (32) | 4 nibble vectors (256)                  = 320 = 16 · 20
//   q4_k  d f16 x16 | dmin f16 x16 | sc u8 [8 sub-blocks][16] | m u8 [8][16]
//         | per 32-element sub-block: 4 nibble vectors                              = 2368 (16 · 144 + 64)
//   q6_k  d f16 x16 | sc i8 [16 sub-blocks][16]
//         | per 32-element block: 4 nibble vectors (low 4 bits) and 2 vectors H0, H1
//           of high 2-bit pairs: H0 bits 0-1 quad 0, 2-3 quad 4, 4-5 quad 1, 6-7 quad 5;
//           H1 the same for quads 2, 6, 3, 7                                        = 3360 = 16 · 210
// Sizes equal the stored bytes, except q4_k's unpacked 6-bit scales.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/qgemm_table.h"

namespace qilin::cpu {

inline constexpr int kPackRows = 16;
inline constexpr int kQuadBytes = 64;  // one quad vector: 16 rows x 4 elements

// Byte offsets inside a unit.
namespace qpack {
inline constexpr int kScales = 0;       // d (f16 x16) of every format
inline constexpr int kMins = 32;        // q4_1's m, q4_k's dmin (f16 x16)
inline constexpr int kQ8Quants = 32;    // q8_0: 8 quad vectors
inline constexpr int kQ4_0Quants = 32;  // q4_0: 4 nibble vectors
inline constexpr int kQ4_1Quants = 64;  // q4_1: 4 nibble vectors
inline constexpr int kQ4KSc = 64;       // q4_k: sc [8][16]
inline constexpr int kQ4KM = 192;       // q4_k: m [8][16]
inline constexpr int kQ4KQuants = 320;  // q4_k: 8 x 256 bytes of nibble vectors
inline constexpr int kQ6KSc = 32;       // q6_k: sc [16][16]
inline constexpr int kQ6KBlocks = 288;  // q6_k: 8 x 384 bytes (4 nibble vectors, H0, H1)
inline constexpr int kQ6KBlockBytes = 384;
}  // namespace qpack

// Elements per unit and bytes per unit (of a whole group of 16 rows).
constexpr int64_t qpack_unit_elements(QFormat f) noexcept {
  return f == QFormat::q4_k || f == QFormat::q6_k ? 256 : 32;
}
constexpr int64_t qpack_unit_bytes(QFormat f) noexcept {
  switch (f) {
    case QFormat::q8_0:
      return 544;
    case QFormat::q4_0:
      return 288;
    case QFormat::q4_1:
      return 320;
    case QFormat::q4_k:
      return 2368;
    case QFormat::q6_k:
      return 3360;
  }
  return 0;
}

// Bytes of one group of 16 rows of k elements, and of the packed form of n rows.
constexpr int64_t qpack_group_bytes(QFormat f, int64_t k) noexcept {
  return k / qpack_unit_elements(f) * qpack_unit_bytes(f);
}
constexpr size_t qpack_bytes(QFormat f, int64_t n, int64_t k) noexcept {
  return static_cast<size_t>((n + kPackRows - 1) / kPackRows * qpack_group_bytes(f, k));
}

// Packs rows [group_begin*16, group_end*16) ∩ [0, n) of the stored weight (row stride
// w_stride bytes) into dst, which points at the packed form's start.
void qpack_groups(QFormat f, const void* w, int64_t w_stride, int64_t n, int64_t k, int64_t group_begin,
                  int64_t group_end, void* dst) noexcept;

}  // namespace qilin::cpu
