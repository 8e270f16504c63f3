// The kernel table behind the simd path (kernels/cpu/gemm_table.h), entry by
// entry: both the gemv and the gemm kernel of every level for every M (the
// dispatcher uses each for only part of the range), over column sub-ranges as
// the thread split hands them out.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

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

namespace {

// x rounded to bf16 as the dispatcher hands it to gemm_bf16 kernels: rows padded with
// zeros to kBf16RowPad, each row with zeros to ldxb (here one tile step wider than
// needed, so that a kernel reading ldxb as the padded K would read the wrong rows).
std::vector<uint16_t> rounded_x(const Tensor& x, int64_t ldxb) {
  const int64_t m = x.shape()[0], k = x.shape()[1];
  const int64_t rows = (m + cpu::kBf16RowPad - 1) / cpu::kBf16RowPad * cpu::kBf16RowPad;
  std::vector<uint16_t> xb(static_cast<size_t>(rows * ldxb), 0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < k; ++c) xb[static_cast<size_t>(i * ldxb + c)] = f32_to_bf16(x.data_as<float>()[i * k + c]);
  return xb;
}

// A weight element rounded to bf16 the way the gemm_bf16 kernels round it.
float weight_bf16(const Tensor& w, int64_t n, int64_t c) { return bf16_to_f32(f32_to_bf16(test::element(w, n, c))); }

}  // namespace

TEST_CASE("gemm kernels: bf16-compute entries match the scalar bf16 oracle", "[matmul]") {
  struct Case {
    int64_t m, n, k;
  };
  // Every M x N x K of the awkward sizes below (tails of 16-row/column tiles, of the
  // 32-element tile step, and of the 2 x 2 tile blocks; K = 4095 at M = 512 also runs
  // in several K chunks), plus N = 4864 (a real MLP width: many panels and a two-way
  // split) at a few M and K, on real values only (the oracle's time).
  std::vector<Case> cases;
  for (int64_t m : {16, 17, 33, 100, 512})
    for (int64_t n : {1, 15, 16, 33})
      for (int64_t k : {1, 31, 32, 33, 576, 1536, 4095}) cases.push_back({m, n, k});
  const size_t small_cases = cases.size();
  for (Case c : {Case{16, 4864, 576}, Case{17, 4864, 1536}, Case{100, 4864, 33}, Case{512, 4864, 31}})
    cases.push_back(c);
  const cpu::GemmTable& ref = cpu::gemm_table(cpu::Isa::ref);
  std::vector<cpu::Isa> fast;
  for (cpu::Isa level : test::supported_levels())
    if (cpu::gemm_table(level).gemm_bf16_fast) fast.push_back(level);
  if (fast.empty()) WARN("no level with fast bf16-compute kernels on this CPU (no AMX): only the oracle runs");
  uint32_t seed = 500;
  for (Values values : {Values::integers, Values::reals}) {
    for (int wi = 0; wi < cpu::kGemmWeightCount; ++wi) {
      const DType wt = wi == 0 ? DType::f32 : (wi == 1 ? DType::f16 : DType::bf16);
      double worst = 0;  // the largest error seen, as a fraction of the bound
      for (size_t ci = 0; ci < (values == Values::integers ? small_cases : cases.size()); ++ci) {
        const Case& c = cases[ci];
        const Tensor w = test::random_tensor(c.n, c.k, wt, values, ++seed);
        const Tensor x = test::random_tensor(c.m, c.k, DType::f32, values, ++seed);
        const int64_t ldxb = (c.k + cpu::kBf16KPad - 1) / cpu::kBf16KPad * cpu::kBf16KPad + cpu::kBf16KPad;
        const std::vector<uint16_t> xb = rounded_x(x, ldxb);
        Tensor expect = Tensor::empty({c.m, c.n}, DType::f32);
        cpu::GemmArgs a = args_for(x, w, expect, nullptr);
        a.xb = xb.data();
        a.ldxb = ldxb;
        ref.gemm_bf16[wi].fn(a, 0, c.n);
        // The rounded operands as floats; their products are exact. scale = sum_k |x·w| of them.
        std::vector<float> xr(static_cast<size_t>(c.m * c.k)), wr(static_cast<size_t>(c.n * c.k));
        for (int64_t i = 0; i < c.m; ++i)
          for (int64_t p = 0; p < c.k; ++p)
            xr[static_cast<size_t>(i * c.k + p)] = bf16_to_f32(xb[static_cast<size_t>(i * ldxb + p)]);
        for (int64_t n = 0; n < c.n; ++n)
          for (int64_t p = 0; p < c.k; ++p) wr[static_cast<size_t>(n * c.k + p)] = weight_bf16(w, n, p);
        std::vector<double> scale(static_cast<size_t>(c.m * c.n));
        // The oracle itself: f32 sums of exact products in the order of K, so within
        // (K - 1)·2^-24·scale of the exact sum of the rounded operands (taken in double).
        int64_t oracle_wrong = 0;
        for (int64_t i = 0; i < c.m; ++i)
          for (int64_t n = 0; n < c.n; ++n) {
            const float* xi = xr.data() + i * c.k;
            const float* wn = wr.data() + n * c.k;
            double exact = 0, abs_sum = 0;
            for (int64_t p = 0; p < c.k; ++p) {
              const double prod = double{xi[p]} * wn[p];
              exact += prod;
              abs_sum += std::fabs(prod);
            }
            scale[static_cast<size_t>(i * c.n + n)] = abs_sum;
            const double err = std::fabs(expect.data_as<float>()[i * c.n + n] - exact);
            oracle_wrong += err > static_cast<double>(c.k) * 0x1p-24 * abs_sum;
          }
        {
          INFO("the oracle, w " << name_of(wt) << " M=" << c.m << " N=" << c.n << " K=" << c.k);
          REQUIRE(oracle_wrong == 0);
        }
        for (cpu::Isa level : fast) {
          const cpu::GemmKernel& kernel = cpu::gemm_table(level).gemm_bf16[wi];
          AlignedBuffer scratch(kernel.scratch_bytes);
          // Two ranges as a two-thread split hands them out (at the kernel's grain), one row of sentinels below.
          const int64_t split = (c.n / 2 + kernel.n_grain - 1) / kernel.n_grain * kernel.n_grain;
          Tensor y = Tensor::empty({c.m + 1, c.n}, DType::f32);
          for (int64_t i = 0; i < (c.m + 1) * c.n; ++i) y.data_as<float>()[i] = kSentinel;
          cpu::GemmArgs b = args_for(x, w, y, scratch.data());
          b.xb = xb.data();
          b.ldxb = ldxb;
          kernel.fn(b, 0, split < c.n ? split : c.n);
          if (split < c.n) kernel.fn(b, split, c.n);
          int64_t beyond = 0;
          for (int64_t n = 0; n < c.n; ++n) beyond += y.data_as<float>()[c.m * c.n + n] != kSentinel;
          double case_worst = 0;
          for (int64_t i = 0; i < c.m * c.n; ++i) {
            const double err = std::fabs(double{y.data_as<float>()[i]} - expect.data_as<float>()[i]);
            // Both sum the same exact products in f32, in different orders: each is within
            // (K - 1)·2^-24·scale of the exact sum, so they are within twice that of each other.
            // Integer operands: every sum is exact, so no tolerance at all.
            const double allowed = values == Values::integers
                                       ? 0.0
                                       : 2.0 * static_cast<double>(c.k) * 0x1p-24 * scale[static_cast<size_t>(i)];
            case_worst = std::max(case_worst, err == 0 ? 0.0 : (allowed == 0 ? 1e30 : err / allowed));
          }
          worst = std::max(worst, case_worst);
          INFO(kernel.name << " at level " << cpu::name_of(level) << ", "
                           << (values == Values::integers ? "integers" : "reals") << ": M=" << c.m << " N=" << c.n
                           << " K=" << c.k << ", split at " << split);
          REQUIRE(beyond == 0);
          REQUIRE(case_worst <= 1.0);
        }
      }
      if (!fast.empty()) {
        WARN("bf16-compute kernels, w " << name_of(wt) << ", " << (values == Values::integers ? "integers" : "reals")
                                        << ": largest difference from the oracle " << worst << " of the bound");
      }
    }
  }
}
