// Helpers shared by the tests of kernels/ops.h: random inputs, the ISA loop and
// a tolerance check that reports the worst element.
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/cpu/isa.h"

namespace qilin::test {

// Sizes around the vector widths (8, 16) and their multiples, plus a long odd row.
inline const std::vector<int64_t> kAwkwardSizes = {1, 7, 8, 15, 16, 17, 31, 33, 64, 4095};

inline std::vector<float> random_floats(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline TensorView view_of(std::vector<float>& v, Shape shape) { return TensorView(v.data(), shape, DType::f32); }

// Runs fn() with each ISA level this CPU supports forced in turn, then restores the active one.
template <class F>
void for_each_isa(F&& fn) {
  const cpu::Isa before = cpu::active_isa();
  for (int i = 0; i < cpu::kIsaCount; ++i) {
    const auto level = static_cast<cpu::Isa>(i);
    if (!cpu::isa_supported(level)) continue;
    cpu::set_active_isa(level);
    INFO("isa " << std::string(cpu::name_of(level)));
    fn(level);
  }
  cpu::set_active_isa(before);
}

// Runs fn() at the ref level (the oracle of the SIMD levels).
template <class F>
void at_ref(F&& fn) {
  const cpu::Isa before = cpu::active_isa();
  cpu::set_active_isa(cpu::Isa::ref);
  fn();
  cpu::set_active_isa(before);
}

// Every |got - want| <= abs_tol + rel_tol * |want|; NaN anywhere fails. Reports the worst element.
template <class Want>
void require_close_at(const char* file, int line, const std::vector<float>& got, const std::vector<Want>& want,
                      double abs_tol, double rel_tol) {
  REQUIRE(got.size() == want.size());
  double worst = 0;  // error / allowed error: <= 1 passes
  size_t worst_i = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = static_cast<double>(want[i]);
    const double err = std::fabs(static_cast<double>(got[i]) - w);
    const double allowed = abs_tol + rel_tol * std::fabs(w);
    const double ratio = err == 0 ? 0.0 : (std::isnan(err) || allowed == 0 ? INFINITY : err / allowed);
    if (ratio > worst) {
      worst = ratio;
      worst_i = i;
    }
  }
  INFO("worst element " << worst_i << " of " << got.size() << ": got " << got[worst_i] << ", want "
                        << static_cast<double>(want[worst_i]) << " (abs_tol " << abs_tol << ", rel_tol " << rel_tol
                        << ", error/allowed " << worst << ")");
  // QILIN_TEST_SHOW_ERRORS=1 prints how much of each tolerance was used (for tuning them).
  if (std::getenv("QILIN_TEST_SHOW_ERRORS")) std::printf("%s:%d error/allowed %.3g\n", file, line, worst);
  REQUIRE(worst <= 1.0);
}

}  // namespace qilin::test

#define require_close(...) ::qilin::test::require_close_at(__FILE__, __LINE__, __VA_ARGS__)
