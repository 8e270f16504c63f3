// qilin-random-model: a GGUF file with random weights in the shape of a known model
// (tools/common/random_model.h), to measure speed at real sizes without downloading
// weights; qilin-bench runs it (no vocabulary: random token ids).
//
//   qilin-random-model SHAPE -o OUT.gguf [--type f16] [-t N] [--seed N]
//   qilin-random-model --list
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "common/cli.h"
#include "common/partial_file.h"
#include "common/random_model.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace {

constexpr const char* kUsage = R"(usage: qilin-random-model SHAPE -o OUT.gguf [options]

Writes OUT, a GGUF file without vocabulary whose weights are random (N(0, 0.02), norms 1)
in the shape of a known model. Only throughput is meaningful on such a file.

SHAPE: smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b, llama-3-8b (--list shows them)

  -o, --output PATH      the file to write
  --type TYPE            f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k or q4_k_m     default f16
                         (per-tensor types as qilin-quantize chooses them)
  -t, --threads N        threads (default: every hardware thread)
  --seed N               random seed                                              default 0
  --list                 the known shapes, with their parameters and sizes
  -h, --help             this text
)";

double gib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

void print_shapes() {
  fmt::print("{:<14} {:<6} {:>6} {:>6} {:>5} {:>8} {:>6} {:>7} {:>8} {:>10}\n", "shape", "arch", "d", "layers", "heads",
             "kv heads", "ff", "vocab", "params", "f16 size");
  for (const qilin::tools::RandomModelShape& s : qilin::tools::random_model_shapes()) {
    int64_t params = 0;
    uint64_t bytes = 0;
    for (const auto& t : qilin::tools::random_model_tensors(s, qilin::QuantType::f16)) {
      params += t.shape.numel();
      bytes += qilin::row_bytes(t.dtype, t.shape.last()) * static_cast<size_t>(t.shape.rows());
    }
    fmt::print("{:<14} {:<6} {:>6} {:>6} {:>5} {:>8} {:>6} {:>7} {:>7.2f}B {:>6.2f} GiB\n", s.name, s.architecture,
               s.d_model, s.n_layers, s.n_heads, s.n_kv_heads, s.d_ff, s.vocab, static_cast<double>(params) / 1e9,
               gib(bytes));
  }
}

// A progress line: rewritten in place on a terminal, else one line per tenth.
class ProgressLine {
 public:
  ProgressLine() : tty_(::isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

  void operator()(const qilin::tools::RandomModelProgress& p) {
    const uint64_t total = std::max<uint64_t>(p.bytes_total, 1);
    const int percent = static_cast<int>(100 * std::min(p.bytes_done, total) / total);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double gbs = seconds > 0 ? static_cast<double>(p.bytes_done) / seconds / 1e9 : 0.0;
    std::string what = p.index < p.count ? std::string(p.tensor) : std::string("done");
    what.resize(std::max<size_t>(what.size(), 28), ' ');
    const std::string line = fmt::format("{:3}% {:7.2f}/{:.2f} GiB {:4}/{} tensors {:5.2f} GB/s {}", percent,
                                         gib(p.bytes_done), gib(p.bytes_total), p.index, p.count, gbs, what);
    if (tty_) {
      fmt::print(stderr, "\r{}", line);
      if (p.index == p.count) fmt::print(stderr, "\n");
    } else if (percent / 10 != last_tenth_ || p.index == p.count) {
      last_tenth_ = percent / 10;
      fmt::print(stderr, "{}\n", line);
    }
    std::fflush(stderr);
  }

 private:
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  int last_tenth_ = -1;
};

}  // namespace

int main(int argc, char** argv) try {
  using namespace qilin;
  tools::Args args(argc, argv);
  if (args.has({"-h", "--help"})) {
    fmt::print("{}", kUsage);
    return 0;
  }
  if (args.has({"--list"})) {
    args.finish();
    print_shapes();
    return 0;
  }
  const std::string out = args.get({"-o", "--output"});
  const std::string type_name = args.get({"--type"}, "f16");
  const int64_t threads = args.get_int({"-t", "--threads"}, 0);
  QILIN_CHECK(threads >= 0 && threads <= 1024, "args", "--threads expects 1 to 1024, got {}", threads);
  const int64_t seed = args.get_int({"--seed"}, 0);
  const std::vector<std::string> positionals = args.positionals();
  args.finish();
  QILIN_CHECK(positionals.size() == 1, "args", "expected one SHAPE, got {} arguments (see --help)", positionals.size());
  QILIN_CHECK(!out.empty(), "args", "no output file (-o OUT.gguf)");
  QuantType type;
  QILIN_CHECK(quant_type_from_name(type_name, &type), "args",
              "--type {} is not one of f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k, q4_k_m", type_name);
  const tools::RandomModelShape& shape = tools::random_model_shape(positionals[0]);

  ThreadPool pool(threads > 0 ? static_cast<int>(threads)
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  tools::remove_on_interrupt(out + ".partial");  // GgufWriter's temporary name
  ProgressLine progress;
  const tools::RandomModelSummary s =
      tools::write_random_model(shape, type, out, pool, std::ref(progress), static_cast<uint64_t>(seed));
  fmt::print("{}: random {} in {}, {} tensors, {:.3f} B parameters, {:.2f} GiB ({:.2f} bits per weight), {:.1f} s\n",
             out, shape.name, type_name, s.tensors, static_cast<double>(s.params) / 1e9, gib(s.file_bytes),
             8.0 * static_cast<double>(s.data_bytes) / static_cast<double>(s.params), s.seconds);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "qilin-random-model: {}\n", e.what());
  return 1;
}
