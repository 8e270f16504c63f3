// End-to-end throughput of whole models, like llama-bench: prompt processing
// (pp<N>: one prompt of N random token ids from an empty cache) and text
// generation (tg<N>: N single-token steps from an empty cache, each feeding the
// previous step's greedy token back), judged against this machine's own limits
// measured in the same run (tools/common/roofline.h).
//
// It drives the Decoder directly, so GGUFs without a vocabulary (no_vocab, the
// random-weight files of make_random_gguf.py) run as well as real models.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "models/model.h"

namespace qilin::tools {

struct BenchTest {
  enum class Kind : uint8_t { prompt, generation };
  Kind kind = Kind::prompt;
  int64_t tokens = 0;

  std::string name() const;  // "pp512", "tg128"
};

// What a results table says about a model, read from the loaded checkpoint.
struct BenchModelInfo {
  std::string name;              // the file (less .gguf) or folder name
  std::string type;              // the dtype holding most of the matmul weights' bytes ("f16")
  uint64_t size_bytes = 0;       // bytes of every weight tensor as stored
  int64_t params = 0;            // elements of every weight tensor
  uint64_t bytes_per_token = 0;  // weight bytes one decode step reads (Decoder::weight_bytes_per_token)
};

BenchModelInfo describe_model(Model& model);

// FLOPs of a prefill of `tokens` from an empty cache: every layer matmul for each
// token, causal attention (QKᵀ and PV over the positions each token sees), and one
// row of the output projection (only the last token's logits are computed).
double prefill_flops(const ModelConfig& config, int64_t tokens);

// Times `repetitions` runs of the test on slot 0 of the model's cache (cleared
// before each run), after one warm-up run that is not counted. Returns tokens/s
// per run. Token ids are uniform random in [0, vocab) from `seed`.
std::vector<double> time_test(Model& model, const BenchTest& test, int repetitions, uint64_t seed = 1);

struct SampleStats {
  double mean = 0, sd = 0, median = 0;  // sd: sample standard deviation (0 for one sample)
};
SampleStats sample_stats(std::vector<double> samples);

struct BenchOptions {
  std::vector<std::string> models;
  std::vector<int64_t> prompt_sizes{512};  // 0 entries are skipped
  std::vector<int64_t> gen_sizes{128};
  std::vector<int> threads{0};  // 0: every hardware thread
  int repetitions = 3;
  int64_t batch = 512;  // prompt tokens per forward pass
  DType kv_type = DType::f16;
  bool bf16_prefill = true;
  bool mmap = false;  // LoadOptions::mmap
  // The bandwidth probes: a buffer far beyond any cache (DRAM), and one the size of
  // each model's weights (what decode of that model could read at best, which for a
  // small model is served partly from cache). 0 skips a probe (tests keep them cheap).
  size_t dram_probe_bytes = size_t{1} << 30;
  bool model_sized_probe = true;
  bool fma_probe = true;
  int probe_passes = 5;
};

struct BenchRow {
  BenchModelInfo model;
  int threads = 0;
  BenchTest test;
  int64_t batch = 0;
  std::string kv_type;
  std::vector<double> tokens_per_second;  // one per repetition
  SampleStats stats;                      // of tokens_per_second

  // Prompt tests: achieved model GFLOP/s (prefill_flops / mean time) and the f32 FMA peak.
  double gflops = 0, fma_peak_gflops = 0;
  // Generation tests: achieved weight read rate, the two bandwidths probed and the
  // decode rates they allow (bandwidth / bytes_per_token).
  double achieved_gbs = 0;
  double dram_gbs = 0, model_sized_gbs = 0;
  double dram_roofline_tps = 0, model_sized_roofline_tps = 0;
};

// Runs every model × thread count × test in that order, calling `on_row` as each
// row completes (and `on_status` with progress lines for stderr, when given).
// Throws qilin::Error for a model that does not load or options that make no sense.
std::vector<BenchRow> run_bench(const BenchOptions& options, const std::function<void(const BenchRow&)>& on_row = {},
                                const std::function<void(const std::string&)>& on_status = {});

}  // namespace qilin::tools
