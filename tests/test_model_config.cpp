// ModelConfig from Hugging Face config.json text and from GGUF metadata, and the
// HF <-> GGUF tensor names (models/model_config.h, models/tensor_names.h).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/gguf.h"
#include "core/gguf_writer.h"
#include "models/model_config.h"
#include "models/tensor_names.h"

using namespace qilin;

namespace {

// Real configs as their checkpoints ship them (unused keys trimmed).
constexpr const char* kSmolLM2 = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 576, "intermediate_size": 1536, "max_position_embeddings": 8192,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 9, "num_hidden_layers": 30,
  "num_key_value_heads": 3, "pad_token_id": 2, "rms_norm_eps": 1e-05, "rope_scaling": null,
  "rope_theta": 100000, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "vocab_size": 49152})";

constexpr const char* kQwen25 = R"({
  "architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu",
  "hidden_size": 896, "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21,
  "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
  "use_sliding_window": false, "vocab_size": 151936})";

// As transformers 5 saves it: RoPE settings under rope_parameters, no top-level rope_theta.
constexpr const char* kQwen3V5 = R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "bos_token_id": 151643, "dtype": "bfloat16",
  "eos_token_id": [151645, 151643], "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024,
  "intermediate_size": 3072, "layer_types": ["full_attention", "full_attention"], "max_position_embeddings": 40960,
  "max_window_layers": 28, "model_type": "qwen3", "num_attention_heads": 16, "num_hidden_layers": 2,
  "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
  "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}, "sliding_window": null,
  "tie_word_embeddings": true, "use_sliding_window": false, "vocab_size": 151936})";

constexpr const char* kGlm4 = R"({
  "architectures": ["Glm4ForCausalLM"], "attention_bias": true, "eos_token_id": [151329, 151336, 151338],
  "head_dim": 128, "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 13696,
  "max_position_embeddings": 32768, "model_type": "glm4", "num_attention_heads": 32, "num_hidden_layers": 40,
  "num_key_value_heads": 2, "pad_token_id": 151329, "partial_rotary_factor": 0.5, "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0, "tie_word_embeddings": false, "vocab_size": 151552})";

// A minimal valid config with `extra` merged over it (later keys win in nlohmann's parse).
std::string tiny(const std::string& extra) {
  std::string base = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "intermediate_size": 96, "vocab_size": 100, "max_position_embeddings": 128)";
  return base + (extra.empty() ? "" : ", " + extra) + "}";
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("qilin_model_config_" + std::to_string(::getpid()) + "_" +
                                                     std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace

TEST_CASE("model_config: SmolLM2 (llama) from config.json", "[model_config]") {
  const ModelConfig c = ModelConfig::from_hf_json(kSmolLM2);
  CHECK(c.family == ModelFamily::llama);
  CHECK(c.n_layers == 30);
  CHECK(c.d_model == 576);
  CHECK(c.n_heads == 9);
  CHECK(c.n_kv_heads == 3);
  CHECK(c.head_dim == 64);
  CHECK(c.d_ff == 1536);
  CHECK(c.vocab_size == 49152);
  CHECK(c.max_context == 8192);
  CHECK(c.norm_eps == 1e-5f);
  CHECK(c.rope_theta == 100000.0);
  CHECK(c.rope_dim == 64);
  CHECK_FALSE(c.rope_interleaved);  // Hugging Face weights pair (i, i + d/2)
  CHECK(c.tied_embeddings);
  CHECK_FALSE(c.qkv_bias);
  CHECK_FALSE(c.qk_norm);
  CHECK(c.bos_id == 1);
  CHECK(c.eos_id == 2);
  CHECK(c.name == "config.json");
}

TEST_CASE("model_config: Qwen2.5 has QKV bias; Qwen3 (transformers 5 layout) has q/k norm and its own head_dim",
          "[model_config]") {
  const ModelConfig q2 = ModelConfig::from_hf_json(kQwen25, "Qwen2.5-0.5B");
  CHECK(q2.family == ModelFamily::qwen2);
  CHECK(q2.name == "Qwen2.5-0.5B");
  CHECK(q2.head_dim == 64);
  CHECK(q2.n_kv_heads == 2);
  CHECK(q2.rope_theta == 1e6);
  CHECK(q2.norm_eps == 1e-6f);
  CHECK(q2.qkv_bias);
  CHECK_FALSE(q2.qk_norm);
  CHECK(q2.eos_id == 151645);

  const ModelConfig q3 = ModelConfig::from_hf_json(kQwen3V5);
  CHECK(q3.family == ModelFamily::qwen3);
  CHECK(q3.head_dim == 128);  // not 1024 / 16
  CHECK(q3.rope_dim == 128);
  CHECK(q3.rope_theta == 1e6);  // from rope_parameters
  CHECK(q3.qk_norm);
  CHECK_FALSE(q3.qkv_bias);
  CHECK(q3.eos_id == 151645);  // the first of the list
  CHECK(q3.bos_id == 151643);
  CHECK(q3.tied_embeddings);
}

TEST_CASE("model_config: GLM-4 is recognised, with partial rotary", "[model_config]") {
  const ModelConfig c = ModelConfig::from_hf_json(kGlm4);
  CHECK(c.family == ModelFamily::glm4);
  CHECK(c.head_dim == 128);
  CHECK(c.rope_dim == 64);
  CHECK(c.qkv_bias);
  CHECK(c.eos_id == 151329);
  CHECK(c.bos_id == -1);
  CHECK_FALSE(c.tied_embeddings);
  CHECK(c.rope_interleaved);  // transformers' GLM rotates pairs (2i, 2i+1)
  CHECK(c.ffn_gate_up_fused);
  CHECK(c.post_norms);
  CHECK_FALSE(c.qkv_fused);  // only GGUF files converted from THUDM's checkpoints fuse Q/K/V

  // GlmForCausalLM (GLM-4-9B-chat-hf): the same without post-norms; llama.cpp's arch "chatglm".
  std::string glm = kGlm4;
  glm.replace(glm.find("Glm4ForCausalLM"), 15, "GlmForCausalLM");
  glm.replace(glm.find(R"("glm4")"), 6, R"("glm")");
  const ModelConfig g = ModelConfig::from_hf_json(glm);
  CHECK(g.family == ModelFamily::chatglm);
  CHECK(name_of(g.family) == "chatglm");
  CHECK(g.rope_dim == 64);
  CHECK(g.ffn_gate_up_fused);
  CHECK_FALSE(g.post_norms);
  // No partial_rotary_factor: GlmConfig's default, a half.
  glm.erase(glm.find(R"("partial_rotary_factor": 0.5, )"), 30);
  CHECK(ModelConfig::from_hf_json(glm).rope_dim == 64);
  glm.replace(glm.find(R"("attention_bias": true)"), 22, R"("attention_bias": false)");
  CHECK_FALSE(ModelConfig::from_hf_json(glm).qkv_bias);
}

TEST_CASE("model_config: THUDM's ChatGLM3-6B config.json (remote-code ChatGLMModel)", "[model_config]") {
  // THUDM/chatglm3-6b's config.json, the keys Qilin reads (and a few it ignores).
  const std::string chatglm3 = R"({"architectures": ["ChatGLMModel"], "model_type": "chatglm",
    "add_bias_linear": false, "add_qkv_bias": true, "apply_query_key_layer_scaling": true,
    "apply_residual_connection_post_layernorm": false, "ffn_hidden_size": 13696, "hidden_size": 4096,
    "kv_channels": 128, "layernorm_epsilon": 1e-05, "multi_query_attention": true, "multi_query_group_num": 2,
    "num_attention_heads": 32, "num_layers": 28, "original_rope": true, "padded_vocab_size": 65024,
    "post_layer_norm": true, "rmsnorm": true, "seq_length": 8192, "eos_token_id": 2, "pad_token_id": 0)";
  const ModelConfig c = ModelConfig::from_hf_json(chatglm3 + "}");
  CHECK(c.family == ModelFamily::chatglm);
  CHECK(c.n_layers == 28);
  CHECK(c.n_kv_heads == 2);
  CHECK(c.head_dim == 128);
  CHECK(c.rope_dim == 64);  // RotaryEmbedding(kv_channels // 2)
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.d_ff == 13696);
  CHECK(c.vocab_size == 65024);
  CHECK(c.max_context == 8192);
  CHECK(c.qkv_bias);
  CHECK(c.qkv_fused);
  CHECK(c.ffn_gate_up_fused);
  CHECK(c.rope_interleaved);
  CHECK_FALSE(c.post_norms);
  CHECK(c.eos_id == 2);
  CHECK(ModelConfig::from_hf_json(chatglm3 + R"(, "rope_ratio": 50})").rope_theta == 500000.0);  // chatglm3-6b-32k
  CHECK(ModelConfig::from_hf_json(chatglm3 + R"(, "multi_query_attention": false})").n_kv_heads == 32);
  CHECK_THROWS_WITH(ModelConfig::from_hf_json(chatglm3 + R"(, "position_encoding_2d": true})"),
                    Catch::Contains("ChatGLM-6B"));
  CHECK_THROWS_WITH(ModelConfig::from_hf_json(chatglm3 + R"(, "rmsnorm": false})"), Catch::Contains("rmsnorm"));
  // Its tensors, by llama.cpp's names: Q/K/V and gate/up fused.
  const std::vector<TensorSpec> t = expected_tensors(c);
  CHECK(t.size() == 3 + 28 * 7);
  CHECK(t[2].name == "blk.0.attn_qkv.weight");
  CHECK(t[2].shape == Shape{4096 + 2 * 2 * 128, 4096});
  for (const TensorSpec& s : t) CHECK_FALSE(hf_name_from_gguf(c.family, s.name).empty());
}

TEST_CASE("model_config: defaults and the RoPE settings' places", "[model_config]") {
  const ModelConfig d = ModelConfig::from_hf_json(tiny(""));
  CHECK(d.n_kv_heads == 4);  // num_key_value_heads defaults to the head count
  CHECK(d.head_dim == 16);
  CHECK(d.rope_theta == 10000.0);
  CHECK(d.norm_eps == 1e-6f);
  CHECK_FALSE(d.tied_embeddings);
  CHECK(d.bos_id == -1);
  CHECK(d.eos_id == -1);
  // model_type alone identifies the family.
  CHECK(ModelConfig::from_hf_json(tiny(R"("architectures": null, "model_type": "qwen2")")).family ==
        ModelFamily::qwen2);
  CHECK(ModelConfig::from_hf_json(tiny(R"("rope_scaling": {"rope_type": "default", "rope_theta": 5e5})")).rope_theta ==
        5e5);
  CHECK(
      ModelConfig::from_hf_json(tiny(R"("rope_theta": 2e5, "rope_parameters": {"rope_type": "default"})")).rope_theta ==
      2e5);
  CHECK(ModelConfig::from_hf_json(tiny(R"("rope_parameters": {"full_attention": {"rope_theta": 3e5}})")).rope_theta ==
        3e5);
  CHECK(ModelConfig::from_hf_json(tiny(R"("partial_rotary_factor": 0.5)")).rope_dim == 8);
  CHECK(ModelConfig::from_hf_json(tiny(R"("rope_parameters": {"rope_theta": 1e4, "partial_rotary_factor": 0.25})"))
            .rope_dim == 4);
  CHECK(ModelConfig::from_hf_json(tiny(R"("eos_token_id": [7, 8], "bos_token_id": null)")).eos_id == 7);
}

TEST_CASE("model_config: bad config.json is an error naming the field", "[model_config]") {
  using Catch::Contains;
  const auto bad = [](const std::string& json) { return ModelConfig::from_hf_json(json, "cfg"); };
  CHECK_THROWS_WITH(bad("{"), Contains("cfg"));
  CHECK_THROWS_WITH(bad("[1]"), Contains("not a JSON object"));
  CHECK_THROWS_WITH(bad(tiny(R"("architectures": ["MistralForCausalLM"])")), Contains("MistralForCausalLM"));
  CHECK_THROWS_WITH(bad(R"({"architectures": ["LlamaForCausalLM"]})"), Contains("num_hidden_layers"));
  CHECK_THROWS_WITH(bad(tiny(R"("hidden_size": -64)")), Contains("hidden_size"));
  CHECK_THROWS_WITH(bad(tiny(R"("hidden_size": "64")")), Contains("hidden_size"));
  CHECK_THROWS_WITH(bad(tiny(R"("vocab_size": 0)")), Contains("vocab_size"));
  CHECK_THROWS_WITH(bad(tiny(R"("num_key_value_heads": 3)")), Contains("n_kv_heads 3"));
  CHECK_THROWS_WITH(bad(tiny(R"("rms_norm_eps": -1)")), Contains("rms_norm_eps"));
  CHECK_THROWS_WITH(bad(tiny(R"("rope_theta": "big")")), Contains("rope_theta"));
  CHECK_THROWS_WITH(bad(tiny(R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0})")), Contains("llama3"));
  CHECK_THROWS_WITH(bad(tiny(R"("rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4})")), Contains("yarn"));
  CHECK_THROWS_WITH(bad(tiny(R"("partial_rotary_factor": 2.0)")), Contains("partial_rotary_factor"));
  CHECK_THROWS_WITH(bad(tiny(R"("eos_token_id": "</s>")")), Contains("eos_token_id"));
  CHECK_THROWS_WITH(bad(tiny(R"("eos_token_id": 100)")), Contains("eos_id 100"));
  CHECK_THROWS_WITH(bad(tiny(R"("tie_word_embeddings": 1)")), Contains("tie_word_embeddings"));
  CHECK_THROWS_WITH(bad(tiny(R"("hidden_act": "gelu")")), Contains("gelu"));
  CHECK_THROWS_WITH(bad(tiny(R"("attention_bias": true)")), Contains("attention_bias"));
  CHECK_THROWS_WITH(bad(tiny(R"("model_type": "qwen2", "architectures": [], "use_sliding_window": true,
                                 "max_window_layers": 1)")),
                    Contains("sliding"));
  CHECK_THROWS_WITH(bad(tiny(R"("head_dim": 15)")), Contains("rope_dim 15"));  // odd: RoPE pairs dimensions
}

TEST_CASE("model_config: from_hf_folder reads config.json and names the model after the folder", "[model_config]") {
  TempDir dir;
  const std::filesystem::path folder = dir.path / "SmolLM2-135M";
  CHECK_THROWS_WITH(ModelConfig::from_hf_folder(folder.string()), Catch::Contains("no config.json"));
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "config.json") << kSmolLM2;
  CHECK(ModelConfig::from_hf_folder(folder.string()).name == "SmolLM2-135M");
  CHECK(ModelConfig::from_hf_folder(folder.string() + "/").name == "SmolLM2-135M");
  CHECK(ModelConfig::from_hf_folder(folder.string()).d_model == 576);
}

TEST_CASE("model_config: from_gguf reads llama.cpp's keys", "[model_config]") {
  TempDir dir;
  const auto write = [&](const std::string& arch, bool with_output, bool kv_array) {
    GgufWriter w;
    w.add("general.architecture", GgufValue::string(arch));
    w.add("general.name", GgufValue::string("Tiny"));
    w.add(arch + ".block_count", GgufValue::u32(2));
    w.add(arch + ".context_length", GgufValue::u32(128));
    w.add(arch + ".embedding_length", GgufValue::u32(64));
    w.add(arch + ".feed_forward_length", GgufValue::u32(96));
    w.add(arch + ".attention.head_count", GgufValue::u32(4));
    if (kv_array) {
      const int32_t kv[] = {2, 2};
      w.add(arch + ".attention.head_count_kv", GgufValue::i32_array(kv));
    } else {
      w.add(arch + ".attention.head_count_kv", GgufValue::u32(2));
    }
    w.add(arch + ".rope.freq_base", GgufValue::f32(500000.0f));
    w.add(arch + ".attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
    w.add("tokenizer.ggml.bos_token_id", GgufValue::u32(1));
    w.add("tokenizer.ggml.eos_token_id", GgufValue::u32(2));
    static const float zeros[100 * 64] = {};
    w.add_tensor("token_embd.weight", Shape{100, 64}, DType::f32, zeros);
    if (with_output) w.add_tensor("output.weight", Shape{100, 64}, DType::f32, zeros);
    const std::string path = dir.file(arch + (with_output ? "_out" : "") + ".gguf");
    w.write(path);
    return GgufFile::open(path);
  };
  const ModelConfig llama = ModelConfig::from_gguf(write("llama", false, false));
  CHECK(llama.family == ModelFamily::llama);
  CHECK(llama.name == "Tiny");
  CHECK(llama.n_layers == 2);
  CHECK(llama.d_model == 64);
  CHECK(llama.n_heads == 4);
  CHECK(llama.n_kv_heads == 2);
  CHECK(llama.head_dim == 16);
  CHECK(llama.rope_dim == 16);
  CHECK(llama.d_ff == 96);
  CHECK(llama.vocab_size == 100);  // from token_embd
  CHECK(llama.max_context == 128);
  CHECK(llama.rope_theta == 500000.0);
  CHECK(llama.norm_eps == 1e-5f);
  CHECK(llama.rope_interleaved);  // llama.cpp permuted the Q/K rows
  CHECK(llama.tied_embeddings);   // no output.weight
  CHECK(llama.bos_id == 1);
  CHECK(llama.eos_id == 2);

  const ModelConfig qwen2 = ModelConfig::from_gguf(write("qwen2", true, true));
  CHECK(qwen2.family == ModelFamily::qwen2);
  CHECK(qwen2.n_kv_heads == 2);  // per-layer array, all equal
  CHECK_FALSE(qwen2.rope_interleaved);
  CHECK_FALSE(qwen2.tied_embeddings);
  CHECK(qwen2.qkv_bias);
  CHECK(ModelConfig::from_gguf(write("qwen3", true, false)).qk_norm);

  const ModelConfig glm4 = ModelConfig::from_gguf(write("glm4", true, false));
  CHECK(glm4.family == ModelFamily::glm4);
  CHECK(glm4.rope_interleaved);  // llama.cpp's LLAMA_ROPE_TYPE_NORM for both GLM archs
  CHECK(glm4.post_norms);
  CHECK(glm4.ffn_gate_up_fused);
  CHECK_FALSE(glm4.qkv_bias);  // no blk.0.attn_q.bias in this file
  const ModelConfig chatglm = ModelConfig::from_gguf(write("chatglm", true, false));
  CHECK(chatglm.family == ModelFamily::chatglm);
  CHECK(chatglm.rope_interleaved);
  CHECK_FALSE(chatglm.post_norms);
  CHECK_FALSE(chatglm.qkv_fused);  // no blk.0.attn_qkv.weight

  CHECK_THROWS_WITH(ModelConfig::from_gguf(write("gpt2", true, false)), Catch::Contains("'gpt2' is not supported"));
  GgufWriter missing;
  missing.add("general.architecture", GgufValue::string("llama"));
  missing.write(dir.file("missing.gguf"));
  CHECK_THROWS_WITH(ModelConfig::from_gguf(GgufFile::open(dir.file("missing.gguf"))),
                    Catch::Contains("llama.block_count"));
}

TEST_CASE("tensor_names: Hugging Face <-> GGUF both ways", "[model_config][tensor_names]") {
  struct Pair {
    ModelFamily family;
    const char* hf;
    const char* gguf;
  };
  const Pair pairs[] = {
      {ModelFamily::llama, "model.embed_tokens.weight", "token_embd.weight"},
      {ModelFamily::llama, "model.norm.weight", "output_norm.weight"},
      {ModelFamily::llama, "lm_head.weight", "output.weight"},
      {ModelFamily::llama, "model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
      {ModelFamily::llama, "model.layers.12.self_attn.q_proj.weight", "blk.12.attn_q.weight"},
      {ModelFamily::llama, "model.layers.3.self_attn.k_proj.weight", "blk.3.attn_k.weight"},
      {ModelFamily::llama, "model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight"},
      {ModelFamily::llama, "model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"},
      {ModelFamily::llama, "model.layers.3.post_attention_layernorm.weight", "blk.3.ffn_norm.weight"},
      {ModelFamily::llama, "model.layers.3.mlp.gate_proj.weight", "blk.3.ffn_gate.weight"},
      {ModelFamily::llama, "model.layers.3.mlp.up_proj.weight", "blk.3.ffn_up.weight"},
      {ModelFamily::llama, "model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight"},
      {ModelFamily::qwen2, "model.layers.1.self_attn.q_proj.bias", "blk.1.attn_q.bias"},
      {ModelFamily::qwen2, "model.layers.1.self_attn.k_proj.bias", "blk.1.attn_k.bias"},
      {ModelFamily::qwen2, "model.layers.1.self_attn.v_proj.bias", "blk.1.attn_v.bias"},
      {ModelFamily::qwen3, "model.layers.27.self_attn.q_norm.weight", "blk.27.attn_q_norm.weight"},
      {ModelFamily::qwen3, "model.layers.27.self_attn.k_norm.weight", "blk.27.attn_k_norm.weight"},
      {ModelFamily::glm4, "model.layers.5.post_self_attn_layernorm.weight", "blk.5.post_attention_norm.weight"},
      {ModelFamily::glm4, "model.layers.5.post_mlp_layernorm.weight", "blk.5.post_ffw_norm.weight"},
      {ModelFamily::glm4, "model.layers.5.mlp.gate_up_proj.weight", "blk.5.ffn_up.weight"},
      {ModelFamily::glm4, "model.layers.5.self_attn.q_proj.bias", "blk.5.attn_q.bias"},
      {ModelFamily::chatglm, "model.layers.2.mlp.gate_up_proj.weight", "blk.2.ffn_up.weight"},
      {ModelFamily::chatglm, "model.layers.2.self_attn.v_proj.bias", "blk.2.attn_v.bias"},
      {ModelFamily::chatglm, "transformer.encoder.layers.7.self_attention.query_key_value.bias", "blk.7.attn_qkv.bias"},
  };
  for (const Pair& p : pairs) {
    INFO(p.hf);
    CHECK(gguf_name_from_hf(p.family, p.hf) == p.gguf);
    CHECK(hf_name_from_gguf(p.family, p.gguf) == p.hf);
  }
  // Names that belong to another family, buffers, and malformed layer names have no mapping.
  CHECK(gguf_name_from_hf(ModelFamily::llama, "model.layers.0.self_attn.q_norm.weight").empty());
  CHECK(gguf_name_from_hf(ModelFamily::glm4, "model.layers.0.mlp.up_proj.weight").empty());
  CHECK(hf_name_from_gguf(ModelFamily::glm4, "blk.0.ffn_gate.weight").empty());
  CHECK(gguf_name_from_hf(ModelFamily::chatglm, "model.layers.0.post_mlp_layernorm.weight").empty());  // glm4 only
  // THUDM's layout maps one way only where transformers' GlmForCausalLM has a name too.
  CHECK(gguf_name_from_hf(ModelFamily::chatglm, "transformer.encoder.layers.7.mlp.dense_4h_to_h.weight") ==
        "blk.7.ffn_down.weight");
  CHECK(gguf_name_from_hf(ModelFamily::chatglm, "transformer.embedding.word_embeddings.weight") == "token_embd.weight");
  CHECK(gguf_name_from_hf(ModelFamily::glm4, "transformer.output_layer.weight").empty());  // chatglm only
  CHECK(is_hf_buffer("transformer.rotary_pos_emb.inv_freq"));
  CHECK(gguf_name_from_hf(ModelFamily::llama, "model.layers.0.self_attn.rotary_emb.inv_freq").empty());
  CHECK(is_hf_buffer("model.layers.0.self_attn.rotary_emb.inv_freq"));
  CHECK_FALSE(is_hf_buffer("model.layers.0.self_attn.q_proj.weight"));
  for (const char* name : {"model.layers.x.input_layernorm.weight", "model.layers..input_layernorm.weight",
                           "model.layers.01.input_layernorm.weight", "model.layers.-1.input_layernorm.weight",
                           "model.layers.0", "model.layers.0.", "vision.layers.0.input_layernorm.weight", ""}) {
    INFO(name);
    CHECK(gguf_name_from_hf(ModelFamily::llama, name).empty());
  }
  CHECK(hf_name_from_gguf(ModelFamily::llama, "blk.99999999999999999999.attn_q.weight").empty());  // overflow
  CHECK(layer_tensor(7, "ffn_up.weight") == "blk.7.ffn_up.weight");
}

TEST_CASE("tensor_names: expected_tensors lists each family's weights with their shapes", "[model_config]") {
  const ModelConfig q3 = ModelConfig::from_hf_json(kQwen3V5);
  const std::vector<TensorSpec> t = expected_tensors(q3);
  // token_embd + output_norm + per layer (2 norms, q/k/v/o, q/k norms, 3 MLP) = 2 + 2 * 11; tied: no output.
  REQUIRE(t.size() == 2 + 2 * 11);
  const auto find = [&](const std::string& name) {
    for (const TensorSpec& s : t)
      if (s.name == name) return s.shape;
    FAIL("no " << name);
    return Shape{};
  };
  CHECK(find("token_embd.weight") == Shape{151936, 1024});
  CHECK(find("blk.1.attn_q.weight") == Shape{16 * 128, 1024});
  CHECK(find("blk.1.attn_k.weight") == Shape{8 * 128, 1024});
  CHECK(find("blk.1.attn_output.weight") == Shape{1024, 16 * 128});
  CHECK(find("blk.1.attn_q_norm.weight") == Shape{128});
  CHECK(find("blk.0.ffn_down.weight") == Shape{1024, 3072});
  // Every name maps back to a Hugging Face name.
  for (const TensorSpec& s : t) CHECK_FALSE(hf_name_from_gguf(q3.family, s.name).empty());

  ModelConfig q2 = ModelConfig::from_hf_json(kQwen25);
  q2.tied_embeddings = false;
  const std::vector<TensorSpec> t2 = expected_tensors(q2);
  CHECK(t2.size() == 3 + 24 * 12);  // + output; per layer 3 biases, no q/k norms
  CHECK(t2.back().name == "output.weight");

  // GLM-4-0414: fused gate/up in ffn_up, post-norms, Q/K/V apart with biases.
  const std::vector<TensorSpec> g4 = expected_tensors(ModelConfig::from_hf_json(kGlm4));
  CHECK(g4.size() == 3 + 40 * 13);  // per layer: 2 norms, 2 post-norms, q/k/v + biases, o, up, down
  const auto find4 = [&](const std::string& name) {
    for (const TensorSpec& s : g4)
      if (s.name == name) return s.shape;
    FAIL("no " << name);
    return Shape{};
  };
  CHECK(find4("blk.0.ffn_up.weight") == Shape{2 * 13696, 4096});
  CHECK(find4("blk.39.post_attention_norm.weight") == Shape{4096});
  CHECK(find4("blk.39.post_ffw_norm.weight") == Shape{4096});
  CHECK(find4("blk.0.attn_k.bias") == Shape{2 * 128});
  for (const TensorSpec& s : g4) CHECK(s.name.find("ffn_gate") == std::string::npos);
  for (const TensorSpec& s : g4) CHECK_FALSE(hf_name_from_gguf(ModelFamily::glm4, s.name).empty());
  // THUDM's layout in GGUF: one attn_qkv (+ bias) of q_dim + 2 kv_dim rows.
  ModelConfig fused = ModelConfig::from_hf_json(kGlm4);
  fused.qkv_fused = true;
  fused.post_norms = false;
  const std::vector<TensorSpec> gf = expected_tensors(fused);
  CHECK(gf.size() == 3 + 40 * 7);
  CHECK(gf[2].name == "blk.0.attn_qkv.weight");
  CHECK(gf[2].shape == Shape{32 * 128 + 2 * 2 * 128, 4096});
  CHECK(gf[3].name == "blk.0.attn_qkv.bias");
  CHECK(gf[3].shape == Shape{32 * 128 + 2 * 2 * 128});
}
