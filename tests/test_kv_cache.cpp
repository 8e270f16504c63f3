// KvCache: layout, dtype conversion on store (f32, f16, q8_0), per-slot lengths and the
// context limit.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/quant_blocks.h"
#include "core/thread_pool.h"
#include "models/kv_cache.h"

using namespace qilin;

namespace {

// Rows [n, kv_heads * head_dim] whose values encode (token, head, dim), so a
// misplaced element is recognisable.
Tensor coded_rows(int64_t n, int64_t kvh, int64_t hd, float base) {
  Tensor t = Tensor::empty({n, kvh * hd}, DType::f32);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < kvh; ++h) {
      for (int64_t d = 0; d < hd; ++d) {
        t.data_as<float>()[i * kvh * hd + h * hd + d] = base + static_cast<float>(i * 100 + h * 10 + d) / 8.0f;
      }
    }
  }
  return t;
}

float read(const TensorView& block, int64_t head, int64_t pos, int64_t d) {
  const int64_t row = head * block.dim(1) + pos;
  if (block.dtype() == DType::f32) return block.row<float>(row)[d];
  if (block.dtype() == DType::q8_0) {
    const BlockQ8_0& b = block.row<BlockQ8_0>(row)[d / kQK];
    return f16_to_f32(b.d) * static_cast<float>(b.qs[d % kQK]);
  }
  return f16_to_f32(block.row<uint16_t>(row)[d]);
}

// The scale of the q8_0 block holding element d of (head, pos).
float q8_scale(const TensorView& block, int64_t head, int64_t pos, int64_t d) {
  return f16_to_f32(block.row<BlockQ8_0>(head * block.dim(1) + pos)[d / kQK].d);
}

}  // namespace

TEST_CASE("kv cache: store writes [kv_head][pos][dim] of the right layer and slot", "[kv_cache]") {
  for (DType dt : {DType::f32, DType::f16}) {
    const KvCacheShape shape{3, 2, 2, 16, 5};
    KvCache cache(shape, dt);
    ThreadPool pool(2);
    const Tensor k = coded_rows(4, 2, 5, 0.0f), v = coded_rows(4, 2, 5, 1000.0f);
    cache.store(1, 1, 3, k, v, pool);  // positions 3..6 of layer 1, slot 1
    for (int64_t t = 0; t < 4; ++t) {
      for (int64_t h = 0; h < 2; ++h) {
        for (int64_t d = 0; d < 5; ++d) {
          const float want_k = static_cast<float>(t * 100 + h * 10 + d) / 8.0f;
          // f16 keeps 11 significant bits: values below 2048/8 = 256 in steps of 1/8 are exact,
          // and the v values (around 1000) are within half an ulp of 2^-10 relative.
          CHECK(read(cache.keys(1, 1), h, 3 + t, d) == want_k);
          CHECK(read(cache.values(1, 1), h, 3 + t, d) == Approx(1000.0f + want_k).epsilon(1e-3));
        }
      }
    }
    // Nothing else was touched.
    CHECK(read(cache.keys(1, 0), 0, 3, 0) == 0.0f);
    CHECK(read(cache.keys(0, 1), 0, 3, 1) == 0.0f);
    CHECK(read(cache.keys(1, 1), 0, 2, 1) == 0.0f);
    CHECK(read(cache.keys(1, 1), 1, 7, 1) == 0.0f);
  }
}

TEST_CASE("kv cache: lengths per slot, truncation and the context limit", "[kv_cache]") {
  ThreadPool pool(1);
  KvCache cache({2, 3, 1, 8, 4}, DType::f16);
  CHECK(cache.bytes() == 2u * 2 * 3 * align_up(8 * 4 * 2));
  CHECK(KvCache({2, 3, 1, 8, 64}, DType::q8_0).bytes() == 2u * 2 * 3 * align_up(8 * 2 * sizeof(BlockQ8_0)));
  cache.advance(0, 5);
  cache.advance(2, 8);
  CHECK(cache.length(0) == 5);
  CHECK(cache.length(1) == 0);
  CHECK(cache.room(0) == 3);
  CHECK(cache.room(2) == 0);
  CHECK_THROWS_AS(cache.advance(2, 1), Error);  // full: never a write past the end
  CHECK_THROWS_AS(cache.advance(0, 4), Error);
  CHECK_THROWS_AS(cache.advance(3, 1), Error);  // no such slot
  cache.truncate(0, 2);
  CHECK(cache.length(0) == 2);
  CHECK_THROWS_AS(cache.truncate(0, 3), Error);  // cannot grow by truncating
  cache.clear(2);
  CHECK(cache.length(2) == 0);

  const Tensor rows = coded_rows(2, 1, 4, 0.0f);
  CHECK_THROWS_AS(cache.store(0, 0, 7, rows, rows, pool), Error);  // positions 7, 8: past max_pos 8
  CHECK_NOTHROW(cache.store(0, 0, 6, rows, rows, pool));
  const Tensor wrong = coded_rows(2, 2, 4, 0.0f);
  CHECK_THROWS_AS(cache.store(0, 0, 0, wrong, wrong, pool), Error);
  CHECK_THROWS_AS(KvCache({1, 1, 1, 4, 4}, DType::bf16), Error);
  // q8_0 rows are whole 32-element blocks: other head sizes are refused up front, by name.
  CHECK_THROWS_WITH(KvCache({1, 1, 1, 4, 48}, DType::q8_0),
                    Catch::Contains("q8_0") && Catch::Contains("head_dim is 48") && Catch::Contains("multiple of 32"));
  CHECK_NOTHROW(KvCache({1, 1, 1, 4, 96}, DType::q8_0));
}

TEST_CASE("kv cache: q8_0 store and read back within half a quantization step per block", "[kv_cache]") {
  // Rows of 3 KV heads x 64 (two blocks each) whose magnitude changes from block to block
  // (1e-2 .. 1e3: every scale a normal f16), so each block's scale is its own; plus a zero row.
  const int64_t kvh = 3, hd = 64, n = 9, max_pos = 16;
  KvCache cache({2, 1, kvh, max_pos, hd}, DType::q8_0);
  ThreadPool pool(2);
  Tensor k = coded_rows(n, kvh, hd, -3.0f), v = coded_rows(n, kvh, hd, 5.0f);
  for (int64_t i = 0; i < n * kvh * hd; ++i) {
    const float magnitude = std::pow(10.0f, static_cast<float>((i / kQK) % 6 - 2));
    k.data_as<float>()[i] *= magnitude * (i % 3 == 0 ? -1.0f : 1.0f);
    v.data_as<float>()[i] = std::sin(static_cast<float>(i)) * magnitude;
  }
  for (int64_t i = 0; i < kvh * hd; ++i) k.data_as<float>()[4 * kvh * hd + i] = 0.0f;  // token 4 of k: zeros
  cache.store(1, 0, 5, k, v, pool);                                                    // positions 5..13 of layer 1
  for (const auto& [block, rows] : {std::pair{cache.keys(1, 0), &k}, std::pair{cache.values(1, 0), &v}}) {
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < kvh; ++h) {
        for (int64_t b = 0; b < hd / kQK; ++b) {
          const float* x = rows->data_as<float>() + (t * kvh + h) * hd + b * kQK;
          float amax = 0;
          for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
          const float d = q8_scale(block, h, 5 + t, b * kQK);
          REQUIRE(d == f16_to_f32(f32_to_f16(amax / 127.0f)));  // the block's own scale, rounded to f16
          for (int j = 0; j < kQK; ++j) {
            INFO("token " << t << " head " << h << " element " << b * kQK + j << " x " << x[j] << " d " << d);
            // Quants are rounded from x / d with d the stored f16 scale: at most half a step off;
            // x * (1/d) in f32 (two roundings of 2^-24) can move a value near a midpoint by
            // 127 * 2 * 2^-24 < 2e-5 of a step.
            CHECK(std::fabs(read(block, h, 5 + t, b * kQK + j) - x[j]) <= d * (0.5f + 2e-5f));
          }
        }
      }
    }
  }
  CHECK(read(cache.keys(1, 0), 0, 5 + 4, 3) == 0.0f);  // a zero row stays exactly zero (scale 0)
  CHECK(q8_scale(cache.keys(1, 0), 2, 5 + 4, 40) == 0.0f);
  // Nothing else was touched: the positions around the write and the other layer.
  CHECK(read(cache.keys(1, 0), 0, 4, 0) == 0.0f);
  CHECK(read(cache.values(1, 0), 2, 14, 63) == 0.0f);
  CHECK(read(cache.keys(0, 0), 1, 6, 1) == 0.0f);
}
