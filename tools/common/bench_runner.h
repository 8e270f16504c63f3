// End-to-end throughput of whole models, like llama-bench: prompt processing
// (pp<N>: one prompt of N random token ids from an empty cache) and text
// generation (tg<N>: N single-token steps from an empty cache, each feeding the
// previous step's greedy token back), judged against each device's own limits
// measured in the same run: the CPU's DRAM read bandwidth and f32 FMA peak
// (tools/common/roofline.h), a GPU's HBM read bandwidth and cuBLAS bf16 GEMM
// throughput (kernels/cuda/probe.h). The same models and tests run on every
// device asked for, so their rows compare side by side.
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

// The weight bytes a decode step of the checkpoint's model reads, from the file alone
// (every layer matrix, the output matrix or the tied embedding, one embedding row):
// what Decoder::weight_bytes_per_token says once loaded, known before loading.
uint64_t decode_bytes_per_token(const Checkpoint& checkpoint);

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
  // Each model runs on each device in turn: the CPU once per thread count, a GPU
  // (CUDA device 0) once. A device that is unavailable (no GPU, a CPU-only build, a
  // model that does not load there) is reported through on_status and skipped.
  std::vector<Device> devices{Device::cpu};
  std::vector<int64_t> prompt_sizes{512};  // 0 entries are skipped
  std::vector<int64_t> gen_sizes{128};
  std::vector<int> threads{0};  // 0: every hardware thread
  int repetitions = 3;
  int64_t batch = 512;  // prompt tokens per forward pass
  DType kv_type = DType::f16;
  bool bf16_prefill = true;
  bool mmap = false;  // LoadOptions::mmap
  // The CPU's bandwidth probes: a buffer far beyond any cache (DRAM), and one the size
  // of each model's weights (what decode of that model could read at best, which for a
  // small model is served partly from cache). 0 skips a probe (tests keep them cheap).
  // They run before the model is loaded, so their buffers never add to its memory.
  size_t dram_probe_bytes = size_t{1} << 30;
  bool model_sized_probe = true;
  bool fma_probe = true;
  // The GPU's probes: device-memory read bandwidth over this many bytes, cuBLAS bf16
  // GEMM at this m = n = k. 0 skips.
  size_t hbm_probe_bytes = size_t{1} << 30;
  int64_t gemm_probe_size = 8192;
  int probe_passes = 5;
};

struct BenchRow {
  BenchModelInfo model;
  Device device = Device::cpu;
  std::string device_name;  // the CPU's model name or the GPU's name
  int threads = 0;          // the CPU threads (on a GPU: the host threads, which do little)
  BenchTest test;
  int64_t batch = 0;
  std::string kv_type;
  std::vector<double> tokens_per_second;  // one per repetition
  SampleStats stats;                      // of tokens_per_second

  // Prompt tests: achieved model GFLOP/s (prefill_flops / mean time) and the peak
  // of the device: the CPU's f32 FMA peak, the GPU's cuBLAS bf16 GEMM throughput.
  double gflops = 0, fma_peak_gflops = 0, gemm_peak_gflops = 0;
  // Generation tests: achieved weight read rate, the bandwidths probed and the
  // decode rates they allow (bandwidth / bytes_per_token): DRAM and model-sized on
  // the CPU, HBM on a GPU.
  double achieved_gbs = 0;
  double dram_gbs = 0, model_sized_gbs = 0, hbm_gbs = 0;
  double dram_roofline_tps = 0, model_sized_roofline_tps = 0, hbm_roofline_tps = 0;
};

// The row as a percentage of its own device's roofline: prefill GFLOP/s of the
// device's peak (CPU f32 FMA, GPU bf16 GEMM), decode t/s of what the device's
// memory bandwidth allows (CPU DRAM, GPU HBM); 0 when that limit was not measured.
double roofline_percent(const BenchRow& row);

// "cpu", "cpu 2t" when the CPU ran at several thread counts in `rows`, "cuda":
// the name of the row's column in comparisons and charts.
std::string device_label(const BenchRow& row, bool with_threads);
// True when `rows` hold the CPU at more than one thread count.
bool several_cpu_thread_counts(const std::vector<BenchRow>& rows);

// Runs every model × device (× thread count on the CPU) × test in that order, calling
// `on_row` as each row completes (and `on_status` with progress lines for stderr, and
// one line per unavailable device, when given). Throws qilin::Error for a model that
// does not load on the CPU or options that make no sense; a GPU that is missing or
// cannot run a model is skipped with a line saying why.
std::vector<BenchRow> run_bench(const BenchOptions& options, const std::function<void(const BenchRow&)>& on_row = {},
                                const std::function<void(const std::string&)>& on_status = {});

}  // namespace qilin::tools
