// qilin-convert: a Hugging Face model folder -> one GGUF file (models/convert.h).
//
//   qilin-convert <hf-folder> -o out.gguf [-t f16] [-j threads]
//
// Progress on stderr when it is a terminal; a one-line summary on stdout at the end.
// Any error: a message on stderr, exit code 1, and no output file.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/partial_file.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "models/convert.h"

namespace {

constexpr const char* kUsage = R"(usage: qilin-convert <hf-folder> -o <out.gguf> [-t TYPE] [-j THREADS]

Converts a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)
into a GGUF file that llama.cpp and other GGUF tools read.

  -o, --output FILE    the GGUF file to write (required)
  -t, --type TYPE      weight type: f32, f16 (default), bf16, q8_0, q4_0, q4_1
                       norms and biases stay f32; a quantized weight whose rows are
                       not whole 32-element blocks is written as f16
  -j, --threads N      threads for conversion and quantization (default: all cores)
  -h, --help           this text

Families: llama (Llama, SmolLM2), qwen2 (Qwen2, Qwen2.5), qwen3.
)";

struct Flags {
  std::string folder, output, type = "f16";
  int64_t threads = 0;
};

Flags parse(int argc, char** argv) {
  Flags f;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) qilin::fail("args", "{} needs a value", arg);
      return argv[++i];
    };
    if (arg == "-o" || arg == "--output") {
      f.output = value();
    } else if (arg == "-t" || arg == "--type") {
      f.type = value();
    } else if (arg == "-j" || arg == "--threads") {
      const std::string v = value();
      char* end = nullptr;
      f.threads = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || f.threads < 1 || f.threads > 1024)
        qilin::fail("args", "{} expects a thread count from 1 to 1024, got '{}'", arg, v);
    } else if (arg.size() > 1 && arg[0] == '-') {
      qilin::fail("args", "unknown argument '{}' (see --help)", arg);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 1) qilin::fail("args", "expected one model folder, got {} (see --help)", positional.size());
  if (f.output.empty()) qilin::fail("args", "-o <out.gguf> is required (see --help)");
  f.folder = positional[0];
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  try {
    const Flags flags = parse(argc, argv);
    qilin::ConvertOptions options;
    if (!qilin::convert_type_from_name(flags.type, &options.weight_type))
      qilin::fail("args", "-t {} is not an output type (f32, f16, bf16, q8_0, q4_0, q4_1)", flags.type);
    const int threads = flags.threads > 0 ? static_cast<int>(flags.threads)
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    qilin::ThreadPool pool(threads);

    qilin::tools::remove_on_interrupt(flags.output + ".partial");  // GgufWriter's temporary name

    const bool bar = ::isatty(STDERR_FILENO) != 0;
    if (bar) {
      options.progress = [](uint64_t done, uint64_t total) {
        const int width = 40, filled = total ? static_cast<int>(width * done / total) : width;
        fmt::print(stderr, "\r[{}{}] {:3}%  {:.1f} / {:.1f} MB", std::string(static_cast<size_t>(filled), '#'),
                   std::string(static_cast<size_t>(width - filled), '.'), total ? 100 * done / total : 100,
                   static_cast<double>(done) / 1e6, static_cast<double>(total) / 1e6);
        std::fflush(stderr);
      };
    }
    const qilin::ConvertSummary s = qilin::convert_hf_to_gguf(flags.folder, flags.output, options, pool);
    if (bar) fmt::print(stderr, "\n");
    if (!s.has_tokenizer)
      fmt::print(stderr, "warning: no tokenizer.json in {}: the GGUF has no tokenizer\n", flags.folder);
    std::string fallback;
    if (!s.f16_fallback.empty()) {
      fallback = fmt::format(", {} weights as f16 (rows not whole blocks: {}{})", s.f16_fallback.size(),
                             s.f16_fallback.front(), s.f16_fallback.size() > 1 ? ", ..." : "");
    }
    fmt::print("{}: {} {} -> {} ({}), {} tensors, {} bytes, {:.2f} s{}\n", flags.output,
               qilin::name_of(s.config.family), s.config.name, flags.type,
               s.has_tokenizer ? "with tokenizer" : "no tokenizer", s.tensors, s.file_bytes, s.seconds, fallback);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "qilin-convert: {}\n", e.what());
    return 1;
  }
}
