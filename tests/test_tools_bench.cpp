// The bench and perplexity tools' library code (tools/common) on a tiny random
// Llama GGUF without a vocabulary, written here with the repo's GGUF writer.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/bench_report.h"
#include "common/bench_runner.h"
#include "common/cli.h"
#include "common/perplexity.h"
#include "core/error.h"
#include "core/gguf_writer.h"

namespace {

using namespace qilin;
using namespace qilin::tools;

constexpr int64_t kVocab = 300, kDim = 64, kLayers = 2, kHeads = 4, kKvHeads = 2, kFf = 128, kContext = 256;
constexpr int64_t kHeadDim = kDim / kHeads;

struct TinyModel {
  std::filesystem::path path;
  std::vector<std::vector<float>> storage;  // tensor data, alive until write()
  ~TinyModel() { std::filesystem::remove(path); }
};

// A Llama-layout GGUF (tied embeddings, no_vocab) with N(0, 0.02) f16 matrices
// and unit norms; `zero_output_norm` zeroes the final norm, so every logit is 0.
void write_tiny_model(TinyModel& m, const std::string& tag, bool zero_output_norm = false) {
  m.path = std::filesystem::temp_directory_path() /
           ("qilin_tools_bench_" + tag + "_" + std::to_string(::getpid()) + ".gguf");
  GgufWriter w;
  w.add("general.architecture", GgufValue::string("llama"));
  w.add("general.name", GgufValue::string("tiny-random-llama"));
  w.add("llama.context_length", GgufValue::u32(kContext));
  w.add("llama.embedding_length", GgufValue::u32(kDim));
  w.add("llama.block_count", GgufValue::u32(kLayers));
  w.add("llama.feed_forward_length", GgufValue::u32(kFf));
  w.add("llama.attention.head_count", GgufValue::u32(kHeads));
  w.add("llama.attention.head_count_kv", GgufValue::u32(kKvHeads));
  w.add("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-6f));
  w.add("llama.rope.freq_base", GgufValue::f32(10000.0f));
  w.add("llama.rope.dimension_count", GgufValue::u32(kHeadDim));
  w.add("llama.vocab_size", GgufValue::u32(kVocab));
  w.add("tokenizer.ggml.model", GgufValue::string("no_vocab"));

  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  auto add = [&](const std::string& name, Shape shape, float fill, bool random) {
    const bool matrix = shape.ndim == 2;
    std::vector<float>& values = m.storage.emplace_back(static_cast<size_t>(shape.numel()), fill);
    if (random) {
      for (float& v : values) v = normal(rng);
    }
    const DType dtype = matrix ? DType::f16 : DType::f32;
    const float* data = values.data();  // the inner buffer stays put as storage grows
    const auto n = static_cast<int64_t>(values.size());
    w.add_tensor(name, shape, dtype,
                 [data, n, dtype](std::span<uint8_t> dst) { traits(dtype).from_float(data, dst.data(), n); });
  };
  add("token_embd.weight", {kVocab, kDim}, 0, true);
  add("output_norm.weight", {kDim}, zero_output_norm ? 0.0f : 1.0f, false);
  const int64_t kv_dim = kKvHeads * kHeadDim;
  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {kDim}, 1, false);
    add(p + "attn_q.weight", {kDim, kDim}, 0, true);
    add(p + "attn_k.weight", {kv_dim, kDim}, 0, true);
    add(p + "attn_v.weight", {kv_dim, kDim}, 0, true);
    add(p + "attn_output.weight", {kDim, kDim}, 0, true);
    add(p + "ffn_norm.weight", {kDim}, 1, false);
    add(p + "ffn_gate.weight", {kFf, kDim}, 0, true);
    add(p + "ffn_up.weight", {kFf, kDim}, 0, true);
    add(p + "ffn_down.weight", {kDim, kFf}, 0, true);
  }
  w.write(m.path.string());
}

// Small probes: the figures only need to be positive here, not accurate.
BenchOptions cheap_options(const std::string& path) {
  BenchOptions o;
  o.models = {path};
  o.prompt_sizes = {16, 0};
  o.gen_sizes = {8};
  o.threads = {1, 2};
  o.repetitions = 2;
  o.batch = 8;  // the 16-token prompt takes two forward passes
  o.dram_probe_bytes = size_t{4} << 20;
  o.probe_passes = 1;
  return o;
}

}  // namespace

TEST_CASE("sample_stats: mean, sample standard deviation, median") {
  const SampleStats s = sample_stats({10, 1, 3, 2});
  // Exact arithmetic on small integers: only rounding of the last bits.
  CHECK(s.mean == Approx(4.0).epsilon(1e-12));
  CHECK(s.median == Approx(2.5).epsilon(1e-12));
  CHECK(s.sd == Approx(std::sqrt(50.0 / 3.0)).epsilon(1e-12));
  const SampleStats one = sample_stats({5});
  CHECK(one.mean == 5);
  CHECK(one.sd == 0);
  CHECK(one.median == 5);
}

TEST_CASE("prefill_flops counts layer matmuls, causal attention and one logit row") {
  ModelConfig c;
  c.n_layers = 2;
  c.d_model = 8;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 4;
  c.d_ff = 16;
  c.vocab_size = 10;
  // Per layer: q 8x8, k 4x8, v 4x8, o 8x8, gate/up/down 16x8 each = 576 weights.
  // Attention for 3 tokens: 1 + 2 + 3 = 6 (query, key) pairs, 4 FLOPs per dim of 8.
  const double expected = 2 * (2.0 * 576 * 3 + 4.0 * 8 * 6) + 2.0 * 8 * 10;
  CHECK(prefill_flops(c, 3) == Approx(expected).epsilon(1e-12));
  CHECK(prefill_flops(c, 0) == 0);
}

TEST_CASE("run_bench: one row per thread count and test, positive figures, md and json") {
  TinyModel m;
  write_tiny_model(m, "bench");
  std::vector<std::string> status;
  int rows_seen = 0;
  const std::vector<BenchRow> rows = run_bench(
      cheap_options(m.path.string()), [&](const BenchRow&) { ++rows_seen; },
      [&](const std::string& line) { status.push_back(line); });
  REQUIRE(rows.size() == 4);
  CHECK(rows_seen == 4);
  CHECK(!status.empty());
  const char* expected_tests[] = {"pp16", "tg8", "pp16", "tg8"};
  const int expected_threads[] = {1, 1, 2, 2};
  // Every weight tensor: embedding, 2 final/per-layer norms x 2 + 1, 7 matrices per layer.
  const int64_t kv_dim = kKvHeads * kHeadDim;
  const int64_t matrices = kDim * kDim * 2 + kv_dim * kDim * 2 + kFf * kDim * 3;
  const int64_t params = kVocab * kDim + kDim + kLayers * (2 * kDim + matrices);
  for (size_t i = 0; i < rows.size(); ++i) {
    const BenchRow& r = rows[i];
    INFO("row " << i << ": " << r.test.name());
    CHECK(r.test.name() == expected_tests[i]);
    CHECK(r.threads == expected_threads[i]);
    CHECK(r.device == Device::cpu);
    CHECK(r.model.name == m.path.stem().string());
    CHECK(r.model.type == "f16");
    CHECK(r.model.params == params);
    CHECK(r.model.size_bytes ==
          static_cast<uint64_t>(2 * (params - kDim - 2 * kLayers * kDim) + 4 * (kDim + 2 * kLayers * kDim)));
    // Decode reads every layer matrix, the tied output matrix, and one embedding row (f16).
    CHECK(r.model.bytes_per_token == static_cast<uint64_t>(2 * (kLayers * matrices + kVocab * kDim + kDim)));
    CHECK(r.tokens_per_second.size() == 2);
    for (double t : r.tokens_per_second) CHECK(t > 0);
    CHECK(r.stats.mean > 0);
    CHECK(r.stats.median > 0);
    CHECK(r.stats.sd >= 0);
    if (r.test.kind == BenchTest::Kind::prompt) {
      CHECK(r.gflops > 0);
    } else {
      CHECK(r.achieved_gbs > 0);
      CHECK(r.dram_gbs > 0);
      CHECK(r.model_sized_gbs > 0);
      CHECK(r.dram_roofline_tps == Approx(r.dram_gbs * 1e9 / static_cast<double>(r.model.bytes_per_token)));
      CHECK(r.model_sized_roofline_tps > 0);
    }
  }

  std::string table = bench_markdown_header();
  for (const BenchRow& r : rows) table += bench_markdown_row(r);
  CHECK(std::count(table.begin(), table.end(), '\n') == 6);  // header, separator, 4 rows
  CHECK(table.find("| cpu | 1 | pp16 |") != std::string::npos);
  CHECK(table.find("of DRAM") != std::string::npos);

  const auto json = nlohmann::json::parse(bench_json(rows));
  REQUIRE(json.size() == 4);
  CHECK(json[1]["test"] == "tg8");
  CHECK(json[1]["device"] == "cpu");
  CHECK(json[1]["n_gen"] == 8);
  CHECK(json[0]["samples_ts"].size() == 2);
  CHECK(json[0]["avg_ts"].get<double>() == Approx(rows[0].stats.mean));
}

TEST_CASE("run_bench refuses nothing to run, no model and a test longer than the context") {
  TinyModel m;
  write_tiny_model(m, "bench_bad");
  BenchOptions o = cheap_options(m.path.string());
  o.prompt_sizes = {0};
  o.gen_sizes = {0};
  CHECK_THROWS_AS(run_bench(o), Error);
  o = cheap_options(m.path.string());
  o.models.clear();
  CHECK_THROWS_AS(run_bench(o), Error);
  o = cheap_options(m.path.string());
  o.gen_sizes = {kContext + 1};
  CHECK_THROWS_AS(run_bench(o), Error);
}

namespace {

std::unique_ptr<Model> load_for_perplexity(const std::string& path, int64_t window, int64_t batch) {
  LoadOptions load;
  load.threads = 2;
  load.context = window;
  load.batch = batch;
  load.max_logit_rows = batch;
  load.kv_type = DType::f32;
  load.bf16_prefill = false;  // f32 matmuls: batching must not change the logits beyond rounding
  return Model::load(path, load);
}

std::vector<int32_t> text_as_bytes() {
  const std::string text = read_text_file(QILIN_TEST_DATA_DIR "/text/pride_and_prejudice_ch1.txt");
  std::vector<int32_t> ids;
  for (const char ch : text) ids.push_back(static_cast<unsigned char>(ch));  // < 256 <= kVocab
  return ids;
}

}  // namespace

TEST_CASE("perplexity of a model whose logits are all zero is the vocabulary size") {
  TinyModel m;
  write_tiny_model(m, "ppl_uniform", /*zero_output_norm=*/true);
  const auto model = load_for_perplexity(m.path.string(), 64, 16);
  const std::vector<int32_t> ids = text_as_bytes();
  const PerplexityResult r = evaluate_perplexity(*model, ids, {.window = 64, .max_chunks = 3});
  CHECK(r.chunks == 3);
  CHECK(r.evaluated_tokens == 3 * 64);
  CHECK(r.scored_tokens == 3 * (64 - 1 - 32));
  // Every token has probability exactly 1/vocab: only the rounding of log/exp.
  CHECK(r.perplexity() == Approx(static_cast<double>(kVocab)).epsilon(1e-9));
  // The error is sqrt(mean(nll^2) - mean(nll)^2) over equal values of ~5.7: a
  // difference of two ~32s rounded at 2^-52 (~1e-14), whose sqrt (~1e-7) / sqrt(92)
  // times the perplexity (300) leaves ~1e-5 of noise where the exact answer is 0.
  CHECK(r.perplexity_error() == Approx(0).margin(1e-4));
  CHECK(r.tokens_per_second() > 0);
}

TEST_CASE("perplexity over windows matches a direct log-softmax of one forward pass per window") {
  TinyModel m;
  write_tiny_model(m, "ppl_random");
  const std::vector<int32_t> ids = text_as_bytes();
  constexpr int64_t kWindow = 48;

  // The tool's path: windows in forward passes of 16 tokens, the first half without logits.
  const auto batched = load_for_perplexity(m.path.string(), kWindow, 16);
  std::vector<double> running;
  const PerplexityResult r =
      evaluate_perplexity(*batched, ids, {.window = kWindow, .max_chunks = 4, .bos_id = 1},
                          [&](const PerplexityResult& so_far) { running.push_back(so_far.perplexity()); });
  REQUIRE(running.size() == 4);
  CHECK(running.back() == r.perplexity());
  CHECK(std::isfinite(r.perplexity()));
  CHECK(r.perplexity() > 1);
  CHECK(r.perplexity_error() > 0);

  // The oracle: each whole window in one pass with every logit, scored here.
  const auto whole = load_for_perplexity(m.path.string(), kWindow, kWindow);
  double nll = 0, nll2 = 0;
  int64_t n = 0;
  for (int64_t c = 0; c < 4; ++c) {
    std::vector<int32_t> w(ids.begin() + c * kWindow, ids.begin() + (c + 1) * kWindow);
    w[0] = 1;  // bos_id above
    whole->cache().clear(0);
    const ForwardRequest req{0, w, true};
    const TensorView logits = whole->decoder().forward({&req, 1}, whole->cache(), whole->pool());
    for (int64_t pos = kWindow / 2; pos < kWindow - 1; ++pos) {
      const auto* row = static_cast<const float*>(logits.row(pos));
      double sum = 0;
      for (int64_t v = 0; v < kVocab; ++v) sum += std::exp(static_cast<double>(row[v]));
      const double x = std::log(sum) - row[w[static_cast<size_t>(pos + 1)]];
      nll += x;
      nll2 += x * x;
      ++n;
    }
  }
  CHECK(r.scored_tokens == n);
  // Both are f32 forward passes of the same weights; only the matmul blocking by
  // M (16 vs 48 rows) differs, a few f32 ulps in logits of magnitude < 1.
  CHECK(r.nll_sum == Approx(nll).epsilon(1e-5));
  CHECK(r.nll2_sum == Approx(nll2).epsilon(1e-5));
  CHECK(r.perplexity() == Approx(std::exp(nll / static_cast<double>(n))).epsilon(1e-5));
}

TEST_CASE("perplexity refuses a window beyond the context, too short a window or too few tokens") {
  TinyModel m;
  write_tiny_model(m, "ppl_bad");
  const auto model = load_for_perplexity(m.path.string(), 32, 16);
  const std::vector<int32_t> ids(100, 5);
  CHECK_THROWS_AS(evaluate_perplexity(*model, ids, {.window = 64}), Error);
  CHECK_THROWS_AS(evaluate_perplexity(*model, ids, {.window = 2}), Error);
  CHECK_THROWS_AS(evaluate_perplexity(*model, std::span<const int32_t>(ids).first(20), {.window = 32}), Error);
}

TEST_CASE("perplexity with a reference: zero divergence from itself, log V - H(p) from a uniform model") {
  TinyModel random_model, uniform_model;
  write_tiny_model(random_model, "kl_random");
  write_tiny_model(uniform_model, "kl_uniform", /*zero_output_norm=*/true);
  const std::vector<int32_t> ids = text_as_bytes();
  constexpr int64_t kWindow = 48;
  const auto reference = load_for_perplexity(random_model.path.string(), kWindow, 16);

  SECTION("the same model") {
    const auto model = load_for_perplexity(random_model.path.string(), kWindow, 16);
    const PerplexityResult r =
        evaluate_perplexity(*model, ids, {.window = kWindow, .max_chunks = 2, .reference = reference.get()});
    // Identical weights and passes: identical logits, so every term is exactly 0.
    CHECK(r.divergence.mean_kl() == 0.0);
    CHECK(r.divergence.kl_quantile(1.0) == 0.0f);
    CHECK(r.same_top_fraction() == 1.0);
    CHECK(r.reference_perplexity() == Approx(r.perplexity()).epsilon(1e-12));
    CHECK(r.divergence.kl.size() == static_cast<size_t>(r.scored_tokens));
  }
  SECTION("a uniform model against a random reference") {
    const auto model = load_for_perplexity(uniform_model.path.string(), kWindow, 16);
    const PerplexityResult r =
        evaluate_perplexity(*model, ids, {.window = kWindow, .max_chunks = 2, .reference = reference.get()});
    // Oracle: KL(p || uniform) = log V - H(p), from the reference's logits of each whole window.
    const auto whole = load_for_perplexity(random_model.path.string(), kWindow, kWindow);
    double kl_sum = 0;
    int64_t n = 0;
    for (int64_t c = 0; c < 2; ++c) {
      const std::vector<int32_t> w(ids.begin() + c * kWindow, ids.begin() + (c + 1) * kWindow);
      whole->cache().clear(0);
      const ForwardRequest req{0, w, true};
      const TensorView logits = whole->decoder().forward({&req, 1}, whole->cache(), whole->pool());
      for (int64_t pos = kWindow / 2; pos < kWindow - 1; ++pos, ++n) {
        const auto* row = static_cast<const float*>(logits.row(pos));
        double z = 0;
        for (int64_t v = 0; v < kVocab; ++v) z += std::exp(static_cast<double>(row[v]));
        double entropy = 0;
        for (int64_t v = 0; v < kVocab; ++v) {
          const double logp = row[v] - std::log(z);
          entropy -= std::exp(logp) * logp;
        }
        kl_sum += std::log(static_cast<double>(kVocab)) - entropy;
      }
    }
    REQUIRE(n == r.scored_tokens);
    // As above: the reference's logits come from 16-row passes here and 48-row ones in
    // the oracle, a few f32 ulps apart.
    CHECK(r.divergence.mean_kl() == Approx(kl_sum / static_cast<double>(n)).epsilon(1e-5));
    CHECK(r.divergence.mean_kl() > 0.01);
    CHECK(r.perplexity() == Approx(static_cast<double>(kVocab)).epsilon(1e-9));
  }
}
