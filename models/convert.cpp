#include "models/convert.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/gguf_writer.h"
#include "core/thread_pool.h"
#include "models/gguf_export.h"
#include "models/hf_source.h"
#include "models/tensor_export.h"

namespace qilin {
namespace {

constexpr DType kOutputTypes[] = {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_1};

bool is_output_type(DType t) {
  return std::find(std::begin(kOutputTypes), std::end(kOutputTypes), t) != std::end(kOutputTypes);
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
  if (!is_output_type(options.weight_type)) {
    fail("convert", "output type {} is not supported (f32, f16, bf16, q8_0, q4_0, q4_1)", name_of(options.weight_type));
  }
  const HfSource source = HfSource::open(folder, "convert");
  ConvertSummary summary;
  summary.config = source.config();
  summary.skipped = source.skipped();

  std::vector<TensorExport> tensors;
  for (const HfWeight& w : source.weights()) {
    TensorExport t{w.name, w.shape, options.weight_type, w.source, w.permute_heads};
    if (w.shape.ndim == 1) {
      t.out_type = DType::f32;  // norms and biases, as llama.cpp keeps them
    } else if (w.shape.last() % traits(t.out_type).block_size != 0) {
      t.out_type = DType::f16;
      summary.f16_fallback.push_back(w.name);
    }
    tensors.push_back(std::move(t));
  }

  GgufWriter writer;
  source.add_metadata(writer, gguf_file_type(options.weight_type));
  summary.has_tokenizer = source.has_tokenizer();
  for (const TensorExport& t : tensors) add_export_tensor(writer, t, pool);
  writer.write(out_path, options.progress);

  std::error_code ec;
  summary.tensors = static_cast<int64_t>(tensors.size());
  summary.file_bytes = fs::file_size(out_path, ec);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace qilin
