// A Hugging Face model folder opened for writing as GGUF (convert, quantize): the
// config, every weight the config expects under its llama.cpp name with the rows it
// comes from, and the tokenizer — all checked before anything is written.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "models/model_config.h"
#include "models/tokenizer/tokenizer.h"

namespace qilin {

class GgufWriter;
class SafetensorsModel;

struct HfWeight {
  std::string name;           // GGUF name
  Shape shape;                // as config.json implies (outermost first)
  TensorView source;          // F32, F16 or BF16 view into the folder's mapping
  int64_t permute_heads = 0;  // llama Q/K: rows permuted over this many heads in the file
};

class HfSource {
 public:
  // Opens `folder` (config.json, model.safetensors or sharded with
  // model.safetensors.index.json, optionally tokenizer.json + tokenizer_config.json).
  // Throws qilin::Error starting with [op] and naming the folder: missing config.json,
  // unknown architecture, missing or unexpected tensor, wrong shape, unsupported dtype.
  static HfSource open(const std::string& folder, std::string_view op);
  ~HfSource();
  HfSource(HfSource&&) noexcept;
  HfSource& operator=(HfSource&&) noexcept;

  const std::string& folder() const noexcept { return folder_; }
  const ModelConfig& config() const noexcept { return config_; }
  // Every weight in expected_tensors(config) order (token_embd, blk.0.*, ..., output).
  const std::vector<HfWeight>& weights() const noexcept { return weights_; }
  // Tensors of the folder left out: buffers, and lm_head of a tied model.
  const std::vector<std::string>& skipped() const noexcept { return skipped_; }
  bool has_tokenizer() const noexcept { return tokenizer_.has_value(); }

  // general.*, <arch>.* and tokenizer.ggml.* metadata (models/gguf_export.h), with
  // general.file_type = file_type. Throws (naming tokenizer.json) for a tokenizer GGUF
  // cannot hold: SentencePiece, or more ids than the model's vocab_size.
  void add_metadata(GgufWriter& writer, uint32_t file_type) const;

 private:
  HfSource() = default;

  std::string folder_, op_;
  ModelConfig config_;
  std::unique_ptr<SafetensorsModel> model_;
  std::vector<HfWeight> weights_;
  std::vector<std::string> skipped_;
  std::optional<TokenizerConfig> tokenizer_;
};

}  // namespace qilin
