// The argument checks the CPU ops (kernels/ops.cpp) and the GPU ops
// (kernels/cuda/ops.cpp) share: the same rules and the same messages, naming the
// device the op runs on. Each throws qilin::Error naming the op and the shapes.
// Not installed; nothing outside kernels/ includes it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/tensor.h"

namespace qilin::detail {

std::string describe(const TensorView& t);  // "[2, 3] f16"

// t lives on `device` and has data (or no elements).
void check_on(Device device, const char* op, const char* name, const TensorView& t);
void check_f32(Device device, const char* op, const char* name, const TensorView& t);
void check_same_shape(const char* op, const char* name_a, const TensorView& a, const char* name_b, const TensorView& b);
// A per-channel vector (norm weight, bias) of x.cols() floats.
void check_channel_vector(Device device, const char* op, const char* name, const TensorView& t, const char* x_name,
                          const TensorView& x);
void check_contiguous(const char* op, const char* name, const TensorView& t);

// kv_store(src [tokens, kv_heads, head_dim] f32, dst [kv_heads, max_pos, head_dim] f32/f16/q8_0, pos0).
void check_kv_store(Device device, const TensorView& src, const TensorView& dst, int64_t pos0);

// attention(q [tokens, heads, head_dim], k/v [kv_heads, max_pos, head_dim], pos0, out): what the kernels need.
struct AttentionDims {
  int64_t n_q, n_heads, head_dim, n_kv_heads, max_pos;
  DType kv_type;
  float scale;  // the given one, else 1/sqrt(head_dim)
};
AttentionDims check_attention(Device device, const TensorView& q, const TensorView& k, const TensorView& v,
                              int64_t pos0, const TensorView& out, std::optional<float> scale, int64_t max_head_dim);

}  // namespace qilin::detail
