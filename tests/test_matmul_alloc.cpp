// The decode path (M = 1) of matmul allocates nothing once warm: this binary
// replaces the global operator new to count every heap allocation.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <vector>

#include "count_allocations.h"
#include "kernels/matmul.h"
#include "test_matmul_data.h"
#include "test_matmul_quant_data.h"

using namespace qilin;

TEST_CASE("matmul: decode-size calls allocate nothing after a warm-up", "[matmul]") {
  test::IsaGuard guard;
  ThreadPool pool(2);
  for (DType wt : {DType::f32, DType::f16, DType::bf16}) {
    const Tensor w = test::random_tensor(896, 576, wt, test::Values::reals, 1);
    const Tensor x = test::random_tensor(1, 576, DType::f32, test::Values::reals, 2);
    Tensor y = Tensor::zeros({1, 896}, DType::f32);
    const MatmulWeight weight(w);
    for (cpu::Isa level : test::supported_levels()) {
      cpu::set_active_isa(level);
      for (MatmulPath path : {MatmulPath::automatic, MatmulPath::simd, MatmulPath::ref}) {
        const MatmulOptions opts{path};
        matmul(x, weight, y, pool, opts);  // warm-up: per-thread scratch grows here
        const long before = g_news.load();
        for (int i = 0; i < 100; ++i) matmul(x, weight, y, pool, opts);
        const long allocations = g_news.load() - before;  // read before INFO, which allocates
        INFO("w " << name_of(wt) << ", isa " << cpu::name_of(level) << ", path " << name_of(path) << " -> "
                  << name_of(plan_matmul(1, weight, opts)));
        REQUIRE(allocations == 0);
      }
    }
  }
  // The counter does count: a MatmulWeight allocates its pack holder.
  const long before = g_news.load();
  const Tensor w = Tensor::zeros({8, 8}, DType::f32);
  const MatmulWeight weight(w);
  REQUIRE(g_news.load() > before);
}

TEST_CASE("matmul: quantized weights allocate nothing in a warm decode step, alone or grouped", "[matmul][quant]") {
  test::IsaGuard guard;
  ThreadPool pool(2);
  const Tensor x = test::random_tensor(1, 512, DType::f32, test::Values::reals, 2);
  std::vector<Tensor> tensors;
  for (DType t : test::kQuantTypes) tensors.push_back(test::quantized_weight(t, 96, 512, 3));
  std::vector<MatmulWeight> weights;
  for (const Tensor& t : tensors) weights.emplace_back(t.view());
  std::vector<Tensor> ys;
  std::vector<TensorView> views;
  for (size_t i = 0; i < tensors.size(); ++i) ys.push_back(Tensor::zeros({1, 96}, DType::f32));
  for (const Tensor& y : ys) views.push_back(y.view());
  std::vector<const MatmulWeight*> wp;
  for (const MatmulWeight& w : weights) wp.push_back(&w);
  for (cpu::Isa level : test::supported_levels()) {
    cpu::set_active_isa(level);
    for (MatmulWeight& w : weights) w.prepare(1);
    for (MatmulPath path : {MatmulPath::automatic, MatmulPath::ref}) {
      const MatmulOptions opts{path};
      for (size_t i = 0; i < weights.size(); ++i) matmul(x, weights[i], ys[i], pool, opts);  // warm-up
      matmul_group(x, wp, views, pool, opts);
      const long before = g_news.load();
      for (int r = 0; r < 20; ++r) {
        for (size_t i = 0; i < weights.size(); ++i) matmul(x, weights[i], ys[i], pool, opts);
        matmul_group(x, wp, views, pool, opts);
      }
      const long allocations = g_news.load() - before;  // read before INFO, which allocates
      INFO("isa " << cpu::name_of(level) << ", path " << name_of(path));
      REQUIRE(allocations == 0);
    }
  }
}
