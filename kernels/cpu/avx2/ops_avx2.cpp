// AVX2 + FMA + F16C versions of the row kernels (kernels/cpu/ops_table.h):
// 8 floats a step, tails by masked loads and stores.
#include <immintrin.h>

#include <cstdint>

#include "core/half.h"
#include "kernels/cpu/avx2/kv_q8_0_avx2.h"
#include "kernels/cpu/avx2/ops_math_avx2.h"
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {
namespace {

using namespace avx2;

// Applies op to 8 lanes at a time; the tail goes through the same op with masked memory access.
template <class Op>
inline void map_unary(const float* x, float* y, int64_t n, Op op) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, op(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, op(_mm256_maskload_ps(x + i, m)));
  }
}

template <class Op>
inline void map_binary(const float* a, const float* b, float* y, int64_t n, Op op) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, op(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, op(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m)));
  }
}

void add(const float* a, const float* b, float* y, int64_t n) noexcept {
  map_binary(a, b, y, n, [](__m256 u, __m256 v) { return _mm256_add_ps(u, v); });
}
void mul(const float* a, const float* b, float* y, int64_t n) noexcept {
  map_binary(a, b, y, n, [](__m256 u, __m256 v) { return _mm256_mul_ps(u, v); });
}
void scale(const float* x, float s, float* y, int64_t n) noexcept {
  const __m256 vs = _mm256_set1_ps(s);
  map_unary(x, y, n, [vs](__m256 u) { return _mm256_mul_ps(u, vs); });
}
void silu(const float* x, float* y, int64_t n) noexcept {
  map_unary(x, y, n, [](__m256 u) { return avx2::silu(u); });
}
void gelu_tanh(const float* x, float* y, int64_t n) noexcept {
  map_unary(x, y, n, [](__m256 u) { return avx2::gelu_tanh(u); });
}
void gelu_erf(const float* x, float* y, int64_t n) noexcept {
  map_unary(x, y, n, [](__m256 u) { return avx2::gelu_erf(u); });
}
void swiglu(const float* gate, const float* up, float* y, int64_t n) noexcept {
  map_binary(gate, up, y, n, [](__m256 g, __m256 u) { return _mm256_mul_ps(avx2::silu(g), u); });
}

// Sum over the row of f(x_i), four accumulators to hide the add latency.
template <class F>
inline float reduce_sum(const float* x, int64_t n, F f) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = f(s0, _mm256_loadu_ps(x + i));
    s1 = f(s1, _mm256_loadu_ps(x + i + 8));
    s2 = f(s2, _mm256_loadu_ps(x + i + 16));
    s3 = f(s3, _mm256_loadu_ps(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) s0 = f(s0, _mm256_loadu_ps(x + i));
  if (i < n) s1 = f(s1, _mm256_maskload_ps(x + i, tail_mask(n - i)));  // f(s, 0) == s for every use
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

void rmsnorm(const float* x, const float* w, float eps, float* y, int64_t n) noexcept {
  const float sum_sq = reduce_sum(x, n, [](__m256 s, __m256 v) { return _mm256_fmadd_ps(v, v, s); });
  const __m256 inv_rms = _mm256_set1_ps(1.0f / __builtin_sqrtf(sum_sq / static_cast<float>(n) + eps));
  map_binary(x, w, y, n, [inv_rms](__m256 v, __m256 wv) { return _mm256_mul_ps(_mm256_mul_ps(v, inv_rms), wv); });
}

void layernorm(const float* x, const float* w, const float* b, float eps, float* y, int64_t n) noexcept {
  // Centred on x0 = x[0] and kept as x - x0 - delta: x - x0 is exact for a row with a
  // large common offset, where the f32 mean itself would be off by half an ulp of the offset.
  const float x0 = x[0];
  const __m256 vx0 = _mm256_set1_ps(x0);
  const int64_t n8 = n & ~int64_t{7};
  __m256 s = _mm256_setzero_ps();
  for (int64_t i = 0; i < n8; i += 8) s = _mm256_add_ps(s, _mm256_sub_ps(_mm256_loadu_ps(x + i), vx0));
  float sum = hsum(s);
  for (int64_t i = n8; i < n; ++i) sum += x[i] - x0;
  const float delta = sum / static_cast<float>(n);  // mean - x0
  const __m256 vdelta = _mm256_set1_ps(delta);
  __m256 q = _mm256_setzero_ps();
  for (int64_t i = 0; i < n8; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vx0), vdelta);
    q = _mm256_fmadd_ps(d, d, q);
  }
  float sum_sq = hsum(q);
  for (int64_t i = n8; i < n; ++i) sum_sq += (x[i] - x0 - delta) * (x[i] - x0 - delta);
  const float inv_std = 1.0f / __builtin_sqrtf(sum_sq / static_cast<float>(n) + eps);
  const __m256 vinv = _mm256_set1_ps(inv_std);
  for (int64_t i = 0; i < n8; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vx0), vdelta);
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(d, vinv), _mm256_loadu_ps(w + i));
    if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + i));
    _mm256_storeu_ps(y + i, v);
  }
  for (int64_t i = n8; i < n; ++i) {
    const float v = (x[i] - x0 - delta) * inv_std * w[i];
    y[i] = b ? v + b[i] : v;
  }
}

void softmax(const float* x, float* y, int64_t n) noexcept {
  const int64_t n8 = n & ~int64_t{7};
  __m256 vmax = _mm256_set1_ps(-__builtin_inff());
  for (int64_t i = 0; i < n8; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  float max = hmax(vmax);
  for (int64_t i = n8; i < n; ++i) max = x[i] > max ? x[i] : max;
  const __m256 vm = _mm256_set1_ps(max);
  __m256 vsum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i < n8; i += 8) {
    const __m256 e = exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(y + i, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    // Masked-off lanes load 0; exp(0 - max) is zeroed before it reaches the sum.
    const __m256 e = _mm256_and_ps(exp(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vm)), _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(y + i, m, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  const __m256 inv = _mm256_set1_ps(1.0f / hsum(vsum));
  map_unary(y, y, n, [inv](__m256 e) { return _mm256_mul_ps(e, inv); });
}

// One block of the NeoX rotation: 8 pairs (lo[i], hi[i]), masked when kTail.
template <bool kTail>
inline void rope_neox_block(float* lo, float* hi, const float* cos, const float* sin, __m256i m) {
  const auto load = [m](const float* p) { return kTail ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p); };
  const __m256 c = load(cos), s = load(sin), x0 = load(lo), x1 = load(hi);
  const __m256 y0 = _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, s));
  const __m256 y1 = _mm256_fmadd_ps(x0, s, _mm256_mul_ps(x1, c));
  if (kTail) {
    _mm256_maskstore_ps(lo, m, y0);
    _mm256_maskstore_ps(hi, m, y1);
  } else {
    _mm256_storeu_ps(lo, y0);
    _mm256_storeu_ps(hi, y1);
  }
}

void rope_neox(float* x, int64_t n_heads, int64_t head_stride, int64_t rot_dim, const float* cos,
               const float* sin) noexcept {
  const int64_t half = rot_dim / 2, full = half & ~int64_t{7};
  const __m256i tail = tail_mask(half - full);
  for (int64_t h = 0; h < n_heads; ++h) {
    float* lo = x + h * head_stride;
    float* hi = lo + half;
    for (int64_t i = 0; i < full; i += 8) rope_neox_block<false>(lo + i, hi + i, cos + i, sin + i, tail);
    if (full < half) rope_neox_block<true>(lo + full, hi + full, cos + full, sin + full, tail);
  }
}

void rope_interleaved(float* x, int64_t n_heads, int64_t head_stride, int64_t rot_dim, const float* cos,
                      const float* sin) noexcept {
  const int64_t half = rot_dim / 2;
  const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  // Blocks outside, heads inside: the duplicated cos/sin of a block serve every head.
  for (int64_t i = 0; i < half; i += 4) {  // 4 pairs = 8 floats a step
    const int64_t pairs = half - i < 4 ? half - i : 4;
    const __m128i m4 = _mm256_castsi256_si128(tail_mask(pairs));
    const __m256i m8 = tail_mask(2 * pairs);
    const __m256 c = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_maskload_ps(cos + i, m4)), dup);
    const __m256 s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_maskload_ps(sin + i, m4)), dup);
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + h * head_stride + 2 * i;
      const __m256 xv = pairs == 4 ? _mm256_loadu_ps(v) : _mm256_maskload_ps(v, m8);
      const __m256 swapped = _mm256_permute_ps(xv, 0xB1);  // (x1, x0) in each pair
      // even lanes: x0 c - x1 s; odd lanes: x1 c + x0 s
      const __m256 y = _mm256_fmaddsub_ps(xv, c, _mm256_mul_ps(swapped, s));
      if (pairs == 4) {
        _mm256_storeu_ps(v, y);
      } else {
        _mm256_maskstore_ps(v, m8, y);
      }
    }
  }
}

void f16_row_to_f32(const uint16_t* src, float* dst, int64_t n) noexcept {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  }
  for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

void bf16_row_to_f32(const uint16_t* src, float* dst, int64_t n) noexcept {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
  }
  for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void f32_row_to_f16(const float* src, uint16_t* dst, int64_t n) noexcept {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

void f32_row_to_q8_0(const float* src, BlockQ8_0* dst, int64_t n) noexcept { quantize_q8_0(src, dst, n / kQK); }

}  // namespace

void fill_ops_avx2(OpsTable& t) noexcept {
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
  fill_ops_attention_avx2(t);
}

}  // namespace qilin::cpu
