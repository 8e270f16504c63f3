// The CUDA kernels' launchers: raw device pointers and sizes, trusted (the checked
// API in ops.cpp and matmul_cuda.cpp validates first). Each queues its kernel(s) on
// `stream` and returns; callers check cudaGetLastError() after (QILIN_CUDA_CHECK_LAUNCH).
// Row strides (ld*) are in elements. Internal to kernels/cuda/.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/quant_math.h"

namespace qilin::cuda::launch {

// ---- ops_elementwise.cu ------------------------------------------------------------
enum class Elementwise : uint8_t { add, mul, scale, silu, gelu_tanh, gelu_erf, swiglu };
// y[r, c] = op(a[r, c], b[r, c]) (b unused by the unary ops; `s` is scale's factor).
// ldb = 0 broadcasts one row of b to every row (add_bias).
void elementwise(Elementwise op, const float* a, int64_t lda, const float* b, int64_t ldb, float s, float* y,
                 int64_t ldy, int64_t rows, int64_t cols, cudaStream_t stream) noexcept;

// ---- ops_norm.cu -------------------------------------------------------------------------
void rmsnorm(const float* x, int64_t ldx, const float* w, float eps, float* y, int64_t ldy, int64_t rows, int64_t cols,
             cudaStream_t stream) noexcept;
// b may be null (no bias).
void layernorm(const float* x, int64_t ldx, const float* w, const float* b, float eps, float* y, int64_t ldy,
               int64_t rows, int64_t cols, cudaStream_t stream) noexcept;
void softmax(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols,
             cudaStream_t stream) noexcept;

// ---- ops_rope.cu -------------------------------------------------------------------------
// x [n_tokens, n_heads, head_dim] contiguous, rotated in place; table [max_pos][cos: rot_dim/2, sin: rot_dim/2].
// A position outside [0, max_pos) turns its token's rotated elements into NaN (no read out of bounds).
void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const int32_t* positions,
          const float* table, int64_t max_pos, bool neox, cudaStream_t stream) noexcept;

// ---- ops_embedding.cu ------------------------------------------------------------------
// out[t, :] = table[ids[t], :] as f32 (rows of `dtype`, row_stride bytes apart); an id
// outside [0, vocab) gives a row of NaN.
void embedding(DType dtype, const void* table, int64_t row_stride, int64_t vocab, int64_t dim, const int32_t* ids,
               int64_t n, float* out, int64_t ldo, cudaStream_t stream) noexcept;
// dst[h, pos0 + t, :] = src[t, h, :] converted to `dtype` (f32, f16 or q8_0); dst [heads, max_pos, head_dim].
void kv_store(DType dtype, const float* src, int64_t n, int64_t heads, int64_t head_dim, void* dst, int64_t max_pos,
              int64_t pos0, cudaStream_t stream) noexcept;

// ---- ops_attention.cu ------------------------------------------------------------------
struct AttentionArgs {
  const float* q = nullptr;  // [n_q, n_heads, head_dim]
  float* out = nullptr;      // [n_q, n_heads, head_dim]
  const void* k = nullptr;   // [n_kv_heads, max_pos, head_dim] of kv_type
  const void* v = nullptr;
  DType kv_type = DType::f16;  // f32, f16 or q8_0
  int64_t n_q = 0, n_heads = 0, n_kv_heads = 0, max_pos = 0, head_dim = 0, pos0 = 0;
  float scale = 1.0f;
  AttentionPlan plan;
  float* partial_acc = nullptr;  // plan.partials * head_dim floats
  float* partial_ml = nullptr;   // plan.partials * 2 floats
};
void attention(const AttentionArgs& args, cudaStream_t stream) noexcept;

// ---- gemv_quant.cu -----------------------------------------------------------------------
// Quantizes x [m, k] (k a multiple of 32) into m * k/32 XBlocks (quant_math.h).
void quantize_x(const float* x, int64_t ldx, int64_t m, int64_t k, XBlock* out, cudaStream_t stream) noexcept;
// y[i, r] = Σ_u unit_dot(w row r unit u, xq[i, u]) for i < m <= kGemvMaxRows.
void gemv_quant(DType w_type, const void* w, int64_t w_stride, int64_t n, int64_t k, const XBlock* xq, int64_t m,
                float* y, int64_t ldy, cudaStream_t stream) noexcept;
inline constexpr int64_t kGemvMaxRows = 8;

// ---- gemv_float.cu -----------------------------------------------------------------------
// y[i, r] = Σ_e x[i, e] · w[r, e] in f32, for f32, f16 and bf16 weights and m <= kGemvMaxRows.
void gemv_float(DType w_type, const void* w, int64_t w_stride, int64_t n, int64_t k, const float* x, int64_t ldx,
                int64_t m, float* y, int64_t ldy, cudaStream_t stream) noexcept;

// ---- convert.cu ------------------------------------------------------------------------
// dst [n, k] (contiguous, f16 or bf16 per to_bf16) = the weight rows dequantized / converted.
void weight_to_half(DType w_type, const void* w, int64_t w_stride, int64_t n, int64_t k, void* dst, bool to_bf16,
                    cudaStream_t stream) noexcept;
// dst [m, k] (contiguous, f16 or bf16) = x rounded to nearest even.
void rows_to_half(const float* x, int64_t ldx, int64_t m, int64_t k, void* dst, bool to_bf16,
                  cudaStream_t stream) noexcept;

}  // namespace qilin::cuda::launch
