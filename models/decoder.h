// Decoder: the forward pass shared by the Llama, Qwen2, Qwen3 and GLM families.
//
//   x = embed(tokens)
//   per layer:  h = rmsnorm(x);  q, k, v = h·Wq (+bq), h·Wk (+bk), h·Wv (+bv)
//               [Qwen3: rmsnorm over each head of q and k]
//               rope(q, k);  cache ← k, v;  h = attention(q, cache)·Wo
//               [GLM-4-0414: h = rmsnorm(h)];  x += h
//               h = rmsnorm(x);  h = (silu(h·Wgate) * h·Wup)·Wdown
//               [GLM-4-0414: h = rmsnorm(h)];  x += h
//   logits = rmsnorm(x)·Wout   (Wout = the embedding when tied)
//
// Fused weights (GLM's attn_qkv and gate/up ffn_up) are split at load into views of
// their rows, so the forward pass is the same for every family.
//
// One forward pass takes tokens of several sequences (KV-cache slots) at once:
// the matmuls see all their rows together, attention runs per sequence. Prefill
// passes a chunk of a prompt, decode one token per sequence. Every buffer is
// sized at construction: forward() does no heap allocation.
//
// With DecoderOptions::device = cuda the weights live on the GPU and forward() runs
// there (models/cuda_decoder.h); the interface, the checks and the host logits are
// the same, and the KV cache must be on the GPU too.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/allocator.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "models/kv_cache.h"
#include "models/model_config.h"

namespace qilin {

class Checkpoint;
class CudaDecoder;
struct DecoderLayer;

struct DecoderOptions {
  int64_t max_batch_tokens = 512;  // most token rows in one forward() (the prefill chunk)
  int64_t max_logit_rows = 8;      // most logit rows one forward() returns
  // Weights stored in a block format (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K) run natively on the
  // quantized matmul kernels (activations quantized to 8-bit blocks per call). With
  // dequantize set, they are expanded at load to `dequantize_to` (f32, f16 or bf16)
  // instead: exact float activations, at 2-8x the memory and bandwidth.
  bool dequantize = false;
  DType dequantize_to = DType::f32;
  MatmulOptions matmul;  // e.g. allow_bf16_compute for AMX prefill
  // Float weights (f32, f16, bf16) are copied at load into huge pages the decoder owns
  // (MatmulWeight::make_resident: decode streams them 10-15% faster than from the file
  // mapping's 4 KiB pages) unless mmap_weights is set: then they are read straight
  // from the page cache (faster load, pages shared with other processes). Either way
  // a weight held as a copy or repack has its mapped pages released, so it is
  // resident once.
  bool mmap_weights = false;
  // Where the weights live and forward() runs. cuda: uploaded once at load (block
  // formats as stored), and decode steps of up to 8 tokens replayed as CUDA graphs
  // unless cuda_graphs is false (then every kernel is launched one by one).
  Device device = Device::cpu;
  bool cuda_graphs = true;
};

// The tokens one sequence contributes to a forward pass. They sit at positions
// [cache.length(slot), + tokens.size()), and the pass advances the slot's length.
struct ForwardRequest {
  int64_t slot = 0;
  std::span<const int32_t> tokens;
  bool all_logits = false;  // logits for every token (perplexity, tests), not just the last
};

class Decoder {
 public:
  // The pool converts weights stored in block formats (in parallel, once).
  Decoder(const Checkpoint& checkpoint, const DecoderOptions& options, ThreadPool& pool);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  const ModelConfig& config() const noexcept { return config_; }
  const DecoderOptions& options() const noexcept { return options_; }

  // The cache this model needs for `n_slots` sequences of up to `context` positions.
  KvCacheShape kv_cache_shape(int64_t n_slots, int64_t context) const noexcept {
    return kv_cache_shape_for(config_, n_slots, context);
  }
  static KvCacheShape kv_cache_shape_for(const ModelConfig& c, int64_t n_slots, int64_t context) noexcept;

  // Runs the requests (distinct slots) and returns their logits [rows, vocab], rows in
  // request order: one per token for all_logits requests, else one for the last token.
  // The view stays valid until the next forward(). Throws qilin::Error (before touching
  // the cache) when a request does not fit: too many tokens or logit rows for the
  // options, a slot out of range or without room, a token id outside the vocabulary.
  TensorView forward(std::span<const ForwardRequest> batch, KvCache& cache, ThreadPool& pool);

  // Bytes of weights one decode step reads (every matmul weight once, plus one
  // embedding row): the numerator of the bandwidth roofline.
  size_t weight_bytes_per_token() const noexcept;
  // Bytes of weight memory this decoder owns (dequantized copies, packed forms; on the
  // GPU every weight's device copy); weights used in place from the file mapping are
  // not counted.
  size_t owned_weight_bytes() const noexcept;

  // The GPU forward pass (graph statistics, device memory), or nullptr on the CPU.
  const CudaDecoder* cuda() const noexcept { return gpu_.get(); }

  using Layer = DecoderLayer;

 private:
  void check_batch(std::span<const ForwardRequest> batch, const KvCache& cache) const;
  void attention_block(const Layer& layer, int64_t il, std::span<const ForwardRequest> batch, int64_t n_tokens,
                       KvCache& cache, ThreadPool& pool);
  // `then`: the weights of the matmul that follows the block (a hint for decode).
  void mlp_block(const Layer& layer, int64_t n_tokens, std::span<const MatmulWeight* const> then, ThreadPool& pool);

  ModelConfig config_;
  DecoderOptions options_;
  std::vector<Tensor> owned_;  // dequantized / converted weights
  HugePageArena resident_;     // float weights copied off the file mapping (DecoderOptions::mmap_weights)
  std::vector<Layer> layers_;
  TensorView token_embd_;
  TensorView output_norm_;
  std::unique_ptr<MatmulWeight> output_;
  std::unique_ptr<class RopeCache> rope_;
  std::unique_ptr<CudaDecoder> gpu_;  // device == cuda: the whole forward pass

  // Activations, sized for max_batch_tokens rows.
  Tensor x_, h_, q_, k_, v_, attn_, gate_, up_, last_, logits_;
  std::vector<int32_t> ids_, positions_;
};

}  // namespace qilin
