// Reference quantizers of the k-quant formats (Q4_K, Q6_K), bit-identical to
// ggml's quantize_row_q4_K_ref / quantize_row_q6_K_ref.
//
// Bit-identity means reproducing ggml's float arithmetic operation by
// operation: the same evaluation order of every sum and product, the same
// float (not double) intermediates, the same rounding trick, the same
// comparisons (strict '<' / '>'), so that ties and near-ties resolve the same
// way. Do not "simplify" an expression here without checking the fixtures.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/half.h"
#include "core/quant.h"
#include "core/quant_blocks.h"

// ggml's portable build evaluates a*b + c as two rounded operations; a fused
// multiply-add would change low bits, so contraction is off in this file.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace qilin {
namespace {

// Scales smaller than this are treated as an all-zero group (ggml's GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, for |x| <= 2^22: adding 1.5 * 2^23 puts the
// integer part in the low mantissa bits (the FPU does the rounding). ggml uses
// this instead of lroundf (ties away from zero), so we must too.
inline int nearest_int(float x) {
  const float biased = x + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &biased, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// ggml's MIN/MAX macros; spelled out so NaN handling matches too.
inline int min_int(int a, int b) { return a < b ? a : b; }
inline int max_int(int a, int b) { return a > b ? a : b; }

// Symmetric quantization of n values to integers in [-nmax, nmax-1], stored
// as L[i] = q + nmax. Weighted least squares (weight x^2, ggml's rmse_type 1):
// first the scale that maps the largest magnitude to -nmax, then 18 nearby
// scales (nmax +- 0.1*k), keeping whichever fits best. Returns the scale.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0.0f, amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = max_int(-nmax, min_int(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = max_int(-nmax, min_int(nmax - 1, l));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + max_int(-nmax, min_int(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Asymmetric quantization x ~ scale * L - the_min with L in [0, nmax].
// Starts from the min/max fit, then tries nstep+1 candidate inverse scales
// (rmin + rdelta*is + nmax) / (max - min); for each it solves the weighted
// least-squares scale and min for the rounded L and keeps the one with the
// lowest weighted squared error. ggml's make_qkx2_quants with use_mad = false.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, uint8_t* Laux,
                       float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0.0f) min = 0.0f;  // the offset only ever subtracts
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1.0f / iscale;
  float best_error = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(max_int(0, min_int(nmax, l)));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = diff * diff;
    best_error += weights[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = max_int(0, min_int(nmax, l));
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const float lf = static_cast<float>(l);
      sum_l += w * lf;
      sum_l2 += w * lf * lf;
      sum_xl += w * lf * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0.0f) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0.0f) {  // a positive min is not representable: refit the scale alone
        this_min = 0.0f;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0.0f;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        diff = diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Reads the j-th 6-bit scale and min back from the packed Q4_K scales, so the
// final quants are computed with exactly the scales a decoder will see.
inline void unpack_q4_k_scale_min(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace

void quantize_row_q4_k(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ4_K*>(dst);
  constexpr int kSub = kQKK / 32;  // 8 sub-blocks of 32
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const float* x = src + b * kQKK;
    BlockQ4_K& y = blocks[b];
    uint8_t L[kQKK];
    uint8_t Laux[32];
    float weights[32];
    float mins[kSub];
    float scales[kSub];

    // 1. Per sub-block (scale, min) fit, weighting each element by
    //    rms(sub-block) + |x|: large values matter more, small ones still count.
    float max_scale = 0.0f;  // scales are >= 0 because the min is subtracted
    float max_min = 0.0f;
    for (int j = 0; j < kSub; ++j) {
      const float* xs = x + 32 * j;
      float sum_x2 = 0.0f;
      for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
      const float av_x = std::sqrt(sum_x2 / 32.0f);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
      scales[j] = make_qkx2_quants(32, 15, xs, weights, L + 32 * j, &mins[j], Laux, -1.0f, 0.1f, 20);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }

    // 2. Quantize the 8 scales and 8 mins to 6 bits against the super-block's
    //    d = max_scale/63 and dmin = max_min/63, and pack them (see quant_blocks.h).
    const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    std::memset(y.scales, 0, sizeof y.scales);
    for (int j = 0; j < kSub; ++j) {
      // ggml stores nearest_int into a uint8_t before clamping; keep that truncation.
      auto ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
      auto lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
      ls = static_cast<uint8_t>(min_int(63, ls));
      lm = static_cast<uint8_t>(min_int(63, lm));
      if (j < 4) {
        y.scales[j] = ls;
        y.scales[j + 4] = lm;
      } else {
        y.scales[j + 4] = static_cast<uint8_t>((ls & 0x0f) | ((lm & 0x0f) << 4));
        y.scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        y.scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
      }
    }
    y.d = f32_to_f16(max_scale / 63.0f);
    y.dmin = f32_to_f16(max_min / 63.0f);

    // 3. Requantize every element with the scales as stored (f16 d times the
    //    6-bit sub-scale), so rounding errors of the scales are compensated.
    //    A sub-block whose scale rounds to 0 keeps the quants of step 1.
    for (int j = 0; j < kSub; ++j) {
      uint8_t sc, m;
      unpack_q4_k_scale_min(j, y.scales, &sc, &m);
      const float d = f16_to_f32(y.d) * static_cast<float>(sc);
      if (d == 0.0f) continue;
      const float dm = f16_to_f32(y.dmin) * static_cast<float>(m);
      for (int ii = 0; ii < 32; ++ii) {
        const int l = nearest_int((x[32 * j + ii] + dm) / d);
        L[32 * j + ii] = static_cast<uint8_t>(max_int(0, min_int(15, l)));
      }
    }

    // 4. Pack: each 32-byte group holds 64 elements, the first 32 in the low nibbles.
    uint8_t* q = y.qs;
    for (int j = 0; j < kQKK; j += 64, q += 32) {
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    }
  }
}

void quantize_row_q6_k(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ6_K*>(dst);
  constexpr int kSub = kQKK / 16;  // 16 sub-blocks of 16
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const float* x = src + b * kQKK;
    BlockQ6_K& y = blocks[b];
    int8_t L[kQKK];
    float scales[kSub];

    // 1. Per sub-block symmetric fit to [-32, 31]; remember the scale of largest magnitude.
    float max_scale = 0.0f, max_abs_scale = 0.0f;
    for (int ib = 0; ib < kSub; ++ib) {
      const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      const float abs_scale = std::fabs(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {  // all (near) zero: an all-zero block decodes to zeros
      std::memset(&y, 0, sizeof y);
      continue;
    }

    // 2. 8-bit sub-block scales against d = max_scale / -128 (the signed max maps to -128).
    const float iscale = -128.0f / max_scale;
    y.d = f32_to_f16(1.0f / iscale);
    for (int ib = 0; ib < kSub; ++ib) {
      y.scales[ib] = static_cast<int8_t>(min_int(127, nearest_int(iscale * scales[ib])));
    }

    // 3. Requantize with the stored scales; a zero scale keeps the step-1 quants.
    for (int j = 0; j < kSub; ++j) {
      const float d = f16_to_f32(y.d) * static_cast<float>(y.scales[j]);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = nearest_int(x[16 * j + ii] / d);
        l = max_int(-32, min_int(31, l));
        L[16 * j + ii] = static_cast<int8_t>(l + 32);
      }
    }

    // 4. Pack: low 4 bits in ql (two elements 64 apart per byte), high 2 bits
    //    in qh (four elements 32 apart per byte), per half of 128 elements.
    uint8_t* ql = y.ql;
    uint8_t* qh = y.qh;
    for (int j = 0; j < kQKK; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l + 0], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l + 0] = static_cast<uint8_t>((q1 & 0x0f) | ((q3 & 0x0f) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0x0f) | ((q4 & 0x0f) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

}  // namespace qilin
