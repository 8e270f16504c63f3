// A decoder's weights in GPU memory: every tensor the forward pass reads, in one
// device allocation. A first pass lays them out (checking every shape against the
// config and adding up the bytes, without touching the GPU), so a model that does not
// fit is refused before anything is allocated; a second pass copies them.
//
// Matrices keep their stored type (block formats run natively on the GPU's own GEMV)
// unless DecoderOptions::dequantize asks for a float type; vectors (norms, biases)
// become f32. Each copied tensor's file pages are released afterwards, so the host
// does not keep a second copy of the model resident.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cuda/memory.h"
#include "models/decoder.h"
#include "models/decoder_layer.h"

namespace qilin {

struct GpuWeights {
  std::vector<DecoderLayer> layers;
  TensorView token_embd;  // the embedding table as stored (the output's copy when tied and of its type)
  TensorView output_norm;
  std::unique_ptr<MatmulWeight> output;
  size_t bytes = 0;  // device bytes of all of the above
  // The largest f16 copy cuBLAS makes of a block-format weight for many rows (prefill,
  // or many logit rows): scratch the GPU needs besides the weights.
  size_t half_scratch_bytes = 0;
  cuda::DeviceBuffer memory;  // empty after measure_gpu_weights()
};

// The layout alone: bytes and half_scratch_bytes, views that point nowhere. Needs a
// CUDA build (it asks the matmul dispatcher which path each weight would take).
GpuWeights measure_gpu_weights(const Checkpoint& checkpoint, const DecoderOptions& options, ThreadPool& pool);
// The weights copied to the current device (on cuda::default_stream()).
GpuWeights upload_gpu_weights(const Checkpoint& checkpoint, const DecoderOptions& options, ThreadPool& pool);

}  // namespace qilin
