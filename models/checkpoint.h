// Checkpoint: a model's weights and hyper-parameters as stored on disk — a GGUF
// file or a Hugging Face folder of safetensors — behind one lookup by GGUF
// tensor name (models/tensor_names.h maps Hugging Face names onto those).
// Tensors are views into the read-only file mappings: nothing is copied here.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/tensor.h"
#include "models/model_config.h"

namespace qilin {

class GgufFile;
class SafetensorsModel;
class Tokenizer;

class Checkpoint {
 public:
  enum class Format { gguf, safetensors };

  // `path` is a .gguf file or a Hugging Face model folder (config.json + *.safetensors).
  static Checkpoint open(const std::string& path);
  ~Checkpoint();
  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;

  Format format() const noexcept { return format_; }
  const std::string& path() const noexcept { return path_; }
  const ModelConfig& config() const noexcept { return config_; }

  // The tensor stored under this GGUF name, or nullptr.
  const TensorView* find(std::string_view gguf_name) const noexcept;
  // Throws qilin::Error naming the checkpoint and the tensor when it is missing.
  const TensorView& require(std::string_view gguf_name) const;
  size_t tensor_count() const noexcept { return tensors_.size(); }

  // For a weight the model holds its own copy or repack of: drops the tensor's
  // pages from the process's resident set (read again from the file if ever
  // touched), so resident memory counts each weight once. Views not in a file
  // mapping (e.g. weights dequantized at load) are left alone.
  void release_pages(const TensorView& view) const noexcept;

  // The tokenizer stored with the weights: GGUF tokenizer.ggml.* metadata, or the
  // folder's tokenizer.json (+ tokenizer_config.json). nullopt when there is none
  // (GGUF tokenizer.ggml.model "no_vocab", or a folder without tokenizer.json).
  std::optional<Tokenizer> load_tokenizer() const;

  const GgufFile* gguf() const noexcept { return gguf_.get(); }

 private:
  Checkpoint() = default;

  Format format_ = Format::gguf;
  std::string path_;
  ModelConfig config_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<SafetensorsModel> safetensors_;
  std::map<std::string, TensorView, std::less<>> tensors_;
};

}  // namespace qilin
