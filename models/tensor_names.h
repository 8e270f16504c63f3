// Tensor names: Qilin uses llama.cpp's GGUF names everywhere ("blk.3.attn_q.weight")
// and maps Hugging Face names onto them when it reads a safetensors folder, so the
// decoder looks weights up one way whatever file they came from.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "models/model_config.h"

namespace qilin {

// The GGUF name of a Hugging Face tensor of `family` ("model.layers.3.self_attn.q_proj.weight"
// -> "blk.3.attn_q.weight"); "" for tensors a checkpoint may carry that are not model
// weights (e.g. "model.layers.N.self_attn.rotary_emb.inv_freq").
std::string gguf_name_from_hf(ModelFamily family, std::string_view hf_name);
// The Hugging Face name of a GGUF tensor name ("blk.3.attn_q.weight" ->
// "model.layers.3.self_attn.q_proj.weight"); "" when it has none.
std::string hf_name_from_gguf(ModelFamily family, std::string_view gguf_name);
// "blk.<layer>.<suffix>", e.g. layer_tensor(3, "attn_q.weight").
std::string layer_tensor(int64_t layer, std::string_view suffix);

// True for the tensors a Hugging Face checkpoint may carry that are not model weights
// (buffers such as "model.layers.N.self_attn.rotary_emb.inv_freq"); gguf_name_from_hf
// returns "" for them, and also for names it does not know, which this tells apart.
bool is_hf_buffer(std::string_view hf_name);

// A weight of the model under its GGUF name, with its shape (outermost first).
struct TensorSpec {
  std::string name;
  Shape shape;
};
// Every weight a checkpoint of `config` holds: token_embd, blk.0.* ... blk.N.*,
// output_norm, output (unless tied), in the layout the config's flags describe (fused QKV
// or gate/up, post-norms).
std::vector<TensorSpec> expected_tensors(const ModelConfig& config);

}  // namespace qilin
