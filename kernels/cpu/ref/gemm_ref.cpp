// Scalar matmul kernels: the oracle in tests and the path for CPUs without AVX2.
//
// Sums are accumulated in double so that the oracle's own rounding error
// (K·2^-53 relative) is negligible next to the f32 paths it judges.
#include <cstring>

#include "core/half.h"
#include "kernels/cpu/gemm_table.h"

namespace qilin::cpu {
namespace {

float load_weight(const float* w, int64_t i) { return w[i]; }
float load_weight(const uint16_t* w, int64_t i, bool is_bf16) { return is_bf16 ? bf16_to_f32(w[i]) : f16_to_f32(w[i]); }

void gemm_f32_ref(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  for (int64_t i = 0; i < a.m; ++i) {
    const float* x = a.x + i * a.ldx;
    for (int64_t n = n_begin; n < n_end; ++n) {
      const auto* w = reinterpret_cast<const float*>(static_cast<const char*>(a.w) + n * a.w_stride);
      double sum = 0;
      for (int64_t k = 0; k < a.k; ++k) sum += static_cast<double>(x[k]) * load_weight(w, k);
      a.y[i * a.ldy + n] = static_cast<float>(sum);
    }
  }
}

template <bool kBf16>
void gemm_half_ref(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  for (int64_t i = 0; i < a.m; ++i) {
    const float* x = a.x + i * a.ldx;
    for (int64_t n = n_begin; n < n_end; ++n) {
      const auto* w = reinterpret_cast<const uint16_t*>(static_cast<const char*>(a.w) + n * a.w_stride);
      double sum = 0;
      for (int64_t k = 0; k < a.k; ++k) sum += static_cast<double>(x[k]) * load_weight(w, k, kBf16);
      a.y[i * a.ldy + n] = static_cast<float>(sum);
    }
  }
}

// Operands rounded to bf16 (x already, in xb), f32 sums in the order of K: what one
// column of TDPBF16PS tiles computes, since every product of two bf16 is exact in f32.
template <GemmWeight kW>
float weight_as_bf16(const void* row, int64_t k) {
  if constexpr (kW == GemmWeight::f32) return bf16_to_f32(f32_to_bf16(static_cast<const float*>(row)[k]));
  if constexpr (kW == GemmWeight::f16)
    return bf16_to_f32(f32_to_bf16(f16_to_f32(static_cast<const uint16_t*>(row)[k])));
  return bf16_to_f32(static_cast<const uint16_t*>(row)[k]);
}

template <GemmWeight kW>
void gemm_bf16_ref(const GemmArgs& a, int64_t n_begin, int64_t n_end) noexcept {
  for (int64_t i = 0; i < a.m; ++i) {
    const uint16_t* x = a.xb + i * a.ldxb;
    for (int64_t n = n_begin; n < n_end; ++n) {
      const void* w = static_cast<const char*>(a.w) + n * a.w_stride;
      float sum = 0;
      for (int64_t k = 0; k < a.k; ++k) sum += bf16_to_f32(x[k]) * weight_as_bf16<kW>(w, k);
      a.y[i * a.ldy + n] = sum;
    }
  }
}

void round_to_bf16_ref(const float* src, uint16_t* dst, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

}  // namespace

void fill_gemm_ref(GemmTable& t) noexcept {
  const GemmKernel f32{gemm_f32_ref, "ref f32", 0, 1};
  const GemmKernel f16{gemm_half_ref<false>, "ref f16", 0, 1};
  const GemmKernel bf16{gemm_half_ref<true>, "ref bf16", 0, 1};
  t.gemv[0] = t.gemm[0] = f32;
  t.gemv[1] = t.gemm[1] = f16;
  t.gemv[2] = t.gemm[2] = bf16;
  t.gemm_bf16[0] = {gemm_bf16_ref<GemmWeight::f32>, "ref f32 (bf16 compute)", 0, 1};
  t.gemm_bf16[1] = {gemm_bf16_ref<GemmWeight::f16>, "ref f16 (bf16 compute)", 0, 1};
  t.gemm_bf16[2] = {gemm_bf16_ref<GemmWeight::bf16>, "ref bf16 (bf16 compute)", 0, 1};
  t.gemm_bf16_fast = false;
  t.gemv_max_m = 1;
  t.round_to_bf16 = round_to_bf16_ref;
}

}  // namespace qilin::cpu
