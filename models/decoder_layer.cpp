#include "models/decoder_layer.h"

#include <fmt/format.h>

#include "models/checkpoint.h"
#include "models/tensor_names.h"

namespace qilin {

DecoderLayer load_decoder_layer(const ModelConfig& c, int64_t il, int64_t max_rows, LayerSource& source) {
  const int64_t d = c.d_model, q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  auto name = [il](std::string_view suffix) { return layer_tensor(il, suffix); };
  auto matrix = [&](const std::string& tensor, int64_t n, int64_t k, WeightPart part = {}) {
    return source.matrix(tensor, n, k, max_rows, part);
  };
  auto optional_vector = [&](const std::string& tensor, int64_t n, bool wanted) -> TensorView {
    return wanted ? source.vector(tensor, n, {}) : TensorView{};
  };
  // Q, K and V: their own tensors, or row ranges of attn_qkv (THUDM's GLM layout).
  const std::string qkv = name("attn_qkv.weight"), qkv_bias = name("attn_qkv.bias");
  const int64_t qkv_rows = q_dim + 2 * kv_dim;
  auto projection = [&](const char* which, int64_t first, int64_t n) {
    if (c.qkv_fused) return matrix(qkv, qkv_rows, d, {first, n});
    return matrix(name(fmt::format("attn_{}.weight", which)), n, d);
  };
  auto bias = [&](const char* which, int64_t first, int64_t n) -> TensorView {
    if (!c.qkv_bias) return {};
    if (c.qkv_fused) return source.vector(qkv_bias, qkv_rows, {first, n});
    return source.vector(name(fmt::format("attn_{}.bias", which)), n, {});
  };
  // Gate and up: their own tensors, or the two halves of ffn_up (GLM, gate first).
  const std::string up = name("ffn_up.weight");
  const bool fused_ffn = c.ffn_gate_up_fused;
  return DecoderLayer{
      .attn_norm = source.vector(name("attn_norm.weight"), d, {}),
      .ffn_norm = source.vector(name("ffn_norm.weight"), d, {}),
      .bq = bias("q", 0, q_dim),
      .bk = bias("k", q_dim, kv_dim),
      .bv = bias("v", q_dim + kv_dim, kv_dim),
      .q_norm = optional_vector(name("attn_q_norm.weight"), c.head_dim, c.qk_norm),
      .k_norm = optional_vector(name("attn_k_norm.weight"), c.head_dim, c.qk_norm),
      .attn_post_norm = optional_vector(name("post_attention_norm.weight"), d, c.post_norms),
      .ffn_post_norm = optional_vector(name("post_ffw_norm.weight"), d, c.post_norms),
      .wq = projection("q", 0, q_dim),
      .wk = projection("k", q_dim, kv_dim),
      .wv = projection("v", q_dim + kv_dim, kv_dim),
      .wo = matrix(name("attn_output.weight"), d, q_dim),
      .gate = fused_ffn ? matrix(up, 2 * c.d_ff, d, {0, c.d_ff}) : matrix(name("ffn_gate.weight"), c.d_ff, d),
      .up = fused_ffn ? matrix(up, 2 * c.d_ff, d, {c.d_ff, c.d_ff}) : matrix(up, c.d_ff, d),
      .down = matrix(name("ffn_down.weight"), d, c.d_ff),
  };
}

bool output_is_tied(const ModelConfig& c, const Checkpoint& checkpoint) {
  return c.tied_embeddings || checkpoint.find("output.weight") == nullptr;
}

size_t matrix_bytes(const MatmulWeight& w) noexcept { return w.view().rows() * w.view().row_size(); }

size_t layer_matrix_bytes(const DecoderLayer& l) noexcept {
  size_t bytes = 0;
  for (const MatmulWeight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) bytes += matrix_bytes(*w);
  return bytes;
}

}  // namespace qilin
