// AVX-512 versions of the row kernels (kernels/cpu/ops_table.h): 16 floats a
// step, tails by masked loads and stores.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/avx512/kv_q8_0_avx512.h"
#include "kernels/cpu/avx512/ops_math_avx512.h"
#include "kernels/cpu/ops_table.h"

namespace qilin::cpu {
namespace {

using namespace avx512;

// Applies op to 16 lanes at a time; the tail goes through the same op with masked memory access.
template <class Op>
inline void map_unary(const float* x, float* y, int64_t n, Op op) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, op(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, op(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

template <class Op>
inline void map_binary(const float* a, const float* b, float* y, int64_t n, Op op) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, op(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, op(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

void add(const float* a, const float* b, float* y, int64_t n) noexcept {
  map_binary(a, b, y, n, [](__m512 u, __m512 v) { return _mm512_add_ps(u, v); });
}
void mul(const float* a, const float* b, float* y, int64_t n) noexcept {
  map_binary(a, b, y, n, [](__m512 u, __m512 v) { return _mm512_mul_ps(u, v); });
}
void scale(const float* x, float s, float* y, int64_t n) noexcept {
  const __m512 vs = _mm512_set1_ps(s);
  map_unary(x, y, n, [vs](__m512 u) { return _mm512_mul_ps(u, vs); });
}
void silu(const float* x, float* y, int64_t n) noexcept {
  map_unary(x, y, n, [](__m512 u) { return avx512::silu(u); });
}
void gelu_tanh(const float* x, float* y, int64_t n) noexcept {
  map_unary(x, y, n, [](__m512 u) { return avx512::gelu_tanh(u); });
}
void gelu_erf(const float* x, float* y, int64_t n) noexcept {
  map_unary(x, y, n, [](__m512 u) { return avx512::gelu_erf(u); });
}
void swiglu(const float* gate, const float* up, float* y, int64_t n) noexcept {
  map_binary(gate, up, y, n, [](__m512 g, __m512 u) { return _mm512_mul_ps(avx512::silu(g), u); });
}

void rmsnorm(const float* x, const float* w, float eps, float* y, int64_t n) noexcept {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;  // four chains hide the FMA latency
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    const __m512 c = _mm512_loadu_ps(x + i + 32), d = _mm512_loadu_ps(x + i + 48);
    s0 = _mm512_fmadd_ps(a, a, s0);
    s1 = _mm512_fmadd_ps(b, b, s1);
    s2 = _mm512_fmadd_ps(c, c, s2);
    s3 = _mm512_fmadd_ps(d, d, s3);
  }
  for (; i < n; i += 16) {
    const __m512 a = _mm512_maskz_loadu_ps(tail_mask(n - i < 16 ? n - i : 16), x + i);
    s0 = _mm512_fmadd_ps(a, a, s0);
  }
  const float sum_sq = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  const __m512 inv_rms = _mm512_set1_ps(1.0f / __builtin_sqrtf(sum_sq / static_cast<float>(n) + eps));
  map_binary(x, w, y, n, [inv_rms](__m512 v, __m512 wv) { return _mm512_mul_ps(_mm512_mul_ps(v, inv_rms), wv); });
}

void layernorm(const float* x, const float* w, const float* b, float eps, float* y, int64_t n) noexcept {
  // Centred on x0 = x[0] and kept as x - x0 - delta: x - x0 is exact for a row with a
  // large common offset, where the f32 mean itself would be off by half an ulp of the offset.
  const __m512 vx0 = _mm512_set1_ps(x[0]);
  __m512 s = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i < 16 ? n - i : 16);
    s = _mm512_add_ps(s, _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vx0));
  }
  const __m512 vdelta = _mm512_set1_ps(_mm512_reduce_add_ps(s) / static_cast<float>(n));  // mean - x0
  __m512 q = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i < 16 ? n - i : 16);
    const __m512 d = _mm512_maskz_sub_ps(m, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vx0), vdelta);
    q = _mm512_fmadd_ps(d, d, q);
  }
  const __m512 vinv = _mm512_set1_ps(1.0f / __builtin_sqrtf(_mm512_reduce_add_ps(q) / static_cast<float>(n) + eps));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i < 16 ? n - i : 16);
    const __m512 d = _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vx0), vdelta);
    __m512 v = _mm512_mul_ps(_mm512_mul_ps(d, vinv), _mm512_maskz_loadu_ps(m, w + i));
    if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

void softmax(const float* x, float* y, int64_t n) noexcept {
  const __m512 minus_inf = _mm512_set1_ps(-__builtin_inff());
  __m512 vmax = minus_inf;
  for (int64_t i = 0; i < n; i += 16) {
    vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(minus_inf, tail_mask(n - i < 16 ? n - i : 16), x + i));
  }
  const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i < 16 ? n - i : 16);
    // Masked-off lanes are -inf, so their exponential is 0 and the sum is untouched.
    const __m512 e = exp(_mm512_sub_ps(_mm512_mask_loadu_ps(minus_inf, m, x + i), vm));
    _mm512_mask_storeu_ps(y + i, m, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
  map_unary(y, y, n, [inv](__m512 e) { return _mm512_mul_ps(e, inv); });
}

void rope_neox(float* x, int64_t n_heads, int64_t head_stride, int64_t rot_dim, const float* cos,
               const float* sin) noexcept {
  const int64_t half = rot_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* lo = x + h * head_stride;
    float* hi = lo + half;
    for (int64_t i = 0; i < half; i += 16) {
      const __mmask16 m = tail_mask(half - i < 16 ? half - i : 16);
      const __m512 c = _mm512_maskz_loadu_ps(m, cos + i), s = _mm512_maskz_loadu_ps(m, sin + i);
      const __m512 x0 = _mm512_maskz_loadu_ps(m, lo + i), x1 = _mm512_maskz_loadu_ps(m, hi + i);
      _mm512_mask_storeu_ps(lo + i, m, _mm512_fmsub_ps(x0, c, _mm512_mul_ps(x1, s)));
      _mm512_mask_storeu_ps(hi + i, m, _mm512_fmadd_ps(x0, s, _mm512_mul_ps(x1, c)));
    }
  }
}

void rope_interleaved(float* x, int64_t n_heads, int64_t head_stride, int64_t rot_dim, const float* cos,
                      const float* sin) noexcept {
  const int64_t half = rot_dim / 2;
  const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  // Blocks outside, heads inside: the duplicated cos/sin of a block serve every head.
  for (int64_t i = 0; i < half; i += 8) {  // 8 pairs = 16 floats a step
    const int64_t pairs = half - i < 8 ? half - i : 8;
    const __mmask8 m8 = static_cast<__mmask8>((1u << pairs) - 1u);
    const __mmask16 m16 = tail_mask(2 * pairs);
    const __m512 c = _mm512_maskz_permutexvar_ps(m16, dup, _mm512_zextps256_ps512(_mm256_maskz_loadu_ps(m8, cos + i)));
    const __m512 s = _mm512_maskz_permutexvar_ps(m16, dup, _mm512_zextps256_ps512(_mm256_maskz_loadu_ps(m8, sin + i)));
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + h * head_stride + 2 * i;
      const __m512 xv = _mm512_maskz_loadu_ps(m16, v);
      const __m512 swapped = _mm512_permute_ps(xv, 0xB1);  // (x1, x0) in each pair
      // even lanes: x0 c - x1 s; odd lanes: x1 c + x0 s
      _mm512_mask_storeu_ps(v, m16, _mm512_fmaddsub_ps(xv, c, _mm512_mul_ps(swapped, s)));
    }
  }
}

void f16_row_to_f32(const uint16_t* src, float* dst, int64_t n) noexcept {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i < 16 ? n - i : 16);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_cvtph_ps(m, _mm256_maskz_loadu_epi16(m, src + i)));
  }
}

void bf16_row_to_f32(const uint16_t* src, float* dst, int64_t n) noexcept {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i < 16 ? n - i : 16);
    const __m512i wide = _mm512_maskz_cvtepu16_epi32(m, _mm256_maskz_loadu_epi16(m, src + i));
    _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(_mm512_maskz_slli_epi32(m, wide, 16)));
  }
}

void f32_row_to_f16(const float* src, uint16_t* dst, int64_t n) noexcept {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i < 16 ? n - i : 16);
    _mm256_mask_storeu_epi16(
        dst + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}

void f32_row_to_q8_0(const float* src, BlockQ8_0* dst, int64_t n) noexcept { quantize_q8_0(src, dst, n / kQK); }

}  // namespace

void fill_ops_avx512(OpsTable& t) noexcept {
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
  fill_ops_attention_avx512(t);
}

}  // namespace qilin::cpu
