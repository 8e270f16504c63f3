#include "core/dtype.h"

#include <cstring>

#include "core/half.h"
#include "core/quant.h"
#include "core/quant_blocks.h"

namespace qilin {
namespace {

void f32_to_float(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void f32_from_float(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void f16_to_float(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
}
void f16_from_float(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
}
void bf16_to_float(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
}
void bf16_from_float(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
}
void i8_to_float(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const int8_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
}
void i32_to_float(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const int32_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
}

// GGUF type ids from the GGUF specification (ggml_type).
constexpr DTypeTraits kTraits[kDTypeCount] = {
    {"f32", 1, 4, false, true, 0, f32_to_float, f32_from_float},
    {"f16", 1, 2, false, true, 1, f16_to_float, f16_from_float},
    {"bf16", 1, 2, false, true, 30, bf16_to_float, bf16_from_float},
    {"i8", 1, 1, false, false, 24, i8_to_float, nullptr},
    {"i32", 1, 4, false, false, 26, i32_to_float, nullptr},
    {"q8_0", kQK, sizeof(BlockQ8_0), true, false, 8, dequantize_row_q8_0, quantize_row_q8_0},
    {"q4_0", kQK, sizeof(BlockQ4_0), true, false, 2, dequantize_row_q4_0, quantize_row_q4_0},
    {"q4_1", kQK, sizeof(BlockQ4_1), true, false, 3, dequantize_row_q4_1, quantize_row_q4_1},
    {"q4_k", kQKK, sizeof(BlockQ4_K), true, false, 12, dequantize_row_q4_k, quantize_row_q4_k},
    {"q6_k", kQKK, sizeof(BlockQ6_K), true, false, 14, dequantize_row_q6_k, quantize_row_q6_k},
};

}  // namespace

const DTypeTraits& traits(DType t) noexcept { return kTraits[static_cast<int>(t)]; }

bool dtype_from_name(std::string_view name, DType* out) noexcept {
  for (int i = 0; i < kDTypeCount; ++i) {
    if (kTraits[i].name == name) {
      *out = static_cast<DType>(i);
      return true;
    }
  }
  return false;
}

bool dtype_from_gguf(uint32_t gguf_type, DType* out) noexcept {
  for (int i = 0; i < kDTypeCount; ++i) {
    if (kTraits[i].gguf_type == gguf_type) {
      *out = static_cast<DType>(i);
      return true;
    }
  }
  return false;
}

}  // namespace qilin
