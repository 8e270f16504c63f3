// Quantized weights through the matmul dispatch point: every block format at
// every ISA level (forced in turn) against the scalar ref path and against
// dequantize-then-multiply, over awkward N and K; the activation quantizer; the
// plan table's quantized rows; matmul_group with quantized (and mixed) weights.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/qblock_decode.h"
#include "kernels/cpu/qgemm_pack.h"
#include "kernels/cpu/qgemm_table.h"
#include "kernels/matmul.h"
#include "test_matmul_data.h"
#include "test_matmul_quant_data.h"

using namespace qilin;

namespace {

// 20, 40, 64: the many-row kernels (AMX tiles of 16 rows, in pairs), with and without partial tiles.
constexpr int64_t kRows[] = {1, 2, 3, 5, 8, 20, 40, 64};

cpu::QFormat qformat(DType t) {
  switch (t) {
    case DType::q8_0:
      return cpu::QFormat::q8_0;
    case DType::q4_0:
      return cpu::QFormat::q4_0;
    case DType::q4_1:
      return cpu::QFormat::q4_1;
    case DType::q4_k:
      return cpu::QFormat::q4_k;
    default:
      return cpu::QFormat::q6_k;
  }
}

// x as the kernels see it, quantized by the ref level (every level is bit-identical to it, see below).
struct RefX {
  std::vector<int8_t> q;
  std::vector<float> d, ds;
  std::vector<int32_t> sums16;
};
RefX quantize_ref(const Tensor& x) {
  const int64_t m = x.shape()[0], k = x.shape()[1];
  RefX r{std::vector<int8_t>(static_cast<size_t>(m * k)), std::vector<float>(static_cast<size_t>(m * k / 32)),
         std::vector<float>(static_cast<size_t>(m * k / 32)), std::vector<int32_t>(static_cast<size_t>(m * k / 16))};
  cpu::qgemm_table(cpu::Isa::ref)
      .quantize_x(x.data_as<float>(), k, m, k, r.q.data(), r.d.data(), r.ds.data(), r.sums16.data());
  return r;
}

// mag[i][n] = Σ_k (|A·(q - offset)| + |B|)·|dx·xq|: the magnitude of every term the
// kernels add, of which each f32 rounding is a fraction (qgemm_table.h's model).
std::vector<double> term_magnitudes(const Tensor& w, const RefX& x, int64_t m) {
  const int64_t n = w.shape()[0], k = w.shape()[1];
  const cpu::QFormat f = qformat(w.dtype());
  std::vector<double> mag(static_cast<size_t>(m * n));
  for (int64_t j = 0; j < n; ++j) {
    const void* row = w.view().row(j);
    for (int64_t b = 0; b < k / 32; ++b) {
      uint8_t q[32];
      cpu::decode_quants(f, row, b, q);
      const cpu::BlockScales s = cpu::block_scales(f, row, b);
      for (int64_t i = 0; i < m; ++i) {
        double sum = 0;
        for (int e = 0; e < 32; ++e) {
          const double wa = std::fabs(double{s.a[e / 16]} * (q[e] - cpu::quant_offset(f))) + std::fabs(s.b);
          sum += wa * std::fabs(double{x.d[static_cast<size_t>(i * k / 32 + b)]} *
                                x.q[static_cast<size_t>(i * k + b * 32 + e)]);
        }
        mag[static_cast<size_t>(i * n + j)] += sum;
      }
    }
  }
  return mag;
}

// x · Wᵀ with W dequantized by core's reference dequantizer, in double, and Σ|w·x| per output.
struct DequantizedProduct {
  std::vector<double> y, abs;
};
DequantizedProduct dequantized_product(const Tensor& x, const Tensor& w) {
  const int64_t m = x.shape()[0], n = w.shape()[0], k = w.shape()[1];
  const std::vector<float> wd = test::dequantized(w);
  DequantizedProduct p{std::vector<double>(static_cast<size_t>(m * n)),
                       std::vector<double>(static_cast<size_t>(m * n))};
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0, abs = 0;
      for (int64_t e = 0; e < k; ++e) {
        const double t = double{wd[static_cast<size_t>(j * k + e)]} * x.data_as<float>()[i * k + e];
        sum += t;
        abs += std::fabs(t);
      }
      p.y[static_cast<size_t>(i * n + j)] = sum;
      p.abs[static_cast<size_t>(i * n + j)] = abs;
    }
  return p;
}

// The kernels that multiply x rounded to bf16 by the weight dequantized to bf16 (the
// amx level's, for many rows): both roundings are to nearest even, 2^-9 relative each,
// so with f32 sums the result is within (2^-8 + 2^-18 + K·2^-24)·Σ|w·x| of the exact product.
double bf16_product_bound(int64_t k) { return 0x1p-8 + 0x1p-18 + static_cast<double>(k) * 0x1p-24; }

bool runs_in_bf16(DType t, int64_t m) { return cpu::qgemm_table(cpu::active_isa()).for_rows(qformat(t), m).bf16_x; }

Tensor run(const Tensor& x, const MatmulWeight& w, ThreadPool& pool, MatmulPath path) {
  Tensor y = Tensor::empty({x.shape()[0], w.n()}, DType::f32);
  for (int64_t i = 0; i < y.numel(); ++i) y.data_as<float>()[i] = std::numeric_limits<float>::quiet_NaN();
  matmul(x, w, y, pool, {path});
  return y;
}

}  // namespace

TEST_CASE("quantized matmul: every level equals the ref path exactly on exact operands", "[matmul][quant]") {
  test::IsaGuard guard;
  ThreadPool pool(2);
  uint32_t seed = 100;
  for (DType t : test::kQuantTypes) {
    const std::vector<int64_t> ks =
        test::is_k_quant(t) ? std::vector<int64_t>{256, 512} : std::vector<int64_t>{32, 96, 1024};
    for (int64_t k : ks) {
      for (int64_t n : {1, 7, 17, 33, 50}) {
        const Tensor wt = test::exact_weight(t, n, k, ++seed);
        const MatmulWeight w(wt);
        for (int64_t m : kRows) {
          const Tensor x = test::exact_x(m, k, ++seed);
          const Tensor oracle = run(x, w, pool, MatmulPath::ref);
          for (cpu::Isa level : test::supported_levels()) {
            cpu::set_active_isa(level);
            for (MatmulPath path : {MatmulPath::simd, MatmulPath::automatic}) {
              const Tensor y = run(x, w, pool, path);
              INFO(name_of(t) << " " << n << "x" << k << ", M=" << m << ", isa " << cpu::name_of(level) << ", path "
                              << name_of(path));
              if (runs_in_bf16(t, m) && test::is_k_quant(t)) {
                // The k-quants' exact weights (A·q with up to 10 significant bits) round in bf16;
                // exact_x does not. Everything else stays exact.
                const DequantizedProduct p = dequantized_product(x, wt);
                double worst = 0;
                for (size_t i = 0; i < p.y.size(); ++i) {
                  const double err = std::fabs(y.data_as<float>()[i] - p.y[i]);
                  worst = std::max(worst, err / (bf16_product_bound(k) * p.abs[i] + 1e-30));
                }
                REQUIRE(worst <= 1.0);
                continue;
              }
              // Exact: every product and partial sum is representable (test_matmul_quant_data.h),
              // in bf16 too for the 32-element formats' weights (at most 8 significant bits).
              REQUIRE(std::memcmp(y.data(), oracle.data(), y.nbytes()) == 0);
            }
          }
        }
      }
    }
  }
}

TEST_CASE(
    "quantized matmul: every level is within its rounding error of ref (or of the exact product) on real operands",
    "[matmul][quant]") {
  test::IsaGuard guard;
  ThreadPool pool(2);
  uint32_t seed = 300;
  for (DType t : test::kQuantTypes) {
    // K: one block, an odd number of blocks (127 of 32, 5 super-blocks).
    const std::vector<int64_t> ks =
        test::is_k_quant(t) ? std::vector<int64_t>{256, 1280} : std::vector<int64_t>{32, 4064};
    for (int64_t k : ks) {
      for (int64_t n : {1, 31, 33}) {
        const Tensor wt = test::quantized_weight(t, n, k, ++seed);
        const MatmulWeight w(wt);
        for (int64_t m : {1, 3, 8, 64}) {
          const Tensor x = test::random_tensor(m, k, DType::f32, test::Values::reals, ++seed);
          const Tensor oracle = run(x, w, pool, MatmulPath::ref);
          const std::vector<double> mag = term_magnitudes(wt, quantize_ref(x), m);
          const DequantizedProduct exact = dequantized_product(x, wt);
          // Each output sums 2 terms per block (scaled integer sum, min term) with one rounding
          // each, after up to 3 roundings of its scale product: within (2·blocks + 4)·2^-24 of
          // mag on any path, so two paths differ by at most twice that.
          const double rel = 2.0 * (2.0 * static_cast<double>(k / 32) + 4.0) * 0x1p-24;
          for (cpu::Isa level : test::supported_levels()) {
            cpu::set_active_isa(level);
            const Tensor y = run(x, w, pool, MatmulPath::simd);
            const bool bf16 = runs_in_bf16(t, m);  // judged against the exact product instead
            double worst = 0;
            for (int64_t i = 0; i < y.numel(); ++i) {
              const auto u = static_cast<size_t>(i);
              const double got = y.data_as<float>()[i];
              const double err = bf16 ? std::fabs(got - exact.y[u]) : std::fabs(got - oracle.data_as<float>()[i]);
              const double allowed = bf16 ? bf16_product_bound(k) * exact.abs[u] : rel * mag[u];
              worst = std::max(worst, err / (allowed + 1e-30));
            }
            INFO(name_of(t) << " " << n << "x" << k << ", M=" << m << ", isa " << cpu::name_of(level)
                            << (bf16 ? " (bf16 kernel)" : ""));
            REQUIRE(worst <= 1.0);
          }
        }
      }
    }
  }
}

// Many rows against a long K: the AMX kernels cut K into chunks whose part of x fits
// in L2 (1 MiB of bf16: 1024 elements at 512 rows, 1536 at 300), and each chunk into
// equal passes of at most 320 elements (256 at 512 rows; 320 and 256 at 300), carrying
// partial sums in y between them. K = 2304 gives whole chunks and a short last one; n = 40 a
// partial group and a lone group; 300 rows a partial x tile. y starts as NaN, so a
// first chunk that read y instead of zeroing would show.
TEST_CASE("quantized matmul: the AMX kernels' chunks of K add up to the whole product", "[matmul][quant]") {
  if (!cpu::isa_supported(cpu::Isa::amx)) {
    WARN("skipped: this CPU has no AMX");
    return;
  }
  test::IsaGuard guard;
  cpu::set_active_isa(cpu::Isa::amx);
  ThreadPool pool(2);
  uint32_t seed = 700;
  const int64_t k = 2304, n = 40;
  for (DType t : test::kQuantTypes) {
    const Tensor wt = test::quantized_weight(t, n, k, ++seed);
    const MatmulWeight w(wt);
    for (int64_t m : {300, 512}) {
      const Tensor x = test::random_tensor(m, k, DType::f32, test::Values::reals, ++seed);
      REQUIRE(runs_in_bf16(t, m));
      const DequantizedProduct exact = dequantized_product(x, wt);
      const Tensor y = run(x, w, pool, MatmulPath::simd);
      double worst = 0;
      for (int64_t i = 0; i < y.numel(); ++i) {
        const auto u = static_cast<size_t>(i);
        worst = std::max(
            worst, std::fabs(y.data_as<float>()[i] - exact.y[u]) / (bf16_product_bound(k) * exact.abs[u] + 1e-30));
      }
      INFO(name_of(t) << " " << n << "x" << k << ", M=" << m);
      REQUIRE(worst <= 1.0);
    }
  }
}

TEST_CASE("quantized matmul: ref is dequantize-then-multiply within the activation quantization error",
          "[matmul][quant]") {
  ThreadPool pool(1);
  uint32_t seed = 500;
  for (DType t : test::kQuantTypes) {
    const int64_t k = test::is_k_quant(t) ? 1280 : 4064, n = 33, m = 3;
    const Tensor wt = test::quantized_weight(t, n, k, ++seed);
    const std::vector<float> wd = test::dequantized(wt);
    const Tensor x = test::random_tensor(m, k, DType::f32, test::Values::reals, ++seed);
    const RefX xq = quantize_ref(x);
    const std::vector<double> mag = term_magnitudes(wt, xq, m);
    const Tensor y = run(x, MatmulWeight(wt), pool, MatmulPath::ref);
    double worst_exact_x = 0, worst_real_x = 0, typical = 0;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double with_xq = 0, with_x = 0, quant_bound = 0, abs_wx = 0;
        for (int64_t e = 0; e < k; ++e) {
          const double wv = wd[static_cast<size_t>(j * k + e)];
          const double dx = xq.d[static_cast<size_t>((i * k + e) / 32)];
          with_xq += wv * dx * xq.q[static_cast<size_t>(i * k + e)];
          with_x += wv * x.data_as<float>()[i * k + e];
          // Rounding x/dx to an integer moves it by at most dx/2 (plus x·2^-22 for the f32
          // product x·(1/dx) and its reciprocal).
          quant_bound += std::fabs(wv) * (0.5 * dx + std::fabs(x.data_as<float>()[i * k + e]) * 0x1p-22);
          abs_wx += std::fabs(wv * x.data_as<float>()[i * k + e]);
        }
        const double got = y.data_as<float>()[i * n + j];
        // Same quantized x: only the dequantizer's f32 rounding of each weight (2^-24 of it, twice
        // for q4_1/q6_k's two operations) and ref's final rounding to f32 separate them.
        const double exact_bound = 2 * 0x1p-24 * mag[static_cast<size_t>(i * n + j)] + 0x1p-24 * std::fabs(got);
        worst_exact_x = std::max(worst_exact_x, std::fabs(got - with_xq) / (exact_bound + 1e-30));
        worst_real_x = std::max(worst_real_x, std::fabs(got - with_x) / (quant_bound + exact_bound + 1e-30));
        typical += std::fabs(got - with_x) / (abs_wx * static_cast<double>(n * m));
      }
    }
    INFO(name_of(t) << ": mean |error| / Σ|w·x| = " << typical);
    REQUIRE(worst_exact_x <= 1.0);
    REQUIRE(worst_real_x <= 1.0);
    // 8-bit blocks: the error is a few thousandths of Σ|w·x|, not a fraction of it.
    REQUIRE(typical < 2e-3);
  }
}

TEST_CASE("quantized matmul: the activation quantizer is bit-identical at every level", "[matmul][quant]") {
  // Reals of every magnitude, exact ties (x·inv = j + 0.5 when a block's amax is 127),
  // an all-zero block, and a block of tiny values whose scale is subnormal.
  const int64_t m = 3, k = 32 * 40;
  std::vector<float> x(static_cast<size_t>(m * k));
  std::mt19937 rng(7);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = std::ldexp(std::uniform_real_distribution<float>(-1.f, 1.f)(rng), static_cast<int>(i % 23) - 11);
  }
  for (int e = 0; e < 32; ++e)
    x[static_cast<size_t>(e)] = e == 0 ? 127.f : (e % 2 ? -1.f : 1.f) * (static_cast<float>(e) + 0.5f);
  for (int e = 32; e < 64; ++e) x[static_cast<size_t>(e)] = 0.f;
  for (int e = 64; e < 96; ++e) x[static_cast<size_t>(e)] = std::ldexp(static_cast<float>(e - 80), -140);
  const cpu::QGemmTable& ref = cpu::qgemm_table(cpu::Isa::ref);
  const size_t nb = static_cast<size_t>(m * k / 32);
  std::vector<int8_t> q0(static_cast<size_t>(m * k));
  std::vector<float> d0(nb), ds0(nb);
  std::vector<int32_t> s0(2 * nb);
  ref.quantize_x(x.data(), k, m, k, q0.data(), d0.data(), ds0.data(), s0.data());
  REQUIRE(q0[1] == -2);  // -1.5 rounds to even
  REQUIRE(q0[2] == 2);   // 2.5 rounds to even
  REQUIRE(d0[1] == 0.f);
  for (cpu::Isa level : test::supported_levels()) {
    std::vector<int8_t> q(q0.size());
    std::vector<float> d(nb), ds(nb);
    std::vector<int32_t> s(2 * nb);
    cpu::qgemm_table(level).quantize_x(x.data(), k, m, k, q.data(), d.data(), ds.data(), s.data());
    INFO("level " << cpu::name_of(level));
    REQUIRE(q == q0);
    REQUIRE(std::memcmp(d.data(), d0.data(), nb * 4) == 0);
    REQUIRE(std::memcmp(ds.data(), ds0.data(), nb * 4) == 0);
    REQUIRE(s == s0);
  }
}

TEST_CASE("quantized matmul: matmul_group is bit-identical to one matmul per weight", "[matmul][quant]") {
  test::IsaGuard guard;
  ThreadPool pool(2);
  // A Q4_K_M-like attention (q4_k Q and K, q6_k V), a q4_0 MLP pair, and a mix with floats.
  const int64_t k = 512;
  const std::vector<std::vector<DType>> groups = {{DType::q4_k, DType::q4_k, DType::q6_k},
                                                  {DType::q4_0, DType::q4_0},
                                                  {DType::q8_0, DType::f32, DType::q4_1, DType::bf16}};
  const int64_t ns[] = {96, 33, 64, 17};
  uint32_t seed = 700;
  for (const std::vector<DType>& types : groups) {
    std::vector<Tensor> tensors;
    std::vector<MatmulWeight> weights;
    for (size_t i = 0; i < types.size(); ++i) {
      tensors.push_back(traits(types[i]).is_float ? test::random_tensor(ns[i], k, types[i], test::Values::reals, ++seed)
                                                  : test::quantized_weight(types[i], ns[i], k, ++seed));
    }
    for (const Tensor& t : tensors) weights.emplace_back(t.view());
    std::vector<const MatmulWeight*> wp;
    for (const MatmulWeight& w : weights) wp.push_back(&w);
    for (cpu::Isa level : test::supported_levels()) {
      cpu::set_active_isa(level);
      for (int64_t m : {1, 3, 64}) {
        const Tensor x = test::random_tensor(m, k, DType::f32, test::Values::reals, ++seed);
        std::vector<Tensor> separate, grouped;
        std::vector<TensorView> views;
        for (size_t i = 0; i < types.size(); ++i) {
          separate.push_back(run(x, weights[i], pool, MatmulPath::automatic));
          grouped.push_back(Tensor::zeros({m, ns[i]}, DType::f32));
          views.push_back(grouped.back().view());
        }
        matmul_group(x, wp, views, pool);
        for (size_t i = 0; i < types.size(); ++i) {
          INFO("isa " << cpu::name_of(level) << ", M " << m << ", weight " << i << " " << name_of(types[i]));
          CHECK(std::memcmp(separate[i].data(), grouped[i].data(), separate[i].nbytes()) == 0);
        }
      }
    }
  }
}

TEST_CASE("quantized matmul: the plan, forced paths and packing", "[matmul][quant]") {
  test::IsaGuard guard;
  ThreadPool pool(2);
  for (DType t : test::kQuantTypes) REQUIRE(matmul_accepts(t));
  REQUIRE(matmul_accepts(DType::bf16));
  REQUIRE(!matmul_accepts(DType::i8));
  for (DType t : test::kQuantTypes) {
    const Tensor wt = test::exact_weight(t, 40, 256, 9);
    INFO(name_of(t));
    cpu::set_active_isa(cpu::Isa::ref);
    {
      MatmulWeight w(wt);
      REQUIRE(plan_matmul(1, w) == MatmulPath::ref);
      REQUIRE(plan_matmul(512, w) == MatmulPath::ref);
      w.prepare(512);
      REQUIRE(w.packed_bytes() == 0);  // the scalar kernels read the stored rows
    }
    if (cpu::isa_supported(cpu::Isa::avx2)) {
      cpu::set_active_isa(cpu::best_isa());
      MatmulWeight w(wt);
      REQUIRE(plan_matmul(1, w) == MatmulPath::simd);
      REQUIRE(plan_matmul(512, w) == MatmulPath::simd);
      REQUIRE(w.packed_bytes() == 0);
      MatmulWeight on_pool(wt);
      w.prepare(1);  // packed on this thread
      on_pool.prepare(64, {}, &pool);
      const size_t packed = w.packed_bytes();
      REQUIRE(packed == cpu::qpack_bytes(qformat(t), 40, 256));  // 3 groups of 16 rows, the last one padded
      REQUIRE(on_pool.packed_bytes() == packed);
      const Tensor x = test::exact_x(5, 256, 3);
      const Tensor expect = run(x, w, pool, MatmulPath::ref);
      for (const MatmulWeight* pw : {&w, &on_pool}) {
        // Exact operands: any packing fault would show (test_matmul_quant_data.h).
        REQUIRE(std::memcmp(run(x, *pw, pool, MatmulPath::automatic).data(), expect.data(), expect.nbytes()) == 0);
        REQUIRE(pw->packed_bytes() == packed);  // packed once
      }
    }
    const MatmulWeight w(wt);
    const Tensor x = Tensor::zeros({2, 256}, DType::f32);
    Tensor y = Tensor::zeros({2, 40}, DType::f32);
    REQUIRE_THROWS_WITH(matmul(x, w, y, pool, {MatmulPath::eigen}),
                        Catch::Contains("[matmul] path eigen cannot multiply by a " + std::string(name_of(t))));
    REQUIRE_THROWS_WITH(matmul(x, w, y, pool, {MatmulPath::onednn}),
                        Catch::Contains("[matmul] path onednn cannot multiply by a " + std::string(name_of(t))));
    const Tensor x_bad = Tensor::zeros({2, 255}, DType::f32);
    REQUIRE_THROWS_WITH(matmul(x_bad, w, y, pool), "[matmul] x is 2x255 but w expects 256 inputs");
  }
}
