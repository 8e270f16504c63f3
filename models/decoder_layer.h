// DecoderLayer: the weights of one transformer block as the forward pass reads them,
// and the one recipe that finds them in a checkpoint for every family (separate or
// fused Q/K/V and gate/up, biases, q/k norms, post-norms). The CPU decoder and the
// GPU one (models/cuda_decoder.h) build their layers with it from their own
// LayerSource: views in host memory or copies in device memory.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "kernels/matmul.h"
#include "models/model_config.h"
#include "models/weight_loader.h"

namespace qilin {

class Checkpoint;

struct DecoderLayer {
  TensorView attn_norm, ffn_norm;
  TensorView bq, bk, bv;                     // Qwen2, GLM (empty views otherwise)
  TensorView q_norm, k_norm;                 // Qwen3 (empty views otherwise)
  TensorView attn_post_norm, ffn_post_norm;  // GLM-4-0414 (empty views otherwise)
  MatmulWeight wq, wk, wv, wo;               // [heads*head_dim, d] ×3 (kv heads for k, v), [d, heads*head_dim]
  MatmulWeight gate, up, down;               // [d_ff, d] ×2, [d, d_ff]
};

// Where a decoder keeps the weights it reads.
class LayerSource {
 public:
  virtual ~LayerSource() = default;
  // Rows `part` of the stored matrix `tensor` [n, k], as a weight multiplied by up to
  // `max_rows` activation rows at once.
  virtual MatmulWeight matrix(const std::string& tensor, int64_t n, int64_t k, int64_t max_rows, WeightPart part) = 0;
  // Elements `part` of the stored vector `tensor` [n], as f32.
  virtual TensorView vector(const std::string& tensor, int64_t n, WeightPart part) = 0;
};

// Layer `il` of a model with config `c`, its matrices prepared for `max_rows` rows.
DecoderLayer load_decoder_layer(const ModelConfig& c, int64_t il, int64_t max_rows, LayerSource& source);

// Whether the output projection is the token embedding (no output.weight stored).
bool output_is_tied(const ModelConfig& c, const Checkpoint& checkpoint);

// Bytes of the matrices of a layer (the weights one decode step streams).
size_t matrix_bytes(const MatmulWeight& w) noexcept;
size_t layer_matrix_bytes(const DecoderLayer& layer) noexcept;

}  // namespace qilin
