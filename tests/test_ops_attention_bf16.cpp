// Prefill attention with bf16 compute (kernels/ops.h attention(..., allow_bf16_compute);
// the amx level's OpsTable::attention_block_bf16_*): against a naive double implementation
// on the exact operands and on the operands rounded as the kernel rounds them, with bounds
// derived from bf16 rounding per query row; and the opt-out path bit-identical to the f32 kernels.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/quant_blocks.h"
#include "kernels/cpu/ops_table.h"
#include "kernels/ops.h"
#include "test_attention_cache.h"
#include "test_ops_common.h"

using namespace qilin;
using namespace qilin::test;

namespace {

constexpr double kBf16 = 0x1p-8;  // relative rounding error of bf16: 8 significant bits, nearest even

float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

// Softmax-weighted averages in double, and a bound on the kernel's distance from each.
//   exact:    softmax(scale q . k_j) on the cache's values;
//   emulated: the kernel's roundings replayed: q' = bf16(q * c) with c = scale * log2(e) in
//             f32, k' = bf16(k), v' = bf16(v), weights 2^(q' . k'_j - max).
// Each bound follows from the weights' relative errors: if every weight is off by a factor
// within A e^(+-delta) (A common to all keys: it cancels), the average moves by at most
// expm1(2 delta) / 2 * max_j |v_j - out| (write the error as sum_j w_j (a_j - a*) (v_j - out)
// over sum_j w_j a_j). delta collects, per key: the score error, bf16 rounding of the weight
// (kBf16), the weights' exp2 cubic (7.8e-5) and f32 sums (gamma: head_dim terms per score, the
// context's terms per output and sum, a rescale per chunk). The exact comparison adds the
// rounding of v (kBf16 |v|), and its score error is scale sum_d |q_d k_d| ((1 + u)^2 - 1 + gamma).
struct Reference {
  std::vector<double> exact, emulated, exact_bound, emulated_bound;
};

Reference reference(const std::vector<float>& q, int64_t n_q, int64_t n_heads, int64_t head_dim, const Cache& cache,
                    int64_t n_kv, int64_t max_pos, int64_t pos0, float scale) {
  Reference r;
  r.exact.resize(q.size()), r.emulated.resize(q.size());
  r.exact_bound.resize(q.size()), r.emulated_bound.resize(q.size());
  const int64_t group = n_heads / n_kv;
  const float c = scale * 1.44269504088896341f;
  std::vector<float> qr(static_cast<size_t>(head_dim));
  std::vector<double> w, wr, sum_abs;
  for (int64_t t = 0; t < n_q; ++t) {
    const int64_t n_ctx = pos0 + t + 1;
    const double gamma = static_cast<double>(head_dim + 2 * n_ctx + 64) * 0x1p-24;
    for (int64_t h = 0; h < n_heads; ++h) {
      const size_t row = static_cast<size_t>((t * n_heads + h) * head_dim);
      const float* qh = &q[row];
      const float* kh = &cache.k[static_cast<size_t>((h / group) * max_pos * head_dim)];
      const float* vh = &cache.v[static_cast<size_t>((h / group) * max_pos * head_dim)];
      for (int64_t d = 0; d < head_dim; ++d) qr[static_cast<size_t>(d)] = round_bf16(qh[d] * c);
      w.assign(static_cast<size_t>(n_ctx), 0.0), wr.assign(w.size(), 0.0), sum_abs.assign(w.size(), 0.0);
      double max = -INFINITY, max_r = -INFINITY, most_abs = 0;
      for (int64_t j = 0; j < n_ctx; ++j) {
        double dot = 0, dot_r = 0, abs = 0;
        for (int64_t d = 0; d < head_dim; ++d) {
          const float kd = kh[j * head_dim + d];
          dot += static_cast<double>(qh[d]) * kd;
          dot_r += static_cast<double>(qr[static_cast<size_t>(d)]) * round_bf16(kd);
          abs += std::fabs(static_cast<double>(qh[d]) * kd);
        }
        w[static_cast<size_t>(j)] = dot * scale, wr[static_cast<size_t>(j)] = dot_r;
        max = std::max(max, dot * scale), max_r = std::max(max_r, dot_r);
        most_abs = std::max(most_abs, abs * scale);
      }
      double sum = 0, sum_r = 0;
      for (size_t j = 0; j < w.size(); ++j) {
        sum += (w[j] = std::exp(w[j] - max));
        sum_r += (wr[j] = std::exp2(wr[j] - max_r));
      }
      const double weight_error = kBf16 + 8e-5 + gamma;
      const double delta_exact = most_abs * (2 * kBf16 + kBf16 * kBf16 + gamma) + weight_error;
      const double delta_emulated = most_abs * (1 + kBf16) * (1 + kBf16) * gamma + weight_error;
      for (int64_t d = 0; d < head_dim; ++d) {
        double o = 0, o_r = 0, v_max = 0;
        for (int64_t j = 0; j < n_ctx; ++j) {
          o += w[static_cast<size_t>(j)] * vh[j * head_dim + d];
          o_r += wr[static_cast<size_t>(j)] * round_bf16(vh[j * head_dim + d]);
        }
        o /= sum, o_r /= sum_r;
        double spread = 0, spread_r = 0;  // max_j |v_j - out|
        for (int64_t j = 0; j < n_ctx; ++j) {
          const double x = vh[j * head_dim + d];
          spread = std::max(spread, std::fabs(x - o));
          spread_r = std::max(spread_r, std::fabs(round_bf16(static_cast<float>(x)) - o_r));
          v_max = std::max(v_max, std::fabs(x));
        }
        const size_t i = row + static_cast<size_t>(d);
        r.exact[i] = o, r.emulated[i] = o_r;
        r.exact_bound[i] = std::expm1(2 * delta_exact) / 2 * spread + (kBf16 + gamma) * v_max;
        r.emulated_bound[i] = std::expm1(2 * delta_emulated) / 2 * spread_r + gamma * v_max;
      }
    }
  }
  return r;
}

// Every |got - want| <= bound (element-wise); reports the worst element's share of its bound.
void require_within(const std::vector<float>& got, const std::vector<double>& want, const std::vector<double>& bound,
                    const char* what) {
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double ratio = std::isnan(err) ? INFINITY : err / bound[i];
    if (ratio > worst) worst = ratio, worst_i = i;
  }
  INFO(what << ": worst element " << worst_i << " of " << got.size() << ": got " << got[worst_i] << ", want "
            << want[worst_i] << ", bound " << bound[worst_i] << ", error/bound " << worst);
  if (std::getenv("QILIN_TEST_SHOW_ERRORS")) std::printf("%s error/bound %.3g\n", what, worst);
  REQUIRE(worst <= 1.0);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool has_amx() {
  if (cpu::isa_supported(cpu::Isa::amx)) return true;
  WARN("AMX-BF16 is not available on this CPU: the bf16 attention kernels are not tested here");
  return false;
}

}  // namespace

TEST_CASE("ops: bf16 prefill attention on AMX tiles is within its bf16 bounds of naive double, GQA 1/2/7",
          "[ops][attention][bf16][no_qemu]") {
  if (!has_amx()) return;
  const cpu::Isa before = cpu::active_isa();
  cpu::set_active_isa(cpu::Isa::amx);
  ThreadPool pool(2);
  const std::pair<int64_t, int64_t> heads[] = {{2, 2}, {4, 2}, {14, 2}};  // groups 1, 2, 7
  for (int64_t head_dim : {64, 128}) {
    for (auto [n_heads, n_kv] : heads) {
      for (int64_t n_q : {1, 2, 7, 16, 33, 70}) {
        for (int64_t pos0 : {0, 5, 100}) {
          for (DType dtype : {DType::f32, DType::f16, DType::q8_0}) {
            INFO("heads " << n_heads << "/" << n_kv << " head_dim " << head_dim << " n_q " << n_q << " pos0 " << pos0
                          << " " << name_of(dtype));
            const int64_t max_pos = pos0 + n_q + 3;
            const Cache cache(dtype, n_kv, max_pos, head_dim, pos0 + n_q, 31);
            auto q = random_floats(static_cast<size_t>(n_q * n_heads * head_dim), -1, 1, 32);
            const Shape shape{n_q, n_heads, head_dim};
            const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
            const Reference want = reference(q, n_q, n_heads, head_dim, cache, n_kv, max_pos, pos0, scale);
            std::vector<float> out(q.size(), NAN);
            attention(view_of(q, shape), cache.k_view, cache.v_view, pos0, view_of(out, shape), pool, std::nullopt,
                      true);
            require_within(out, want.exact, want.exact_bound, "against exact");
            // One query (decode) takes the per-token f32 kernels: no roundings to replay.
            if (n_q > 1) require_within(out, want.emulated, want.emulated_bound, "against emulated roundings");
          }
        }
      }
    }
  }
  cpu::set_active_isa(before);
}

TEST_CASE("ops: bf16 prefill attention handles every head_dim multiple of 32, large scores, long contexts",
          "[ops][attention][bf16][no_qemu]") {
  if (!has_amx()) return;
  const cpu::Isa before = cpu::active_isa();
  cpu::set_active_isa(cpu::Isa::amx);
  ThreadPool pool(2);
  struct Case {
    int64_t n_heads, n_kv, head_dim, n_q, pos0;
    float scale;  // 0: 1 / sqrt(head_dim)
  };
  const Case cases[] = {{3, 1, 32, 40, 7, 0},    {6, 2, 96, 19, 50, 0},   {4, 2, 256, 21, 30, 0},
                        {17, 1, 512, 9, 20, 0},  {7, 1, 64, 65, 300, 0},  {14, 2, 64, 130, 0, 0},
                        {9, 3, 64, 45, 1000, 0}, {6, 2, 64, 33, 40, 1.0f}};  // scale 8x: scores to +-64
  for (const Case& c : cases) {
    for (DType dtype : {DType::f16, DType::q8_0}) {
      INFO("heads " << c.n_heads << "/" << c.n_kv << " head_dim " << c.head_dim << " n_q " << c.n_q << " pos0 "
                    << c.pos0 << " " << name_of(dtype));
      const int64_t max_pos = c.pos0 + c.n_q + 1;
      const Cache cache(dtype, c.n_kv, max_pos, c.head_dim, c.pos0 + c.n_q, 33);
      auto q = random_floats(static_cast<size_t>(c.n_q * c.n_heads * c.head_dim), -1, 1, 34);
      const Shape shape{c.n_q, c.n_heads, c.head_dim};
      const float scale = c.scale != 0 ? c.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
      const Reference want = reference(q, c.n_q, c.n_heads, c.head_dim, cache, c.n_kv, max_pos, c.pos0, scale);
      std::vector<float> out(q.size(), NAN);
      attention(view_of(q, shape), cache.k_view, cache.v_view, c.pos0, view_of(out, shape), pool, scale, true);
      require_within(out, want.exact, want.exact_bound, "against exact");
      require_within(out, want.emulated, want.emulated_bound, "against emulated roundings");
    }
  }
  cpu::set_active_isa(before);
}

TEST_CASE("ops: attention without allow_bf16_compute keeps the f32 kernels' bits; bf16 is only a permission",
          "[ops][attention][bf16]") {
  ThreadPool pool(2);
  const int64_t n_heads = 14, n_kv = 2, n_q = 20, pos0 = 37;
  for (int64_t head_dim : {64, 80}) {  // 80: no bf16 kernel (not a multiple of 32)
    for (DType dtype : {DType::f32, DType::f16}) {
      INFO("head_dim " << head_dim << " " << name_of(dtype));
      const int64_t max_pos = pos0 + n_q;
      const Cache cache(dtype, n_kv, max_pos, head_dim, max_pos, 35);
      auto q = random_floats(static_cast<size_t>(n_q * n_heads * head_dim), -1, 1, 36);
      const Shape shape{n_q, n_heads, head_dim};
      auto run = [&](bool bf16) {
        std::vector<float> out(q.size(), NAN);
        attention(view_of(q, shape), cache.k_view, cache.v_view, pos0, view_of(out, shape), pool, std::nullopt, bf16);
        return out;
      };
      std::vector<float> below_amx;
      for_each_isa([&](cpu::Isa isa) {
        const std::vector<float> exact = run(false), bf16 = run(true);
        if (isa != cpu::Isa::amx) {
          REQUIRE(same_bits(bf16, exact));  // no bf16 kernel below amx: the permission changes nothing
          below_amx = exact;
          return;
        }
        REQUIRE(same_bits(exact, below_amx));  // amx adds no f32 kernel: the avx512 bits
        // head_dim 64 takes the tiles (q, k, v rounded to bf16 move outputs by ~1e-3); 80 cannot.
        REQUIRE(same_bits(bf16, exact) == (head_dim % 32 != 0));
      });
    }
  }
}
