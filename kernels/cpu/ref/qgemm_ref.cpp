// Scalar quantized-matmul kernels: the oracle in tests and the path for CPUs
// without AVX2. They read the stored GGUF rows as they are (no packing).
//
// The integer part of each block, Σ (q - offset)·xq, is computed exactly as
// written, without the SIMD kernels' offset corrections, so the tests check
// those too; the scaled block sums are accumulated in double, so the oracle's
// own rounding is negligible next to the f32 accumulation it judges.
#include <cmath>

#include "kernels/cpu/qblock_decode.h"
#include "kernels/cpu/qgemm_table.h"

namespace qilin::cpu {
namespace {

// x·inv clipped to [-127, 127] (NaN to -127), then rounded to nearest even: the
// SIMD levels' max, min and rounding conversion, operation for operation.
int8_t round_to_q8(float v) {
  v = v > -127.0f ? v : -127.0f;
  v = v < 127.0f ? v : 127.0f;
  return static_cast<int8_t>(std::nearbyint(v));
}

void quantize_x_ref(const float* x, int64_t ldx, int64_t m, int64_t k, int8_t* q, float* d, float* ds,
                    int32_t* sums16) noexcept {
  const int64_t nb = k / kXBlock;
  for (int64_t i = 0; i < m; ++i) {
    const float* xr = x + i * ldx;
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = xr + b * kXBlock;
      float amax = 0.0f;
      for (int e = 0; e < kXBlock; ++e) {
        const float a = std::fabs(xb[e]);
        amax = a > amax ? a : amax;
      }
      const float scale = amax / 127.0f;
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      int8_t* qb = q + i * k + b * kXBlock;
      int32_t sum[2] = {0, 0};
      for (int e = 0; e < kXBlock; ++e) {
        qb[e] = round_to_q8(xb[e] * inv);
        sum[e / 16] += qb[e];
      }
      d[i * nb + b] = scale;
      ds[i * nb + b] = scale * static_cast<float>(sum[0] + sum[1]);
      sums16[i * 2 * nb + 2 * b] = sum[0];
      sums16[i * 2 * nb + 2 * b + 1] = sum[1];
    }
  }
}

template <QFormat kF>
void qgemm_ref(const QGemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  constexpr int kOffset = quant_offset(kF);
  const int64_t k = a.x.k, nb = k / kXBlock;
  for (int64_t i = 0; i < a.x.m; ++i) {
    const int8_t* xq = a.x.q + i * k;
    const float* xd = a.x.d + i * nb;
    for (int64_t n = n_begin; n < n_end; ++n) {
      const void* row = static_cast<const char*>(a.w) + n * a.w_stride;
      double sum = 0;
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t q[32];
        decode_quants(kF, row, b, q);
        const BlockScales s = block_scales(kF, row, b);
        const int8_t* xb = xq + b * kXBlock;
        int32_t dot[2] = {0, 0}, xsum = 0;
        for (int e = 0; e < kXBlock; ++e) {
          dot[e / 16] += (q[e] - kOffset) * xb[e];
          xsum += xb[e];
        }
        const double dx = xd[b];
        sum += dx * (double{s.a[0]} * dot[0] + double{s.a[1]} * dot[1] + double{s.b} * xsum);
      }
      a.y[i * a.ldy + n] = static_cast<float>(sum);
    }
  }
}

}  // namespace

void fill_qgemm_ref(QGemmTable& t) noexcept {
  t.kernel[static_cast<int>(QFormat::q8_0)] = {qgemm_ref<QFormat::q8_0>, "ref q8_0", 1, false};
  t.kernel[static_cast<int>(QFormat::q4_0)] = {qgemm_ref<QFormat::q4_0>, "ref q4_0", 1, false};
  t.kernel[static_cast<int>(QFormat::q4_1)] = {qgemm_ref<QFormat::q4_1>, "ref q4_1", 1, false};
  t.kernel[static_cast<int>(QFormat::q4_k)] = {qgemm_ref<QFormat::q4_k>, "ref q4_k", 1, false};
  t.kernel[static_cast<int>(QFormat::q6_k)] = {qgemm_ref<QFormat::q6_k>, "ref q6_k", 1, false};
  for (int f = 0; f < kQFormatCount; ++f) t.large[f] = t.kernel[f];  // until a level has its own
  t.quantize_x = quantize_x_ref;
}

}  // namespace qilin::cpu
