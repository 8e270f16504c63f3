// Hugging Face <-> GGUF tensor names (llama.cpp's gguf-py tensor_mapping.py for
// the families Qilin supports) and the weights each family's checkpoint holds.
#include "models/tensor_names.h"

#include <charconv>
#include <span>

#include "core/error.h"

namespace qilin {
namespace {

struct NamePair {
  std::string_view hf, gguf;
};

constexpr NamePair kGlobal[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

// Suffixes after "model.layers.N." / "blk.N.", shared by every family.
constexpr NamePair kLayerCommon[] = {
    {"input_layernorm.weight", "attn_norm.weight"}, {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},       {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},       {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},       {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.o_proj.bias", "attn_output.bias"},  {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};
// Separate gate and up projections (llama, qwen2, qwen3).
constexpr NamePair kLayerGateUp[] = {
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
};
constexpr NamePair kLayerQkNorm[] = {
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
};
// GLM: gate and up fused in one matrix (llama.cpp keeps it as ffn_up, [2 d_ff, d]).
constexpr NamePair kLayerGateUpFused[] = {
    {"mlp.gate_up_proj.weight", "ffn_up.weight"},
};
// GLM-4-0414: norms after attention and after the MLP.
constexpr NamePair kLayerPostNorms[] = {
    {"post_self_attn_layernorm.weight", "post_attention_norm.weight"},
    {"post_mlp_layernorm.weight", "post_ffw_norm.weight"},
};

// THUDM's own ChatGLM checkpoints (ChatGLM2/3-6B, glm-4-9b-chat; family chatglm), as
// llama.cpp's ChatGLMModel names them: Q/K/V fused (attn_qkv), gate and up fused (ffn_up).
constexpr NamePair kThudmGlobal[] = {
    {"transformer.embedding.word_embeddings.weight", "token_embd.weight"},
    {"transformer.encoder.final_layernorm.weight", "output_norm.weight"},
    {"transformer.output_layer.weight", "output.weight"},
};
constexpr NamePair kThudmLayer[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attention.query_key_value.weight", "attn_qkv.weight"},
    {"self_attention.query_key_value.bias", "attn_qkv.bias"},
    {"self_attention.dense.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.dense_h_to_4h.weight", "ffn_up.weight"},
    {"mlp.dense_4h_to_h.weight", "ffn_down.weight"},
};
constexpr std::string_view kThudmLayerPrefix = "transformer.encoder.layers.";

constexpr std::string_view kHfLayerPrefix = "model.layers.";
constexpr std::string_view kGgufLayerPrefix = "blk.";

// Splits "<prefix><N>.<suffix>"; false when `name` is not a layer tensor name.
bool split_layer_name(std::string_view name, std::string_view prefix, int64_t* layer, std::string_view* suffix) {
  if (!name.starts_with(prefix)) return false;
  name.remove_prefix(prefix.size());
  const size_t dot = name.find('.');
  // Canonical decimal digits only ("3", not "03", "+3" or "-1"), so names map one to one.
  if (dot == 0 || dot == std::string_view::npos || name[0] < '0' || name[0] > '9' || (name[0] == '0' && dot > 1))
    return false;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + dot, *layer);
  if (ec != std::errc() || end != name.data() + dot) return false;
  *suffix = name.substr(dot + 1);
  return true;
}

// Calls fn(table) for each layer table of the family until it returns true.
template <class Fn>
bool for_each_layer_table(ModelFamily family, Fn&& fn) {
  if (fn(std::span<const NamePair>(kLayerCommon))) return true;
  if (family == ModelFamily::glm4 || family == ModelFamily::chatglm) {
    if (fn(std::span<const NamePair>(kLayerGateUpFused))) return true;
    return family == ModelFamily::glm4 && fn(std::span<const NamePair>(kLayerPostNorms));
  }
  if (fn(std::span<const NamePair>(kLayerGateUp))) return true;
  return family == ModelFamily::qwen3 && fn(std::span<const NamePair>(kLayerQkNorm));
}

// `name` mapped through one Hugging Face layout: its global names, its layer prefix, and
// the layer tables that for_each_table(fn) offers.
template <bool kToGguf, class ForEachTable>
std::string map_in(std::span<const NamePair> global, std::string_view hf_layer_prefix, std::string_view name,
                   ForEachTable&& for_each_table) {
  for (const NamePair& p : global)
    if ((kToGguf ? p.hf : p.gguf) == name) return std::string(kToGguf ? p.gguf : p.hf);
  int64_t layer = 0;
  std::string_view suffix;
  if (!split_layer_name(name, kToGguf ? hf_layer_prefix : kGgufLayerPrefix, &layer, &suffix)) return {};
  std::string out;
  for_each_table([&](std::span<const NamePair> table) {
    for (const NamePair& p : table) {
      if ((kToGguf ? p.hf : p.gguf) != suffix) continue;
      out = fmt::format("{}{}.{}", kToGguf ? kGgufLayerPrefix : hf_layer_prefix, layer, kToGguf ? p.gguf : p.hf);
      return true;
    }
    return false;
  });
  return out;
}

template <bool kToGguf>
std::string map_name(ModelFamily family, std::string_view name) {
  std::string out =
      map_in<kToGguf>(kGlobal, kHfLayerPrefix, name, [family](auto&& fn) { return for_each_layer_table(family, fn); });
  if (out.empty() && family == ModelFamily::chatglm) {  // transformers' GlmForCausalLM first, then THUDM's layout
    out = map_in<kToGguf>(kThudmGlobal, kThudmLayerPrefix, name,
                          [](auto&& fn) { return fn(std::span<const NamePair>(kThudmLayer)); });
  }
  return out;
}

}  // namespace

std::string gguf_name_from_hf(ModelFamily family, std::string_view hf_name) { return map_name<true>(family, hf_name); }

std::string hf_name_from_gguf(ModelFamily family, std::string_view gguf_name) {
  return map_name<false>(family, gguf_name);
}

std::string layer_tensor(int64_t layer, std::string_view suffix) { return fmt::format("blk.{}.{}", layer, suffix); }

bool is_hf_buffer(std::string_view hf_name) {
  return hf_name.ends_with(".rotary_emb.inv_freq") || hf_name == "model.rotary_emb.inv_freq" ||
         hf_name == "transformer.rotary_pos_emb.inv_freq";  // THUDM's ChatGLM
}

std::vector<TensorSpec> expected_tensors(const ModelConfig& c) {
  const int64_t d = c.d_model, q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  std::vector<TensorSpec> out;
  out.push_back({"token_embd.weight", {c.vocab_size, d}});
  for (int64_t il = 0; il < c.n_layers; ++il) {
    const auto add = [&](std::string_view suffix, Shape shape) { out.push_back({layer_tensor(il, suffix), shape}); };
    add("attn_norm.weight", {d});
    if (c.qkv_fused) {
      add("attn_qkv.weight", {q_dim + 2 * kv_dim, d});
      if (c.qkv_bias) add("attn_qkv.bias", {q_dim + 2 * kv_dim});
    } else {
      add("attn_q.weight", {q_dim, d});
      add("attn_k.weight", {kv_dim, d});
      add("attn_v.weight", {kv_dim, d});
      if (c.qkv_bias) {
        add("attn_q.bias", {q_dim});
        add("attn_k.bias", {kv_dim});
        add("attn_v.bias", {kv_dim});
      }
    }
    if (c.qk_norm) {
      add("attn_q_norm.weight", {c.head_dim});
      add("attn_k_norm.weight", {c.head_dim});
    }
    add("attn_output.weight", {d, q_dim});
    if (c.post_norms) add("post_attention_norm.weight", {d});
    add("ffn_norm.weight", {d});
    if (c.ffn_gate_up_fused) {
      add("ffn_up.weight", {2 * c.d_ff, d});
    } else {
      add("ffn_gate.weight", {c.d_ff, d});
      add("ffn_up.weight", {c.d_ff, d});
    }
    add("ffn_down.weight", {d, c.d_ff});
    if (c.post_norms) add("post_ffw_norm.weight", {d});
  }
  out.push_back({"output_norm.weight", {d}});
  if (!c.tied_embeddings) out.push_back({"output.weight", {c.vocab_size, d}});
  return out;
}

}  // namespace qilin
