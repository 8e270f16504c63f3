// The whole model on the GPU (LoadOptions::device = cuda, models/cuda_decoder.h) against
// transformers and against the CPU decoder: the tiny golden models of every family
// (tests/data/models, through model_reference.h) and SmolLM2-135M when it has been
// fetched (scripts/fetch-model.sh). The [cuda] cases skip (exit 4, ctest "Skipped")
// where no GPU is usable; they were written on a machine without one and have not
// run yet. The last case runs where there is no GPU: device cuda is refused with why.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "count_allocations.h"
#include "kernels/cuda/memory.h"
#include "model_reference.h"
#include "models/cuda_decoder.h"
#include "models/model.h"
#include "models/session.h"
#include "smollm2_model.h"
#include "test_cuda_common.h"

using namespace qilin;
using namespace qilin::test;

namespace {

constexpr const char* kFamilies[] = {"llama", "qwen2", "qwen3", "glm", "glm4"};

LoadOptions on_gpu(LoadOptions o) {
  o.device = Device::cuda;
  return o;
}

void forward(Model& m, std::span<const ForwardRequest> batch, TensorView& logits) {
  logits = m.decoder().forward(batch, m.cache(), m.pool());
}

struct Agreement {
  double worst = 0;       // largest |cpu - gpu| over a row, relative to the row's largest |logit|
  int64_t compared = 0;   // steps whose greedy token had to agree
  int64_t near_ties = 0;  // steps whose top two CPU logits were closer than the tolerance allows
  bool same_tokens = true;
};

// Prefills `prompt` on slot 0 of both models, then decodes `steps` tokens, both fed
// the CPU's greedy choice (teacher-forced: one divergence is one failure, not a cascade).
// The greedy tokens must agree wherever the CPU's top-two margin exceeds twice the
// logit tolerance (2 * tolerance * max|logit|); nearer ties may fall either way.
Agreement compare_greedy(Model& cpu, Model& gpu, std::span<const int32_t> prompt, int steps, double tolerance) {
  Agreement a;
  cpu.cache().clear(0);
  gpu.cache().clear(0);
  ForwardRequest r{0, prompt, false};
  TensorView lc, lg;
  forward(cpu, {&r, 1}, lc);
  forward(gpu, {&r, 1}, lg);
  int32_t next = 0;
  for (int step = 0; step <= steps; ++step) {
    const float* c = lc.row<float>(0);
    const float* g = lg.row<float>(0);
    const int64_t vocab = lc.cols();
    double max_abs = 0, diff = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      max_abs = std::max(max_abs, std::abs(double(c[i])));
      diff = std::max(diff, std::abs(double(c[i]) - double(g[i])));
    }
    a.worst = std::max(a.worst, diff / max_abs);
    next = static_cast<int32_t>(std::max_element(c, c + vocab) - c);
    const auto gpu_top = static_cast<int32_t>(std::max_element(g, g + vocab) - g);
    double second = -INFINITY;
    for (int64_t i = 0; i < vocab; ++i) {
      if (i != next) second = std::max(second, double(c[i]));
    }
    if (double(c[next]) - second > 2 * tolerance * max_abs) {
      ++a.compared;
      a.same_tokens = a.same_tokens && gpu_top == next;
    } else {
      ++a.near_ties;
    }
    if (step == steps) break;
    r = {0, std::span<const int32_t>(&next, 1), false};
    forward(cpu, {&r, 1}, lc);
    forward(gpu, {&r, 1}, lg);
  }
  return a;
}

}  // namespace

TEST_CASE("model cuda: tiny models on the GPU match transformers as closely as on the CPU", "[cuda][model]") {
  require_cuda();
  for (const std::string family : kFamilies) {
    INFO("family " << family);
    const Reference ref = read_reference(family);
    TempDir dir("model_cuda");
    // The CPU bounds of test_model_golden.cpp, each justified there: f32 weights and
    // cache 1e-4 (summation order only; cuBLAS runs f32 without TF32); f16 weights
    // 6e-3, bf16 weights 5e-2, an f16 cache 4e-3. On the GPU, prefill passes of 9 or
    // more rows round x to f16 (bf16 for bf16 weights) for cuBLAS: 2^-11 (2^-8) per
    // element, the size of the weights' own rounding, within the same bounds.
    std::unique_ptr<Model> f32 = Model::load(kModels + family, on_gpu(exact_options()));
    CHECK(f32->cache().device() == Device::cuda);
    const double e32 = worst_error_of(*f32, ref);
    std::unique_ptr<Model> f16 = Model::load(convert_to(family, DType::f16, dir), on_gpu(exact_options()));
    const double e16 = worst_error_of(*f16, ref);
    std::unique_ptr<Model> bf16 = Model::load(convert_to(family, DType::bf16, dir), on_gpu(exact_options()));
    const double ebf16 = worst_error_of(*bf16, ref);
    LoadOptions kv16 = on_gpu(exact_options());
    kv16.kv_type = DType::f16;
    std::unique_ptr<Model> hf_kv16 = Model::load(kModels + family, kv16);
    const double ekv = worst_error_of(*hf_kv16, ref);
    WARN(family << " on the GPU: f32 " << e32 << ", f16 weights " << e16 << ", bf16 weights " << ebf16
                << ", f16 KV cache " << ekv);
    CHECK(e32 < 1e-4);
    CHECK(e16 < 6e-3);
    CHECK(ebf16 < 5e-2);
    CHECK(ekv < 4e-3);
  }
  // qwen3 (head_dim 32) with a q8_0 cache: test_model_golden's bound (2e-2, justified there).
  LoadOptions kv8 = on_gpu(exact_options());
  kv8.kv_type = DType::q8_0;
  std::unique_ptr<Model> qwen3 = Model::load(kModels + "qwen3", kv8);
  const double ekv8 = worst_error_of(*qwen3, read_reference("qwen3"));
  WARN("qwen3 on the GPU: q8_0 KV cache " << ekv8);
  CHECK(ekv8 < 2e-2);
  CHECK(ekv8 > 1e-4);  // the cache really was quantized
}

TEST_CASE("model cuda: tiny models give the CPU's greedy tokens in every weight type", "[cuda][model]") {
  require_cuda();
  const DType types[] = {DType::f32, DType::f16, DType::q8_0, DType::q4_0, DType::q4_1};
  for (const std::string family : kFamilies) {
    const Reference ref = read_reference(family);
    TempDir dir("model_cuda");
    for (const DType type : types) {
      INFO("family " << family << ", " << name_of(type) << " weights");
      const std::string path = convert_to(family, type, dir);
      LoadOptions o = exact_options();
      o.batch = 8;  // prompts in passes of <= 8 rows: the GEMV path on both devices (x quantized alike)
      o.kv_type = DType::f16;
      std::unique_ptr<Model> cpu = Model::load(path, o);
      std::unique_ptr<Model> gpu = Model::load(path, on_gpu(o));
      const std::vector<int32_t>& ids = ref.ids[0];
      const auto prompt = std::span<const int32_t>(ids).first(std::min<size_t>(ids.size(), 8));
      // Float weights: both sum exact f32 products, in another order (a few ulp per dot,
      // grown over two layers): 1e-4 of the largest logit. Block formats: both quantize x
      // to the same 8-bit blocks and sum exact integer products; a last-bit difference of
      // x can flip one rounding, one step of 1/254 of its block's largest value: 1e-2.
      const double tolerance = traits(type).is_float ? 1e-4 : 1e-2;
      const Agreement a = compare_greedy(*cpu, *gpu, prompt, 16, tolerance);
      WARN(family << " " << name_of(type) << ": worst " << a.worst << ", " << a.compared << " tokens compared, "
                  << a.near_ties << " near ties");
      CHECK(a.same_tokens);
      CHECK(a.worst < tolerance);
      CHECK(a.compared >= 8);  // most steps are no tie: the comparison tested something
    }
  }
}

TEST_CASE("model cuda: CUDA graphs give the same logits as kernel-by-kernel launches", "[cuda][model]") {
  require_cuda();
  for (const std::string family : kFamilies) {
    INFO("family " << family);
    LoadOptions o = on_gpu(exact_options());
    o.kv_type = DType::f16;
    std::unique_ptr<Model> graphs = Model::load(kModels + family, o);
    o.cuda_graphs = false;
    std::unique_ptr<Model> direct = Model::load(kModels + family, o);
    const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};  // 11 rows: cuBLAS, no graph
    const ForwardRequest prefill[2] = {{0, prompt, false}, {1, std::span<const int32_t>(prompt).first(3), false}};
    TensorView a, b;
    forward(*graphs, prefill, a);
    forward(*direct, prefill, b);
    // The same kernels with the same arguments: the same bits, step after step, with one
    // and two sequences per pass (two graph topologies), the context growing each step.
    for (int step = 0; step < 12; ++step) {
      const int32_t next[2] = {static_cast<int32_t>(20 + step), static_cast<int32_t>(40 + step)};
      const ForwardRequest both[2] = {{0, {&next[0], 1}, false}, {1, {&next[1], 1}, false}};
      const size_t n = step % 3 == 0 ? 1 : 2;
      forward(*graphs, std::span(both, n), a);
      forward(*direct, std::span(both, n), b);
      REQUIRE(a.rows() == b.rows());
      CHECK(std::memcmp(a.data(), b.data(), a.nbytes()) == 0);
    }
    const CudaDecoder::GraphStats g = graphs->decoder().cuda()->graph_stats();
    INFO("capture failed: " << g.disabled_reason);
    CHECK(g.enabled);
    CHECK(g.graph_passes == 12);
    CHECK(g.direct_passes == 1);
    // One graph per shape (one or two sequences), each updated in place on later steps.
    CHECK(g.instantiations == 2);
    CHECK(g.updates == 10);
    CHECK(direct->decoder().cuda()->graph_stats().graph_passes == 0);
  }
}

TEST_CASE("model cuda: a warm decode step allocates nothing on the host or the GPU", "[cuda][model]") {
  require_cuda();
  for (const bool use_graphs : {false, true}) {
    for (const std::string family : kFamilies) {
      INFO("family " << family << (use_graphs ? ", graphs" : ", no graphs"));
      LoadOptions o = on_gpu(exact_options());
      o.kv_type = family == "qwen3" ? DType::q8_0 : DType::f16;
      o.cuda_graphs = use_graphs;
      std::unique_ptr<Model> m = Model::load(kModels + family, o);
      const std::vector<int32_t> prompt = {1, 2, 3, 4, 5};
      const int32_t next[2] = {6, 7};
      const ForwardRequest prefill{0, prompt, false};
      m->decoder().forward({&prefill, 1}, m->cache(), m->pool());
      const ForwardRequest step[2] = {{0, {&next[0], 1}, false}, {1, {&next[1], 1}, false}};
      m->decoder().forward(step, m->cache(), m->pool());  // warm-up: first calls of these shapes
      const uint64_t device_before = cuda::allocator_stats().device_allocations;
      const long host_before = g_news.load();
      for (int i = 0; i < 4; ++i) m->decoder().forward(step, m->cache(), m->pool());
      const long host_news = g_news.load() - host_before;
      CHECK(host_news == 0);
      CHECK(cuda::allocator_stats().device_allocations == device_before);
    }
  }
}

TEST_CASE("model cuda: a model that does not fit is refused with the bytes needed and free", "[cuda][model]") {
  require_cuda();
  LoadOptions o = on_gpu(exact_options());
  o.slots = int64_t{1} << 26;  // 2^26 sequences of 64 positions: a KV cache of terabytes
  o.max_logit_rows = 1;
  CHECK_THROWS_WITH(Model::load(kModels + "llama", o), Catch::Contains("does not fit on GPU") &&
                                                           Catch::Contains("KV cache") && Catch::Contains("free of"));
}

namespace {

std::string require_smollm2() {
  require_cuda();
  const std::string path = smollm2_gguf_path();
  if (!std::filesystem::exists(path)) skip(path + " not found; run scripts/fetch-model.sh");
  return path;
}

}  // namespace

TEST_CASE("model cuda: SmolLM2 on the GPU gives transformers' greedy tokens (f32 weights)",
          "[cuda][model][smollm2][no_qemu]") {
  const std::string path = require_smollm2();
  LoadOptions o;  // as test_model_smollm2.cpp: the reference dequantizes to f32 and runs in float32
  o.device = Device::cuda;
  o.threads = 2;
  o.context = 256;
  o.kv_type = DType::f32;
  o.dequantize = true;
  o.dequantize_to = DType::f32;
  std::unique_ptr<Model> m = Model::load(path, o);
  const nlohmann::json ref = smollm2_reference();
  for (const auto& c : ref.at("cases")) {
    INFO("case " << c.at("name").get<std::string>());
    const auto prompt = c.at("prompt_ids").get<std::vector<int32_t>>();
    const auto want = c.at("generated_ids").get<std::vector<int32_t>>();
    const auto& top = c.at("top");
    const double tolerance = 2e-3;  // test_model_smollm2.cpp's bound (f32 rounding, summation order)
    m->cache().clear(0);
    ForwardRequest r{0, prompt, false};
    TensorView logits = m->decoder().forward({&r, 1}, m->cache(), m->pool());
    std::vector<int32_t> got;
    double worst = 0;
    for (size_t step = 0; step < want.size(); ++step) {
      const float* row = logits.row<float>(0);
      for (const auto& pair : top[step]) {
        worst = std::max(worst, std::abs(double(row[pair.at(0).get<int32_t>()]) - pair.at(1).get<double>()));
      }
      got.push_back(static_cast<int32_t>(std::max_element(row, row + logits.cols()) - row));
      if (step + 1 == want.size()) break;
      r = {0, std::span<const int32_t>(&want[step], 1), false};
      logits = m->decoder().forward({&r, 1}, m->cache(), m->pool());
    }
    CHECK(got == want);
    CHECK(worst < tolerance);
    WARN("GPU: worst top-5 logit difference " << worst);
  }
  // The session API (chat template, prefill, graph-replayed decode steps) on the GPU.
  for (const auto& c : ref.at("cases")) {
    if (c.at("kind") != "chat") continue;
    Session s(*m);
    GenerateOptions g;
    g.sampling.temperature = 0;
    g.max_new_tokens = static_cast<int32_t>(c.at("generated_ids").size());
    CHECK(s.chat(c.at("user_message").get<std::string>(), g).tokens ==
          c.at("generated_ids").get<std::vector<int32_t>>());
  }
}

TEST_CASE("model cuda: SmolLM2 Q4_1 gives the CPU's greedy tokens on the GPU", "[cuda][model][smollm2][no_qemu]") {
  const std::string path = require_smollm2();
  LoadOptions o;
  o.threads = 2;
  o.context = 256;
  o.batch = 8;  // passes of <= 8 rows: the quantized GEMV path on both devices
  o.kv_type = DType::f16;
  std::unique_ptr<Model> cpu = Model::load(path, o);
  std::unique_ptr<Model> gpu = Model::load(path, on_gpu(o));
  const nlohmann::json ref = smollm2_reference();
  for (const auto& c : ref.at("cases")) {
    INFO("case " << c.at("name").get<std::string>());
    const auto prompt = c.at("prompt_ids").get<std::vector<int32_t>>();
    // Both quantize x to the same 8-bit blocks and sum exact integer products, in
    // another f32 order. A last-bit difference of x flips a rounding with odds of about
    // 254 * its relative size: some tens of the ~10^5 values quantized per token over 30
    // layers, each moving the logits by ~1e-4 of the largest. 5e-3 of it (~0.1 on logits
    // of ~20) is above their random walk and below a misread block (whole logits off).
    const double tolerance = 5e-3;
    const Agreement a = compare_greedy(*cpu, *gpu, prompt, 24, tolerance);
    WARN("SmolLM2 Q4_1, CPU vs GPU: worst " << a.worst << ", " << a.compared << " tokens compared, " << a.near_ties
                                            << " near ties");
    CHECK(a.same_tokens);
    CHECK(a.worst < tolerance);
    CHECK(a.compared >= 12);  // of 25 steps: most are no near tie
  }
}

TEST_CASE("model cuda: without a usable GPU, device cuda is refused with the reason", "[model]") {
  if (!cuda::devices().empty()) skip("a GPU is usable here; the refusal is tested where there is none");
  LoadOptions o = on_gpu(exact_options());
  const std::string why = cuda::unavailable_reason();
  REQUIRE(!why.empty());
  CHECK_THROWS_WITH(Model::load(kModels + "llama", o), Catch::Contains("device cuda") && Catch::Contains(why));
  if (!cuda::built_with_cuda()) {
    CHECK_THROWS_WITH(Model::load(kModels + "llama", o), Catch::Contains("QILIN_CUDA=ON"));
  }
}
