// GGUF reader and writer: a file written by the Python gguf package, Qilin's
// own round trip, and byte identity between the two writers. Corrupt files
// are in test_gguf_corrupt.cpp.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/gguf.h"
#include "core/gguf_writer.h"
#include "core/half.h"
#include "core/quant.h"

using namespace qilin;

namespace {

const std::string kPythonFile = std::string(QILIN_TEST_DATA_DIR) + "/gguf/python_v3.gguf";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Mirrors value() in make_gguf_fixtures.py: multiples of 1/8, exact in f16 and bf16.
float fixture_value(int64_t i) { return static_cast<float>((i * 7) % 23 - 11) * 0.125f; }

std::vector<float> fixture_values(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = fixture_value(i);
  return v;
}

// A scratch directory removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("qilin_gguf_" + std::to_string(::getpid()) + "_" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// Copies every key and tensor of `in` into a writer, in file order.
GgufWriter rewrite(const GgufFile& in) {
  GgufWriter w;
  for (const auto& [key, value] : in.metadata()) w.add(key, value);
  for (const GgufTensorInfo& t : in.tensors()) w.add_tensor(t.name, in.view(t));
  return w;
}

}  // namespace

TEST_CASE("gguf: reads every metadata type written by the Python gguf package", "[gguf]") {
  const GgufFile f = GgufFile::open(kPythonFile);
  REQUIRE(f.version() == 3);
  REQUIRE(f.alignment() == 64);
  REQUIRE(f.metadata().size() == 25);
  REQUIRE(f.metadata()[0].first == "general.architecture");
  REQUIRE(f.require_string("general.architecture") == "qilintest");

  REQUIRE(f.require("test.u8") == GgufValue::u8(200));
  REQUIRE(f.require("test.i8") == GgufValue::i8(-100));
  REQUIRE(f.require("test.u16") == GgufValue::u16(60000));
  REQUIRE(f.require("test.i16") == GgufValue::i16(-30000));
  REQUIRE(f.require("test.u32") == GgufValue::u32(4000000000u));
  REQUIRE(f.require("test.i32") == GgufValue::i32(-2000000000));
  REQUIRE(f.require("test.u64") == GgufValue::u64((1ull << 63) + 5));
  REQUIRE(f.require("test.i64") == GgufValue::i64(-(int64_t{1} << 62)));
  REQUIRE(f.require("test.f32") == GgufValue::f32(0.15625f));
  REQUIRE(f.require("test.f64") == GgufValue::f64(3.141592653589793));
  REQUIRE(f.require("test.bool") == GgufValue::boolean(true));
  REQUIRE(f.require_string("test.string") == "h\xc3\xa9llo, \xe4\xb8\x96\xe7\x95\x8c");

  REQUIRE(f.require("test.arr_u8").elem_type() == GgufType::u8);
  REQUIRE(f.require_int_array("test.arr_u8") == std::vector<int64_t>{1, 2, 255});
  REQUIRE(f.require("test.arr_i16").elem_type() == GgufType::i16);
  REQUIRE(f.require_int_array("test.arr_i16") == std::vector<int64_t>{-1, 2, -3});
  REQUIRE(f.require("test.arr_u64").at(0) == GgufValue::u64(UINT64_MAX));
  REQUIRE(f.require_int_array("test.arr_i64") == std::vector<int64_t>{-5, 7});
  REQUIRE(f.require_float_array("test.arr_f32") == std::vector<float>{0.5f, -1.25f});
  REQUIRE(f.require("test.arr_f64").at(0) == GgufValue::f64(1e300));
  REQUIRE(f.require("test.arr_bool").at(1) == GgufValue::boolean(false));
  REQUIRE(f.require_string_array("test.arr_str") == std::vector<std::string>{"a", "", "\xc3\xbc"});

  const std::vector<GgufValue>* nested = f.require("test.nested").as_array_of_arrays();
  REQUIRE(nested != nullptr);
  REQUIRE(nested->size() == 3);
  REQUIRE(*(*nested)[0].as_int_array() == std::vector<int64_t>{1, 2, 3});
  REQUIRE(*(*nested)[2].as_int_array() == std::vector<int64_t>{5, 6});
  REQUIRE(*f.require("test.nested_str").at(1).as_string_array() == std::vector<std::string>{"z"});
  const GgufValue deep = f.require("test.nested3").at(0).at(1);
  REQUIRE(*deep.as_int_array() == std::vector<int64_t>{2, 3});
}

TEST_CASE("gguf: typed accessors give defaults and name the key and file", "[gguf]") {
  const GgufFile f = GgufFile::open(kPythonFile);
  REQUIRE(f.get_int("no.such.key", 7) == 7);
  REQUIRE(f.get_string("no.such.key", "x") == "x");
  REQUIRE(f.get_float("test.f32", 0.0) == 0.15625);
  REQUIRE(f.get_float("test.u8", 0.0) == 200.0);  // integers read as numbers
  REQUIRE(f.get_bool("test.bool", false));
  REQUIRE(f.get_int("test.u32", 0) == 4000000000);
  REQUIRE_THROWS_WITH(f.require_int("no.such.key"),
                      Catch::Contains("no.such.key") && Catch::Contains("python_v3.gguf"));
  REQUIRE_THROWS_WITH(f.get_int("test.string", 0), Catch::Contains("test.string") && Catch::Contains("integer"));
  REQUIRE_THROWS_WITH(f.require_string("test.u8"), Catch::Contains("test.u8") && Catch::Contains("u8 200"));
  REQUIRE_THROWS_WITH(f.require_int("test.u64"), Catch::Contains("test.u64"));  // does not fit in int64
  REQUIRE_THROWS_WITH(f.require_string_array("test.arr_u8"), Catch::Contains("array<u8>[3]"));
  REQUIRE_THROWS_WITH(f.require_tensor("nope"), Catch::Contains("nope") && Catch::Contains("python_v3.gguf"));
}

TEST_CASE("gguf: tensors of the Python file map to Qilin shapes and bytes", "[gguf]") {
  const GgufFile f = GgufFile::open(kPythonFile);
  const std::vector<std::string> names = {"f32_2d", "f16_1d", "bf16_2d", "q8_0", "q4_0",
                                          "q4_k",   "f32_4d", "i32_1d",  "i8_2d"};
  REQUIRE(f.tensors().size() == names.size());
  for (size_t i = 0; i < names.size(); ++i) REQUIRE(f.tensors()[i].name == names[i]);
  for (const GgufTensorInfo& t : f.tensors()) {
    REQUIRE(reinterpret_cast<uintptr_t>(t.data) % 64 == 0);  // the mapping is page-aligned, offsets 64-aligned
    REQUIRE(t.nbytes == row_bytes(t.dtype, t.shape.last()) * static_cast<size_t>(t.shape.rows()));
  }

  const Tensor f32 = f.tensor("f32_2d");
  REQUIRE(f32.shape() == Shape{3, 8});  // numpy (3, 8) is GGUF ne = {8, 3}
  REQUIRE(f32.dtype() == DType::f32);
  REQUIRE(f32.data() == f.require_tensor("f32_2d").data);  // a view of the mapping, not a copy
  for (int i = 0; i < 24; ++i) REQUIRE(f32.data_as<float>()[i] == fixture_value(i));

  const GgufTensorInfo& f4 = f.require_tensor("f32_4d");
  REQUIRE(f4.shape == Shape{2, 1, 3, 4});
  const TensorView v4 = f.view(f4);
  REQUIRE(v4.stride_bytes(0) == 48);
  REQUIRE(v4.data_as<float>()[23] == fixture_value(23));

  const GgufTensorInfo& h = f.require_tensor("f16_1d");
  REQUIRE((h.shape == Shape{32} && h.dtype == DType::f16));
  const GgufTensorInfo& b = f.require_tensor("bf16_2d");
  REQUIRE((b.shape == Shape{2, 16} && b.dtype == DType::bf16));
  std::vector<float> x(32);
  for (const GgufTensorInfo* t : {&h, &b}) {
    traits(t->dtype).to_float(t->data, x.data(), 32);
    for (int i = 0; i < 32; ++i) REQUIRE(x[static_cast<size_t>(i)] == fixture_value(i));
  }

  // Quantized tensors: gguf-py's bytes equal Qilin's quantizer on the same values.
  for (const auto& [name, dtype, rows, cols] :
       {std::tuple{"q8_0", DType::q8_0, 2, 64}, std::tuple{"q4_0", DType::q4_0, 3, 32}}) {
    const GgufTensorInfo& q = f.require_tensor(name);
    REQUIRE(q.shape == Shape{rows, cols});
    REQUIRE(q.dtype == dtype);
    std::vector<uint8_t> mine(q.nbytes);
    traits(dtype).from_float(fixture_values(rows * cols).data(), mine.data(), rows * cols);
    REQUIRE(std::vector<uint8_t>(q.data, q.data + q.nbytes) == mine);
  }
  const GgufTensorInfo& k = f.require_tensor("q4_k");
  REQUIRE((k.shape == Shape{1, 256} && k.dtype == DType::q4_k && k.nbytes == 144));
  for (int i = 0; i < 144; ++i) REQUIRE(k.data[i] == ((i * 37 + 11) & 0xff));

  const GgufTensorInfo& i32 = f.require_tensor("i32_1d");
  REQUIRE((i32.shape == Shape{5} && i32.dtype == DType::i32));
  for (int i = 0; i < 5; ++i) REQUIRE(reinterpret_cast<const int32_t*>(i32.data)[i] == i * i - 3);
  const GgufTensorInfo& i8 = f.require_tensor("i8_2d");
  REQUIRE((i8.shape == Shape{2, 3} && i8.dtype == DType::i8));
  for (int i = 0; i < 6; ++i) REQUIRE(static_cast<int8_t>(i8.data[i]) == i - 3);
}

TEST_CASE("gguf: Qilin's writer reproduces the Python file byte for byte", "[gguf]") {
  // Same keys, values, tensors and alignment in the same order: both writers
  // follow the spec, so the files must be identical. This is also the check
  // that the Python package reads what Qilin writes (it reads this very file).
  const GgufFile in = GgufFile::open(kPythonFile);
  TempDir dir;
  const std::string out = dir.file("rewrite.gguf");
  rewrite(in).write(out);
  REQUIRE(read_bytes(out) == read_bytes(kPythonFile));
  REQUIRE_FALSE(std::filesystem::exists(out + ".partial"));
}

TEST_CASE("gguf: round trip of every value type through Qilin's writer and reader", "[gguf]") {
  TempDir dir;
  const std::string path = dir.file("roundtrip.gguf");
  GgufWriter w;  // default alignment 32: no general.alignment key written
  const std::vector<GgufValue> u16s = {GgufValue::u16(1), GgufValue::u16(65535)};
  const std::vector<std::pair<std::string, GgufValue>> kv = {
      {"general.architecture", GgufValue::string("llama")},
      {"llama.block_count", GgufValue::u32(30)},
      {"llama.rope.freq_base", GgufValue::f32(100000.0f)},
      {"t.i8", GgufValue::i8(-128)},
      {"t.u64", GgufValue::u64(UINT64_MAX)},
      {"t.i64", GgufValue::i64(INT64_MIN)},
      {"t.f64", GgufValue::f64(-0.0)},
      {"t.nan", GgufValue::f32(std::nanf(""))},
      {"t.bool", GgufValue::boolean(false)},
      {"t.empty_string", GgufValue::string("")},
      {"t.empty_array", GgufValue::string_array({})},
      {"t.u16s", GgufValue::array(GgufType::u16, u16s)},
      {"tokenizer.ggml.tokens", GgufValue::string_array({"<s>", "\xc4\xa0the", ""})},
      {"tokenizer.ggml.scores", GgufValue::f32_array(std::vector<float>{0.0f, -1.5f, 2.0f})},
      {"tokenizer.ggml.token_type", GgufValue::i32_array(std::vector<int32_t>{3, 1, 1})},
      {"t.nested", GgufValue::array_of_arrays({GgufValue::string_array({"a"}), GgufValue::i32_array({})})},
  };
  for (const auto& [key, value] : kv) w.add(key, value);

  const std::vector<float> emb = fixture_values(4 * 256);
  std::vector<uint8_t> q6(row_bytes(DType::q6_k, 256) * 4);
  quantize_row_q6_k(emb.data(), q6.data(), 4 * 256);
  w.add_tensor("token_embd.weight", Shape{4, 256}, DType::q6_k, q6.data());
  w.add_tensor("blk.0.attn_q.weight", Shape{2, 64}, DType::q4_1, [&](std::span<uint8_t> dst) {
    REQUIRE(dst.size() == 2 * 2 * 20);
    quantize_row_q4_1(emb.data(), dst.data(), 128);
  });
  const Tensor norm = Tensor::zeros({7}, DType::f32);
  norm.data_as<float>()[6] = 1.5f;
  w.add_tensor("output_norm.weight", norm);
  std::vector<uint64_t> progress;
  w.write(path, [&](uint64_t done, uint64_t total) {
    REQUIRE(total == w.data_bytes());
    progress.push_back(done);
  });
  REQUIRE(progress == std::vector<uint64_t>{864, 864 + 96, 864 + 96 + 32});

  const GgufFile f = GgufFile::open(path);
  REQUIRE(f.alignment() == 32);
  REQUIRE_FALSE(f.has("general.alignment"));
  REQUIRE(f.metadata().size() == kv.size());
  for (size_t i = 0; i < kv.size(); ++i) {
    INFO(kv[i].first);
    REQUIRE(f.metadata()[i].first == kv[i].first);
    REQUIRE(f.metadata()[i].second == kv[i].second);
  }
  const GgufTensorInfo& e = f.require_tensor("token_embd.weight");
  REQUIRE((e.shape == Shape{4, 256} && e.dtype == DType::q6_k && e.offset == 0));
  REQUIRE(std::vector<uint8_t>(e.data, e.data + e.nbytes) == q6);
  const GgufTensorInfo& q = f.require_tensor("blk.0.attn_q.weight");
  REQUIRE((q.dtype == DType::q4_1 && q.offset == 864));
  std::vector<uint8_t> q41(80);
  quantize_row_q4_1(emb.data(), q41.data(), 128);
  REQUIRE(std::vector<uint8_t>(q.data, q.data + q.nbytes) == q41);
  REQUIRE(f.tensor("output_norm.weight").data_as<float>()[6] == 1.5f);
}

TEST_CASE("gguf: writer rejects bad input and leaves no file behind", "[gguf]") {
  TempDir dir;
  GgufWriter w;
  w.add("a", GgufValue::u8(1));
  REQUIRE_THROWS_WITH(w.add("a", GgufValue::u8(2)), Catch::Contains("'a' added twice"));
  REQUIRE_THROWS_AS(w.add("", GgufValue::u8(2)), Error);
  REQUIRE_THROWS_WITH(w.add("general.alignment", GgufValue::u32(48)), Catch::Contains("power of two"));
  REQUIRE_THROWS_WITH(w.add("general.alignment", GgufValue::u64(64)), Catch::Contains("u32"));
  const float x[32] = {};
  REQUIRE_THROWS_WITH(w.add_tensor(std::string(64, 'n'), Shape{32}, DType::f32, x), Catch::Contains("64 bytes"));
  REQUIRE_THROWS_WITH(w.add_tensor("q", Shape{2, 48}, DType::q8_0, x), Catch::Contains("block size 32"));
  REQUIRE_THROWS_AS(w.add_tensor("z", Shape{0, 32}, DType::f32, x), Error);
  w.add_tensor("t", Shape{32}, DType::f32, x);
  REQUIRE_THROWS_WITH(w.add_tensor("t", Shape{32}, DType::f32, x), Catch::Contains("'t' added twice"));
  w.add_tensor("bad", Shape{32}, DType::f32, [](std::span<uint8_t>) { fail("test", "producer failed"); });

  const std::string path = dir.file("out.gguf");
  REQUIRE_THROWS_WITH(w.write(path), Catch::Contains("producer failed"));
  REQUIRE_FALSE(std::filesystem::exists(path));
  REQUIRE_FALSE(std::filesystem::exists(path + ".partial"));
  REQUIRE_THROWS_WITH(w.write(dir.file("no/such/dir/out.gguf")), Catch::Contains("no/such/dir"));
}

TEST_CASE("gguf: custom alignment pads the data section and every tensor", "[gguf]") {
  TempDir dir;
  const std::string path = dir.file("aligned.gguf");
  GgufWriter w(256);
  const float x[40] = {1.0f};
  w.add_tensor("a", Shape{8}, DType::f32, x);
  w.add_tensor("b", Shape{5, 8}, DType::f32, x);
  w.write(path);
  const GgufFile f = GgufFile::open(path);
  REQUIRE(f.alignment() == 256);
  REQUIRE(f.require_int("general.alignment") == 256);
  REQUIRE(f.data_offset() % 256 == 0);
  REQUIRE(f.require_tensor("b").offset == 256);
  REQUIRE(f.file_size() == f.data_offset() + 512);
}
