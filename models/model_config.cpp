// ModelConfig from GGUF metadata (llama.cpp keys) and from a Hugging Face config.json.
#include "models/model_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/gguf.h"

namespace qilin {
namespace {

using Json = nlohmann::json;

struct FamilyNames {
  ModelFamily family;
  std::string_view name;          // Qilin's name = GGUF general.architecture
  std::string_view architecture;  // Hugging Face "architectures"[0]
  std::string_view model_type;    // Hugging Face "model_type"
};

constexpr FamilyNames kFamilies[] = {
    {ModelFamily::llama, "llama", "LlamaForCausalLM", "llama"},
    {ModelFamily::qwen2, "qwen2", "Qwen2ForCausalLM", "qwen2"},
    {ModelFamily::qwen3, "qwen3", "Qwen3ForCausalLM", "qwen3"},
    {ModelFamily::glm4, "glm4", "Glm4ForCausalLM", "glm4"},
    {ModelFamily::chatglm, "chatglm", "GlmForCausalLM", "glm"},
};

bool is_glm(ModelFamily f) { return f == ModelFamily::chatglm || f == ModelFamily::glm4; }

// The object `key` of `j` holding a positive integer; `fallback` (0: required) when absent.
int64_t positive_int(const Json& j, const char* key, int64_t fallback, std::string_view file) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (fallback > 0) return fallback;
    fail(file, "config.json has no {}", key);
  }
  if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > (int64_t{1} << 40))
    fail(file, "{} is {}, not a positive integer", key, it->dump());
  return it->get<int64_t>();
}

double positive_number(const Json& j, const char* key, double fallback, std::string_view file) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number() || !(it->get<double>() > 0.0) || !std::isfinite(it->get<double>()))
    fail(file, "{} is {}, not a positive number", key, it->dump());
  return it->get<double>();
}

// bos_token_id / eos_token_id: an integer, a list of them (the first is taken), or absent (-1).
int32_t token_id(const Json& j, const char* key, std::string_view file) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return -1;
  const Json& v = it->is_array() && !it->empty() ? (*it)[0] : *it;
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
    fail(file, "{} is {}, not a token id", key, it->dump());
  return v.get<int32_t>();
}

// The RoPE parameters: transformers 5 writes "rope_parameters" {"rope_theta", "rope_type",
// "partial_rotary_factor"}, possibly nested by layer type; older configs write "rope_theta"
// and "partial_rotary_factor" at the top and "rope_scaling" (null for plain RoPE). A config
// that names no factor gets `default_partial` (GLM's configuration classes default to 0.5).
void read_rope(const Json& j, ModelConfig& c, std::string_view file, double default_partial) {
  Json params = Json::object();
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_object()) fail(file, "{} is {}, not an object", key, it->dump());
    params = *it;
    if (key == std::string_view("rope_scaling")) break;  // transformers: rope_scaling wins
  }
  if (!params.contains("rope_theta") && !params.contains("rope_type") && !params.contains("type")) {
    // Nested by layer type ({"full_attention": {...}, ...}): every layer of our families is full attention.
    if (params.contains("full_attention") && params["full_attention"].is_object()) params = params["full_attention"];
  }
  const std::string type = params.value("rope_type", params.value("type", std::string("default")));
  if (type != "default")
    fail(file, "RoPE scaling '{}' is not supported (only plain RoPE: rope_type \"default\")", type);
  c.rope_theta = positive_number(params, "rope_theta", positive_number(j, "rope_theta", 10000.0, file), file);
  const double partial = positive_number(params, "partial_rotary_factor",
                                         positive_number(j, "partial_rotary_factor", default_partial, file), file);
  if (partial > 1.0) fail(file, "partial_rotary_factor is {}, more than 1", partial);
  c.rope_dim = static_cast<int64_t>(static_cast<double>(c.head_dim) * partial);  // int() as transformers
}

void reject_if_true(const Json& j, const char* key, std::string_view what, std::string_view file) {
  const auto it = j.find(key);
  if (it != j.end() && it->is_boolean() && it->get<bool>()) fail(file, "{} is true: {} is not supported", key, what);
}

// THUDM's own checkpoints (ChatGLM2/3-6B; glm-4-9b-chat without "-hf"), whose modeling code
// is not part of transformers: their config.json keys, read as llama.cpp's ChatGLMModel reads
// them. Q/K/V fused in query_key_value, gate and up in dense_h_to_4h (gate first), rotary on
// the first half of each head (RotaryEmbedding(kv_channels // 2)) in pairs (2i, 2i+1), base
// 10000 * rope_ratio.
void read_thudm_chatglm(const Json& j, ModelConfig& c, std::string_view file) {
  if (j.contains("position_encoding_2d")) fail(file, "ChatGLM-6B (the first version, 2-D positions) is not supported");
  if (!j.value("rmsnorm", true) || !j.value("post_layer_norm", true) || !j.value("original_rope", true))
    fail(file, "only the ChatGLM2/3 and GLM-4 layout is supported (rmsnorm, post_layer_norm, original_rope)");
  reject_if_true(j, "apply_residual_connection_post_layernorm", "a residual taken after the norm", file);
  reject_if_true(j, "add_bias_linear", "a bias on the dense layers", file);
  c.family = ModelFamily::chatglm;
  c.n_layers = positive_int(j, "num_layers", 0, file);
  c.d_model = positive_int(j, "hidden_size", 0, file);
  c.n_heads = positive_int(j, "num_attention_heads", 0, file);
  c.n_kv_heads =
      j.value("multi_query_attention", false) ? positive_int(j, "multi_query_group_num", 0, file) : c.n_heads;
  c.head_dim = positive_int(j, "kv_channels", c.d_model / c.n_heads > 0 ? c.d_model / c.n_heads : 0, file);
  c.d_ff = positive_int(j, "ffn_hidden_size", 0, file);
  c.vocab_size = positive_int(j, "padded_vocab_size", 0, file);
  c.max_context = positive_int(j, "seq_length", 0, file);
  c.norm_eps = static_cast<float>(positive_number(j, "layernorm_epsilon", 1e-5, file));
  c.rope_theta = 10000.0 * positive_number(j, "rope_ratio", 1.0, file);
  c.rope_dim = c.head_dim / 2;
  c.rope_interleaved = true;
  c.qkv_bias = j.value("add_qkv_bias", false);
  c.qkv_fused = true;
  c.ffn_gate_up_fused = true;
  if (const auto it = j.find("tie_word_embeddings"); it != j.end() && it->is_boolean()) c.tied_embeddings = *it;
  c.bos_id = token_id(j, "bos_token_id", file);
  c.eos_id = token_id(j, "eos_token_id", file);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("model_config", "{}: cannot open the file", path.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

std::string_view name_of(ModelFamily f) noexcept {
  for (const FamilyNames& n : kFamilies)
    if (n.family == f) return n.name;
  return "?";
}

bool model_family_from_gguf_arch(std::string_view arch, ModelFamily* out) noexcept {
  for (const FamilyNames& n : kFamilies) {
    if (n.name == arch) {
      *out = n.family;
      return true;
    }
  }
  return false;
}

bool model_family_from_hf(std::string_view architecture_or_type, ModelFamily* out) noexcept {
  for (const FamilyNames& n : kFamilies) {
    if (n.architecture == architecture_or_type || n.model_type == architecture_or_type) {
      *out = n.family;
      return true;
    }
  }
  return false;
}

void ModelConfig::validate() const {
  const std::string_view op = name.empty() ? std::string_view("model_config") : std::string_view(name);
  const auto positive = [&](int64_t v, const char* field) {
    QILIN_CHECK(v > 0, op, "{} is {}; it must be positive", field, v);
  };
  positive(n_layers, "n_layers");
  positive(d_model, "d_model");
  positive(n_heads, "n_heads");
  positive(n_kv_heads, "n_kv_heads");
  positive(head_dim, "head_dim");
  positive(d_ff, "d_ff");
  positive(vocab_size, "vocab_size");
  positive(max_context, "max_context");
  positive(rope_dim, "rope_dim");
  QILIN_CHECK(n_heads % n_kv_heads == 0, op, "n_heads {} is not a multiple of n_kv_heads {}", n_heads, n_kv_heads);
  QILIN_CHECK(rope_dim <= head_dim && rope_dim % 2 == 0, op, "rope_dim {} must be even and at most head_dim {}",
              rope_dim, head_dim);
  QILIN_CHECK(norm_eps > 0.0f && std::isfinite(norm_eps), op, "norm_eps is {}; it must be positive", norm_eps);
  QILIN_CHECK(rope_theta > 0.0 && std::isfinite(rope_theta), op, "rope_theta is {}; it must be positive", rope_theta);
  QILIN_CHECK(bos_id >= -1 && bos_id < vocab_size, op, "bos_id {} is outside the vocabulary of {}", bos_id, vocab_size);
  QILIN_CHECK(eos_id >= -1 && eos_id < vocab_size, op, "eos_id {} is outside the vocabulary of {}", eos_id, vocab_size);
}

ModelConfig ModelConfig::from_hf_json(std::string_view json, std::string_view name) {
  ModelConfig c;
  c.name = std::string(name);
  try {
    const Json j = Json::parse(json.begin(), json.end());
    if (!j.is_object()) fail(name, "config.json is not a JSON object");
    std::string arch;
    if (const auto it = j.find("architectures");
        it != j.end() && it->is_array() && !it->empty() && (*it)[0].is_string()) {
      arch = (*it)[0].get<std::string>();
    }
    const std::string model_type = j.value("model_type", std::string());
    if (arch == "ChatGLMModel" || arch == "ChatGLMForConditionalGeneration" || model_type == "chatglm") {
      read_thudm_chatglm(j, c, name);
      c.validate();
      return c;
    }
    if (!model_family_from_hf(arch, &c.family) && !model_family_from_hf(model_type, &c.family)) {
      fail(name, "architecture '{}' (model_type '{}') is not supported (llama, qwen2, qwen3, glm, glm4)", arch,
           model_type);
    }
    const std::string act = j.value("hidden_act", j.value("hidden_activation", std::string("silu")));
    if (act != "silu") fail(name, "hidden_act '{}' is not supported (silu)", act);
    c.n_layers = positive_int(j, "num_hidden_layers", 0, name);
    c.d_model = positive_int(j, "hidden_size", 0, name);
    c.n_heads = positive_int(j, "num_attention_heads", 0, name);
    c.n_kv_heads = positive_int(j, "num_key_value_heads", c.n_heads, name);
    c.head_dim = positive_int(j, "head_dim", c.d_model / c.n_heads > 0 ? c.d_model / c.n_heads : 0, name);
    c.d_ff = positive_int(j, "intermediate_size", 0, name);
    c.vocab_size = positive_int(j, "vocab_size", 0, name);
    c.max_context = positive_int(j, "max_position_embeddings", 0, name);
    c.norm_eps = static_cast<float>(positive_number(j, "rms_norm_eps", 1e-6, name));
    read_rope(j, c, name, is_glm(c.family) ? 0.5 : 1.0);
    if (const auto it = j.find("tie_word_embeddings"); it != j.end() && !it->is_null()) {
      if (!it->is_boolean()) fail(name, "tie_word_embeddings is {}, not a boolean", it->dump());
      c.tied_embeddings = it->get<bool>();
    }
    c.bos_id = token_id(j, "bos_token_id", name);
    c.eos_id = token_id(j, "eos_token_id", name);
    switch (c.family) {
      case ModelFamily::llama:
        reject_if_true(j, "attention_bias", "a bias on the attention projections of a llama model", name);
        reject_if_true(j, "mlp_bias", "a bias on the MLP projections", name);
        break;
      case ModelFamily::qwen2:
        c.qkv_bias = true;
        // transformers: layers from max_window_layers on use sliding-window attention.
        if (j.value("use_sliding_window", false) && j.value("max_window_layers", c.n_layers) < c.n_layers)
          fail(name, "use_sliding_window is true: sliding-window attention is not supported");
        break;
      case ModelFamily::qwen3:
        c.qk_norm = true;
        reject_if_true(j, "attention_bias", "a bias on the attention projections of a qwen3 model", name);
        if (j.value("use_sliding_window", false) && j.value("max_window_layers", c.n_layers) < c.n_layers)
          fail(name, "use_sliding_window is true: sliding-window attention is not supported");
        break;
      case ModelFamily::glm4:
      case ModelFamily::chatglm:
        // transformers' GlmAttention: bias on q/k/v as attention_bias says (true by default),
        // rotary on pairs (2i, 2i+1) of the first rope_dim dims; GlmMLP: gate_up_proj, gate first.
        c.qkv_bias = j.value("attention_bias", true);
        c.rope_interleaved = true;
        c.ffn_gate_up_fused = true;
        c.post_norms = c.family == ModelFamily::glm4;
        break;
    }
  } catch (const Json::exception& e) {
    fail(name, "{}", e.what());
  }
  c.validate();
  return c;
}

ModelConfig ModelConfig::from_hf_folder(const std::string& folder) {
  const std::filesystem::path dir(folder);
  const std::filesystem::path file = dir / "config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) fail("model_config", "{}: no config.json in the folder", folder);
  ModelConfig c = from_hf_json(read_file(file), file.string());
  // The folder's name names the model ("SmolLM2-135M-Instruct"); a trailing '/' leaves an empty filename.
  c.name = (dir.has_filename() ? dir.filename() : dir.parent_path().filename()).string();
  return c;
}

ModelConfig ModelConfig::from_gguf(const GgufFile& file) {
  const std::string& path = file.path();
  ModelConfig c;
  const std::string arch = file.require_string("general.architecture");
  if (!model_family_from_gguf_arch(arch, &c.family))
    fail(path, "general.architecture '{}' is not supported (llama, qwen2, qwen3, glm4, chatglm)", arch);
  c.name = file.get_string("general.name", "");
  const auto key = [&](std::string_view suffix) { return fmt::format("{}.{}", arch, suffix); };
  c.n_layers = file.require_int(key("block_count"));
  c.d_model = file.require_int(key("embedding_length"));
  c.n_heads = file.require_int(key("attention.head_count"));
  const std::string kv_key = key("attention.head_count_kv");
  if (const GgufValue* kv = file.find(kv_key); kv != nullptr && kv->type() == GgufType::array) {
    // llama.cpp allows one value per layer; Qilin's decoder needs them all equal.
    const std::vector<int64_t> per_layer = file.require_int_array(kv_key);
    QILIN_CHECK(!per_layer.empty(), path, "{} is an empty array", kv_key);
    for (int64_t v : per_layer)
      QILIN_CHECK(v == per_layer[0], path, "{} differs between layers; not supported", kv_key);
    c.n_kv_heads = per_layer[0];
  } else {
    c.n_kv_heads = file.get_int(kv_key, c.n_heads);
  }
  QILIN_CHECK(c.n_heads > 0, path, "{} is {}", key("attention.head_count"), c.n_heads);
  c.head_dim = file.get_int(key("attention.key_length"), c.d_model / c.n_heads);
  const int64_t value_length = file.get_int(key("attention.value_length"), c.head_dim);
  QILIN_CHECK(value_length == c.head_dim, path, "{} is {} but the key length is {}; not supported",
              key("attention.value_length"), value_length, c.head_dim);
  c.d_ff = file.require_int(key("feed_forward_length"));
  c.max_context = file.require_int(key("context_length"));
  c.norm_eps = static_cast<float>(file.get_float(key("attention.layer_norm_rms_epsilon"), 1e-5));
  c.rope_theta = file.get_float(key("rope.freq_base"), 10000.0);
  c.rope_dim = file.get_int(key("rope.dimension_count"), c.head_dim);
  if (file.has(key("vocab_size"))) {
    c.vocab_size = file.require_int(key("vocab_size"));
  } else if (const GgufTensorInfo* embd = file.find_tensor("token_embd.weight")) {
    c.vocab_size = embd->shape[0];
  } else if (file.has("tokenizer.ggml.tokens")) {
    c.vocab_size = static_cast<int64_t>(file.require("tokenizer.ggml.tokens").size());
  }
  // llama.cpp permutes the llama family's Q/K rows into (2i, 2i+1) pairs; GLM's are stored
  // that way (llama.cpp runs both GLM archs with LLAMA_ROPE_TYPE_NORM, adjacent pairs).
  c.rope_interleaved = c.family == ModelFamily::llama || is_glm(c.family);
  c.tied_embeddings = file.find_tensor("output.weight") == nullptr;
  // GLM files converted from THUDM's own checkpoints keep Q, K and V fused (attn_qkv), those
  // from transformers' GlmForCausalLM / Glm4ForCausalLM have them apart; either may carry a bias.
  c.qkv_fused = is_glm(c.family) && file.find_tensor("blk.0.attn_qkv.weight") != nullptr;
  c.qkv_bias =
      c.family == ModelFamily::qwen2 ||
      (is_glm(c.family) && file.find_tensor(c.qkv_fused ? "blk.0.attn_qkv.bias" : "blk.0.attn_q.bias") != nullptr);
  c.qk_norm = c.family == ModelFamily::qwen3;
  c.ffn_gate_up_fused = is_glm(c.family);
  c.post_norms = c.family == ModelFamily::glm4;
  const auto id = [&](const char* k) {
    const int64_t v = file.get_int(k, -1);
    QILIN_CHECK(v >= -1 && v <= INT32_MAX, path, "{} is {}", k, v);
    return static_cast<int32_t>(v);
  };
  c.bos_id = id("tokenizer.ggml.bos_token_id");
  c.eos_id = id("tokenizer.ggml.eos_token_id");
  try {
    c.validate();
  } catch (const Error& e) {
    fail(path, "{}", e.what());
  }
  return c;
}

}  // namespace qilin
