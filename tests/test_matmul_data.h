// Shared by the matmul tests: random or integer-valued operands, the double
// oracle's error scale, and the list of ISA levels this CPU can run.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/allocator.h"
#include "core/half.h"
#include "core/tensor.h"
#include "kernels/cpu/isa.h"

namespace qilin::test {

// Values are either small integers (every product and sum below 2^24 is then
// exact in f32, bf16 and f16, so every path must agree with the oracle bit for
// bit: an indexing bug cannot hide in a tolerance) or uniform reals in [-1, 1).
enum class Values { integers, reals };

inline float draw(std::mt19937& rng, Values v) {
  if (v == Values::integers) return static_cast<float>(static_cast<int>(rng() % 9) - 4);
  return std::uniform_real_distribution<float>(-1.f, 1.f)(rng);
}

// A [rows, cols] tensor of `dtype` (f32, f16 or bf16) filled with `values`.
inline Tensor random_tensor(int64_t rows, int64_t cols, DType dtype, Values values, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor t = Tensor::empty({rows, cols}, dtype);
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float f = draw(rng, values);
    if (dtype == DType::f32) t.data_as<float>()[i] = f;
    if (dtype == DType::f16) t.data_as<uint16_t>()[i] = f32_to_f16(f);
    if (dtype == DType::bf16) t.data_as<uint16_t>()[i] = f32_to_bf16(f);
  }
  return t;
}

inline float element(const TensorView& t, int64_t r, int64_t c) {
  switch (t.dtype()) {
    case DType::f16:
      return f16_to_f32(t.row<uint16_t>(r)[c]);
    case DType::bf16:
      return bf16_to_f32(t.row<uint16_t>(r)[c]);
    default:
      return t.row<float>(r)[c];
  }
}

// scale[i][n] = sum_k |x[i,k]·w[n,k]|: every rounding error of a dot product is
// a multiple of it (e.g. f32 accumulation in any order is within (K-1)·2^-24 of it).
inline std::vector<double> abs_product_sums(const TensorView& x, const TensorView& w) {
  const int64_t m = x.rows(), n = w.dim(0), k = w.dim(1);
  std::vector<double> s(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) acc += std::fabs(static_cast<double>(element(x, i, p)) * element(w, j, p));
      s[static_cast<size_t>(i * n + j)] = acc;
    }
  return s;
}

inline std::vector<cpu::Isa> supported_levels() {
  std::vector<cpu::Isa> levels;
  for (int i = 0; i < cpu::kIsaCount; ++i)
    if (cpu::isa_supported(static_cast<cpu::Isa>(i))) levels.push_back(static_cast<cpu::Isa>(i));
  return levels;
}

// Restores the active ISA level when a test leaves, also by an exception.
struct IsaGuard {
  cpu::Isa saved = cpu::active_isa();
  ~IsaGuard() { cpu::set_active_isa(saved); }
};

}  // namespace qilin::test
