// Scalar reference of the blocked (prefill) attention entries
// (OpsTable::attention_block_f32 / _f16 / _q8_0, kernels/cpu/ops_table.h).
//
// The oracle of the SIMD levels: each query row on its own, in double, with a
// two-pass softmax (the maximum score first, then the weights), so it shares no
// blocking, chunking or running rescale with the kernels it checks.
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/half.h"
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {
namespace {

// Cache row j (head_dim elements; q8_0 rows are head_dim / 32 blocks) and its element d.
const float* kv_row(const float* base, int64_t j, int64_t head_dim) { return base + j * head_dim; }
const uint16_t* kv_row(const uint16_t* base, int64_t j, int64_t head_dim) { return base + j * head_dim; }
const BlockQ8_0* kv_row(const BlockQ8_0* base, int64_t j, int64_t head_dim) { return base + j * (head_dim / kQK); }
double element(const float* row, int64_t d) { return row[d]; }
double element(const uint16_t* row, int64_t d) { return f16_to_f32(row[d]); }
double element(const BlockQ8_0* row, int64_t d) {
  const BlockQ8_0& b = row[d / kQK];
  return f16_to_f32(b.d) * static_cast<float>(b.qs[d % kQK]);  // exact in f32, as the SIMD levels dequantize
}

template <class KV>
double score(const float* q, const KV* k, int64_t head_dim, double scale) {
  double dot = 0;
  for (int64_t d = 0; d < head_dim; ++d) dot += static_cast<double>(q[d]) * element(k, d);
  return dot * scale;
}

template <class KV>
void attention_block(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const KV* k, const KV* v,
                     int64_t pos, int64_t head_dim, float scale, float* out) noexcept {
  double acc[kAttentionMaxHeadDim];
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t n_ctx = pos + t + 1;
    for (int64_t i = 0; i < n_heads; ++i) {
      const float* qi = q + t * token_stride + i * head_dim;
      double max = -std::numeric_limits<double>::infinity(), sum = 0;
      for (int64_t j = 0; j < n_ctx; ++j) max = std::fmax(max, score(qi, kv_row(k, j, head_dim), head_dim, scale));
      for (int64_t d = 0; d < head_dim; ++d) acc[d] = 0;
      for (int64_t j = 0; j < n_ctx; ++j) {
        const double p = std::exp(score(qi, kv_row(k, j, head_dim), head_dim, scale) - max);
        sum += p;
        const KV* vj = kv_row(v, j, head_dim);
        for (int64_t d = 0; d < head_dim; ++d) acc[d] += p * element(vj, d);
      }
      float* oi = out + t * token_stride + i * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) oi[d] = static_cast<float>(acc[d] / sum);
    }
  }
}

void attention_block_f32(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const float* k,
                         const float* v, int64_t pos, int64_t head_dim, float scale, float* out) noexcept {
  attention_block(q, n_tokens, n_heads, token_stride, k, v, pos, head_dim, scale, out);
}
void attention_block_f16(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const uint16_t* k,
                         const uint16_t* v, int64_t pos, int64_t head_dim, float scale, float* out) noexcept {
  attention_block(q, n_tokens, n_heads, token_stride, k, v, pos, head_dim, scale, out);
}
void attention_block_q8_0(const float* q, int64_t n_tokens, int64_t n_heads, int64_t token_stride, const BlockQ8_0* k,
                          const BlockQ8_0* v, int64_t pos, int64_t head_dim, float scale, float* out) noexcept {
  attention_block(q, n_tokens, n_heads, token_stride, k, v, pos, head_dim, scale, out);
}

}  // namespace

void fill_ops_attention_ref(OpsTable& t) noexcept {
  t.attention_block_f32 = attention_block_f32;
  t.attention_block_f16 = attention_block_f16;
  t.attention_block_q8_0 = attention_block_q8_0;
}

}  // namespace qilin::cpu
