// The matmul dispatch point: every path against the scalar oracle, at every
// ISA level, over awkward shapes; the plan table; forcing; errors; verbose.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"
#include "kernels/cpu/gemm_table.h"
#include "kernels/matmul.h"
#include "test_matmul_data.h"

using namespace qilin;
using qilin::test::Values;

namespace {

struct Shape3 {
  int64_t k, n;
};
// K and N chosen to leave tails after every vector width (8, 16, 32 elements)
// and register block (4, 8 rows); 4095 is the largest K the oracle runs fast.
constexpr int64_t kRows[] = {1, 2, 7, 31, 33, 64};
constexpr Shape3 kShapes[] = {{1, 1}, {17, 7}, {32, 33}, {96, 100}, {576, 31}, {4095, 9}};
constexpr DType kWeightTypes[] = {DType::f32, DType::f16, DType::bf16};

struct PathCase {
  MatmulPath path;
  bool allow_bf16 = false;
};

// The largest error a path may make, as a multiple of sum_k |x·w| (see
// abs_product_sums): f32 accumulation in any order stays within K·2^-24 of it
// (the oracle sums in double: its own error is negligible); rounding x to bf16
// (round-to-nearest, 8 significant bits) adds 2^-8, and so does rounding an
// f32/f16 weight to bf16 when allow_bf16_compute lets oneDNN, or the simd path at
// a level with own bf16-compute kernels (AMX; from a few rows on, taken as any here),
// do it.
double relative_bound(const PathCase& c, DType w, int64_t k, cpu::Isa level) {
  double bound = static_cast<double>(k) * 0x1p-24;
  const bool own_bf16 = c.path == MatmulPath::simd && c.allow_bf16 && cpu::gemm_table(level).gemm_bf16_fast;
  const bool bf16_x = (c.path == MatmulPath::onednn && (w == DType::bf16 || c.allow_bf16)) || own_bf16;
  if (bf16_x) bound += 0x1p-8;
  if ((c.path == MatmulPath::onednn || own_bf16) && c.allow_bf16 && w != DType::bf16) bound += 0x1p-8;
  return bound;
}

std::vector<PathCase> paths_for(DType w) {
  std::vector<PathCase> paths{{MatmulPath::ref},       {MatmulPath::simd},       {MatmulPath::eigen},
                              {MatmulPath::automatic}, {MatmulPath::simd, true}, {MatmulPath::automatic, true}};
  // oneDNN 2.6: f32 anywhere, bf16 only with AVX-512, no f16 unless converted to bf16.
  const bool onednn_bf16 = cpu::isa_supported(cpu::Isa::avx512);
  if (w == DType::f32 || (w == DType::bf16 && onednn_bf16)) paths.push_back({MatmulPath::onednn});
  if (onednn_bf16) paths.push_back({MatmulPath::onednn, true});
  return paths;
}

// Runs every path at every ISA level on one set of operands and compares with the oracle.
void check_all_paths(Values values, ThreadPool& pool) {
  test::IsaGuard guard;
  uint32_t seed = 1;
  for (DType wt : kWeightTypes) {
    for (const Shape3& s : kShapes) {
      const Tensor w = test::random_tensor(s.n, s.k, wt, values, ++seed);
      for (int64_t m : kRows) {
        const Tensor x = test::random_tensor(m, s.k, DType::f32, values, ++seed);
        const std::vector<double> scale = test::abs_product_sums(x, w);
        Tensor oracle = Tensor::empty({m, s.n}, DType::f32);
        MatmulWeight weight(w);
        matmul(x, weight, oracle, pool, {MatmulPath::ref});
        for (cpu::Isa level : test::supported_levels()) {
          cpu::set_active_isa(level);
          for (const PathCase& c : paths_for(wt)) {
            MatmulOptions opts;
            opts.force = c.path;
            opts.allow_bf16_compute = c.allow_bf16;
            Tensor y = Tensor::zeros({m, s.n}, DType::f32);
            matmul(x, weight, y, pool, opts);
            // Integer operands are exact on every path (see Values): no tolerance at all.
            const PathCase taken{plan_matmul(m, weight, opts), c.allow_bf16};
            const double rel = values == Values::integers ? 0.0 : relative_bound(taken, wt, s.k, level);
            double worst = 0;  // largest error as a fraction of what is allowed
            for (int64_t i = 0; i < m * s.n; ++i) {
              const double err = std::fabs(double{y.data_as<float>()[i]} - oracle.data_as<float>()[i]);
              const double allowed = rel * scale[static_cast<size_t>(i)];
              worst = std::max(worst, err == 0 ? 0.0 : (allowed == 0 ? 1e30 : err / allowed));
            }
            INFO("w " << name_of(wt) << " " << s.n << "x" << s.k << ", M=" << m << ", isa " << cpu::name_of(level)
                      << ", path " << name_of(c.path) << (c.allow_bf16 ? " (bf16 allowed)" : ""));
            REQUIRE(worst <= 1.0);
          }
        }
      }
    }
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Captures what `fn` writes to stderr (file descriptor 2).
template <class F>
std::string capture_stderr(F&& fn) {
  char path[] = "/tmp/qilin_test_matmul_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  const int saved = dup(2);
  dup2(fd, 2);
  fn();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::string text = read_file(path);
  std::remove(path);
  return text;
}

}  // namespace

TEST_CASE("matmul: every path is exact on integer operands", "[matmul]") {
  ThreadPool pool(2);
  check_all_paths(Values::integers, pool);
}

TEST_CASE("matmul: every path is within its dtype's error bound on real operands", "[matmul]") {
  ThreadPool pool(2);
  check_all_paths(Values::reals, pool);
}

TEST_CASE("matmul: an uneven thread split gives the same result", "[matmul]") {
  // Three threads on this two-core machine: N splits into ragged ranges.
  ThreadPool pool3(3), pool1(1);
  for (DType wt : kWeightTypes) {
    const Tensor w = test::random_tensor(100, 96, wt, Values::reals, 7);
    for (int64_t m : {5, 40}) {  // 40 rows: the own bf16-compute kernels where bf16 is allowed (AMX)
      const Tensor x = test::random_tensor(m, 96, DType::f32, Values::reals, 8);
      for (PathCase c : {PathCase{MatmulPath::simd}, PathCase{MatmulPath::eigen}, PathCase{MatmulPath::ref},
                         PathCase{MatmulPath::simd, true}}) {
        Tensor y1 = Tensor::zeros({m, 100}, DType::f32), y3 = Tensor::zeros({m, 100}, DType::f32);
        MatmulWeight weight(w);
        MatmulOptions opts;
        opts.force = c.path;
        opts.allow_bf16_compute = c.allow_bf16;
        matmul(x, weight, y1, pool1, opts);
        matmul(x, weight, y3, pool3, opts);
        // Each output is computed by one thread in the same order whatever the split: bit-identical.
        INFO("path " << name_of(c.path) << (c.allow_bf16 ? " (bf16 allowed)" : "") << ", w " << name_of(wt)
                     << ", M=" << m);
        REQUIRE(std::memcmp(y1.data(), y3.data(), y1.nbytes()) == 0);
      }
    }
  }
}

TEST_CASE("matmul: oneDNN's two ways of threading give the oracle's result", "[matmul]") {
  // Rows split across Qilin's pool (one primitive per thread, ragged last part)
  // or handed to oneDNN's OpenMP team: both exact on integer operands.
  ThreadPool pool(2);
  for (DType wt : {DType::f32, DType::bf16}) {
    if (wt == DType::bf16 && !cpu::isa_supported(cpu::Isa::avx512)) continue;  // no bf16 in oneDNN there
    const Tensor w = test::random_tensor(70, 96, wt, Values::integers, 21);
    MatmulWeight weight(w);
    for (int64_t m : {1, 17, 33, 300}) {
      const Tensor x = test::random_tensor(m, 96, DType::f32, Values::integers, 22);
      Tensor oracle = Tensor::empty({m, 70}, DType::f32);
      matmul(x, weight, oracle, pool, {MatmulPath::ref});
      for (const char* mode : {"omp", "pool"}) {
        setenv("QILIN_ONEDNN_THREADS", mode, 1);
        Tensor y = Tensor::zeros({m, 70}, DType::f32);
        matmul(x, weight, y, pool, {MatmulPath::onednn});
        unsetenv("QILIN_ONEDNN_THREADS");
        INFO("w " << name_of(wt) << ", M=" << m << ", threading " << mode);
        REQUIRE(std::memcmp(y.data(), oracle.data(), y.nbytes()) == 0);
      }
    }
  }
}

TEST_CASE("matmul: prepare() reorders the weight once, later calls reuse it", "[matmul]") {
  if (!cpu::isa_supported(cpu::Isa::avx512_bf16)) {
    SUCCEED("the plan sends bf16 to oneDNN only from avx512_bf16 on");
    return;
  }
  ThreadPool pool(2);
  const Tensor w = test::random_tensor(200, 96, DType::bf16, Values::integers, 31);
  MatmulWeight weight(w);
  REQUIRE(weight.packed_bytes() == 0);
  weight.prepare(512);
  const size_t packed = weight.packed_bytes();
  REQUIRE(packed >= 200 * 96 * 2);  // one bf16 copy, padded to oneDNN's blocks
  for (int64_t m : {4, 33, 300, 512, 7}) {
    const Tensor x = test::random_tensor(m, 96, DType::f32, Values::integers, 32);
    Tensor y = Tensor::empty({m, 200}, DType::f32);
    REQUIRE(plan_matmul(m, weight) == MatmulPath::onednn);
    matmul(x, weight, y, pool);
    REQUIRE(weight.packed_bytes() == packed);  // no second reorder, whatever M and threading
  }
}

TEST_CASE("matmul: bf16 compute gives the same bits however the pool splits it", "[matmul]") {
  // With many rows and a small weight the pool splits rows (each thread converts the whole
  // weight), else columns; every output is the same sum in the same order either way.
  if (!cpu::isa_supported(cpu::Isa::amx)) {
    SUCCEED("no AMX: no own bf16-compute kernels");
    return;
  }
  test::IsaGuard guard;
  cpu::set_active_isa(cpu::Isa::amx);
  ThreadPool pool1(1), pool2(2), pool3(3);
  MatmulOptions opts;
  opts.allow_bf16_compute = true;
  for (DType wt : kWeightTypes) {
    const Tensor w = test::random_tensor(200, 1100, wt, Values::reals, 51);  // K in two chunks at 512 rows
    const MatmulWeight weight(w);
    for (int64_t m : {417, 512, 40}) {
      const Tensor x = test::random_tensor(m, 1100, DType::f32, Values::reals, 52);
      Tensor y1 = Tensor::zeros({m, 200}, DType::f32), y2 = Tensor::zeros({m, 200}, DType::f32),
             y3 = Tensor::zeros({m, 200}, DType::f32);
      matmul(x, weight, y1, pool1, opts);
      matmul(x, weight, y2, pool2, opts);
      matmul(x, weight, y3, pool3, opts);
      INFO("w " << name_of(wt) << ", M=" << m);
      REQUIRE(std::memcmp(y1.data(), y2.data(), y1.nbytes()) == 0);
      REQUIRE(std::memcmp(y1.data(), y3.data(), y1.nbytes()) == 0);
    }
  }
}

TEST_CASE("matmul: bf16 compute on the own AMX kernels keeps no copy of the weight", "[matmul]") {
  if (!cpu::isa_supported(cpu::Isa::amx)) {
    SUCCEED("no AMX: bf16 compute runs on oneDNN, which reorders the weight once");
    return;
  }
  test::IsaGuard guard;
  cpu::set_active_isa(cpu::Isa::amx);
  ThreadPool pool(2);
  MatmulOptions opts;
  opts.allow_bf16_compute = true;
  for (DType wt : kWeightTypes) {
    const Tensor w = test::random_tensor(200, 96, wt, Values::reals, 41);
    MatmulWeight weight(w);
    weight.prepare(512, opts, &pool);
    REQUIRE(weight.packed_bytes() == 0);
    for (int64_t m : {7, 16, 33, 300, 512, 1, 6}) {
      const Tensor x = test::random_tensor(m, 96, DType::f32, Values::reals, 42);
      Tensor oracle = Tensor::empty({m, 200}, DType::f32), y = Tensor::empty({m, 200}, DType::f32);
      matmul(x, weight, oracle, pool, {MatmulPath::ref});
      matmul(x, weight, y, pool, opts);
      INFO("w " << name_of(wt) << ", M=" << m);
      REQUIRE(plan_matmul(m, weight, opts) == MatmulPath::simd);
      REQUIRE(weight.packed_bytes() == 0);  // no path built a pack on first use either
      const std::vector<double> scale = test::abs_product_sums(x, w);
      // x (and an f32/f16 weight) rounded to bf16 from 7 rows on: 2^-8 relative each, f32 sums.
      const double rel = 96 * 0x1p-24 + (m >= 7 ? (wt == DType::bf16 ? 0x1p-8 : 0x1p-7) : 0.0);
      int64_t wrong = 0;
      for (int64_t i = 0; i < m * 200; ++i) {
        wrong +=
            std::fabs(double{y.data_as<float>()[i]} - oracle.data_as<float>()[i]) > rel * scale[static_cast<size_t>(i)];
      }
      REQUIRE(wrong == 0);
    }
  }
}

TEST_CASE("matmul: the plan follows the table", "[matmul]") {
  test::IsaGuard guard;
  const Tensor wf = Tensor::zeros({64, 64}, DType::f32), wb = Tensor::zeros({64, 64}, DType::bf16),
               wh = Tensor::zeros({64, 64}, DType::f16);
  const MatmulWeight f32(wf), bf16(wb), f16(wh);
  cpu::set_active_isa(cpu::Isa::ref);
  // No AVX2: only portable code.
  for (const MatmulWeight* w : {&f32, &bf16, &f16}) {
    REQUIRE(plan_matmul(1, *w) == MatmulPath::eigen);
    REQUIRE(plan_matmul(512, *w) == MatmulPath::eigen);
  }
  if (cpu::isa_supported(cpu::Isa::avx512_bf16)) {
    cpu::set_active_isa(cpu::best_isa());
    REQUIRE(plan_matmul(1, f32) == MatmulPath::simd);
    REQUIRE(plan_matmul(1, bf16) == MatmulPath::simd);
    REQUIRE(plan_matmul(1, f16) == MatmulPath::simd);
    REQUIRE(plan_matmul(512, bf16) == MatmulPath::onednn);
    REQUIRE(plan_matmul(512, f32) == MatmulPath::onednn);
    REQUIRE(plan_matmul(512, f16) == MatmulPath::simd);
    // The thresholds of kCpuPlan, at their edges.
    REQUIRE(plan_matmul(3, bf16) == MatmulPath::simd);
    REQUIRE(plan_matmul(4, bf16) == MatmulPath::onednn);
    REQUIRE(plan_matmul(6, f32) == MatmulPath::simd);
    REQUIRE(plan_matmul(7, f32) == MatmulPath::onednn);
  }
  // allow_bf16_compute: many rows on the own AMX kernels where the level has them, else on oneDNN.
  MatmulOptions allow;
  allow.allow_bf16_compute = true;
  if (cpu::isa_supported(cpu::Isa::amx)) {
    cpu::set_active_isa(cpu::Isa::amx);
    for (const MatmulWeight* w : {&f32, &bf16, &f16}) {
      REQUIRE(plan_matmul(512, *w, allow) == MatmulPath::simd);
      REQUIRE(plan_matmul(7, *w, allow) == MatmulPath::simd);
      REQUIRE(plan_matmul(4, *w, allow) == MatmulPath::simd);  // the GEMV: oneDNN would keep a copy
    }
  }
  if (cpu::isa_supported(cpu::Isa::avx512_bf16)) {
    cpu::set_active_isa(cpu::Isa::avx512_bf16);
    REQUIRE(plan_matmul(512, f16, allow) == MatmulPath::onednn);
    REQUIRE(plan_matmul(16, f32, allow) == MatmulPath::onednn);
    REQUIRE(plan_matmul(15, f16, allow) == MatmulPath::simd);
  }
  REQUIRE(plan_matmul(512, f32, {MatmulPath::eigen}) == MatmulPath::eigen);
}

// allow_bf16_compute only permits bf16: where the level has no bf16 hardware (AVX2), f32
// weights on oneDNN stay in f32 (oneDNN 2.6 cannot create a bf16 matmul on AVX2 CPUs).
TEST_CASE("matmul: below AVX512-BF16, allowing bf16 compute leaves f32 weights in f32", "[matmul]") {
  test::IsaGuard guard;
  if (!cpu::isa_supported(cpu::Isa::avx2)) {
    WARN("skipped: this CPU has no AVX2");
    return;
  }
  cpu::set_active_isa(cpu::Isa::avx2);
  const int64_t m = 64, n = 96, k = 256;
  const Tensor x = test::random_tensor(m, k, DType::f32, test::Values::reals, 11);
  const Tensor wt = test::random_tensor(n, k, DType::f32, test::Values::reals, 12);
  const MatmulWeight w(wt.view());
  MatmulOptions allow;
  allow.allow_bf16_compute = true;
  REQUIRE(plan_matmul(m, w, allow) == MatmulPath::onednn);
  Tensor y = Tensor::zeros({m, n}, DType::f32);
  ThreadPool pool(2);
  matmul(x.view(), w, y.view(), pool, allow);
  const float* xp = x.view().data_as<const float>();
  const float* wp = wt.view().data_as<const float>();
  const float* yp = y.view().data_as<const float>();
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double exact = 0, magnitude = 0;
      for (int64_t t = 0; t < k; ++t) {
        exact += static_cast<double>(xp[i * k + t]) * wp[j * k + t];
        magnitude += std::fabs(static_cast<double>(xp[i * k + t]) * wp[j * k + t]);
      }
      // f32 summation in any order: |error| <= k·2^-24·Σ|x·w|. Operands rounded to bf16
      // (2^-9 relative each) miss it by two orders of magnitude.
      REQUIRE(std::fabs(yp[i * n + j] - exact) <= static_cast<double>(k) * 0x1p-24 * magnitude);
    }
  }
}

TEST_CASE("matmul: QILIN_MATMUL forces a path, and a bad name is refused", "[matmul]") {
  const Tensor wf = Tensor::zeros({8, 8}, DType::f32);
  const MatmulWeight w(wf);
  setenv("QILIN_MATMUL", "eigen", 1);
  REQUIRE(plan_matmul(1, w) == MatmulPath::eigen);
  REQUIRE(plan_matmul(1, w, {MatmulPath::ref}) == MatmulPath::ref);  // the option wins over the environment
  setenv("QILIN_MATMUL", "blas9000", 1);
  REQUIRE_THROWS_WITH(plan_matmul(1, w), Catch::Contains("QILIN_MATMUL=blas9000") && Catch::Contains("eigen"));
  setenv("QILIN_MATMUL", "auto", 1);
  REQUIRE(plan_matmul(1, w) != MatmulPath::automatic);
  unsetenv("QILIN_MATMUL");
  for (int i = 0; i < kMatmulPathCount; ++i) {
    MatmulPath p;
    REQUIRE(matmul_path_from_name(name_of(static_cast<MatmulPath>(i)), &p));
    REQUIRE(p == static_cast<MatmulPath>(i));
  }
}

TEST_CASE("matmul: shape, dtype and device errors name the op and the shapes", "[matmul]") {
  ThreadPool pool(1);
  const Tensor wt = Tensor::zeros({896, 576}, DType::f32);
  const MatmulWeight w(wt);
  const Tensor x = Tensor::zeros({4, 576}, DType::f32), y = Tensor::zeros({4, 896}, DType::f32);
  const Tensor x_bad = Tensor::zeros({4, 896}, DType::f32), y_bad = Tensor::zeros({4, 895}, DType::f32);
  REQUIRE_THROWS_WITH(matmul(x_bad, w, y, pool), "[matmul] x is 4x896 but w expects 576 inputs");
  REQUIRE_THROWS_WITH(matmul(x, w, y_bad, pool), Catch::StartsWith("[matmul] y is 4x895"));
  const Tensor x_f16 = Tensor::zeros({4, 576}, DType::f16);
  REQUIRE_THROWS_WITH(matmul(x_f16, w, y, pool), Catch::Contains("[matmul]") && Catch::Contains("f16"));

  const Tensor q = Tensor::zeros({64, 64}, DType::i8);
  REQUIRE_THROWS_WITH(plan_matmul(1, MatmulWeight(q)),
                      Catch::StartsWith("[matmul] weight dtype i8 is not a float type"));
  REQUIRE_THROWS_WITH(MatmulWeight(x.view().reshape({2, 2, 576})),
                      Catch::Contains("[matmul]") && Catch::Contains("2-D"));

  // A weight on the GPU: the CUDA backend is not wired into matmul yet.
  const TensorView on_gpu(wt.data(), {896, 576}, DType::f32, Device::cuda);
  REQUIRE_THROWS_WITH(matmul(x, MatmulWeight(on_gpu), y, pool), Catch::Contains("CUDA backend"));
  const TensorView x_gpu(x.data(), {4, 576}, DType::f32, Device::cuda);
  REQUIRE_THROWS_WITH(matmul(x_gpu, w, y, pool), Catch::Contains("CUDA backend"));
  REQUIRE_THROWS_WITH(matmul(x, w, y, pool, {MatmulPath::cublas}),
                      Catch::Contains("cublas") && Catch::Contains("CUDA"));
}

TEST_CASE("matmul: forcing a path that cannot take the weight is an error", "[matmul]") {
  ThreadPool pool(1);
  const Tensor wt = Tensor::zeros({16, 16}, DType::f16);
  const MatmulWeight w(wt);
  const Tensor x = Tensor::zeros({2, 16}, DType::f32), y = Tensor::zeros({2, 16}, DType::f32);
  REQUIRE_THROWS_WITH(matmul(x, w, y, pool, {MatmulPath::onednn}),
                      Catch::Contains("[matmul] path onednn cannot multiply by a f16 weight"));
  REQUIRE_THROWS_WITH(matmul(x, w, y, pool, {MatmulPath::cuda}), Catch::Contains("CUDA backend"));
  if (!cpu::isa_supported(cpu::Isa::avx512)) {
    const Tensor wb = Tensor::zeros({16, 16}, DType::bf16);
    REQUIRE_THROWS_WITH(matmul(x, MatmulWeight(wb), y, pool, {MatmulPath::onednn}),
                        Catch::Contains("bf16 only on CPUs with AVX-512"));
  }
}

TEST_CASE("matmul: verbose prints the plan once per shape", "[matmul]") {
  ThreadPool pool(1);
  const Tensor wt = test::random_tensor(24, 40, DType::bf16, Values::integers, 9);
  const MatmulWeight w(wt);
  const Tensor x = Tensor::zeros({3, 40}, DType::f32), y = Tensor::zeros({3, 24}, DType::f32);
  MatmulOptions opts;
  opts.verbose = true;
  opts.force = MatmulPath::simd;
  const std::string text = capture_stderr([&] {
    matmul(x, w, y, pool, opts);
    matmul(x, w, y, pool, opts);
  });
  INFO(text);
  REQUIRE(text.find("[matmul] M=3 N=24 K=40 w=bf16 -> simd") != std::string::npos);
  REQUIRE(text.find("[matmul]") == text.rfind("[matmul]"));  // once
  setenv("QILIN_VERBOSE", "1", 1);
  opts.verbose = false;
  opts.force = MatmulPath::eigen;
  const std::string text2 = capture_stderr([&] { matmul(x, w, y, pool, opts); });
  unsetenv("QILIN_VERBOSE");
  REQUIRE(text2.find("-> eigen") != std::string::npos);
  if (cpu::isa_supported(cpu::Isa::amx)) {
    // The own bf16-compute kernel from 7 rows on: the plan names it.
    test::IsaGuard guard;
    cpu::set_active_isa(cpu::Isa::amx);
    const Tensor wh = test::random_tensor(24, 40, DType::f16, Values::integers, 9);
    const MatmulWeight wf16(wh);
    MatmulOptions allow;
    allow.verbose = true;
    allow.allow_bf16_compute = true;
    const Tensor x6 = Tensor::zeros({6, 40}, DType::f32), y6 = Tensor::zeros({6, 24}, DType::f32);
    const Tensor x7 = Tensor::zeros({7, 40}, DType::f32), y7 = Tensor::zeros({7, 24}, DType::f32);
    const std::string text3 = capture_stderr([&] {
      matmul(x6, wf16, y6, pool, allow);
      matmul(x7, wf16, y7, pool, allow);
    });
    INFO(text3);
    const size_t m7 = text3.find("[matmul] M=7 N=24 K=40 w=f16 -> simd (amx f16 (tdpbf16ps");
    REQUIRE(m7 != std::string::npos);
    REQUIRE(text3.find("tdpbf16ps") == text3.rfind("tdpbf16ps"));  // not at M=6
  }
}
