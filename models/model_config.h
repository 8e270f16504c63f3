// ModelConfig: the hyper-parameters of a decoder-only transformer, read from a
// GGUF file (llama.cpp keys) or a Hugging Face config.json, and the one place
// that knows how the supported families differ.
//
// Families and what sets them apart:
//   llama  (Llama, SmolLM2)  no biases, tied or untied embeddings
//   qwen2  (Qwen2, Qwen2.5)  bias on the Q/K/V projections, large RoPE theta
//   qwen3                    RMSNorm on each head of Q and K, no Q/K/V bias, head_dim
//                            independent of d_model / n_heads
//   chatglm (GLM-4-9B-chat: HF GlmForCausalLM, GGUF "chatglm")  bias on Q/K/V, gate and up
//                            fused in one matrix, RoPE on the first half of each head in
//                            the interleaved (2i, 2i+1) layout, few KV heads
//   glm4   (GLM-4-0414: HF Glm4ForCausalLM, GGUF "glm4")  chatglm plus an RMSNorm on the
//                            attention output and on the MLP output before each residual add
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace qilin {

class GgufFile;

enum class ModelFamily : uint8_t { llama, qwen2, qwen3, glm4, chatglm };

std::string_view name_of(ModelFamily f) noexcept;
// GGUF general.architecture ("llama", "qwen2", "qwen3", "glm4", "chatglm"); false when unknown.
bool model_family_from_gguf_arch(std::string_view arch, ModelFamily* out) noexcept;
// Hugging Face "architectures"[0] / "model_type" ("LlamaForCausalLM", "qwen2", ...).
bool model_family_from_hf(std::string_view architecture_or_type, ModelFamily* out) noexcept;

struct ModelConfig {
  ModelFamily family = ModelFamily::llama;
  std::string name;  // general.name or the folder name, for messages

  int64_t n_layers = 0;
  int64_t d_model = 0;     // hidden size
  int64_t n_heads = 0;     // query heads
  int64_t n_kv_heads = 0;  // key/value heads (GQA: divides n_heads)
  int64_t head_dim = 0;    // d_model / n_heads unless the config says otherwise (Qwen3)
  int64_t d_ff = 0;        // MLP intermediate size
  int64_t vocab_size = 0;
  int64_t max_context = 0;  // trained context length (max_position_embeddings)

  float norm_eps = 1e-5f;       // RMSNorm epsilon
  double rope_theta = 10000.0;  // RoPE base frequency
  int64_t rope_dim = 0;         // rotated dims per head (= head_dim unless partial rotary)

  // How the Q/K weights pair the dimensions RoPE rotates. Hugging Face checkpoints pair
  // (i, i + rope_dim/2) ("rotate_half"); llama.cpp's converter permutes the Q/K rows of
  // the llama family so that GGUF llama files pair (2i, 2i + 1). from_gguf sets it for
  // llama files; GLM pairs (2i, 2i + 1) in both formats; Qwen2/3 are false in both.
  bool rope_interleaved = false;

  bool tied_embeddings = false;  // lm_head shares token_embd (no output.weight stored)
  bool qkv_bias = false;         // Qwen2, GLM
  bool qk_norm = false;          // Qwen3
  // GGUF files converted from THUDM's ChatGLM checkpoints hold Q, K and V as one matrix
  // attn_qkv [q_dim + 2 kv_dim, d] (Q rows, then K, then V; bias likewise).
  bool qkv_fused = false;
  // GLM: gate and up projections stored as one matrix ffn_up [2 d_ff, d], gate rows first.
  bool ffn_gate_up_fused = false;
  // GLM-4-0414: RMSNorm on the attention output (post_attention_norm) and on the MLP output
  // (post_ffw_norm), each before its residual add.
  bool post_norms = false;

  int32_t bos_id = -1;
  int32_t eos_id = -1;

  // Throws qilin::Error naming the field when a value is missing, zero, or
  // inconsistent (n_heads % n_kv_heads, rope_dim > head_dim, ...).
  void validate() const;

  // llama.cpp keys: general.architecture, <arch>.block_count, <arch>.embedding_length,
  // <arch>.attention.head_count[_kv], <arch>.attention.key_length, <arch>.feed_forward_length,
  // <arch>.context_length, <arch>.rope.freq_base, <arch>.attention.layer_norm_rms_epsilon,
  // <arch>.rope.dimension_count, tokenizer.ggml.{bos,eos}_token_id; vocab_size from
  // <arch>.vocab_size or the token_embd tensor. Tied when output.weight is absent.
  static ModelConfig from_gguf(const GgufFile& file);
  // A Hugging Face config.json (its text; `name` is used in messages).
  static ModelConfig from_hf_json(std::string_view json, std::string_view name = "config.json");
  // <folder>/config.json.
  static ModelConfig from_hf_folder(const std::string& folder);
};

}  // namespace qilin
