// KV-cache writes and q8_0 caches (kernels/ops.h kv_store, attention over q8_0 rows):
// the f16 / q8_0 row conversions bit for bit against ref at every ISA level, kv_store's
// layout and checks, and attention over a q8_0 cache against a naive double
// implementation (on the dequantized values) and against the f32 cache it came from.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/quant_blocks.h"
#include "kernels/cpu/ops_table.h"
#include "kernels/ops.h"
#include "test_ops_common.h"

using namespace qilin;
using namespace qilin::test;
using Catch::Contains;

namespace {

float dequantized(const BlockQ8_0& b, int j) { return f16_to_f32(b.d) * static_cast<float>(b.qs[j]); }

// Rows that stress the q8_0 quantizer: random blocks of magnitudes 1e-6 .. 1e4 (scales
// from f16 subnormals up), an all-zero block, a block whose scale is a power of two
// with every value at a rounding midpoint (x / d = m + 1/2: nearest-even must agree
// everywhere), and a block of one large value among tiny ones.
std::vector<float> quantizer_input(int64_t n, uint32_t seed) {
  std::vector<float> x = random_floats(static_cast<size_t>(n), -1, 1, seed);
  for (int64_t b = 0; b < n / kQK; ++b) {
    float* y = x.data() + b * kQK;
    switch (b % 5) {
      case 0:
        for (int j = 0; j < kQK; ++j) y[j] *= std::pow(10.0f, static_cast<float>(b % 11) - 6.0f);
        break;
      case 1:
        for (int j = 0; j < kQK; ++j) y[j] = 0.0f;
        break;
      case 2:  // d = 127 * 2^-7 / 127 = 2^-7 exactly; y = (m + 1/2) d
        y[0] = 127.0f / 128.0f;
        for (int j = 1; j < kQK; ++j) y[j] = (static_cast<float>(j * 7 % 253) - 126.0f + 0.5f) / 128.0f;
        break;
      case 3:
        y[b % kQK] = 3000.0f;
        break;
      default:
        break;
    }
  }
  return x;
}

}  // namespace

TEST_CASE("ops: f32 rows to f16 and q8_0 are bit-identical to ref at every ISA level", "[ops][kv]") {
  const cpu::OpsTable& ref = cpu::ops_table(cpu::Isa::ref);
  for (int64_t n : kAwkwardSizes) {
    INFO("f16 row of " << n);
    std::vector<float> x = random_floats(static_cast<size_t>(n), -70000, 70000, 31);  // past f16's 65504: inf
    if (n > 3) x[1] = 1e-6f, x[2] = -3e-8f, x[3] = 0.0f;                              // subnormal, underflow, zero
    std::vector<uint16_t> want(static_cast<size_t>(n));
    ref.f32_row_to_f16(x.data(), want.data(), n);
    for (size_t i = 0; i < want.size(); ++i) REQUIRE(want[i] == f32_to_f16(x[i]));
    for_each_isa([&](cpu::Isa isa) {
      std::vector<uint16_t> got(static_cast<size_t>(n) + 1, 0xabcd);
      cpu::ops_table(isa).f32_row_to_f16(x.data(), got.data(), n);
      // Both round to nearest even (F16C's rounding mode 0 is IEEE's): exact.
      for (size_t i = 0; i < want.size(); ++i) REQUIRE(got[i] == want[i]);
      REQUIRE(got.back() == 0xabcd);  // nothing written past the row
    });
  }
  for (int64_t n : {32, 64, 96, 160, 4096}) {
    INFO("q8_0 row of " << n);
    const std::vector<float> x = quantizer_input(n, static_cast<uint32_t>(n));
    std::vector<BlockQ8_0> want(static_cast<size_t>(n / kQK));
    ref.f32_row_to_q8_0(x.data(), want.data(), n);
    for (int64_t b = 0; b < n / kQK; ++b) {
      const BlockQ8_0& blk = want[static_cast<size_t>(b)];
      float amax = 0;
      for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[static_cast<size_t>(b * kQK + j)]));
      REQUIRE(blk.d == f32_to_f16(amax / 127.0f));
      const float d = f16_to_f32(blk.d);
      for (int j = 0; j < kQK; ++j) {
        const float xj = x[static_cast<size_t>(b * kQK + j)];
        INFO("block " << b << " element " << j << ": x " << xj << ", d " << d);
        // Half a step of the f16 scale (x * (1/d) in f32 adds < 2e-5 of a step). A scale in f16's
        // subnormal range (or flushed to 0) is off by up to 2^-25 absolute, so amax / d may pass
        // 127 and the clamp adds up to 127 * 2^-25.
        const bool normal = d >= 6.103515625e-05f;
        const float subnormal_slack = normal ? 0.0f : 127.0f * std::ldexp(1.0f, -25);
        CHECK(std::fabs(dequantized(blk, j) - xj) <= d * (0.5f + 2e-5f) + subnormal_slack);
        if (b % 5 == 2 && j > 0) CHECK(blk.qs[j] % 2 == 0);  // midpoints went to the even neighbour
      }
    }
    for_each_isa([&](cpu::Isa isa) {
      std::vector<BlockQ8_0> got(want.size() + 1);
      std::memset(got.data(), 0x5a, got.size() * sizeof(BlockQ8_0));
      cpu::ops_table(isa).f32_row_to_q8_0(x.data(), got.data(), n);
      REQUIRE(std::memcmp(got.data(), want.data(), want.size() * sizeof(BlockQ8_0)) == 0);  // the same bits
      REQUIRE(got.back().d == 0x5a5a);  // nothing written past the row
    });
  }
}

TEST_CASE("ops: kv_store writes [kv_head][pos] rows of every cache type and checks its arguments", "[ops][kv]") {
  ThreadPool pool(2);
  const int64_t n = 5, kvh = 3, hd = 64, max_pos = 9, pos0 = 3;
  std::vector<float> src = random_floats(static_cast<size_t>(n * kvh * hd), -2, 2, 41);
  for (DType type : {DType::f32, DType::f16, DType::q8_0}) {
    INFO(name_of(type));
    Tensor dst = Tensor::zeros({kvh, max_pos, hd}, type);
    for_each_isa([&](cpu::Isa) {
      kv_store(view_of(src, {n, kvh, hd}), dst, pos0, pool);
      for (int64_t h = 0; h < kvh; ++h) {
        for (int64_t p = 0; p < max_pos; ++p) {
          std::vector<float> row(static_cast<size_t>(hd));
          traits(type).to_float(dst.view().row(h * max_pos + p), row.data(), hd);
          for (int64_t d = 0; d < hd; ++d) {
            const bool written = p >= pos0 && p < pos0 + n;
            const float want = written ? src[static_cast<size_t>(((p - pos0) * kvh + h) * hd + d)] : 0.0f;
            // f16 rounds to 2^-11 relative; q8_0 to half a step of f16(amax / 127) <= 2 / 127 (1 + 2^-11).
            const float tol = type == DType::f32 ? 0.0f : (type == DType::f16 ? 2.0f / 2048 : 1.001f / 127);
            REQUIRE(std::fabs(row[static_cast<size_t>(d)] - want) <= tol);
          }
        }
      }
    });
  }
  Tensor q8 = Tensor::zeros({kvh, max_pos, hd}, DType::q8_0);
  REQUIRE_THROWS_WITH(kv_store(view_of(src, {n, kvh, hd}), q8, 5, pool),
                      Contains("[kv_store]") && Contains("[5, 10)") && Contains("3x9x64"));
  REQUIRE_THROWS_WITH(kv_store(view_of(src, {n, kvh * hd}), q8, 0, pool), Contains("[kv_store]") && Contains("5x192"));
  REQUIRE_THROWS_WITH(kv_store(view_of(src, {n, 1, kvh * hd}), q8, 0, pool),
                      Contains("[kv_store]") && Contains("5x1x192") && Contains("3x9x64"));
  Tensor odd = Tensor::zeros({kvh, max_pos, 48}, DType::f16);
  std::vector<float> src48(static_cast<size_t>(n * kvh * 48));
  REQUIRE_NOTHROW(kv_store(view_of(src48, {n, kvh, 48}), odd, 0, pool));
  REQUIRE_THROWS_WITH(kv_store(view_of(src48, {n, kvh, 48}), TensorView(q8.data(), {kvh, 4, 48}, DType::f16), 0, pool),
                      Contains("[kv_store]") && Contains("[0, 5)"));
  Tensor bf = Tensor::zeros({kvh, max_pos, hd}, DType::bf16);
  REQUIRE_THROWS_WITH(kv_store(view_of(src, {n, kvh, hd}), bf, 0, pool), Contains("bf16"));
}

// ---- attention over a q8_0 cache ------------------------------------------------------

namespace {

// out[t][h] = softmax_j(scale * q[t][h] . k[h/group][j]) v[..][j] over j <= pos0 + t, in double.
std::vector<double> naive_attention(const std::vector<float>& q, int64_t n_q, int64_t n_heads, int64_t head_dim,
                                    const std::vector<float>& k, const std::vector<float>& v, int64_t n_kv_heads,
                                    int64_t max_pos, int64_t pos0, double scale) {
  std::vector<double> out(q.size());
  const int64_t group = n_heads / n_kv_heads;
  std::vector<double> s;
  for (int64_t t = 0; t < n_q; ++t) {
    for (int64_t h = 0; h < n_heads; ++h) {
      const float* qh = &q[static_cast<size_t>((t * n_heads + h) * head_dim)];
      const float* kh = &k[static_cast<size_t>((h / group) * max_pos * head_dim)];
      const float* vh = &v[static_cast<size_t>((h / group) * max_pos * head_dim)];
      const int64_t n_ctx = pos0 + t + 1;
      s.assign(static_cast<size_t>(n_ctx), 0.0);
      double max = -INFINITY, sum = 0;
      for (int64_t j = 0; j < n_ctx; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < head_dim; ++d) dot += static_cast<double>(qh[d]) * kh[j * head_dim + d];
        s[static_cast<size_t>(j)] = dot * scale;
        max = std::max(max, dot * scale);
      }
      for (double& x : s) sum += (x = std::exp(x - max));
      double* o = &out[static_cast<size_t>((t * n_heads + h) * head_dim)];
      for (int64_t d = 0; d < head_dim; ++d) o[d] = 0;
      for (int64_t j = 0; j < n_ctx; ++j) {
        for (int64_t d = 0; d < head_dim; ++d) o[d] += s[static_cast<size_t>(j)] * vh[j * head_dim + d];
      }
      for (int64_t d = 0; d < head_dim; ++d) o[d] /= sum;
    }
  }
  return out;
}

// A q8_0 cache quantized (by the ref kernel) from f32 values in [-1, 1]: `exact` holds
// the f32 values, `seen` the dequantized ones the kernels read. Rows from `valid` on get
// a NaN scale, so a read past the causal limit poisons the result.
struct Q8Cache {
  std::vector<float> exact, seen;
  std::vector<BlockQ8_0> k, v;
  std::vector<float> k_seen, v_seen;
  TensorView k_view, v_view;
  std::vector<float> k_exact, v_exact;

  Q8Cache(int64_t n_kv, int64_t max_pos, int64_t head_dim, int64_t valid, uint32_t seed) {
    const size_t n = static_cast<size_t>(n_kv * max_pos * head_dim);
    k_exact = random_floats(n, -1, 1, seed);
    v_exact = random_floats(n, -1, 1, seed + 1);
    k.resize(n / kQK), v.resize(n / kQK);
    k_seen.resize(n), v_seen.resize(n);
    const cpu::OpsTable& ref = cpu::ops_table(cpu::Isa::ref);
    ref.f32_row_to_q8_0(k_exact.data(), k.data(), static_cast<int64_t>(n));
    ref.f32_row_to_q8_0(v_exact.data(), v.data(), static_cast<int64_t>(n));
    const int64_t blocks_per_row = head_dim / kQK;
    for (size_t b = 0; b < k.size(); ++b) {
      if (static_cast<int64_t>(b) / blocks_per_row % max_pos >= valid) k[b].d = v[b].d = 0x7e00;  // NaN
      for (int j = 0; j < kQK; ++j) {
        k_seen[b * kQK + static_cast<size_t>(j)] = dequantized(k[b], j);
        v_seen[b * kQK + static_cast<size_t>(j)] = dequantized(v[b], j);
      }
    }
    k_view = TensorView(k.data(), {n_kv, max_pos, head_dim}, DType::q8_0);
    v_view = TensorView(v.data(), {n_kv, max_pos, head_dim}, DType::q8_0);
  }
};

// A bound on |attention over the quantized cache - attention over the exact one| per query
// row: each score moves by at most ds = scale * sum_d |q_d| |dk_d| (the key's quantization
// errors), so each softmax weight by a factor within e^(+-2 max ds), and the output by at
// most max |dv| + (e^(2 max ds) - 1) max |v| (|v| <= 1).
std::vector<double> quantization_bound(const std::vector<float>& q, int64_t n_q, int64_t n_heads, int64_t head_dim,
                                       const Q8Cache& c, int64_t n_kv, int64_t max_pos, int64_t pos0, double scale) {
  std::vector<double> bound(q.size());
  const int64_t group = n_heads / n_kv;
  for (int64_t t = 0; t < n_q; ++t) {
    for (int64_t h = 0; h < n_heads; ++h) {
      const size_t base = static_cast<size_t>((h / group) * max_pos * head_dim);
      double ds = 0, dv = 0;
      for (int64_t j = 0; j <= pos0 + t; ++j) {
        double s = 0;
        for (int64_t d = 0; d < head_dim; ++d) {
          const size_t i = base + static_cast<size_t>(j * head_dim + d);
          s += std::fabs(q[static_cast<size_t>((t * n_heads + h) * head_dim + d)]) *
               std::fabs(static_cast<double>(c.k_seen[i]) - c.k_exact[i]);
          dv = std::max(dv, std::fabs(static_cast<double>(c.v_seen[i]) - c.v_exact[i]));
        }
        ds = std::max(ds, s * scale);
      }
      for (int64_t d = 0; d < head_dim; ++d) {
        bound[static_cast<size_t>((t * n_heads + h) * head_dim + d)] = dv + std::expm1(2 * ds);
      }
    }
  }
  return bound;
}

}  // namespace

// [no_qemu]: 1000-key prefill cases in double take minutes under the no-AVX2 emulator.
TEST_CASE("ops: attention over a q8_0 cache matches naive double and the f32 cache, decode and prefill, GQA",
          "[ops][attention][kv][no_qemu]") {
  const std::pair<int64_t, int64_t> heads[] = {{2, 2}, {6, 2}, {7, 1}};  // groups 1, 3, 7
  ThreadPool pool(2);
  for (int64_t head_dim : {32, 64, 128}) {
    for (auto [n_heads, n_kv] : heads) {
      for (int64_t length : {1, 7, 31, 33, 100, 1000}) {
        // Decode: one query seeing `length` keys; prefill: the last up-to-130 tokens of it
        // (the blocked kernels, at least 2 queries).
        for (int64_t n_q : {int64_t{1}, std::min<int64_t>(length, 130)}) {
          if (n_q == 1 && length > 1 && n_q == std::min<int64_t>(length, 130)) continue;
          const int64_t pos0 = length - n_q, max_pos = length + 3;
          INFO("heads " << n_heads << "/" << n_kv << " head_dim " << head_dim << " n_q " << n_q << " keys " << length);
          const Q8Cache cache(n_kv, max_pos, head_dim, length, static_cast<uint32_t>(head_dim + length));
          const auto q = random_floats(static_cast<size_t>(n_q * n_heads * head_dim), -1, 1, 51);
          const Shape q_shape{n_q, n_heads, head_dim};
          const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
          const auto exact =
              naive_attention(q, n_q, n_heads, head_dim, cache.k_seen, cache.v_seen, n_kv, max_pos, pos0, scale);
          const auto unquantized =
              naive_attention(q, n_q, n_heads, head_dim, cache.k_exact, cache.v_exact, n_kv, max_pos, pos0, scale);
          const auto bound = quantization_bound(q, n_q, n_heads, head_dim, cache, n_kv, max_pos, pos0, scale);
          std::vector<float> f32_out(q.size());
          std::vector<float> k32 = cache.k_exact, v32 = cache.v_exact;
          at_ref([&] {
            attention(view_of(const_cast<std::vector<float>&>(q), q_shape), view_of(k32, {n_kv, max_pos, head_dim}),
                      view_of(v32, {n_kv, max_pos, head_dim}), pos0, view_of(f32_out, q_shape), pool);
          });
          for_each_isa([&](cpu::Isa isa) {
            std::vector<float> out(q.size(), NAN);
            attention(view_of(const_cast<std::vector<float>&>(q), q_shape), cache.k_view, cache.v_view, pos0,
                      view_of(out, q_shape), pool);
            // The kernels read the dequantized values exactly (d * q is exact in f32), so the bound of
            // the f32 cache applies: f32 dots of <= 128 terms and a polynomial exp move each weight
            // by < 1e-6 relative, outputs average |v| <= 1 (ref: one rounding from double).
            require_close(out, exact, isa == cpu::Isa::ref ? 6e-8 : 3e-6, 0);
            // Against the f32 cache (the f32 ref level): within the quantization bound computed from
            // this cache's actual errors, plus the f32 kernels' own 3e-6.
            double worst = 0;
            for (size_t i = 0; i < out.size(); ++i) {
              REQUIRE(std::fabs(static_cast<double>(out[i]) - f32_out[i]) <= bound[i] + 3e-6);
              REQUIRE(std::fabs(f32_out[i] - unquantized[i]) <= 3e-6);
              worst = std::max(worst, std::fabs(static_cast<double>(out[i]) - unquantized[i]));
            }
            CHECK(worst > 0);  // the cache really was quantized
          });
          if (n_q > 1) {  // the per-token kernels on the same q8_0 rows agree with the blocked ones
            for_each_isa([&](cpu::Isa isa) {
              const cpu::OpsTable& kt = cpu::ops_table(isa);
              std::vector<float> out(q.size(), NAN);
              const int64_t group = n_heads / n_kv, row_blocks = max_pos * head_dim / kQK;
              for (int64_t t = 0; t < n_q; ++t) {
                for (int64_t g = 0; g < n_kv; ++g) {
                  const size_t row = static_cast<size_t>((t * n_heads + g * group) * head_dim);
                  kt.attention_q8_0(&q[row], group, cache.k.data() + g * row_blocks, cache.v.data() + g * row_blocks,
                                    pos0 + t + 1, head_dim, static_cast<float>(scale), &out[row]);
                }
              }
              require_close(out, exact, isa == cpu::Isa::ref ? 6e-8 : 3e-6, 0);
            });
          }
        }
      }
    }
  }
}
