// Tiny Hugging Face model folders written by the tests themselves: config.json,
// a hand-made model.safetensors (or two shards with their index) and optionally
// a tokenizer fixture from tests/data/tokenizer/.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/tensor.h"

namespace qilin::test {

// A scratch directory removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() /
           fmt::format("qilin_{}_{}_{}", tag, ::getpid(), reinterpret_cast<uintptr_t>(this));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// Deterministic values in [-0.5, 0.5) that differ per tensor (seed) and element.
inline float pseudo_random(uint32_t seed, int64_t i) {
  uint32_t x = seed * 0x9E3779B9u ^ static_cast<uint32_t>(i) * 0x85EBCA6Bu;
  x ^= x >> 15;
  x *= 0x2C1B3C6Du;
  x ^= x >> 12;
  x *= 0x297A2D39u;
  x ^= x >> 15;
  return static_cast<float>(x >> 8) * (1.0f / 16777216.0f) - 0.5f;
}

struct SourceTensor {
  std::string name;
  std::string dtype;  // safetensors spelling: F32, F16, BF16, I32
  std::vector<int64_t> shape;
};

inline int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The bytes of tensor number `index` (its values are pseudo_random(index + 1, i)).
inline std::vector<uint8_t> tensor_bytes(const SourceTensor& t, uint32_t index) {
  const int64_t n = numel(t.shape);
  std::vector<uint8_t> out;
  const auto put = [&](const void* p, size_t size) {
    out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + size);
  };
  for (int64_t i = 0; i < n; ++i) {
    const float v = pseudo_random(index + 1, i);
    if (t.dtype == "F32") {
      put(&v, 4);
    } else if (t.dtype == "F16") {
      const uint16_t h = f32_to_f16(v);
      put(&h, 2);
    } else if (t.dtype == "BF16") {
      const uint16_t h = f32_to_bf16(v);
      put(&h, 2);
    } else {
      const int32_t k = static_cast<int32_t>(i);
      put(&k, 4);
    }
  }
  return out;
}

// Writes one safetensors file holding `tensors` in this order, packed back to back
// (a tensor after an odd-sized one is not aligned, as the format allows).
inline void write_safetensors(const std::string& path, const std::vector<SourceTensor>& tensors,
                              uint32_t first_index = 0) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::vector<uint8_t> data;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const SourceTensor& t = tensors[k];
    const std::vector<uint8_t> bytes = tensor_bytes(t, first_index + static_cast<uint32_t>(k));
    header += fmt::format(",\"{}\":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", t.name, t.dtype,
                          fmt::join(t.shape, ","), data.size(), data.size() + bytes.size());
    data.insert(data.end(), bytes.begin(), bytes.end());
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

struct HfModelSpec {
  std::string architecture = "LlamaForCausalLM";
  int64_t vocab = 300, d = 32, layers = 2, heads = 4, kv_heads = 2, ff = 64;
  int64_t head_dim = 0;  // 0: d / heads, and no head_dim key
  bool tied = false;
  std::string dtype = "F32";
  std::string tokenizer;  // a folder of tests/data/tokenizer/ ("smollm2", "qwen2", "spm"), or none
  int32_t bos = 1, eos = 2;
  bool odd_buffer = true;  // an F16 rotary inv_freq buffer of 3 elements first: every weight after it is unaligned
  bool qkv_bias = false, qk_norm = false;
};

// The tensors of a Hugging Face checkpoint of `s`, in the order they are written.
inline std::vector<SourceTensor> hf_tensors(const HfModelSpec& s) {
  const int64_t hd = s.head_dim > 0 ? s.head_dim : s.d / s.heads;
  std::vector<SourceTensor> t;
  if (s.odd_buffer) t.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", "F16", {3}});
  t.push_back({"model.embed_tokens.weight", s.dtype, {s.vocab, s.d}});
  for (int64_t il = 0; il < s.layers; ++il) {
    const std::string p = fmt::format("model.layers.{}.", il);
    t.push_back({p + "input_layernorm.weight", s.dtype, {s.d}});
    t.push_back({p + "self_attn.q_proj.weight", s.dtype, {s.heads * hd, s.d}});
    t.push_back({p + "self_attn.k_proj.weight", s.dtype, {s.kv_heads * hd, s.d}});
    t.push_back({p + "self_attn.v_proj.weight", s.dtype, {s.kv_heads * hd, s.d}});
    if (s.qkv_bias) {
      t.push_back({p + "self_attn.q_proj.bias", s.dtype, {s.heads * hd}});
      t.push_back({p + "self_attn.k_proj.bias", s.dtype, {s.kv_heads * hd}});
      t.push_back({p + "self_attn.v_proj.bias", s.dtype, {s.kv_heads * hd}});
    }
    if (s.qk_norm) {
      t.push_back({p + "self_attn.q_norm.weight", s.dtype, {hd}});
      t.push_back({p + "self_attn.k_norm.weight", s.dtype, {hd}});
    }
    t.push_back({p + "self_attn.o_proj.weight", s.dtype, {s.d, s.heads * hd}});
    t.push_back({p + "post_attention_layernorm.weight", s.dtype, {s.d}});
    t.push_back({p + "mlp.gate_proj.weight", s.dtype, {s.ff, s.d}});
    t.push_back({p + "mlp.up_proj.weight", s.dtype, {s.ff, s.d}});
    t.push_back({p + "mlp.down_proj.weight", s.dtype, {s.d, s.ff}});
  }
  t.push_back({"model.norm.weight", s.dtype, {s.d}});
  if (!s.tied) t.push_back({"lm_head.weight", s.dtype, {s.vocab, s.d}});
  return t;
}

inline std::string hf_config_json(const HfModelSpec& s) {
  return fmt::format(
      R"({{"architectures": ["{}"], "hidden_size": {}, "num_hidden_layers": {}, "num_attention_heads": {},
  "num_key_value_heads": {}, "intermediate_size": {}, "vocab_size": {}, "max_position_embeddings": 256,
  "rms_norm_eps": 1e-06, "rope_parameters": {{"rope_theta": 500000.0, "rope_type": "default"}},
  "tie_word_embeddings": {}, "bos_token_id": {}, "eos_token_id": [{}, 0], "hidden_act": "silu"{}}})",
      s.architecture, s.d, s.layers, s.heads, s.kv_heads, s.ff, s.vocab, s.tied ? "true" : "false", s.bos, s.eos,
      s.head_dim > 0 ? fmt::format(", \"head_dim\": {}", s.head_dim) : "");
}

// Writes the folder: config.json, model.safetensors (or `shards` files with an index), tokenizer files.
inline void write_hf_folder(const std::filesystem::path& folder, const HfModelSpec& s, int shards = 1) {
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "config.json") << hf_config_json(s);
  const std::vector<SourceTensor> tensors = hf_tensors(s);
  if (shards == 1) {
    write_safetensors((folder / "model.safetensors").string(), tensors);
  } else {
    std::string map;
    const size_t per = (tensors.size() + static_cast<size_t>(shards) - 1) / static_cast<size_t>(shards);
    for (int k = 0; k < shards; ++k) {
      const std::string name = fmt::format("model-{:05}-of-{:05}.safetensors", k + 1, shards);
      const size_t begin = static_cast<size_t>(k) * per, end = std::min(tensors.size(), begin + per);
      const std::vector<SourceTensor> part(tensors.begin() + static_cast<std::ptrdiff_t>(begin),
                                           tensors.begin() + static_cast<std::ptrdiff_t>(end));
      write_safetensors((folder / name).string(), part, static_cast<uint32_t>(begin));  // same values as one file
      for (const SourceTensor& t : part) map += fmt::format("{}\"{}\": \"{}\"", map.empty() ? "" : ", ", t.name, name);
    }
    std::ofstream(folder / "model.safetensors.index.json") << "{\"metadata\": {}, \"weight_map\": {" << map << "}}";
  }
  if (!s.tokenizer.empty()) {
    const std::filesystem::path from = std::filesystem::path(QILIN_TEST_DATA_DIR) / "tokenizer" / s.tokenizer;
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      if (std::filesystem::exists(from / f)) std::filesystem::copy_file(from / f, folder / f);
  }
}

}  // namespace qilin::test
