// Block-format arithmetic of the CUDA kernels, written once for device and host.
//
// Compiled by nvcc, every function here is __host__ __device__; compiled by a plain
// C++ compiler (tests/test_cuda_quant_math.cpp) it is ordinary inline C++, with the
// CUDA intrinsics (dp4a, round-to-nearest f32 ops, f16 conversions) replaced by
// their exact scalar meaning. So the parts most easily got wrong (which nibble and
// which scale belong to which element, the x quantization, the q8_0 KV rounding) are
// tested on any machine against core/quant.h's dequantizers and the CPU kernels,
// even where no GPU is present; the GPU tests then check the kernels around them.
//
// Layouts are the GGUF ones of core/quant_blocks.h. Every block format has a 2-byte
// aligned size, so rows are read with 16-bit loads only (a 4-byte word of a q4_0
// block is two of them): no alignment beyond that of a valid row is assumed.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/half.h"
#include "core/quant_blocks.h"
#include "kernels/cuda/hd.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

namespace qilin::cuda {

// ---- scalar helpers: the device intrinsic or its exact host equivalent ----------------

QILIN_HD float half_bits_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h));
#else
  return f16_to_f32(h);
#endif
}

QILIN_HD uint16_t float_to_half_bits(float f) {  // round to nearest even, as core/half.h
#if defined(__CUDA_ARCH__)
  return __half_as_ushort(__float2half_rn(f));
#else
  return f32_to_f16(f);
#endif
}

QILIN_HD float bf16_bits_to_float(uint16_t b) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(static_cast<uint32_t>(b) << 16);
#else
  return bf16_to_f32(b);
#endif
}

QILIN_HD uint16_t float_to_bf16_bits(float f) {  // round to nearest even, NaN kept a NaN
#if defined(__CUDA_ARCH__)
  const uint32_t x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
#else
  return f32_to_bf16(f);
#endif
}

// f32 multiply and add rounded once each, never fused into an FMA: the CPU's
// dequantizers (core/quant.cpp, baseline x86-64) round every operation, and the
// GPU's embedding rows are meant to match them bit for bit.
QILIN_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
QILIN_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// Nearest integer, ties to even (rintf on the GPU, nearbyint in the default mode on the host).
QILIN_HD float round_even(float v) {
#if defined(__CUDA_ARCH__)
  return rintf(v);
#else
  return std::nearbyint(v);
#endif
}

// c + the dot product of the four signed bytes of a and b (dp4a).
QILIN_HD int32_t dot4(int32_t a, int32_t b, int32_t c) {
#if defined(__CUDA_ARCH__)
  return __dp4a(a, b, c);
#else
  for (int i = 0; i < 4; ++i) {
    c += static_cast<int8_t>(static_cast<uint32_t>(a) >> (8 * i)) *
         static_cast<int8_t>(static_cast<uint32_t>(b) >> (8 * i));
  }
  return c;
#endif
}

QILIN_HD uint16_t load_u16(const uint8_t* p) {  // p 2-byte aligned
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const uint16_t*>(p);
#else
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
#endif
}
// Four bytes from a 2-byte aligned address, little-endian.
QILIN_HD uint32_t load_u32_a2(const uint8_t* p) {
  return static_cast<uint32_t>(load_u16(p)) | (static_cast<uint32_t>(load_u16(p + 2)) << 16);
}

// Each byte b (0 <= b < 128) of v minus `offset` (same in every byte), as a signed
// byte. Setting the top bit first keeps borrows inside each byte.
QILIN_HD uint32_t sub_bytes(uint32_t v, uint32_t offset_x4) { return ((v | 0x80808080u) - offset_x4) ^ 0x80808080u; }

// ---- the formats ---------------------------------------------------------------------

// The 6-bit scale and min j of a Q4_K super-block (core/quant.cpp).
QILIN_HD void q4_k_scale_min(int j, const uint8_t* s, int* scale, int* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Byte offsets of the block fields (core/quant_blocks.h; static_asserts below).
inline constexpr int kQ4KScales = 4, kQ4KQs = 16;
inline constexpr int kQ6KQh = 128, kQ6KScales = 192, kQ6KD = 208;

// ---- one element, as core/quant.h's dequantize_row_* computes it (bit for bit) --------

// Element e of a row of `F` (any DType a weight or an embedding table may have).
template <DType F>
QILIN_HD float load_element(const uint8_t* row, int64_t e) {
  if constexpr (F == DType::f32) {
    float v;
#if defined(__CUDA_ARCH__)
    v = reinterpret_cast<const float*>(row)[e];
#else
    std::memcpy(&v, row + 4 * e, sizeof v);
#endif
    return v;
  } else if constexpr (F == DType::f16) {
    return half_bits_to_float(load_u16(row + 2 * e));
  } else if constexpr (F == DType::bf16) {
    return bf16_bits_to_float(load_u16(row + 2 * e));
  } else if constexpr (F == DType::q8_0) {
    const uint8_t* blk = row + (e / kQK) * sizeof(BlockQ8_0);
    const float d = half_bits_to_float(load_u16(blk));
    return mul_rn(d, static_cast<float>(static_cast<int8_t>(blk[2 + e % kQK])));
  } else if constexpr (F == DType::q4_0 || F == DType::q4_1) {
    constexpr int kBytes = F == DType::q4_0 ? sizeof(BlockQ4_0) : sizeof(BlockQ4_1);
    constexpr int kQs = F == DType::q4_0 ? 2 : 4;
    const uint8_t* blk = row + (e / kQK) * kBytes;
    const int j = static_cast<int>(e % kQK);
    const uint8_t byte = blk[kQs + j % 16];
    const int q = j < 16 ? byte & 0x0f : byte >> 4;
    const float d = half_bits_to_float(load_u16(blk));
    if constexpr (F == DType::q4_0) {
      return mul_rn(d, static_cast<float>(q - 8));
    } else {
      return add_rn(mul_rn(d, static_cast<float>(q)), half_bits_to_float(load_u16(blk + 2)));
    }
  } else if constexpr (F == DType::q4_k) {
    const uint8_t* blk = row + (e / kQKK) * sizeof(BlockQ4_K);
    const int r = static_cast<int>(e % kQKK), chunk = r / 64, w = r % 64;
    const int sub = 2 * chunk + (w >= 32 ? 1 : 0);
    const uint8_t byte = blk[kQ4KQs + 32 * chunk + w % 32];
    const int q = w < 32 ? byte & 0x0f : byte >> 4;
    int sc, m;
    q4_k_scale_min(sub, blk + kQ4KScales, &sc, &m);
    const float d1 = mul_rn(half_bits_to_float(load_u16(blk)), static_cast<float>(sc));
    const float m1 = mul_rn(half_bits_to_float(load_u16(blk + 2)), static_cast<float>(m));
    return add_rn(mul_rn(d1, static_cast<float>(q)), -m1);
  } else {
    static_assert(F == DType::q6_k, "load_element: unsupported dtype");
    const uint8_t* blk = row + (e / kQKK) * sizeof(BlockQ6_K);
    const int r = static_cast<int>(e % kQKK), half = r / 128, g = r % 128 / 32, l = r % 32;
    const uint8_t ql = blk[64 * half + l + 32 * (g & 1)];
    const int low = g < 2 ? ql & 0x0f : ql >> 4;
    const int high = (blk[kQ6KQh + 32 * half + l] >> (2 * g)) & 3;
    const int q = (low | (high << 4)) - 32;
    const auto sc = static_cast<int8_t>(blk[kQ6KScales + 8 * half + l / 16 + 2 * g]);
    const float d = half_bits_to_float(load_u16(blk + kQ6KD));
    return mul_rn(mul_rn(d, static_cast<float>(sc)), static_cast<float>(q));  // (d·sc)·q, as ggml
  }
}

// ---- 32-element units for the integer GEMV -------------------------------------------
//
// A weight unit u of a row holds elements 32u .. 32u+31 as signed bytes v with
// w_e = a[e/16]·v_e + b (kernels/cpu/qgemm_table.h's model with the offset already
// subtracted), packed four to a word, element 4i in the low byte of word i.
struct WeightUnit {
  int32_t v[8];
  float a0, a1, b;
};

// x quantized in blocks of 32, as the CPU's quantize_x_ref: x ≈ d·q, q in [-127, 127].
struct XBlock {
  float d;
  int32_t sum;   // Σ q
  int32_t q[8];  // the 32 int8 q, four to a word
};
static_assert(sizeof(XBlock) == 40);

template <DType F>
QILIN_HD void load_unit(const uint8_t* row, int64_t u, WeightUnit& w) {
  if constexpr (F == DType::q8_0) {
    const uint8_t* blk = row + u * sizeof(BlockQ8_0);
    w.a0 = w.a1 = half_bits_to_float(load_u16(blk));
    w.b = 0.0f;
    for (int i = 0; i < 8; ++i) w.v[i] = static_cast<int32_t>(load_u32_a2(blk + 2 + 4 * i));
  } else if constexpr (F == DType::q4_0 || F == DType::q4_1) {
    constexpr int kBytes = F == DType::q4_0 ? sizeof(BlockQ4_0) : sizeof(BlockQ4_1);
    constexpr int kQs = F == DType::q4_0 ? 2 : 4;
    const uint8_t* blk = row + u * kBytes;
    w.a0 = w.a1 = half_bits_to_float(load_u16(blk));
    w.b = F == DType::q4_1 ? half_bits_to_float(load_u16(blk + 2)) : 0.0f;
    constexpr uint32_t kOffset = F == DType::q4_0 ? 0x08080808u : 0u;
    for (int i = 0; i < 4; ++i) {
      const uint32_t bytes = load_u32_a2(blk + kQs + 4 * i);  // elements 4i.. (low), 16+4i.. (high)
      w.v[i] = static_cast<int32_t>(sub_bytes(bytes & 0x0f0f0f0fu, kOffset));
      w.v[i + 4] = static_cast<int32_t>(sub_bytes((bytes >> 4) & 0x0f0f0f0fu, kOffset));
    }
  } else if constexpr (F == DType::q4_k) {
    const uint8_t* blk = row + (u / 8) * sizeof(BlockQ4_K);
    const int s = static_cast<int>(u % 8);
    int sc, m;
    q4_k_scale_min(s, blk + kQ4KScales, &sc, &m);
    // Exact in f32: an f16 times a 6-bit integer has at most 17 significant bits.
    w.a0 = w.a1 = half_bits_to_float(load_u16(blk)) * static_cast<float>(sc);
    w.b = -(half_bits_to_float(load_u16(blk + 2)) * static_cast<float>(m));
    const uint8_t* qs = blk + kQ4KQs + 32 * (s / 2);  // 64 elements per 32 bytes, the first 32 in the low nibbles
    const int shift = 4 * (s % 2);
    for (int i = 0; i < 8; ++i) w.v[i] = static_cast<int32_t>((load_u32_a2(qs + 4 * i) >> shift) & 0x0f0f0f0fu);
  } else {
    static_assert(F == DType::q6_k, "load_unit: unsupported dtype");
    const uint8_t* blk = row + (u / 8) * sizeof(BlockQ6_K);
    const int s = static_cast<int>(u % 8), half = s / 4, g = s % 4;
    const float d = half_bits_to_float(load_u16(blk + kQ6KD));
    // Exact too: 11 + 8 significant bits. Sub-blocks of 16: two scales per unit.
    w.a0 = d * static_cast<float>(static_cast<int8_t>(blk[kQ6KScales + 2 * s]));
    w.a1 = d * static_cast<float>(static_cast<int8_t>(blk[kQ6KScales + 2 * s + 1]));
    w.b = 0.0f;
    const uint8_t* ql = blk + 64 * half + 32 * (g & 1);
    const uint8_t* qh = blk + kQ6KQh + 32 * half;
    const int low_shift = g < 2 ? 0 : 4;
    for (int i = 0; i < 8; ++i) {
      const uint32_t low = (load_u32_a2(ql + 4 * i) >> low_shift) & 0x0f0f0f0fu;
      const uint32_t high = ((load_u32_a2(qh + 4 * i) >> (2 * g)) & 0x03030303u) << 4;
      w.v[i] = static_cast<int32_t>(sub_bytes(low | high, 0x20202020u));
    }
  }
}

// Σ over the unit of w_e · x_e with x_e = x.d·q_e: exact integer dots, then f32
// scaling as the CPU kernels do per block: dx·(a0·dot0 + a1·dot1 + b·Σq).
QILIN_HD float unit_dot(const WeightUnit& w, const XBlock& x) {
  int32_t dot0 = 0, dot1 = 0;
  for (int i = 0; i < 4; ++i) dot0 = dot4(w.v[i], x.q[i], dot0);
  for (int i = 4; i < 8; ++i) dot1 = dot4(w.v[i], x.q[i], dot1);
  return x.d * (w.a0 * static_cast<float>(dot0) + w.a1 * static_cast<float>(dot1) + w.b * static_cast<float>(x.sum));
}

// ---- quantization of x and of q8_0 KV rows ---------------------------------------------

// x·inv clipped to [-127, 127] (NaN to -127), then rounded to nearest even, as the CPU's
// quantize_x_ref; the block scale is amax / 127 and inv = 1 / scale (0 for a zero block).
QILIN_HD int32_t quantize_x_element(float x, float inv) {
  float v = x * inv;
  v = v > -127.0f ? v : -127.0f;
  v = v < 127.0f ? v : 127.0f;
  return static_cast<int32_t>(round_even(v));
}
QILIN_HD float x_block_scale(float amax) { return amax / 127.0f; }
QILIN_HD float x_block_inverse(float scale) { return scale != 0.0f ? 1.0f / scale : 0.0f; }

// One element of a q8_0 KV row, as the CPU's f32_row_to_q8_0: scale d16 = f16(amax/127),
// id = 1/f32(d16), then round first and clamp after (its order, not quantize_x's).
QILIN_HD uint16_t kv_q8_0_scale_bits(float amax) { return float_to_half_bits(amax / 127.0f); }
QILIN_HD int8_t kv_q8_0_element(float x, float id) {
  float r = round_even(x * id);
  r = r > -127.0f ? r : -127.0f;
  r = r < 127.0f ? r : 127.0f;
  return static_cast<int8_t>(r);
}

// ---- the layout facts the offsets above rely on ---------------------------------------
static_assert(offsetof(BlockQ4_K, scales) == kQ4KScales && offsetof(BlockQ4_K, qs) == kQ4KQs);
static_assert(offsetof(BlockQ6_K, qh) == kQ6KQh && offsetof(BlockQ6_K, scales) == kQ6KScales &&
              offsetof(BlockQ6_K, d) == kQ6KD);
static_assert(offsetof(BlockQ4_1, qs) == 4 && offsetof(BlockQ8_0, qs) == 2 && offsetof(BlockQ4_0, qs) == 2);

}  // namespace qilin::cuda
