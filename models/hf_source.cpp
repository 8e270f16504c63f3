#include "models/hf_source.h"

#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/gguf_writer.h"
#include "core/safetensors.h"
#include "models/gguf_export.h"
#include "models/tensor_names.h"

namespace qilin {
namespace {

// BOS/EOS ids for the file: config.json's, unless the tokenizer adds its own BOS/EOS
// to every encoding (then that token must be the one the file names).
void pick_token_ids(const ModelConfig& c, const TokenizerConfig* t, int32_t* bos, int32_t* eos) {
  *bos = c.bos_id;
  *eos = c.eos_id;
  if (t == nullptr) return;
  if ((t->add_bos && t->bos_id >= 0) || *bos < 0) *bos = t->bos_id;
  if ((t->add_eos && t->eos_id >= 0) || *eos < 0) *eos = t->eos_id;
}

}  // namespace

HfSource::~HfSource() = default;
HfSource::HfSource(HfSource&&) noexcept = default;
HfSource& HfSource::operator=(HfSource&&) noexcept = default;

HfSource HfSource::open(const std::string& folder, std::string_view op_name) {
  namespace fs = std::filesystem;
  const std::string op(op_name);
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) fail(op, "{}: not a folder", folder);

  HfSource s;
  s.folder_ = folder;
  s.op_ = op;
  s.config_ = ModelConfig::from_hf_folder(folder);
  const ModelConfig& c = s.config_;
  s.model_ = std::make_unique<SafetensorsModel>(SafetensorsModel::open(folder));
  const SafetensorsModel& model = *s.model_;

  // Every HF tensor is either a weight the config expects, or a known non-weight.
  const std::vector<TensorSpec> specs = expected_tensors(c);
  std::map<std::string, std::string, std::less<>> hf_of;  // GGUF name -> HF name
  for (const TensorSpec& spec : specs) hf_of[spec.name];
  for (const std::string& hf : model.tensor_names()) {
    const std::string name = gguf_name_from_hf(c.family, hf);
    const auto it = hf_of.find(name);
    if (is_hf_buffer(hf) || (name == "output.weight" && c.tied_embeddings)) {
      s.skipped_.push_back(hf);  // tied: lm_head duplicates the embedding
    } else if (name.empty()) {
      fail(op, "{}: tensor {} is not a weight of a {} model", folder, hf, name_of(c.family));
    } else if (it == hf_of.end()) {
      fail(op, "{}: tensor {} ({}) is not expected for this config (qkv_bias={}, qk_norm={}, tied={})", folder, hf,
           name, c.qkv_bias, c.qk_norm, c.tied_embeddings);
    } else if (!it->second.empty()) {
      fail(op, "{}: tensors {} and {} both map to {}", folder, it->second, hf, name);
    } else {
      it->second = hf;
    }
  }

  for (const TensorSpec& spec : specs) {
    const std::string& hf = hf_of[spec.name];
    if (hf.empty()) {
      fail(op, "{}: tensor {} ({}) is missing", folder, hf_name_from_gguf(c.family, spec.name), spec.name);
    }
    const SafetensorsTensorInfo& info = model.require_tensor(hf);
    if (!info.loadable()) fail(op, "{}: tensor {}: {}", folder, hf, info.unsupported);
    if (info.dtype != DType::f32 && info.dtype != DType::f16 && info.dtype != DType::bf16) {
      fail(op, "{}: tensor {} is {}; only F32, F16 and BF16 weights can be converted", folder, hf, info.dtype_name);
    }
    if (!(info.shape == spec.shape)) {
      fail(op, "{}: tensor {} is {} but config.json implies {}", folder, hf, info.shape.str(), spec.shape.str());
    }
    HfWeight w{spec.name, spec.shape, model.view(hf), 0};
    if (c.family == ModelFamily::llama) {
      if (spec.name.ends_with(".attn_q.weight")) w.permute_heads = c.n_heads;
      if (spec.name.ends_with(".attn_k.weight")) w.permute_heads = c.n_kv_heads;
    }
    s.weights_.push_back(std::move(w));
  }

  const fs::path tokenizer_json = fs::path(folder) / "tokenizer.json";
  if (fs::is_regular_file(tokenizer_json, ec)) s.tokenizer_ = tokenizer_config_from_json_file(tokenizer_json.string());
  return s;
}

void HfSource::add_metadata(GgufWriter& writer, uint32_t file_type) const {
  add_model_metadata(writer, config_, file_type);
  int32_t bos = -1, eos = -1;
  pick_token_ids(config_, tokenizer_ ? &*tokenizer_ : nullptr, &bos, &eos);
  if (!tokenizer_) {
    add_token_ids(writer, bos, eos);
    return;
  }
  try {
    add_tokenizer_metadata(writer, *tokenizer_, config_.family, config_.vocab_size, bos, eos);
  } catch (const Error& e) {
    fail(op_, "{}: {}", (std::filesystem::path(folder_) / "tokenizer.json").string(), e.what());
  }
}

}  // namespace qilin
