// RoPE and causal grouped-query attention (kernels/ops.h): ref against naive
// double-precision implementations written here, every ISA level against ref.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kernels/ops.h"
#include "test_ops_common.h"

using namespace qilin;
using namespace qilin::test;
using Catch::Contains;

namespace {

// out[t][h] = softmax_j(scale * q[t][h] . k[h/group][j]) v[..][j] over j <= pos0 + t, in double.
std::vector<double> naive_attention(const std::vector<float>& q, int64_t n_q, int64_t n_heads, int64_t head_dim,
                                    const std::vector<float>& k, const std::vector<float>& v, int64_t n_kv_heads,
                                    int64_t max_pos, int64_t pos0, double scale) {
  std::vector<double> out(q.size());
  const int64_t group = n_heads / n_kv_heads;
  for (int64_t t = 0; t < n_q; ++t) {
    for (int64_t h = 0; h < n_heads; ++h) {
      const float* qh = &q[static_cast<size_t>((t * n_heads + h) * head_dim)];
      const size_t kv = static_cast<size_t>((h / group) * max_pos * head_dim);
      const int64_t n_ctx = pos0 + t + 1;
      std::vector<double> s(static_cast<size_t>(n_ctx));
      double max = -INFINITY, sum = 0;
      for (int64_t j = 0; j < n_ctx; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < head_dim; ++d)
          dot += static_cast<double>(qh[d]) * k[kv + static_cast<size_t>(j * head_dim + d)];
        s[static_cast<size_t>(j)] = dot * scale;
        max = std::max(max, dot * scale);
      }
      for (double& x : s) sum += (x = std::exp(x - max));
      for (int64_t d = 0; d < head_dim; ++d) {
        double acc = 0;
        for (int64_t j = 0; j < n_ctx; ++j)
          acc += s[static_cast<size_t>(j)] * v[kv + static_cast<size_t>(j * head_dim + d)];
        out[static_cast<size_t>((t * n_heads + h) * head_dim + d)] = acc / sum;
      }
    }
  }
  return out;
}

struct AttentionCase {
  int64_t n_heads, n_kv_heads, head_dim;
};

// Builds a cache of `dtype` (f32 or f16) from values in [-1, 1]; positions from
// `valid` on hold NaN, so reading past the causal limit poisons the result.
struct Cache {
  std::vector<float> k, v;         // the values the kernels see, as f32
  std::vector<uint16_t> k16, v16;  // the f16 cache, when dtype is f16
  TensorView k_view, v_view;

  Cache(DType dtype, int64_t n_kv, int64_t max_pos, int64_t head_dim, int64_t valid, uint32_t seed) {
    const size_t n = static_cast<size_t>(n_kv * max_pos * head_dim);
    k = random_floats(n, -1, 1, seed);
    v = random_floats(n, -1, 1, seed + 1);
    for (size_t i = 0; i < n; ++i) {
      if (static_cast<int64_t>(i / static_cast<size_t>(head_dim)) % max_pos >= valid) k[i] = v[i] = NAN;
    }
    const Shape shape{n_kv, max_pos, head_dim};
    if (dtype == DType::f16) {
      k16.resize(n), v16.resize(n);
      for (size_t i = 0; i < n; ++i) {
        k16[i] = f32_to_f16(k[i]), v16[i] = f32_to_f16(v[i]);
        k[i] = f16_to_f32(k16[i]), v[i] = f16_to_f32(v16[i]);
      }
      k_view = TensorView(k16.data(), shape, DType::f16);
      v_view = TensorView(v16.data(), shape, DType::f16);
    } else {
      k_view = TensorView(k.data(), shape, DType::f32);
      v_view = TensorView(v.data(), shape, DType::f32);
    }
  }
};

}  // namespace

TEST_CASE("ops: attention matches a naive double implementation and ref, GQA 1..16, decode and prefill",
          "[ops][attention]") {
  const AttentionCase cases[] = {{4, 4, 64}, {4, 2, 128}, {14, 2, 64}, {9, 3, 64},
                                 {3, 1, 7},  {2, 1, 33},  {16, 1, 80}, {2, 1, 1}};
  const std::pair<int64_t, int64_t> queries[] = {{1, 0}, {1, 37}, {1, 700}, {5, 0}, {17, 3}, {9, 300}};  // n_q, pos0
  ThreadPool pool(2);
  for (const AttentionCase& c : cases) {
    for (auto [n_q, pos0] : queries) {
      for (DType dtype : {DType::f32, DType::f16}) {
        INFO("heads " << c.n_heads << "/" << c.n_kv_heads << " head_dim " << c.head_dim << " n_q " << n_q << " pos0 "
                      << pos0 << " " << name_of(dtype));
        const int64_t max_pos = pos0 + n_q + 5;
        Cache cache(dtype, c.n_kv_heads, max_pos, c.head_dim, pos0 + n_q, 11);
        auto q = random_floats(static_cast<size_t>(n_q * c.n_heads * c.head_dim), -1, 1, 12);
        const Shape q_shape{n_q, c.n_heads, c.head_dim};
        const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
        const auto exact =
            naive_attention(q, n_q, c.n_heads, c.head_dim, cache.k, cache.v, c.n_kv_heads, max_pos, pos0, scale);
        std::vector<float> want(q.size());
        at_ref([&] { attention(view_of(q, q_shape), cache.k_view, cache.v_view, pos0, view_of(want, q_shape), pool); });
        // ref works in double and rounds once; outputs are averages of |v| <= 1: half an ulp of 1.
        require_close(want, exact, 6e-8, 0);
        for_each_isa([&](cpu::Isa) {
          std::vector<float> out(q.size(), NAN);
          attention(view_of(q, q_shape), cache.k_view, cache.v_view, pos0, view_of(out, q_shape), pool);
          // f32 dots of head_dim <= 128 terms |q k| <= 1 (score error < 1e-6) and a polynomial
          // exp (a few ulp) move each softmax weight by < 1e-6 relative; outputs average |v| <= 1.
          require_close(out, want, 3e-6, 0);
        });
      }
    }
  }
}

TEST_CASE("ops: attention stays finite and accurate with peaky scores and a custom scale", "[ops][attention]") {
  ThreadPool pool(2);
  const int64_t n_heads = 6, n_kv = 2, head_dim = 64, n_q = 3, pos0 = 200, max_pos = 256;
  Cache cache(DType::f32, n_kv, max_pos, head_dim, pos0 + n_q, 13);
  auto q = random_floats(static_cast<size_t>(n_q * n_heads * head_dim), -1, 1, 14);
  const Shape shape{n_q, n_heads, head_dim};
  const float scale = 10.0f;  // 80x the default: scores reach +-100, where exp(score) alone overflows f32
  const auto exact = naive_attention(q, n_q, n_heads, head_dim, cache.k, cache.v, n_kv, max_pos, pos0, scale);
  for_each_isa([&](cpu::Isa) {
    std::vector<float> out(q.size());
    attention(view_of(q, shape), cache.k_view, cache.v_view, pos0, view_of(out, shape), pool, scale);
    // Score errors grow with their magnitude (80x the default case): 80 x 2.4e-7 (2 ulp).
    require_close(out, exact, 2e-5, 0);
  });
}

TEST_CASE("ops: attention rescales correctly when every chunk of keys brings a new maximum", "[ops][attention]") {
  ThreadPool pool(1);
  const int64_t n_heads = 2, n_kv = 1, head_dim = 64, pos0 = 299, max_pos = 300;
  Cache cache(DType::f32, n_kv, max_pos, head_dim, max_pos, 15);
  auto q = random_floats(static_cast<size_t>(n_heads * head_dim), -1, 1, 16);
  // k_j = (j / 100) q_0: head 0's scores rise with j, so each chunk raises the running max.
  for (int64_t j = 0; j < max_pos; ++j) {
    for (int64_t d = 0; d < head_dim; ++d) {
      cache.k[static_cast<size_t>(j * head_dim + d)] = static_cast<float>(j) / 100.0f * q[static_cast<size_t>(d)];
    }
  }
  const Shape shape{1, n_heads, head_dim};
  const auto exact = naive_attention(q, 1, n_heads, head_dim, cache.k, cache.v, n_kv, max_pos, pos0, 0.125);
  for_each_isa([&](cpu::Isa) {
    std::vector<float> out(q.size());
    attention(view_of(q, shape), cache.k_view, cache.v_view, pos0, view_of(out, shape), pool);
    // Scores reach about 3 |q|^2 / 8 ~ 8, 8x the random case's: 8 x 3e-6.
    require_close(out, exact, 2.4e-5, 0);
  });
}

TEST_CASE("ops: attention rejects mismatched shapes, dtypes and positions", "[ops][attention][errors]") {
  ThreadPool pool(1);
  std::vector<float> q(2 * 14 * 64), out(q.size()), k(2 * 32 * 64), v(k.size());
  const Shape q_shape{2, 14, 64};
  const TensorView qv = view_of(q, q_shape), ov = view_of(out, q_shape);
  const TensorView kv = view_of(k, {2, 32, 64}), vv = view_of(v, {2, 32, 64});
  REQUIRE_NOTHROW(attention(qv, kv, vv, 30, ov, pool));
  REQUIRE_THROWS_WITH(attention(qv, kv, vv, 31, ov, pool),
                      Contains("[attention]") && Contains("[31, 33)") && Contains("2x32x64"));
  REQUIRE_THROWS_WITH(attention(qv, kv, vv, -1, ov, pool), Contains("[attention]"));
  REQUIRE_THROWS_WITH(attention(qv, view_of(k, {2, 16, 128}), view_of(v, {2, 16, 128}), 0, ov, pool),
                      Contains("[attention]") && Contains("2x14x64") && Contains("2x16x128"));
  REQUIRE_THROWS_WITH(attention(view_of(q, {2, 16, 56}), view_of(k, {3, 32, 56}), view_of(v, {3, 32, 56}), 0,
                                view_of(out, {2, 16, 56}), pool),
                      Contains("16 query heads cannot share 3 KV heads"));
  REQUIRE_THROWS_WITH(attention(qv, kv, view_of(v, {2, 16, 128}), 0, ov, pool),
                      Contains("[attention]") && Contains("2x16x128"));
  REQUIRE_THROWS_WITH(attention(qv, TensorView(k.data(), {2, 32, 64}, DType::bf16),
                                TensorView(v.data(), {2, 32, 64}, DType::bf16), 0, ov, pool),
                      Contains("[attention]") && Contains("bf16"));
  REQUIRE_THROWS_WITH(attention(qv, kv, vv, 0, qv, pool), Contains("overlaps"));
  REQUIRE_THROWS_WITH(attention(qv, kv, vv, 0, view_of(out, {2, 7, 128}), pool), Contains("2x7x128"));
  std::vector<float> big(1024 * 2);
  REQUIRE_THROWS_WITH(attention(view_of(big, {1, 1, 1024}), view_of(k, {1, 2, 1024}), view_of(v, {1, 2, 1024}), 0,
                                view_of(out, {1, 1, 1024}), pool),
                      Contains("head_dim 1024 exceeds"));
}

// ---- RoPE ---------------------------------------------------------------------------

namespace {

// The rotation of HF transformers (neox: rotate_half; interleaved: GPT-J's rotate_every_two), in double.
std::vector<double> naive_rope(const std::vector<float>& x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                               int64_t rot_dim, const std::vector<int32_t>& pos, double theta, RopeLayout layout) {
  std::vector<double> y(x.begin(), x.end());
  const int64_t half = rot_dim / 2;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t h = 0; h < n_heads; ++h) {
      const size_t base = static_cast<size_t>((t * n_heads + h) * head_dim);
      for (int64_t i = 0; i < half; ++i) {
        const double angle = pos[static_cast<size_t>(t)] * std::pow(theta, -2.0 * i / rot_dim);
        const size_t a = base + static_cast<size_t>(layout == RopeLayout::neox ? i : 2 * i);
        const size_t b = base + static_cast<size_t>(layout == RopeLayout::neox ? i + half : 2 * i + 1);
        const double x0 = x[a], x1 = x[b];
        y[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
        y[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
      }
    }
  }
  return y;
}

}  // namespace

TEST_CASE("ops: rope matches the naive formula in both layouts, with partial rotary", "[ops][rope]") {
  const std::pair<int64_t, int64_t> dims[] = {
      {64, 64}, {128, 128}, {64, 32}, {80, 32}, {7, 6},
      {33, 16}, {2, 2},     {96, 24}, {20, 18}};  // head_dim, rot_dim (18: 9 pairs)
  const std::vector<int32_t> positions = {0, 1, 17, 4095, 1000};
  const int64_t n_tokens = 5, n_heads = 3;
  ThreadPool pool(2);
  for (auto [head_dim, rot_dim] : dims) {
    for (double theta : {10000.0, 1000000.0}) {
      const RopeCache cache(rot_dim, 4096, theta);
      for (RopeLayout layout : {RopeLayout::neox, RopeLayout::interleaved}) {
        INFO("head_dim " << head_dim << " rot_dim " << rot_dim << " theta " << theta << " layout "
                         << (layout == RopeLayout::neox ? "neox" : "interleaved"));
        const auto x = random_floats(static_cast<size_t>(n_tokens * n_heads * head_dim), -1, 1, 15);
        const Shape shape{n_tokens, n_heads, head_dim};
        const auto exact = naive_rope(x, n_tokens, n_heads, head_dim, rot_dim, positions, theta, layout);
        std::vector<float> want = x;
        at_ref([&] { rope(view_of(want, shape), positions, layout, cache, pool); });
        // cos/sin are cached as f32 (2^-24 relative each), products in double, one
        // rounding: |error| <= 3 * 6e-8 for |x| <= 1.
        require_close(want, exact, 2e-7, 0);
        for (size_t i = 0; i < x.size(); ++i) {
          if (static_cast<int64_t>(i) % head_dim >= rot_dim) REQUIRE(want[i] == x[i]);  // passed through
        }
        for_each_isa([&](cpu::Isa) {
          std::vector<float> y = x;
          rope(view_of(y, shape), positions, layout, cache, pool);
          // Two f32 products and a sum (or one FMA) per element: a few 1e-7 for |x| <= 1.
          require_close(y, want, 5e-7, 0);
        });
      }
    }
  }
}

TEST_CASE("ops: rope frequency hooks: inverse frequencies and linear position scaling", "[ops][rope]") {
  const int64_t rot_dim = 64;
  std::vector<double> inv_freq(rot_dim / 2);
  for (size_t i = 0; i < inv_freq.size(); ++i) inv_freq[i] = std::pow(10000.0, -2.0 * static_cast<double>(i) / rot_dim);
  const RopeCache from_theta(rot_dim, 512, 10000.0), from_freqs(inv_freq, 512), halved(rot_dim, 512, 10000.0, 0.5);
  for (int64_t pos : {0, 1, 100, 255}) {
    for (int64_t i = 0; i < rot_dim / 2; ++i) {
      REQUIRE(from_theta.cos(pos)[i] == from_freqs.cos(pos)[i]);  // the same double computation
      REQUIRE(from_theta.sin(pos)[i] == from_freqs.sin(pos)[i]);
      REQUIRE(halved.cos(2 * pos)[i] == from_theta.cos(pos)[i]);  // 2 * pos * 0.5 == pos exactly
      REQUIRE(halved.sin(2 * pos)[i] == from_theta.sin(pos)[i]);
    }
  }
}

TEST_CASE("ops: rope rejects bad shapes and positions", "[ops][rope][errors]") {
  ThreadPool pool(1);
  std::vector<float> x(2 * 3 * 64);
  const RopeCache cache(64, 100);
  const std::vector<int32_t> ok = {0, 99}, late = {0, 100}, one = {0};
  REQUIRE_NOTHROW(rope(view_of(x, {2, 3, 64}), ok, RopeLayout::neox, cache, pool));
  REQUIRE_THROWS_WITH(rope(view_of(x, {2, 3, 64}), late, RopeLayout::neox, cache, pool),
                      Contains("[rope]") && Contains("position 100") && Contains("[0, 100)"));
  REQUIRE_THROWS_WITH(rope(view_of(x, {2, 3, 64}), one, RopeLayout::neox, cache, pool),
                      Contains("[rope]") && Contains("2x3x64") && Contains("1 positions"));
  REQUIRE_THROWS_WITH(rope(view_of(x, {2, 6, 32}), ok, RopeLayout::interleaved, cache, pool),
                      Contains("[rope]") && Contains("2x6x32") && Contains("64"));
  REQUIRE_THROWS_WITH(rope(view_of(x, {6, 64}), ok, RopeLayout::neox, cache, pool), Contains("6x64"));
  REQUIRE_THROWS_WITH(RopeCache(63, 10), Contains("[rope]") && Contains("63"));
}
