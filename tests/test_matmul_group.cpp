// matmul_group: several weights against the same activations in one parallel
// region must give exactly what one matmul() per weight gives, on every path.
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/matmul.h"
#include "test_matmul_data.h"

using namespace qilin;

TEST_CASE("matmul_group: bit-identical to one matmul per weight", "[matmul]") {
  test::IsaGuard guard;
  ThreadPool pool(2);
  // Q, K, V of a GQA layer (N = 576, 192, 192), plus an odd N, mixed dtypes.
  const int64_t k = 96;
  const int64_t ns[] = {576, 192, 192, 37};
  const DType types[] = {DType::f32, DType::f16, DType::bf16, DType::f32};
  std::vector<Tensor> weights;
  std::vector<MatmulWeight> mw;
  for (int i = 0; i < 4; ++i) weights.push_back(test::random_tensor(ns[i], k, types[i], test::Values::reals, 10 + i));
  for (const Tensor& w : weights) mw.emplace_back(w.view());
  const MatmulWeight* wp[4] = {&mw[0], &mw[1], &mw[2], &mw[3]};
  for (cpu::Isa level : test::supported_levels()) {
    cpu::set_active_isa(level);
    // allow_bf16_compute: the own bf16-compute kernels at 17, 64 and 512 rows where the level has them
    // (AMX), with x rounded once for the whole group; at 512 rows the pool splits rows, not columns.
    for (auto [m, allow_bf16] :
         {std::pair<int64_t, bool>{1, false}, {3, false}, {64, false}, {17, true}, {64, true}, {512, true}}) {
      INFO("isa " << cpu::name_of(level) << ", M " << m << (allow_bf16 ? ", bf16 allowed" : ""));
      MatmulOptions opts;
      opts.allow_bf16_compute = allow_bf16;
      const Tensor x = test::random_tensor(m, k, DType::f32, test::Values::reals, 7);
      std::vector<Tensor> separate, grouped;
      std::vector<TensorView> views;
      for (int i = 0; i < 4; ++i) {
        separate.push_back(Tensor::zeros({m, ns[i]}, DType::f32));
        grouped.push_back(Tensor::zeros({m, ns[i]}, DType::f32));
        views.push_back(grouped.back().view());
        matmul(x, mw[static_cast<size_t>(i)], separate.back(), pool, opts);
      }
      matmul_group(x, wp, views, pool, opts);
      for (int i = 0; i < 4; ++i) {
        CHECK(std::memcmp(separate[static_cast<size_t>(i)].data(), grouped[static_cast<size_t>(i)].data(),
                          separate[static_cast<size_t>(i)].nbytes()) == 0);
      }
    }
  }
  Tensor x = Tensor::zeros({1, k + 1}, DType::f32);
  const Tensor y = Tensor::zeros({1, 576}, DType::f32);
  const std::vector<TensorView> one = {y.view()};
  CHECK_THROWS_AS(matmul_group(x, std::span<const MatmulWeight* const>(wp, 1), one, pool), Error);
  CHECK_THROWS_AS(matmul_group(x, std::span<const MatmulWeight* const>(wp, 2), one, pool), Error);
}
