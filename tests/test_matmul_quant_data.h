// Shared by the quantized-matmul tests: weights in the block formats, either
// quantized from random reals (realistic) or built block by block so that every
// float operation of every path is exact (see exact_weight), and matching x.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/half.h"
#include "core/quant_blocks.h"
#include "core/tensor.h"

namespace qilin::test {

inline constexpr DType kQuantTypes[] = {DType::q8_0, DType::q4_0, DType::q4_1, DType::q4_k, DType::q6_k};

inline bool is_k_quant(DType t) { return t == DType::q4_k || t == DType::q6_k; }

// [n, k] of `t`: uniform reals in [-1, 1) through the reference quantizer.
inline Tensor quantized_weight(DType t, int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  Tensor w = Tensor::empty({n, k}, t);
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t r = 0; r < n; ++r) {
    for (float& v : row) v = dist(rng);
    traits(t).from_float(row.data(), w.view().row(r), k);
  }
  return w;
}

// [m, k] f32 rows that quantize without rounding: each block of 32 holds one ±127
// (so its scale is exactly 1) and otherwise integers in [-8, 8].
inline Tensor exact_x(int64_t m, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor x = Tensor::empty({m, k}, DType::f32);
  float* p = x.data_as<float>();
  for (int64_t i = 0; i < m * k; ++i) p[i] = static_cast<float>(static_cast<int>(rng() % 17) - 8);
  for (int64_t b = 0; b < m * k / 32; ++b) p[b * 32 + rng() % 32] = rng() % 2 ? 127.f : -127.f;
  return x;
}

// [n, k] of `t` with power-of-two scales and random quants over their full range
// (q8_0 includes -128, which no quantizer writes but a file may hold). With exact_x
// and K up to 1024 (512 for the k-quants) every product and partial sum is a
// multiple of the smallest scale below 2^24 of it, so f32 arithmetic in any order is exact.
inline Tensor exact_weight(DType t, int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  auto byte = [&] { return static_cast<uint8_t>(rng()); };
  Tensor w = Tensor::empty({n, k}, t);
  for (int64_t r = 0; r < n; ++r) {
    void* row = w.view().row(r);
    const int64_t blocks = k / traits(t).block_size;
    for (int64_t b = 0; b < blocks; ++b) {
      switch (t) {
        case DType::q8_0: {
          auto& blk = static_cast<BlockQ8_0*>(row)[b];
          blk.d = f32_to_f16(rng() % 2 ? 0.25f : 0.5f);
          for (int8_t& q : blk.qs) q = static_cast<int8_t>(byte());
          break;
        }
        case DType::q4_0: {
          auto& blk = static_cast<BlockQ4_0*>(row)[b];
          blk.d = f32_to_f16(rng() % 2 ? 0.5f : 2.0f);
          for (uint8_t& q : blk.qs) q = byte();
          break;
        }
        case DType::q4_1: {
          auto& blk = static_cast<BlockQ4_1*>(row)[b];
          blk.d = f32_to_f16(rng() % 2 ? 0.5f : 1.0f);
          blk.m = f32_to_f16(static_cast<float>(static_cast<int>(rng() % 17) - 8) * 0.5f);
          for (uint8_t& q : blk.qs) q = byte();
          break;
        }
        case DType::q4_k: {
          auto& blk = static_cast<BlockQ4_K*>(row)[b];
          blk.d = f32_to_f16(0.125f);
          blk.dmin = f32_to_f16(0.125f);
          for (uint8_t& s : blk.scales) s = byte();  // every 6-bit scale and min, high bits included
          for (uint8_t& q : blk.qs) q = byte();
          break;
        }
        case DType::q6_k: {
          auto& blk = static_cast<BlockQ6_K*>(row)[b];
          blk.d = f32_to_f16(0.125f);
          for (int8_t& s : blk.scales) s = static_cast<int8_t>(static_cast<int>(rng() % 128) - 64);
          for (uint8_t& q : blk.ql) q = byte();
          for (uint8_t& q : blk.qh) q = byte();
          break;
        }
        default:
          break;
      }
    }
  }
  return w;
}

// The weight dequantized by core's reference dequantizer, [n * k] floats.
inline std::vector<float> dequantized(const Tensor& w) {
  const int64_t n = w.shape()[0], k = w.shape()[1];
  std::vector<float> out(static_cast<size_t>(n * k));
  for (int64_t r = 0; r < n; ++r) traits(w.dtype()).to_float(w.view().row(r), out.data() + r * k, k);
  return out;
}

}  // namespace qilin::test
