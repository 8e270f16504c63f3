// Row ops of kernels/ops.h (elementwise, activations, norms, softmax, embedding):
// ref against formulas evaluated in double here, every ISA level against ref.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kernels/ops.h"
#include "test_ops_common.h"

using namespace qilin;
using namespace qilin::test;
using Catch::Contains;

namespace {

// Puts the values that stress range reduction and overflow at the front of a row.
void add_extremes(std::vector<float>& x) {
  const float extremes[] = {0.0f, -0.0f, 88.0f, -88.0f, 100.0f, -100.0f, 1e-30f, 20.0f, -20.0f, 9.5f, -9.5f};
  for (size_t i = 0; i < std::size(extremes) && i < x.size(); ++i) x[i] = extremes[i];
}

double silu_d(double x) { return x / (1.0 + std::exp(-x)); }

}  // namespace

TEST_CASE("ops: add, mul, scale and their in-place forms are exact at every level", "[ops]") {
  ThreadPool pool(2);
  for (int64_t n : kAwkwardSizes) {
    for (int64_t rows : {1, 5}) {
      INFO("rows " << rows << " n " << n);
      const size_t count = static_cast<size_t>(rows * n);
      auto a = random_floats(count, -4, 4, 1), b = random_floats(count, -4, 4, 2);
      std::vector<float> sum(count), prod(count), scaled(count);
      for (size_t i = 0; i < count; ++i) {
        sum[i] = a[i] + b[i];
        prod[i] = a[i] * b[i];
        scaled[i] = a[i] * 0.37f;
      }
      for_each_isa([&](cpu::Isa) {
        // One IEEE rounding per element at every level: the results must be identical.
        std::vector<float> y(count);
        add(view_of(a, {rows, n}), view_of(b, {rows, n}), view_of(y, {rows, n}), pool);
        require_close(y, sum, 0, 0);
        mul(view_of(a, {rows, n}), view_of(b, {rows, n}), view_of(y, {rows, n}), pool);
        require_close(y, prod, 0, 0);
        scale(view_of(a, {rows, n}), 0.37f, view_of(y, {rows, n}), pool);
        require_close(y, scaled, 0, 0);
        y = a;
        add_inplace(view_of(y, {rows, n}), view_of(b, {rows, n}), pool);
        require_close(y, sum, 0, 0);
        y = a;
        auto bias = std::vector<float>(b.begin(), b.begin() + n);
        add_bias(view_of(y, {rows, n}), view_of(bias, {n}), pool);
        for (size_t i = 0; i < count; ++i) REQUIRE(y[i] == a[i] + bias[i % static_cast<size_t>(n)]);
      });
    }
  }
}

TEST_CASE("ops: silu, gelu_tanh, gelu_erf and swiglu match double formulas and ref", "[ops]") {
  struct Activation {
    const char* name;
    void (*op)(const TensorView&, const TensorView&, ThreadPool&);
    std::function<double(double)> formula;
    // SIMD levels against ref. silu uses a polynomial exp (relative error a few ulp)
    // inside x / (1 + e): 2e-6 relative. gelu_tanh also rounds u to f32, an error that
    // exp amplifies by |2u| (<= 28 wherever |y| > 1e-12): 1e-5 relative above 1e-12.
    // gelu_erf uses an erf with absolute error 1.5e-7, scaled by 0.5|x| <= 6.
    double abs_tol, rel_tol;
  };
  const double k = std::sqrt(2.0 / M_PI);
  const Activation activations[] = {
      {"silu", silu, silu_d, 1e-30, 2e-6},
      // 0.5 x (1 + tanh(u)) == x / (1 + e^-2u); the second form has no cancellation for x << 0.
      {"gelu_tanh", gelu_tanh, [k](double x) { return x / (1 + std::exp(-2 * k * (x + 0.044715 * x * x * x))); }, 1e-12,
       1e-5},
      {"gelu_erf", gelu_erf, [](double x) { return 0.5 * x * (1 + std::erf(x * M_SQRT1_2)); }, 1.5e-6, 2e-6},
  };
  for (double x : {-3.0, -0.5, 0.1, 2.0}) {  // the form used above is GPT-2's tanh formula
    REQUIRE(activations[1].formula(x) ==
            Approx(0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x)))).epsilon(1e-12));
  }
  ThreadPool pool(2);
  for (const Activation& act : activations) {
    for (int64_t n : kAwkwardSizes) {
      INFO(act.name << " n " << n);
      const int64_t rows = 3;
      auto x = random_floats(static_cast<size_t>(rows * n), -12, 12, 3);
      add_extremes(x);
      std::vector<double> exact(x.size());
      for (size_t i = 0; i < x.size(); ++i) exact[i] = act.formula(x[i]);
      std::vector<float> want(x.size());
      at_ref([&] { act.op(view_of(x, {rows, n}), view_of(want, {rows, n}), pool); });
      // ref evaluates in double and rounds once: half an f32 ulp (2^-24 = 6e-8 relative),
      // plus slack for the naive formula's own double rounding near a midpoint.
      require_close(want, exact, 1e-38, 1e-7);
      for_each_isa([&](cpu::Isa) {
        std::vector<float> y = x;  // in place
        act.op(view_of(y, {rows, n}), view_of(y, {rows, n}), pool);
        require_close(y, want, act.abs_tol, act.rel_tol);
      });
    }
  }
}

TEST_CASE("ops: swiglu and its fused layout match silu(gate) * up", "[ops]") {
  ThreadPool pool(2);
  for (int64_t n : kAwkwardSizes) {
    INFO("n " << n);
    const int64_t rows = 3;
    const size_t count = static_cast<size_t>(rows * n);
    auto gate = random_floats(count, -12, 12, 4), up = random_floats(count, -3, 3, 5);
    add_extremes(gate);
    std::vector<double> exact(count);
    for (size_t i = 0; i < count; ++i) exact[i] = silu_d(gate[i]) * up[i];
    std::vector<float> want(count);
    at_ref([&] { swiglu(view_of(gate, {rows, n}), view_of(up, {rows, n}), view_of(want, {rows, n}), pool); });
    require_close(want, exact, 1e-38, 1e-7);  // double inside, one rounding (half an ulp + slack)
    std::vector<float> gate_up(2 * count);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(&gate_up[static_cast<size_t>(2 * r * n)], &gate[static_cast<size_t>(r * n)], n * sizeof(float));
      std::memcpy(&gate_up[static_cast<size_t>((2 * r + 1) * n)], &up[static_cast<size_t>(r * n)], n * sizeof(float));
    }
    for_each_isa([&](cpu::Isa) {
      std::vector<float> y(count), fused(count);
      swiglu(view_of(gate, {rows, n}), view_of(up, {rows, n}), view_of(y, {rows, n}), pool);
      require_close(y, want, 1e-30, 2e-6);  // polynomial exp in silu, as above
      swiglu_fused(view_of(gate_up, {rows, 2 * n}), view_of(fused, {rows, n}), pool);
      require_close(fused, y, 0, 0);  // the same kernel on the same numbers
    });
  }
}

TEST_CASE("ops: rmsnorm and layernorm match double formulas and ref", "[ops]") {
  ThreadPool pool(2);
  for (int64_t n : kAwkwardSizes) {
    INFO("n " << n);
    const int64_t rows = 4;
    const size_t count = static_cast<size_t>(rows * n);
    auto x = random_floats(count, -2, 2, 6);
    auto w = random_floats(static_cast<size_t>(n), 0.5f, 1.5f, 7), b = random_floats(static_cast<size_t>(n), -1, 1, 8);
    for (int64_t i = 0; i < n; ++i) {
      x[static_cast<size_t>(n + i)] = 1000.0f + x[static_cast<size_t>(n + i)];  // large mean: two-pass variance
      x[static_cast<size_t>(2 * n + i)] *= 1e-4f;                               // eps dominates the rms
    }
    const float eps = 1e-5f;
    std::vector<double> rms_exact(count), ln_exact(count);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = &x[static_cast<size_t>(r * n)];
      double sq = 0, sum = 0, var = 0;
      for (int64_t i = 0; i < n; ++i) sq += static_cast<double>(row[i]) * row[i], sum += row[i];
      const double mean = sum / n;
      for (int64_t i = 0; i < n; ++i) var += (row[i] - mean) * (row[i] - mean);
      for (int64_t i = 0; i < n; ++i) {
        const size_t at = static_cast<size_t>(r * n + i);
        rms_exact[at] = row[i] / std::sqrt(sq / n + eps) * w[static_cast<size_t>(i)];
        ln_exact[at] =
            (row[i] - mean) / std::sqrt(var / n + eps) * w[static_cast<size_t>(i)] + b[static_cast<size_t>(i)];
      }
    }
    std::vector<float> rms_ref(count), ln_ref(count), ln_nobias_ref(count);
    at_ref([&] {
      rmsnorm(view_of(x, {rows, n}), view_of(w, {n}), eps, view_of(rms_ref, {rows, n}), pool);
      layernorm(view_of(x, {rows, n}), view_of(w, {n}), view_of(b, {n}), eps, view_of(ln_ref, {rows, n}), pool);
      layernorm(view_of(x, {rows, n}), view_of(w, {n}), TensorView(), eps, view_of(ln_nobias_ref, {rows, n}), pool);
    });
    // ref accumulates in double and rounds once; the input rounding of x - mean in
    // the 1000-offset row adds a few 1e-7 absolute.
    require_close(rms_ref, rms_exact, 1e-12, 2e-7);
    require_close(ln_ref, ln_exact, 1e-6, 2e-7);
    for (size_t i = 0; i < count; ++i) {
      REQUIRE(std::fabs(ln_nobias_ref[i] + b[i % static_cast<size_t>(n)] - ln_ref[i]) <= 1e-6);
    }
    for_each_isa([&](cpu::Isa) {
      // f32 sums over up to 4095 elements in 8/16 lanes: relative error well under 1e-5;
      // layernorm outputs are O(1), so its bound is absolute.
      std::vector<float> y = x;  // in place
      rmsnorm(view_of(y, {rows, n}), view_of(w, {n}), eps, view_of(y, {rows, n}), pool);
      require_close(y, rms_ref, 1e-7, 1e-5);
      y = x;
      layernorm(view_of(y, {rows, n}), view_of(w, {n}), view_of(b, {n}), eps, view_of(y, {rows, n}), pool);
      require_close(y, ln_ref, 2e-5, 1e-5);
      layernorm(view_of(x, {rows, n}), view_of(w, {n}), TensorView(), eps, view_of(y, {rows, n}), pool);
      require_close(y, ln_nobias_ref, 2e-5, 1e-5);
    });
  }
}

TEST_CASE("ops: softmax matches the double formula and ref, also for huge logits", "[ops]") {
  ThreadPool pool(2);
  for (int64_t n : kAwkwardSizes) {
    INFO("n " << n);
    const int64_t rows = 3;
    const size_t count = static_cast<size_t>(rows * n);
    auto x = random_floats(count, -15, 15, 9);
    for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(n + i)] *= 1000.0f;  // exp would overflow unshifted
    std::vector<double> exact(count);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = &x[static_cast<size_t>(r * n)];
      double max = row[0], sum = 0;
      for (int64_t i = 0; i < n; ++i) max = std::max<double>(max, row[i]);
      for (int64_t i = 0; i < n; ++i) sum += std::exp(row[i] - max);
      for (int64_t i = 0; i < n; ++i) exact[static_cast<size_t>(r * n + i)] = std::exp(row[i] - max) / sum;
    }
    std::vector<float> want(count);
    at_ref([&] { softmax(view_of(x, {rows, n}), view_of(want, {rows, n}), pool); });
    // One rounding in ref (half an ulp + slack); below f32's normal range only absolute error counts.
    require_close(want, exact, 1e-38, 1e-7);
    for_each_isa([&](cpu::Isa) {
      std::vector<float> y = x;  // in place
      softmax(view_of(y, {rows, n}), view_of(y, {rows, n}), pool);
      // Polynomial exp (a few ulp) and an f32 sum of at most 4095 terms: 1e-5 relative.
      require_close(y, want, 1e-30, 1e-5);
    });
  }
}

TEST_CASE("ops: embedding returns the dequantized rows of every dtype", "[ops]") {
  ThreadPool pool(2);
  const int64_t vocab = 37;
  const std::vector<int32_t> ids = {0, 36, 5, 5, 17, 1, 36};
  for (int t = 0; t < kDTypeCount; ++t) {
    const auto dtype = static_cast<DType>(t);
    const DTypeTraits& tr = traits(dtype);
    const std::vector<int64_t> dims =
        tr.block_size == 1 ? kAwkwardSizes : std::vector<int64_t>{tr.block_size, 2 * tr.block_size};
    for (int64_t dim : dims) {
      INFO(tr.name << " dim " << dim);
      const size_t bytes = static_cast<size_t>(vocab) * row_bytes(dtype, dim);
      std::vector<uint8_t> table(bytes);
      auto values = random_floats(static_cast<size_t>(vocab * dim), -3, 3, 10);
      if (tr.from_float) {
        tr.from_float(values.data(), table.data(), vocab * dim);
      } else {
        for (size_t i = 0; i < bytes; ++i) table[i] = static_cast<uint8_t>(i * 131 + 7);  // i8 / i32: any bits
      }
      const TensorView table_view(table.data(), {vocab, dim}, dtype);
      std::vector<float> want(ids.size() * static_cast<size_t>(dim));
      for (size_t i = 0; i < ids.size(); ++i) {
        tr.to_float(table.data() + static_cast<size_t>(ids[i]) * row_bytes(dtype, dim),
                    &want[i * static_cast<size_t>(dim)], dim);
      }
      for_each_isa([&](cpu::Isa) {
        for (size_t count : {size_t{1}, ids.size()}) {
          std::vector<float> out(count * static_cast<size_t>(dim), NAN);
          embedding(table_view, std::span(ids.data(), count), view_of(out, {static_cast<int64_t>(count), dim}), pool);
          // Conversions to f32 are exact (f16, bf16) or the same dequantizer: identical bits.
          require_close(out, std::vector<float>(want.begin(), want.begin() + static_cast<ptrdiff_t>(out.size())), 0, 0);
        }
      });
    }
  }
}

TEST_CASE("ops: bad shapes, dtypes and ids throw errors naming the op and shapes", "[ops][errors]") {
  ThreadPool pool(1);
  std::vector<float> a(4 * 576), b(4 * 896), w(896);
  const auto a_view = view_of(a, {4, 576});
  REQUIRE_THROWS_WITH(add(a_view, view_of(b, {4, 896}), a_view, pool),
                      Contains("[add]") && Contains("4x576") && Contains("4x896"));
  REQUIRE_THROWS_WITH(swiglu(a_view, view_of(b, {4, 896}), a_view, pool), Contains("[swiglu]") && Contains("4x896"));
  REQUIRE_THROWS_WITH(swiglu_fused(view_of(b, {4, 896}), a_view, pool),
                      Contains("[swiglu_fused]") && Contains("4x896") && Contains("4x576"));
  REQUIRE_THROWS_WITH(rmsnorm(a_view, view_of(w, {896}), 1e-5f, a_view, pool),
                      Contains("[rmsnorm]") && Contains("w is 896") && Contains("4x576"));
  REQUIRE_THROWS_WITH(layernorm(a_view, view_of(w, {576}), view_of(w, {896}), 1e-5f, a_view, pool),
                      Contains("[layernorm]") && Contains("b is 896"));
  const TensorView half_view(a.data(), {4, 576}, DType::f16);
  REQUIRE_THROWS_WITH(silu(half_view, a_view, pool), Contains("[silu]") && Contains("4x576 f16") && Contains("f32"));
  REQUIRE_THROWS_WITH(softmax(TensorView(a.data(), {4, 0}, DType::f32), TensorView(a.data(), {4, 0}, DType::f32), pool),
                      Contains("[softmax]") && Contains("4x0"));

  std::vector<float> table(10 * 8), out(2 * 8);
  const std::vector<int32_t> bad_ids = {3, 10};
  REQUIRE_THROWS_WITH(embedding(view_of(table, {10, 8}), bad_ids, view_of(out, {2, 8}), pool),
                      Contains("[embedding]") && Contains("token id 10") && Contains("vocabulary of 10"));
  const std::vector<int32_t> negative_id = {-1};
  REQUIRE_THROWS_WITH(embedding(view_of(table, {10, 8}), negative_id, view_of(out, {1, 8}), pool),
                      Contains("token id -1"));
  REQUIRE_THROWS_WITH(embedding(view_of(table, {10, 8}), bad_ids, view_of(out, {2, 7}), pool),
                      Contains("[embedding]") && Contains("10x8") && Contains("2x7"));
}
