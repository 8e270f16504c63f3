#include "models/quantize.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "core/error.h"
#include "core/gguf.h"
#include "core/gguf_writer.h"
#include "core/thread_pool.h"
#include "models/gguf_export.h"
#include "models/hf_source.h"
#include "models/tensor_export.h"

namespace qilin {
namespace {

constexpr const char* kOp = "quantize";

// The input's metadata in order, with general.file_type and general.quantization_version
// set for the output (appended when the input has none) and split.* keys dropped: the
// output is one file.
void copy_metadata(const GgufFile& in, GgufWriter& writer, uint32_t file_type) {
  bool has_file_type = false, has_version = false;
  for (const auto& [key, value] : in.metadata()) {
    if (key.starts_with("split.")) continue;
    if (key == "general.file_type") {
      writer.add(key, GgufValue::u32(file_type));
      has_file_type = true;
    } else if (key == "general.quantization_version") {
      writer.add(key, GgufValue::u32(kGgmlQuantVersion));
      has_version = true;
    } else {
      writer.add(key, value);
    }
  }
  if (!has_file_type) writer.add("general.file_type", GgufValue::u32(file_type));
  if (!has_version) writer.add("general.quantization_version", GgufValue::u32(kGgmlQuantVersion));
}

// "blk.0.attn_q.weight, blk.0.attn_k.weight, ... (30 more)"
std::string some_names(const std::vector<std::string>& names, size_t shown = 3) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < shown; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > shown) s += fmt::format(", ... ({} more)", names.size() - shown);
  return s;
}

}  // namespace

QuantizeSummary quantize_model(const std::string& input, const std::string& out_path, const QuantizeOptions& options,
                               ThreadPool& pool) {
  namespace fs = std::filesystem;
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (!fs::exists(input, ec)) fail(kOp, "{}: no such file or folder", input);
  std::error_code ec_in, ec_out;
  const fs::path in_path = fs::weakly_canonical(input, ec_in), out_canonical = fs::weakly_canonical(out_path, ec_out);
  if (!ec_in && !ec_out && in_path == out_canonical) fail(kOp, "{}: the output would overwrite the input", out_path);

  QuantizeSummary summary;
  GgufWriter writer;
  std::vector<TensorExport> tensors;
  WeightTypeContext context;
  context.pure = options.pure;
  const uint32_t file_type = llama_file_type(options.type);
  std::optional<HfSource> hf;  // keeps the source mappings alive until written
  std::unique_ptr<GgufFile> gguf;
  if (fs::is_directory(input, ec)) {
    hf = HfSource::open(input, kOp);
    summary.from_gguf = false;
    summary.architecture = std::string(name_of(hf->config().family));
    context.n_layers = hf->config().n_layers;
    context.has_output = false;
    for (const HfWeight& w : hf->weights()) {
      context.has_output |= w.name == "output.weight";
      tensors.push_back({w.name, w.shape, DType::f32, w.source, w.permute_heads});
    }
    hf->add_metadata(writer, file_type);
  } else {
    gguf = std::make_unique<GgufFile>(GgufFile::open(input));
    if (gguf->get_int("split.count", 1) > 1) {
      fail(kOp, "{}: part of a split GGUF ({} files); merge it first (llama-gguf-split --merge)", input,
           gguf->get_int("split.count", 1));
    }
    summary.architecture = gguf->get_string("general.architecture", "");
    int64_t n_attn_v = 0;
    for (const GgufTensorInfo& info : gguf->tensors()) {
      n_attn_v += info.name.find("attn_v.weight") != std::string::npos;
      tensors.push_back({info.name, info.shape, DType::f32, gguf->view(info), 0});
    }
    context.n_layers = gguf->get_int(summary.architecture + ".block_count", n_attn_v);
    context.has_output = gguf->find_tensor("output.weight") != nullptr;
    copy_metadata(*gguf, writer, file_type);
  }

  // Every tensor's type, decided and checked before anything is written.
  for (TensorExport& t : tensors) {
    const DType from = t.source.dtype();
    const WeightTypeChoice choice = choose_weight_type(options.type, t.name, t.shape, from, context);
    t.out_type = choice.type;
    if (choice.fell_back()) {
      summary.fallbacks.push_back(fmt::format("{}: {} -> {} (rows of {})", t.name, name_of(choice.wanted),
                                              name_of(choice.type), t.shape.last()));
    }
    if (traits(from).is_quantized && traits(t.out_type).is_quantized && from != t.out_type) {
      summary.requantized.push_back(t.name);
    }
    ++summary.input_tensors_per_type[static_cast<size_t>(from)];
    ++summary.output_tensors_per_type[static_cast<size_t>(t.out_type)];
    const uint64_t out_bytes = row_bytes(t.out_type, t.shape.last()) * static_cast<size_t>(t.shape.rows());
    summary.output_bytes_per_type[static_cast<size_t>(t.out_type)] += out_bytes;
    summary.output_bytes += out_bytes;
    summary.elements += t.shape.numel();
    summary.input_bytes += t.source.nbytes();
  }
  if (!summary.requantized.empty()) {
    const std::string what = fmt::format("{} tensors of {} are already quantized ({})", summary.requantized.size(),
                                         input, some_names(summary.requantized));
    if (!options.allow_requantize) {
      fail(kOp,
           "{} and would be requantized to {}; requantizing adds a second rounding error, so the result is less "
           "accurate than quantizing the original f16/f32 weights: use those, or allow it (--allow-requantize)",
           what, name_of(options.type));
    }
    if (options.warning) {
      options.warning(
          fmt::format("{}: requantizing them to {} loses accuracy compared with quantizing the original "
                      "f16/f32 weights",
                      what, name_of(options.type)));
    }
  }

  uint64_t bytes_done = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorExport& t = tensors[i];
    writer.add_tensor(t.name, t.shape, t.out_type, [&, i](std::span<uint8_t> dst) {
      if (options.progress) {
        options.progress({i, tensors.size(), t.name, t.source.dtype(), t.out_type, bytes_done, summary.output_bytes});
      }
      if (exports_as_stored(t)) {
        std::memcpy(dst.data(), t.source.data(), dst.size());
      } else {
        export_rows(t, dst, pool);
      }
      bytes_done += dst.size();
    });
  }
  writer.write(out_path);
  if (options.progress) {
    options.progress({tensors.size(), tensors.size(), {}, DType::f32, DType::f32, bytes_done, summary.output_bytes});
  }

  summary.tensors = static_cast<int64_t>(tensors.size());
  summary.file_bytes = fs::file_size(out_path, ec);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace qilin
