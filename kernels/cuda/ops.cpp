// The checked front end of the CUDA ops (kernels/cuda/ops.h): the checks the CPU ops
// use (kernels/op_checks.h) with Device::cuda, then one launcher call (launch.h).
#include "kernels/cuda/ops.h"

#include <mutex>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"
#include "kernels/op_checks.h"

namespace qilin::cuda {
namespace {

using detail::check_contiguous;
using detail::check_same_shape;
using detail::describe;
void check_on_gpu(const char* op, const char* name, const TensorView& t) {
  detail::check_on(Device::cuda, op, name, t);
}
void check_f32(const char* op, const char* name, const TensorView& t) { detail::check_f32(Device::cuda, op, name, t); }
void check_channel_vector(const char* op, const char* name, const TensorView& t, const char* x_name,
                          const TensorView& x) {
  detail::check_channel_vector(Device::cuda, op, name, t, x_name, x);
}

// Rows of f32 views: TensorView::row() semantics (evenly spaced rows, each contiguous).
int64_t ld(const TensorView& t) { return t.row_stride_bytes() / static_cast<int64_t>(sizeof(float)); }

void binary(const char* op, launch::Elementwise kind, const TensorView& a, const TensorView& b, const TensorView& y,
            const Stream& stream) {
  check_f32(op, "a", a);
  check_f32(op, "b", b);
  check_f32(op, "y", y);
  check_same_shape(op, "a", a, "b", b);
  check_same_shape(op, "a", a, "y", y);
  launch::elementwise(kind, a.data_as<const float>(), ld(a), b.data_as<const float>(), ld(b), 0.0f, y.data_as<float>(),
                      ld(y), a.rows(), a.cols(), stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("elementwise_kernel");
}

void unary(const char* op, launch::Elementwise kind, const TensorView& x, float s, const TensorView& y,
           const Stream& stream) {
  check_f32(op, "x", x);
  check_f32(op, "y", y);
  check_same_shape(op, "x", x, "y", y);
  launch::elementwise(kind, x.data_as<const float>(), ld(x), nullptr, 0, s, y.data_as<float>(), ld(y), x.rows(),
                      x.cols(), stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("elementwise_kernel");
}

// Host indices copied into a temporary device buffer on `stream` (pageable memory is
// staged before the copy returns, so the span may die right after).
DeviceBuffer stage_indices(std::span<const int32_t> values, const Stream& stream) {
  DeviceBuffer staged(values.size_bytes() == 0 ? 4 : values.size_bytes(), stream.device());
  copy_to_device(staged.data(), values.data(), values.size_bytes(), stream);
  return staged;
}

void check_indices(const char* op, const char* what, const TensorView& t, int64_t n) {
  check_on_gpu(op, what, t);
  QILIN_CHECK(t.dtype() == DType::i32 && t.ndim() == 1 && t.dim(0) == n && t.is_contiguous(), op,
              "{} are {} but must be {} contiguous i32", what, describe(t), n);
}

// Multiprocessors of `device`, asked once per device.
int sm_count(int device) {
  static std::mutex mutex;
  static std::vector<int> counts;
  std::lock_guard lock(mutex);
  if (device >= static_cast<int>(counts.size())) counts.resize(static_cast<size_t>(device) + 1, 0);
  int& c = counts[static_cast<size_t>(device)];
  if (c == 0) QILIN_CUDA_CHECK(cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, device));
  return c;
}

}  // namespace

void add(const TensorView& a, const TensorView& b, const TensorView& y, const Stream& stream) {
  binary("add", launch::Elementwise::add, a, b, y, stream);
}
void mul(const TensorView& a, const TensorView& b, const TensorView& y, const Stream& stream) {
  binary("mul", launch::Elementwise::mul, a, b, y, stream);
}
void add_inplace(const TensorView& y, const TensorView& x, const Stream& stream) {
  binary("add_inplace", launch::Elementwise::add, y, x, y, stream);
}
void swiglu(const TensorView& gate, const TensorView& up, const TensorView& y, const Stream& stream) {
  binary("swiglu", launch::Elementwise::swiglu, gate, up, y, stream);
}
void scale(const TensorView& x, float s, const TensorView& y, const Stream& stream) {
  unary("scale", launch::Elementwise::scale, x, s, y, stream);
}
void silu(const TensorView& x, const TensorView& y, const Stream& stream) {
  unary("silu", launch::Elementwise::silu, x, 0.0f, y, stream);
}
void gelu_tanh(const TensorView& x, const TensorView& y, const Stream& stream) {
  unary("gelu_tanh", launch::Elementwise::gelu_tanh, x, 0.0f, y, stream);
}
void gelu_erf(const TensorView& x, const TensorView& y, const Stream& stream) {
  unary("gelu_erf", launch::Elementwise::gelu_erf, x, 0.0f, y, stream);
}

void add_bias(const TensorView& y, const TensorView& bias, const Stream& stream) {
  check_f32("add_bias", "y", y);
  check_channel_vector("add_bias", "bias", bias, "y", y);
  // bias as the second operand with row stride 0: every row reads the same vector.
  launch::elementwise(launch::Elementwise::add, y.data_as<const float>(), ld(y), bias.data_as<const float>(), 0, 0.0f,
                      y.data_as<float>(), ld(y), y.rows(), y.cols(), stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("elementwise_kernel");
}

void swiglu_fused(const TensorView& gate_up, const TensorView& y, const Stream& stream) {
  const char* op = "swiglu_fused";
  check_f32(op, "gate_up", gate_up);
  check_f32(op, "y", y);
  QILIN_CHECK(gate_up.rows() == y.rows() && gate_up.cols() == 2 * y.cols(), op,
              "gate_up is {} but y is {}: expected gate_up [.., 2F] and y [.., F] with the same rows",
              gate_up.shape().str(), y.shape().str());
  const float* g = gate_up.data_as<const float>();
  launch::elementwise(launch::Elementwise::swiglu, g, ld(gate_up), g + y.cols(), ld(gate_up), 0.0f, y.data_as<float>(),
                      ld(y), y.rows(), y.cols(), stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("elementwise_kernel");
}

void rmsnorm(const TensorView& x, const TensorView& w, float eps, const TensorView& y, const Stream& stream) {
  check_f32("rmsnorm", "x", x);
  check_f32("rmsnorm", "y", y);
  check_same_shape("rmsnorm", "x", x, "y", y);
  check_channel_vector("rmsnorm", "w", w, "x", x);
  QILIN_CHECK(eps >= 0 && x.cols() > 0, "rmsnorm", "x is {} with eps {}: need a non-empty row and eps >= 0",
              x.shape().str(), eps);
  launch::rmsnorm(x.data_as<const float>(), ld(x), w.data_as<const float>(), eps, y.data_as<float>(), ld(y), x.rows(),
                  x.cols(), stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("rmsnorm_kernel");
}

void layernorm(const TensorView& x, const TensorView& w, const TensorView& b, float eps, const TensorView& y,
               const Stream& stream) {
  check_f32("layernorm", "x", x);
  check_f32("layernorm", "y", y);
  check_same_shape("layernorm", "x", x, "y", y);
  check_channel_vector("layernorm", "w", w, "x", x);
  const bool has_bias = b.data() != nullptr;
  if (has_bias) check_channel_vector("layernorm", "b", b, "x", x);
  QILIN_CHECK(eps >= 0 && x.cols() > 0, "layernorm", "x is {} with eps {}: need a non-empty row and eps >= 0",
              x.shape().str(), eps);
  launch::layernorm(x.data_as<const float>(), ld(x), w.data_as<const float>(),
                    has_bias ? b.data_as<const float>() : nullptr, eps, y.data_as<float>(), ld(y), x.rows(), x.cols(),
                    stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("layernorm_kernel");
}

void softmax(const TensorView& x, const TensorView& y, const Stream& stream) {
  QILIN_CHECK(x.cols() > 0, "softmax", "x is {}: rows must not be empty", x.shape().str());
  check_f32("softmax", "x", x);
  check_f32("softmax", "y", y);
  check_same_shape("softmax", "x", x, "y", y);
  launch::softmax(x.data_as<const float>(), ld(x), y.data_as<float>(), ld(y), x.rows(), x.cols(), stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("softmax_kernel");
}

// ---- RoPE ---------------------------------------------------------------------------

RopeTable::RopeTable(const RopeCache& cache, const Stream& stream)
    : rot_dim_(cache.rot_dim()), max_pos_(cache.max_pos()) {
  const size_t bytes = static_cast<size_t>(max_pos_ * rot_dim_) * sizeof(float);
  table_ = DeviceBuffer(bytes, stream.device());
  copy_to_device(table_.data(), cache.cos(0), bytes, stream);  // the cache's rows are contiguous from cos(0)
}

namespace {

void check_rope(const TensorView& x, int64_t n_positions, const RopeTable& table) {
  check_f32("rope", "x", x);
  check_contiguous("rope", "x", x);
  QILIN_CHECK(x.ndim() == 3, "rope", "x is {} but must be [tokens, heads, head_dim]", x.shape().str());
  QILIN_CHECK(n_positions == x.dim(0), "rope", "x is {} but {} positions were given", x.shape().str(), n_positions);
  QILIN_CHECK(table.rot_dim() <= x.dim(2), "rope", "x is {} but the cache rotates {} dimensions per head",
              x.shape().str(), table.rot_dim());
}

void run_rope(const TensorView& x, const int32_t* positions, RopeLayout layout, const RopeTable& table,
              const Stream& stream) {
  launch::rope(x.data_as<float>(), x.dim(0), x.dim(1), x.dim(2), table.rot_dim(), positions, table.data(),
               table.max_pos(), layout == RopeLayout::neox, stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("rope_kernel");
}

}  // namespace

void rope(const TensorView& x, std::span<const int32_t> positions, RopeLayout layout, const RopeTable& table,
          const Stream& stream) {
  check_rope(x, static_cast<int64_t>(positions.size()), table);
  for (size_t t = 0; t < positions.size(); ++t) {
    QILIN_CHECK(positions[t] >= 0 && positions[t] < table.max_pos(), "rope",
                "position {} of token {} is outside the cache's [0, {})", positions[t], t, table.max_pos());
  }
  if (positions.empty()) return;
  const DeviceBuffer staged = stage_indices(positions, stream);
  run_rope(x, staged.data_as<const int32_t>(), layout, table, stream);
}

void rope(const TensorView& x, const TensorView& positions, RopeLayout layout, const RopeTable& table,
          const Stream& stream) {
  check_rope(x, positions.numel(), table);
  check_indices("rope", "positions", positions, x.dim(0));
  run_rope(x, positions.data_as<const int32_t>(), layout, table, stream);
}

// ---- embedding ----------------------------------------------------------------------

namespace {

void check_embedding(const TensorView& table, int64_t n_ids, const TensorView& out) {
  check_on_gpu("embedding", "table", table);
  QILIN_CHECK(table.ndim() == 2, "embedding", "table is {} but must be [vocab, dim]", table.shape().str());
  const DType t = table.dtype();
  QILIN_CHECK(t != DType::i8 && t != DType::i32, "embedding",
              "table is {}: rows must be a float type or a block format", describe(table));
  check_f32("embedding", "out", out);
  QILIN_CHECK(out.ndim() == 2 && out.dim(0) == n_ids && out.dim(1) == table.dim(1), "embedding",
              "table is {} {} and {} ids were given, but out is {} (expected {}x{})", table.shape().str(),
              name_of(table.dtype()), n_ids, out.shape().str(), n_ids, table.dim(1));
}

void run_embedding(const TensorView& table, const int32_t* ids, int64_t n, const TensorView& out,
                   const Stream& stream) {
  launch::embedding(table.dtype(), table.data(), table.row_stride_bytes(), table.dim(0), table.dim(1), ids, n,
                    out.data_as<float>(), ld(out), stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("embedding_kernel");
}

}  // namespace

void embedding(const TensorView& table, std::span<const int32_t> ids, const TensorView& out, const Stream& stream) {
  check_embedding(table, static_cast<int64_t>(ids.size()), out);
  for (size_t t = 0; t < ids.size(); ++t) {
    QILIN_CHECK(ids[t] >= 0 && ids[t] < table.dim(0), "embedding",
                "token id {} (at {}) is outside the vocabulary of {}", ids[t], t, table.dim(0));
  }
  if (ids.empty()) return;
  const DeviceBuffer staged = stage_indices(ids, stream);
  run_embedding(table, staged.data_as<const int32_t>(), static_cast<int64_t>(ids.size()), out, stream);
}

void embedding(const TensorView& table, const TensorView& ids, const TensorView& out, const Stream& stream) {
  check_embedding(table, ids.numel(), out);
  check_indices("embedding", "ids", ids, ids.numel());
  run_embedding(table, ids.data_as<const int32_t>(), ids.numel(), out, stream);
}

// ---- KV cache ------------------------------------------------------------------------

void kv_store(const TensorView& src, const TensorView& dst, int64_t pos0, const Stream& stream) {
  detail::check_kv_store(Device::cuda, src, dst, pos0);
  const DType type = dst.dtype();
  const int64_t n = src.dim(0), max_pos = dst.dim(1);
  launch::kv_store(type, src.data_as<const float>(), n, src.dim(1), src.dim(2), dst.data(), max_pos, pos0,
                   stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("kv_store_kernel");
}

// ---- attention ----------------------------------------------------------------------

void attention(const TensorView& q, const TensorView& k, const TensorView& v, int64_t pos0, const TensorView& out,
               const Stream& stream, std::optional<float> scale) {
  const char* op = "attention";
  const detail::AttentionDims d =
      detail::check_attention(Device::cuda, q, k, v, pos0, out, scale, kAttentionMaxHeadDim);
  const int64_t n_q = d.n_q, n_heads = d.n_heads, head_dim = d.head_dim, n_kv_heads = d.n_kv_heads, max_pos = d.max_pos;
  const DType kv_type = d.kv_type;
  const float s = d.scale;
  // Grid limits: queries are the grid's z, (KV head, head slice) pairs its y (at most n_heads of them).
  QILIN_CHECK(n_q <= 65535 && n_heads <= 65535, op, "q is {}: at most 65535 queries and 65535 heads per call",
              q.shape().str());
  if (n_q == 0) return;

  launch::AttentionArgs a;
  a.q = q.data_as<const float>();
  a.out = out.data_as<float>();
  a.k = k.data();
  a.v = v.data();
  a.kv_type = kv_type;
  a.n_q = n_q;
  a.n_heads = n_heads;
  a.n_kv_heads = n_kv_heads;
  a.max_pos = max_pos;
  a.head_dim = head_dim;
  a.pos0 = pos0;
  a.scale = s;
  a.plan = plan_attention(n_q, n_heads, n_kv_heads, head_dim, pos0, sm_count(stream.device()));
  QILIN_CHECK(attention_shared_bytes(a.plan, head_dim) <= kAttentionMaxSharedBytes, op,
              "q is {}: head_dim {} needs {} bytes of shared memory per block", q.shape().str(), head_dim,
              attention_shared_bytes(a.plan, head_dim));
  const size_t acc_floats = static_cast<size_t>(a.plan.partials * head_dim);
  const DeviceBuffer partials((acc_floats + 2 * static_cast<size_t>(a.plan.partials)) * sizeof(float), stream.device());
  a.partial_acc = partials.data_as<float>();
  a.partial_ml = a.partial_acc + acc_floats;
  launch::attention(a, stream.handle());
  QILIN_CUDA_CHECK_LAUNCH("attention_split_kernel / attention_combine_kernel");
}

}  // namespace qilin::cuda
