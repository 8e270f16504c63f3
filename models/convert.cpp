#include "models/convert.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/gguf_writer.h"
#include "core/safetensors.h"
#include "core/thread_pool.h"
#include "models/gguf_export.h"
#include "models/tensor_names.h"
#include "models/tokenizer/tokenizer.h"

namespace qilin {
namespace {

constexpr DType kOutputTypes[] = {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_1};

// One tensor of the output: where its rows come from and what they become.
struct TensorPlan {
  std::string name;  // GGUF
  Shape shape;
  DType out_type;
  TensorView source;          // the safetensors view (F32, F16 or BF16)
  int64_t permute_heads = 0;  // > 0: llama Q/K rows permuted over this many heads
};

// llama.cpp's LlamaModel.permute: w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).
// Output row h*hd + 2i + s comes from source row h*hd + s*hd/2 + i (hd = rows / n_head),
// so the two halves that Hugging Face's rotate_half pairs become adjacent rows.
int64_t permuted_source_row(int64_t row, int64_t head_dim) {
  const int64_t head = row / head_dim, within = row % head_dim;
  return head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
}

// Writes `plan`'s rows into dst, converting each row through f32 unless the types match.
void produce_rows(const TensorPlan& plan, std::span<uint8_t> dst, ThreadPool& pool) {
  const int64_t rows = plan.shape.rows(), cols = plan.shape.last();
  const DType src_type = plan.source.dtype();
  const size_t src_row = row_bytes(src_type, cols), dst_row = row_bytes(plan.out_type, cols);
  const auto* src = static_cast<const uint8_t*>(plan.source.data());
  const int64_t head_dim = plan.permute_heads > 0 ? rows / plan.permute_heads : 0;
  const size_t n_scratch = static_cast<size_t>(pool.size());
  // Per thread: one f32 row, and one aligned copy of a source row (safetensors data is
  // aligned only as far as the tensors before it keep it).
  std::vector<float> f32_rows(n_scratch * static_cast<size_t>(cols));
  std::vector<float> raw_rows(n_scratch * ((src_row + sizeof(float) - 1) / sizeof(float)));
  const size_t raw_stride = raw_rows.size() / n_scratch;
  const bool aligned = reinterpret_cast<uintptr_t>(src) % 4 == 0 && src_row % 4 == 0;
  const DTypeTraits& from = traits(src_type);
  const DTypeTraits& to = traits(plan.out_type);
  const auto convert = [&](int64_t begin, int64_t end, size_t slot) noexcept {
    float* f32 = f32_rows.data() + slot * static_cast<size_t>(cols);
    float* raw = raw_rows.data() + slot * raw_stride;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t s = head_dim > 0 ? permuted_source_row(r, head_dim) : r;
      const uint8_t* in = src + static_cast<size_t>(s) * src_row;
      uint8_t* out = dst.data() + static_cast<size_t>(r) * dst_row;
      if (src_type == plan.out_type) {
        std::memcpy(out, in, src_row);
        continue;
      }
      if (!aligned) {
        std::memcpy(raw, in, src_row);
        in = reinterpret_cast<const uint8_t*>(raw);
      }
      from.to_float(in, f32, cols);
      to.from_float(f32, out, cols);
    }
  };
  if (rows < 2 * pool.size()) {
    convert(0, rows, 0);
    return;
  }
  pool.run([&](int t, int nt) {
    const int64_t begin = rows * t / nt, end = rows * (t + 1) / nt;
    convert(begin, end, static_cast<size_t>(t));
  });
}

bool is_output_type(DType t) {
  return std::find(std::begin(kOutputTypes), std::end(kOutputTypes), t) != std::end(kOutputTypes);
}

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

bool convert_type_from_name(std::string_view name, DType* out) noexcept {
  DType t;
  if (!dtype_from_name(name, &t) || !is_output_type(t)) return false;
  *out = t;
  return true;
}

ConvertSummary convert_hf_to_gguf(const std::string& folder, const std::string& out_path, const ConvertOptions& options,
                                  ThreadPool& pool) {
  namespace fs = std::filesystem;
  const auto start = std::chrono::steady_clock::now();
  const std::string op = "convert";
  if (!is_output_type(options.weight_type)) {
    fail(op, "output type {} is not supported (f32, f16, bf16, q8_0, q4_0, q4_1)", name_of(options.weight_type));
  }
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) fail(op, "{}: not a folder", folder);

  ConvertSummary summary;
  summary.config = ModelConfig::from_hf_folder(folder);
  const ModelConfig& c = summary.config;
  if (c.family == ModelFamily::glm4) fail(op, "{}: converting the glm4 family is not supported yet", folder);
  const SafetensorsModel model = SafetensorsModel::open(folder);

  // Every HF tensor is either a weight the config expects, or a known non-weight.
  const std::vector<TensorSpec> specs = expected_tensors(c);
  std::map<std::string, std::string, std::less<>> hf_of;  // GGUF name -> HF name
  for (const TensorSpec& s : specs) hf_of[s.name];
  for (const std::string& hf : model.tensor_names()) {
    const std::string name = gguf_name_from_hf(c.family, hf);
    const auto it = hf_of.find(name);
    if (is_hf_buffer(hf) || (name == "output.weight" && c.tied_embeddings)) {
      summary.skipped.push_back(hf);  // tied: lm_head duplicates the embedding
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

  std::vector<TensorPlan> plans;
  for (const TensorSpec& s : specs) {
    const std::string& hf = hf_of[s.name];
    if (hf.empty()) {
      fail(op, "{}: tensor {} ({}) is missing", folder, hf_name_from_gguf(c.family, s.name), s.name);
    }
    const SafetensorsTensorInfo& info = model.require_tensor(hf);
    if (!info.loadable()) fail(op, "{}: tensor {}: {}", folder, hf, info.unsupported);
    if (info.dtype != DType::f32 && info.dtype != DType::f16 && info.dtype != DType::bf16) {
      fail(op, "{}: tensor {} is {}; only F32, F16 and BF16 weights can be converted", folder, hf, info.dtype_name);
    }
    if (!(info.shape == s.shape)) {
      fail(op, "{}: tensor {} is {} but config.json implies {}", folder, hf, info.shape.str(), s.shape.str());
    }
    TensorPlan p{s.name, s.shape, options.weight_type, model.view(hf), 0};
    if (s.shape.ndim == 1) {
      p.out_type = DType::f32;  // norms and biases, as llama.cpp keeps them
    } else if (s.shape.last() % traits(p.out_type).block_size != 0) {
      p.out_type = DType::f16;
      summary.f16_fallback.push_back(s.name);
    }
    if (c.family == ModelFamily::llama) {
      if (s.name.ends_with(".attn_q.weight")) p.permute_heads = c.n_heads;
      if (s.name.ends_with(".attn_k.weight")) p.permute_heads = c.n_kv_heads;
    }
    plans.push_back(std::move(p));
  }

  GgufWriter writer;
  add_model_metadata(writer, c, options.weight_type);
  const fs::path tokenizer_json = fs::path(folder) / "tokenizer.json";
  int32_t bos = -1, eos = -1;
  if (fs::is_regular_file(tokenizer_json, ec)) {
    const TokenizerConfig tokenizer = tokenizer_config_from_json_file(tokenizer_json.string());
    pick_token_ids(c, &tokenizer, &bos, &eos);
    try {
      add_tokenizer_metadata(writer, tokenizer, c.vocab_size, bos, eos);
    } catch (const Error& e) {
      fail(op, "{}: {}", tokenizer_json.string(), e.what());
    }
    summary.has_tokenizer = true;
  } else {
    pick_token_ids(c, nullptr, &bos, &eos);
    add_token_ids(writer, bos, eos);
  }

  for (const TensorPlan& p : plans) {
    if (p.out_type == p.source.dtype() && p.permute_heads == 0) {
      writer.add_tensor(p.name, p.shape, p.out_type, static_cast<const void*>(p.source.data()));  // as stored
    } else {
      writer.add_tensor(p.name, p.shape, p.out_type,
                        [&p, &pool](std::span<uint8_t> dst) { produce_rows(p, dst, pool); });
    }
  }
  writer.write(out_path, options.progress);

  summary.tensors = static_cast<int64_t>(plans.size());
  summary.file_bytes = fs::file_size(out_path, ec);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace qilin
