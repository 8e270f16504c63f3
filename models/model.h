// Model: what a program that links Qilin loads — checkpoint, decoder, tokenizer,
// KV cache and thread pool, configured once by LoadOptions.
//
//   auto model = qilin::Model::load("SmolLM2-135M-Instruct-Q4_1.gguf", {.threads = 2});
//   qilin::Session chat(*model);
//   chat.chat("What is 2+2?", {}, [](std::string_view piece) { std::cout << piece << std::flush; return true; });
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/thread_pool.h"
#include "models/checkpoint.h"
#include "models/decoder.h"
#include "models/kv_cache.h"
#include "models/tokenizer/tokenizer.h"

namespace qilin {

struct LoadOptions {
  int threads = 0;              // 0: every hardware thread
  Device device = Device::cpu;  // cuda: weights, KV cache and forward pass on the GPU (see below)
  int64_t context = 4096;       // KV-cache positions per sequence (capped at the model's trained length)
  int64_t slots = 1;            // independent sequences (sessions) sharing the model
  DType kv_type = DType::f16;   // f16 halves the cache; f32 for bit-for-bit comparisons
  int64_t batch = 512;          // prompt tokens per forward pass (the prefill chunk)
  int64_t max_logit_rows = 0;   // 0: one per slot; perplexity asks for a whole window
  // Block-format weights (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K) run natively unless dequantize
  // is set: then they are expanded at load to dequantize_to (exact float activations,
  // e.g. to compare with a float reference).
  bool dequantize = false;
  DType dequantize_to = DType::f32;
  bool bf16_prefill = true;     // prompt matmuls in bf16 on AMX/AVX512-BF16 (weights rounded to bf16)
  // Float weights are copied into huge pages at load (faster decode) unless mmap is
  // set: then they are read from the page cache (DecoderOptions::mmap_weights).
  bool mmap = false;
  // device cuda: the current GPU holds the weights (block formats as stored), the KV
  // cache and every activation; logits come back to the host. Refused with the reason
  // when this build or machine has no usable GPU, and with the bytes needed and free
  // when the model does not fit. Decode steps are replayed as CUDA graphs unless
  // cuda_graphs is false.
  bool cuda_graphs = true;
};

class Model {
 public:
  // Loads a .gguf file or a Hugging Face folder. Throws qilin::Error for a missing or
  // corrupt file, an unknown architecture, or options the model cannot honour.
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& options = {});

  const ModelConfig& config() const noexcept { return decoder_->config(); }
  const LoadOptions& options() const noexcept { return options_; }
  const Checkpoint& checkpoint() const noexcept { return checkpoint_; }
  bool has_tokenizer() const noexcept { return tokenizer_.has_value(); }
  // Throws when the checkpoint carries no vocabulary (GGUF no_vocab files).
  const Tokenizer& tokenizer() const;

  Decoder& decoder() noexcept { return *decoder_; }
  KvCache& cache() noexcept { return cache_; }
  ThreadPool& pool() noexcept { return *pool_; }
  int64_t context() const noexcept { return cache_.max_pos(); }

  double load_seconds() const noexcept { return load_seconds_; }

 private:
  Model(Checkpoint checkpoint, const LoadOptions& options);

  LoadOptions options_;
  Checkpoint checkpoint_;
  std::optional<Tokenizer> tokenizer_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Decoder> decoder_;
  KvCache cache_;
  double load_seconds_ = 0;
};

}  // namespace qilin
