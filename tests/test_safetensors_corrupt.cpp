// Corrupt safetensors files and checkpoint folders: every one must be a clear
// qilin::Error naming the file and the field, never a crash or an
// out-of-bounds read (each parse gets a heap buffer of exactly the file's size,
// so that ASan catches a read past the end).
//
// Duplicate JSON keys: a JSON tree would keep the last value silently; the
// reader rejects duplicate tensor names, "__metadata__", metadata keys and
// tensor fields, and index.json keys at any depth.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"

using namespace qilin;

namespace {

namespace fs = std::filesystem;

const std::string kDataDir = std::string(QILIN_TEST_DATA_DIR) + "/safetensors";

// A file from its JSON header and the size of its data section (zero bytes).
std::vector<uint8_t> make_file(const std::string& json, size_t data_bytes,
                               std::optional<uint64_t> header_len = std::nullopt) {
  std::vector<uint8_t> out;
  const uint64_t n = header_len.value_or(json.size());
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), json.begin(), json.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

// Two tensors tiling 32 data bytes: a is F32 2x3 at [0, 24), b is BF16 [4] at [24, 32).
const std::string kA = R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})";
const std::string kB = R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]})";
const std::string kGood = "{" + std::string(R"("__metadata__":{"format":"pt"},)") + kA + "," + kB + "}";

// Parses from a heap buffer of exactly bytes.size() bytes.
SafetensorsFile parse(const std::vector<uint8_t>& bytes) {
  std::shared_ptr<uint8_t[]> owner(new uint8_t[bytes.size() + (bytes.empty() ? 1 : 0)]);
  if (!bytes.empty()) std::memcpy(owner.get(), bytes.data(), bytes.size());
  return SafetensorsFile::parse(owner.get(), bytes.size(), "corrupt.safetensors", owner);
}

// Requires the file to be rejected with an Error naming the file and containing `what`.
void require_rejected(const std::vector<uint8_t>& bytes, const std::string& what) {
  INFO("expecting an error mentioning: " << what);
  REQUIRE_THROWS_WITH(parse(bytes), Catch::Contains("corrupt.safetensors") && Catch::Contains(what));
}
void require_rejected(const std::string& json, size_t data_bytes, const std::string& what) {
  INFO("header: " << json);
  require_rejected(make_file(json, data_bytes), what);
}
// A header with tensor "b" replaced by `b` (a JSON member), 32 data bytes.
void require_b_rejected(const std::string& b, const std::string& what) {
  require_rejected("{" + kA + "," + b + "}", 32, what);
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("qilin_stc_" + std::to_string(::getpid()) + "_" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path / name) << text; }
  void write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    std::ofstream(path / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
};

}  // namespace

TEST_CASE("safetensors corrupt: the hand-made baseline is valid", "[safetensors]") {
  const SafetensorsFile f = parse(make_file(kGood, 32));
  REQUIRE(f.tensors().size() == 2);
  REQUIRE(f.require_tensor("a").shape == Shape{2, 3});
  REQUIRE(f.require_tensor("b").dtype == DType::bf16);
  REQUIRE(*f.find_metadata("format") == "pt");
  // Padding with spaces (as writers do), no metadata, and an empty file are all valid.
  REQUIRE(parse(make_file("{" + kA + "," + kB + "}      ", 32)).tensors().size() == 2);
  REQUIRE(parse(make_file("{}", 0)).tensors().empty());
  // Unknown tensor fields are ignored, nested or not, as the reference implementation does.
  const std::string extra = R"("b":{"x":[{"y":[1,{}]},null],"dtype":"BF16","z":{"w":"v"},"shape":[4],)"
                            R"("data_offsets":[24,32],"q":1.5})";
  REQUIRE(parse(make_file("{" + kA + "," + extra + "}", 32)).require_tensor("b").nbytes == 8);
}

TEST_CASE("safetensors corrupt: truncation at every byte, and trailing bytes", "[safetensors]") {
  const std::vector<uint8_t> full = read_bytes(kDataDir + "/single.safetensors");
  REQUIRE_NOTHROW(parse(full));
  for (size_t n = 0; n < full.size(); ++n) {
    INFO("truncated to " << n << " of " << full.size() << " bytes");
    const std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    REQUIRE_THROWS_WITH(parse(cut), Catch::Contains("corrupt.safetensors"));  // the tensors tile the data exactly
  }
  std::vector<uint8_t> longer = full;
  longer.push_back(0);
  require_rejected(longer, "the last 1 bytes of the data section belong to no tensor");
}

TEST_CASE("safetensors corrupt: header length lies", "[safetensors]") {
  require_rejected(std::vector<uint8_t>{1, 0, 0}, "fewer than the 8");
  require_rejected(make_file(kGood, 32, 100'000'001), "more than the limit of 100000000");
  require_rejected(make_file(kGood, 32, UINT64_MAX), "more than the limit");
  require_rejected(make_file(kGood, 32, kGood.size() + 33), "truncated: header length");
  require_rejected(make_file(kGood, 32, 0), "does not start with '{'");
  require_rejected(make_file(kGood, 32, kGood.size() - 1), "not valid JSON");  // the closing brace is cut
  // A zero data byte joins the JSON: nlohmann would take NUL as the end of the text.
  require_rejected(make_file(kGood, 32, kGood.size() + 1), "NUL byte at 144 of the header");
  require_rejected(make_file(kGood + "  ", 32, kGood.size()), "the last 2 bytes");  // padding counted as data
}

TEST_CASE("safetensors corrupt: invalid JSON and the wrong JSON values", "[safetensors]") {
  require_rejected(" {}", 0, "does not start with '{'");
  require_rejected("{", 0, "not valid JSON");
  require_rejected("{\"a\":", 0, "not valid JSON");
  require_rejected("{'a':1}", 0, "not valid JSON");
  require_rejected("{}x", 0, "not valid JSON");
  require_rejected("{}{}", 0, "not valid JSON");
  require_rejected("{\"\xff\":{}}", 0, "not valid JSON");  // invalid UTF-8 in a key
  require_rejected("{\"a\":{\"dtype\":\"F32\",}}", 0, "not valid JSON");
  require_rejected("{\"a\":[]}", 0, "tensor 'a' is an array, not an object");
  require_rejected("{\"a\":1}", 0, "tensor 'a' is a number, not an object");
  require_rejected("{\"__metadata__\":[]}", 0, "__metadata__ is an array");
  require_rejected("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ 'k' is a number, not a string");
  require_rejected("{\"__metadata__\":{\"k\":{}}}", 0, "__metadata__ 'k' is an object");
  require_b_rejected(R"("b":{"shape":[4],"data_offsets":[24,32]})", "tensor 'b' has no dtype");
  require_b_rejected(R"("b":{"dtype":"BF16","data_offsets":[24,32]})", "tensor 'b' has no shape");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[4]})", "tensor 'b' has no data_offsets");
  require_b_rejected(R"("b":{"dtype":2,"shape":[4],"data_offsets":[24,32]})", "dtype is a number");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":4,"data_offsets":[24,32]})", "shape is a number");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[-4],"data_offsets":[24,32]})", "shape[0] is a negative");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[4.0],"data_offsets":[24,32]})", "shape[0] is a fractional");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[2,"2"],"data_offsets":[24,32]})", "shape[1] is a string");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[[4]],"data_offsets":[24,32]})", "shape[0] is an array");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[4],"data_offsets":{}})", "data_offsets is an object");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24]})", "data_offsets has 1 entries");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32,40]})", "more than 2 entries");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[-24,32]})", "data_offsets[0] is a negative");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,true]})", "data_offsets[1] is a boolean");
  std::string deep = R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32],"x":)";
  deep += std::string(100, '[') + std::string(100, ']') + "}";
  require_b_rejected(deep, "field 'x' nests deeper than 64");
  require_rejected(std::string(200000, '['), 0, "does not start with '{'");
  require_rejected("{\"x\":" + std::string(200000, '['), 0, "tensor 'x' is an array");
}

TEST_CASE("safetensors corrupt: dtypes", "[safetensors]") {
  for (const char* bad : {"F99", "f32", "", "F4", "float32"}) {
    require_b_rejected(std::string(R"("b":{"dtype":")") + bad + R"(","shape":[4],"data_offsets":[24,32]})",
                       std::string("tensor 'b' has dtype '") + bad + "'");
  }
  // Known to safetensors but not to Qilin: listed, checked, refused on use.
  const SafetensorsFile f = parse(make_file(R"({"u":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                                            R"("l":{"dtype":"I64","shape":[2],"data_offsets":[8,24]}})",
                                            24));
  REQUIRE(!f.require_tensor("u").loadable());
  REQUIRE_THROWS_WITH(f.tensor("u"), Catch::Contains("corrupt.safetensors") && Catch::Contains("'u' has dtype U8"));
  REQUIRE_THROWS_WITH(f.tensor("l"), Catch::Contains("'l' has dtype I64"));
  require_rejected(R"({"l":{"dtype":"I64","shape":[2],"data_offsets":[0,8]}})", 8, "hold 8 bytes");  // I64 is 8 bytes
}

TEST_CASE("safetensors corrupt: shapes", "[safetensors]") {
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[1099511627776,1099511627776],"data_offsets":[24,32]})",
                     "more elements than fit in 64 bits");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[9223372036854775808],"data_offsets":[24,32]})",
                     "more elements than fit");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[18446744073709551615],"data_offsets":[24,32]})",
                     "more elements than fit");
  require_b_rejected(R"("b":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[24,32]})",
                     "needs more bytes than fit");  // 2^62 elements fit, 2^64 bytes do not
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[100000000000000000000],"data_offsets":[24,32]})",
                     "shape[0] is a fractional or out-of-range number");  // beyond uint64: parsed as a double
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[2,2,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[24,32]})",
                     "more than 16 dimensions");
  // Valid in the file but not a Qilin tensor: more than 4 dimensions, or no elements.
  const SafetensorsFile f = parse(make_file(R"({"five":{"dtype":"BF16","shape":[1,1,2,1,2],"data_offsets":[0,8]},)"
                                            R"("e1":{"dtype":"F32","shape":[5,0],"data_offsets":[8,8]},)"
                                            R"("e2":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})",
                                            8));
  REQUIRE_THROWS_WITH(f.tensor("five"), Catch::Contains("5 dimensions [1, 1, 2, 1, 2]"));
  REQUIRE_THROWS_WITH(f.tensor("e1"), Catch::Contains("'e1' has no elements (shape [5, 0])"));
  REQUIRE_THROWS_WITH(f.tensor("e2"), Catch::Contains("no elements"));
  REQUIRE(f.require_tensor("e1").data == nullptr);
}

TEST_CASE("safetensors corrupt: data_offsets", "[safetensors]") {
  auto b = [](const std::string& offsets) {
    return R"("b":{"dtype":"BF16","shape":[4],"data_offsets":)" + offsets + "}";
  };
  require_b_rejected(b("[32,24]"), "data_offsets [32, 24] end before they begin");
  require_b_rejected(b("[24,40]"), "reach past the end of the data section (32 bytes)");
  require_b_rejected(b("[24,18446744073709551615]"), "reach past the end");
  require_b_rejected(b("[18446744073709551615,18446744073709551615]"), "reach past the end");
  require_b_rejected(b("[24,30]"), "hold 6 bytes, but shape [4] of BF16 needs 8");
  require_b_rejected(b("[16,24]"), "tensors 'a' (bytes [0, 24)) and 'b' (bytes [16, 24)) overlap");
  require_b_rejected(b("[0,8]"), "overlap");
  require_rejected("{" + kA + "," + b("[24,32]") + "}", 40, "the last 8 bytes of the data section belong to no");
  require_rejected(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]}})", 32,
                   "bytes [0, 8) of the data section, before tensor 'a', belong to no tensor");
  require_rejected(R"({"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]},"z":{"dtype":"I8","shape":[0],)"
                   R"("data_offsets":[1,1]}})",
                   2, "overlap");  // an empty tensor inside another one
  require_rejected("{" + kA + "," + kB + "}", 0, "reach past the end of the data section (0 bytes)");
}

TEST_CASE("safetensors corrupt: duplicate keys", "[safetensors]") {
  require_rejected("{" + kA + "," + kA + "}", 24, "tensor 'a' appears twice");
  require_rejected(R"({"__metadata__":{},"__metadata__":{}})", 0, "__metadata__ appears twice");
  require_rejected(R"({"__metadata__":{"k":"1","j":"2","k":"3"}})", 0, "__metadata__ key 'k' appears twice");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[4],"dtype":"F16","data_offsets":[24,32]})",
                     "tensor 'b': field 'dtype' appears twice");
  require_b_rejected(R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32],"shape":[4]})",
                     "field 'shape' appears twice");
  require_b_rejected(R"("b":{"dtype":"BF16","data_offsets":[0,0],"shape":[4],"data_offsets":[24,32]})",
                     "field 'data_offsets' appears twice");
}

TEST_CASE("safetensors corrupt: random byte flips never crash", "[safetensors]") {
  const std::vector<uint8_t> full = read_bytes(kDataDir + "/single.safetensors");
  const SafetensorsFile whole = parse(full);
  const size_t header_end = static_cast<size_t>(whole.data_offset());
  std::mt19937 rng(2024);
  int rejected = 0, accepted = 0;
  for (int it = 0; it < 20000; ++it) {
    std::vector<uint8_t> b = full;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      // Mostly the length and the JSON, where the structure is.
      const size_t at = rng() % 4 != 0 ? rng() % header_end : rng() % b.size();
      b[at] = static_cast<uint8_t>(rng() % 2 ? rng() : "{}[]\",:0123456789 -.e"[rng() % 21]);
    }
    try {
      const SafetensorsFile f = parse(b);
      uint64_t end = 0;
      for (const SafetensorsTensorInfo& t : f.tensors()) {  // whatever parses must describe bytes in the buffer
        REQUIRE(t.offset == end);
        end += t.nbytes;
        if (t.loadable()) REQUIRE(f.view(t).nbytes() == t.nbytes);
      }
      REQUIRE(f.data_offset() + end == b.size());
      ++accepted;
    } catch (const Error& e) {
      REQUIRE(std::string(e.what()).find("corrupt.safetensors") != std::string::npos);
      ++rejected;
    }
  }
  INFO(rejected << " rejected, " << accepted << " accepted");
  REQUIRE(rejected > 10000);  // most flips in the structure must be caught
}

TEST_CASE("safetensors corrupt: files and folders that cannot be opened", "[safetensors]") {
  REQUIRE_THROWS_WITH(SafetensorsFile::open("/no/such/file.safetensors"), Catch::Contains("/no/such/file.safetensors"));
  REQUIRE_THROWS_WITH(SafetensorsFile::open(kDataDir), Catch::Contains("not a regular file"));
  REQUIRE_THROWS_WITH(SafetensorsModel::open("/no/such/model"),
                      Catch::Contains("/no/such/model") && Catch::Contains("no such model folder"));
  TempDir dir;
  REQUIRE_THROWS_WITH(SafetensorsModel::open(dir.path.string()),
                      Catch::Contains("neither model.safetensors nor model.safetensors.index.json"));
  dir.write("model.safetensors", std::vector<uint8_t>{});
  REQUIRE_THROWS_WITH(SafetensorsModel::open(dir.path.string()),
                      Catch::Contains("model.safetensors") && Catch::Contains("truncated"));
}

TEST_CASE("safetensors corrupt: sharded checkpoints", "[safetensors]") {
  TempDir dir;
  const std::string folder = dir.path.string();
  const std::string shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors";
  dir.write(shard1, make_file("{" + kA + "," + kB + "}", 32));
  dir.write(shard2, make_file(R"({"c":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", 4));
  auto index = [&](const std::string& weight_map) {
    dir.write("model.safetensors.index.json", R"({"metadata":{"total_size":36},"weight_map":)" + weight_map + "}");
  };
  auto rejected = [&](const std::string& what) {
    INFO("expecting an error mentioning: " << what);
    REQUIRE_THROWS_WITH(SafetensorsModel::open(folder), Catch::Contains(what));
  };
  const std::string good = R"({"a":")" + shard1 + R"(","b":")" + shard1 + R"(","c":")" + shard2 + R"("})";
  index(good);
  const SafetensorsModel m = SafetensorsModel::open(folder);
  REQUIRE(m.tensor_count() == 3);
  REQUIRE(m.require_tensor("c").dtype == DType::f16);

  // A tensor of a shard that the weight map leaves out is kept.
  index(R"({"a":")" + shard1 + R"(","c":")" + shard2 + R"("})");
  REQUIRE(SafetensorsModel::open(folder).find_tensor("b") != nullptr);

  index(R"({"a":")" + shard1 + R"(","c":"model-00003-of-00002.safetensors"})");
  rejected("model.safetensors.index.json: weight_map 'c': shard 'model-00003-of-00002.safetensors' does not exist");
  index(R"({"a":")" + shard1 + R"(","d":")" + shard2 + R"("})");
  rejected("weight_map puts tensor 'd' in '" + shard2 + "', which has no such tensor");
  index(R"({"a":")" + shard2 + R"(","c":")" + shard2 + R"("})");
  rejected("weight_map puts tensor 'a' in '" + shard2 + "'");
  index(R"({"a":"../)" + shard1 + R"("})");
  rejected("weight_map 'a': '../" + shard1 + "' is not a file name");
  index(R"({"a":"/etc/passwd"})");
  rejected("is not a file name");
  index(R"({"a":".."})");
  rejected("is not a file name");
  index(R"({"a":""})");
  rejected("is not a file name");
  index(R"({"a":3})");
  rejected("weight_map 'a' is number, not a file name");
  index("{}");
  rejected("weight_map is empty");
  index("[]");
  rejected("weight_map is array, not an object");
  index(R"({"a":")" + shard1 + R"(","a":")" + shard2 + R"("})");
  rejected("key 'a' appears twice");
  dir.write("model.safetensors.index.json", R"({"weight_map":{"a":")" + shard1 + R"("},"weight_map":{}})");
  rejected("key 'weight_map' appears twice");
  dir.write("model.safetensors.index.json", R"({"metadata":{}})");
  rejected("has no \"weight_map\"");
  dir.write("model.safetensors.index.json", "[1]");
  rejected("is array, not a JSON object");
  dir.write("model.safetensors.index.json", R"({"weight_map":{"a":)");
  rejected("model.safetensors.index.json: not valid JSON");
  dir.write("model.safetensors.index.json", std::string(1000, '['));
  rejected("nests deeper than 64");

  // The same tensor in two shards.
  dir.write(shard2, make_file(R"({"c":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}})",
                              8));
  index(good);
  rejected("tensor 'b' is in two shards");
  // A corrupt shard names itself.
  dir.write(shard2, make_file(R"({"c":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", 3));
  rejected(shard2 + ": tensor 'c': data_offsets [0, 4] reach past the end");
}
