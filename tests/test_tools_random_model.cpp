// Random-weight GGUFs of named shapes (tools/common/random_model.h): the tensor set
// against make_random_gguf.py's, tiny shapes in every type through Model::load and a
// forward pass, and the quantized rows against core's quantizers applied row by row.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/random_model.h"
#include "core/error.h"
#include "core/gguf.h"
#include "core/thread_pool.h"
#include "models/model.h"

namespace {

using namespace qilin;
using namespace qilin::tools;

constexpr QuantType kAllTypes[] = {QuantType::f32,  QuantType::f16,  QuantType::bf16, QuantType::q8_0,  QuantType::q4_0,
                                   QuantType::q4_1, QuantType::q4_k, QuantType::q6_k, QuantType::q4_k_m};

// 256-wide rows, so q4_k and q6_k hold them without fallback.
RandomModelShape tiny_llama() { return {"tiny-llama", "llama", 256, 2, 4, 2, 512, 384, 10000.0f, false, true}; }
// Qwen2 layout: Q/K/V biases and an output matrix of its own; 96-wide rows fall back.
RandomModelShape tiny_qwen2() { return {"tiny-qwen2", "qwen2", 96, 3, 6, 2, 160, 300, 1000000.0f, true, false}; }

struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& tag)
      : path(std::filesystem::temp_directory_path() /
             ("qilin_random_model_" + tag + "_" + std::to_string(::getpid()) + ".gguf")) {}
  ~TempFile() { std::filesystem::remove(path); }
};

std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("random_model_tensors match make_random_gguf.py's names, shapes and types in file order") {
  // The lists were written from the script's output (see the files' first lines).
  for (const char* shape : {"smollm2-135m", "qwen2.5-0.5b"}) {
    INFO(shape);
    std::ifstream list(std::string(QILIN_TEST_DATA_DIR "/random_model/") + shape + "-f16.txt");
    REQUIRE(list.is_open());
    std::vector<std::string> expected;
    for (std::string line; std::getline(list, line);) {
      if (!line.empty() && line[0] != '#') expected.push_back(line);
    }
    std::vector<std::string> actual;
    for (const RandomTensor& t : random_model_tensors(random_model_shape(shape), QuantType::f16))
      actual.push_back(t.name + " " + std::string(name_of(t.dtype)) + " " + t.shape.str());
    REQUIRE(actual.size() == expected.size());
    for (size_t i = 0; i < actual.size(); ++i) CHECK(actual[i] == expected[i]);
  }
}

TEST_CASE("random model shapes have the published parameter counts") {
  auto params = [](const char* name) {
    int64_t n = 0;
    for (const RandomTensor& t : random_model_tensors(random_model_shape(name), QuantType::f16)) n += t.shape.numel();
    return n;
  };
  // The model cards' totals (embeddings included, tied ones counted once).
  CHECK(params("qwen2.5-0.5b") == 494'032'768);
  CHECK(params("qwen2.5-1.5b") == 1'543'714'304);
  CHECK(params("qwen2.5-7b") == 7'615'616'512);
  CHECK(params("llama-3-8b") == 8'030'261'248);
  CHECK(params("smollm2-135m") == 134'515'008);
  CHECK_THROWS_AS(random_model_shape("qwen2.5-70b"), Error);
  try {
    random_model_shape("gpt-2");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("llama-3-8b") != std::string::npos);  // the message lists the known shapes
  }
}

TEST_CASE("q4_k_m random models follow the quantize rules") {
  const std::vector<RandomTensor> tensors = random_model_tensors(random_model_shape("qwen2.5-7b"), QuantType::q4_k_m);
  auto type_of = [&](const std::string& name) {
    for (const RandomTensor& t : tensors) {
      if (t.name == name) return t.dtype;
    }
    FAIL("no tensor " << name);
    return DType::f32;
  };
  CHECK(type_of("output.weight") == DType::q6_k);
  CHECK(type_of("token_embd.weight") == DType::q4_k);
  CHECK(type_of("blk.0.ffn_down.weight") == DType::q6_k);  // uses_more_bits: the first eighth
  CHECK(type_of("blk.4.ffn_down.weight") == DType::q4_k);
  CHECK(type_of("blk.5.attn_v.weight") == DType::q6_k);  // (5 - 3) % 3 == 2
  CHECK(type_of("blk.5.attn_q.bias") == DType::f32);
  CHECK(type_of("blk.5.ffn_norm.weight") == DType::f32);
}

TEST_CASE("tiny random models in every type load and run a forward pass") {
  ThreadPool pool(2);
  for (const RandomModelShape& shape : {tiny_llama(), tiny_qwen2()}) {
    for (const QuantType type : kAllTypes) {
      INFO(shape.name << " " << name_of(type));
      TempFile file(shape.name + "_" + std::string(name_of(type)));
      size_t progress_calls = 0;
      RandomModelProgress last;
      const RandomModelSummary s =
          write_random_model(shape, type, file.path.string(), pool, [&](const RandomModelProgress& p) {
            ++progress_calls;
            last = p;
          });
      const std::vector<RandomTensor> expected = random_model_tensors(shape, type);
      CHECK(s.tensors == static_cast<int64_t>(expected.size()));
      CHECK(progress_calls == expected.size() + 1);
      CHECK(last.index == last.count);
      CHECK(last.bytes_done == last.bytes_total);
      CHECK(last.bytes_total == s.data_bytes);
      CHECK(s.file_bytes == std::filesystem::file_size(file.path));

      const GgufFile gguf = GgufFile::open(file.path.string());
      REQUIRE(gguf.tensors().size() == expected.size());
      for (size_t i = 0; i < expected.size(); ++i) {
        CHECK(gguf.tensors()[i].name == expected[i].name);
        CHECK(gguf.tensors()[i].shape == expected[i].shape);
        CHECK(gguf.tensors()[i].dtype == expected[i].dtype);
      }
      CHECK(gguf.get_string("tokenizer.ggml.model", "") == "no_vocab");
      CHECK(gguf.get_int("general.file_type", -1) == static_cast<int64_t>(llama_file_type(type)));

      LoadOptions load;
      load.threads = 2;
      load.context = 32;
      const auto model = Model::load(file.path.string(), load);
      CHECK(!model->has_tokenizer());
      CHECK(model->config().n_layers == shape.n_layers);
      CHECK(model->config().vocab_size == shape.vocab);
      const std::vector<int32_t> ids = {1, 7, 42, 99, 3};
      const ForwardRequest request{0, ids};
      const TensorView logits = model->decoder().forward({&request, 1}, model->cache(), model->pool());
      REQUIRE(logits.cols() == shape.vocab);
      const auto* p = static_cast<const float*>(logits.data());
      bool finite = true, varied = false;
      for (int64_t v = 0; v < shape.vocab; ++v) {
        finite &= std::isfinite(p[v]);
        varied |= p[v] != p[0];
      }
      CHECK(finite);
      CHECK(varied);  // random weights: the logits differ (a zero or constant model would not)
    }
  }
}

TEST_CASE("random model values: N(0, 0.02) weights, unit norms, quantized rows as core quantizes each row") {
  ThreadPool pool(2);
  const RandomModelShape shape = tiny_qwen2();
  TempFile f32_file("reference_f32");
  write_random_model(shape, QuantType::f32, f32_file.path.string(), pool);
  const GgufFile reference = GgufFile::open(f32_file.path.string());

  // Statistics of one large matrix: 160 x 96 = 15360 samples of N(0, 0.02); the standard
  // error of the mean is 0.02 / sqrt(15360) = 1.6e-4 and of the sd ~1.1e-4, so 5x margins.
  const GgufTensorInfo* gate = reference.find_tensor("blk.1.ffn_gate.weight");
  REQUIRE(gate != nullptr);
  const auto* w = reinterpret_cast<const float*>(gate->data);
  const int64_t n = gate->shape.numel();
  double sum = 0, sum2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum += w[i];
    sum2 += static_cast<double>(w[i]) * w[i];
  }
  const double mean = sum / static_cast<double>(n);
  CHECK(mean == Approx(0).margin(8e-4));
  CHECK(std::sqrt(sum2 / static_cast<double>(n) - mean * mean) == Approx(0.02).margin(6e-4));
  const GgufTensorInfo* norm = reference.find_tensor("blk.2.attn_norm.weight");
  REQUIRE(norm != nullptr);
  for (int64_t i = 0; i < norm->shape.numel(); ++i) CHECK(reinterpret_cast<const float*>(norm->data)[i] == 1.0f);

  for (const QuantType type : kAllTypes) {
    INFO(name_of(type));
    TempFile file("values_" + std::string(name_of(type)));
    write_random_model(shape, type, file.path.string(), pool);
    const GgufFile gguf = GgufFile::open(file.path.string());
    for (const GgufTensorInfo& t : gguf.tensors()) {
      INFO(t.name << " " << name_of(t.dtype));
      const GgufTensorInfo* source = reference.find_tensor(t.name);
      REQUIRE(source != nullptr);
      // Same seed, same name: the same pool windows; each row quantized on its own
      // must give exactly the bytes written.
      const int64_t cols = t.shape.last();
      const size_t row_size = row_bytes(t.dtype, cols);
      std::vector<uint8_t> row(row_size);
      bool same = true;
      for (int64_t r = 0; r < t.shape.rows(); ++r) {
        traits(t.dtype).from_float(reinterpret_cast<const float*>(source->data) + r * cols, row.data(), cols);
        same &= std::memcmp(row.data(), t.data + static_cast<size_t>(r) * row_size, row_size) == 0;
      }
      CHECK(same);
    }
  }

  // Deterministic for a seed, different for another.
  TempFile again("values_again"), other("values_other");
  write_random_model(shape, QuantType::f32, again.path.string(), pool);
  write_random_model(shape, QuantType::f32, other.path.string(), pool, {}, 1);
  CHECK(read_bytes(again.path) == read_bytes(f32_file.path));
  CHECK(read_bytes(other.path) != read_bytes(f32_file.path));
}

TEST_CASE("write_random_model leaves no file behind when it cannot write") {
  ThreadPool pool(1);
  const std::filesystem::path bad = std::filesystem::temp_directory_path() / "qilin_no_such_dir" / "x.gguf";
  CHECK_THROWS_AS(write_random_model(tiny_llama(), QuantType::q8_0, bad.string(), pool), Error);
  CHECK(!std::filesystem::exists(bad));
}
