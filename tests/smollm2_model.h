// Where the tests find the real SmolLM2-135M-Instruct GGUF (fetched by
// scripts/fetch-model.sh) and the reference outputs transformers gave for it.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace qilin::test {

// QILIN_SMOLLM2_GGUF, else the file in QILIN_MODEL_DIR, else in ~/.cache/qilin/models.
inline std::string smollm2_gguf_path() {
  if (const char* p = std::getenv("QILIN_SMOLLM2_GGUF")) return p;
  const char* dir = std::getenv("QILIN_MODEL_DIR");
  const char* home = std::getenv("HOME");
  const std::string base = dir ? dir : std::string(home ? home : "") + "/.cache/qilin/models";
  return base + "/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// tests/data/models/smollm2_reference.json (tests/data/models/make_smollm2_reference.py).
inline nlohmann::json smollm2_reference() {
  std::ifstream in(std::string(QILIN_TEST_DATA_DIR) + "/models/smollm2_reference.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

}  // namespace qilin::test
