// The decode path (M = 1) of matmul allocates nothing once warm: this binary
// replaces the global operator new to count every heap allocation.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>

#include "count_allocations.h"
#include "kernels/matmul.h"
#include "test_matmul_data.h"

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
