// Corrupt GGUF files: every one must be a clear qilin::Error naming the file
// and the field, never a crash or an out-of-bounds read (the asan+ubsan preset
// runs this suite; each parse gets a heap buffer of exactly the file's size so
// that a read past the end is caught).
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
#include "core/gguf.h"

using namespace qilin;

namespace {

// Little-endian byte builder for hand-made files.
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes& str(std::string_view s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& raw(const Bytes& o) {
    b.insert(b.end(), o.b.begin(), o.b.end());
    return *this;
  }
};

Bytes kv(std::string_view key, uint32_t type, const Bytes& payload) { return Bytes().str(key).u32(type).raw(payload); }
Bytes kv_u32(std::string_view key, uint32_t v) { return kv(key, 4, Bytes().u32(v)); }

struct RawTensor {
  std::string name;
  std::vector<uint64_t> ne;  // innermost first, as in the file
  uint32_t type;
  uint64_t offset;
};

// A small valid file by default; each test case breaks one thing.
struct RawFile {
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  std::optional<uint64_t> n_tensors, n_kv;  // override the true counts
  std::vector<Bytes> kvs = {kv("general.architecture", 8, Bytes().str("llama"))};
  std::vector<RawTensor> tensors = {{"a", {8, 2}, 0, 0}, {"b", {32}, 8, 64}};  // f32 8x2, then q8_0 32
  uint32_t alignment = 32;
  uint64_t data_bytes = 128;

  std::vector<uint8_t> build() const {
    Bytes out;
    out.u32(magic).u32(version).u64(n_tensors.value_or(tensors.size())).u64(n_kv.value_or(kvs.size()));
    for (const Bytes& k : kvs) out.raw(k);
    for (const RawTensor& t : tensors) {
      out.str(t.name).u32(static_cast<uint32_t>(t.ne.size()));
      for (uint64_t n : t.ne) out.u64(n);
      out.u32(t.type).u64(t.offset);
    }
    while (out.b.size() % alignment != 0) out.b.push_back(0);
    out.b.resize(out.b.size() + data_bytes, 0);
    return out.b;
  }
};

// Parses from a heap buffer of exactly bytes.size() bytes.
GgufFile parse(const std::vector<uint8_t>& bytes) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size() + (bytes.empty() ? 1 : 0)]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  std::shared_ptr<uint8_t[]> owner(copy.release());
  return GgufFile::parse(owner.get(), bytes.size(), "corrupt.gguf", owner);
}

// Requires parse() to throw an Error that names the file and contains `what`.
void require_rejected(const RawFile& f, const std::string& what) {
  INFO("expecting an error mentioning: " << what);
  REQUIRE_THROWS_WITH(parse(f.build()), Catch::Contains("corrupt.gguf") && Catch::Contains(what));
}

std::vector<uint8_t> python_file() {
  std::ifstream in(std::string(QILIN_TEST_DATA_DIR) + "/gguf/python_v3.gguf", std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("gguf corrupt: the hand-made baseline is valid, as v2 and as v3", "[gguf]") {
  RawFile v2;
  v2.version = 2;  // v2 and v3 share the little-endian layout (v3 only added big-endian files)
  REQUIRE(parse(v2.build()).version() == 2);
  const GgufFile f = parse(RawFile().build());
  REQUIRE(f.version() == 3);
  REQUIRE(f.tensors().size() == 2);
  REQUIRE(f.require_tensor("a").shape == Shape{2, 8});
  REQUIRE(f.require_tensor("b").dtype == DType::q8_0);
}

TEST_CASE("gguf corrupt: truncation at every byte is an error", "[gguf]") {
  const std::vector<uint8_t> full = python_file();
  const GgufFile whole = parse(full);
  uint64_t end_of_data = 0;  // bytes past this are padding; cutting them leaves a valid file
  for (const GgufTensorInfo& t : whole.tensors()) {
    end_of_data = std::max<uint64_t>(end_of_data, whole.data_offset() + t.offset + t.nbytes);
  }
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    INFO("truncated to " << n << " of " << full.size() << " bytes");
    if (n >= end_of_data) {
      REQUIRE_NOTHROW(parse(cut));
    } else {
      REQUIRE_THROWS_WITH(parse(cut), Catch::Contains("corrupt.gguf"));
    }
  }
}

TEST_CASE("gguf corrupt: header fields", "[gguf]") {
  RawFile f;
  f.magic = 0x46554746;
  require_rejected(f, "not a GGUF file");
  f = RawFile();
  f.version = 1;
  require_rejected(f, "version 1");
  f.version = 4;
  require_rejected(f, "version 4");
  f.version = 0x03000000;
  require_rejected(f, "big-endian");
  f = RawFile();
  f.n_tensors = uint64_t{1} << 62;
  require_rejected(f, "tensor count");
  f = RawFile();
  f.n_kv = UINT64_MAX;
  require_rejected(f, "metadata count");
  f = RawFile();
  f.n_kv = 2;  // claims a second key that is really the first tensor info
  REQUIRE_THROWS_AS(parse(f.build()), Error);
  REQUIRE_THROWS_WITH(parse({}), Catch::Contains("truncated"));
}

TEST_CASE("gguf corrupt: metadata lengths, types and duplicates", "[gguf]") {
  RawFile f;
  f.kvs = {Bytes().u64(UINT64_MAX)};  // key length
  require_rejected(f, "metadata key 0");
  f.kvs = {Bytes().u64(70000)};
  require_rejected(f, "limit 65535");
  f.kvs = {kv("", 4, Bytes().u32(1))};
  require_rejected(f, "empty");
  f.kvs = {kv("s", 8, Bytes().u64(UINT64_MAX - 3))};  // string value length
  require_rejected(f, "metadata 's'");
  f.kvs = {kv("t", 13, Bytes().u32(0))};
  require_rejected(f, "unknown value type 13");
  f.kvs = {kv("arr", 9, Bytes().u32(0).u64(UINT64_MAX))};  // array of u8 with a huge count
  require_rejected(f, "array of 18446744073709551615 u8");
  f.kvs = {kv("arr", 9, Bytes().u32(5).u64(uint64_t{1} << 62))};  // i32: count * 4 overflows
  require_rejected(f, "only");
  f.kvs = {kv("arr", 9, Bytes().u32(8).u64(uint64_t{1} << 40))};
  require_rejected(f, "strings cannot fit");
  f.kvs = {kv("arr", 9, Bytes().u32(9).u64(uint64_t{1} << 40))};
  require_rejected(f, "arrays cannot fit");
  f.kvs = {kv("arr", 9, Bytes().u32(99).u64(1))};
  require_rejected(f, "unknown element type 99");
  Bytes deep;  // 40 nested arrays, one element each
  for (int i = 0; i < 40; ++i) deep.u32(9).u64(1);
  deep.u32(0).u64(0);
  f.kvs = {kv("deep", 9, deep)};
  require_rejected(f, "nests arrays deeper");
  f.kvs = {kv_u32("k", 1), kv_u32("k", 2)};
  require_rejected(f, "'k' appears twice");
}

TEST_CASE("gguf corrupt: general.alignment", "[gguf]") {
  RawFile f;
  for (uint32_t bad : {0u, 3u, 48u}) {
    f.kvs = {kv_u32("general.alignment", bad)};
    require_rejected(f, "general.alignment");
  }
  f.kvs = {kv("general.alignment", 10, Bytes().u64(32))};  // u64, not u32
  require_rejected(f, "u32 power of two");
  f.kvs = {kv_u32("general.alignment", 64)};  // valid, but tensor b's offset 64 is fine and 'a' at 0 too
  f.tensors[1].offset = 32;                   // 32 is not a multiple of 64
  require_rejected(f, "alignment 64");
}

TEST_CASE("gguf corrupt: tensor infos", "[gguf]") {
  const RawFile good;
  auto with = [&](auto change) {
    RawFile f = good;
    change(f.tensors[1]);
    return f;
  };
  require_rejected(with([](RawTensor& t) { t.name = ""; }), "empty name");
  require_rejected(with([](RawTensor& t) { t.name = std::string(64, 'x'); }), "limit 63");
  require_rejected(with([&](RawTensor& t) { t.name = good.tensors[0].name; }), "'a' appears twice");
  require_rejected(with([](RawTensor& t) { t.ne = {}; }), "0 dimensions");
  require_rejected(with([](RawTensor& t) { t.ne = {32, 1, 1, 1, 1}; }), "5 dimensions");
  require_rejected(with([](RawTensor& t) { t.ne = {32, 0}; }), "ne[1] = 0");
  require_rejected(with([](RawTensor& t) { t.ne = {32, uint64_t{1} << 63}; }), "ne[1]");
  require_rejected(with([](RawTensor& t) { t.ne = {uint64_t{1} << 40, uint64_t{1} << 40}; }), "too many elements");
  require_rejected(with([](RawTensor& t) { t.type = 99; }), "ggml type 99");
  require_rejected(with([](RawTensor& t) { t.type = 6; }), "q5_0");
  require_rejected(with([](RawTensor& t) { t.ne = {33}; }), "block size 32");
  require_rejected(with([](RawTensor& t) { t.offset = 65; }), "offset 65");
  require_rejected(with([](RawTensor& t) { t.offset = 1ull << 40; }), "outside");
  require_rejected(with([](RawTensor& t) { t.offset = 96; }), "outside");  // 96 + 34 > 128 data bytes
  require_rejected(with([](RawTensor& t) { t.offset = UINT64_MAX - 31; }), "outside");
  require_rejected(with([](RawTensor& t) { t.offset = 32; }), "overlap");  // 'a' covers [0, 64)
  RawFile f = good;
  f.data_bytes = 0;  // tensor infos but no data at all
  require_rejected(f, "outside");
  f = good;
  f.tensors[1].ne = {uint64_t{1} << 62};  // f32 byte size does not fit
  f.tensors[1].type = 0;
  require_rejected(f, "'b'");
}

TEST_CASE("gguf corrupt: random byte flips never crash", "[gguf]") {
  const std::vector<uint8_t> full = python_file();
  std::mt19937 rng(12345);
  int rejected = 0, accepted = 0;
  for (int it = 0; it < 20000; ++it) {
    std::vector<uint8_t> b = full;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      // Mostly the header and tensor infos, where the structure is.
      const size_t at = rng() % 2 ? rng() % 1024 : rng() % b.size();
      b[at] = static_cast<uint8_t>(rng() % 3 == 0 ? 0xff : rng());
    }
    try {
      const GgufFile f = parse(b);
      for (const GgufTensorInfo& t : f.tensors()) {  // whatever parses must describe bytes inside the buffer
        REQUIRE(t.data >= f.tensors().front().data - f.tensors().front().offset);
        REQUIRE(f.data_offset() + t.offset + t.nbytes <= b.size());
      }
      ++accepted;
    } catch (const Error& e) {
      REQUIRE(std::string(e.what()).find("corrupt.gguf") != std::string::npos);
      ++rejected;
    }
  }
  INFO(rejected << " rejected, " << accepted << " accepted");
  REQUIRE(rejected > 10000);  // most flips in the structure must be caught
}

TEST_CASE("gguf corrupt: files that cannot be opened", "[gguf]") {
  REQUIRE_THROWS_WITH(GgufFile::open("/no/such/file.gguf"), Catch::Contains("/no/such/file.gguf"));
  REQUIRE_THROWS_WITH(GgufFile::open(QILIN_TEST_DATA_DIR), Catch::Contains("not a regular file"));
  const std::string empty = (std::filesystem::temp_directory_path() / "qilin_empty.gguf").string();
  { std::ofstream(empty).flush(); }
  REQUIRE_THROWS_WITH(GgufFile::open(empty), Catch::Contains("qilin_empty.gguf") && Catch::Contains("truncated"));
  std::filesystem::remove(empty);
}
