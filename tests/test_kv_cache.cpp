// KvCache: layout, dtype conversion on store, per-slot lengths and the context limit.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/half.h"
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
  return f16_to_f32(block.row<uint16_t>(row)[d]);
}

}  // namespace

TEST_CASE("kv cache: store writes [kv_head][pos][dim] of the right layer and slot", "[kv_cache]") {
  for (DType dt : {DType::f32, DType::f16}) {
    const KvCacheShape shape{3, 2, 2, 16, 5};
    KvCache cache(shape, dt);
    const Tensor k = coded_rows(4, 2, 5, 0.0f), v = coded_rows(4, 2, 5, 1000.0f);
    cache.store(1, 1, 3, k, v);  // positions 3..6 of layer 1, slot 1
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
  KvCache cache({2, 3, 1, 8, 4}, DType::f16);
  CHECK(cache.bytes() == 2u * 2 * 3 * align_up(8 * 4 * 2));
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
  CHECK_THROWS_AS(cache.store(0, 0, 7, rows, rows), Error);  // positions 7, 8: past max_pos 8
  CHECK_NOTHROW(cache.store(0, 0, 6, rows, rows));
  const Tensor wrong = coded_rows(2, 2, 4, 0.0f);
  CHECK_THROWS_AS(cache.store(0, 0, 0, wrong, wrong), Error);
  CHECK_THROWS_AS(KvCache({1, 1, 1, 4, 4}, DType::bf16), Error);
}
