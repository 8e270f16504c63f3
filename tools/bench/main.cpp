// qilin-bench: end-to-end prefill and decode throughput, like llama-bench, on the
// CPU and/or a GPU, each against its own limits measured in the same run.
//
//   qilin-bench -m MODEL[,MODEL...] [-m MODEL] [--device cpu,cuda] [-p 512] [-n 128] [-r 3]
//               [-t 2,1] [-b 512] [--kv-type f16|f32|q8_0] [--no-bf16] [--dram-mib 1024]
//               [--hbm-mib 1024] [-o md|json] [--chart out.svg]
//
// Token ids are random, so GGUFs without a vocabulary (no_vocab) run too.
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/bench_chart.h"
#include "common/bench_report.h"
#include "common/bench_runner.h"
#include "common/cli.h"
#include "core/error.h"

namespace {

constexpr const char* kUsage = R"(usage: qilin-bench -m MODEL [options]

  -m, --model PATH        GGUF file or Hugging Face folder; repeat or separate with commas
                          (qilin-random-model writes random-weight GGUFs of known shapes)
  --device cpu,cuda       devices to run every model on, side by side     default cpu
  -p, --n-prompt N,...    prompt sizes (pp tests; 0 skips them)        default 512
  -n, --n-gen N,...       generation lengths (tg tests; 0 skips them)  default 128
  -r, --repetitions N     timed runs per test, after one warm-up run   default 3
  -t, --threads N,...     thread counts                                default: every hardware thread
  -b, --batch N           prompt tokens per forward pass               default 512
  --kv-type f16|f32|q8_0  KV-cache type                                default f16
  --no-bf16               prefill matmuls in the weights' own type instead of bf16 (AMX)
  --mmap                  read float weights from the page cache instead of huge-page copies
  --dram-mib N            DRAM probe buffer in MiB (0: skip)           default 1024
  --hbm-mib N             GPU memory probe buffer in MiB (0: skip)     default 1024
  -o, --output md|json    output format                                default md
  --chart PATH            also draw an SVG chart of t/s by model, type and device

t/s is the mean ± sample standard deviation over the runs. On the CPU, decode (tg) is
compared with the read bandwidth probed with a 1 GiB buffer (DRAM) and with a buffer the
size of the model's weights (small models are served partly from cache); prefill (pp)
with the f32 FMA peak (the bf16 AMX path can exceed it). On a GPU, decode is compared
with the read bandwidth of its memory (HBM, 1 GiB buffer) and prefill with cuBLAS's bf16
GEMM throughput (8192^3). With several devices a side-by-side table follows; a device
that is unavailable is skipped with one line on stderr saying why.
)";

std::vector<std::string> split_commas(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const std::string& v : values) {
    std::stringstream ss(v);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (!item.empty()) out.push_back(item);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  using namespace qilin;
  tools::Args args(argc, argv);
  if (args.has({"-h", "--help"})) {
    fmt::print("{}", kUsage);
    return 0;
  }
  tools::BenchOptions options;
  options.models = split_commas(args.get_all({"-m", "--model"}));
  options.devices.clear();
  for (const std::string& d : split_commas({args.get({"--device"}, "cpu")})) {
    QILIN_CHECK(d == "cpu" || d == "cuda", "args", "--device expects cpu, cuda or both (cpu,cuda), got '{}'", d);
    const Device device = d == "cpu" ? Device::cpu : Device::cuda;
    if (std::find(options.devices.begin(), options.devices.end(), device) == options.devices.end())
      options.devices.push_back(device);
  }
  options.prompt_sizes = args.get_int_list({"-p", "--n-prompt"}, {512});
  options.gen_sizes = args.get_int_list({"-n", "--n-gen"}, {128});
  options.repetitions = static_cast<int>(args.get_int({"-r", "--repetitions"}, 3));
  options.threads.clear();
  for (const int64_t t : args.get_int_list({"-t", "--threads"}, {0})) {
    QILIN_CHECK(t >= 0 && t <= 1024, "args", "-t expects thread counts in [0, 1024], got {}", t);
    options.threads.push_back(static_cast<int>(t));
  }
  options.batch = args.get_int({"-b", "--batch"}, 512);
  const std::string kv = args.get({"--kv-type"}, "f16");
  QILIN_CHECK(kv == "f16" || kv == "f32" || kv == "q8_0", "args", "--kv-type expects f16, f32 or q8_0, got '{}'", kv);
  dtype_from_name(kv, &options.kv_type);
  options.bf16_prefill = !args.has({"--no-bf16"});
  options.mmap = args.has({"--mmap"});
  const int64_t dram_mib = args.get_int({"--dram-mib"}, 1024);
  QILIN_CHECK(dram_mib >= 0, "args", "--dram-mib must not be negative, got {}", dram_mib);
  options.dram_probe_bytes = static_cast<size_t>(dram_mib) << 20;
  const int64_t hbm_mib = args.get_int({"--hbm-mib"}, 1024);
  QILIN_CHECK(hbm_mib >= 0, "args", "--hbm-mib must not be negative, got {}", hbm_mib);
  options.hbm_probe_bytes = static_cast<size_t>(hbm_mib) << 20;
  const std::string chart = args.get({"--chart"});
  const std::string output = args.get({"-o", "--output"}, "md");
  QILIN_CHECK(output == "md" || output == "json", "args", "-o expects md or json, got '{}'", output);
  args.finish();
  if (options.models.empty()) {
    fmt::print(stderr, "{}", kUsage);
    return 1;
  }

  if (!chart.empty()) {
    // A bad path fails now rather than after the benchmarks; the file is written only
    // once there are results, so a failed run leaves no empty chart behind (and an
    // existing one untouched: opened for appending, nothing written).
    const bool existed = std::filesystem::exists(chart);
    const bool writable = std::ofstream(chart, std::ios::binary | std::ios::app).is_open();
    if (!existed && writable) std::filesystem::remove(chart);
    QILIN_CHECK(writable, "bench", "cannot write the chart to {}", chart);
  }

  const bool markdown = output == "md";
  bool header_printed = false;
  const auto rows = tools::run_bench(
      options,
      [&](const tools::BenchRow& row) {
        if (!markdown) return;
        if (!header_printed) fmt::print("{}", tools::bench_markdown_header());
        header_printed = true;
        fmt::print("{}", tools::bench_markdown_row(row));
        std::fflush(stdout);
      },
      [](const std::string& line) { fmt::print(stderr, "{}\n", line); });
  if (rows.empty()) {
    fmt::print(stderr, "qilin-bench: no results: no device asked for could run the models\n");
    return 1;
  }
  if (!markdown) fmt::print("{}", tools::bench_json(rows));
  if (markdown) {
    const std::string side_by_side = tools::bench_comparison_markdown(rows);
    if (!side_by_side.empty()) fmt::print("\n{}", side_by_side);
  }
  if (!chart.empty()) {
    std::ofstream chart_file(chart, std::ios::binary);
    chart_file << tools::bench_svg_chart(rows);
    chart_file.close();
    QILIN_CHECK(chart_file.good(), "bench", "could not write the chart to {}", chart);
    fmt::print(stderr, "chart: {}\n", chart);
  }
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "qilin-bench: {}\n", e.what());
  return 1;
}
