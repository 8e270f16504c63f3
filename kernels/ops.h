// The non-matmul ops of a transformer forward pass, checked and threaded.
//
// Each op checks dtypes, shapes and devices once (throwing qilin::Error that
// names the op and the shapes), then splits the rows over the pool and calls
// the kernels of the active ISA level (kernels/cpu/ops_table.h). Activations are
// f32 with contiguous rows; outputs may alias inputs wherever noted. No op
// allocates memory: the decode loop can call them freely.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "core/allocator.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace qilin {

// ---- elementwise (a, b, y of one shape; y may be a or b) ------------------------
void add(const TensorView& a, const TensorView& b, const TensorView& y, ThreadPool& pool);
void mul(const TensorView& a, const TensorView& b, const TensorView& y, ThreadPool& pool);
void scale(const TensorView& x, float s, const TensorView& y, ThreadPool& pool);  // y = x * s
// y += x (the residual connection).
void add_inplace(const TensorView& y, const TensorView& x, ThreadPool& pool);
// y[r, :] += bias for every row r (bias is [cols]).
void add_bias(const TensorView& y, const TensorView& bias, ThreadPool& pool);

// ---- activations (y may be x) ----------------------------------------------------
void silu(const TensorView& x, const TensorView& y, ThreadPool& pool);
void gelu_tanh(const TensorView& x, const TensorView& y, ThreadPool& pool);  // GPT-2 "gelu_new"
void gelu_erf(const TensorView& x, const TensorView& y, ThreadPool& pool);   // exact GELU
// y = silu(gate) * up; gate, up and y of one shape [.., F].
void swiglu(const TensorView& gate, const TensorView& up, const TensorView& y, ThreadPool& pool);
// The fused layout of a merged gate/up projection: gate_up is [.., 2F], gate first
// (Phi-3, ChatGLM), y is [.., F].
void swiglu_fused(const TensorView& gate_up, const TensorView& y, ThreadPool& pool);

// ---- normalisation over the last dimension (y may be x) --------------------------
// y = x / sqrt(mean(x^2) + eps) * w; w is [cols].
void rmsnorm(const TensorView& x, const TensorView& w, float eps, const TensorView& y, ThreadPool& pool);
// y = (x - mean) / sqrt(var + eps) * w + b; w is [cols], b is [cols] or an empty view (no bias).
void layernorm(const TensorView& x, const TensorView& w, const TensorView& b, float eps, const TensorView& y,
               ThreadPool& pool);
// Row-wise softmax, max-subtracted (y may be x).
void softmax(const TensorView& x, const TensorView& y, ThreadPool& pool);

// ---- rotary position embedding ----------------------------------------------------
enum class RopeLayout : uint8_t {
  neox,         // pairs (i, i + rot_dim/2): Llama, Qwen, SmolLM ("rotate_half")
  interleaved,  // pairs (2i, 2i + 1): GPT-J, GLM
};

// cos/sin of every position below max_pos for rot_dim/2 frequencies, computed once
// (at load, in double) so that rope() is a table lookup.
class RopeCache {
 public:
  // Frequencies theta^(-2i/rot_dim); angles are pos * freq_scale * freq (freq_scale < 1:
  // linear position interpolation, llama.cpp's rope_freq_scale).
  RopeCache(int64_t rot_dim, int64_t max_pos, double theta = 10000.0, double freq_scale = 1.0);
  // The hook for scaled variants (Llama 3, YaRN, LongRoPE): the model computes the
  // rot_dim/2 inverse frequencies itself.
  RopeCache(std::span<const double> inv_freq, int64_t max_pos, double freq_scale = 1.0);

  int64_t rot_dim() const noexcept { return rot_dim_; }
  int64_t max_pos() const noexcept { return max_pos_; }
  const float* cos(int64_t pos) const noexcept { return table() + pos * rot_dim_; }
  const float* sin(int64_t pos) const noexcept { return cos(pos) + rot_dim_ / 2; }

 private:
  void fill(std::span<const double> inv_freq, double freq_scale);
  float* table() const noexcept { return static_cast<float*>(table_.data()); }

  int64_t rot_dim_ = 0;
  int64_t max_pos_ = 0;
  AlignedBuffer table_;  // [max_pos][cos: rot_dim/2, sin: rot_dim/2]
};

// Rotates x [tokens, heads, head_dim] in place: token t is at positions[t]. Only the
// first cache.rot_dim() elements of each head turn (partial rotary); the rest pass through.
void rope(const TensorView& x, std::span<const int32_t> positions, RopeLayout layout, const RopeCache& cache,
          ThreadPool& pool);

// ---- embedding lookup -------------------------------------------------------------
// out[t, :] = table[ids[t], :] as f32, for a table [vocab, dim] of any dtype
// (quantized rows are dequantized). An id outside [0, vocab) throws.
void embedding(const TensorView& table, std::span<const int32_t> ids, const TensorView& out, ThreadPool& pool);

// ---- KV cache ------------------------------------------------------------------------
// Writes the keys (or values) of new tokens into one cache block:
//   dst[h, pos0 + t, :] = src[t, h, :]      for every token t and KV head h
//   src  [n, kv_heads, head_dim] f32, contiguous
//   dst  [kv_heads, max_pos, head_dim] f32, f16 or q8_0, contiguous; pos0 + n <= max_pos
// converted to dst's type: f32 copied, f16 rounded to nearest even, q8_0 quantized per
// 32 elements with |x - d q| <= d / 2 for each block's scale d (cpu::OpsTable::f32_row_to_q8_0;
// a q8_0 view has head_dim a multiple of 32: TensorView refuses any other).
void kv_store(const TensorView& src, const TensorView& dst, int64_t pos0, ThreadPool& pool);

// ---- attention ----------------------------------------------------------------------
// Causal grouped-query attention of one sequence over its KV cache.
//   q, out   [n_q, n_heads, head_dim] f32 (out must not alias q)
//   k, v     [n_kv_heads, max_pos, head_dim] f32, f16 or q8_0 (both the same; a q8_0
//            view's head_dim is a multiple of 32), positions [0, pos0 + n_q) already written
// Query i sits at position pos0 + i and attends to cache positions 0..pos0+i; query
// head h reads KV head h / (n_heads / n_kv_heads). scale defaults to 1/sqrt(head_dim).
// Scores stream through an online softmax, so the context length is bounded only by
// the cache; head_dim must be at most cpu::kAttentionMaxHeadDim (512).
// allow_bf16_compute lets prefill (2 or more queries) with head_dim a multiple of 32 run
// on AMX-BF16 tiles where the CPU has them: q, k, v and the softmax weights are rounded
// to bf16 (2^-8 relative each), accumulation stays f32. Off (the default), and on CPUs
// without AMX, the result is exactly that of the f32 kernels.
void attention(const TensorView& q, const TensorView& k, const TensorView& v, int64_t pos0, const TensorView& out,
               ThreadPool& pool, std::optional<float> scale = std::nullopt, bool allow_bf16_compute = false);

}  // namespace qilin
