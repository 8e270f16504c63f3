// quantize_model (models/quantize.h) and llama.cpp's type rules (models/quantize_rules.h):
// the rules on a synthetic 30-layer model, tiny models quantized to every type and run
// against their f32 logits, the requantize path, metadata copying, bad input, the
// requantize round-trip against gguf-py's bytes (tests/data/quant/requant_*), and files
// read back by the gguf Python package when it is installed.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/gguf.h"
#include "core/quant.h"
#include "core/thread_pool.h"
#include "hf_folder.h"
#include "models/model.h"
#include "models/quantize.h"
#include "models/quantize_rules.h"
#include "skip.h"

using namespace qilin;
using namespace qilin::test;
namespace fs = std::filesystem;

namespace {

const QuantType kAllTypes[] = {QuantType::f32,  QuantType::f16,  QuantType::bf16, QuantType::q8_0,  QuantType::q4_0,
                               QuantType::q4_1, QuantType::q4_k, QuantType::q6_k, QuantType::q4_k_m};

const fs::path kModels = fs::path(QILIN_TEST_DATA_DIR) / "models";

DType type_of(QuantType t, std::string_view name, Shape shape, const WeightTypeContext& c) {
  return choose_weight_type(t, name, shape, DType::f16, c).type;
}

std::vector<uint8_t> file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Logits for every position of `ids` (exact float activations, f32 KV cache).
std::vector<float> logits_of(const std::string& path, const std::vector<int32_t>& ids) {
  LoadOptions o;
  o.threads = 2;
  o.context = 64;
  o.kv_type = DType::f32;
  o.batch = 32;
  o.max_logit_rows = 32;
  o.bf16_prefill = false;
  const auto model = Model::load(path, o);
  const ForwardRequest r{0, ids, true};
  const TensorView logits = model->decoder().forward({&r, 1}, model->cache(), model->pool());
  REQUIRE(logits.rows() == static_cast<int64_t>(ids.size()));
  const float* p = logits.row<float>(0);
  return std::vector<float>(p, p + logits.numel());
}

// ||got - want|| / ||want|| over all logits.
double relative_rms_error(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  double err = 0, ref = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    ref += double(want[i]) * want[i];
  }
  return std::sqrt(err / ref);
}

// Largest relative RMS logit error each type may reach against the f32 file: twice the
// worst measured over the five models. The random two-layer models amplify a relative
// weight error about 5x into the logits: f16 rounding (rms 2^-11/sqrt(12) ~ 1.4e-4 of a
// weight) gives 6e-4 to 9e-4. A block format with step s (a fraction of the block's largest
// |w|, about 2.1 rms for these blocks of 32) leaves s * 2.1 / sqrt(12) of rms relative
// error: q8_0 s = 1/127 -> 0.5%, q6_k 1/32 -> 1.9%, 4-bit formats 1/8 to 1/15 -> 4-8%; the
// activations are also rounded to 8-bit blocks on the quantized paths (< 30% of q8_0's).
double logit_tolerance(QuantType t) {
  switch (t) {
    case QuantType::f32:
      return 1e-6;  // the same weights (measured 0; the file is also compared byte for byte)
    case QuantType::f16:
      return 2e-3;  // measured <= 8.9e-4
    case QuantType::bf16:
      return 2e-2;  // 2^-8 rounding, 8x f16's (measured <= 8.4e-3)
    case QuantType::q8_0:
      return 8e-2;  // measured <= 3.9e-2
    case QuantType::q6_k:
      return 0.16;  // q8_0 on the 64-wide fixtures (fallback); measured <= 7.8e-2 on the 256-wide ones
    case QuantType::q4_0:
    case QuantType::q4_1:
    case QuantType::q4_k:
    case QuantType::q4_k_m:
      return 0.8;  // measured <= 0.39 (q4_0), 0.34 (q4_1, q4_k, q4_k_m); unrelated logits would give ~1.4
  }
  return 0;
}

const std::vector<int32_t> kIds = {1, 17, 42, 99, 250, 3, 77, 128, 5, 290, 64, 11};

// A tiny model with 256-wide rows, so q4_k and q6_k apply without falling back.
HfModelSpec kquant_spec(bool qwen2) {
  HfModelSpec s;
  s.d = 256;
  s.ff = 512;
  s.heads = 4;
  s.kv_heads = 2;
  s.layers = 2;  // llama.cpp's uses_more_bits(layer, 2) is true for layer 1 only
  s.odd_buffer = false;
  if (qwen2) {
    s.architecture = "Qwen2ForCausalLM";
    s.qkv_bias = true;
    s.tied = true;  // token_embd is the output matrix: q6_k under the rules
  }
  return s;
}

}  // namespace

TEST_CASE("quantize: q4_k_m follows llama.cpp's rules on a 30-layer model", "[quantize]") {
  WeightTypeContext c;
  c.n_layers = 30;
  // llama.cpp's use_more_bits(i, 30): i < 30/8 = 3, i >= 7*30/8 = 26, or (i - 3) % 3 == 2.
  const std::vector<int> more_bits = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29};
  for (int layer = 0; layer < 30; ++layer) {
    INFO("layer " << layer);
    const bool more = std::find(more_bits.begin(), more_bits.end(), layer) != more_bits.end();
    CHECK(uses_more_bits(layer, 30) == more);
    const auto name = [&](const char* suffix) { return fmt::format("blk.{}.{}", layer, suffix); };
    const DType sensitive = more ? DType::q6_k : DType::q4_k;
    CHECK(type_of(QuantType::q4_k_m, name("attn_v.weight"), {512, 4096}, c) == sensitive);
    CHECK(type_of(QuantType::q4_k_m, name("ffn_down.weight"), {4096, 11008}, c) == sensitive);
    for (const char* other :
         {"attn_q.weight", "attn_k.weight", "attn_output.weight", "ffn_gate.weight", "ffn_up.weight"})
      CHECK(type_of(QuantType::q4_k_m, name(other), {4096, 4096}, c) == DType::q4_k);
    CHECK(type_of(QuantType::q4_k_m, name("attn_norm.weight"), {4096}, c) == DType::f32);
    CHECK(type_of(QuantType::q4_k_m, name("attn_q.bias"), {4096}, c) == DType::f32);
    // Rows of 576 (SmolLM2) are not whole 256-blocks: q6_k -> q8_0, q4_k -> q4_1.
    CHECK(type_of(QuantType::q4_k_m, name("attn_v.weight"), {192, 576}, c) == (more ? DType::q8_0 : DType::q4_1));
    // --pure: no per-layer rule.
    WeightTypeContext pure = c;
    pure.pure = true;
    CHECK(type_of(QuantType::q4_k_m, name("attn_v.weight"), {512, 4096}, pure) == DType::q4_k);
    // Other types have no per-layer rule.
    CHECK(type_of(QuantType::q4_k, name("attn_v.weight"), {512, 4096}, c) == DType::q4_k);
    CHECK(type_of(QuantType::q4_0, name("ffn_down.weight"), {4096, 11008}, c) == DType::q4_0);
  }
  // The output matrix: q6_k for block types, q8_0 for q8_0 or when its rows are not
  // whole blocks of the base type; the embedding stays the base type unless it is tied.
  CHECK(type_of(QuantType::q4_k_m, "output.weight", {32000, 4096}, c) == DType::q6_k);
  CHECK(type_of(QuantType::q4_k_m, "token_embd.weight", {32000, 4096}, c) == DType::q4_k);
  CHECK(type_of(QuantType::q4_0, "output.weight", {32000, 4096}, c) == DType::q6_k);
  CHECK(type_of(QuantType::q4_0, "output.weight", {49152, 576}, c) == DType::q8_0);  // q6_k does not fit 576
  CHECK(type_of(QuantType::q4_0, "token_embd.weight", {49152, 576}, c) == DType::q4_0);
  CHECK(type_of(QuantType::q8_0, "output.weight", {32000, 4096}, c) == DType::q8_0);
  CHECK(type_of(QuantType::q6_k, "output.weight", {32000, 4096}, c) == DType::q6_k);
  CHECK(type_of(QuantType::f16, "output.weight", {32000, 4096}, c) == DType::f16);
  CHECK(type_of(QuantType::bf16, "blk.0.attn_v.weight", {512, 4096}, c) == DType::bf16);
  WeightTypeContext tied = c;
  tied.has_output = false;
  CHECK(type_of(QuantType::q4_k_m, "token_embd.weight", {32000, 4096}, tied) == DType::q6_k);
  CHECK(type_of(QuantType::q4_1, "token_embd.weight", {49152, 576}, tied) == DType::q8_0);
  CHECK(type_of(QuantType::q4_k_m, "token_embd.weight", {151936, 896}, tied) == DType::q8_0);  // Qwen2.5-0.5B
  tied.pure = true;
  CHECK(type_of(QuantType::q4_0, "token_embd.weight", {49152, 576}, tied) == DType::q4_0);
  // 8 layers: 8/8 = 1 and 7*8/8 = 7, so layers 0, 3, 6 and 7.
  for (int layer = 0; layer < 8; ++layer) CHECK(uses_more_bits(layer, 8) == (layer == 0 || layer == 3 || layer >= 6));
  // Not weights to quantize: kept in their stored type.
  CHECK(choose_weight_type(QuantType::q4_0, "blk.0.attn_q_norm.weight", {2, 64}, DType::bf16, c).type == DType::bf16);
  CHECK(choose_weight_type(QuantType::q4_0, "rope_freqs", {4, 64}, DType::f16, c).type == DType::f16);
}

TEST_CASE("quantize: fallbacks for rows that are not whole blocks", "[quantize]") {
  CHECK(fallback_type(DType::q4_k, 576) == DType::q4_1);
  CHECK(fallback_type(DType::q6_k, 896) == DType::q8_0);
  CHECK(fallback_type(DType::q6_k, 1536) == DType::q6_k);
  CHECK(fallback_type(DType::q4_k, 40) == DType::f16);  // not whole 32-blocks either
  CHECK(fallback_type(DType::q4_0, 40) == DType::f16);
  CHECK(fallback_type(DType::q8_0, 64) == DType::q8_0);
  const WeightTypeChoice c = choose_weight_type(QuantType::q4_k, "blk.0.attn_q.weight", {576, 576}, DType::f32, {});
  CHECK(c.wanted == DType::q4_k);
  CHECK(c.type == DType::q4_1);
  CHECK(c.fell_back());
}

TEST_CASE("quantize: type names and llama.cpp file types", "[quantize]") {
  const std::pair<const char*, uint32_t> expected[] = {{"f32", 0},   {"f16", 1},   {"bf16", 32},
                                                       {"q8_0", 7},  {"q4_0", 2},  {"q4_1", 3},
                                                       {"q4_k", 14}, {"q6_k", 18}, {"q4_k_m", 15}};
  for (const auto& [name, ftype] : expected) {
    QuantType t = QuantType::f32;
    REQUIRE(quant_type_from_name(name, &t));
    CHECK(name_of(t) == name);
    CHECK(llama_file_type(t) == ftype);
  }
  QuantType t = QuantType::q8_0;
  CHECK_FALSE(quant_type_from_name("Q4_K_M", &t));
  CHECK_FALSE(quant_type_from_name("q5_0", &t));
  CHECK(t == QuantType::q8_0);
  CHECK(base_dtype(QuantType::q4_k_m) == DType::q4_k);
}

TEST_CASE("quantize: tiny models to every type keep their logits close to f32", "[quantize]") {
  TempDir dir("quantize");
  ThreadPool pool(3);  // more threads than rows for the 1-D tensors: both export paths run
  std::vector<fs::path> folders;
  for (const char* family : {"llama", "qwen2", "qwen3"}) folders.push_back(kModels / family);
  write_hf_folder(dir.path / "kquant-llama", kquant_spec(false));
  write_hf_folder(dir.path / "kquant-qwen2", kquant_spec(true));
  folders.push_back(dir.path / "kquant-llama");
  folders.push_back(dir.path / "kquant-qwen2");
  for (const fs::path& folder : folders) {
    const std::string name = folder.filename().string();
    QuantizeOptions options;
    options.type = QuantType::f32;
    const std::string f32_path = dir.file(name + ".f32.gguf");
    quantize_model(folder.string(), f32_path, options, pool);
    const std::vector<float> reference = logits_of(f32_path, kIds);
    for (QuantType type : kAllTypes) {
      INFO(name << " -> " << name_of(type));
      const std::string out = dir.file(fmt::format("{}.{}.gguf", name, name_of(type)));
      options.type = type;
      size_t calls = 0;
      uint64_t last_done = 0;
      options.progress = [&](const QuantizeProgress& p) {
        CHECK(p.index == calls++);
        CHECK(p.bytes_done >= last_done);
        last_done = p.bytes_done;
      };
      const QuantizeSummary s = quantize_model(folder.string(), out, options, pool);
      CHECK(calls == static_cast<size_t>(s.tensors) + 1);
      CHECK(last_done == s.output_bytes);
      CHECK_FALSE(s.from_gguf);

      // Every tensor in the type the rules give, the metadata llama.cpp writes.
      const GgufFile file = GgufFile::open(out);
      CHECK(file.get_int("general.file_type", -1) == llama_file_type(type));
      CHECK(file.get_int("general.quantization_version", -1) == 2);
      WeightTypeContext context;
      context.n_layers = file.get_int(s.architecture + ".block_count", 0);
      context.has_output = file.find_tensor("output.weight") != nullptr;
      uint64_t data_bytes = 0;
      for (const GgufTensorInfo& info : file.tensors()) {
        INFO(info.name);
        CHECK(info.dtype == choose_weight_type(type, info.name, info.shape, DType::f32, context).type);
        data_bytes += info.nbytes;
      }
      CHECK(data_bytes == s.output_bytes);
      CHECK(s.file_bytes == fs::file_size(out));
      if (type == QuantType::q4_k_m && name.starts_with("kquant")) {  // the mix on rows it fits
        CHECK(file.require_tensor("blk.0.attn_v.weight").dtype == DType::q4_k);
        CHECK(file.require_tensor("blk.1.attn_v.weight").dtype == DType::q6_k);
        CHECK(file.require_tensor("blk.1.ffn_down.weight").dtype == DType::q6_k);
        CHECK(file.require_tensor("token_embd.weight").dtype == (name == "kquant-qwen2" ? DType::q6_k : DType::q4_k));
      }

      const double err = relative_rms_error(logits_of(out, kIds), reference);
      INFO("relative rms logit error " << err);
      CHECK(err <= logit_tolerance(type));
      if (type == QuantType::f32) CHECK(file_bytes(out) == file_bytes(f32_path));
    }
  }
}

TEST_CASE("quantize: a GGUF input gives the same file as its Hugging Face folder", "[quantize]") {
  TempDir dir("quantize");
  ThreadPool pool(2);
  const std::string folder = (kModels / "llama").string();  // llama: Q/K rows permuted on the way
  QuantizeOptions options;
  options.type = QuantType::f32;
  quantize_model(folder, dir.file("f32.gguf"), options, pool);
  for (QuantType type : {QuantType::q4_0, QuantType::q4_k_m}) {
    INFO(name_of(type));
    options.type = type;
    quantize_model(folder, dir.file("from_hf.gguf"), options, pool);
    const QuantizeSummary s = quantize_model(dir.file("f32.gguf"), dir.file("from_gguf.gguf"), options, pool);
    CHECK(s.from_gguf);
    CHECK(s.requantized.empty());
    CHECK(file_bytes(dir.file("from_gguf.gguf")) == file_bytes(dir.file("from_hf.gguf")));
  }
}

TEST_CASE("quantize: requantizing needs allow_requantize, tensors already in their type are copied", "[quantize]") {
  using Catch::Contains;
  TempDir dir("quantize");
  ThreadPool pool(2);
  const std::string folder = dir.file("kquant-llama");
  write_hf_folder(folder, kquant_spec(false));
  QuantizeOptions options;
  options.type = QuantType::q4_k_m;
  quantize_model(folder, dir.file("q4_k_m.gguf"), options, pool);

  // q4_k_m -> q8_0: every quantized tensor becomes another block type.
  options.type = QuantType::q8_0;
  std::vector<std::string> warnings;
  options.warning = [&](const std::string& w) { warnings.push_back(w); };
  CHECK_THROWS_WITH(quantize_model(dir.file("q4_k_m.gguf"), dir.file("q8_0.gguf"), options, pool),
                    Contains("--allow-requantize"));
  CHECK_FALSE(fs::exists(dir.file("q8_0.gguf")));
  CHECK_FALSE(fs::exists(dir.file("q8_0.gguf.partial")));
  options.allow_requantize = true;
  const QuantizeSummary s = quantize_model(dir.file("q4_k_m.gguf"), dir.file("q8_0.gguf"), options, pool);
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Contains("requantiz"));
  CHECK(s.requantized.size() == 16);  // every 2-D weight: q4_k or q6_k -> q8_0
  // Requantized: the q8_0 rows are exactly the q8_0 quantization of the dequantized q4_k/q6_k rows.
  const GgufFile in = GgufFile::open(dir.file("q4_k_m.gguf"));
  const GgufFile out = GgufFile::open(dir.file("q8_0.gguf"));
  for (const char* name : {"blk.0.attn_v.weight", "blk.1.ffn_down.weight"}) {
    INFO(name);
    const GgufTensorInfo& a = in.require_tensor(name);
    const GgufTensorInfo& b = out.require_tensor(name);
    REQUIRE(b.dtype == DType::q8_0);
    std::vector<float> f32(static_cast<size_t>(a.shape.numel()));
    traits(a.dtype).to_float(a.data, f32.data(), a.shape.numel());
    std::vector<uint8_t> q8(b.nbytes);
    for (int64_t r = 0; r < a.shape.rows(); ++r) {
      quantize_row_q8_0(f32.data() + r * a.shape.last(), q8.data() + r * row_bytes(DType::q8_0, a.shape.last()),
                        a.shape.last());
    }
    CHECK(std::memcmp(q8.data(), b.data, b.nbytes) == 0);
  }
  // Dequantizing to a float type is no requantization; same-type tensors are copied.
  warnings.clear();
  options.allow_requantize = false;
  options.type = QuantType::f16;
  CHECK(quantize_model(dir.file("q4_k_m.gguf"), dir.file("f16.gguf"), options, pool).requantized.empty());
  options.type = QuantType::q4_k_m;
  quantize_model(dir.file("q4_k_m.gguf"), dir.file("again.gguf"), options, pool);
  CHECK(file_bytes(dir.file("again.gguf")) == file_bytes(dir.file("q4_k_m.gguf")));
  CHECK(warnings.empty());
}

TEST_CASE("quantize: metadata and tokenizer are copied, file type and version set", "[quantize]") {
  TempDir dir("quantize");
  ThreadPool pool(2);
  HfModelSpec s;
  s.architecture = "Qwen2ForCausalLM";
  s.vocab = 32800;  // the qwen2 fixture tokenizer's 32771 ids, padded
  s.bos = 32768;
  s.eos = 32770;
  s.qkv_bias = true;
  s.tokenizer = "qwen2";
  write_hf_folder(dir.path / "tiny-qwen2", s);
  QuantizeOptions options;
  options.type = QuantType::bf16;
  quantize_model((dir.path / "tiny-qwen2").string(), dir.file("bf16.gguf"), options, pool);
  options.type = QuantType::q4_k_m;
  quantize_model(dir.file("bf16.gguf"), dir.file("q4_k_m.gguf"), options, pool);
  const GgufFile in = GgufFile::open(dir.file("bf16.gguf"));
  const GgufFile out = GgufFile::open(dir.file("q4_k_m.gguf"));
  REQUIRE(in.metadata().size() == out.metadata().size());
  for (size_t i = 0; i < in.metadata().size(); ++i) {
    const auto& [key, value] = in.metadata()[i];
    INFO(key);
    CHECK(out.metadata()[i].first == key);
    if (key == "general.file_type") {
      CHECK(value.as_int() == 32);
      CHECK(out.metadata()[i].second == GgufValue::u32(15));
    } else {
      CHECK(out.metadata()[i].second == value);
    }
  }
  CHECK(out.get_int("general.quantization_version", 0) == 2);
  const Tokenizer a = Tokenizer::from_gguf(in), b = Tokenizer::from_gguf(out);
  const std::string text = "<|im_start|>user\nQuantize 中文 and English, 1234!<|im_end|>";
  EncodeOptions o;
  o.parse_special = true;
  CHECK(b.encode(text, o) == a.encode(text, o));
  CHECK(b.chat_template() == a.chat_template());
}

TEST_CASE("quantize: bad input is a clear error and leaves no file behind", "[quantize]") {
  using Catch::Contains;
  TempDir dir("quantize");
  ThreadPool pool(2);
  const fs::path out_dir = dir.path / "out";
  fs::create_directories(out_dir);
  const std::string out = (out_dir / "model.gguf").string();
  QuantizeOptions options;
  options.type = QuantType::q4_0;
  const auto expect_error = [&](const std::string& input, const std::string& output, const std::string& message) {
    INFO(message);
    CHECK_THROWS_WITH(quantize_model(input, output, options, pool), Contains(message));
    CHECK(fs::is_empty(out_dir));
  };
  expect_error(dir.file("missing.gguf"), out, "no such file");
  const std::string good = dir.file("good.gguf");
  quantize_model((kModels / "qwen3").string(), good, options, pool);
  const std::vector<uint8_t> bytes = file_bytes(good);
  expect_error(good, (out_dir / ".." / "good.gguf").string(), "would overwrite the input");
  CHECK(file_bytes(good) == bytes);
  std::ofstream(dir.file("truncated.gguf"), std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size() / 2));
  expect_error(dir.file("truncated.gguf"), out, "truncated.gguf");
  expect_error(dir.path.string(), out, "config.json");  // a folder that is no model
  // A failure while writing (here from the progress callback) removes the partial file.
  options.progress = [](const QuantizeProgress& p) {
    if (p.index == 3) fail("test", "stopped at tensor 3");
  };
  expect_error(good, out, "stopped at tensor 3");
}

TEST_CASE("quantize: requantizing on-grid values matches gguf-py byte for byte", "[quantize]") {
  // tests/data/quant/make_quant_reference.py: random valid blocks of five formats (the
  // quantized tensors of an input file), gguf's dequantization of them, and gguf's
  // quantization of those values, which sit on the first format's grid (rounding ties).
  const auto read = [](const char* name) { return file_bytes(fs::path(QILIN_TEST_DATA_DIR) / "quant" / name); };
  constexpr int64_t kCols = 256;
  const DType sources[] = {DType::q4_1, DType::q8_0, DType::q4_k, DType::q6_k, DType::q4_0};
  const std::vector<uint8_t> blocks = read("requant_source.bin");
  const std::vector<uint8_t> input_bytes = read("requant_input.f32");
  REQUIRE(input_bytes.size() == std::size(sources) * kCols * sizeof(float));
  std::vector<float> input(input_bytes.size() / sizeof(float));
  std::memcpy(input.data(), input_bytes.data(), input_bytes.size());
  size_t offset = 0;
  for (size_t r = 0; r < std::size(sources); ++r) {
    INFO("row " << r << " from " << name_of(sources[r]));
    std::vector<float> row(kCols);
    traits(sources[r]).to_float(blocks.data() + offset, row.data(), kCols);
    offset += row_bytes(sources[r], kCols);
    CHECK(std::memcmp(row.data(), &input[r * kCols], kCols * sizeof(float)) == 0);  // bit-exact dequantization
  }
  CHECK(offset == blocks.size());
  for (DType t : {DType::q8_0, DType::q4_0, DType::q4_1}) {
    INFO(name_of(t));
    const std::vector<uint8_t> expected = read(fmt::format("requant_{}.bin", name_of(t)).c_str());
    REQUIRE(expected.size() == std::size(sources) * row_bytes(t, kCols));
    std::vector<uint8_t> got(expected.size());
    for (size_t r = 0; r < std::size(sources); ++r)
      traits(t).from_float(&input[r * kCols], got.data() + r * row_bytes(t, kCols), kCols);
    size_t first_bad = got.size();
    for (size_t i = 0; i < got.size() && first_bad == got.size(); ++i)
      if (got[i] != expected[i]) first_bad = i;
    INFO("first differing byte " << first_bad << " (row " << first_bad / row_bytes(t, kCols) << ")");
    CHECK(first_bad == got.size());
  }
}

// Last in the file: it ends the process (skipped) when python3 with gguf is missing.
TEST_CASE("quantize: files read back by the gguf Python package", "[quantize][python][no_qemu]") {
  if (std::system("python3 -c 'import gguf, numpy' > /dev/null 2>&1") != 0) {
    skip("python3 with the gguf and numpy packages is not installed (pip install gguf numpy)");
  }
  TempDir dir("quantize");
  ThreadPool pool(2);
  const std::string script = std::string(QILIN_TEST_DATA_DIR) + "/quant/make_quant_reference.py";
  const std::vector<std::string> folders = {(kModels / "llama").string(), dir.file("kquant-qwen2")};
  write_hf_folder(folders[1], kquant_spec(true));
  for (const std::string& folder : folders) {
    std::string command = fmt::format("python3 '{}' --read-back '{}'", script, folder);
    for (QuantType type : kAllTypes) {
      const std::string out = dir.file(fmt::format("{}.{}.gguf", fs::path(folder).filename().string(), name_of(type)));
      QuantizeOptions options;
      options.type = type;
      quantize_model(folder, out, options, pool);
      command += fmt::format(" '{}:{}'", out, name_of(type));
    }
    INFO(command);
    CHECK(std::system(command.c_str()) == 0);
  }
}
