#include "kernels/op_checks.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace qilin::detail {
namespace {

const char* runs_on(Device device) { return device == Device::cuda ? "GPU" : "CPU"; }

}  // namespace

std::string describe(const TensorView& t) { return fmt::format("{} {}", t.shape().str(), name_of(t.dtype())); }

void check_on(Device device, const char* op, const char* name, const TensorView& t) {
  QILIN_CHECK(t.device() == device, op, "{} is on {}, but this op runs on the {}", name, name_of(t.device()),
              runs_on(device));
  QILIN_CHECK(t.data() != nullptr || t.numel() == 0, op, "{} ({}) has no data", name, t.shape().str());
}

void check_f32(Device device, const char* op, const char* name, const TensorView& t) {
  check_on(device, op, name, t);
  QILIN_CHECK(t.dtype() == DType::f32, op, "{} is {} but must be f32", name, describe(t));
}

void check_same_shape(const char* op, const char* name_a, const TensorView& a, const char* name_b,
                      const TensorView& b) {
  QILIN_CHECK(a.shape() == b.shape(), op, "{} is {} but {} is {}", name_a, a.shape().str(), name_b, b.shape().str());
}

void check_channel_vector(Device device, const char* op, const char* name, const TensorView& t, const char* x_name,
                          const TensorView& x) {
  check_f32(device, op, name, t);
  QILIN_CHECK(t.ndim() == 1 && t.dim(0) == x.cols(), op, "{} is {} but {} is {}: expected {} of {}", name,
              t.shape().str(), x_name, x.shape().str(), name, x.cols());
}

void check_contiguous(const char* op, const char* name, const TensorView& t) {
  QILIN_CHECK(t.is_contiguous(), op, "{} ({}) must be contiguous", name, t.shape().str());
}

void check_kv_store(Device device, const TensorView& src, const TensorView& dst, int64_t pos0) {
  const char* op = "kv_store";
  check_f32(device, op, "src", src);
  check_contiguous(op, "src", src);
  QILIN_CHECK(src.ndim() == 3, op, "src is {} but must be [tokens, kv_heads, head_dim]", src.shape().str());
  check_on(device, op, "dst", dst);
  const DType type = dst.dtype();
  QILIN_CHECK(type == DType::f32 || type == DType::f16 || type == DType::q8_0, op,
              "dst is {}: a cache block must be f32, f16 or q8_0", describe(dst));
  QILIN_CHECK(dst.ndim() == 3 && dst.dim(0) == src.dim(1) && dst.dim(2) == src.dim(2), op,
              "src is {} but dst is {}: expected [{}, max_pos, {}]", src.shape().str(), dst.shape().str(), src.dim(1),
              src.dim(2));
  check_contiguous(op, "dst", dst);
  const int64_t n = src.dim(0), max_pos = dst.dim(1);
  QILIN_CHECK(pos0 >= 0 && pos0 + n <= max_pos, op, "positions [{}, {}) do not fit a block of {} ({})", pos0, pos0 + n,
              max_pos, dst.shape().str());
}

AttentionDims check_attention(Device device, const TensorView& q, const TensorView& k, const TensorView& v,
                              int64_t pos0, const TensorView& out, std::optional<float> scale, int64_t max_head_dim) {
  const char* op = "attention";
  check_f32(device, op, "q", q);
  check_f32(device, op, "out", out);
  check_same_shape(op, "q", q, "out", out);
  check_contiguous(op, "q", q);
  check_contiguous(op, "out", out);
  QILIN_CHECK(q.ndim() == 3, op, "q is {} but must be [tokens, heads, head_dim]", q.shape().str());
  QILIN_CHECK(k.device() == device && v.device() == device, op, "the KV cache is on {}/{}, not the {}",
              name_of(k.device()), name_of(v.device()), runs_on(device));
  const DType kv_type = k.dtype();
  QILIN_CHECK(kv_type == v.dtype() && (kv_type == DType::f32 || kv_type == DType::f16 || kv_type == DType::q8_0), op,
              "k is {} and v is {}: the cache must be f32, f16 or q8_0, both the same", describe(k), describe(v));
  check_same_shape(op, "k", k, "v", v);
  check_contiguous(op, "k", k);
  check_contiguous(op, "v", v);
  QILIN_CHECK(k.ndim() == 3, op, "k is {} but must be [kv_heads, max_pos, head_dim]", k.shape().str());
  const int64_t n_q = q.dim(0), n_heads = q.dim(1), head_dim = q.dim(2);
  const int64_t n_kv_heads = k.dim(0), max_pos = k.dim(1);
  QILIN_CHECK(k.dim(2) == head_dim && head_dim > 0, op, "q is {} but k is {}: head_dim differs", q.shape().str(),
              k.shape().str());
  QILIN_CHECK(n_kv_heads > 0 && n_heads % n_kv_heads == 0, op,
              "q is {} but k is {}: {} query heads cannot share {} KV heads", q.shape().str(), k.shape().str(), n_heads,
              n_kv_heads);
  QILIN_CHECK(head_dim <= max_head_dim, op, "q is {}: head_dim {} exceeds the supported {}", q.shape().str(), head_dim,
              max_head_dim);
  QILIN_CHECK(pos0 >= 0 && pos0 + n_q <= max_pos, op, "queries at positions [{}, {}) do not fit a cache of {} ({})",
              pos0, pos0 + n_q, max_pos, k.shape().str());
  const auto* q_begin = q.data_as<const char>();
  const auto* out_begin = out.data_as<const char>();
  QILIN_CHECK(out_begin + out.nbytes() <= q_begin || q_begin + q.nbytes() <= out_begin, op, "out ({}) overlaps q ({})",
              out.shape().str(), q.shape().str());
  const float s = scale ? *scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  QILIN_CHECK(std::isfinite(s), op, "scale {} is not finite", s);
  return {n_q, n_heads, head_dim, n_kv_heads, max_pos, kv_type, s};
}

}  // namespace qilin::detail
