// CudaDecoder: Decoder's forward pass on the GPU (DecoderOptions::device = cuda).
//
// The same steps as the CPU pass (models/decoder.h), on the ops of kernels/cuda/ops.h
// and matmul() with weights on the GPU (kernels/matmul.h routes them to its GPU plan:
// own GEMV for up to 8 rows, cuBLAS above). Token ids and positions go to the GPU at
// the start of a pass (one copy), the logits of the rows asked for come back at the
// end (one copy); everything between runs on cuda::default_stream() against buffers
// allocated here, so a warm pass allocates nothing on the host or the GPU.
//
// A pass of at most kGraphMaxTokens tokens (decode steps) is captured into a CUDA
// graph and launched as one (kernels/cuda/graph.h): captured anew every step, since
// context lengths are kernel arguments, and updated in place. The kernels a pass
// queues depend only on its numbers of tokens, sequences and logit rows, so there is
// one graph per such shape: a server alternating batch sizes updates each in place
// rather than instantiating anew.
// If capture fails the decoder says why in graph_stats() and goes on without graphs.
//
// Reached through Decoder::cuda(); decoder.h does not include this header.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/cuda/graph.h"
#include "kernels/cuda/ops.h"
#include "models/cuda_weights.h"
#include "models/decoder.h"

namespace qilin {

class CudaDecoder {
 public:
  // Decode steps: the GEMV path's rows (kernels/matmul.h's GPU plan). Prefill chunks
  // do much more work per kernel, so launching them one by one costs little.
  static constexpr int64_t kGraphMaxTokens = 8;

  CudaDecoder(const Checkpoint& checkpoint, const DecoderOptions& options, const RopeCache& rope, ThreadPool& pool);
  ~CudaDecoder();
  CudaDecoder(const CudaDecoder&) = delete;
  CudaDecoder& operator=(const CudaDecoder&) = delete;

  // Throws qilin::Error naming the bytes needed (weights, KV cache, activations and
  // scratch) and the bytes free when the model would not fit on the current device.
  static void check_fits(const Checkpoint& checkpoint, const DecoderOptions& options, size_t kv_cache_bytes,
                         ThreadPool& pool);

  // Decoder::forward after its checks: the batch fits and the cache is on the GPU.
  TensorView forward(std::span<const ForwardRequest> batch, KvCache& cache, ThreadPool& pool);

  size_t weight_bytes_per_token() const noexcept;
  size_t weight_bytes() const noexcept { return weights_.bytes; }

  struct GraphStats {
    bool enabled = false;         // options and capture allow graphs
    int64_t graph_passes = 0;     // passes launched as a graph
    int64_t direct_passes = 0;    // passes launched kernel by kernel
    int64_t instantiations = 0;   // graphs instantiated (a new batch shape each)
    int64_t updates = 0;          // graphs updated in place
    std::string disabled_reason;  // why capture failed, when it did
  };
  GraphStats graph_stats() const;

 private:
  // Everything between the upload of the ids and the download of the logits.
  void run(std::span<const ForwardRequest> batch, int64_t n_tokens, int64_t n_rows, KvCache& cache, ThreadPool& pool);
  void run_as_graph(std::span<const ForwardRequest> batch, int64_t n_tokens, int64_t n_rows, KvCache& cache,
                    ThreadPool& pool);
  void attention_block(const DecoderLayer& layer, int64_t il, std::span<const ForwardRequest> batch, int64_t n_tokens,
                       const TensorView& positions, KvCache& cache, ThreadPool& pool);
  void mlp_block(const DecoderLayer& layer, int64_t n_tokens, ThreadPool& pool);

  ModelConfig config_;
  DecoderOptions options_;
  const cuda::Stream& stream_;
  GpuWeights weights_;
  std::unique_ptr<cuda::RopeTable> rope_;

  // Activations on the GPU, sized for max_batch_tokens rows (last_, logits_ for
  // max_logit_rows), and the pass's indices: ids, positions, rows whose logits are wanted.
  Tensor x_, h_, q_, k_, v_, attn_, gate_, up_, last_, logits_, indices_;
  std::vector<int32_t> host_indices_;
  Tensor host_logits_;

  // One per (tokens, sequences, logit rows), each 1..kGraphMaxTokens (see run_as_graph).
  std::array<cuda::Graph, kGraphMaxTokens * kGraphMaxTokens * kGraphMaxTokens> graphs_;
  bool graphs_enabled_ = false;
  std::string graphs_disabled_reason_;
  int64_t graph_passes_ = 0, direct_passes_ = 0;
};

}  // namespace qilin
