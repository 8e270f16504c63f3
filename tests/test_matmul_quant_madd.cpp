// The Q8_0 kernel for many rows on int16 pairs (kernels/cpu/qgemm_q8_0_madd.h), the
// large[q8_0] entry of the levels without VNNI, called directly and through the
// dispatch point: against the ref kernel, and against the same level's kernel for
// few rows (the sign trick), whose f32 operations it repeats one for one.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "kernels/cpu/qgemm_pack.h"
#include "kernels/cpu/qgemm_table.h"
#include "kernels/matmul.h"
#include "test_matmul_data.h"
#include "test_matmul_quant_data.h"

using namespace qilin;

namespace {

constexpr int kQ8 = static_cast<int>(cpu::QFormat::q8_0);

// The levels whose large[q8_0] is this kernel.
std::vector<cpu::Isa> madd_levels() {
  std::vector<cpu::Isa> levels;
  for (cpu::Isa level : test::supported_levels()) {
    if (std::string(cpu::qgemm_table(level).large[kQ8].name).find("vpmaddwd") != std::string::npos) {
      levels.push_back(level);
    }
  }
  return levels;
}

// x quantized by the ref level (every level is bit-identical to it, test_matmul_quant.cpp),
// rows padded to 16 with zero rows as the dispatch point does for kernels of many rows.
struct QuantX {
  std::vector<int8_t> q;
  std::vector<float> d, ds;
  std::vector<int32_t> sums16, corr;
  int64_t m, k;
  QuantX(const Tensor& x) : m(x.shape()[0]), k(x.shape()[1]) {
    const int64_t rows = (m + cpu::kXRowPadding - 1) / cpu::kXRowPadding * cpu::kXRowPadding, nb = k / 32;
    q.assign(static_cast<size_t>(rows * k), 0);
    d.assign(static_cast<size_t>(rows * nb), 0.f);
    ds.assign(static_cast<size_t>(rows * nb), 0.f);
    sums16.assign(static_cast<size_t>(rows * 2 * nb), 0);
    corr.assign(static_cast<size_t>(rows * 2 * nb), 0);
    cpu::qgemm_table(cpu::Isa::ref)
        .quantize_x(x.data_as<float>(), k, m, k, q.data(), d.data(), ds.data(), sums16.data());
    for (int64_t b = 0; b < m * nb; ++b) corr[static_cast<size_t>(b)] = -128 * (sums16[2 * b] + sums16[2 * b + 1]);
  }
  cpu::QuantizedX view() const { return {q.data(), d.data(), ds.data(), corr.data(), nullptr, m, k}; }
};

// y = x·wᵀ by one kernel, called as two threads would be (n split at a multiple of 16),
// into rows of n + 5 floats with 4 rows more than m: the extra columns and rows stay NaN.
std::vector<float> run_kernel(const cpu::QGemmKernel& kernel, const QuantX& x, const Tensor& w) {
  const int64_t n = w.shape()[0], k = w.shape()[1], ldy = n + 5;
  const cpu::QFormat f = cpu::QFormat::q8_0;
  AlignedBuffer packed(cpu::qpack_bytes(f, n, k));
  cpu::qpack_groups(f, w.data(), w.view().row_stride_bytes(), n, k, 0, (n + 15) / 16, packed.data());
  AlignedBuffer scratch(kernel.scratch_bytes(k) + 64);
  std::vector<float> y(static_cast<size_t>((x.m + 4) * ldy), std::numeric_limits<float>::quiet_NaN());
  cpu::QGemmArgs a;
  a.x = x.view();
  a.w = kernel.packed ? packed.data() : w.data();
  a.w_stride = w.view().row_stride_bytes();
  a.n = n;
  a.y = y.data();
  a.ldy = ldy;
  a.scratch = scratch.data();
  const int64_t split = n > 64 ? 64 : 0;
  if (split > 0) kernel.fn(a, 0, split);
  kernel.fn(a, split, n);
  return y;
}

// mag[i][j] = Σ_e |w[j][e]|·|dx·xq[i][e]|: the magnitude of every term the kernels add.
std::vector<double> term_magnitudes(const QuantX& x, const Tensor& w) {
  const int64_t n = w.shape()[0], k = w.shape()[1];
  const std::vector<float> wd = test::dequantized(w);  // d·q, exact in f32
  std::vector<double> mag(static_cast<size_t>(x.m * n));
  for (int64_t i = 0; i < x.m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t e = 0; e < k; ++e) {
        s += std::fabs(double{wd[static_cast<size_t>(j * k + e)]} * x.d[static_cast<size_t>((i * k + e) / 32)] *
                       x.q[static_cast<size_t>(i * k + e)]);
      }
      mag[static_cast<size_t>(i * n + j)] = s;
    }
  return mag;
}

}  // namespace

TEST_CASE("quantized matmul: the int16 Q8_0 kernel for many rows against ref and the sign-trick kernel",
          "[matmul][quant]") {
  const std::vector<cpu::Isa> levels = madd_levels();
  if (cpu::isa_supported(cpu::Isa::avx2)) REQUIRE(!levels.empty());  // the avx2 level has it
  if (levels.empty()) {
    WARN("skipped: this CPU has no AVX2");
    return;
  }
  const cpu::QGemmKernel& ref = cpu::qgemm_table(cpu::Isa::ref).kernel[kQ8];
  uint32_t seed = 900;
  // K: one block, three, 72 (longer than any chunk of work is cut into); n: a lone partial
  // group, and 10 groups (a whole chunk of 8 groups, then 2 with a partial one).
  for (int64_t k : {32, 96, 2304}) {
    for (int64_t n : {9, 150}) {
      for (bool exact : {true, false}) {
        // Exact operands (weights with -128 among them, x blocks with ±127) keep every f32
        // operation exact up to K = 1024 (test_matmul_quant_data.h): y must equal ref's bit for bit.
        if (exact && k > 1024) continue;
        const Tensor wt =
            exact ? test::exact_weight(DType::q8_0, n, k, ++seed) : test::quantized_weight(DType::q8_0, n, k, ++seed);
        for (int64_t m : {16, 17, 33, 300, 512}) {
          const Tensor xt =
              exact ? test::exact_x(m, k, ++seed) : test::random_tensor(m, k, DType::f32, test::Values::reals, ++seed);
          const QuantX x(xt);
          const std::vector<float> oracle = run_kernel(ref, x, wt);
          const std::vector<double> mag = term_magnitudes(x, wt);
          // One rounding per block for the scale product d_w·d_x and one for the fused add of the
          // block's sum (converted exactly: below 2^20), each at most 2^-24 of a term or of the
          // running sum (both ≤ mag); ref sums in double and rounds once: (2·blocks + 1)·2^-24·mag.
          const double rel = (2.0 * static_cast<double>(k / 32) + 1.0) * 0x1p-24;
          for (cpu::Isa level : levels) {
            const cpu::QGemmTable& table = cpu::qgemm_table(level);
            INFO("isa " << cpu::name_of(level) << ", " << n << "x" << k << ", M=" << m
                        << (exact ? ", exact operands" : ", real operands"));
            if (m >= table.large_min_m[kQ8]) REQUIRE(table.for_rows(cpu::QFormat::q8_0, m).fn == table.large[kQ8].fn);
            const std::vector<float> y = run_kernel(table.large[kQ8], x, wt);
            // The level's kernel for few rows: exact integer sums, then the same f32 operations in
            // the same order (qgemm_simd.h), so the same bits, padding NaNs included.
            const std::vector<float> few = run_kernel(table.kernel[kQ8], x, wt);
            REQUIRE(std::memcmp(y.data(), few.data(), y.size() * sizeof(float)) == 0);
            double worst = 0;
            int64_t untouched = 0, unequal = 0;
            for (int64_t i = 0; i < m + 4; ++i)
              for (int64_t j = 0; j < n + 5; ++j) {
                const float got = y[static_cast<size_t>(i * (n + 5) + j)];
                if (i >= m || j >= n) {
                  untouched += std::isnan(got) ? 1 : 0;
                  continue;
                }
                const float want = oracle[static_cast<size_t>(i * (n + 5) + j)];
                unequal += got != want ? 1 : 0;
                worst = std::max(worst,
                                 std::fabs(double{got} - want) / (rel * mag[static_cast<size_t>(i * n + j)] + 1e-30));
              }
            REQUIRE(untouched == (m + 4) * (n + 5) - m * n);
            if (exact) REQUIRE(unequal == 0);
            REQUIRE(worst <= 1.0);
          }
        }
      }
    }
  }
}

TEST_CASE("quantized matmul: the dispatch point takes the int16 Q8_0 kernel from large_min_m rows", "[matmul][quant]") {
  const std::vector<cpu::Isa> levels = madd_levels();
  if (levels.empty()) {
    WARN("skipped: this CPU has no AVX2");
    return;
  }
  test::IsaGuard guard;
  ThreadPool pool(2);
  const int64_t k = 576, n = 40;
  const Tensor wt = test::exact_weight(DType::q8_0, n, k, 31);
  const MatmulWeight w(wt);
  for (cpu::Isa level : levels) {
    const int64_t min_m = cpu::qgemm_table(level).large_min_m[kQ8];
    for (int64_t m : {min_m - 1, min_m, int64_t{300}}) {
      const Tensor x = test::exact_x(m, k, static_cast<uint32_t>(m));
      Tensor oracle = Tensor::empty({m, n}, DType::f32), y = Tensor::empty({m, n}, DType::f32);
      cpu::set_active_isa(level);
      matmul(x, w, oracle, pool, {MatmulPath::ref});
      matmul(x, w, y, pool, {MatmulPath::automatic});
      INFO("isa " << cpu::name_of(level) << ", M=" << m);
      // Exact operands: equal bit for bit, whichever kernel the rows select.
      REQUIRE(std::memcmp(y.data(), oracle.data(), y.nbytes()) == 0);
    }
  }
}
