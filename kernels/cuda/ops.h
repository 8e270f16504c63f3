// The non-matmul ops of a transformer forward pass on the GPU: the CUDA mirror of
// kernels/ops.h, for tensors on Device::cuda (kernels/cuda/tensor.h makes them).
//
// Same arguments, same checks and same messages as the CPU ops, with a Stream in
// place of the ThreadPool: each op checks dtypes, shapes and devices on the host,
// queues its kernel(s) on `stream` and returns without waiting. Activations are f32
// with contiguous rows; outputs may alias inputs wherever kernels/ops.h allows it.
// No op calls cudaMalloc once warm: scratch comes from the caching allocator, and
// goes back to it when the op returns, while its kernels may still be queued; that
// is safe in stream order, so run all ops of a device on one stream (default_stream())
// or synchronize before switching streams (kernels/cuda/memory.h).
//
// Numerics follow the CPU reference with f32 arithmetic where it uses double:
// rope, embedding and kv_store give the same bits as the CPU ref, the others agree to
// a few f32 ulp relative to their output's scale (tests/test_cuda_ops.cpp).
//
// Header free of CUDA; in a build without it (kernels/cuda/stub/) every op throws.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "core/tensor.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/stream.h"
#include "kernels/ops.h"

namespace qilin::cuda {

// ---- elementwise (a, b, y of one shape; y may be a or b) ------------------------
void add(const TensorView& a, const TensorView& b, const TensorView& y, const Stream& stream);
void mul(const TensorView& a, const TensorView& b, const TensorView& y, const Stream& stream);
void scale(const TensorView& x, float s, const TensorView& y, const Stream& stream);
void add_inplace(const TensorView& y, const TensorView& x, const Stream& stream);  // y += x
void add_bias(const TensorView& y, const TensorView& bias, const Stream& stream);  // y[r, :] += bias

// ---- activations (y may be x) ----------------------------------------------------
void silu(const TensorView& x, const TensorView& y, const Stream& stream);
void gelu_tanh(const TensorView& x, const TensorView& y, const Stream& stream);
void gelu_erf(const TensorView& x, const TensorView& y, const Stream& stream);
void swiglu(const TensorView& gate, const TensorView& up, const TensorView& y, const Stream& stream);
void swiglu_fused(const TensorView& gate_up, const TensorView& y, const Stream& stream);

// ---- normalisation over the last dimension (y may be x) --------------------------
void rmsnorm(const TensorView& x, const TensorView& w, float eps, const TensorView& y, const Stream& stream);
// b is [cols] or an empty view (no bias).
void layernorm(const TensorView& x, const TensorView& w, const TensorView& b, float eps, const TensorView& y,
               const Stream& stream);
void softmax(const TensorView& x, const TensorView& y, const Stream& stream);

// ---- rotary position embedding ----------------------------------------------------
// A RopeCache's cos/sin table copied to the GPU once (at load).
class RopeTable {
 public:
  RopeTable(const RopeCache& cache, const Stream& stream);
  int64_t rot_dim() const noexcept { return rot_dim_; }
  int64_t max_pos() const noexcept { return max_pos_; }
  const float* data() const noexcept { return table_.data_as<const float>(); }  // [max_pos][cos | sin]

 private:
  int64_t rot_dim_ = 0, max_pos_ = 0;
  DeviceBuffer table_;
};

// Rotates x [tokens, heads, head_dim] (on the GPU) in place; positions come from the
// host and are range-checked there, as on the CPU.
void rope(const TensorView& x, std::span<const int32_t> positions, RopeLayout layout, const RopeTable& table,
          const Stream& stream);
// The same with positions [tokens] i32 already on the GPU (a captured decode step
// updates them in place). They cannot be checked on the host: a position outside the
// table turns that token's rotated elements into NaN instead of reading out of bounds.
void rope(const TensorView& x, const TensorView& positions, RopeLayout layout, const RopeTable& table,
          const Stream& stream);

// ---- embedding lookup -------------------------------------------------------------
// out[t, :] = table[ids[t], :] as f32, table [vocab, dim] on the GPU of any dtype the
// CPU op takes (f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k). Host ids are checked
// (an id outside [0, vocab) throws); device ids [n] i32 are not, and an id out of
// range gives a row of NaN.
void embedding(const TensorView& table, std::span<const int32_t> ids, const TensorView& out, const Stream& stream);
void embedding(const TensorView& table, const TensorView& ids, const TensorView& out, const Stream& stream);

// ---- KV cache ------------------------------------------------------------------------
// As qilin::kv_store: dst[h, pos0 + t, :] = src[t, h, :], dst f32, f16 or q8_0.
void kv_store(const TensorView& src, const TensorView& dst, int64_t pos0, const Stream& stream);

// ---- attention ----------------------------------------------------------------------
// As qilin::attention (causal GQA of one sequence over its cache, k and v f32, f16 or
// q8_0, head_dim <= 512), split over the context with a combine step (ops_attention.cu).
// The partials' scratch comes from the caching allocator.
void attention(const TensorView& q, const TensorView& k, const TensorView& v, int64_t pos0, const TensorView& out,
               const Stream& stream, std::optional<float> scale = std::nullopt);

}  // namespace qilin::cuda
