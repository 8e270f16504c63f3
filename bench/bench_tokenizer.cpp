// Tokenizer encoding throughput (bytes of UTF-8 text per second) on the golden
// corpus, repeated to ~100 KB. tests/data/tokenizer/bench_hf_tokenizers.py
// measures Hugging Face `tokenizers` on the same text for comparison.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "models/tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;

fs::path data_dir() {
  if (const char* env = std::getenv("QILIN_TOKENIZER_DATA")) return env;
  return fs::path(__FILE__).parent_path().parent_path() / "tests" / "data" / "tokenizer";
}

// The corpus files in name order, concatenated, repeated 20 times (as the Python script does).
std::string bench_text() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(data_dir() / "corpus"))
    if (e.path().extension() == ".txt") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::string one;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    one.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::string text;
  for (int i = 0; i < 20; ++i) text += one;
  return text;
}

void BM_TokenizerEncode(benchmark::State& state, const char* folder) {
  const fs::path json = data_dir() / folder / "tokenizer.json";
  if (!fs::exists(json)) {
    state.SkipWithError(("missing " + json.string()).c_str());
    return;
  }
  const qilin::Tokenizer tok = qilin::Tokenizer::from_json_file(json.string());
  const std::string text = bench_text();
  size_t tokens = 0;
  for (auto _ : state) {
    std::vector<int32_t> ids = tok.encode(text);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}

BENCHMARK_CAPTURE(BM_TokenizerEncode, smollm2, "smollm2")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TokenizerEncode, qwen2, "qwen2")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TokenizerEncode, llama3, "llama3")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TokenizerEncode, spm, "spm")->Unit(benchmark::kMillisecond);

}  // namespace
