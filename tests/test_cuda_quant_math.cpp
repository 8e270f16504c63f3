// The CUDA kernels' arithmetic, checked on the host: kernels/cuda/quant_math.h and
// attention_plan.h compile as plain C++ here (dp4a, f16 conversions and the f32
// intrinsics replaced by their exact meaning), so these tests run on every machine,
// GPU or not, and pin the parts of the kernels most easily got wrong:
//  - which byte, nibble and scale belongs to which element of each block format
//    (against core's dequantizers, bit for bit);
//  - the 8-bit quantization of x (against the CPU kernels' quantizer, bit for bit)
//    and a GEMV replayed from the kernels' unit dot products (against the CPU ref);
//  - the q8_0 rounding of a KV row (against the CPU's kv_store, bit for bit);
//  - the attention split plan and its merge, replayed block by block, warp by warp
//    (against the CPU's attention).
// What they cannot check is the CUDA around it (launch shapes, shuffles, shared
// memory): tests/test_cuda_ops.cpp and test_cuda_matmul.cpp do, on a GPU.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/quant.h"
#include "kernels/cpu/qgemm_table.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/quant_math.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "test_matmul_data.h"
#include "test_matmul_quant_data.h"
#include "test_ops_common.h"

using namespace qilin;
using namespace qilin::test;

namespace {

// load_element<F> over a whole row, F chosen at run time.
std::vector<float> elements_of(DType t, const uint8_t* row, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    float v = 0;
    switch (t) {
      case DType::f32:
        v = cuda::load_element<DType::f32>(row, e);
        break;
      case DType::f16:
        v = cuda::load_element<DType::f16>(row, e);
        break;
      case DType::bf16:
        v = cuda::load_element<DType::bf16>(row, e);
        break;
      case DType::q8_0:
        v = cuda::load_element<DType::q8_0>(row, e);
        break;
      case DType::q4_0:
        v = cuda::load_element<DType::q4_0>(row, e);
        break;
      case DType::q4_1:
        v = cuda::load_element<DType::q4_1>(row, e);
        break;
      case DType::q4_k:
        v = cuda::load_element<DType::q4_k>(row, e);
        break;
      default:
        v = cuda::load_element<DType::q6_k>(row, e);
        break;
    }
    out[static_cast<size_t>(e)] = v;
  }
  return out;
}

cuda::WeightUnit unit_of(DType t, const uint8_t* row, int64_t u) {
  cuda::WeightUnit w{};
  switch (t) {
    case DType::q8_0:
      cuda::load_unit<DType::q8_0>(row, u, w);
      break;
    case DType::q4_0:
      cuda::load_unit<DType::q4_0>(row, u, w);
      break;
    case DType::q4_1:
      cuda::load_unit<DType::q4_1>(row, u, w);
      break;
    case DType::q4_k:
      cuda::load_unit<DType::q4_k>(row, u, w);
      break;
    default:
      cuda::load_unit<DType::q6_k>(row, u, w);
      break;
  }
  return w;
}

// The signed byte e (0..31) of a unit.
int unit_value(const cuda::WeightUnit& w, int e) {
  return static_cast<int8_t>(static_cast<uint32_t>(w.v[e / 4]) >> (8 * (e % 4)));
}

// What gemv_quant.cu's quantize_x_kernel computes for one block of 32 (a warp's
// max, scale, per-lane rounding, sum and byte packing), written sequentially.
cuda::XBlock quantize_block(const float* x) {
  float amax = 0.0f;
  for (int e = 0; e < 32; ++e) amax = std::fmax(amax, std::fabs(x[e]));
  cuda::XBlock b{};
  b.d = cuda::x_block_scale(amax);
  const float inv = cuda::x_block_inverse(b.d);
  for (int e = 0; e < 32; ++e) {
    const int32_t q = cuda::quantize_x_element(x[e], inv);
    b.sum += q;
    b.q[e / 4] =
        static_cast<int32_t>(static_cast<uint32_t>(b.q[e / 4]) | ((static_cast<uint32_t>(q) & 0xffu) << (8 * (e % 4))));
  }
  return b;
}

}  // namespace

TEST_CASE("cuda math: load_element reproduces core's dequantizers bit for bit", "[cuda_math]") {
  for (DType t :
       {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_1, DType::q4_k, DType::q6_k}) {
    const DTypeTraits& tr = traits(t);
    for (int64_t n : {tr.block_size == 1 ? int64_t{33} : tr.block_size, 3 * std::max<int64_t>(tr.block_size, 32)}) {
      INFO(tr.name << " n " << n);
      auto values = random_floats(static_cast<size_t>(n), -3, 3, 5);
      for (int64_t i = 0; i < n; i += 37) values[static_cast<size_t>(i)] *= 40.0f;  // spread the block scales
      std::vector<uint8_t> row(row_bytes(t, n));
      tr.from_float(values.data(), row.data(), n);
      std::vector<float> want(static_cast<size_t>(n));
      tr.to_float(row.data(), want.data(), n);
      // The same f32 operations in the same order (no FMA on either side): identical values.
      require_close(elements_of(t, row.data(), n), want, 0, 0);
    }
  }
}

TEST_CASE("cuda math: a weight unit holds a·v + b of each element, as dequantized", "[cuda_math]") {
  for (DType t : kQuantTypes) {
    for (bool exact : {false, true}) {  // exact_weight covers every bit pattern of the scales and quants
      INFO(name_of(t) << (exact ? " exact" : " quantized"));
      const int64_t k = 512;
      const Tensor w = exact ? exact_weight(t, 3, k, 7) : quantized_weight(t, 3, k, 7);
      const std::vector<float> deq = dequantized(w);
      for (int64_t r = 0; r < 3; ++r) {
        const auto* row = static_cast<const uint8_t*>(w.view().row(r));
        for (int64_t u = 0; u < k / 32; ++u) {
          const cuda::WeightUnit unit = unit_of(t, row, u);
          for (int e = 0; e < 32; ++e) {
            const float a = e < 16 ? unit.a0 : unit.a1;
            const float got = a * static_cast<float>(unit_value(unit, e)) + unit.b;
            // a·v + b is the dequantizer's own expression (d·q, d·q + m, d1·q - m1, (d·sc)·q): equal values.
            REQUIRE(got == deq[static_cast<size_t>(r * k + u * 32 + e)]);
          }
        }
      }
    }
  }
}

TEST_CASE("cuda math: dot4 is dp4a on signed bytes, sub_bytes never borrows", "[cuda_math]") {
  const auto pack = [](int a, int b, int c, int d) {
    return static_cast<int32_t>((static_cast<uint32_t>(a) & 0xff) | ((static_cast<uint32_t>(b) & 0xff) << 8) |
                                ((static_cast<uint32_t>(c) & 0xff) << 16) | ((static_cast<uint32_t>(d) & 0xff) << 24));
  };
  REQUIRE(cuda::dot4(pack(-128, 127, -1, 5), pack(127, -128, -7, 3), 10) == 10 - 128 * 127 - 127 * 128 + 7 + 15);
  for (uint32_t v = 0; v < 64; ++v) {
    const uint32_t bytes = v | (63 - v) << 8 | (v / 2) << 16 | 7u << 24;
    const uint32_t d = cuda::sub_bytes(bytes, 0x20202020u);
    REQUIRE(static_cast<int8_t>(d) == static_cast<int>(v) - 32);
    REQUIRE(static_cast<int8_t>(d >> 8) == static_cast<int>(63 - v) - 32);
    REQUIRE(static_cast<int8_t>(d >> 16) == static_cast<int>(v / 2) - 32);
    REQUIRE(static_cast<int8_t>(d >> 24) == 7 - 32);
  }
}

TEST_CASE("cuda math: x quantization matches the CPU kernels' bit for bit", "[cuda_math]") {
  const int64_t m = 3, k = 4096, nb = k / 32;
  auto x = random_floats(static_cast<size_t>(m * k), -2, 2, 21);
  for (int64_t b = 0; b < m * nb; b += 5) x[static_cast<size_t>(b * 32 + 3)] *= 100.0f;  // varied scales
  for (int e = 0; e < 32; ++e) x[static_cast<size_t>(64 + e)] = 0.0f;                    // an all-zero block
  std::vector<int8_t> q(static_cast<size_t>(m * k));
  std::vector<float> d(static_cast<size_t>(m * nb)), ds(d.size());
  std::vector<int32_t> sums16(static_cast<size_t>(m * k / 16));
  cpu::qgemm_table(cpu::Isa::ref).quantize_x(x.data(), k, m, k, q.data(), d.data(), ds.data(), sums16.data());
  for (int64_t i = 0; i < m * nb; ++i) {
    const cuda::XBlock b = quantize_block(&x[static_cast<size_t>(i * 32)]);
    REQUIRE(b.d == d[static_cast<size_t>(i)]);
    REQUIRE(b.sum == sums16[static_cast<size_t>(2 * i)] + sums16[static_cast<size_t>(2 * i + 1)]);
    for (int e = 0; e < 32; ++e) {
      REQUIRE(static_cast<int8_t>(static_cast<uint32_t>(b.q[e / 4]) >> (8 * (e % 4))) ==
              q[static_cast<size_t>(i * 32 + e)]);
    }
  }
}

TEST_CASE("cuda math: the GEMV's unit dot products add up to the CPU ref's product", "[cuda_math]") {
  ThreadPool pool(1);
  for (DType t : kQuantTypes) {
    for (int64_t k : {int64_t{256}, int64_t{4096}}) {
      INFO(name_of(t) << " k " << k);
      const int64_t n = 5, m = 2, units = k / 32;
      const Tensor w = quantized_weight(t, n, k, 3);
      const Tensor x = random_tensor(m, k, DType::f32, Values::reals, 4);
      std::vector<float> want(static_cast<size_t>(m * n));
      matmul(x, MatmulWeight(w), TensorView(want.data(), {m, n}, DType::f32), pool, {MatmulPath::ref});
      const std::vector<double> scale = abs_product_sums(x, TensorView(dequantized(w).data(), {n, k}, DType::f32));
      for (int64_t i = 0; i < m; ++i) {
        std::vector<cuda::XBlock> xq(static_cast<size_t>(units));
        for (int64_t u = 0; u < units; ++u)
          xq[static_cast<size_t>(u)] = quantize_block(x.data_as<float>() + i * k + u * 32);
        for (int64_t r = 0; r < n; ++r) {
          // Lane l of the warp sums units l, l + 32, ...; then the lanes' sums are added as a tree.
          float lane_sum[32] = {};
          for (int64_t u = 0; u < units; ++u) {
            lane_sum[u % 32] +=
                cuda::unit_dot(unit_of(t, static_cast<const uint8_t*>(w.view().row(r)), u), xq[static_cast<size_t>(u)]);
          }
          for (int width = 16; width > 0; width /= 2) {
            for (int l = 0; l < width; ++l) lane_sum[l] += lane_sum[l + width];
          }
          const size_t at = static_cast<size_t>(i * n + r);
          // Same quantized x and integer dots as the CPU ref, which sums in double: what is
          // left is f32 rounding, a few ulp per unit and the sums over <= 128 units, well
          // under 1e-5 of Σ|w·x| (a wrong nibble or scale is off by a sizeable fraction of it).
          REQUIRE(std::fabs(lane_sum[0] - want[at]) <= 1e-5 * scale[at]);
        }
      }
    }
  }
}

TEST_CASE("cuda math: q8_0 KV rows round as the CPU's kv_store", "[cuda_math]") {
  ThreadPool pool(1);
  const int64_t n = 3, heads = 2, head_dim = 64, max_pos = 4;
  auto src = random_floats(static_cast<size_t>(n * heads * head_dim), -3, 3, 31);
  for (size_t i = 0; i < src.size(); i += 13) src[i] *= 50.0f;
  std::vector<BlockQ8_0> cache(static_cast<size_t>(heads * max_pos * head_dim / 32));
  at_ref([&] {
    kv_store(view_of(src, {n, heads, head_dim}), TensorView(cache.data(), {heads, max_pos, head_dim}, DType::q8_0), 1,
             pool);
  });
  // Replays kv_store_q8_0_kernel: one warp per block of 32 (warp max of |x|, then each lane its element).
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t b = 0; b < head_dim / 32; ++b) {
        const float* x = &src[static_cast<size_t>((t * heads + h) * head_dim + b * 32)];
        float amax = 0;
        for (int e = 0; e < 32; ++e) amax = std::fmax(amax, std::fabs(x[e]));
        const uint16_t d16 = cuda::kv_q8_0_scale_bits(amax);
        const float d = cuda::half_bits_to_float(d16);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const BlockQ8_0& want = cache[static_cast<size_t>((h * max_pos + 1 + t) * (head_dim / 32) + b)];
        REQUIRE(want.d == d16);
        for (int e = 0; e < 32; ++e) REQUIRE(want.qs[e] == cuda::kv_q8_0_element(x[e], id));
      }
    }
  }
}

TEST_CASE("cuda math: the attention plan covers every key and head once, within the limits", "[cuda_math]") {
  for (int64_t head_dim : {1, 32, 64, 80, 128, 200, 256, 512}) {
    for (auto [n_heads, n_kv] :
         {std::pair<int64_t, int64_t>{4, 4}, {14, 2}, {28, 4}, {16, 1}, {9, 1}, {64, 8}, {40, 1}}) {
      for (auto [n_q, pos0] :
           {std::pair<int64_t, int64_t>{1, 0}, {1, 4095}, {1, 100000}, {7, 30}, {512, 0}, {4096, 0}}) {
        for (int sms : {1, 108, 132}) {
          const cuda::AttentionPlan p = cuda::plan_attention(n_q, n_heads, n_kv, head_dim, pos0, sms);
          INFO("head_dim " << head_dim << " heads " << n_heads << "/" << n_kv << " n_q " << n_q << " pos0 " << pos0);
          REQUIRE(32 * p.dims_per_lane >= head_dim);
          REQUIRE(p.heads_per_block >= 1);
          REQUIRE(p.heads_per_block <= p.max_heads);
          REQUIRE(cuda::attention_shared_bytes(p, head_dim) <= cuda::kAttentionMaxSharedBytes);
          REQUIRE(p.n_splits >= 1);
          REQUIRE(p.n_splits <= cuda::kAttentionMaxSplits);
          const int64_t group = n_heads / n_kv, max_ctx = pos0 + n_q;
          // Every head of every group in exactly one slice; no slice empty.
          for (int64_t kv : {int64_t{0}, n_kv - 1}) {
            int64_t next = kv * group;
            for (int64_t s = 0; s < p.n_slices; ++s) {
              int64_t h0;
              int nh;
              cuda::slice_heads(p, group, kv, s, &h0, &nh);
              REQUIRE(h0 == next);
              REQUIRE(nh >= 1);
              next += nh;
            }
            REQUIRE(next == (kv + 1) * group);
          }
          // The splits tile [0, max_ctx) in order; the last one is not empty.
          int64_t covered = 0;
          for (int64_t s = 0; s < p.n_splits; ++s) {
            int64_t j0, j1;
            cuda::split_keys(p, s, max_ctx, &j0, &j1);
            REQUIRE(j0 == covered);
            REQUIRE(j1 > j0);
            covered = j1;
          }
          REQUIRE(covered == max_ctx);
          REQUIRE(p.partials == n_q * n_heads * p.n_splits);
        }
      }
    }
  }
}

TEST_CASE("cuda math: attention replayed split by split and warp by warp matches the CPU", "[cuda_math]") {
  ThreadPool pool(1);
  const int64_t n_heads = 6, n_kv = 2, head_dim = 40, group = n_heads / n_kv;
  for (auto [n_q, pos0] : {std::pair<int64_t, int64_t>{1, 0}, {1, 300}, {3, 70}}) {
    INFO("n_q " << n_q << " pos0 " << pos0);
    const int64_t max_pos = pos0 + n_q + 3;
    auto q = random_floats(static_cast<size_t>(n_q * n_heads * head_dim), -1, 1, 41);
    auto k = random_floats(static_cast<size_t>(n_kv * max_pos * head_dim), -1, 1, 42);
    auto v = random_floats(k.size(), -1, 1, 43);
    std::vector<float> want(q.size());
    at_ref([&] {
      attention(view_of(q, {n_q, n_heads, head_dim}), view_of(k, {n_kv, max_pos, head_dim}),
                view_of(v, {n_kv, max_pos, head_dim}), pos0, view_of(want, {n_q, n_heads, head_dim}), pool);
    });
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    const cuda::AttentionPlan p = cuda::plan_attention(n_q, n_heads, n_kv, head_dim, pos0, 132);
    std::vector<float> pacc(static_cast<size_t>(p.partials * head_dim)), pml(static_cast<size_t>(2 * p.partials));
    // Kernel 1: every block (split, kv, slice, query); inside it, warp w takes keys j0 + w, j0 + w + 4, ...
    for (int64_t i = 0; i < n_q; ++i) {
      for (int64_t kv = 0; kv < n_kv; ++kv) {
        for (int64_t slice = 0; slice < p.n_slices; ++slice) {
          int64_t h0;
          int nh;
          cuda::slice_heads(p, group, kv, slice, &h0, &nh);
          for (int64_t split = 0; split < p.n_splits; ++split) {
            int64_t j0, j1;
            cuda::split_keys(p, split, pos0 + i + 1, &j0, &j1);
            for (int h = 0; h < nh; ++h) {
              float wm[cuda::kAttentionWarps], wl[cuda::kAttentionWarps];
              std::vector<float> wacc(static_cast<size_t>(cuda::kAttentionWarps * head_dim), 0.0f);
              for (int w = 0; w < cuda::kAttentionWarps; ++w) {
                wm[w] = -INFINITY, wl[w] = 0;
                for (int64_t j = j0 + w; j < j1; j += cuda::kAttentionWarps) {
                  float dot = 0;
                  for (int64_t d = 0; d < head_dim; ++d) {
                    dot += q[static_cast<size_t>((i * n_heads + h0 + h) * head_dim + d)] *
                           k[static_cast<size_t>((kv * max_pos + j) * head_dim + d)];
                  }
                  const cuda::OnlineStep step = cuda::online_step(wm[w], dot * scale);
                  wl[w] = wl[w] * step.correction + step.p;
                  for (int64_t d = 0; d < head_dim; ++d) {
                    float& a = wacc[static_cast<size_t>(w * head_dim + d)];
                    a = a * step.correction + step.p * v[static_cast<size_t>((kv * max_pos + j) * head_dim + d)];
                  }
                  wm[w] = step.m;
                }
              }
              float m_max = -INFINITY;
              for (float m : wm) m_max = std::fmax(m_max, m);
              const int64_t at = (i * n_heads + h0 + h) * p.n_splits + split;
              float l = 0;
              for (int64_t d = 0; d < head_dim; ++d) {
                float a = 0;
                for (int w = 0; w < cuda::kAttentionWarps; ++w) {
                  const float e = m_max == -INFINITY ? 0.0f : cuda::rescale_weight(wm[w], m_max);
                  a += wacc[static_cast<size_t>(w * head_dim + d)] * e;
                  if (d == 0) l += wl[w] * e;
                }
                pacc[static_cast<size_t>(at * head_dim + d)] = a;
              }
              pml[static_cast<size_t>(2 * at)] = m_max;
              pml[static_cast<size_t>(2 * at + 1)] = l;
            }
          }
        }
      }
    }
    // Kernel 2: per (query, head), the splits rescaled to the common max.
    std::vector<float> got(q.size());
    for (int64_t qh = 0; qh < n_q * n_heads; ++qh) {
      float m_max = -INFINITY, l = 0;
      for (int64_t s = 0; s < p.n_splits; ++s)
        m_max = std::fmax(m_max, pml[static_cast<size_t>(2 * (qh * p.n_splits + s))]);
      std::vector<float> weight(static_cast<size_t>(p.n_splits));
      for (int64_t s = 0; s < p.n_splits; ++s) {
        weight[static_cast<size_t>(s)] =
            cuda::rescale_weight(pml[static_cast<size_t>(2 * (qh * p.n_splits + s))], m_max);
        l += pml[static_cast<size_t>(2 * (qh * p.n_splits + s) + 1)] * weight[static_cast<size_t>(s)];
      }
      for (int64_t d = 0; d < head_dim; ++d) {
        float o = 0;
        for (int64_t s = 0; s < p.n_splits; ++s) {
          o += pacc[static_cast<size_t>((qh * p.n_splits + s) * head_dim + d)] * weight[static_cast<size_t>(s)];
        }
        got[static_cast<size_t>(qh * head_dim + d)] = o / l;
      }
    }
    if (pos0 + n_q > 2 * cuda::kAttentionMinChunk) REQUIRE(p.n_splits > 1);  // the split and the merge are exercised
    // f32 dots of 40 terms |q k| <= 1 and f32 exp: as the CPU's SIMD levels (3e-6 for outputs averaging |v| <= 1).
    require_close(got, want, 3e-6, 0);
  }
}

TEST_CASE("cuda math: the allocator's size classes", "[cuda_math]") {
  REQUIRE(cuda::allocation_size_class(0) == 512);
  REQUIRE(cuda::allocation_size_class(1) == 512);
  REQUIRE(cuda::allocation_size_class(513) == 1024);
  REQUIRE(cuda::allocation_size_class(cuda::kSmallClassLimit) == cuda::kSmallClassLimit);
  REQUIRE(cuda::allocation_size_class(cuda::kSmallClassLimit + 1) == cuda::kLargeClassStep);
  REQUIRE(cuda::allocation_size_class(5 * cuda::kLargeClassStep + 3) == 6 * cuda::kLargeClassStep);
  for (size_t b : {size_t{1}, size_t{700}, size_t{300000}, size_t{3} << 20, size_t{1} << 33}) {
    const size_t c = cuda::allocation_size_class(b);
    REQUIRE(c >= b);
    REQUIRE(c % 256 == 0);  // cudaMalloc's alignment holds for every block of a class
    REQUIRE(c - b <= std::max(b, cuda::kLargeClassStep));
  }
}
