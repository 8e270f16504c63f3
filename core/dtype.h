// Element types and the GGUF block formats, described by one traits table.
//
// A new quant format is one enum value, one row in the table (dtype.cpp) and
// its dequantize/quantize row functions (quant.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qilin {

enum class DType : uint8_t {
  f32,
  f16,
  bf16,
  i8,
  i32,
  q8_0,  // 32 x int8 + f16 scale                        (34 bytes / 32)
  q4_0,  // 32 x 4-bit (offset 8) + f16 scale             (18 bytes / 32)
  q4_1,  // 32 x 4-bit + f16 scale + f16 min              (20 bytes / 32)
  q4_k,  // 256-element super-block, 8 sub-blocks of 32   (144 bytes / 256)
  q6_k,  // 256-element super-block, 16 sub-blocks of 16  (210 bytes / 256)
};
inline constexpr int kDTypeCount = 10;

// Dequantize / quantize `n` elements; `n` is a multiple of the block size.
using ToFloatRowFn = void (*)(const void* src, float* dst, int64_t n);
using FromFloatRowFn = void (*)(const float* src, void* dst, int64_t n);

struct DTypeTraits {
  std::string_view name;      // "f32", "q4_k", ... (the GGUF/llama.cpp spelling, lower case)
  int64_t block_size;         // elements per block; 1 for plain types
  size_t block_bytes;         // bytes per block (= element size for plain types)
  bool is_quantized;          // a block format with scales
  bool is_float;              // f32/f16/bf16
  uint32_t gguf_type;         // ggml_type id used in GGUF files
  ToFloatRowFn to_float;      // exact conversion to f32 (integer types convert by value)
  FromFloatRowFn from_float;  // reference quantizer / rounding conversion; null for i8/i32
};

const DTypeTraits& traits(DType t) noexcept;

inline std::string_view name_of(DType t) noexcept { return traits(t).name; }

// Bytes taken by `n` consecutive elements; `n` must be a multiple of the block size.
inline size_t row_bytes(DType t, int64_t n) noexcept {
  const DTypeTraits& tr = traits(t);
  return static_cast<size_t>(n / tr.block_size) * tr.block_bytes;
}

// Looks a type up by its name or by GGUF type id; false when unknown.
bool dtype_from_name(std::string_view name, DType* out) noexcept;
bool dtype_from_gguf(uint32_t gguf_type, DType* out) noexcept;

}  // namespace qilin
