#include "models/checkpoint.h"

#include <filesystem>

#include "core/error.h"
#include "core/gguf.h"
#include "core/safetensors.h"
#include "models/tensor_names.h"
#include "models/tokenizer/tokenizer.h"

namespace qilin {

Checkpoint::~Checkpoint() = default;
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;

Checkpoint Checkpoint::open(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("checkpoint", "{}: no such file or folder", path);
  Checkpoint c;
  c.path_ = path;
  if (fs::is_directory(path, ec)) {
    c.format_ = Format::safetensors;
    c.config_ = ModelConfig::from_hf_folder(path);
    c.safetensors_ = std::make_unique<SafetensorsModel>(SafetensorsModel::open(path));
    for (const std::string& hf_name : c.safetensors_->tensor_names()) {
      std::string name = gguf_name_from_hf(c.config_.family, hf_name);
      if (name.empty()) continue;  // not a model weight (e.g. rotary inv_freq buffers)
      c.tensors_.emplace(std::move(name), c.safetensors_->view(hf_name));
    }
  } else {
    c.format_ = Format::gguf;
    c.gguf_ = std::make_unique<GgufFile>(GgufFile::open(path));
    c.config_ = ModelConfig::from_gguf(*c.gguf_);
    for (const GgufTensorInfo& info : c.gguf_->tensors()) c.tensors_.emplace(info.name, c.gguf_->view(info));
  }
  if (c.config_.name.empty()) c.config_.name = fs::path(path).filename().string();
  return c;
}

void Checkpoint::release_pages(const TensorView& view) const noexcept {
  if (gguf_ != nullptr) gguf_->release_pages(view);
  if (safetensors_ != nullptr) {
    for (const SafetensorsFile& shard : safetensors_->shards()) shard.release_pages(view);
  }
}

const TensorView* Checkpoint::find(std::string_view gguf_name) const noexcept {
  const auto it = tensors_.find(gguf_name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& Checkpoint::require(std::string_view gguf_name) const {
  const TensorView* t = find(gguf_name);
  if (t == nullptr) {
    fail("checkpoint", "{}: tensor {} is missing ({} model, {} tensors in the file)", path_, gguf_name,
         name_of(config_.family), tensors_.size());
  }
  return *t;
}

std::optional<Tokenizer> Checkpoint::load_tokenizer() const {
  if (gguf_) {
    const std::string model = gguf_->get_string("tokenizer.ggml.model", "no_vocab");
    if (model == "no_vocab" || model == "none") return std::nullopt;
    return Tokenizer::from_gguf(*gguf_);
  }
  const std::filesystem::path json = std::filesystem::path(path_) / "tokenizer.json";
  std::error_code ec;
  if (!std::filesystem::exists(json, ec)) return std::nullopt;
  return Tokenizer::from_json_file(json.string());
}

}  // namespace qilin
