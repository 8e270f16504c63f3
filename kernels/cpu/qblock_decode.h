// Reading one 32-element block out of a stored GGUF weight row, as the integers
// and scales of qgemm_table.h's model w = A·(q - offset) + B. Shared by the ref
// kernels and the packer (both compiled at baseline flags); internal linkage, so
// no ISA-flagged translation unit can lend the linker its copy.
#pragma once

#include <cstdint>

#include "core/half.h"
#include "core/quant_blocks.h"
#include "kernels/cpu/qgemm_table.h"

namespace qilin::cpu {
namespace {

// The j-th 6-bit scale and min of a Q4_K super-block (as core/quant.cpp unpacks them).
inline void q4_k_scale_min(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// The unsigned quants q of block b (elements 32b .. 32b+31) of a stored row.
inline void decode_quants(QFormat f, const void* row, int64_t b, uint8_t q[32]) {
  switch (f) {
    case QFormat::q8_0: {
      const BlockQ8_0& blk = static_cast<const BlockQ8_0*>(row)[b];
      for (int e = 0; e < 32; ++e) q[e] = static_cast<uint8_t>(blk.qs[e] + 128);
      return;
    }
    case QFormat::q4_0:
    case QFormat::q4_1: {
      const uint8_t* qs =
          f == QFormat::q4_0 ? static_cast<const BlockQ4_0*>(row)[b].qs : static_cast<const BlockQ4_1*>(row)[b].qs;
      for (int e = 0; e < 16; ++e) {
        q[e] = qs[e] & 0x0f;
        q[e + 16] = qs[e] >> 4;
      }
      return;
    }
    case QFormat::q4_k: {
      // Each 32 bytes hold 64 elements: the first 32 in the low nibbles.
      const BlockQ4_K& blk = static_cast<const BlockQ4_K*>(row)[b / 8];
      const int s = static_cast<int>(b % 8);
      const uint8_t* qs = blk.qs + 32 * (s / 2);
      for (int e = 0; e < 32; ++e) q[e] = (s % 2 == 0 ? qs[e] : qs[e] >> 4) & 0x0f;
      return;
    }
    case QFormat::q6_k: {
      // Per half of 128: element 32g + l takes ql[l + 32(g&1)] (low nibble for g < 2)
      // and bits 2g, 2g+1 of qh[l] (core/quant.cpp's dequantize_row_q6_k).
      const BlockQ6_K& blk = static_cast<const BlockQ6_K*>(row)[b / 8];
      const int e0 = static_cast<int>(b % 8) * 32;
      for (int e = 0; e < 32; ++e) {
        const int half = (e0 + e) / 128, g = (e0 + e) % 128 / 32, l = (e0 + e) % 32;
        const uint8_t ql = blk.ql[64 * half + l + 32 * (g & 1)];
        const int low = g < 2 ? ql & 0x0f : ql >> 4;
        const int high = (blk.qh[32 * half + l] >> (2 * g)) & 3;
        q[e] = static_cast<uint8_t>(low | (high << 4));
      }
      return;
    }
  }
}

// The offset subtracted from q in every format.
constexpr int quant_offset(QFormat f) {
  return f == QFormat::q8_0 ? 128 : f == QFormat::q4_0 ? 8 : f == QFormat::q6_k ? 32 : 0;
}

// A of elements 0-15 and 16-31 of block b (they differ only for q6_k) and B.
struct BlockScales {
  float a[2];
  float b;
};

inline BlockScales block_scales(QFormat f, const void* row, int64_t b) {
  switch (f) {
    case QFormat::q8_0: {
      const float d = f16_to_f32(static_cast<const BlockQ8_0*>(row)[b].d);
      return {{d, d}, 0.0f};
    }
    case QFormat::q4_0: {
      const float d = f16_to_f32(static_cast<const BlockQ4_0*>(row)[b].d);
      return {{d, d}, 0.0f};
    }
    case QFormat::q4_1: {
      const BlockQ4_1& blk = static_cast<const BlockQ4_1*>(row)[b];
      const float d = f16_to_f32(blk.d);
      return {{d, d}, f16_to_f32(blk.m)};
    }
    case QFormat::q4_k: {
      const BlockQ4_K& blk = static_cast<const BlockQ4_K*>(row)[b / 8];
      uint8_t sc, m;
      q4_k_scale_min(static_cast<int>(b % 8), blk.scales, &sc, &m);
      // Exact in f32: an f16 times a 6-bit integer has at most 17 significant bits.
      const float a = f16_to_f32(blk.d) * static_cast<float>(sc);
      return {{a, a}, -(f16_to_f32(blk.dmin) * static_cast<float>(m))};
    }
    case QFormat::q6_k: {
      const BlockQ6_K& blk = static_cast<const BlockQ6_K*>(row)[b / 8];
      const float d = f16_to_f32(blk.d);
      const int j = static_cast<int>(b % 8) * 2;  // sub-blocks of 16
      // Exact too: 11 + 8 significant bits.
      return {{d * static_cast<float>(blk.scales[j]), d * static_cast<float>(blk.scales[j + 1])}, 0.0f};
    }
  }
  return {{0, 0}, 0};
}

}  // namespace
}  // namespace qilin::cpu
