// Quantizing a model: a GGUF file (f32/f16/bf16 tensors, or already quantized ones) or
// a Hugging Face folder -> a GGUF file whose weights are in the types that
// models/quantize_rules.h picks, like llama.cpp's llama-quantize:
//   - metadata copied in order (a Hugging Face folder's written as convert does),
//     general.file_type set to llama.cpp's code for the type, general.quantization_version 2;
//   - tensors in the input's order, each read as stored, dequantized to f32 when its type
//     changes and quantized with core's reference quantizers (rows split over the pool);
//     a tensor already in its output type is copied byte for byte;
//   - a quantized tensor whose output type is another block type is requantized only with
//     allow_requantize (the rounding errors of both formats add up); dequantizing to
//     f32/f16/bf16 is always allowed.
// Everything is decided and checked before the first byte is written; the output appears
// under its name only when complete (GgufWriter writes "<out>.partial" and renames it).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "models/quantize_rules.h"

namespace qilin {

class ThreadPool;

struct QuantizeProgress {
  size_t index = 0;  // tensor about to be written, 0-based
  size_t count = 0;  // tensors in the file
  std::string_view name;
  DType from = DType::f32, to = DType::f32;
  uint64_t bytes_done = 0;   // output tensor bytes written before this tensor
  uint64_t bytes_total = 0;  // output tensor bytes in all
};

struct QuantizeOptions {
  QuantType type = QuantType::q8_0;
  bool pure = false;              // no per-tensor rules (llama-quantize --pure)
  bool allow_requantize = false;  // quantized input tensors may become another block type
  // Called before each tensor is written, and once more at the end with index == count.
  std::function<void(const QuantizeProgress&)> progress;
  // Called before writing starts, for what the user should know (requantized tensors).
  std::function<void(const std::string&)> warning;
};

struct QuantizeSummary {
  std::string architecture;
  bool from_gguf = true;  // false: a Hugging Face folder
  int64_t tensors = 0;
  std::array<int64_t, kDTypeCount> input_tensors_per_type{};
  std::array<int64_t, kDTypeCount> output_tensors_per_type{};
  std::array<uint64_t, kDTypeCount> output_bytes_per_type{};
  int64_t elements = 0;                  // in all tensors
  uint64_t input_bytes = 0;              // tensor data as stored in the input
  uint64_t output_bytes = 0;             // tensor data written (without alignment padding)
  uint64_t file_bytes = 0;               // the output file
  std::vector<std::string> fallbacks;    // "name: q4_k -> q4_1 (rows of 576)"
  std::vector<std::string> requantized;  // quantized tensors written as another block type
  double seconds = 0.0;

  double input_bits_per_weight() const noexcept { return elements ? 8.0 * double(input_bytes) / double(elements) : 0; }
  double output_bits_per_weight() const noexcept {
    return elements ? 8.0 * double(output_bytes) / double(elements) : 0;
  }
};

// Quantizes `input` (a .gguf file or a Hugging Face folder) into `out_path` on `pool`.
// Throws qilin::Error starting with [quantize] and naming the file: unreadable or corrupt
// input, split GGUF files, requantization without allow_requantize, out_path equal to the
// input; no file is left behind on failure.
QuantizeSummary quantize_model(const std::string& input, const std::string& out_path, const QuantizeOptions& options,
                               ThreadPool& pool);

}  // namespace qilin
