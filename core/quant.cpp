// Reference (scalar) dequantizers and quantizers of the 32-element block
// formats and the k-quant dequantizers. Follows ggml's reference code (and
// the gguf Python package, which mirrors it) operation by operation so that
// results are bit-identical: same float intermediates, same evaluation order.
#include "core/quant.h"

#include <algorithm>
#include <cmath>

#include "core/half.h"
#include "core/quant_blocks.h"

// The reference evaluates a*b + c as two rounded operations (gguf-py does it
// in numpy float32); a fused multiply-add would change the low bits of
// Q4_1's dequantized values and the rounding of Q4_0/Q4_1 quants.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace qilin {

void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float d = f16_to_f32(blocks[b].d);
    for (int j = 0; j < kQK; ++j) dst[b * kQK + j] = d * static_cast<float>(blocks[b].qs[j]);
  }
}

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_0*>(src);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float d = f16_to_f32(blocks[b].d);
    float* y = dst + b * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>((blocks[b].qs[j] & 0x0f) - 8);
      y[j + kQK / 2] = d * static_cast<float>((blocks[b].qs[j] >> 4) - 8);
    }
  }
}

void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_1*>(src);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float d = f16_to_f32(blocks[b].d);
    const float m = f16_to_f32(blocks[b].m);
    float* y = dst + b * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>(blocks[b].qs[j] & 0x0f) + m;
      y[j + kQK / 2] = d * static_cast<float>(blocks[b].qs[j] >> 4) + m;
    }
  }
}

namespace {
// Unpacks the j-th 6-bit scale and min of a Q4_K super-block.
inline void q4_k_scale_min(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}
}  // namespace

void dequantize_row_q4_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_K*>(src);
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ4_K& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    const float dmin = f16_to_f32(blk.dmin);
    const uint8_t* q = blk.qs;
    float* y = dst + b * kQKK;
    for (int j = 0, is = 0; j < kQKK; j += 64, is += 2, q += 32) {
      uint8_t sc, m;
      q4_k_scale_min(is, blk.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      q4_k_scale_min(is + 1, blk.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_row_q6_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ6_K*>(src);
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const BlockQ6_K& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    const uint8_t* ql = blk.ql;
    const uint8_t* qh = blk.qh;
    const int8_t* sc = blk.scales;
    float* y = dst + b * kQKK;
    for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        // (d * scale) * q, rounded twice, as ggml and gguf-py compute it; the
        // exact integer product scale * q would round differently.
        y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

namespace {
// ggml's MIN(15, (int8_t)v): truncation toward zero, then clip to 4 bits.
inline uint8_t truncate_to_nibble(float v) {
  return static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(v))));
}
}  // namespace

void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      const float ax = std::fabs(x[j]);
      amax = amax > ax ? amax : ax;  // ggml's MAX(a, b), not std::max, so NaN inputs behave alike
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = f32_to_f16(d);
    // roundf: halves away from zero, as ggml (not nearest-even).
    for (int j = 0; j < kQK; ++j) blocks[b].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

void quantize_row_q4_0(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ4_0*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    float amax = 0.0f, max = 0.0f;  // max keeps the sign of the largest magnitude
    for (int j = 0; j < kQK; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = f32_to_f16(d);
    // x*id is in [-8, 8]; +8.5 then truncation rounds half up; +8 (the value
    // opposite the max) clips to 15.
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t lo = truncate_to_nibble(x[j] * id + 8.5f);
      const uint8_t hi = truncate_to_nibble(x[j + kQK / 2] * id + 8.5f);
      blocks[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quantize_row_q4_1(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ4_1*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    float min = x[0], max = x[0];
    for (int j = 1; j < kQK; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = f32_to_f16(d);
    blocks[b].m = f32_to_f16(min);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t lo = truncate_to_nibble((x[j] - min) * id + 0.5f);
      const uint8_t hi = truncate_to_nibble((x[j + kQK / 2] - min) * id + 0.5f);
      blocks[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

}  // namespace qilin
