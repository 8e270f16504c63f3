#include "common/random_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "core/error.h"
#include "core/gguf_writer.h"
#include "core/thread_pool.h"
#include "models/gguf_export.h"

namespace qilin::tools {
namespace {

const std::array<RandomModelShape, 5> kShapes = {{
    // name, arch, d_model, layers, heads, kv heads, d_ff, vocab, rope theta, qkv bias, tied
    {"smollm2-135m", "llama", 576, 30, 9, 3, 1536, 49152, 100000.0f, false, true},
    {"qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 1000000.0f, true, true},
    {"qwen2.5-1.5b", "qwen2", 1536, 28, 12, 2, 8960, 151936, 1000000.0f, true, true},
    {"qwen2.5-7b", "qwen2", 3584, 28, 28, 4, 18944, 152064, 1000000.0f, true, false},
    {"llama-3-8b", "llama", 4096, 32, 32, 8, 14336, 128256, 500000.0f, false, false},
}};

// Rows start at multiples of this in the pool: every block size divides it, so a
// window of the quantized pool is a run of whole blocks.
constexpr int64_t kWindowAlign = 256;
constexpr int64_t kPoolFloats = int64_t{1} << 22;

// The pool of random floats (kPoolFloats, then its first `tail` again, so a window
// never wraps) and the same floats in each type a tensor needs.
class ValuePool {
 public:
  ValuePool(uint64_t seed, int64_t tail) : floats_(static_cast<size_t>(kPoolFloats + tail)) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    for (int64_t i = 0; i < kPoolFloats; ++i) floats_[static_cast<size_t>(i)] = normal(rng);
    std::copy_n(floats_.begin(), tail, floats_.begin() + kPoolFloats);
  }

  // Encodes the pool in `type` (once), quantizing blocks on the pool's threads.
  void prepare(DType type, ThreadPool& pool) {
    if (encoded_.count(type)) return;
    const auto n = static_cast<int64_t>(floats_.size());
    std::vector<uint8_t>& out = encoded_[type];
    out.resize(row_bytes(type, n));
    const DTypeTraits& tr = traits(type);
    pool.parallel_for(n / kWindowAlign, 64, [&](int64_t b, int64_t e) {
      tr.from_float(floats_.data() + b * kWindowAlign, out.data() + row_bytes(type, b * kWindowAlign),
                    (e - b) * kWindowAlign);
    });
  }

  // The bytes of `cols` values in `type` starting at pool element `start` (a multiple of kWindowAlign).
  const uint8_t* window(DType type, int64_t start) const { return encoded_.at(type).data() + row_bytes(type, start); }

 private:
  std::vector<float> floats_;
  std::map<DType, std::vector<uint8_t>> encoded_;
};

// Where row `row` of a tensor starts in the pool: a per-tensor offset (from its name,
// as make_random_gguf.py rolls its pool by the name's length) plus `cols` per row.
int64_t window_start(uint64_t name_hash, int64_t row, int64_t cols) {
  const auto offset = static_cast<int64_t>(name_hash % static_cast<uint64_t>(kPoolFloats));
  return (offset + row * cols) % kPoolFloats / kWindowAlign * kWindowAlign;
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (const char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

void fill_rows(const RandomTensor& t, const ValuePool& values, std::span<uint8_t> dst, ThreadPool& pool) {
  const int64_t cols = t.shape.last(), rows = t.shape.rows();
  const size_t row_size = row_bytes(t.dtype, cols);
  if (t.name.ends_with("norm.weight")) {  // norms are 1 (always f32: quantize_rules keeps 1-D tensors f32)
    const float one = 1.0f;
    for (int64_t i = 0; i < rows * cols; ++i) std::memcpy(dst.data() + 4 * i, &one, 4);
    return;
  }
  const uint64_t hash = fnv1a(t.name);
  // Rows in chunks of ~4 MiB per claim, so small tensors stay on one thread.
  const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>((size_t{4} << 20) / row_size));
  pool.parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      std::memcpy(dst.data() + static_cast<size_t>(r) * row_size, values.window(t.dtype, window_start(hash, r, cols)),
                  row_size);
    }
  });
}

}  // namespace

std::span<const RandomModelShape> random_model_shapes() { return kShapes; }

const RandomModelShape& random_model_shape(std::string_view name) {
  for (const RandomModelShape& s : kShapes) {
    if (s.name == name) return s;
  }
  std::string names;
  for (const RandomModelShape& s : kShapes) names += (names.empty() ? "" : ", ") + s.name;
  fail("random_model", "unknown shape '{}' (known: {})", name, names);
}

std::vector<RandomTensor> random_model_tensors(const RandomModelShape& s, QuantType type) {
  QILIN_CHECK(s.d_model > 0 && s.n_layers > 0 && s.n_heads > 0 && s.n_kv_heads > 0 && s.d_ff > 0 && s.vocab > 0 &&
                  s.d_model % s.n_heads == 0 && s.n_heads % s.n_kv_heads == 0,
              "random_model", "shape '{}' is inconsistent (d_model {}, heads {}, kv heads {})", s.name, s.d_model,
              s.n_heads, s.n_kv_heads);
  const int64_t d = s.d_model, kv_dim = s.n_kv_heads * (d / s.n_heads);
  std::vector<std::pair<std::string, Shape>> specs = {{"token_embd.weight", {s.vocab, d}}, {"output_norm.weight", {d}}};
  if (!s.tied_embeddings) specs.push_back({"output.weight", {s.vocab, d}});
  for (int64_t l = 0; l < s.n_layers; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    specs.insert(specs.end(), {{p + "attn_norm.weight", {d}},
                               {p + "attn_q.weight", {d, d}},
                               {p + "attn_k.weight", {kv_dim, d}},
                               {p + "attn_v.weight", {kv_dim, d}},
                               {p + "attn_output.weight", {d, d}},
                               {p + "ffn_norm.weight", {d}},
                               {p + "ffn_gate.weight", {s.d_ff, d}},
                               {p + "ffn_up.weight", {s.d_ff, d}},
                               {p + "ffn_down.weight", {d, s.d_ff}}});
    if (s.qkv_bias) {
      specs.insert(specs.end(),
                   {{p + "attn_q.bias", {d}}, {p + "attn_k.bias", {kv_dim}}, {p + "attn_v.bias", {kv_dim}}});
    }
  }
  WeightTypeContext context;
  context.n_layers = s.n_layers;
  context.has_output = !s.tied_embeddings;
  std::vector<RandomTensor> out;
  out.reserve(specs.size());
  for (auto& [name, shape] : specs) {
    const DType dtype = choose_weight_type(type, name, shape, DType::f32, context).type;
    out.push_back({std::move(name), shape, dtype});
  }
  return out;
}

RandomModelSummary write_random_model(const RandomModelShape& s, QuantType type, const std::string& path,
                                      ThreadPool& pool, const std::function<void(const RandomModelProgress&)>& progress,
                                      uint64_t seed) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<RandomTensor> tensors = random_model_tensors(s, type);
  const std::string& a = s.architecture;
  GgufWriter writer;
  writer.add("general.architecture", GgufValue::string(a));
  writer.add("general.name", GgufValue::string("random-" + s.name));
  writer.add(a + ".context_length", GgufValue::u32(static_cast<uint32_t>(s.context)));
  writer.add(a + ".embedding_length", GgufValue::u32(static_cast<uint32_t>(s.d_model)));
  writer.add(a + ".block_count", GgufValue::u32(static_cast<uint32_t>(s.n_layers)));
  writer.add(a + ".feed_forward_length", GgufValue::u32(static_cast<uint32_t>(s.d_ff)));
  writer.add(a + ".attention.head_count", GgufValue::u32(static_cast<uint32_t>(s.n_heads)));
  writer.add(a + ".attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(s.n_kv_heads)));
  writer.add(a + ".attention.layer_norm_rms_epsilon", GgufValue::f32(1e-6f));
  writer.add(a + ".rope.freq_base", GgufValue::f32(s.rope_theta));
  writer.add(a + ".rope.dimension_count", GgufValue::u32(static_cast<uint32_t>(s.d_model / s.n_heads)));
  writer.add(a + ".vocab_size", GgufValue::u32(static_cast<uint32_t>(s.vocab)));
  writer.add("general.file_type", GgufValue::u32(llama_file_type(type)));  // names the type in qilin-bench
  writer.add("general.quantization_version", GgufValue::u32(kGgmlQuantVersion));
  writer.add("tokenizer.ggml.model", GgufValue::string("no_vocab"));

  RandomModelSummary summary;
  int64_t widest = 0;
  for (const RandomTensor& t : tensors) {
    widest = std::max(widest, t.shape.last());
    summary.params += t.shape.numel();
    summary.data_bytes += row_bytes(t.dtype, t.shape.last()) * static_cast<size_t>(t.shape.rows());
  }
  ValuePool values(seed, (widest + kWindowAlign - 1) / kWindowAlign * kWindowAlign);
  for (const RandomTensor& t : tensors) values.prepare(t.dtype, pool);

  uint64_t bytes_done = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    writer.add_tensor(tensors[i].name, tensors[i].shape, tensors[i].dtype, [&, i](std::span<uint8_t> dst) {
      if (progress) progress({i, tensors.size(), tensors[i].name, bytes_done, summary.data_bytes});
      fill_rows(tensors[i], values, dst, pool);
      bytes_done += dst.size();
    });
  }
  writer.write(path);
  if (progress) progress({tensors.size(), tensors.size(), {}, bytes_done, summary.data_bytes});
  summary.tensors = static_cast<int64_t>(tensors.size());
  std::error_code ec;
  summary.file_bytes = std::filesystem::file_size(path, ec);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace qilin::tools
