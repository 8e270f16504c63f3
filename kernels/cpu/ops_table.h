// The non-matmul CPU kernels (norms, activations, softmax, RoPE, embedding rows,
// attention) as one table of function pointers per ISA level.
//
// Every entry works on one row / one vector, is noexcept and trusts its
// arguments; kernels/ops.h checks shapes and splits the rows over threads.
// The ref level (kernels/cpu/ref/) fills every entry with plain scalar C++ and is
// the oracle in tests; each higher level starts as a copy of the one below and
// overrides the entries it does better.
#pragma once

#include <cstdint>

#include "core/quant_blocks.h"
#include "kernels/cpu/isa.h"

namespace qilin::cpu {

// Attention kernels keep per-query accumulators on the stack, so head_dim is bounded;
// the context length is not (scores are streamed through an online softmax).
inline constexpr int64_t kAttentionMaxHeadDim = 512;
// Queries of one KV group processed together (larger groups are split).
inline constexpr int64_t kAttentionMaxGroup = 8;

// The blocked (prefill) attention kernels keep a block's queries transposed and a
// chunk of keys converted to f32 in stack buffers of this many floats each.
inline constexpr int64_t kAttentionBlockFloats = 8192;
// Query rows (tokens x heads) of one attention_block call: a multiple of 16 with
// rows * head_dim <= kAttentionBlockFloats, 128 at most (16 for head_dim 512).
constexpr int64_t attention_block_max_rows(int64_t head_dim) {
  const int64_t rows = kAttentionBlockFloats / head_dim / 16 * 16;
  return rows < 16 ? 16 : (rows > 128 ? 128 : rows);
}
// Keys per chunk of the blocked kernels: a multiple of 16 with keys * head_dim <=
// kAttentionBlockFloats, 64 at most.
constexpr int64_t attention_block_chunk_keys(int64_t head_dim) {
  const int64_t keys = kAttentionBlockFloats / head_dim / 16 * 16;
  return keys < 16 ? 16 : (keys > 64 ? 64 : keys);
}

struct OpsTable {
  // Elementwise over n floats. y may alias a, b or x (in-place use).
  void (*add)(const float* a, const float* b, float* y, int64_t n) noexcept;
  void (*mul)(const float* a, const float* b, float* y, int64_t n) noexcept;
  void (*scale)(const float* x, float s, float* y, int64_t n) noexcept;

  // Activations; y may alias x (and gate/up for swiglu).
  void (*silu)(const float* x, float* y, int64_t n) noexcept;
  void (*gelu_tanh)(const float* x, float* y, int64_t n) noexcept;                   // GPT-2's tanh approximation
  void (*gelu_erf)(const float* x, float* y, int64_t n) noexcept;                    // exact: 0.5 x (1 + erf(x/sqrt 2))
  void (*swiglu)(const float* gate, const float* up, float* y, int64_t n) noexcept;  // silu(gate) * up

  // y = x / sqrt(mean(x^2) + eps) * w. y may alias x.
  void (*rmsnorm)(const float* x, const float* w, float eps, float* y, int64_t n) noexcept;
  // y = (x - mean) / sqrt(var + eps) * w + b; b may be null. y may alias x.
  void (*layernorm)(const float* x, const float* w, const float* b, float eps, float* y, int64_t n) noexcept;
  // y = exp(x - max) / sum; y may alias x.
  void (*softmax)(const float* x, float* y, int64_t n) noexcept;

  // Rotates the first rot_dim elements of each of `n_heads` vectors (x + h * head_stride)
  // in place; cos/sin hold rot_dim/2 angles of one position.
  //   neox:        pairs (i, i + rot_dim/2)     (Llama, Qwen: "rotate_half")
  //   interleaved: pairs (2i, 2i + 1)           (GPT-J, GLM)
  void (*rope_neox)(float* x, int64_t n_heads, int64_t head_stride, int64_t rot_dim, const float* cos,
                    const float* sin) noexcept;
  void (*rope_interleaved)(float* x, int64_t n_heads, int64_t head_stride, int64_t rot_dim, const float* cos,
                           const float* sin) noexcept;

  // Embedding rows of 16-bit tables to f32.
  void (*f16_row_to_f32)(const uint16_t* src, float* dst, int64_t n) noexcept;
  void (*bf16_row_to_f32)(const uint16_t* src, float* dst, int64_t n) noexcept;

  // KV-cache rows from f32 (KvCache::store through kernels/ops.h kv_store).
  // f16: IEEE round to nearest even (bit-identical at every level).
  void (*f32_row_to_f16)(const float* src, uint16_t* dst, int64_t n) noexcept;
  // q8_0 blocks of 32 (n a multiple of 32): d = f16(amax / 127), q = nearest-even(x * (1 / d))
  // clamped to [-127, 127] (NaN gives -127). Unlike ggml's quantize_row_q8_0, the quants are
  // computed from the f16-rounded scale, so |x - d q| <= d / 2 holds for every element
  // (while d is a normal f16); the cache never leaves the process, so no file format is bound.
  // Bit-identical at every level.
  void (*f32_row_to_q8_0)(const float* src, BlockQ8_0* dst, int64_t n) noexcept;

  // Causal attention of n_q query vectors that share one KV head, over the
  // first n_ctx cache positions:
  //   out_i = sum_j softmax_j(scale * q_i . k_j) v_j      j in [0, n_ctx)
  // q and out are n_q rows of head_dim floats (row stride head_dim); k and v are
  // n_ctx rows of head_dim elements (row stride head_dim), f32 or IEEE f16, or of
  // head_dim / 32 q8_0 blocks (head_dim a multiple of 32; the SIMD levels convert
  // each slice of a row to f32 in registers as they read it, with one shared code).
  // n_q <= kAttentionMaxGroup, head_dim <= kAttentionMaxHeadDim, n_ctx >= 1.
  void (*attention_f32)(const float* q, int64_t n_q, const float* k, const float* v, int64_t n_ctx, int64_t head_dim,
                        float scale, float* out) noexcept;
  void (*attention_f16)(const float* q, int64_t n_q, const uint16_t* k, const uint16_t* v, int64_t n_ctx,
                        int64_t head_dim, float scale, float* out) noexcept;
  void (*attention_q8_0)(const float* q, int64_t n_q, const BlockQ8_0* k, const BlockQ8_0* v, int64_t n_ctx,
                         int64_t head_dim, float scale, float* out) noexcept;

  // Causal attention of a block of queries sharing one KV head (prefill): n_tokens
  // consecutive tokens x n_heads query heads. Token t sits at position pos + t and
  // attends to cache positions [0, pos + t]:
  //   out_(t,i) = sum_j softmax_j(scale * q_(t,i) . k_j) v_j      j in [0, pos + t]
  // Row (t, i) of q is q + t * token_stride + i * head_dim, and likewise of out (the
  // [tokens, heads, head_dim] layout of kernels/ops.h); k and v are cache rows of
  // head_dim elements, f32 or IEEE f16, or q8_0 rows as above. Unlike attention_f32/f16, every K/V chunk is
  // loaded (and converted) once for the whole block, and the scores form a small
  // matrix product instead of per-query dot products.
  // n_tokens * n_heads <= attention_block_max_rows(head_dim), head_dim <= kAttentionMaxHeadDim.
  void (*attention_block_f32)(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const float* k,
                              const float* v, int64_t pos, int64_t head_dim, float scale, float* out) noexcept;
  void (*attention_block_f16)(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride,
                              const uint16_t* k, const uint16_t* v, int64_t pos, int64_t head_dim, float scale,
                              float* out) noexcept;
  void (*attention_block_q8_0)(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride,
                               const BlockQ8_0* k, const BlockQ8_0* v, int64_t pos, int64_t head_dim, float scale,
                               float* out) noexcept;

  // The blocked kernels with bf16 compute, for callers that allow it (kernels/ops.h
  // attention's allow_bf16_compute): the same arguments and result as attention_block_*,
  // with q, k, v and the softmax weights rounded to bf16 (2^-8 relative each) and f32
  // accumulation. head_dim must be a multiple of 32. Only the amx level (TDPBF16PS) has
  // its own; every other level points these at its attention_block_* (exact f32 math).
  void (*attention_block_bf16_f32)(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride,
                                   const float* k, const float* v, int64_t pos, int64_t head_dim, float scale,
                                   float* out) noexcept;
  void (*attention_block_bf16_f16)(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride,
                                   const uint16_t* k, const uint16_t* v, int64_t pos, int64_t head_dim, float scale,
                                   float* out) noexcept;
  void (*attention_block_bf16_q8_0)(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride,
                                    const BlockQ8_0* k, const BlockQ8_0* v, int64_t pos, int64_t head_dim, float scale,
                                    float* out) noexcept;
};

// The table of one level; every level is built once, on first use. A level
// above what this CPU supports holds the best supported level's kernels.
const OpsTable& ops_table(Isa isa) noexcept;

// Per-level fillers (each in its own translation unit, compiled with its flags).
void fill_ops_ref(OpsTable& t) noexcept;
void fill_ops_avx2(OpsTable& t) noexcept;
void fill_ops_avx512(OpsTable& t) noexcept;
// The attention entries, kept in their own translation units (called by the fillers above).
void fill_ops_attention_ref(OpsTable& t) noexcept;
void fill_ops_attention_avx2(OpsTable& t) noexcept;
void fill_ops_attention_avx512(OpsTable& t) noexcept;
// The blocked (prefill) entries of the SIMD levels (called by the attention fillers above).
void fill_ops_attention_block_avx2(OpsTable& t) noexcept;
void fill_ops_attention_block_avx512(OpsTable& t) noexcept;
// The bf16-compute blocked entries of the amx level (called by ops_table()).
void fill_ops_attention_block_amx(OpsTable& t) noexcept;

}  // namespace qilin::cpu
