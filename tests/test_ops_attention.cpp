// RoPE and causal grouped-query attention (kernels/ops.h): ref against naive
// double-precision implementations written here, every ISA level against ref.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kernels/cpu/ops_table.h"
#include "kernels/ops.h"
#include "test_attention_cache.h"
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

// The decode kernels (OpsTable::attention_*) called directly for every group size they
// take: the SIMD levels template on the group and score keys in runs of 1 to 4 within
// 16- (or 8-) key blocks of 128-key chunks, so contexts straddle each of those edges.
TEST_CASE("ops: decode attention kernels match ref for every group size, chunk edge and cache type",
          "[ops][attention]") {
  const cpu::OpsTable& ref = cpu::ops_table(cpu::Isa::ref);
  for (int64_t head_dim : {64, 128, 40, 7}) {
    for (int64_t n_ctx : {1, 3, 15, 16, 17, 129, 300}) {
      for (DType dtype : {DType::f32, DType::f16, DType::q8_0}) {
        if (dtype == DType::q8_0 && head_dim % kQK != 0) continue;
        const int64_t max_pos = n_ctx + 2;
        const Cache cache(dtype, 1, max_pos, head_dim, n_ctx, static_cast<uint32_t>(head_dim + n_ctx));
        const auto q = random_floats(static_cast<size_t>(cpu::kAttentionMaxGroup * head_dim), -1, 1, 17);
        const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
        for (int64_t group = 1; group <= cpu::kAttentionMaxGroup; ++group) {
          INFO("head_dim " << head_dim << " n_ctx " << n_ctx << " " << name_of(dtype) << " group " << group);
          auto run = [&](const cpu::OpsTable& kt, std::vector<float>& out) {
            if (dtype == DType::f32) {
              kt.attention_f32(q.data(), group, cache.k.data(), cache.v.data(), n_ctx, head_dim, scale, out.data());
            } else if (dtype == DType::f16) {
              kt.attention_f16(q.data(), group, cache.k16.data(), cache.v16.data(), n_ctx, head_dim, scale, out.data());
            } else {
              kt.attention_q8_0(q.data(), group, cache.k8.data(), cache.v8.data(), n_ctx, head_dim, scale, out.data());
            }
          };
          std::vector<float> want(static_cast<size_t>(group * head_dim), NAN);
          run(ref, want);
          for_each_isa([&](cpu::Isa isa) {
            std::vector<float> out(want.size(), NAN);
            run(cpu::ops_table(isa), out);
            // As in the first test: every level reads the same f32 values of the cache (f16 and
            // q8_0 convert exactly); f32 dots and a polynomial exp move outputs by < 3e-6.
            require_close(out, want, 3e-6, 0);
          });
        }
      }
    }
  }
}

// ---- blocked (prefill) attention ------------------------------------------------------

namespace {

struct BlockCase {
  int64_t n_heads, n_kv_heads, head_dim, n_q, pos0;
  DType dtype;
};

std::string describe(const BlockCase& c) {
  return "heads " + std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) + " head_dim " +
         std::to_string(c.head_dim) + " n_q " + std::to_string(c.n_q) + " pos0 " + std::to_string(c.pos0) + " " +
         std::string(name_of(c.dtype));
}

// The per-token path of kernels/ops.cpp: every token's heads, KV group by group (at most
// kAttentionMaxGroup heads per call), through attention_f32/f16 of `kt`.
void per_token_attention(const cpu::OpsTable& kt, const BlockCase& c, const std::vector<float>& q, const Cache& cache,
                         int64_t max_pos, float scale, std::vector<float>& out) {
  const int64_t group = c.n_heads / c.n_kv_heads;
  for (int64_t t = 0; t < c.n_q; ++t) {
    for (int64_t h = 0; h < c.n_heads;) {
      const int64_t g = h / group, h_end = std::min((g + 1) * group, h + cpu::kAttentionMaxGroup);
      const size_t row = static_cast<size_t>((t * c.n_heads + h) * c.head_dim);
      const size_t kv = static_cast<size_t>(g * max_pos * c.head_dim);
      if (c.dtype == DType::f32) {
        kt.attention_f32(&q[row], h_end - h, &cache.k[kv], &cache.v[kv], c.pos0 + t + 1, c.head_dim, scale, &out[row]);
      } else {
        kt.attention_f16(&q[row], h_end - h, &cache.k16[kv], &cache.v16[kv], c.pos0 + t + 1, c.head_dim, scale,
                         &out[row]);
      }
      h = h_end;
    }
  }
}

// The blocked kernels of `kt` called directly: blocks of `block_tokens` tokens x `slice`
// heads of one KV group (the last slice of a group may be smaller).
void blocked_attention(const cpu::OpsTable& kt, const BlockCase& c, const std::vector<float>& q, const Cache& cache,
                       int64_t max_pos, float scale, int64_t block_tokens, int64_t slice, std::vector<float>& out) {
  const int64_t group = c.n_heads / c.n_kv_heads, stride = c.n_heads * c.head_dim;
  for (int64_t t0 = 0; t0 < c.n_q; t0 += block_tokens) {
    const int64_t nt = std::min(block_tokens, c.n_q - t0);
    for (int64_t h0 = 0; h0 < c.n_heads; h0 += std::min(slice, group - h0 % group)) {
      const int64_t nh = std::min(slice, group - h0 % group);
      const size_t row = static_cast<size_t>(t0 * stride + h0 * c.head_dim);
      const size_t kv = static_cast<size_t>(h0 / group * max_pos * c.head_dim);
      if (c.dtype == DType::f32) {
        kt.attention_block_f32(&q[row], nt, nh, stride, &cache.k[kv], &cache.v[kv], c.pos0 + t0, c.head_dim, scale,
                               &out[row]);
      } else {
        kt.attention_block_f16(&q[row], nt, nh, stride, &cache.k16[kv], &cache.v16[kv], c.pos0 + t0, c.head_dim, scale,
                               &out[row]);
      }
    }
  }
}

}  // namespace

// [no_qemu] on the two sweeps below: under the no-AVX2 emulator only the ref level runs,
// which these cases also check natively, and their size (every block shape, f32/f16/q8_0
// caches) takes the emulator past the test timeout; the smaller cases above cover the
// scalar path there.
TEST_CASE("ops: blocked attention kernels match ref and the per-token kernels, every block shape",
          "[ops][attention][blocked][no_qemu]") {
  const std::pair<int64_t, int64_t> heads[] = {{2, 2}, {6, 2}, {7, 1}};  // groups 1, 3, 7
  for (int64_t head_dim : {64, 128, 80}) {
    const int64_t max_rows = cpu::attention_block_max_rows(head_dim);
    for (auto [n_heads, n_kv] : heads) {
      const int64_t group = n_heads / n_kv;
      for (int64_t n_q : {1, 2, 7, 16, 33, 130}) {
        for (int64_t pos0 : {0, 5, 100}) {
          for (DType dtype : {DType::f32, DType::f16}) {
            const BlockCase c{n_heads, n_kv, head_dim, n_q, pos0, dtype};
            INFO(describe(c));
            const int64_t max_pos = pos0 + n_q + 3;
            // Positions from pos0 + n_q on hold NaN: a read past the causal limit shows.
            const Cache cache(dtype, n_kv, max_pos, head_dim, pos0 + n_q, 21);
            const auto q = random_floats(static_cast<size_t>(n_q * n_heads * head_dim), -1, 1, 22);
            const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
            const int64_t full = max_rows / group;  // the largest block of whole groups
            std::vector<float> want(q.size(), NAN);
            blocked_attention(cpu::ops_table(cpu::Isa::ref), c, q, cache, max_pos, scale, full, group, want);
            for_each_isa([&](cpu::Isa isa) {
              const cpu::OpsTable& kt = cpu::ops_table(isa);
              std::vector<float> per_token(q.size(), NAN);
              per_token_attention(kt, c, q, cache, max_pos, scale, per_token);
              // Blocks of every size up to the largest, and a group cut into a 1-head slice
              // and the rest: each output row is written by exactly one call (NaN if none).
              for (int64_t block_tokens : {int64_t{1}, int64_t{5}, full}) {
                for (int64_t slice : {group, std::max<int64_t>(1, group - 1)}) {
                  INFO("block " << block_tokens << " tokens x " << slice << " heads");
                  std::vector<float> out(q.size(), NAN);
                  blocked_attention(kt, c, q, cache, max_pos, scale, block_tokens, slice, out);
                  // f32 dots of <= 128 terms |q k| <= 1 with the scale folded into q (score error
                  // < 1e-6), a polynomial exp (a few ulp) and sums of <= 230 weights: each softmax
                  // weight moves by < 1e-6 relative, and outputs average |v| <= 1. An f16 cache is
                  // converted exactly, so both cache types share the bound.
                  require_close(out, want, 3e-6, 0);
                  // The per-token kernels carry the same error in another order: twice the bound.
                  require_close(out, per_token, 6e-6, 0);
                }
              }
            });
          }
        }
      }
    }
  }
}

TEST_CASE("ops: prefill attention (blocked, threaded) matches a naive double implementation, GQA 1..17",
          "[ops][attention][blocked][no_qemu]") {
  // head_dim 512 allows 16 rows per block: a group of 17 heads is cut into slices.
  const AttentionCase cases[] = {{2, 2, 64},  {6, 2, 64},   {7, 1, 64}, {9, 3, 128},
                                 {14, 2, 80}, {17, 1, 512}, {3, 1, 7},  {2, 1, 33}};
  const std::pair<int64_t, int64_t> queries[] = {{4, 0}, {7, 5}, {16, 100}, {33, 0}, {130, 5}, {64, 1000}};
  ThreadPool pool(2);
  for (const AttentionCase& c : cases) {
    for (auto [n_q, pos0] : queries) {
      if (c.head_dim == 512 && n_q * pos0 > 1000) continue;  // the double oracle is slow there
      for (DType dtype : {DType::f32, DType::f16}) {
        INFO("heads " << c.n_heads << "/" << c.n_kv_heads << " head_dim " << c.head_dim << " n_q " << n_q << " pos0 "
                      << pos0 << " " << name_of(dtype));
        const int64_t max_pos = pos0 + n_q + 2;
        Cache cache(dtype, c.n_kv_heads, max_pos, c.head_dim, pos0 + n_q, 23);
        auto q = random_floats(static_cast<size_t>(n_q * c.n_heads * c.head_dim), -1, 1, 24);
        const Shape q_shape{n_q, c.n_heads, c.head_dim};
        const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
        const auto exact =
            naive_attention(q, n_q, c.n_heads, c.head_dim, cache.k, cache.v, c.n_kv_heads, max_pos, pos0, scale);
        for_each_isa([&](cpu::Isa) {
          std::vector<float> out(q.size(), NAN);
          attention(view_of(q, q_shape), cache.k_view, cache.v_view, pos0, view_of(out, q_shape), pool);
          // As the per-token path: f32 dots of head_dim terms (512 here: 4x the score error of
          // 128, still < 4e-6) and a polynomial exp; ref rounds once from double.
          require_close(out, exact, c.head_dim > 128 ? 8e-6 : 3e-6, 0);
        });
      }
    }
  }
}

TEST_CASE("ops: blocked attention rescales when every chunk brings a new maximum", "[ops][attention][blocked]") {
  ThreadPool pool(2);
  const int64_t n_heads = 3, n_kv = 1, head_dim = 64, n_q = 40, pos0 = 260, max_pos = 300;
  Cache cache(DType::f32, n_kv, max_pos, head_dim, max_pos, 25);
  auto q = random_floats(static_cast<size_t>(n_q * n_heads * head_dim), -1, 1, 26);
  // k_j = (j / 100) q_(0,0): token 0 head 0's scores rise with j, so each chunk raises its max.
  for (int64_t j = 0; j < max_pos; ++j) {
    for (int64_t d = 0; d < head_dim; ++d) {
      cache.k[static_cast<size_t>(j * head_dim + d)] = static_cast<float>(j) / 100.0f * q[static_cast<size_t>(d)];
    }
  }
  const Shape shape{n_q, n_heads, head_dim};
  const auto exact = naive_attention(q, n_q, n_heads, head_dim, cache.k, cache.v, n_kv, max_pos, pos0, 0.125);
  for_each_isa([&](cpu::Isa) {
    std::vector<float> out(q.size());
    attention(view_of(q, shape), cache.k_view, cache.v_view, pos0, view_of(out, shape), pool, 0.125f);
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
