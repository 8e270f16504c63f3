// A decode step (one token per sequence, through every layer and the output
// projection) does no heap allocation once warm: this binary replaces the global
// operator new to count them.
#include <catch2/catch.hpp>
#include <utility>
#include <vector>

#include "count_allocations.h"
#include "models/model.h"

using namespace qilin;

TEST_CASE("decoder: a warm decode step allocates nothing", "[model]") {
  // qwen3 (head_dim 32) once more with a q8_0 KV cache: quantized on store, dequantized
  // into stack tiles by attention. glm4: split fused weights, partial RoPE, post-norms.
  const std::pair<const char*, DType> cases[] = {{"llama", DType::f16},  {"qwen2", DType::f16}, {"qwen3", DType::f16},
                                                 {"qwen3", DType::q8_0}, {"glm", DType::f16},   {"glm4", DType::f16}};
  for (const auto& [family, kv_type] : cases) {
    INFO("family " << family << ", " << name_of(kv_type) << " KV cache");
    LoadOptions o;
    o.threads = 2;
    o.context = 64;
    o.slots = 2;
    o.kv_type = kv_type;
    std::unique_ptr<Model> m = Model::load(std::string(QILIN_TEST_DATA_DIR) + "/models/" + family, o);
    const std::vector<int32_t> prompt = {1, 2, 3, 4, 5};
    const int32_t next[2] = {6, 7};
    const ForwardRequest prefill{0, prompt, false};
    m->decoder().forward({&prefill, 1}, m->cache(), m->pool());
    const ForwardRequest step[2] = {{0, {&next[0], 1}, false}, {1, {&next[1], 1}, false}};
    m->decoder().forward(step, m->cache(), m->pool());  // warm-up: first calls of these shapes
    const long before = g_news.load();
    for (int i = 0; i < 4; ++i) m->decoder().forward(step, m->cache(), m->pool());
    CHECK(g_news.load() - before == 0);
  }
}
