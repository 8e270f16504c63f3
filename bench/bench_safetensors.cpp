// Time-to-loaded of a safetensors checkpoint: mmap + header JSON + validation
// + a Tensor for every weight, with no weight bytes copied. The checkpoint
// (~100 MB of BF16 weights, 48 tensors named like a small Llama) is written
// once to the temp directory, as one file and as a two-shard folder with
// model.safetensors.index.json.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "core/safetensors.h"

namespace {

namespace fs = std::filesystem;

constexpr int kLayers = 24;
constexpr int64_t kDim = 1024;
constexpr uint64_t kTensorBytes = kDim * kDim * 2;  // BF16

// Writes tensors [first, last) of the checkpoint as one safetensors file.
void write_shard(const fs::path& path, int first, int last, std::vector<std::pair<std::string, std::string>>* names) {
  std::string header = R"({"__metadata__":{"format":"pt"})";
  uint64_t offset = 0;
  for (int i = first; i < last; ++i) {
    const std::string name =
        "model.layers." + std::to_string(i / 2) + (i % 2 ? ".mlp.up_proj.weight" : ".self_attn.q_proj.weight");
    header += ",\"" + name + R"(":{"dtype":"BF16","shape":[1024,1024],"data_offsets":[)" + std::to_string(offset) +
              "," + std::to_string(offset + kTensorBytes) + "]}";
    offset += kTensorBytes;
    names->emplace_back(name, path.filename().string());
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  std::ofstream out(path, std::ios::binary);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out << header;
  const std::vector<char> weights(kTensorBytes, 0x3f);
  for (int i = first; i < last; ++i) out.write(weights.data(), static_cast<std::streamsize>(weights.size()));
}

class BenchCheckpoint {
 public:
  BenchCheckpoint() {
    dir_ = fs::temp_directory_path() / ("qilin_bench_st_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "sharded");
    std::vector<std::pair<std::string, std::string>> names;
    write_shard(dir_ / "model.safetensors", 0, 2 * kLayers, &names);
    names.clear();
    write_shard(dir_ / "sharded" / "model-00001-of-00002.safetensors", 0, kLayers, &names);
    write_shard(dir_ / "sharded" / "model-00002-of-00002.safetensors", kLayers, 2 * kLayers, &names);
    std::ofstream index(dir_ / "sharded" / "model.safetensors.index.json");
    index << R"({"metadata":{"total_size":)" << 2 * kLayers * kTensorBytes << R"(},"weight_map":{)";
    for (size_t i = 0; i < names.size(); ++i) {
      index << (i ? "," : "") << '"' << names[i].first << "\":\"" << names[i].second << '"';
    }
    index << "}}";
    bytes_ = fs::file_size(dir_ / "model.safetensors");
  }
  ~BenchCheckpoint() { fs::remove_all(dir_); }
  std::string file() const { return (dir_ / "model.safetensors").string(); }
  std::string sharded() const { return (dir_ / "sharded").string(); }
  uint64_t bytes() const { return bytes_; }

 private:
  fs::path dir_;
  uint64_t bytes_ = 0;
};

const BenchCheckpoint& checkpoint() {
  static const BenchCheckpoint c;
  return c;
}

void BM_SafetensorsLoad(benchmark::State& state) {
  const BenchCheckpoint& c = checkpoint();
  for (auto _ : state) {
    const qilin::SafetensorsFile f = qilin::SafetensorsFile::open(c.file());
    for (const qilin::SafetensorsTensorInfo& t : f.tensors()) {
      qilin::Tensor x = f.tensor(t.name);
      benchmark::DoNotOptimize(x.data());
    }
  }
  state.counters["file_MB"] = static_cast<double>(c.bytes()) / 1e6;
}
BENCHMARK(BM_SafetensorsLoad)->Unit(benchmark::kMillisecond);

// The same through SafetensorsModel over two shards and an index.json.
void BM_SafetensorsShardedLoad(benchmark::State& state) {
  const BenchCheckpoint& c = checkpoint();
  for (auto _ : state) {
    const qilin::SafetensorsModel m = qilin::SafetensorsModel::open(c.sharded());
    for (const std::string& name : m.tensor_names()) {
      qilin::Tensor x = m.tensor(name);
      benchmark::DoNotOptimize(x.data());
    }
  }
  state.counters["file_MB"] = static_cast<double>(c.bytes()) / 1e6;
}
BENCHMARK(BM_SafetensorsShardedLoad)->Unit(benchmark::kMillisecond);

// Load plus one read per 4 KiB page: what first use of the weights costs when
// the file is in the page cache (page faults, no copy).
void BM_SafetensorsLoadAndTouch(benchmark::State& state) {
  const BenchCheckpoint& c = checkpoint();
  for (auto _ : state) {
    const qilin::SafetensorsFile f = qilin::SafetensorsFile::open(c.file());
    unsigned sum = 0;
    for (const qilin::SafetensorsTensorInfo& t : f.tensors()) {
      for (size_t i = 0; i < t.nbytes; i += 4096) sum += t.data[i];
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * c.bytes()));
}
BENCHMARK(BM_SafetensorsLoadAndTouch)->Unit(benchmark::kMillisecond);

}  // namespace
