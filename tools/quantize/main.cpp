// qilin-quantize: a GGUF file or a Hugging Face folder -> a GGUF file with quantized
// weights (models/quantize.h), like llama.cpp's llama-quantize.
//
//   qilin-quantize [--threads N] [--allow-requantize] [--pure] IN OUT TYPE
//
// A one-line progress bar on stderr when it is a terminal; warnings on stderr; a summary
// (tensors and bytes per type, bits per weight) on stdout. Any error: a message on
// stderr, exit code 1, and no output file.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>

#include "common/cli.h"
#include "common/partial_file.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "models/quantize.h"

namespace {

constexpr const char* kUsage = R"(usage: qilin-quantize [options] IN OUT TYPE

Writes OUT, a GGUF file with the weights of IN (a GGUF file or a Hugging Face model
folder) in TYPE. Metadata and the tokenizer are copied; norms and biases stay f32.

TYPE (llama.cpp's rules choose each tensor's type, as llama-quantize does):
  q8_0, q4_0, q4_1   32-element blocks; the output matrix (or the tied embedding) q6_k
  q4_k, q6_k         256-element super-blocks; the output matrix q6_k
  q4_k_m             q4_k, with q6_k for the output matrix and for attn_v and ffn_down of
                     the first and last eighth of the layers and every third in between
  f16, bf16, f32     every weight in that type
Rows that are not whole blocks fall back: q6_k -> q8_0, q4_k -> q4_1, others -> f16.

  -t, --threads N        threads (default: every hardware thread)
  --allow-requantize     allow quantized input tensors to become another block type
                         (less accurate than quantizing the original weights)
  --pure                 every weight in TYPE: no output-matrix or q4_k_m rules
  -h, --help             this text
)";

std::string mib(uint64_t bytes) { return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0)); }

void print_bar(const qilin::QuantizeProgress& p) {
  constexpr int kWidth = 30;
  const uint64_t total = std::max<uint64_t>(p.bytes_total, 1);
  const int filled = static_cast<int>(kWidth * std::min(p.bytes_done, total) / total);
  std::string what = p.index < p.count
                         ? fmt::format("{} {} -> {}", p.name, qilin::name_of(p.from), qilin::name_of(p.to))
                         : std::string("done");
  what.resize(std::max<size_t>(what.size(), 44), ' ');  // overwrite a longer previous name
  fmt::print(stderr, "\r[{}{}] {:3}% {:4}/{} {}", std::string(static_cast<size_t>(filled), '#'),
             std::string(static_cast<size_t>(kWidth - filled), '.'), 100 * std::min(p.bytes_done, total) / total,
             p.index, p.count, what);
  std::fflush(stderr);
}

void print_summary(const std::string& in, const std::string& out, const std::string& type,
                   const qilin::QuantizeSummary& s) {
  fmt::print("{} -> {} ({}, {} from {}), {} tensors, {:.2f} s\n", in, out, type,
             s.architecture.empty() ? "?" : s.architecture, s.from_gguf ? "GGUF" : "a Hugging Face folder", s.tensors,
             s.seconds);
  fmt::print("  {:<6} {:>8} {:>8} {:>14}\n", "type", "input", "output", "output bytes");
  for (int i = 0; i < qilin::kDTypeCount; ++i) {
    const auto t = static_cast<size_t>(i);
    if (s.input_tensors_per_type[t] == 0 && s.output_tensors_per_type[t] == 0) continue;
    fmt::print("  {:<6} {:>8} {:>8} {:>14}\n", qilin::name_of(static_cast<qilin::DType>(i)),
               s.input_tensors_per_type[t], s.output_tensors_per_type[t], mib(s.output_bytes_per_type[t]));
  }
  fmt::print("  input  {} ({:.2f} bits per weight)\n", mib(s.input_bytes), s.input_bits_per_weight());
  fmt::print("  output {} ({:.2f} bits per weight), file {}\n", mib(s.output_bytes), s.output_bits_per_weight(),
             mib(s.file_bytes));
  if (!s.fallbacks.empty()) {
    fmt::print("  {} tensor(s) fell back (rows not whole blocks of the wanted type):\n", s.fallbacks.size());
    for (size_t i = 0; i < s.fallbacks.size() && i < 4; ++i) fmt::print("    {}\n", s.fallbacks[i]);
    if (s.fallbacks.size() > 4) fmt::print("    ... ({} more)\n", s.fallbacks.size() - 4);
  }
}

}  // namespace

int main(int argc, char** argv) try {
  qilin::tools::Args args(argc, argv);
  if (args.has({"-h", "--help"})) {
    fmt::print("{}", kUsage);
    return 0;
  }
  qilin::QuantizeOptions options;
  options.allow_requantize = args.has({"--allow-requantize"});
  options.pure = args.has({"--pure"});
  const int64_t threads = args.get_int({"-t", "--threads"}, 0);
  if (threads < 0 || threads > 1024) qilin::fail("args", "--threads expects 1 to 1024, got {}", threads);
  const std::vector<std::string> files = args.positionals();
  args.finish();
  if (files.size() != 3) qilin::fail("args", "expected IN OUT TYPE, got {} arguments (see --help)", files.size());
  const std::string &in = files[0], &out = files[1], &type = files[2];
  if (!qilin::quant_type_from_name(type, &options.type)) {
    qilin::fail("args", "TYPE {} is not one of q8_0, q4_0, q4_1, q4_k, q6_k, q4_k_m, f16, bf16, f32", type);
  }

  qilin::ThreadPool pool(threads > 0 ? static_cast<int>(threads)
                                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  qilin::tools::remove_on_interrupt(out + ".partial");  // GgufWriter's temporary name
  const bool bar = ::isatty(STDERR_FILENO) != 0;
  if (bar) options.progress = print_bar;
  options.warning = [](const std::string& message) { fmt::print(stderr, "warning: {}\n", message); };

  const qilin::QuantizeSummary summary = qilin::quantize_model(in, out, options, pool);
  if (bar) fmt::print(stderr, "\n");
  print_summary(in, out, type, summary);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "qilin-quantize: {}\n", e.what());
  return 1;
}
