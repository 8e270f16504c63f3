// SmolLM2-135M-Instruct (the Q4_1 GGUF scripts/fetch-model.sh fetches) against
// transformers loading the same file: the prompt ids, the greedy continuation
// token for token, and the top-5 logits of every step
// (tests/data/models/smollm2_reference.json, made by make_smollm2_reference.py).
// Skipped (exit 4) when the model has not been fetched; scripts/test.sh fetches it.
// [no_qemu]: under the no-AVX2 emulator the scalar path would take many minutes;
// the tiny models of test_model_golden cover that path.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/model.h"
#include "models/session.h"
#include "models/tokenizer/chat_template.h"
#include "skip.h"
#include "smollm2_model.h"

using namespace qilin;
using namespace qilin::test;

namespace {

Model& smollm2() {
  static std::unique_ptr<Model> model = [] {
    const std::string path = smollm2_gguf_path();
    if (!std::filesystem::exists(path)) test::skip(path + " not found; run scripts/fetch-model.sh");
    LoadOptions o;
    o.threads = 2;
    o.context = 256;
    o.kv_type = DType::f32;  // the reference runs in float32 throughout
    o.bf16_prefill = false;
    o.dequantize = true;  // Q4_1 / Q8_0 -> f32 exactly, as transformers does
    o.dequantize_to = DType::f32;
    return Model::load(path, o);
  }();
  return *model;
}

}  // namespace

TEST_CASE("smollm2: prompts tokenize to the reference ids; chat prompts render as its template",
          "[smollm2][model][no_qemu]") {
  Model& m = smollm2();
  const ChatTemplate tmpl = ChatTemplate::detect(m.tokenizer().chat_template());
  EncodeOptions enc;
  enc.add_special = false;
  const nlohmann::json ref = smollm2_reference();  // named: a temporary would die before the loop body
  for (const auto& c : ref.at("cases")) {
    INFO("case " << c.at("name").get<std::string>());
    const std::string prompt = c.at("prompt").get<std::string>();
    CHECK(m.tokenizer().encode(prompt, enc) == c.at("prompt_ids").get<std::vector<int32_t>>());
    if (c.at("kind") == "chat") {
      const ChatMessage user{"user", c.at("user_message").get<std::string>()};
      CHECK(tmpl.render({&user, 1}, true) == prompt);
    }
  }
}

TEST_CASE("smollm2: greedy continuations and top-5 logits match transformers", "[smollm2][model][no_qemu]") {
  Model& m = smollm2();
  const nlohmann::json ref = smollm2_reference();
  for (const auto& c : ref.at("cases")) {
    INFO("case " << c.at("name").get<std::string>());
    const auto prompt = c.at("prompt_ids").get<std::vector<int32_t>>();
    const auto want = c.at("generated_ids").get<std::vector<int32_t>>();
    const auto& top = c.at("top");
    REQUIRE(top.size() == want.size());
    // Float32 rounding and a different summation order move these logits (magnitude
    // ~10-30) by about f64_max_abs_diff (~1e-4); 2e-3 absolute leaves a margin of 10x
    // over that and is still far below min_top1_margin, so the greedy ids are a fair test.
    const double tolerance = 2e-3;
    REQUIRE(c.at("min_top1_margin").get<double>() > 2 * tolerance);

    m.cache().clear(0);
    ForwardRequest r{0, prompt, false};
    TensorView logits = m.decoder().forward({&r, 1}, m.cache(), m.pool());
    std::vector<int32_t> got;
    double worst = 0;
    for (size_t step = 0; step < want.size(); ++step) {
      const float* row = logits.row<float>(0);
      for (const auto& pair : top[step]) {
        const int32_t id = pair.at(0).get<int32_t>();
        worst = std::max(worst, std::abs(double(row[id]) - pair.at(1).get<double>()));
      }
      got.push_back(static_cast<int32_t>(std::max_element(row, row + logits.cols()) - row));
      if (step + 1 == want.size()) break;
      r = {0, std::span<const int32_t>(&want[step], 1), false};  // teacher-forced: one divergence is one failure
      logits = m.decoder().forward({&r, 1}, m.cache(), m.pool());
    }
    CHECK(got == want);
    CHECK(worst < tolerance);
    WARN("worst top-5 logit difference " << worst);
  }
}

TEST_CASE("smollm2: the session API reproduces the greedy chat answer", "[smollm2][model][no_qemu]") {
  Model& m = smollm2();
  const nlohmann::json ref = smollm2_reference();  // named: a temporary would die before the loop body
  for (const auto& c : ref.at("cases")) {
    if (c.at("kind") != "chat") continue;
    INFO("case " << c.at("name").get<std::string>());
    Session s(m);
    GenerateOptions g;
    g.sampling.temperature = 0;
    g.max_new_tokens = static_cast<int32_t>(c.at("generated_ids").size());
    const GenerateResult r = s.chat(c.at("user_message").get<std::string>(), g);
    std::vector<int32_t> want = c.at("generated_ids").get<std::vector<int32_t>>();
    CHECK(r.tokens == want);
    if (c.at("stopped_at_eos").get<bool>()) CHECK(r.stop_reason == StopReason::eos);
  }
}
