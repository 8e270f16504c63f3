// qilin-perplexity: perplexity of a text file over fixed-size windows, like
// llama-perplexity (same windows, same scoring, same error estimate).
//
//   qilin-perplexity -m MODEL -f TEXT_FILE [-c 512] [-b 512] [--chunks N] [-t N]
//                    [--kv-type f16|f32|q8_0] [--no-bf16] [--device cpu|cuda]
//                    [--kl-reference MODEL [--kl-reference-kv-type T] [--kl-reference-device D]]
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "common/cli.h"
#include "common/perplexity.h"
#include "core/error.h"

namespace {

constexpr const char* kUsage = R"(usage: qilin-perplexity -m MODEL -f TEXT_FILE [options]

  -m, --model PATH     GGUF file or Hugging Face folder (with a vocabulary)
  -f, --file PATH      the text to score
  -c, --ctx-size N     tokens per window; the second half of each is scored   default 512
  -b, --batch N        tokens per forward pass (at most the window)           default 512
  --chunks N           evaluate at most N windows                             default: all
  -t, --threads N      threads                                                default: every hardware thread
  --kv-type T          KV-cache type: f16, f32 or q8_0                        default f16
  --no-bf16            prompt matmuls in the weights' own type instead of bf16 (AMX)
  --mmap               read float weights from the page cache instead of huge-page copies
  --device cpu|cuda    where the model runs                                   default cpu
  --no-cuda-graphs     with --device cuda: launch every kernel one by one
  --kl-reference PATH  also run every window through this model (e.g. the f32 weights of a
                       quantized one) and report the KL divergence of the model's next-token
                       distributions from it, and how often both rank the same token first
  --kl-reference-kv-type T  the reference's KV-cache type (default: --kv-type), e.g. the same
                       model with an f32 cache against --kv-type q8_0
  --kl-reference-device D  where the reference runs (default: --device), e.g. a GPU model
                       against the same file on the CPU
)";

}  // namespace

int main(int argc, char** argv) try {
  using namespace qilin;
  tools::Args args(argc, argv);
  if (args.has({"-h", "--help"})) {
    fmt::print("{}", kUsage);
    return 0;
  }
  const std::string model_path = args.get({"-m", "--model"});
  const std::string text_path = args.get({"-f", "--file"});
  tools::PerplexityOptions options;
  options.window = args.get_int({"-c", "--ctx-size"}, 512);
  const int64_t batch = args.get_int({"-b", "--batch"}, 512);
  options.max_chunks = args.get_int({"--chunks"}, -1);
  const int64_t threads = args.get_int({"-t", "--threads"}, 0);
  const std::string kv = args.get({"--kv-type"}, "f16");
  const bool bf16 = !args.has({"--no-bf16"});
  const bool mmap = args.has({"--mmap"});
  const Device device = tools::parse_device(args.get({"--device"}, "cpu"));
  const bool cuda_graphs = !args.has({"--no-cuda-graphs"});
  const std::string reference_path = args.get({"--kl-reference"});
  const std::string reference_kv = args.get({"--kl-reference-kv-type"}, kv);
  const Device reference_device =
      tools::parse_device(args.get({"--kl-reference-device"}, std::string(name_of(device))));
  args.finish();
  if (model_path.empty() || text_path.empty()) {
    fmt::print(stderr, "{}", kUsage);
    return 1;
  }
  for (const std::string& type : {kv, reference_kv}) {
    QILIN_CHECK(type == "f16" || type == "f32" || type == "q8_0", "args",
                "--kv-type and --kl-reference-kv-type expect f16, f32 or q8_0, got '{}'", type);
  }
  QILIN_CHECK(batch >= 1, "args", "-b must be positive, got {}", batch);
  QILIN_CHECK(threads >= 0 && threads <= 1024, "args", "-t expects a thread count in [0, 1024], got {}", threads);

  LoadOptions load;
  load.threads = static_cast<int>(threads);
  load.context = options.window;
  load.batch = std::min(batch, options.window);
  load.max_logit_rows = load.batch;
  dtype_from_name(kv, &load.kv_type);
  load.bf16_prefill = bf16;
  load.mmap = mmap;
  load.device = device;
  load.cuda_graphs = cuda_graphs;
  const auto model = Model::load(model_path, load);
  if (!model->has_tokenizer()) {
    fail("perplexity", "{} carries no vocabulary: perplexity needs the model's tokenizer", model_path);
  }
  std::unique_ptr<Model> reference;
  if (!reference_path.empty()) {
    LoadOptions reference_load = load;
    dtype_from_name(reference_kv, &reference_load.kv_type);
    reference_load.device = reference_device;
    reference = Model::load(reference_path, reference_load);
    options.reference = reference.get();
    fmt::print(stderr, "{}: the reference, loaded in {:.2f} s\n", reference_path, reference->load_seconds());
  }
  const std::string text = tools::read_text_file(text_path);
  const tools::TokenizedText tokens = tools::tokenize_for_perplexity(model->tokenizer(), text);
  options.bos_id = tokens.bos_id;
  const int64_t whole = static_cast<int64_t>(tokens.ids.size()) / options.window;
  const int64_t chunks = options.max_chunks >= 0 ? std::min(whole, options.max_chunks) : whole;
  fmt::print(stderr, "{}: loaded in {:.2f} s; {} tokens, {} windows of {} (of {}), batch {}, {}, {} threads\n",
             model_path, model->load_seconds(), tokens.ids.size(), chunks, options.window, whole, load.batch,
             name_of(device), model->options().threads);

  const tools::PerplexityResult result =
      tools::evaluate_perplexity(*model, tokens.ids, options, [&](const tools::PerplexityResult& r) {
        fmt::print("[{}] {:.4f} ± {:.4f}", r.chunks, r.perplexity(), r.perplexity_error());
        if (reference) fmt::print("   KL {:.6f}", r.divergence.mean_kl());
        fmt::print("   ({:.1f} tokens/s)\n", r.tokens_per_second());
        std::fflush(stdout);
      });
  fmt::print("Final estimate: PPL = {:.4f} +/- {:.5f}\n", result.perplexity(), result.perplexity_error());
  if (reference) {
    const tools::DivergenceStats& d = result.divergence;
    fmt::print("Reference PPL = {:.4f}; PPL ratio = {:.4f}\n", result.reference_perplexity(),
               result.perplexity() / result.reference_perplexity());
    fmt::print("KL divergence: mean {:.6f} +/- {:.6f}, median {:.6f}, 99% {:.6f}, max {:.6f}\n", d.mean_kl(),
               d.kl_error(), d.kl_quantile(0.5), d.kl_quantile(0.99), d.kl_quantile(1.0));
    fmt::print("Same top token: {:.2f}%\n", 100.0 * result.same_top_fraction());
  }
  fmt::print(stderr, "{} tokens ({} scored) in {:.2f} s: {:.1f} tokens/s\n", result.evaluated_tokens,
             result.scored_tokens, result.seconds, result.tokens_per_second());
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "qilin-perplexity: {}\n", e.what());
  return 1;
}
