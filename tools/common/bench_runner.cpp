#include "common/bench_runner.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "common/roofline.h"
#include "core/error.h"
#include "core/gguf.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/probe.h"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/tensor.h"
#include "models/checkpoint.h"
#include "models/quantize_rules.h"
#include "models/tensor_names.h"

namespace qilin::tools {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The greedy token of the first row of logits. A GPU model's logits are copied to
// the host first, which also waits for its queued work: the timing covers the pass.
int32_t argmax(const TensorView& logits) {
  if (logits.device() == Device::cuda) {
    const Tensor host = cuda::to_host(logits.slice_rows(0, 1), cuda::default_stream());
    return argmax(host.view());
  }
  const auto* p = static_cast<const float*>(logits.data());
  const int64_t n = logits.cols();
  return static_cast<int32_t>(std::max_element(p, p + n) - p);
}

// One run of the test from an empty slot 0; returns its seconds.
double run_once(Model& model, const BenchTest& test, std::mt19937_64& rng) {
  Decoder& decoder = model.decoder();
  KvCache& cache = model.cache();
  cache.clear(0);
  std::uniform_int_distribution<int32_t> random_id(0, static_cast<int32_t>(decoder.config().vocab_size - 1));
  if (test.kind == BenchTest::Kind::prompt) {
    std::vector<int32_t> ids(static_cast<size_t>(test.tokens));
    for (int32_t& id : ids) id = random_id(rng);
    const int64_t step = decoder.options().max_batch_tokens;
    const auto t0 = Clock::now();
    TensorView logits;
    for (int64_t i = 0; i < test.tokens; i += step) {
      const ForwardRequest request{
          0, std::span<const int32_t>(ids).subspan(static_cast<size_t>(i),
                                                   static_cast<size_t>(std::min(step, test.tokens - i)))};
      logits = decoder.forward({&request, 1}, cache, model.pool());
    }
    if (logits.device() == Device::cuda) argmax(logits);  // waits for the GPU
    return seconds_since(t0);
  }
  int32_t token = random_id(rng);
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < test.tokens; ++i) {
    const ForwardRequest request{0, {&token, 1}};
    token = argmax(decoder.forward({&request, 1}, cache, model.pool()));
  }
  return seconds_since(t0);
}

std::string model_name(const std::string& path) {
  std::filesystem::path p(path);
  if (!p.has_filename()) p = p.parent_path();  // "folder/"
  return p.extension() == ".gguf" ? p.stem().string() : p.filename().string();
}

}  // namespace

std::string BenchTest::name() const { return (kind == Kind::prompt ? "pp" : "tg") + std::to_string(tokens); }

BenchModelInfo describe_model(Model& model) {
  BenchModelInfo info;
  info.name = model_name(model.checkpoint().path());
  std::map<DType, uint64_t> matmul_bytes;
  for (const TensorSpec& spec : expected_tensors(model.config())) {
    const TensorView* t = model.checkpoint().find(spec.name);
    if (t == nullptr) continue;  // e.g. output.weight of a tied model
    info.size_bytes += t->nbytes();
    info.params += t->numel();
    if (t->ndim() == 2) matmul_bytes[t->dtype()] += t->nbytes();
  }
  const auto most = std::max_element(matmul_bytes.begin(), matmul_bytes.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  info.type = most == matmul_bytes.end() ? "?" : std::string(name_of(most->first));
  // A mix (q4_k_m: q4_k, q6_k and fallbacks) is named by the file's general.file_type,
  // as llama-bench does, when it is one qilin-quantize writes.
  if (const GgufFile* gguf = model.checkpoint().gguf(); gguf != nullptr) {
    const int64_t file_type = gguf->get_int("general.file_type", -1);
    for (int t = 0; t <= static_cast<int>(QuantType::q4_k_m); ++t) {
      if (llama_file_type(static_cast<QuantType>(t)) == file_type)
        info.type = std::string(name_of(static_cast<QuantType>(t)));
    }
  }
  info.bytes_per_token = model.decoder().weight_bytes_per_token();
  return info;
}

double prefill_flops(const ModelConfig& c, int64_t tokens) {
  const double d = static_cast<double>(c.d_model), q_dim = static_cast<double>(c.n_heads * c.head_dim),
               kv_dim = static_cast<double>(c.n_kv_heads * c.head_dim), ff = static_cast<double>(c.d_ff);
  const double layer_params = d * (q_dim + 2 * kv_dim) + q_dim * d + 3 * d * ff;
  const auto n = static_cast<double>(tokens);
  // Token i attends to i + 1 positions: n(n+1)/2 score dot products and as many
  // value accumulations, each 2 * head_dim FLOPs per head.
  const double attention = 4.0 * q_dim * n * (n + 1) / 2;
  const double output_row = tokens > 0 ? 2.0 * d * static_cast<double>(c.vocab_size) : 0.0;
  return static_cast<double>(c.n_layers) * (2.0 * layer_params * n + attention) + output_row;
}

std::vector<double> time_test(Model& model, const BenchTest& test, int repetitions, uint64_t seed) {
  QILIN_CHECK(test.tokens >= 1, "bench", "{} has no tokens", test.name());
  QILIN_CHECK(test.tokens <= model.context(), "bench", "{} needs {} positions but the context holds {}", test.name(),
              test.tokens, model.context());
  std::mt19937_64 rng(seed);
  run_once(model, test, rng);  // warm-up: first-touch of the weights' pages, packs, caches
  std::vector<double> tps;
  for (int r = 0; r < repetitions; ++r) tps.push_back(static_cast<double>(test.tokens) / run_once(model, test, rng));
  model.cache().clear(0);
  return tps;
}

SampleStats sample_stats(std::vector<double> samples) {
  SampleStats s;
  if (samples.empty()) return s;
  const auto n = static_cast<double>(samples.size());
  for (double x : samples) s.mean += x / n;
  if (samples.size() > 1) {
    double ss = 0;
    for (double x : samples) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / (n - 1));
  }
  std::sort(samples.begin(), samples.end());
  const size_t mid = samples.size() / 2;
  s.median = samples.size() % 2 == 1 ? samples[mid] : (samples[mid - 1] + samples[mid]) / 2;
  return s;
}

uint64_t decode_bytes_per_token(const Checkpoint& checkpoint) {
  uint64_t bytes = 0;
  const TensorView* embedding = nullptr;
  bool has_output = false;
  for (const TensorSpec& spec : expected_tensors(checkpoint.config())) {
    const TensorView* t = checkpoint.find(spec.name);
    if (t == nullptr) continue;
    if (spec.name == "token_embd.weight") {
      embedding = t;
      continue;
    }
    has_output |= spec.name == "output.weight";
    if (t->ndim() == 2) bytes += t->nbytes();
  }
  if (embedding != nullptr) bytes += embedding->row_size() + (has_output ? 0 : embedding->nbytes());
  return bytes;
}

double roofline_percent(const BenchRow& row) {
  const bool gpu = row.device == Device::cuda;
  if (row.test.kind == BenchTest::Kind::prompt) {
    const double peak = gpu ? row.gemm_peak_gflops : row.fma_peak_gflops;
    return peak > 0 ? 100.0 * row.gflops / peak : 0.0;
  }
  const double roofline = gpu ? row.hbm_roofline_tps : row.dram_roofline_tps;
  return roofline > 0 ? 100.0 * row.stats.mean / roofline : 0.0;
}

std::string device_label(const BenchRow& row, bool with_threads) {
  if (row.device == Device::cpu && with_threads) return fmt::format("cpu {}t", row.threads);
  return std::string(name_of(row.device));
}

bool several_cpu_thread_counts(const std::vector<BenchRow>& rows) {
  for (const BenchRow& r : rows) {
    if (r.device == Device::cpu && r.threads != rows.front().threads) return true;
  }
  return false;
}

namespace {

// What one run of run_bench shares between its models: the options, the tests and
// each device's limits, each probed once.
class BenchRun {
 public:
  BenchRun(const BenchOptions& options, std::vector<BenchTest> tests, int64_t context,
           const std::function<void(const BenchRow&)>& on_row, const std::function<void(const std::string&)>& on_status)
      : options_(options), tests_(std::move(tests)), context_(context), on_row_(on_row), on_status_(on_status) {
    for (const BenchTest& t : tests_) (t.kind == BenchTest::Kind::prompt ? has_prompt_ : has_generation_) = true;
  }

  void run_cpu(const std::string& path, int threads) {
    const int used_threads = threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    // The probes run before the model is loaded, on a pool of the model's size, so a
    // probe's buffer (1 GiB, or one the size of the weights) never adds to the model's
    // memory: peak resident memory stays that of the weights.
    double model_sized_gbs = 0;
    {
      ThreadPool pool(used_threads);
      if (has_generation_ && options_.dram_probe_bytes > 0 && !dram_gbs_.count(used_threads)) {
        dram_gbs_[used_threads] = measure_read_gbs(pool, options_.dram_probe_bytes, options_.probe_passes);
        status(fmt::format("read bandwidth, {} MiB buffer, {} threads: {:.1f} GB/s", options_.dram_probe_bytes >> 20,
                           used_threads, dram_gbs_[used_threads]));
      }
      if (has_generation_ && options_.model_sized_probe) {
        const uint64_t bytes = decode_bytes_per_token(Checkpoint::open(path));
        model_sized_gbs = measure_read_gbs(pool, bytes, options_.probe_passes);
        status(fmt::format("read bandwidth, {} MiB buffer (the model's weights), {} threads: {:.1f} GB/s", bytes >> 20,
                           used_threads, model_sized_gbs));
      }
      if (has_prompt_ && options_.fma_probe && !fma_gflops_.count(used_threads)) {
        fma_gflops_[used_threads] = measure_fma_gflops(pool, options_.probe_passes);
        status(fmt::format("f32 FMA peak, {} threads: {:.0f} GFLOP/s", used_threads, fma_gflops_[used_threads]));
      }
    }
    const auto model = load(path, Device::cpu, threads);
    BenchRow proto;
    proto.device = Device::cpu;
    proto.device_name = cpu_model_name();
    proto.threads = model->options().threads;
    proto.fma_peak_gflops = fma_gflops_.count(proto.threads) ? fma_gflops_[proto.threads] : 0.0;
    proto.dram_gbs = dram_gbs_.count(proto.threads) ? dram_gbs_[proto.threads] : 0.0;
    proto.model_sized_gbs = model_sized_gbs;
    run_tests(*model, proto);
  }

  std::vector<BenchRow> take_rows() { return std::move(rows_); }

  // Runs the model on CUDA device 0; returns false (after one status line saying why)
  // when the GPU or this model on it is not available.
  bool run_cuda(const std::string& path, int threads) {
    if (!cuda_checked_) {
      cuda_checked_ = true;
      cuda_unavailable_ = cuda::unavailable_reason();
      if (cuda_unavailable_.empty()) {
        const std::vector<cuda::DeviceInfo> devices = cuda::devices();
        gpu_name_ = devices.empty() ? std::string("cuda") : devices.front().name;
      }
    }
    if (!cuda_unavailable_.empty()) {
      if (!cuda_reported_) status(fmt::format("cuda: skipped, {}", cuda_unavailable_));
      cuda_reported_ = true;
      return false;
    }
    const std::string name = model_name(path);
    try {
      if (has_generation_ && options_.hbm_probe_bytes > 0 && hbm_gbs_ == 0) {
        hbm_gbs_ = cuda::measure_read_gbs(options_.hbm_probe_bytes, options_.probe_passes, 0);
        status(fmt::format("{}: read bandwidth, {} MiB buffer: {:.0f} GB/s", gpu_name_, options_.hbm_probe_bytes >> 20,
                           hbm_gbs_));
      }
      if (has_prompt_ && options_.gemm_probe_size > 0 && gemm_gflops_ == 0) {
        gemm_gflops_ = cuda::measure_bf16_gemm_gflops(options_.gemm_probe_size, options_.probe_passes, 0);
        status(fmt::format("{}: cuBLAS bf16 GEMM {}^3: {:.0f} GFLOP/s", gpu_name_, options_.gemm_probe_size,
                           gemm_gflops_));
      }
      const auto model = load(path, Device::cuda, threads);
      BenchRow proto;
      proto.device = Device::cuda;
      proto.device_name = gpu_name_;
      proto.threads = model->options().threads;
      proto.gemm_peak_gflops = gemm_gflops_;
      proto.hbm_gbs = hbm_gbs_;
      run_tests(*model, proto);
    } catch (const Error& e) {
      status(fmt::format("cuda: {} skipped, {}", name, e.what()));
      return false;
    }
    return true;
  }

 private:
  void status(const std::string& line) const {
    if (on_status_) on_status_(line);
  }

  std::unique_ptr<Model> load(const std::string& path, Device device, int threads) {
    LoadOptions load;
    load.threads = threads;
    load.device = device;
    load.context = context_;
    load.kv_type = options_.kv_type;
    load.batch = options_.batch;
    load.bf16_prefill = options_.bf16_prefill;
    load.mmap = options_.mmap;
    auto model = Model::load(path, load);
    status(fmt::format("{}: loaded on {} in {:.2f} s ({} threads)", model_name(path), name_of(device),
                       model->load_seconds(), model->options().threads));
    QILIN_CHECK(context_ <= model->context(), "bench", "{} holds at most {} positions; the tests need {}", path,
                model->context(), context_);
    return model;
  }

  // One row per test, from `proto` (device, threads and the device's limits).
  void run_tests(Model& model, const BenchRow& proto) {
    const BenchModelInfo info = describe_model(model);
    for (const BenchTest& test : tests_) {
      BenchRow row = proto;
      row.model = info;
      row.test = test;
      row.batch = options_.batch;
      row.kv_type = std::string(name_of(options_.kv_type));
      row.tokens_per_second = time_test(model, test, options_.repetitions);
      row.stats = sample_stats(row.tokens_per_second);
      const double mean_seconds = static_cast<double>(test.tokens) / row.stats.mean;
      if (test.kind == BenchTest::Kind::prompt) {
        row.gflops = prefill_flops(model.config(), test.tokens) / mean_seconds / 1e9;
      } else {
        const auto bytes = static_cast<double>(info.bytes_per_token);
        row.achieved_gbs = bytes * row.stats.mean / 1e9;
        row.dram_roofline_tps = row.dram_gbs * 1e9 / bytes;
        row.model_sized_roofline_tps = row.model_sized_gbs * 1e9 / bytes;
        row.hbm_roofline_tps = row.hbm_gbs * 1e9 / bytes;
      }
      // Each row carries only the limits its kind of test is judged against.
      if (test.kind == BenchTest::Kind::prompt) {
        row.dram_gbs = row.model_sized_gbs = row.hbm_gbs = 0;
      } else {
        row.fma_peak_gflops = row.gemm_peak_gflops = 0;
      }
      if (on_row_) on_row_(row);
      rows_.push_back(std::move(row));
    }
  }

  const BenchOptions& options_;
  std::vector<BenchTest> tests_;
  int64_t context_;
  const std::function<void(const BenchRow&)>& on_row_;
  const std::function<void(const std::string&)>& on_status_;
  bool has_prompt_ = false, has_generation_ = false;
  std::map<int, double> dram_gbs_, fma_gflops_;  // per thread count, probed once per run
  bool cuda_checked_ = false, cuda_reported_ = false;
  std::string cuda_unavailable_, gpu_name_;
  double hbm_gbs_ = 0, gemm_gflops_ = 0;
  std::vector<BenchRow> rows_;
};

}  // namespace

std::vector<BenchRow> run_bench(const BenchOptions& options, const std::function<void(const BenchRow&)>& on_row,
                                const std::function<void(const std::string&)>& on_status) {
  QILIN_CHECK(!options.models.empty(), "bench", "no model given (-m)");
  QILIN_CHECK(!options.devices.empty(), "bench", "no device given (--device)");
  QILIN_CHECK(!options.threads.empty(), "bench", "no thread count given (-t)");
  QILIN_CHECK(options.repetitions >= 1, "bench", "repetitions must be at least 1, not {}", options.repetitions);
  std::vector<BenchTest> tests;
  for (int64_t p : options.prompt_sizes) {
    QILIN_CHECK(p >= 0, "bench", "prompt size {} is negative", p);
    if (p > 0) tests.push_back({BenchTest::Kind::prompt, p});
  }
  for (int64_t n : options.gen_sizes) {
    QILIN_CHECK(n >= 0, "bench", "generation length {} is negative", n);
    if (n > 0) tests.push_back({BenchTest::Kind::generation, n});
  }
  QILIN_CHECK(!tests.empty(), "bench", "nothing to run: every -p and -n is 0");
  int64_t context = 1;
  for (const BenchTest& t : tests) context = std::max(context, t.tokens);

  BenchRun run(options, std::move(tests), context, on_row, on_status);
  for (const std::string& path : options.models) {
    for (const Device device : options.devices) {
      if (device == Device::cuda) {
        run.run_cuda(path, options.threads.front());  // host threads matter little to a GPU
        continue;
      }
      for (const int threads : options.threads) run.run_cpu(path, threads);
    }
  }
  return run.take_rows();
}

}  // namespace qilin::tools
