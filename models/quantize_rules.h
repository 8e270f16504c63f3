// Which type each tensor gets when a model is quantized: llama.cpp's rules
// (llama_tensor_get_type and tensor_type_fallback in src/llama-quant.cpp) for the
// types Qilin has, so a Qilin q4_0 or q4_k_m file holds what llama-quantize's would.
//
//   - 1-D tensors (norms, biases) are f32; 2-D tensors that are not weights to
//     quantize (names not ending in "weight", *_norm.weight) keep their type.
//   - f32, f16, bf16: every weight in that type.
//   - Block types, unless `pure`: the output matrix (output.weight, or token_embd.weight
//     when the model has none: tied embeddings) becomes q6_k, or q8_0 when the base type
//     is q8_0 or its rows are not whole blocks of the base type.
//   - q4_k_m: q4_k, except attn_v and ffn_down of the layers uses_more_bits picks, q6_k.
//   - Fallback for rows that are not whole blocks: q6_k -> q8_0 (as llama.cpp);
//     q4_k -> q4_1 (llama.cpp takes q5_0, which Qilin lacks: q4_1 is the nearest 32-block
//     type in size, 5.0 bits per weight against q5_0's 5.5, so a "q4_k_m" of a model with
//     576- or 896-wide rows stays a 4-bit file rather than growing to q8_0's size);
//     32-block types and any type still not fitting -> f16 (llama.cpp: f16 too).
#pragma once

#include <cstdint>
#include <string_view>

#include "core/dtype.h"
#include "core/tensor.h"

namespace qilin {

// An output type of `qilin-quantize`: one type for the weights, or llama.cpp's Q4_K_M mix.
enum class QuantType : uint8_t { f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k, q4_k_m };

// "q4_k_m", "q8_0", ... (lower case, llama.cpp's spelling); false for other names.
bool quant_type_from_name(std::string_view name, QuantType* out) noexcept;
std::string_view name_of(QuantType t) noexcept;
// The type most weights get: the type itself, q4_k for q4_k_m.
DType base_dtype(QuantType t) noexcept;
// general.file_type: llama.cpp's llama_ftype (gguf_file_type of the base type; 15 for
// LLAMA_FTYPE_MOSTLY_Q4_K_M).
uint32_t llama_file_type(QuantType t);

// What the rules need to know about the whole model.
struct WeightTypeContext {
  int64_t n_layers = 0;    // <arch>.block_count
  bool has_output = true;  // false: token_embd doubles as the output matrix (tied embeddings)
  bool pure = false;       // llama-quantize --pure: no per-tensor rules (the fallback still applies)
};

struct WeightTypeChoice {
  DType type;    // what the tensor is written as
  DType wanted;  // what the rules asked for before the fallback
  bool fell_back() const noexcept { return type != wanted; }
};

// The type of tensor `name` (GGUF name, e.g. "blk.3.attn_v.weight") of shape `shape`
// stored as `source`, when the model is quantized to `t`.
WeightTypeChoice choose_weight_type(QuantType t, std::string_view name, const Shape& shape, DType source,
                                    const WeightTypeContext& context);

// llama.cpp's use_more_bits: the first and last eighth of the layers, and every third
// layer in between, get more bits in the _M mixes.
bool uses_more_bits(int64_t layer, int64_t n_layers) noexcept;

// The type that holds rows of `row_length` elements when `wanted` cannot (see above);
// `wanted` itself when it can.
DType fallback_type(DType wanted, int64_t row_length) noexcept;

}  // namespace qilin
