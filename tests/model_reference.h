// Reference logits of the tiny model fixtures (tests/data/models/<family>/reference.json,
// made by make_model_fixtures.py) and the checks every model test runs against them:
// prefill with all logits, token-by-token decode, and two sequences batched on two slots.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "hf_folder.h"
#include "models/convert.h"
#include "models/model.h"

namespace qilin::test {

inline const std::string kModels = std::string(QILIN_TEST_DATA_DIR) + "/models/";

inline std::vector<uint8_t> base64_decode(const std::string& s) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const int v = value(c);
    if (v < 0) continue;  // padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
  }
  return out;
}

struct Reference {
  int64_t vocab = 0;
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<float>> logits;  // [seq_len * vocab] per sequence
  std::vector<float> max_abs;
};

inline Reference read_reference(const std::string& family) {
  std::ifstream in(kModels + family + "/reference.json");
  REQUIRE(in.good());
  const nlohmann::json j = nlohmann::json::parse(in);
  Reference r;
  r.vocab = j.at("vocab_size").get<int64_t>();
  for (const auto& seq : j.at("input_ids")) r.ids.push_back(seq.get<std::vector<int32_t>>());
  for (const auto& b64 : j.at("logits")) {
    const std::vector<uint8_t> bytes = base64_decode(b64.get<std::string>());
    std::vector<float> f(bytes.size() / 4);
    std::memcpy(f.data(), bytes.data(), f.size() * 4);
    r.logits.push_back(std::move(f));
  }
  for (const auto& m : j.at("max_abs_logit")) r.max_abs.push_back(m.get<float>());
  REQUIRE(r.ids.size() == r.logits.size());
  for (size_t s = 0; s < r.ids.size(); ++s) REQUIRE(r.logits[s].size() == r.ids[s].size() * r.vocab);
  return r;
}

// Largest |got - want| over a row, relative to the sequence's largest |logit|.
inline double row_error(const float* got, const float* want, int64_t n, float max_abs) {
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(double(got[i]) - double(want[i])));
  return worst / max_abs;
}

inline LoadOptions exact_options() {
  LoadOptions o;
  o.threads = 2;
  o.context = 64;
  o.slots = 2;
  o.kv_type = DType::f32;
  o.batch = 32;
  o.max_logit_rows = 32;
  o.bf16_prefill = false;
  return o;
}

// Runs every check on one loaded model; returns the worst relative error seen.
inline double worst_error_of(Model& model, const Reference& ref) {
  REQUIRE(model.config().vocab_size == ref.vocab);
  double worst = 0;
  Decoder& dec = model.decoder();
  KvCache& cache = model.cache();

  // 1. Each sequence prefilled at once, logits for every position.
  for (size_t s = 0; s < ref.ids.size(); ++s) {
    cache.clear(0);
    const ForwardRequest r{0, ref.ids[s], true};
    const TensorView logits = dec.forward({&r, 1}, cache, model.pool());
    REQUIRE(logits.rows() == static_cast<int64_t>(ref.ids[s].size()));
    for (int64_t t = 0; t < logits.rows(); ++t) {
      worst =
          std::max(worst, row_error(logits.row<float>(t), &ref.logits[s][t * ref.vocab], ref.vocab, ref.max_abs[s]));
    }
  }
  // 2. Sequence 0 token by token (the decode path: one row per forward, growing cache),
  //    after a prefill of its first 3 tokens.
  cache.clear(0);
  const std::vector<int32_t>& ids = ref.ids[0];
  {
    const ForwardRequest r{0, std::span<const int32_t>(ids).first(3), false};
    const TensorView logits = dec.forward({&r, 1}, cache, model.pool());
    worst = std::max(worst, row_error(logits.row<float>(0), &ref.logits[0][2 * ref.vocab], ref.vocab, ref.max_abs[0]));
  }
  for (size_t t = 3; t < ids.size(); ++t) {
    const ForwardRequest r{0, std::span<const int32_t>(ids).subspan(t, 1), false};
    const TensorView logits = dec.forward({&r, 1}, cache, model.pool());
    worst = std::max(worst, row_error(logits.row<float>(0), &ref.logits[0][t * ref.vocab], ref.vocab, ref.max_abs[0]));
  }
  // 3. Both sequences in one forward pass on two slots (continuous batching), then one
  //    more decode step of each together.
  cache.clear(0);
  cache.clear(1);
  const std::vector<int32_t>& a = ref.ids[0];
  const std::vector<int32_t>& b = ref.ids[1];
  const ForwardRequest both[2] = {{1, std::span<const int32_t>(a).first(a.size() - 1), true},
                                  {0, std::span<const int32_t>(b).first(b.size() - 1), true}};
  TensorView logits = dec.forward(both, cache, model.pool());
  REQUIRE(logits.rows() == static_cast<int64_t>(a.size() + b.size() - 2));
  for (size_t t = 0; t + 1 < a.size(); ++t) {
    worst = std::max(worst, row_error(logits.row<float>(static_cast<int64_t>(t)), &ref.logits[0][t * ref.vocab],
                                      ref.vocab, ref.max_abs[0]));
  }
  for (size_t t = 0; t + 1 < b.size(); ++t) {
    worst = std::max(worst, row_error(logits.row<float>(static_cast<int64_t>(a.size() - 1 + t)),
                                      &ref.logits[1][t * ref.vocab], ref.vocab, ref.max_abs[1]));
  }
  const ForwardRequest next[2] = {{0, std::span<const int32_t>(b).last(1), false},
                                  {1, std::span<const int32_t>(a).last(1), false}};
  logits = dec.forward(next, cache, model.pool());
  worst = std::max(
      worst, row_error(logits.row<float>(0), &ref.logits[1][(b.size() - 1) * ref.vocab], ref.vocab, ref.max_abs[1]));
  worst = std::max(
      worst, row_error(logits.row<float>(1), &ref.logits[0][(a.size() - 1) * ref.vocab], ref.vocab, ref.max_abs[0]));
  return worst;
}

inline std::string convert_to(const std::string& family, DType type, const TempDir& dir) {
  ThreadPool pool(2);
  ConvertOptions opts;
  opts.weight_type = type;
  const std::string out = (dir.path / (family + "-" + std::string(name_of(type)) + ".gguf")).string();
  convert_hf_to_gguf(kModels + family, out, opts, pool);
  return out;
}

}  // namespace qilin::test
