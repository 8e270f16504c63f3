// Time-to-loaded of a GGUF file: mmap + parse + validate + a Tensor for every
// weight, with no weight bytes copied. The file (~100 MB of f16 weights and a
// 50k-token vocabulary, like a small model) is written once to the temp directory.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/gguf.h"
#include "core/gguf_writer.h"

namespace {

class BenchFile {
 public:
  BenchFile() {
    path_ = (std::filesystem::temp_directory_path() / ("qilin_bench_" + std::to_string(::getpid()) + ".gguf")).string();
    qilin::GgufWriter w;
    w.add("general.architecture", qilin::GgufValue::string("llama"));
    std::vector<std::string> tokens;
    for (int i = 0; i < 50000; ++i) tokens.push_back("tok" + std::to_string(i));
    w.add("tokenizer.ggml.tokens", qilin::GgufValue::string_array(std::move(tokens)));
    for (int layer = 0; layer < 24; ++layer) {  // 48 x 1024x1024 f16 = 96 MiB
      for (const char* name : {"attn_q", "ffn_up"}) {
        w.add_tensor("blk." + std::to_string(layer) + "." + name + ".weight", qilin::Shape{1024, 1024},
                     qilin::DType::f16, [](std::span<uint8_t> dst) { std::fill(dst.begin(), dst.end(), 0x3c); });
      }
    }
    w.write(path_);
    bytes_ = std::filesystem::file_size(path_);
  }
  ~BenchFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string path_;
  uint64_t bytes_ = 0;
};

const BenchFile& bench_file() {
  static const BenchFile file;
  return file;
}

void BM_GgufLoad(benchmark::State& state) {
  const BenchFile& file = bench_file();
  for (auto _ : state) {
    const qilin::GgufFile f = qilin::GgufFile::open(file.path());
    for (const qilin::GgufTensorInfo& t : f.tensors()) {
      qilin::Tensor x = f.tensor(t.name);
      benchmark::DoNotOptimize(x.data());
    }
  }
  state.counters["file_MB"] = static_cast<double>(file.bytes()) / 1e6;
}
BENCHMARK(BM_GgufLoad)->Unit(benchmark::kMillisecond);

// The same plus one read per 4 KiB page: what first use of the weights costs
// when the file is in the page cache (page faults, no copy).
void BM_GgufLoadAndTouch(benchmark::State& state) {
  const BenchFile& file = bench_file();
  for (auto _ : state) {
    const qilin::GgufFile f = qilin::GgufFile::open(file.path());
    unsigned sum = 0;
    for (const qilin::GgufTensorInfo& t : f.tensors()) {
      for (size_t i = 0; i < t.nbytes; i += 4096) sum += t.data[i];
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * file.bytes()));
}
BENCHMARK(BM_GgufLoadAndTouch)->Unit(benchmark::kMillisecond);

}  // namespace
