// The kernel table behind the simd path (kernels/cpu/gemm_table.h), entry by
// entry: both the gemv and the gemm kernel of every level for every M (the
// dispatcher uses each for only part of the range), over column sub-ranges as
// the thread split hands them out.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/gemm_table.h"
#include "test_matmul_data.h"

using namespace qilin;
using qilin::test::Values;

namespace {

constexpr float kSentinel = -12345.f;

cpu::GemmArgs args_for(const Tensor& x, const Tensor& w, Tensor& y, void* scratch) {
  cpu::GemmArgs a;
  a.x = x.data_as<float>();
  a.scratch = scratch;
  a.w = w.data();
  a.y = y.data_as<float>();
  a.m = x.shape()[0];
  a.k = x.shape()[1];
  a.ldx = a.k;
  a.ldy = y.shape()[1];
  a.w_stride = w.view().row_stride_bytes();
  return a;
}

}  // namespace

TEST_CASE("gemm kernels: every entry of every level equals the oracle on integer operands", "[matmul]") {
  struct Case {
    int64_t k, n, n_begin, n_end;
  };
  // Column ranges start and end off the register block; K crosses the kernels' K blocks
  // (256 and 512), N their 128- and 256-column blocks.
  constexpr Case kCases[] = {{1, 5, 0, 5},      {17, 19, 3, 18}, {100, 40, 8, 40},
                             {1100, 37, 1, 36}, {4095, 9, 0, 9}, {40, 300, 5, 297}};
  constexpr int64_t kRows[] = {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 25, 33};
  const cpu::GemmTable& ref = cpu::gemm_table(cpu::Isa::ref);
  uint32_t seed = 11;
  for (int wi = 0; wi < cpu::kGemmWeightCount; ++wi) {
    const DType wt = wi == 0 ? DType::f32 : (wi == 1 ? DType::f16 : DType::bf16);
    for (const Case& c : kCases) {
      const Tensor w = test::random_tensor(c.n, c.k, wt, Values::integers, ++seed);
      for (int64_t m : kRows) {
        const Tensor x = test::random_tensor(m, c.k, DType::f32, Values::integers, ++seed);
        Tensor expect = Tensor::empty({m, c.n}, DType::f32);
        ref.gemv[wi].fn(args_for(x, w, expect, nullptr), 0, c.n);
        for (cpu::Isa level : test::supported_levels()) {
          const cpu::GemmTable& t = cpu::gemm_table(level);
          for (const cpu::GemmKernel* kernel : {&t.gemv[wi], &t.gemm[wi]}) {
            Tensor y = Tensor::empty({m, c.n}, DType::f32);
            for (int64_t i = 0; i < m * c.n; ++i) y.data_as<float>()[i] = kSentinel;
            AlignedBuffer scratch(kernel->scratch_bytes + 64);
            kernel->fn(args_for(x, w, y, kernel->scratch_bytes ? scratch.data() : nullptr), c.n_begin, c.n_end);
            int64_t wrong = 0;
            for (int64_t i = 0; i < m; ++i)
              for (int64_t n = 0; n < c.n; ++n) {
                const float got = y.data_as<float>()[i * c.n + n];
                const bool inside = n >= c.n_begin && n < c.n_end;
                // Exact: integer products and sums below 2^24 round nowhere.
                if (got != (inside ? expect.data_as<float>()[i * c.n + n] : kSentinel)) ++wrong;
              }
            INFO(kernel->name << " at level " << cpu::name_of(level) << ": w " << c.n << "x" << c.k << " columns ["
                              << c.n_begin << ", " << c.n_end << "), M=" << m);
            REQUIRE(wrong == 0);
          }
        }
      }
    }
  }
}

TEST_CASE("gemm kernels: round_to_bf16 rounds to nearest even like the scalar conversion", "[matmul]") {
  std::vector<float> src;
  for (int i = 0; i < 1000; ++i) src.push_back(std::ldexp(static_cast<float>(i * 7919 % 2003) - 1001.f, i % 40 - 20));
  // Ties (exactly half an ulp of bf16, even and odd), the largest floats, infinities, NaN.
  for (uint32_t bits : {0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0xff7f8000u, 0x7f800000u, 0xff800000u, 0x7fc00001u}) {
    float f;
    std::memcpy(&f, &bits, 4);
    src.push_back(f);
  }
  for (cpu::Isa level : test::supported_levels()) {
    const cpu::GemmTable& t = cpu::gemm_table(level);
    for (size_t n : {size_t{1}, size_t{15}, size_t{17}, size_t{33}, src.size()}) {
      std::vector<uint16_t> got(n + 1, 0xdead);
      t.round_to_bf16(src.data() + (src.size() - n), got.data(), static_cast<int64_t>(n));
      int wrong = 0;
      for (size_t i = 0; i < n; ++i) {
        const float f = src[src.size() - n + i];
        const uint16_t want = f32_to_bf16(f);
        // NaN: any quiet NaN will do; everything else bit-exact.
        if (std::isnan(f) ? !std::isnan(bf16_to_f32(got[i])) : got[i] != want) ++wrong;
      }
      INFO("level " << cpu::name_of(level) << ", n=" << n);
      REQUIRE(wrong == 0);
      REQUIRE(got[n] == 0xdead);  // nothing written past the end
    }
  }
}
