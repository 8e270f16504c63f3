// Random-weight GGUF files of a named model shape, to measure speed at real sizes
// without downloading weights: the C++ counterpart of make_random_gguf.py (same
// metadata, tensor names, order and shapes; no vocabulary, tokenizer.ggml.model
// "no_vocab", which qilin-bench runs), in any type qilin-quantize writes.
//
// Weights are N(0, 0.02) and norms 1. Each row is a window of one pool of 4 Mi
// random floats, and a block-format row is the pool's windows quantized with core's
// reference quantizers: the pool is quantized once per type (block quantizers work
// block by block, so the result is the same as quantizing every row on its own), and
// writing a tensor is a copy of windows. A 7B file is written at the speed of the
// disk, one tensor in memory at a time (GgufWriter), never the whole file.
// Only throughput is meaningful on such a file.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "models/quantize_rules.h"

namespace qilin {
class ThreadPool;
}

namespace qilin::tools {

struct RandomModelShape {
  std::string name;          // "qwen2.5-7b"
  std::string architecture;  // GGUF general.architecture: "llama" or "qwen2"
  int64_t d_model = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, d_ff = 0, vocab = 0;
  float rope_theta = 10000.0f;
  bool qkv_bias = false;         // Qwen2: biases on Q, K and V
  bool tied_embeddings = false;  // no output.weight: token_embd doubles as the output matrix
  int64_t context = 4096;        // <arch>.context_length (make_random_gguf.py's 4096 for every shape)
};

// smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b (make_random_gguf.py's shapes)
// and llama-3-8b (Meta-Llama-3-8B's hyper-parameters).
std::span<const RandomModelShape> random_model_shapes();
// Throws qilin::Error listing the known names when `name` is not one of them.
const RandomModelShape& random_model_shape(std::string_view name);

struct RandomTensor {
  std::string name;  // GGUF name
  Shape shape;       // outermost first (GgufWriter's order; the file stores it reversed)
  DType dtype;
};

// The tensors a random model of `shape` in `type` holds, in file order
// (make_random_gguf.py's): token_embd, output_norm, output (unless tied), then per
// layer attn_norm, attn_q/k/v/output, ffn_norm, ffn_gate/up/down, attn_q/k/v biases.
// Each has the type models/quantize_rules.h chooses for an f32 source quantized to
// `type` (q4_k_m's mix, q6_k output matrix, fallbacks for rows that are not whole blocks).
std::vector<RandomTensor> random_model_tensors(const RandomModelShape& shape, QuantType type);

struct RandomModelProgress {
  size_t index = 0, count = 0;  // tensor about to be written (index == count at the end)
  std::string_view tensor;      // its name
  uint64_t bytes_done = 0, bytes_total = 0;
};

struct RandomModelSummary {
  int64_t tensors = 0;
  int64_t params = 0;       // elements of every tensor
  uint64_t data_bytes = 0;  // tensor data as stored (without padding)
  uint64_t file_bytes = 0;
  double seconds = 0;
};

// Writes the random model to `path` (through "<path>.partial", renamed when complete),
// copying rows on `pool`'s threads. `progress` is called before each tensor and once at
// the end. The same shape, type and seed give the same bytes.
RandomModelSummary write_random_model(const RandomModelShape& shape, QuantType type, const std::string& path,
                                      ThreadPool& pool,
                                      const std::function<void(const RandomModelProgress&)>& progress = {},
                                      uint64_t seed = 0);

}  // namespace qilin::tools
