// qilin-bench: end-to-end prefill and decode throughput, like llama-bench,
// against this machine's memory bandwidth and FMA peak measured in the same run.
//
//   qilin-bench -m MODEL[,MODEL...] [-m MODEL] [-p 512] [-n 128] [-r 3] [-t 2,1] [-b 512]
//               [--kv-type f16|f32|q8_0] [--no-bf16] [--dram-mib 1024] [-o md|json]
//
// Token ids are random, so GGUFs without a vocabulary (no_vocab) run too.
#include <fmt/core.h>

#include <cstdio>
#include <sstream>

#include "common/bench_report.h"
#include "common/bench_runner.h"
#include "common/cli.h"
#include "core/error.h"

namespace {

constexpr const char* kUsage = R"(usage: qilin-bench -m MODEL [options]

  -m, --model PATH        GGUF file or Hugging Face folder; repeat or separate with commas
  -p, --n-prompt N,...    prompt sizes (pp tests; 0 skips them)        default 512
  -n, --n-gen N,...       generation lengths (tg tests; 0 skips them)  default 128
  -r, --repetitions N     timed runs per test, after one warm-up run   default 3
  -t, --threads N,...     thread counts                                default: every hardware thread
  -b, --batch N           prompt tokens per forward pass               default 512
  --kv-type f16|f32|q8_0  KV-cache type                                default f16
  --no-bf16               prefill matmuls in the weights' own type instead of bf16 (AMX)
  --mmap                  read float weights from the page cache instead of huge-page copies
  --dram-mib N            DRAM probe buffer in MiB (0: skip)           default 1024
  -o, --output md|json    output format                                default md

t/s is the mean ± sample standard deviation over the runs. Decode (tg) is compared with
the read bandwidth probed with a 1 GiB buffer (DRAM) and with a buffer the size of the
model's weights (small models are served partly from cache); prefill (pp) with the f32
FMA peak (the bf16 AMX path can exceed it).
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
  const std::string output = args.get({"-o", "--output"}, "md");
  QILIN_CHECK(output == "md" || output == "json", "args", "-o expects md or json, got '{}'", output);
  args.finish();
  if (options.models.empty()) {
    fmt::print(stderr, "{}", kUsage);
    return 1;
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
  if (!markdown) fmt::print("{}", tools::bench_json(rows));
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "qilin-bench: {}\n", e.what());
  return 1;
}
