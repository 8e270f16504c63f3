// Sampler: greedy, each filter of the chain on hand-made logits (the set of tokens that
// can be drawn, and their frequencies against the expected softmax), penalties to the
// formula, seeds, bad input, and no heap allocation per sample.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "core/error.h"
#include "count_allocations.h"
#include "models/sampler.h"

using namespace qilin;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Options with every filter off: a plain softmax draw at temperature 1.
SamplerOptions plain() {
  SamplerOptions o;
  o.temperature = 1.0f;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.min_p = 0.0f;
  return o;
}

// Logits whose softmax is `probs` (which sum to 1).
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

// Eight tokens with distinct, well separated probabilities.
const std::vector<double> kProbs = {0.4, 0.2, 0.15, 0.1, 0.08, 0.04, 0.02, 0.01};

std::vector<int64_t> histogram(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<int64_t> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[s.sample(logits)];
  return counts;
}

// Draws `draws` tokens and checks (1) that exactly the tokens in `kept` were drawn and
// (2) their frequencies against softmax(logit / temperature) over `kept`.
//
// Pearson's X^2 = sum (observed - expected)^2 / expected follows chi-square with
// df = |kept| - 1 for a correct sampler (asymptotically; every expected count here is
// >= 100). Laurent & Massart (2000): P(chi2_df >= df + 2 sqrt(df x) + 2x) <= e^-x, so
// with x = 14 a correct sampler fails for fewer than one seed in a million. With
// 50000 draws, moving 2% of the probability between two tokens adds about
// 0.02^2 * 50000 / 0.2 = 100 to X^2, far above the bound (< 60 for df <= 7).
void check_distribution(const std::vector<float>& logits, const SamplerOptions& options, const std::vector<int>& kept) {
  Sampler s(static_cast<int32_t>(logits.size()), options);
  const int draws = 50000;
  const std::vector<int64_t> counts = histogram(s, logits, draws);
  std::set<int> drawn;
  for (size_t i = 0; i < counts.size(); ++i)
    if (counts[i] > 0) drawn.insert(static_cast<int>(i));
  CHECK(drawn == std::set<int>(kept.begin(), kept.end()));

  double z = 0;
  for (int t : kept) z += std::exp(double{logits[t]} / options.temperature);
  double x2 = 0;
  for (int t : kept) {
    const double expected = draws * std::exp(double{logits[t]} / options.temperature) / z;
    REQUIRE(expected >= 100);  // the chi-square approximation needs enough per cell
    x2 += (counts[t] - expected) * (counts[t] - expected) / expected;
  }
  const double df = static_cast<double>(kept.size()) - 1, x = 14;
  INFO("X^2 = " << x2 << " with df = " << df);
  CHECK(x2 <= df + 2 * std::sqrt(df * x) + 2 * x);
}

std::vector<float> random_logits(size_t n, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> l(n);
  for (float& v : l) v = normal(gen);
  return l;
}

}  // namespace

TEST_CASE("sampler: greedy picks the argmax, ties to the lowest id", "[sampler]") {
  SamplerOptions o;
  o.temperature = 0.0f;
  Sampler s(5, o);
  CHECK(s.sample(std::vector<float>{1, 5, 3, 5, -2}) == 1);
  CHECK(s.sample(std::vector<float>{-1, -1, -1, -1, -1}) == 0);
  CHECK(s.sample(std::vector<float>{0, 0, 0, 0, 7}) == 4);
  o.temperature = -1.0f;  // any temperature <= 0
  Sampler negative(5, o);
  CHECK(negative.sample(std::vector<float>{1, 2, 9, 9, 0}) == 2);
}

TEST_CASE("sampler: top_k = 1 and top_p = 0 equal greedy at any temperature", "[sampler]") {
  const std::vector<float> logits = random_logits(3000, 7, 2.0f);
  const int32_t argmax = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  for (float temperature : {0.1f, 1.0f, 3.0f, 100.0f}) {
    SamplerOptions k1 = plain(), p0 = plain();
    k1.temperature = p0.temperature = temperature;
    k1.top_k = 1;
    p0.top_p = 0.0f;
    Sampler a(3000, k1), b(3000, p0);
    for (int i = 0; i < 50; ++i) {
      CHECK(a.sample(logits) == argmax);
      CHECK(b.sample(logits) == argmax);
    }
  }
}

TEST_CASE("sampler: a seed fixes the sequence; reset restarts it; other seeds differ", "[sampler]") {
  const std::vector<float> logits = random_logits(1000, 3, 1.0f);
  SamplerOptions o = plain();
  o.seed = 1234;
  Sampler a(1000, o), b(1000, o);
  std::vector<int32_t> first, second, after_reset;
  for (int i = 0; i < 200; ++i) first.push_back(a.sample(logits));
  for (int i = 0; i < 200; ++i) second.push_back(b.sample(logits));
  a.reset();
  for (int i = 0; i < 200; ++i) after_reset.push_back(a.sample(logits));
  CHECK(first == second);
  CHECK(first == after_reset);
  o.seed = 1235;
  Sampler c(1000, o);
  std::vector<int32_t> other;
  for (int i = 0; i < 200; ++i) other.push_back(c.sample(logits));
  CHECK(other != first);  // 200 draws from ~1000 tokens: equal only by a bug
}

TEST_CASE("sampler: the sequence for a seed is the same on every machine", "[sampler]") {
  // Logits from integer arithmetic only, and a sequence recorded once: a change in the
  // generator, the exp polynomial or the fixed-point draw (or a dependence on libm or
  // the standard library) changes it.
  std::vector<float> logits(5000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>((i * 7919) % 1000) / 100.0f;
  SamplerOptions o;  // the defaults: top-k 40, top-p 0.95, min-p 0.05, temperature 0.8
  o.seed = 42;
  Sampler s(5000, o);
  std::vector<int32_t> got;
  for (int i = 0; i < 12; ++i) got.push_back(s.sample(logits));
  SamplerOptions wide = plain();
  wide.top_p = 0.5f;
  wide.seed = 42;
  Sampler w(5000, wide);
  for (int i = 0; i < 12; ++i) got.push_back(w.sample(logits));
  const std::vector<int32_t> recorded = {568, 1926, 3284, 4642, 4963, 3926, 3605, 4284, 3642, 2926, 3321, 1568,
                                         445, 1889, 3408, 4630, 4963, 3865, 3605, 4260, 3828, 2914, 3420, 1470};
  CHECK(got == recorded);
}

TEST_CASE("sampler: temperature 1 with no filter draws the softmax", "[sampler]") {
  check_distribution(logits_of(kProbs), plain(), {0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("sampler: top-k keeps the k most likely", "[sampler]") {
  SamplerOptions o = plain();
  o.top_k = 3;
  check_distribution(logits_of(kProbs), o, {0, 1, 2});
  // Equal logits at the cut: the lowest ids stay.
  o.top_k = 2;
  check_distribution({0.0f, 1.0f, 1.0f, 1.0f, -kInf}, o, {1, 2});
}

TEST_CASE("sampler: top-p keeps the smallest prefix reaching p", "[sampler]") {
  SamplerOptions o = plain();
  o.top_p = 0.65f;  // 0.4 + 0.2 < 0.65 <= 0.4 + 0.2 + 0.15
  check_distribution(logits_of(kProbs), o, {0, 1, 2});
  o.top_p = 0.5f;
  check_distribution(logits_of(kProbs), o, {0, 1});
  // Applied to the top-k set, renormalised: 0.4 / 0.6 = 0.67 >= 0.55 keeps token 0 alone
  // (over the whole vocabulary 0.4 < 0.55 would keep token 1 too).
  o.top_k = 2;
  o.top_p = 0.55f;
  Sampler s(8, o);
  const std::vector<int64_t> counts = histogram(s, logits_of(kProbs), 1000);
  CHECK(counts[0] == 1000);
}

TEST_CASE("sampler: min-p keeps p >= min_p * p_max", "[sampler]") {
  SamplerOptions o = plain();
  o.min_p = 0.3f;  // p >= 0.12
  check_distribution(logits_of(kProbs), o, {0, 1, 2});
  o.min_p = 0.22f;  // p >= 0.088
  check_distribution(logits_of(kProbs), o, {0, 1, 2, 3});
}

TEST_CASE("sampler: temperature scales after the filters", "[sampler]") {
  SamplerOptions o = plain();
  o.temperature = 2.0f;
  check_distribution(logits_of(kProbs), o, {0, 1, 2, 3, 4, 5, 6, 7});
  // A high temperature flattens the kept tokens but does not widen min-p's set.
  o.temperature = 5.0f;
  o.min_p = 0.3f;
  check_distribution(logits_of(kProbs), o, {0, 1, 2});
  // The whole chain: top-5 (mass 0.93), top-p 0.8 of it (0.4, 0.6, 0.75 / 0.93 = 0.806),
  // min-p 0.2 (p >= 0.08, keeps all three), then temperature 0.5.
  o = plain();
  o.top_k = 5;
  o.top_p = 0.8f;
  o.min_p = 0.2f;
  o.temperature = 0.5f;
  check_distribution(logits_of(kProbs), o, {0, 1, 2});
}

TEST_CASE("sampler: top-p over a large vocabulary (selection, ties, prefilter)", "[sampler]") {
  SamplerOptions o = plain();
  o.top_p = 0.5f;
  {
    // 4000 equal logits: the nucleus is exactly the ids 0..1999 (ties go to low ids).
    Sampler s(4000, o);
    const std::vector<int64_t> counts = histogram(s, std::vector<float>(4000, 1.5f), 5000);
    CHECK(std::accumulate(counts.begin() + 2000, counts.end(), int64_t{0}) == 0);
    // Each kept id has probability 1/2000: over 5000 draws the last 100 kept ids all
    // stay undrawn with probability 0.95^5000 ~ 1e-111.
    CHECK(std::accumulate(counts.begin() + 1900, counts.begin() + 2000, int64_t{0}) > 0);
  }
  {
    // Random logits: every drawn token is in the nucleus computed in double by sorting.
    const size_t n = 50000;
    const std::vector<float> logits = random_logits(n, 11, 2.0f);
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
    double total = 0, cum = 0;
    for (float l : logits) total += std::exp(double{l} - logits[order[0]]);
    std::set<int> nucleus;
    for (int t : order) {
      nucleus.insert(t);
      cum += std::exp(double{logits[t]} - logits[order[0]]);
      if (cum >= 0.5 * total) break;
    }
    REQUIRE(nucleus.size() > 512);  // large enough for the bisection, not only the final sort
    Sampler s(static_cast<int32_t>(n), o);
    const std::vector<int64_t> counts = histogram(s, logits, 1000);
    int64_t outside = 0;
    for (size_t t = 0; t < n; ++t)
      if (counts[t] > 0 && !nucleus.count(static_cast<int>(t))) outside += counts[t];
    CHECK(outside == 0);
  }
}

TEST_CASE("sampler: the top-p nucleus is exact over a large vocabulary", "[sampler]") {
  // 1000 distinct logits from 0 down to -2 in a shuffled id order: a nucleus of ~280
  // tokens (the radix selection, not the small-set sort), spread over many buckets of
  // each radix pass. Every token of the nucleus computed in double must be drawn and
  // no other: each has probability >= 0.57 / 432 = 1.3e-3, so 20000 draws leave one
  // undrawn with probability < 280 e^-26 ~ 1e-9 (a boundary too early or too late fails).
  const size_t n = 1000;
  std::vector<float> logits(n);
  std::vector<int> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(9));
  for (size_t r = 0; r < n; ++r) logits[ids[r]] = -static_cast<float>(r) * 0.002f;
  double total = 0, cum = 0;
  for (float l : logits) total += std::exp(double{l});
  std::set<int> nucleus;
  for (int t : ids) {  // ids in rank order
    nucleus.insert(t);
    cum += std::exp(double{logits[t]});
    if (cum >= 0.5 * total) break;
  }
  REQUIRE(nucleus.size() > 64);  // the radix path
  SamplerOptions o = plain();
  o.top_p = 0.5f;
  Sampler s(static_cast<int32_t>(n), o);
  const std::vector<int64_t> counts = histogram(s, logits, 20000);
  std::set<int> drawn;
  for (size_t t = 0; t < n; ++t)
    if (counts[t] > 0) drawn.insert(static_cast<int>(t));
  CHECK(drawn == nucleus);
}

TEST_CASE("sampler: the top-k path and the full-vocabulary path agree", "[sampler]") {
  // With top_k = vocab - 1 and one -inf token, the heap keeps every finite token, so
  // it must draw exactly what top_k = 0 draws with the same seed.
  std::vector<float> logits = random_logits(3000, 5, 1.5f);
  logits[1234] = -kInf;
  SamplerOptions o;
  o.top_p = 0.9f;
  o.min_p = 0.01f;
  o.temperature = 0.7f;
  SamplerOptions heap = o, full = o;
  heap.top_k = 2999;
  full.top_k = 0;
  Sampler a(3000, heap), b(3000, full);
  for (int i = 0; i < 300; ++i) REQUIRE(a.sample(logits) == b.sample(logits));
}

TEST_CASE("sampler: penalties change the logits by the formulas", "[sampler]") {
  SamplerOptions o;
  o.repeat_penalty = 1.5f;
  o.presence_penalty = 0.25f;
  o.frequency_penalty = 0.5f;
  o.repeat_last_n = 4;
  Sampler s(6, o);
  for (int32_t t : {1, 1, 2, 5, 3, 2}) s.accept(t);  // the window: 2, 5, 3, 2
  std::vector<float> l = {1.0f, 2.0f, -3.0f, 0.0f, 4.0f, -1.0f};
  s.apply_penalties(l);
  CHECK(l[0] == 1.0f);                               // never seen
  CHECK(l[1] == 2.0f);                               // left the window
  CHECK(l[2] == -3.0f * 1.5f - (2 * 0.5f + 0.25f));  // negative: multiplied; count 2
  CHECK(l[3] == 0.0f * 1.5f - (1 * 0.5f + 0.25f));   // zero counts as not positive
  CHECK(l[4] == 4.0f);                               // never seen
  CHECK(l[5] == -1.0f * 1.5f - (1 * 0.5f + 0.25f));
  s.accept(4);  // 1 more: the window is 5, 3, 2, 4
  l = {1.0f, 2.0f, -3.0f, 0.0f, 4.0f, -1.0f};
  s.apply_penalties(l);
  CHECK(l[2] == -3.0f * 1.5f - (1 * 0.5f + 0.25f));
  CHECK(l[4] == 4.0f / 1.5f - (1 * 0.5f + 0.25f));  // positive: divided
  s.reset();
  l = {1.0f, 2.0f, -3.0f, 0.0f, 4.0f, -1.0f};
  s.apply_penalties(l);
  CHECK(l == std::vector<float>{1.0f, 2.0f, -3.0f, 0.0f, 4.0f, -1.0f});

  SECTION("repeat_last_n = -1 counts every token, 0 none") {
    o.repeat_last_n = -1;
    Sampler all(6, o);
    for (int i = 0; i < 100; ++i) all.accept(3);
    std::vector<float> x(6, 1.0f);
    all.apply_penalties(x);
    CHECK(x[3] == 1.0f / 1.5f - (100 * 0.5f + 0.25f));
    o.repeat_last_n = 0;
    Sampler none(6, o);
    none.accept(3);
    std::vector<float> y(6, 1.0f);
    none.apply_penalties(y);
    CHECK(y == std::vector<float>(6, 1.0f));
  }
  SECTION("sample() applies them") {
    o = SamplerOptions{};
    o.temperature = 0.0f;
    o.repeat_penalty = 1.5f;
    Sampler g(2, o);
    const std::vector<float> logits = {2.0f, 1.9f};
    CHECK(g.sample(logits) == 0);
    g.accept(0);
    CHECK(g.sample(logits) == 1);  // 2 / 1.5 < 1.9
  }
}

TEST_CASE("sampler: NaN and inf logits", "[sampler]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  SamplerOptions greedy;
  greedy.temperature = 0.0f;
  Sampler g(4, greedy);
  CHECK(g.sample(std::vector<float>{nan, 1.0f, nan, 0.5f}) == 1);
  CHECK(g.sample(std::vector<float>{1.0f, kInf, 3.0f, kInf}) == 1);
  // Sampling: NaN and -inf are never drawn; a +inf token takes all the probability.
  Sampler s(4, plain());
  for (int i = 0; i < 200; ++i) {
    const int32_t t = s.sample(std::vector<float>{nan, 0.0f, -kInf, 0.0f});
    CHECK((t == 1 || t == 3));
    CHECK(s.sample(std::vector<float>{0.0f, 100.0f, kInf, nan}) == 2);
  }
  // Penalties that overflow a huge logit do not make it NaN.
  SamplerOptions p = plain();
  p.repeat_penalty = 0.5f;
  Sampler big(2, p);
  big.accept(0);
  for (int i = 0; i < 10; ++i) CHECK(big.sample(std::vector<float>{3e38f, 0.0f}) == 0);
  // No finite logit: an error, not a silent token 0.
  CHECK_THROWS_AS(g.sample(std::vector<float>{nan, -kInf, nan, -kInf}), Error);
  CHECK_THROWS_AS(s.sample(std::vector<float>{-kInf, -kInf, -kInf, -kInf}), Error);
}

TEST_CASE("sampler: bad input throws qilin::Error", "[sampler]") {
  Sampler s(4, plain());
  CHECK_THROWS_AS(s.sample(std::vector<float>(5, 0.0f)), Error);
  CHECK_THROWS_AS(s.sample(std::vector<float>(3, 0.0f)), Error);
  std::vector<float> wrong(3);
  CHECK_THROWS_AS(s.apply_penalties(wrong), Error);
  CHECK_THROWS_AS(s.accept(4), Error);
  CHECK_THROWS_AS(s.accept(-1), Error);
  CHECK_THROWS_AS(Sampler(0, plain()), Error);
  const auto bad = [](auto change) {
    SamplerOptions o;
    change(o);
    return o;
  };
  CHECK_THROWS_AS(Sampler(4, bad([](SamplerOptions& o) { o.top_p = 1.5f; })), Error);
  CHECK_THROWS_AS(Sampler(4, bad([](SamplerOptions& o) { o.min_p = -0.1f; })), Error);
  CHECK_THROWS_AS(Sampler(4, bad([](SamplerOptions& o) { o.temperature = std::nanf(""); })), Error);
  CHECK_THROWS_AS(Sampler(4, bad([](SamplerOptions& o) { o.repeat_penalty = 0.0f; })), Error);
  CHECK_THROWS_AS(Sampler(4, bad([](SamplerOptions& o) { o.repeat_last_n = -2; })), Error);
  CHECK_THROWS_AS(Sampler(4, bad([](SamplerOptions& o) { o.frequency_penalty = kInf; })), Error);
}

TEST_CASE("sampler: sample() does not allocate", "[sampler]") {
  const int32_t n = 151936;
  const std::vector<float> logits = random_logits(n, 1, 3.0f);
  std::vector<SamplerOptions> configs(4);
  configs[1].top_k = 0;
  configs[1].top_p = 0.9f;
  configs[2].top_k = 0;
  configs[2].top_p = 0.9f;
  configs[2].min_p = 0.0f;
  configs[3].repeat_penalty = 1.3f;
  configs[3].presence_penalty = 0.5f;
  for (const SamplerOptions& o : configs) {
    Sampler s(n, o);
    for (int32_t t = 0; t < 100; ++t) s.accept(t * 17);
    const long before = g_news.load();
    int32_t sum = 0;
    for (int i = 0; i < 5; ++i) sum += s.sample(logits);
    const long allocations = g_news.load() - before;  // read before CHECK, which may allocate
    CHECK(allocations == 0);
    CHECK(sum >= 0);
  }
  // The counter works: constructing a sampler allocates.
  const long before = g_news.load();
  Sampler s(n, SamplerOptions{});
  CHECK(g_news.load() > before);
}
