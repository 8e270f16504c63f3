// The checked, threaded front end of the non-matmul kernels (kernels/ops.h).
#include "kernels/ops.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/quant_blocks.h"
#include "kernels/cpu/ops_table.h"
#include "kernels/op_checks.h"

namespace qilin {
namespace {

const cpu::OpsTable& kernels() { return cpu::ops_table(cpu::active_isa()); }

// Waking the pool costs a few microseconds, about what one thread needs for this
// many floats of a simple row op: smaller jobs run on the calling thread.
constexpr int64_t kMinFloatsPerTask = 16384;

int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, kMinFloatsPerTask / std::max<int64_t>(cols, 1)); }

using detail::check_contiguous;
using detail::check_same_shape;
using detail::describe;
void check_f32(const char* op, const char* name, const TensorView& t) { detail::check_f32(Device::cpu, op, name, t); }
void check_channel_vector(const char* op, const char* name, const TensorView& t, const char* x_name,
                          const TensorView& x) {
  detail::check_channel_vector(Device::cpu, op, name, t, x_name, x);
}

// Calls fn(row) for every row of x, split over the pool.
template <class F>
void for_rows(const TensorView& x, ThreadPool& pool, F&& fn) {
  pool.parallel_for(x.rows(), row_grain(x.cols()), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) fn(r);
  });
}

using BinaryKernel = void (*)(const float*, const float*, float*, int64_t) noexcept;
using UnaryKernel = void (*)(const float*, float*, int64_t) noexcept;

void binary(const char* op, BinaryKernel kernel, const TensorView& a, const TensorView& b, const TensorView& y,
            ThreadPool& pool) {
  check_f32(op, "a", a);
  check_f32(op, "b", b);
  check_f32(op, "y", y);
  check_same_shape(op, "a", a, "b", b);
  check_same_shape(op, "a", a, "y", y);
  const int64_t n = a.cols();
  for_rows(a, pool, [&](int64_t r) { kernel(a.row<float>(r), b.row<float>(r), y.row<float>(r), n); });
}

void unary(const char* op, UnaryKernel kernel, const TensorView& x, const TensorView& y, ThreadPool& pool) {
  check_f32(op, "x", x);
  check_f32(op, "y", y);
  check_same_shape(op, "x", x, "y", y);
  const int64_t n = x.cols();
  for_rows(x, pool, [&](int64_t r) { kernel(x.row<float>(r), y.row<float>(r), n); });
}

}  // namespace

void add(const TensorView& a, const TensorView& b, const TensorView& y, ThreadPool& pool) {
  binary("add", kernels().add, a, b, y, pool);
}
void mul(const TensorView& a, const TensorView& b, const TensorView& y, ThreadPool& pool) {
  binary("mul", kernels().mul, a, b, y, pool);
}
void add_inplace(const TensorView& y, const TensorView& x, ThreadPool& pool) {
  binary("add_inplace", kernels().add, y, x, y, pool);
}

void scale(const TensorView& x, float s, const TensorView& y, ThreadPool& pool) {
  check_f32("scale", "x", x);
  check_f32("scale", "y", y);
  check_same_shape("scale", "x", x, "y", y);
  const auto kernel = kernels().scale;
  const int64_t n = x.cols();
  for_rows(x, pool, [&](int64_t r) { kernel(x.row<float>(r), s, y.row<float>(r), n); });
}

void add_bias(const TensorView& y, const TensorView& bias, ThreadPool& pool) {
  check_f32("add_bias", "y", y);
  check_channel_vector("add_bias", "bias", bias, "y", y);
  const auto kernel = kernels().add;
  const int64_t n = y.cols();
  const float* b = bias.data_as<const float>();
  for_rows(y, pool, [&](int64_t r) { kernel(y.row<float>(r), b, y.row<float>(r), n); });
}

void silu(const TensorView& x, const TensorView& y, ThreadPool& pool) { unary("silu", kernels().silu, x, y, pool); }
void gelu_tanh(const TensorView& x, const TensorView& y, ThreadPool& pool) {
  unary("gelu_tanh", kernels().gelu_tanh, x, y, pool);
}
void gelu_erf(const TensorView& x, const TensorView& y, ThreadPool& pool) {
  unary("gelu_erf", kernels().gelu_erf, x, y, pool);
}

void swiglu(const TensorView& gate, const TensorView& up, const TensorView& y, ThreadPool& pool) {
  binary("swiglu", kernels().swiglu, gate, up, y, pool);
}

void swiglu_fused(const TensorView& gate_up, const TensorView& y, ThreadPool& pool) {
  const char* op = "swiglu_fused";
  check_f32(op, "gate_up", gate_up);
  check_f32(op, "y", y);
  QILIN_CHECK(gate_up.rows() == y.rows() && gate_up.cols() == 2 * y.cols(), op,
              "gate_up is {} but y is {}: expected gate_up [.., 2F] and y [.., F] with the same rows",
              gate_up.shape().str(), y.shape().str());
  const auto kernel = kernels().swiglu;
  const int64_t n = y.cols();
  for_rows(y, pool, [&](int64_t r) {
    const float* g = gate_up.row<float>(r);
    kernel(g, g + n, y.row<float>(r), n);
  });
}

void rmsnorm(const TensorView& x, const TensorView& w, float eps, const TensorView& y, ThreadPool& pool) {
  check_f32("rmsnorm", "x", x);
  check_f32("rmsnorm", "y", y);
  check_same_shape("rmsnorm", "x", x, "y", y);
  check_channel_vector("rmsnorm", "w", w, "x", x);
  QILIN_CHECK(eps >= 0 && x.cols() > 0, "rmsnorm", "x is {} with eps {}: need a non-empty row and eps >= 0",
              x.shape().str(), eps);
  const auto kernel = kernels().rmsnorm;
  const float* wp = w.data_as<const float>();
  for_rows(x, pool, [&](int64_t r) { kernel(x.row<float>(r), wp, eps, y.row<float>(r), x.cols()); });
}

void layernorm(const TensorView& x, const TensorView& w, const TensorView& b, float eps, const TensorView& y,
               ThreadPool& pool) {
  check_f32("layernorm", "x", x);
  check_f32("layernorm", "y", y);
  check_same_shape("layernorm", "x", x, "y", y);
  check_channel_vector("layernorm", "w", w, "x", x);
  const bool has_bias = b.data() != nullptr;
  if (has_bias) check_channel_vector("layernorm", "b", b, "x", x);
  QILIN_CHECK(eps >= 0 && x.cols() > 0, "layernorm", "x is {} with eps {}: need a non-empty row and eps >= 0",
              x.shape().str(), eps);
  const auto kernel = kernels().layernorm;
  const float* wp = w.data_as<const float>();
  const float* bp = has_bias ? b.data_as<const float>() : nullptr;
  for_rows(x, pool, [&](int64_t r) { kernel(x.row<float>(r), wp, bp, eps, y.row<float>(r), x.cols()); });
}

void softmax(const TensorView& x, const TensorView& y, ThreadPool& pool) {
  QILIN_CHECK(x.cols() > 0, "softmax", "x is {}: rows must not be empty", x.shape().str());
  unary("softmax", kernels().softmax, x, y, pool);
}

// ---- RoPE ---------------------------------------------------------------------------

RopeCache::RopeCache(int64_t rot_dim, int64_t max_pos, double theta, double freq_scale) {
  QILIN_CHECK(rot_dim > 0 && rot_dim % 2 == 0, "rope", "rot_dim {} must be even and positive", rot_dim);
  QILIN_CHECK(theta > 0, "rope", "theta {} must be positive", theta);
  std::vector<double> inv_freq(static_cast<size_t>(rot_dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    inv_freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(rot_dim));
  }
  rot_dim_ = rot_dim;
  max_pos_ = max_pos;
  fill(inv_freq, freq_scale);
}

RopeCache::RopeCache(std::span<const double> inv_freq, int64_t max_pos, double freq_scale) {
  QILIN_CHECK(!inv_freq.empty(), "rope", "no inverse frequencies given");
  rot_dim_ = static_cast<int64_t>(inv_freq.size()) * 2;
  max_pos_ = max_pos;
  fill(inv_freq, freq_scale);
}

void RopeCache::fill(std::span<const double> inv_freq, double freq_scale) {
  QILIN_CHECK(max_pos_ > 0, "rope", "max_pos {} must be positive", max_pos_);
  table_ = AlignedBuffer(static_cast<size_t>(max_pos_ * rot_dim_) * sizeof(float));
  const int64_t half = rot_dim_ / 2;
  for (int64_t pos = 0; pos < max_pos_; ++pos) {
    float* c = table() + pos * rot_dim_;
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(pos) * freq_scale * inv_freq[static_cast<size_t>(i)];
      c[i] = static_cast<float>(std::cos(angle));
      c[half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

void rope(const TensorView& x, std::span<const int32_t> positions, RopeLayout layout, const RopeCache& cache,
          ThreadPool& pool) {
  check_f32("rope", "x", x);
  check_contiguous("rope", "x", x);
  QILIN_CHECK(x.ndim() == 3, "rope", "x is {} but must be [tokens, heads, head_dim]", x.shape().str());
  const int64_t n_tokens = x.dim(0), n_heads = x.dim(1), head_dim = x.dim(2);
  QILIN_CHECK(static_cast<int64_t>(positions.size()) == n_tokens, "rope", "x is {} but {} positions were given",
              x.shape().str(), positions.size());
  QILIN_CHECK(cache.rot_dim() <= head_dim, "rope", "x is {} but the cache rotates {} dimensions per head",
              x.shape().str(), cache.rot_dim());
  for (size_t t = 0; t < positions.size(); ++t) {
    QILIN_CHECK(positions[t] >= 0 && positions[t] < cache.max_pos(), "rope",
                "position {} of token {} is outside the cache's [0, {})", positions[t], t, cache.max_pos());
  }
  const auto kernel = layout == RopeLayout::neox ? kernels().rope_neox : kernels().rope_interleaved;
  const int64_t rot_dim = cache.rot_dim();
  float* base = x.data_as<float>();
  pool.parallel_for(n_tokens, row_grain(n_heads * rot_dim), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t pos = positions[static_cast<size_t>(t)];
      kernel(base + t * n_heads * head_dim, n_heads, head_dim, rot_dim, cache.cos(pos), cache.sin(pos));
    }
  });
}

// ---- embedding ----------------------------------------------------------------------

void embedding(const TensorView& table, std::span<const int32_t> ids, const TensorView& out, ThreadPool& pool) {
  QILIN_CHECK(table.device() == Device::cpu, "embedding", "table is on {}, but this op runs on the CPU",
              name_of(table.device()));
  QILIN_CHECK(table.ndim() == 2, "embedding", "table is {} but must be [vocab, dim]", table.shape().str());
  check_f32("embedding", "out", out);
  const int64_t vocab = table.dim(0), dim = table.dim(1);
  QILIN_CHECK(out.ndim() == 2 && out.dim(0) == static_cast<int64_t>(ids.size()) && out.dim(1) == dim, "embedding",
              "table is {} {} and {} ids were given, but out is {} (expected {}x{})", table.shape().str(),
              name_of(table.dtype()), ids.size(), out.shape().str(), ids.size(), dim);
  for (size_t t = 0; t < ids.size(); ++t) {
    QILIN_CHECK(ids[t] >= 0 && ids[t] < vocab, "embedding", "token id {} (at {}) is outside the vocabulary of {}",
                ids[t], t, vocab);
  }
  const cpu::OpsTable& k = kernels();
  const DType dtype = table.dtype();
  const ToFloatRowFn to_float = traits(dtype).to_float;
  pool.parallel_for(static_cast<int64_t>(ids.size()), row_grain(dim), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const void* src = table.row<const char>(ids[static_cast<size_t>(t)]);
      float* dst = out.row<float>(t);
      switch (dtype) {
        case DType::f32:
          std::memcpy(dst, src, static_cast<size_t>(dim) * sizeof(float));
          break;
        case DType::f16:
          k.f16_row_to_f32(static_cast<const uint16_t*>(src), dst, dim);
          break;
        case DType::bf16:
          k.bf16_row_to_f32(static_cast<const uint16_t*>(src), dst, dim);
          break;
        default:
          to_float(src, dst, dim);
          break;
      }
    }
  });
}

// ---- KV cache ------------------------------------------------------------------------

void kv_store(const TensorView& src, const TensorView& dst, int64_t pos0, ThreadPool& pool) {
  detail::check_kv_store(Device::cpu, src, dst, pos0);
  const DType type = dst.dtype();
  const int64_t n = src.dim(0), heads = src.dim(1), head_dim = src.dim(2), max_pos = dst.dim(1);
  const cpu::OpsTable& k = kernels();
  const float* from = src.data_as<const float>();
  pool.parallel_for(n * heads, row_grain(head_dim), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {  // r = t * heads + h: src in order
      const float* x = from + r * head_dim;
      void* to = dst.row(r % heads * max_pos + pos0 + r / heads);
      switch (type) {
        case DType::f32:
          std::memcpy(to, x, static_cast<size_t>(head_dim) * sizeof(float));
          break;
        case DType::f16:
          k.f32_row_to_f16(x, static_cast<uint16_t*>(to), head_dim);
          break;
        default:
          k.f32_row_to_q8_0(x, static_cast<BlockQ8_0*>(to), head_dim);
          break;
      }
    }
  });
}

// ---- attention ----------------------------------------------------------------------

namespace {

// From this many queries on, attention runs through the blocked kernels
// (OpsTable::attention_block_*): each K/V chunk is read and converted once per
// block of queries instead of once per query; measured faster from 2 queries on
// (SmolLM2 and Qwen2.5 shapes, f32 and f16 caches). A single query (decode) keeps
// the per-token kernels, whose threads split the heads rather than KV groups.
constexpr int64_t kBlockedMinQueries = 2;
// Query rows (tokens x heads of one KV head) per block: enough to amortize each
// chunk's loads and conversion over many rows (measured: 96 beats 32, 48 and 64
// by 5-10% at 512 tokens), few enough that a prompt makes many blocks to share out.
constexpr int64_t kBlockedTargetRows = 96;

// Cache elements per KV unit: 32 for q8_0 blocks, 1 for f32/f16 (offsets below count elements).
template <class KV>
constexpr int64_t kv_elements_per_unit = std::is_same_v<KV, BlockQ8_0> ? kQK : 1;

// The blocked kernel of the cache type, exact or with bf16 compute.
template <class KV>
auto blocked_kernel(const cpu::OpsTable& kt, bool bf16) {
  if constexpr (std::is_same_v<KV, float>) {
    return bf16 ? kt.attention_block_bf16_f32 : kt.attention_block_f32;
  } else if constexpr (std::is_same_v<KV, uint16_t>) {
    return bf16 ? kt.attention_block_bf16_f16 : kt.attention_block_f16;
  } else {
    return bf16 ? kt.attention_block_bf16_q8_0 : kt.attention_block_q8_0;
  }
}

// Prefill: work items are (query block, KV head, slice of its query heads), dealt
// out dynamically from the most expensive (the last block: the most keys) down, so
// the causal triangle balances over the threads whatever the load of the machine.
template <class KV>
void attention_blocked(const cpu::OpsTable& kt, const float* q, const KV* k, const KV* v, float* out, int64_t n_q,
                       int64_t n_heads, int64_t n_kv_heads, int64_t max_pos, int64_t head_dim, int64_t pos0,
                       float scale, bool bf16, bool parallel, ThreadPool& pool) {
  const int64_t group = n_heads / n_kv_heads;
  const int64_t max_rows = cpu::attention_block_max_rows(head_dim);
  const int64_t n_slices = (group + max_rows - 1) / max_rows;  // head slices of a group (more than max_rows heads)
  const int64_t slice_heads = (group + n_slices - 1) / n_slices;
  const int64_t units = n_kv_heads * n_slices;
  // The bf16 kernels convert each K/V chunk for the block: the most rows amortize it best.
  const int64_t target_rows = bf16 ? max_rows : std::min(kBlockedTargetRows, max_rows);
  const int64_t target_tokens = std::max<int64_t>(1, target_rows / slice_heads);
  int64_t n_blocks = (n_q + target_tokens - 1) / target_tokens;
  if (parallel) {  // at least two items per thread where the prompt allows it
    n_blocks = std::max(n_blocks, std::min(n_q, (2 * pool.size() + units - 1) / units));
  }
  const int64_t block_tokens = (n_q + n_blocks - 1) / n_blocks;
  n_blocks = (n_q + block_tokens - 1) / block_tokens;
  const int64_t items = n_blocks * units;
  const auto block_kernel = blocked_kernel<KV>(kt, bf16);
  auto run_item = [&](int64_t item) {
    const int64_t b = n_blocks - 1 - item / units, unit = item % units;
    const int64_t kv = unit / n_slices, h0 = kv * group + unit % n_slices * slice_heads;
    const int64_t t0 = b * block_tokens, nt = std::min(block_tokens, n_q - t0);
    const int64_t nh = std::min(slice_heads, (kv + 1) * group - h0);
    const int64_t q_offset = (t0 * n_heads + h0) * head_dim, kv_offset = kv * max_pos * head_dim;
    const KV* kh = k + kv_offset / kv_elements_per_unit<KV>;
    const KV* vh = v + kv_offset / kv_elements_per_unit<KV>;
    block_kernel(q + q_offset, nt, nh, n_heads * head_dim, kh, vh, pos0 + t0, head_dim, scale, out + q_offset);
  };
  if (!parallel) {
    for (int64_t item = 0; item < items; ++item) run_item(item);
    return;
  }
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    for (int64_t item = next.fetch_add(1, std::memory_order_relaxed); item < items;
         item = next.fetch_add(1, std::memory_order_relaxed)) {
      run_item(item);
    }
  });
}

}  // namespace

void attention(const TensorView& q, const TensorView& k, const TensorView& v, int64_t pos0, const TensorView& out,
               ThreadPool& pool, std::optional<float> scale, bool allow_bf16_compute) {
  const detail::AttentionDims d =
      detail::check_attention(Device::cpu, q, k, v, pos0, out, scale, cpu::kAttentionMaxHeadDim);
  const int64_t n_q = d.n_q, n_heads = d.n_heads, head_dim = d.head_dim, n_kv_heads = d.n_kv_heads, max_pos = d.max_pos;
  const DType kv_type = d.kv_type;
  const float s = d.scale;
  if (n_q == 0) return;

  const cpu::OpsTable& kt = kernels();
  const int64_t group = n_heads / n_kv_heads;
  const size_t head_bytes = static_cast<size_t>(max_pos) * row_bytes(kv_type, head_dim);  // one KV head's rows
  const auto* kb = k.data_as<const char>();
  const auto* vb = v.data_as<const char>();
  const float* qb = q.data_as<const float>();
  float* ob = out.data_as<float>();

  // Heads [h0, h1) of token t, batched by KV head so each K/V row is read once per group.
  auto run_heads = [&](int64_t t, int64_t h0, int64_t h1) {
    const int64_t n_ctx = pos0 + t + 1;
    for (int64_t h = h0; h < h1;) {
      const int64_t g = h / group;
      const int64_t h_end = std::min({h1, (g + 1) * group, h + cpu::kAttentionMaxGroup});
      const size_t kv_offset = static_cast<size_t>(g) * head_bytes;
      const float* qh = qb + (t * n_heads + h) * head_dim;
      float* oh = ob + (t * n_heads + h) * head_dim;
      if (kv_type == DType::f32) {
        kt.attention_f32(qh, h_end - h, reinterpret_cast<const float*>(kb + kv_offset),
                         reinterpret_cast<const float*>(vb + kv_offset), n_ctx, head_dim, s, oh);
      } else if (kv_type == DType::f16) {
        kt.attention_f16(qh, h_end - h, reinterpret_cast<const uint16_t*>(kb + kv_offset),
                         reinterpret_cast<const uint16_t*>(vb + kv_offset), n_ctx, head_dim, s, oh);
      } else {
        kt.attention_q8_0(qh, h_end - h, reinterpret_cast<const BlockQ8_0*>(kb + kv_offset),
                          reinterpret_cast<const BlockQ8_0*>(vb + kv_offset), n_ctx, head_dim, s, oh);
      }
      h = h_end;
    }
  };

  // Multiply-adds of the whole call (QK and PV), to keep tiny calls on one thread.
  const double work =
      2.0 * static_cast<double>(n_heads * head_dim) *
      (static_cast<double>(n_q) * static_cast<double>(pos0) + 0.5 * static_cast<double>(n_q * (n_q + 1)));
  const bool parallel = pool.size() > 1 && work >= 65536.0;
  if (n_q >= kBlockedMinQueries) {
    // The bf16 kernels multiply 32 elements of head_dim per tile product.
    const bool bf16 = allow_bf16_compute && head_dim % 32 == 0;
    if (kv_type == DType::f32) {
      attention_blocked(kt, qb, k.data_as<const float>(), v.data_as<const float>(), ob, n_q, n_heads, n_kv_heads,
                        max_pos, head_dim, pos0, s, bf16, parallel, pool);
    } else if (kv_type == DType::f16) {
      attention_blocked(kt, qb, k.data_as<const uint16_t>(), v.data_as<const uint16_t>(), ob, n_q, n_heads, n_kv_heads,
                        max_pos, head_dim, pos0, s, bf16, parallel, pool);
    } else {
      attention_blocked(kt, qb, k.data_as<const BlockQ8_0>(), v.data_as<const BlockQ8_0>(), ob, n_q, n_heads,
                        n_kv_heads, max_pos, head_dim, pos0, s, bf16, parallel, pool);
    }
  } else if (!parallel) {
    for (int64_t t = 0; t < n_q; ++t) run_heads(t, 0, n_heads);
  } else {
    // Decode (few queries): split the (token, head) pairs into contiguous ranges.
    pool.parallel_for(n_q * n_heads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t u = begin; u < end;) {
        const int64_t t = u / n_heads, h0 = u % n_heads;
        const int64_t h1 = std::min(n_heads, h0 + (end - u));
        run_heads(t, h0, h1);
        u += h1 - h0;
      }
    });
  }
}

}  // namespace qilin
