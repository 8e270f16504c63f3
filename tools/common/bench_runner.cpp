#include "common/bench_runner.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include "common/roofline.h"
#include "core/error.h"
#include "core/gguf.h"
#include "models/checkpoint.h"
#include "models/quantize_rules.h"
#include "models/tensor_names.h"

namespace qilin::tools {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int32_t argmax(const TensorView& logits) {
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
    for (int64_t i = 0; i < test.tokens; i += step) {
      const ForwardRequest request{
          0, std::span<const int32_t>(ids).subspan(static_cast<size_t>(i),
                                                   static_cast<size_t>(std::min(step, test.tokens - i)))};
      decoder.forward({&request, 1}, cache, model.pool());
    }
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

std::vector<BenchRow> run_bench(const BenchOptions& options, const std::function<void(const BenchRow&)>& on_row,
                                const std::function<void(const std::string&)>& on_status) {
  QILIN_CHECK(!options.models.empty(), "bench", "no model given (-m)");
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

  auto status = [&](const std::string& line) {
    if (on_status) on_status(line);
  };
  std::map<int, double> dram_gbs, fma_gflops;  // per thread count, probed once per run
  std::vector<BenchRow> rows;
  for (const std::string& path : options.models) {
    for (const int threads : options.threads) {
      LoadOptions load;
      load.threads = threads;
      load.context = context;
      load.kv_type = options.kv_type;
      load.batch = options.batch;
      load.bf16_prefill = options.bf16_prefill;
      load.mmap = options.mmap;
      const auto model = Model::load(path, load);
      const int used_threads = model->options().threads;
      const BenchModelInfo info = describe_model(*model);
      status(fmt::format("{}: loaded in {:.2f} s ({} threads)", info.name, model->load_seconds(), used_threads));
      QILIN_CHECK(context <= model->context(), "bench", "{} holds at most {} positions; the tests need {}", path,
                  model->context(), context);

      bool has_generation = false, has_prompt = false;
      for (const BenchTest& t : tests) (t.kind == BenchTest::Kind::prompt ? has_prompt : has_generation) = true;
      double model_sized_gbs = 0;
      if (has_generation) {
        if (options.dram_probe_bytes > 0 && !dram_gbs.count(used_threads)) {
          dram_gbs[used_threads] = measure_read_gbs(model->pool(), options.dram_probe_bytes, options.probe_passes);
          status(fmt::format("read bandwidth, {} MiB buffer, {} threads: {:.1f} GB/s", options.dram_probe_bytes >> 20,
                             used_threads, dram_gbs[used_threads]));
        }
        if (options.model_sized_probe) {
          model_sized_gbs = measure_read_gbs(model->pool(), info.bytes_per_token, options.probe_passes);
          status(fmt::format("read bandwidth, {} MiB buffer (the model's weights), {} threads: {:.1f} GB/s",
                             info.bytes_per_token >> 20, used_threads, model_sized_gbs));
        }
      }
      if (has_prompt && options.fma_probe && !fma_gflops.count(used_threads)) {
        fma_gflops[used_threads] = measure_fma_gflops(model->pool(), options.probe_passes);
        status(fmt::format("f32 FMA peak, {} threads: {:.0f} GFLOP/s", used_threads, fma_gflops[used_threads]));
      }

      for (const BenchTest& test : tests) {
        BenchRow row;
        row.model = info;
        row.threads = used_threads;
        row.test = test;
        row.batch = options.batch;
        row.kv_type = std::string(name_of(options.kv_type));
        row.tokens_per_second = time_test(*model, test, options.repetitions);
        row.stats = sample_stats(row.tokens_per_second);
        const double mean_seconds = static_cast<double>(test.tokens) / row.stats.mean;
        if (test.kind == BenchTest::Kind::prompt) {
          row.gflops = prefill_flops(model->config(), test.tokens) / mean_seconds / 1e9;
          row.fma_peak_gflops = fma_gflops.count(used_threads) ? fma_gflops[used_threads] : 0.0;
        } else {
          const auto bytes = static_cast<double>(info.bytes_per_token);
          row.achieved_gbs = bytes * row.stats.mean / 1e9;
          row.dram_gbs = dram_gbs.count(used_threads) ? dram_gbs[used_threads] : 0.0;
          row.model_sized_gbs = model_sized_gbs;
          row.dram_roofline_tps = row.dram_gbs * 1e9 / bytes;
          row.model_sized_roofline_tps = row.model_sized_gbs * 1e9 / bytes;
        }
        if (on_row) on_row(row);
        rows.push_back(std::move(row));
      }
    }
  }
  return rows;
}

}  // namespace qilin::tools
