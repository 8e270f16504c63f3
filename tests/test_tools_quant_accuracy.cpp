// The bounds of the quantization accuracy report (docs/performance.md, made by
// scripts/accuracy-report.sh): SmolLM2-135M-Instruct quantized to each weight type,
// against its f32 weights, on the committed English + Chinese text. The only weights
// this project fetches are the Q4_1 GGUF, so "f32" is that file dequantized, and each
// type is quantized from it (quantize_model with allow_requantize: dequantized to f32,
// then quantized: the same bytes as quantizing a dequantized f32 file).
// Skipped (exit 4) when the model has not been fetched; scripts/test.sh fetches it.
// Label slow (tests/CMakeLists.txt): about a minute; not in the sanitizer run.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "common/cli.h"
#include "common/perplexity.h"
#include "core/thread_pool.h"
#include "kernels/cpu/isa.h"
#include "models/model.h"
#include "models/quantize.h"
#include "skip.h"
#include "smollm2_model.h"

using namespace qilin;
using namespace qilin::tools;
using namespace qilin::test;

namespace {

// As the report runs qilin-perplexity: -c 512, --no-bf16 (prefill of float weights in
// their own type, so a row measures its weight type alone), f16 KV cache.
LoadOptions load_options(bool dequantize) {
  LoadOptions o;
  o.threads = 2;
  o.context = 512;
  o.batch = 512;
  o.max_logit_rows = 512;
  o.bf16_prefill = false;
  o.dequantize = dequantize;
  o.dequantize_to = DType::f32;
  return o;
}

struct Bound {
  const char* type;
  double max_ppl_ratio;  // perplexity over the f32 weights' perplexity
  double max_mean_kl;    // nats
  double min_same_top;   // fraction of positions whose top token is the f32 one
};

}  // namespace

TEST_CASE("quantized SmolLM2 stays within the accuracy report's bounds of its f32 weights",
          "[smollm2][quant][no_qemu]") {
  const std::string source = smollm2_gguf_path();
  if (!std::filesystem::exists(source)) test::skip(source + " not found; run scripts/fetch-model.sh");
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("qilin_quant_accuracy_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};

  const auto reference = Model::load(source, load_options(/*dequantize=*/true));
  const std::string text = read_text_file(std::string(QILIN_TEST_DATA_DIR) + "/text/pride_and_prejudice_ch1.txt") +
                           read_text_file(std::string(QILIN_TEST_DATA_DIR) + "/text/zh_essays.txt");
  const TokenizedText tokens = tokenize_for_perplexity(reference->tokenizer(), text);
  REQUIRE(tokens.ids.size() >= 3000);  // "a few thousand tokens"

  // Measured (docs/performance.md, the whole text) at the amx level, whose kernels for
  // many rows multiply x rounded to bf16: q8_0 PPL x1.0013, KL 0.0021, same top 97.2%;
  // q6_k x1.0080, 0.0088, 93.7%; q4_k_m x1.0076, 0.0082, 93.7%; q4_0 x1.306, 0.40, 60.6%
  // (q4_0's symmetric grid fits Q4_1's asymmetric levels worst). Each bound leaves room
  // for a change of rounding in the kernels, not for a format getting worse.
  const Bound bf16_x_bounds[] = {
      {"q8_0", 1.01, 0.005, 0.95},  // the bound: within 1% of the f32 perplexity
      {"q6_k", 1.02, 0.015, 0.91},
      {"q4_k_m", 1.02, 0.015, 0.91},
      {"q4_0", 1.40, 0.55, 0.55},
  };
  // Below amx (avx2, avx512, avx512_bf16) every row of x is quantized to 8-bit blocks, as
  // in llama.cpp, which adds its own error: q8_0 x1.006, KL 0.0057-0.0059, same top
  // 94.3-94.6%; q6_k x1.0098-1.0139, 0.0124-0.0125, 91.3-91.7%; q4_k_m x1.0081-1.0083,
  // 0.0119-0.0120, 92.0%; q4_0 x1.307-1.312, 0.40, 59.7-60.5%. The q8_0 perplexity bound
  // is the 1% at every level.
  const Bound int8_x_bounds[] = {
      {"q8_0", 1.01, 0.008, 0.93},
      {"q6_k", 1.025, 0.018, 0.89},
      {"q4_k_m", 1.02, 0.016, 0.90},
      {"q4_0", 1.40, 0.55, 0.55},
  };
  const bool bf16_x = cpu::active_isa() >= cpu::Isa::amx;
  INFO("isa " << cpu::name_of(cpu::active_isa()));
  ThreadPool pool(2);
  for (const Bound& b : bf16_x ? std::span<const Bound>(bf16_x_bounds) : std::span<const Bound>(int8_x_bounds)) {
    INFO(b.type);
    QuantizeOptions q;
    REQUIRE(quant_type_from_name(b.type, &q.type));
    q.allow_requantize = true;
    const std::string file = (dir / (std::string(b.type) + ".gguf")).string();
    quantize_model(source, file, q, pool);
    const auto model = Model::load(file, load_options(/*dequantize=*/false));
    PerplexityOptions options{.window = 512, .bos_id = tokens.bos_id, .reference = reference.get()};
    const PerplexityResult r = evaluate_perplexity(*model, tokens.ids, options);
    const double ratio = r.perplexity() / r.reference_perplexity();
    UNSCOPED_INFO(b.type << ": PPL " << r.perplexity() << " vs " << r.reference_perplexity() << ", mean KL "
                         << r.divergence.mean_kl() << ", same top " << r.same_top_fraction());
    CHECK(ratio <= b.max_ppl_ratio);
    CHECK(r.divergence.mean_kl() <= b.max_mean_kl);
    CHECK(r.same_top_fraction() >= b.min_same_top);
    std::filesystem::remove(file);
  }
}
