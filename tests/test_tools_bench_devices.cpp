// qilin-bench across devices (tools/common): --device cpu,cuda on whatever this machine
// has, the probes run before the model loads, the side-by-side table, and the SVG chart.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/bench_chart.h"
#include "common/bench_report.h"
#include "common/bench_runner.h"
#include "common/random_model.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cuda/device.h"
#include "models/checkpoint.h"

namespace {

using namespace qilin;
using namespace qilin::tools;

struct RandomFile {
  std::filesystem::path path;
  RandomFile(const RandomModelShape& shape, QuantType type) {
    path = std::filesystem::temp_directory_path() /
           ("qilin_bench_devices_" + shape.name + "_" + std::string(name_of(type)) + "_" + std::to_string(::getpid()) +
            ".gguf");
    ThreadPool pool(2);
    write_random_model(shape, type, path.string(), pool);
  }
  ~RandomFile() { std::filesystem::remove(path); }
};

RandomModelShape tiny_llama() { return {"tiny-llama", "llama", 128, 2, 4, 2, 256, 300, 10000.0f, false, true}; }
RandomModelShape tiny_qwen2() { return {"tiny-qwen2", "qwen2", 64, 2, 4, 2, 128, 200, 1000000.0f, true, false}; }

BenchOptions cheap_options(const std::string& path) {
  BenchOptions o;
  o.models = {path};
  o.prompt_sizes = {16};
  o.gen_sizes = {4};
  o.threads = {2};
  o.repetitions = 1;
  o.batch = 16;
  o.dram_probe_bytes = size_t{4} << 20;
  o.hbm_probe_bytes = size_t{64} << 20;
  o.gemm_probe_size = 1024;
  o.probe_passes = 1;
  return o;
}

// A row as a report would see it, without running anything.
BenchRow fake_row(const std::string& model, Device device, BenchTest::Kind kind, double tps, int threads = 2) {
  BenchRow r;
  r.model.name = model;
  r.model.type = "q4_0";
  r.model.bytes_per_token = 1'000'000'000;
  r.device = device;
  r.device_name = device == Device::cuda ? "Some GPU" : "Some CPU";
  r.threads = threads;
  r.test = {kind, kind == BenchTest::Kind::prompt ? 512 : 128};
  r.tokens_per_second = {tps};
  r.stats = sample_stats(r.tokens_per_second);
  if (kind == BenchTest::Kind::prompt) {
    r.gflops = tps * 2;                                                           // 2 GFLOP per token
    (device == Device::cuda ? r.gemm_peak_gflops : r.fma_peak_gflops) = tps * 4;  // 50% of the peak
  } else {
    (device == Device::cuda ? r.hbm_gbs : r.dram_gbs) = tps * 4;  // 1 GB per token: 25% of the roofline
    (device == Device::cuda ? r.hbm_roofline_tps : r.dram_roofline_tps) = tps * 4;
  }
  return r;
}

// A minimal well-formedness check of an XML document: every tag closed in order,
// quoted attributes, no stray '<' or unknown '&' entity. Returns "" or what is wrong.
std::string xml_problem(const std::string& doc) {
  std::vector<std::string> open;
  size_t i = 0;
  if (doc.starts_with("<?xml")) i = doc.find("?>") + 2;
  bool root_seen = false;
  while (i < doc.size()) {
    if (doc[i] == '&') {
      const size_t semi = doc.find(';', i);
      const std::string entity = doc.substr(i, semi == std::string::npos ? 1 : semi - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;") return "entity " + entity;
      i = semi + 1;
      continue;
    }
    if (doc[i] != '<') {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(doc[i]))) return "text outside the root";
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool quoted = false;
    while (j < doc.size() && (quoted || doc[j] != '>')) {
      if (doc[j] == '"') quoted = !quoted;
      if (!quoted && doc[j] == '<') return "'<' inside a tag at " + std::to_string(j);
      ++j;
    }
    if (j >= doc.size()) return "unterminated tag";
    const std::string tag = doc.substr(i + 1, j - i - 1);
    if (tag.starts_with("/")) {
      if (open.empty() || open.back() != tag.substr(1)) return "</" + tag.substr(1) + "> closes nothing open";
      open.pop_back();
    } else {
      const std::string name = tag.substr(0, tag.find_first_of(" \n/"));
      if (open.empty()) {
        if (root_seen) return "two roots";
        root_seen = true;
        if (name != "svg") return "root is " + name;
      }
      if (!tag.ends_with("/")) open.push_back(name);
    }
    i = j + 1;
  }
  if (!open.empty()) return "<" + open.back() + "> never closed";
  return root_seen ? "" : "no root";
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("decode_bytes_per_token of a checkpoint equals the loaded decoder's") {
  for (const RandomModelShape& shape : {tiny_llama(), tiny_qwen2()}) {
    for (const QuantType type : {QuantType::f16, QuantType::q4_0, QuantType::q4_k_m}) {
      INFO(shape.name << " " << name_of(type));
      RandomFile file(shape, type);
      LoadOptions load;
      load.threads = 1;
      load.context = 16;
      const auto model = Model::load(file.path.string(), load);
      CHECK(decode_bytes_per_token(Checkpoint::open(file.path.string())) == model->decoder().weight_bytes_per_token());
    }
  }
}

TEST_CASE("run_bench probes before it loads the model, and runs each device asked for") {
  RandomFile file(tiny_llama(), QuantType::q8_0);
  BenchOptions o = cheap_options(file.path.string());
  o.devices = {Device::cpu, Device::cuda};
  std::vector<std::string> status;
  const std::vector<BenchRow> rows = run_bench(o, {}, [&](const std::string& line) { status.push_back(line); });

  auto first_line = [&](const std::string& prefix) {
    for (size_t i = 0; i < status.size(); ++i) {
      if (status[i].find(prefix) != std::string::npos) return static_cast<int>(i);
    }
    return -1;
  };
  // The weights-sized buffer is freed before the weights are loaded: peak memory is
  // max(weights, probe), not their sum.
  const int probe = first_line("(the model's weights)"), loaded = first_line("loaded on cpu");
  REQUIRE(probe >= 0);
  REQUIRE(loaded >= 0);
  CHECK(probe < loaded);
  const int dram = first_line("read bandwidth, 4 MiB buffer"), fma = first_line("f32 FMA peak");
  CHECK((dram >= 0 && dram < loaded));
  CHECK((fma >= 0 && fma < loaded));

  size_t cpu_rows = 0, gpu_rows = 0;
  for (const BenchRow& r : rows) {
    ++(r.device == Device::cuda ? gpu_rows : cpu_rows);
    CHECK(r.stats.mean > 0);
    CHECK(!r.device_name.empty());
  }
  CHECK(cpu_rows == 2);
  const std::string reason = cuda::unavailable_reason();
  if (!reason.empty()) {
    // No GPU here (or a CPU-only build): one line says why, and the CPU rows still come.
    CHECK(gpu_rows == 0);
    CHECK(first_line("cuda: skipped, " + reason) >= 0);
    CHECK(std::count_if(status.begin(), status.end(), [](const std::string& s) { return s.starts_with("cuda:"); }) ==
          1);
  } else {
    // A GPU: its rows, or one line saying why this model could not run there.
    CHECK((gpu_rows == 2 || first_line("cuda: " + file.path.stem().string() + " skipped") >= 0));
    for (const BenchRow& r : rows) {
      if (r.device != Device::cuda) continue;
      if (r.test.kind == BenchTest::Kind::prompt) CHECK(r.gemm_peak_gflops > 0);
      if (r.test.kind == BenchTest::Kind::generation) CHECK(r.hbm_roofline_tps > 0);
      CHECK(roofline_percent(r) > 0);
    }
  }
  const auto json = nlohmann::json::parse(bench_json(rows));
  REQUIRE(json.size() == rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    CHECK(json[i]["device"] == std::string(name_of(rows[i].device)));
    CHECK(json[i]["roofline_percent"].get<double>() == Approx(roofline_percent(rows[i])));
  }
}

TEST_CASE("roofline_percent judges each row against its own device's limit") {
  // fake_row sets every limit so that pp is at 50% and tg at 25%.
  for (const Device d : {Device::cpu, Device::cuda}) {
    CHECK(roofline_percent(fake_row("m", d, BenchTest::Kind::prompt, 100)) == Approx(50));
    CHECK(roofline_percent(fake_row("m", d, BenchTest::Kind::generation, 10)) == Approx(25));
  }
  BenchRow cpu_limits_only = fake_row("m", Device::cpu, BenchTest::Kind::generation, 10);
  cpu_limits_only.device = Device::cuda;  // a GPU row has no DRAM roofline of its own
  CHECK(roofline_percent(cpu_limits_only) == 0);
}

TEST_CASE("the side-by-side table puts each device's t/s and % of roofline in one row per model and test") {
  const std::vector<BenchRow> rows = {
      fake_row("qwen-7b", Device::cpu, BenchTest::Kind::prompt, 40),
      fake_row("qwen-7b", Device::cpu, BenchTest::Kind::generation, 5),
      fake_row("qwen-7b", Device::cuda, BenchTest::Kind::prompt, 8000),
      fake_row("qwen-7b", Device::cuda, BenchTest::Kind::generation, 150),
  };
  const std::string table = bench_comparison_markdown(rows);
  INFO(table);
  CHECK(count(table, "\n") == 4);  // header, rule, pp512, tg128
  CHECK(table.find("| model | type | test | cpu t/s (% of roofline) | cuda t/s (% of roofline) | cuda ÷ cpu |") == 0);
  CHECK(table.find("| qwen-7b | q4_0 | pp512 | 40.00 (50%) | 8000.00 (50%) | 200.0× |") != std::string::npos);
  CHECK(table.find("| qwen-7b | q4_0 | tg128 | 5.00 (25%) | 150.00 (25%) | 30.0× |") != std::string::npos);

  // One device: no comparison. Two CPU thread counts: a column each, no ratio.
  CHECK(bench_comparison_markdown({rows[0], rows[1]}).empty());
  const std::string threads =
      bench_comparison_markdown({fake_row("m", Device::cpu, BenchTest::Kind::generation, 5, 1),
                                 fake_row("m", Device::cpu, BenchTest::Kind::generation, 9, 2)});
  CHECK(threads.find("| cpu 1t t/s (% of roofline) | cpu 2t t/s (% of roofline) |") != std::string::npos);
  CHECK(threads.find("÷") == std::string::npos);
}

TEST_CASE("the SVG chart is well-formed and holds one bar per result, pp and tg in separate panels") {
  std::vector<BenchRow> rows;
  for (const char* model : {"smollm2 <135m>", "qwen2.5-7b & co"}) {  // names that need escaping
    for (const Device d : {Device::cpu, Device::cuda}) {
      rows.push_back(fake_row(model, d, BenchTest::Kind::prompt, d == Device::cuda ? 9000 : 300));
      rows.push_back(fake_row(model, d, BenchTest::Kind::generation, d == Device::cuda ? 180 : 9.5));
    }
  }
  rows.pop_back();  // the second model has no GPU tg row: a missing bar, not a zero one
  const std::string svg = bench_svg_chart(rows);
  INFO(svg);
  CHECK(xml_problem(svg).empty());
  CHECK(xml_problem("<svg><g></svg></g>") != "");  // the checker itself catches misnesting
  CHECK(count(svg, "<rect class=\"bar\"") == rows.size());
  CHECK(count(svg, "<g class=\"panel\"") == 2);
  CHECK(count(svg, "data-device=\"cuda\"") == 3);
  CHECK(count(svg, "data-device=\"cpu\"") == 4);
  CHECK(svg.find("data-value=\"9000\"") != std::string::npos);
  CHECK(svg.find("data-value=\"9.5\"") != std::string::npos);
  CHECK(svg.find("smollm2 &lt;135m&gt;") != std::string::npos);
  CHECK(svg.find("tokens/s") != std::string::npos);                    // the axis title
  CHECK(svg.find("Prompt processing") < svg.find("Text generation"));  // two panels, pp first
  CHECK(count(svg, "<rect class=\"legend\"") == 2);

  // Only tg rows: one panel.
  const std::string tg_only = bench_svg_chart({rows[1], rows[3]});
  CHECK(xml_problem(tg_only).empty());
  CHECK(count(tg_only, "<g class=\"panel\"") == 1);
  CHECK(count(tg_only, "<rect class=\"bar\"") == 2);
}
