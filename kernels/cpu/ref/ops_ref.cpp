// Scalar reference versions of every non-matmul kernel (kernels/cpu/ops_table.h).
//
// These are the oracle of the SIMD levels and the path for CPUs without AVX2:
// plain loops, accumulations and transcendental functions in double, results
// rounded once to f32.
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/half.h"
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {
namespace {

void add(const float* a, const float* b, float* y, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
void mul(const float* a, const float* b, float* y, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
void scale(const float* x, float s, float* y, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
}

double silu_of(double x) { return x / (1.0 + std::exp(-x)); }

void silu(const float* x, float* y, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(silu_of(x[i]));
}
// 0.5 x (1 + tanh(u)) written as x / (1 + e^(-2u)): the same function without the
// cancellation of 1 + tanh(u) for negative x.
void gelu_tanh(const float* x, float* y, int64_t n) noexcept {
  const double k = std::sqrt(2.0 / M_PI);
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(v / (1.0 + std::exp(-2.0 * k * (v + 0.044715 * v * v * v))));
  }
}
void gelu_erf(const float* x, float* y, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(v * M_SQRT1_2)));
  }
}
void swiglu(const float* gate, const float* up, float* y, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(silu_of(gate[i]) * up[i]);
}

void rmsnorm(const float* x, const float* w, float eps, float* y, int64_t n) noexcept {
  double sum_sq = 0;
  for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const double inv_rms = 1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i] * inv_rms * w[i]);
}

void layernorm(const float* x, const float* w, const float* b, float eps, float* y, int64_t n) noexcept {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double sum_sq = 0;  // two passes: no cancellation for rows with a large mean
  for (int64_t i = 0; i < n; ++i) sum_sq += (x[i] - mean) * (x[i] - mean);
  const double inv_std = 1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) {
    const double v = (x[i] - mean) * inv_std * w[i];
    y[i] = static_cast<float>(b ? v + b[i] : v);
  }
}

void softmax(const float* x, float* y, int64_t n) noexcept {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - max);
  // Exponentials are recomputed, not stored: y may alias x, and each element is rounded once.
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(std::exp(static_cast<double>(x[i]) - max) / sum);
}

void rotate_pair(float* a, float* b, float c, float s) {
  const double x0 = *a, x1 = *b;
  *a = static_cast<float>(x0 * c - x1 * s);
  *b = static_cast<float>(x0 * s + x1 * c);
}

void rope_neox(float* x, int64_t n_heads, int64_t head_stride, int64_t rot_dim, const float* cos,
               const float* sin) noexcept {
  const int64_t half = rot_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_stride;
    for (int64_t i = 0; i < half; ++i) rotate_pair(v + i, v + i + half, cos[i], sin[i]);
  }
}

void rope_interleaved(float* x, int64_t n_heads, int64_t head_stride, int64_t rot_dim, const float* cos,
                      const float* sin) noexcept {
  const int64_t half = rot_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_stride;
    for (int64_t i = 0; i < half; ++i) rotate_pair(v + 2 * i, v + 2 * i + 1, cos[i], sin[i]);
  }
}

void f16_row_to_f32(const uint16_t* src, float* dst, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}
void bf16_row_to_f32(const uint16_t* src, float* dst, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void f32_row_to_f16(const float* src, uint16_t* dst, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

// The SIMD levels reproduce this bit for bit: the scale in scalar f32, then one f32
// multiply, nearest-even rounding and the clamps per element.
void f32_row_to_q8_0(const float* src, BlockQ8_0* dst, int64_t n) noexcept {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      const float ax = std::fabs(x[j]);
      amax = amax > ax ? amax : ax;
    }
    const uint16_t d16 = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(d16);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    dst[b].d = d16;
    for (int j = 0; j < kQK; ++j) {
      float r = std::nearbyint(x[j] * id);
      r = r > -127.0f ? r : -127.0f;  // as maxps(r, -127): NaN gives -127
      r = r < 127.0f ? r : 127.0f;
      dst[b].qs[j] = static_cast<int8_t>(r);
    }
  }
}

// Element d of cache row j (rows of head_dim elements; q8_0 rows are head_dim / 32 blocks).
const float* kv_row(const float* base, int64_t j, int64_t head_dim) { return base + j * head_dim; }
const uint16_t* kv_row(const uint16_t* base, int64_t j, int64_t head_dim) { return base + j * head_dim; }
const BlockQ8_0* kv_row(const BlockQ8_0* base, int64_t j, int64_t head_dim) { return base + j * (head_dim / kQK); }
float load(const float* row, int64_t d) { return row[d]; }
float load(const uint16_t* row, int64_t d) { return f16_to_f32(row[d]); }
float load(const BlockQ8_0* row, int64_t d) {
  const BlockQ8_0& b = row[d / kQK];
  return f16_to_f32(b.d) * static_cast<float>(b.qs[d % kQK]);
}

// Online (streaming) softmax in double: one pass over the keys, rescaling the
// running sum and accumulator whenever a new maximum appears, so no score buffer
// is needed and the context length is unbounded.
template <class KV>
void attention(const float* q, int64_t n_q, const KV* k, const KV* v, int64_t n_ctx, int64_t head_dim, float scale,
               float* out) noexcept {
  double acc[kAttentionMaxHeadDim];
  for (int64_t i = 0; i < n_q; ++i) {
    const float* qi = q + i * head_dim;
    double max = -std::numeric_limits<double>::infinity(), sum = 0;
    for (int64_t d = 0; d < head_dim; ++d) acc[d] = 0;
    for (int64_t j = 0; j < n_ctx; ++j) {
      const KV* kj = kv_row(k, j, head_dim);
      const KV* vj = kv_row(v, j, head_dim);
      double dot = 0;
      for (int64_t d = 0; d < head_dim; ++d) dot += static_cast<double>(qi[d]) * load(kj, d);
      const double s = dot * scale;
      if (s > max) {
        const double correction = std::exp(max - s);  // exp(-inf) = 0 on the first key
        sum *= correction;
        for (int64_t d = 0; d < head_dim; ++d) acc[d] *= correction;
        max = s;
      }
      const double p = std::exp(s - max);
      sum += p;
      for (int64_t d = 0; d < head_dim; ++d) acc[d] += p * load(vj, d);
    }
    float* oi = out + i * head_dim;
    for (int64_t d = 0; d < head_dim; ++d) oi[d] = static_cast<float>(acc[d] / sum);
  }
}

void attention_f32(const float* q, int64_t n_q, const float* k, const float* v, int64_t n_ctx, int64_t head_dim,
                   float scale, float* out) noexcept {
  attention(q, n_q, k, v, n_ctx, head_dim, scale, out);
}
void attention_f16(const float* q, int64_t n_q, const uint16_t* k, const uint16_t* v, int64_t n_ctx, int64_t head_dim,
                   float scale, float* out) noexcept {
  attention(q, n_q, k, v, n_ctx, head_dim, scale, out);
}
void attention_q8_0(const float* q, int64_t n_q, const BlockQ8_0* k, const BlockQ8_0* v, int64_t n_ctx,
                    int64_t head_dim, float scale, float* out) noexcept {
  attention(q, n_q, k, v, n_ctx, head_dim, scale, out);
}

}  // namespace

void fill_ops_ref(OpsTable& t) noexcept {
  t.add = add;
  t.mul = mul;
  t.scale = scale;
  t.silu = silu;
  t.gelu_tanh = gelu_tanh;
  t.gelu_erf = gelu_erf;
  t.swiglu = swiglu;
  t.rmsnorm = rmsnorm;
  t.layernorm = layernorm;
  t.softmax = softmax;
  t.rope_neox = rope_neox;
  t.rope_interleaved = rope_interleaved;
  t.f16_row_to_f32 = f16_row_to_f32;
  t.bf16_row_to_f32 = bf16_row_to_f32;
  t.f32_row_to_f16 = f32_row_to_f16;
  t.f32_row_to_q8_0 = f32_row_to_q8_0;
  t.attention_f32 = attention_f32;
  t.attention_f16 = attention_f16;
  t.attention_q8_0 = attention_q8_0;
  fill_ops_attention_ref(t);  // the blocked (prefill) entries: kernels/cpu/ref/ops_attention_ref.cpp
}

}  // namespace qilin::cpu
