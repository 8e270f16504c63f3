// convert_hf_to_gguf (models/convert.h): tiny Hugging Face folders written by the
// test (tests/hf_folder.h), and the committed ones under tests/data/models/ when
// present, converted to every output type and read back with Qilin's GGUF reader.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <vector>

#include "core/error.h"
#include "core/gguf.h"
#include "core/quant.h"
#include "core/safetensors.h"
#include "core/thread_pool.h"
#include "hf_folder.h"
#include "models/convert.h"
#include "models/model_config.h"
#include "models/tensor_names.h"
#include "models/tokenizer/tokenizer.h"

using namespace qilin;
using namespace qilin::test;
namespace fs = std::filesystem;

namespace {

const DType kAllTypes[] = {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_1};

// The source tensor's values as f32, rows in the order the GGUF file holds them: the
// llama family's Q/K rows reordered as llama.cpp's permute does, written here as its
// reshape: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2) -> index [h][j][half] from [h][half][j].
std::vector<float> expected_rows(const SafetensorsModel& model, const std::string& hf, const ModelConfig& c,
                                 const std::string& gguf) {
  const TensorView v = model.view(hf);
  const int64_t rows = v.rows(), cols = v.cols();
  std::vector<uint8_t> raw(v.nbytes());
  std::memcpy(raw.data(), v.data(), raw.size());  // the mapping may be unaligned
  std::vector<float> src(static_cast<size_t>(rows * cols));
  traits(v.dtype()).to_float(raw.data(), src.data(), rows * cols);
  int64_t n_head = 0;
  if (c.family == ModelFamily::llama && gguf.ends_with("attn_q.weight")) n_head = c.n_heads;
  if (c.family == ModelFamily::llama && gguf.ends_with("attn_k.weight")) n_head = c.n_kv_heads;
  if (n_head == 0) return src;
  std::vector<float> out(src.size());
  const int64_t half = rows / n_head / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t s = 0; s < 2; ++s)
      for (int64_t j = 0; j < half; ++j) {
        const int64_t from = (h * 2 + s) * half + j, to = (h * half + j) * 2 + s;
        std::memcpy(&out[static_cast<size_t>(to * cols)], &src[static_cast<size_t>(from * cols)],
                    static_cast<size_t>(cols) * sizeof(float));
      }
  return out;
}

void check_same_config(const ModelConfig& a, const ModelConfig& b) {
  CHECK(a.family == b.family);
  CHECK(a.name == b.name);
  CHECK(a.n_layers == b.n_layers);
  CHECK(a.d_model == b.d_model);
  CHECK(a.n_heads == b.n_heads);
  CHECK(a.n_kv_heads == b.n_kv_heads);
  CHECK(a.head_dim == b.head_dim);
  CHECK(a.d_ff == b.d_ff);
  CHECK(a.vocab_size == b.vocab_size);
  CHECK(a.max_context == b.max_context);
  CHECK(a.norm_eps == b.norm_eps);
  CHECK(a.rope_theta == b.rope_theta);  // exact: the configs use thetas that f32 (GGUF's type) holds
  CHECK(a.rope_dim == b.rope_dim);
  CHECK(a.tied_embeddings == b.tied_embeddings);
  CHECK(a.qkv_bias == b.qkv_bias);
  CHECK(a.qk_norm == b.qk_norm);
  CHECK(a.bos_id == b.bos_id);
  CHECK(a.eos_id == b.eos_id);
}

// Converts `folder` to `type` and checks the file against the source, tensor by tensor.
void check_conversion(const fs::path& folder, DType type, const fs::path& out_dir) {
  INFO(folder.string() << " -> " << name_of(type));
  ThreadPool pool(3);  // more threads than rows for some tensors: the short path and the split path both run
  const std::string out = (out_dir / fmt::format("{}.{}.gguf", folder.filename().string(), name_of(type))).string();
  ConvertOptions options;
  options.weight_type = type;
  uint64_t last_done = 0, calls = 0;
  options.progress = [&](uint64_t done, uint64_t total) {
    CHECK(done > last_done);
    CHECK(done <= total);
    last_done = done;
    ++calls;
  };
  const ConvertSummary summary = convert_hf_to_gguf(folder.string(), out, options, pool);
  const GgufFile file = GgufFile::open(out);
  const ModelConfig hf = ModelConfig::from_hf_folder(folder.string());
  const ModelConfig gguf = ModelConfig::from_gguf(file);
  check_same_config(gguf, hf);
  CHECK(gguf.rope_interleaved == (hf.family == ModelFamily::llama));
  CHECK(file.get_int("general.file_type", -1) >= 0);
  CHECK(summary.file_bytes == fs::file_size(out));
  CHECK(summary.tensors == static_cast<int64_t>(file.tensors().size()));
  CHECK(calls == file.tensors().size());

  const SafetensorsModel model = SafetensorsModel::open(folder.string());
  const std::vector<TensorSpec> specs = expected_tensors(hf);
  REQUIRE(file.tensors().size() == specs.size());
  for (const TensorSpec& spec : specs) {
    INFO(spec.name);
    const GgufTensorInfo& info = file.require_tensor(spec.name);
    CHECK(info.shape == spec.shape);
    const bool partial_blocks = spec.shape.last() % traits(type).block_size != 0;
    const DType want = spec.shape.ndim == 1 ? DType::f32 : partial_blocks ? DType::f16 : type;
    REQUIRE(info.dtype == want);
    const bool listed =
        std::find(summary.f16_fallback.begin(), summary.f16_fallback.end(), spec.name) != summary.f16_fallback.end();
    CHECK(listed == (spec.shape.ndim > 1 && partial_blocks));
    // Each row must be exactly the source row converted by core's reference function
    // (an f32 copy for f32; ggml's rounding or quantizer otherwise): no tolerance.
    const std::vector<float> rows = expected_rows(model, hf_name_from_gguf(hf.family, spec.name), hf, spec.name);
    const int64_t cols = spec.shape.last();
    const size_t row_size = row_bytes(want, cols);
    std::vector<uint8_t> expect(row_size);
    int64_t mismatched = 0;
    for (int64_t r = 0; r < spec.shape.rows(); ++r) {
      traits(want).from_float(&rows[static_cast<size_t>(r * cols)], expect.data(), cols);
      if (std::memcmp(expect.data(), info.data + static_cast<size_t>(r) * row_size, row_size) != 0) ++mismatched;
    }
    CHECK(mismatched == 0);
  }
}

// Encodes strings with the folder's tokenizer.json and with the GGUF's embedded copy.
void check_tokenizer(const fs::path& folder, const std::string& gguf_path) {
  const Tokenizer json = Tokenizer::from_json_file((folder / "tokenizer.json").string());
  const GgufFile file = GgufFile::open(gguf_path);
  const Tokenizer gguf = Tokenizer::from_gguf(file);
  CHECK(gguf.chat_template() == json.chat_template());
  CHECK_FALSE(gguf.chat_template().empty());
  const char* texts[] = {"Hello world! It's 2024, and 1234567 apples cost $3.50.",
                         "  leading spaces\n\n\ttabs and\r\nnewlines   ",
                         "中文和English混合的句子，还有标点。",
                         "emoji 🤗🚀 and accents: café naïve",
                         "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
                         "def f(x):\n    return x ** 2  # square"};
  for (const char* text : texts) {
    INFO(text);
    for (const bool special : {true, false}) {
      EncodeOptions o;
      o.parse_special = special;
      const std::vector<int32_t> ids = json.encode(text, o);
      CHECK(gguf.encode(text, o) == ids);
      CHECK(gguf.decode(ids) == json.decode(ids));
    }
  }
}

bool folder_is_empty(const fs::path& dir) { return fs::is_empty(dir); }

}  // namespace

TEST_CASE("convert: llama (SmolLM2 tokenizer, tied, unaligned F32 data) to every type", "[convert]") {
  TempDir dir("convert");
  HfModelSpec s;
  s.vocab = 49152;  // the SmolLM2 vocabulary
  s.tied = true;
  s.tokenizer = "smollm2";
  s.ff = 40;  // ffn_down rows of 40: not whole 32-blocks, so quantized types fall back to f16 there
  const fs::path folder = dir.path / "tiny-llama";
  write_hf_folder(folder, s);
  const fs::path out = dir.path / "out";
  fs::create_directories(out);
  for (DType type : kAllTypes) check_conversion(folder, type, out);
  check_tokenizer(folder, (out / "tiny-llama.q8_0.gguf").string());
}

TEST_CASE("convert: qwen2 (Qwen2 tokenizer, biases, untied) from F16 and BF16, sharded", "[convert]") {
  TempDir dir("convert");
  HfModelSpec s;
  s.architecture = "Qwen2ForCausalLM";
  s.vocab = 32800;  // the fixture's 32771 ids padded, as Qwen2's real vocab_size is
  s.bos = 32768;
  s.eos = 32770;
  s.qkv_bias = true;
  s.tokenizer = "qwen2";
  const fs::path out = dir.path / "out";
  fs::create_directories(out);
  for (const char* dtype : {"F16", "BF16"}) {
    s.dtype = dtype;
    const fs::path folder = dir.path / dtype / "tiny-qwen2";
    write_hf_folder(folder, s, 2);
    for (DType type : {DType::f32, DType::f16, DType::bf16, DType::q4_0}) check_conversion(folder, type, out);
  }
  check_tokenizer(dir.path / "F16" / "tiny-qwen2", (out / "tiny-qwen2.q4_0.gguf").string());
}

TEST_CASE("convert: a sharded folder converts to the same bytes as a single file", "[convert]") {
  TempDir dir("convert");
  HfModelSpec s;
  s.architecture = "Qwen3ForCausalLM";
  s.head_dim = 16;  // not d / heads = 8
  s.qk_norm = true;
  ThreadPool pool(2);
  ConvertOptions options;
  options.weight_type = DType::q8_0;
  write_hf_folder(dir.path / "one" / "tiny-qwen3", s, 1);
  write_hf_folder(dir.path / "three" / "tiny-qwen3", s, 3);
  convert_hf_to_gguf((dir.path / "one" / "tiny-qwen3").string(), dir.file("one.gguf"), options, pool);
  convert_hf_to_gguf((dir.path / "three" / "tiny-qwen3").string(), dir.file("three.gguf"), options, pool);
  const auto bytes = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  CHECK(bytes(dir.file("one.gguf")) == bytes(dir.file("three.gguf")));
  for (DType type : kAllTypes) check_conversion(dir.path / "one" / "tiny-qwen3", type, dir.path);
}

TEST_CASE("convert: the committed tiny models under tests/data/models", "[convert]") {
  const fs::path root = fs::path(QILIN_TEST_DATA_DIR) / "models";
  TempDir dir("convert");
  int found = 0;
  for (const char* family : {"llama", "qwen2", "qwen3"}) {
    const fs::path folder = root / family;
    if (!fs::exists(folder / "config.json")) continue;
    ++found;
    for (DType type : {DType::f32, DType::q8_0}) check_conversion(folder, type, dir.path);
    if (fs::exists(folder / "tokenizer.json"))
      check_tokenizer(folder, (dir.path / fmt::format("{}.q8_0.gguf", family)).string());
  }
  if (found == 0) WARN("no tiny models under " << root.string() << " yet");
}

TEST_CASE("convert: GLM folders get llama.cpp's GLM-4 pre-tokenizer name and read back alike", "[convert][glm]") {
  // llama.cpp's convert_hf_to_gguf.py names GLM-4's tokenizer "chatglm-bpe" (glm-4-9b-chat,
  // GLM-4-0414) and its loader gives that name (and "glm4") the GLM-4 pre-tokenizer with
  // BPE merges applied; "llama-bpe" would make it skip merges and add a BOS.
  const fs::path root = fs::path(QILIN_TEST_DATA_DIR) / "models";
  TempDir dir("convert");
  for (const char* family : {"glm", "glm4"}) {
    const fs::path folder = root / family;
    REQUIRE(fs::exists(folder / "tokenizer.json"));
    // (Their weights against transformers' logits: test_model_golden / test_model_glm.)
    ThreadPool pool(2);
    const std::string gguf = (dir.path / fmt::format("{}.gguf", family)).string();
    convert_hf_to_gguf(folder.string(), gguf, ConvertOptions{}, pool);
    CHECK(GgufFile::open(gguf).get_string("tokenizer.ggml.pre", "") == "chatglm-bpe");
    check_tokenizer(folder, gguf);
  }
}

TEST_CASE("convert: bad input is a clear error and leaves no file behind", "[convert]") {
  using Catch::Contains;
  TempDir dir("convert");
  ThreadPool pool(2);
  const fs::path out_dir = dir.path / "out";
  fs::create_directories(out_dir);
  const std::string out = (out_dir / "model.gguf").string();
  int case_index = 0;
  // Writes a fresh folder from `s`, lets `edit` break it, converts, and expects `message`.
  const auto expect_error = [&](HfModelSpec s, const std::function<void(const fs::path&)>& edit,
                                const std::string& message, DType type = DType::f16) {
    const fs::path folder = dir.path / fmt::format("case{}", case_index++);
    write_hf_folder(folder, s);
    if (edit) edit(folder);
    ConvertOptions options;
    options.weight_type = type;
    INFO(message);
    CHECK_THROWS_WITH(convert_hf_to_gguf(folder.string(), out, options, pool), Contains(message));
    CHECK(folder_is_empty(out_dir));  // neither model.gguf nor model.gguf.partial
  };
  const HfModelSpec s;
  const auto rewrite = [&](HfModelSpec changed) {
    return [changed](const fs::path& folder) {
      write_safetensors((folder / "model.safetensors").string(), hf_tensors(changed));
    };
  };
  const auto config = [](const std::string& json) {
    return [json](const fs::path& folder) { std::ofstream(folder / "config.json") << json; };
  };
  expect_error(
      s, [](const fs::path& f) { fs::remove(f / "config.json"); }, "no config.json");
  expect_error(s, config(R"({"architectures": ["MistralForCausalLM"]})"), "MistralForCausalLM");
  expect_error(
      s, [](const fs::path& f) { fs::remove(f / "model.safetensors"); }, "safetensors");
  HfModelSpec no_lm_head = s;
  no_lm_head.tied = true;  // the file lacks lm_head.weight, which the untied config needs
  expect_error(s, rewrite(no_lm_head), "lm_head.weight (output.weight) is missing");
  HfModelSpec narrow = s;
  narrow.ff = 48;
  expect_error(s, rewrite(narrow), "is 48x32 but config.json implies 64x32");
  HfModelSpec ints = s;
  ints.dtype = "I32";
  expect_error(s, rewrite(ints), "only F32, F16 and BF16");
  HfModelSpec biased = s;
  biased.qkv_bias = true;  // a llama config has no Q/K/V bias
  expect_error(s, rewrite(biased), "k_proj.bias (blk.0.attn_k.bias) is not expected");
  expect_error(
      s,
      [](const fs::path& f) {
        write_safetensors((f / "model.safetensors").string(), {{"vision_tower.patch_embed.weight", "F32", {4, 4}}});
      },
      "vision_tower.patch_embed.weight is not a weight of a llama model");
  expect_error(s, config(R"({"architectures": ["Glm4ForCausalLM"], "hidden_size": 32, "num_hidden_layers": 2,
    "num_attention_heads": 4, "intermediate_size": 64, "vocab_size": 300, "max_position_embeddings": 256})"),
               "gate_proj.weight is not a weight of a glm4 model");  // GLM fuses gate and up
  expect_error(s, nullptr, "q4_k is not supported", DType::q4_k);
  HfModelSpec spm = s;
  spm.tokenizer = "spm";  // a SentencePiece tokenizer.json: no piece scores to write
  spm.vocab = 600;
  expect_error(spm, nullptr, "SentencePiece");
  HfModelSpec small_vocab = s;
  small_vocab.tokenizer = "qwen2";  // 32771 ids in a 300-token model
  expect_error(small_vocab, nullptr, "vocab_size is 300");

  // A failure while the file is being written (here from the progress callback) removes it too.
  write_hf_folder(dir.path / "midway", s);
  ConvertOptions options;
  options.weight_type = DType::q8_0;
  int written = 0;
  options.progress = [&](uint64_t, uint64_t) {
    if (++written == 3) fail("test", "stopped after 3 tensors");
  };
  CHECK_THROWS_WITH(convert_hf_to_gguf((dir.path / "midway").string(), out, options, pool),
                    Contains("stopped after 3 tensors"));
  CHECK(written == 3);
  CHECK(folder_is_empty(out_dir));
}

TEST_CASE("convert: output type names", "[convert]") {
  DType t = DType::f32;
  CHECK(convert_type_from_name("q8_0", &t));
  CHECK(t == DType::q8_0);
  CHECK(convert_type_from_name("bf16", &t));
  CHECK(t == DType::bf16);
  CHECK_FALSE(convert_type_from_name("q4_k", &t));
  CHECK_FALSE(convert_type_from_name("i8", &t));
  CHECK_FALSE(convert_type_from_name("Q8_0", &t));
  CHECK(t == DType::bf16);
}
