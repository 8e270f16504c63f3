// Hugging Face model folder -> GGUF file, following llama.cpp's convert_hf_to_gguf.py
// so that other GGUF tools read the result:
//   - metadata: general.*, <arch>.* hyper-parameters, tokenizer.ggml.* (models/gguf_export.h);
//   - tensors under llama.cpp's names (models/tensor_names.h), checked against the config;
//   - the llama family's Q/K rows permuted as llama.cpp's LlamaModel.permute does, so RoPE
//     pairs dimensions (2i, 2i+1) in the file (ModelConfig::rope_interleaved);
//   - weights in the output type; 1-D tensors (norms, biases) stay f32; a 2-D weight
//     whose rows are not whole blocks of a quantized type is written as f16.
// Everything is checked before the first byte is written; the file appears under its
// name only when complete (GgufWriter writes "<out>.partial" and renames it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "models/model_config.h"

namespace qilin {

class ThreadPool;

struct ConvertOptions {
  DType weight_type = DType::f16;  // f32, f16, bf16, q8_0, q4_0 or q4_1
  // Called after each tensor is written: bytes of tensor data written so far, and in total.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct ConvertSummary {
  ModelConfig config;
  int64_t tensors = 0;
  uint64_t file_bytes = 0;
  double seconds = 0.0;
  std::vector<std::string> f16_fallback;  // weights written as f16: rows not whole blocks
  std::vector<std::string> skipped;       // HF tensors left out (buffers, lm_head of a tied model)
  bool has_tokenizer = false;             // false: the folder had no tokenizer.json
};

// Converts `folder` (config.json, model.safetensors or sharded with
// model.safetensors.index.json, optionally tokenizer.json + tokenizer_config.json)
// into `out_path`, quantizing rows in parallel on `pool`. Throws qilin::Error naming
// the folder and the problem (missing config.json, unknown architecture, missing or
// unexpected tensor, wrong shape, unsupported dtype, unsupported tokenizer); no file
// is left behind on failure.
ConvertSummary convert_hf_to_gguf(const std::string& folder, const std::string& out_path, const ConvertOptions& options,
                                  ThreadPool& pool);

// The output types convert accepts, by name ("f16", "q8_0", ...); false for others.
bool convert_type_from_name(std::string_view name, DType* out) noexcept;

}  // namespace qilin
