// safetensors reader: files written by the Python safetensors package
// (tests/data/make_safetensors_fixtures.py), a single file and a two-shard
// checkpoint, values compared exactly. Corrupt files are in
// test_safetensors_corrupt.cpp.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/safetensors.h"

using namespace qilin;

namespace {

namespace fs = std::filesystem;

const std::string kDataDir = std::string(QILIN_TEST_DATA_DIR) + "/safetensors";
const std::string kSingle = kDataDir + "/single.safetensors";
const std::string kSharded = kDataDir + "/sharded";

// Mirrors value() in make_safetensors_fixtures.py: multiples of 1/8, exact in f16 and bf16.
float fixture_value(int64_t i, int seed) { return static_cast<float>(((i + 5 * seed) * 7) % 23 - 11) * 0.125f; }

// Mirrors SINGLE and SHARDS in make_safetensors_fixtures.py.
struct Expected {
  const char* name;
  DType dtype;
  Shape shape;
  int seed;
};
const Expected kSingleFloats[] = {
    {"f32_2d", DType::f32, Shape{3, 8}, 1},    {"f32_4d", DType::f32, Shape{2, 1, 3, 4}, 2},
    {"f32_scalar", DType::f32, Shape{}, 3},    {"f16_1d", DType::f16, Shape{32}, 4},
    {"bf16_2d", DType::bf16, Shape{2, 16}, 5},
};
const Expected kShardFloats[] = {
    {"model.embed_tokens.weight", DType::bf16, Shape{4, 8}, 11},
    {"model.layers.0.mlp.up_proj.weight", DType::f16, Shape{8, 8}, 12},
    {"model.layers.0.self_attn.q_proj.weight", DType::f32, Shape{8, 8}, 13},
    {"model.norm.weight", DType::f32, Shape{8}, 14},
    {"lm_head.weight", DType::bf16, Shape{4, 8}, 15},
};

float element(const TensorView& v, int64_t i) {
  switch (v.dtype()) {
    case DType::f32:
      return v.data_as<const float>()[i];
    case DType::f16:
      return f16_to_f32(v.data_as<const uint16_t>()[i]);
    default:
      return bf16_to_f32(v.data_as<const uint16_t>()[i]);
  }
}

// Exact comparison: every fixture value is exactly representable in every float dtype used.
void require_values(const TensorView& v, const Expected& e) {
  INFO(e.name);
  REQUIRE(v.dtype() == e.dtype);
  REQUIRE(v.shape() == e.shape);
  REQUIRE(v.is_contiguous());
  for (int64_t i = 0; i < v.numel(); ++i) {
    INFO("element " << i);
    REQUIRE(element(v, i) == fixture_value(i, e.seed));
  }
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("qilin_st_" + std::to_string(::getpid()) + "_" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("safetensors: a file written by the Python package, every dtype, exact values", "[safetensors]") {
  const SafetensorsFile f = SafetensorsFile::open(kSingle);
  REQUIRE(f.path() == kSingle);
  REQUIRE(f.file_size() == fs::file_size(kSingle));
  REQUIRE(f.data_offset() % 8 == 0);  // the writer pads the header to 8 bytes
  REQUIRE(f.tensors().size() == 8);
  for (size_t i = 1; i < f.tensors().size(); ++i) {  // data order, tiling the data section
    REQUIRE(f.tensors()[i].offset == f.tensors()[i - 1].offset + f.tensors()[i - 1].nbytes);
  }
  REQUIRE(f.tensors().back().offset + f.tensors().back().nbytes == f.file_size() - f.data_offset());

  for (const Expected& e : kSingleFloats) require_values(f.view(f.require_tensor(e.name)), e);
  REQUIRE(f.require_tensor("f32_scalar").shape.ndim == 0);
  REQUIRE(f.require_tensor("bf16_2d").dtype_name == "BF16");

  const TensorView i8 = f.view(f.require_tensor("i8_2d"));
  REQUIRE(i8.dtype() == DType::i8);
  REQUIRE(i8.shape() == Shape{2, 3});
  for (int i = 0; i < 6; ++i) REQUIRE(i8.data_as<const int8_t>()[i] == i - 3);
  const TensorView i32 = f.view(f.require_tensor("i32_1d"));
  REQUIRE(i32.dtype() == DType::i32);
  for (int i = 0; i < 5; ++i) REQUIRE(i32.data_as<const int32_t>()[i] == i * i - 3);
}

TEST_CASE("safetensors: __metadata__ is kept", "[safetensors]") {
  const SafetensorsFile f = SafetensorsFile::open(kSingle);
  REQUIRE(f.metadata().size() == 2);
  REQUIRE(f.find_metadata("format") != nullptr);
  REQUIRE(*f.find_metadata("format") == "pt");
  REQUIRE(*f.find_metadata("note") == "qilin fixture \u00e9\u4e16");
  REQUIRE(f.find_metadata("missing") == nullptr);
  REQUIRE(f.find_metadata("") == nullptr);
}

TEST_CASE("safetensors: a dtype Qilin does not load is listed but cannot be viewed", "[safetensors]") {
  const SafetensorsFile f = SafetensorsFile::open(kSingle);
  const SafetensorsTensorInfo& t = f.require_tensor("i64_buffer");
  REQUIRE(!t.loadable());
  REQUIRE(t.dtype_name == "I64");
  REQUIRE(t.nbytes == 24);
  int64_t first;
  std::memcpy(&first, t.data, 8);  // the bytes are still there, in place
  REQUIRE(first == -1);
  REQUIRE_THROWS_WITH(
      f.view(t), Catch::Contains("single.safetensors") && Catch::Contains("'i64_buffer'") && Catch::Contains("I64"));
  REQUIRE_THROWS_WITH(f.tensor("i64_buffer"), Catch::Contains("I64"));
}

TEST_CASE("safetensors: tensors are zero-copy views that keep the mapping alive", "[safetensors]") {
  Tensor t;
  const uint8_t* expected = nullptr;
  {
    const SafetensorsFile f = SafetensorsFile::open(kSingle);
    const SafetensorsTensorInfo& info = f.require_tensor("f32_2d");
    t = f.tensor("f32_2d");
    expected = info.data;
    REQUIRE(static_cast<const uint8_t*>(t.data()) == info.data);
    REQUIRE(t.nbytes() == info.nbytes);
    // The data lies in the mapping, after the header.
    const uint8_t* file_start = f.tensors().front().data - f.tensors().front().offset - f.data_offset();
    REQUIRE(info.data == file_start + f.data_offset() + info.offset);
  }
  REQUIRE(static_cast<const uint8_t*>(t.data()) == expected);
  require_values(t, kSingleFloats[0]);  // still readable: the Tensor holds the mapping
}

TEST_CASE("safetensors: lookups of missing tensors", "[safetensors]") {
  const SafetensorsFile f = SafetensorsFile::open(kSingle);
  REQUIRE(f.find_tensor("nope") == nullptr);
  REQUIRE_THROWS_WITH(f.require_tensor("nope"), Catch::Contains("single.safetensors") && Catch::Contains("'nope'"));
  REQUIRE_THROWS_WITH(f.tensor("nope"), Catch::Contains("'nope'"));
}

TEST_CASE("safetensors: a two-shard checkpoint through model.safetensors.index.json", "[safetensors]") {
  const SafetensorsModel m = SafetensorsModel::open(kSharded);
  REQUIRE(m.shards().size() == 2);
  REQUIRE(m.shards()[0].path() == kSharded + "/model-00001-of-00002.safetensors");
  REQUIRE(m.shards()[1].path() == kSharded + "/model-00002-of-00002.safetensors");
  REQUIRE(m.tensor_count() == 5);
  REQUIRE(m.tensor_names() == std::vector<std::string>{"lm_head.weight", "model.embed_tokens.weight",
                                                       "model.layers.0.mlp.up_proj.weight",
                                                       "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"});
  for (const Expected& e : kShardFloats) {
    require_values(m.view(e.name), e);
    require_values(m.tensor(e.name), e);
    REQUIRE(m.find_tensor(e.name) == m.shard_of(e.name).find_tensor(e.name));
  }
  REQUIRE(&m.shard_of("model.embed_tokens.weight") == &m.shards()[0]);
  REQUIRE(&m.shard_of("lm_head.weight") == &m.shards()[1]);
  REQUIRE(*m.shards()[0].find_metadata("format") == "pt");
  REQUIRE(m.find_tensor("nope") == nullptr);
  REQUIRE_THROWS_WITH(m.require_tensor("nope"), Catch::Contains("sharded") && Catch::Contains("'nope'"));
  REQUIRE_THROWS_WITH(m.shard_of("nope"), Catch::Contains("'nope'"));
  REQUIRE_THROWS_WITH(m.tensor("nope"), Catch::Contains("'nope'"));
}

TEST_CASE("safetensors: a folder with one model.safetensors, and a file path", "[safetensors]") {
  TempDir dir;
  fs::copy_file(kSingle, dir.path / "model.safetensors");
  fs::copy_file(kSharded + "/model.safetensors.index.json", dir.path / "model.safetensors.index.json");
  // model.safetensors wins over the index (which points at shards that are not there), as in transformers.
  const SafetensorsModel m = SafetensorsModel::open(dir.path.string());
  REQUIRE(m.shards().size() == 1);
  REQUIRE(m.tensor_count() == 8);
  require_values(m.view("f16_1d"), kSingleFloats[3]);
  REQUIRE_THROWS_WITH(m.view("i64_buffer"), Catch::Contains("I64"));

  const SafetensorsModel one = SafetensorsModel::open(kSingle);
  REQUIRE(one.shards().size() == 1);
  REQUIRE(one.path() == kSingle);
  require_values(one.view("bf16_2d"), kSingleFloats[4]);
}
