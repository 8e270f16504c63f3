// Memory layouts of the GGUF block formats, byte-identical to ggml's
// (ggml-common.h). Scales are IEEE f16 stored as raw uint16_t.
#pragma once

#include <cstdint>

namespace qilin {

inline constexpr int kQK = 32;    // elements per block of the 32-element formats
inline constexpr int kQKK = 256;  // elements per super-block of the k-quant formats

struct BlockQ8_0 {
  uint16_t d;  // scale: x = d * qs[i]
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;           // scale: x = d * (q - 8)
  uint8_t qs[kQK / 2];  // element i in the low nibble of qs[i], element i+16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
  uint16_t d;  // scale
  uint16_t m;  // min: x = d * q + m
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ4_K {
  uint16_t d;            // super-block scale for the 6-bit sub-block scales
  uint16_t dmin;         // super-block scale for the 6-bit sub-block mins
  uint8_t scales[12];    // 8 scales and 8 mins, 6 bits each, packed
  uint8_t qs[kQKK / 2];  // 4-bit quants, 64 elements per 32 bytes (low nibbles first)
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ6_K {
  uint8_t ql[kQKK / 2];      // low 4 bits of the quants
  uint8_t qh[kQKK / 4];      // high 2 bits of the quants
  int8_t scales[kQKK / 16];  // 8-bit sub-block scales
  uint16_t d;                // super-block scale
};
static_assert(sizeof(BlockQ6_K) == 210);

}  // namespace qilin
