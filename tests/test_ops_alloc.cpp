// The ops of one decode step (and a prefill attention) allocate nothing: this
// binary replaces the global operator new to count every heap allocation.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <vector>

#include "count_allocations.h"
#include "kernels/ops.h"
#include "test_ops_common.h"

using namespace qilin;
using namespace qilin::test;

TEST_CASE("ops: a decode step's ops and a prefill attention allocate nothing", "[ops][alloc]") {
  ThreadPool pool(2);
  // Qwen2.5-0.5B sizes: hidden 896, MLP 4864, 14 query / 2 KV heads of 64, context 1024.
  const int64_t hidden = 896, mlp = 4864, n_heads = 14, n_kv = 2, head_dim = 64, max_pos = 1024;
  auto x = random_floats(hidden, -1, 1, 1), w = random_floats(hidden, 0.5f, 1.5f, 2), y = x;
  auto gate = random_floats(mlp, -4, 4, 3), up = random_floats(mlp, -1, 1, 4), act = up;
  auto q = random_floats(static_cast<size_t>(64 * n_heads * head_dim), -1, 1, 5), out = q;
  auto k = random_floats(static_cast<size_t>(n_kv * max_pos * head_dim), -1, 1, 6), v = k;
  std::vector<uint16_t> table16(static_cast<size_t>(100 * hidden), 0x3c00);
  const RopeCache rope_cache(head_dim, max_pos);
  const std::vector<int32_t> ids = {42}, positions = {1000};
  std::vector<int32_t> prefill_positions(64);
  for (int32_t i = 0; i < 64; ++i) prefill_positions[static_cast<size_t>(i)] = 900 + i;

  const TensorView xv = view_of(x, {1, hidden}), yv = view_of(y, {1, hidden}), wv = view_of(w, {hidden});
  const TensorView q1 = view_of(q, {1, n_heads, head_dim}), o1 = view_of(out, {1, n_heads, head_dim});
  const TensorView q64 = view_of(q, {64, n_heads, head_dim}), o64 = view_of(out, {64, n_heads, head_dim});
  const TensorView kv = view_of(k, {n_kv, max_pos, head_dim}), vv = view_of(v, {n_kv, max_pos, head_dim});
  const TensorView table(table16.data(), {100, hidden}, DType::f16);
  auto step = [&] {
    embedding(table, ids, yv, pool);
    rmsnorm(xv, wv, 1e-6f, yv, pool);
    rope(q1, positions, RopeLayout::neox, rope_cache, pool);
    attention(q1, kv, vv, max_pos - 1, o1, pool);     // decode over the full context
    attention(q64, kv, vv, max_pos - 64, o64, pool);  // prefill chunk (round-robin threads)
    rope(q64, prefill_positions, RopeLayout::interleaved, rope_cache, pool);
    swiglu(view_of(gate, {1, mlp}), view_of(up, {1, mlp}), view_of(act, {1, mlp}), pool);
    add_inplace(xv, yv, pool);
    softmax(view_of(act, {1, mlp}), view_of(act, {1, mlp}), pool);
  };
  for_each_isa([&](cpu::Isa) {
    step();  // warm-up
    const long before = g_news.load();
    for (int i = 0; i < 20; ++i) step();
    const long allocations = g_news.load() - before;  // read before REQUIRE, which may allocate
    REQUIRE(allocations == 0);
  });
  // The counter does count: a RopeCache allocates its table.
  const long before = g_news.load();
  const RopeCache counted(64, 16);
  REQUIRE(g_news.load() > before);
}
