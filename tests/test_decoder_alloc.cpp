// A decode step (one token per sequence, through every layer and the output
// projection) does no heap allocation once warm: this binary replaces the global
// operator new to count them.
#include <catch2/catch.hpp>
#include <vector>

#include "count_allocations.h"
#include "models/model.h"

using namespace qilin;

TEST_CASE("decoder: a warm decode step allocates nothing", "[model]") {
  for (const char* family : {"llama", "qwen2", "qwen3"}) {
    INFO("family " << family);
    LoadOptions o;
    o.threads = 2;
    o.context = 64;
    o.slots = 2;
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
