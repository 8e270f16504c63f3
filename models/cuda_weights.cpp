#include "models/cuda_weights.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "kernels/cuda/stream.h"
#include "models/checkpoint.h"

namespace qilin {
namespace {

constexpr size_t kDeviceAlignment = 256;  // as cudaMalloc's: every kernel's vector loads stay aligned

// Lays tensors out one after another in device memory at `base`; with base null it
// only measures (the views then carry offsets, never dereferenced).
class GpuLayerSource final : public LayerSource {
 public:
  GpuLayerSource(const Checkpoint& checkpoint, const DecoderOptions& options, ThreadPool& pool, char* base)
      : checkpoint_(checkpoint),
        base_(base),
        load_(checkpoint, options.dequantize, options.dequantize_to, owned_, pool) {}

  MatmulWeight matrix(const std::string& tensor, int64_t n, int64_t k, int64_t max_rows, WeightPart part) override {
    const TensorView& stored = load_.checked(tensor, {n, k});
    const TensorView file_rows = part.count >= 0 ? stored.slice_rows(part.first, part.count) : stored;
    if (base_ == nullptr) {
      MatmulWeight w(reserve(file_rows.shape(), load_.matrix_type(stored.dtype())));
      // cuBLAS multiplies a block-format weight through an f16 copy of all of it.
      if (!traits(w.view().dtype()).is_float && plan_matmul(max_rows, w) == MatmulPath::cublas) {
        half_scratch_ = std::max(half_scratch_, static_cast<size_t>(w.n() * w.k()) * 2);
      }
      return w;
    }
    MatmulWeight w(place(load_.matrix_part(tensor, n, k, part)));
    checkpoint_.release_pages(file_rows);
    return w;
  }

  TensorView vector(const std::string& tensor, int64_t n, WeightPart part) override {
    if (base_ == nullptr) {
      load_.checked(tensor, {n});
      return reserve({part.count >= 0 ? part.count : n}, DType::f32);
    }
    return place(load_.vector(tensor, n, part));
  }

  // A tensor as stored (the embedding table).
  TensorView stored(const TensorView& host) {
    if (base_ == nullptr) return reserve(host.shape(), host.dtype());
    const TensorView placed = place(host);
    checkpoint_.release_pages(host);
    return placed;
  }

  size_t bytes() const noexcept { return offset_; }
  size_t half_scratch_bytes() const noexcept { return half_scratch_; }

 private:
  TensorView reserve(Shape shape, DType dtype) {
    const TensorView probe(nullptr, shape, dtype);
    const size_t at = offset_;
    offset_ += align_up(probe.nbytes(), kDeviceAlignment);
    // Measuring: a fake, aligned, non-null address (the offset), never dereferenced.
    void* data = base_ != nullptr ? static_cast<void*>(base_ + at)
                                  : reinterpret_cast<void*>(static_cast<uintptr_t>(kDeviceAlignment + at));
    return TensorView(data, shape, dtype, Device::cuda);
  }
  TensorView place(const TensorView& host) {
    QILIN_CHECK(host.is_contiguous(), "model", "weight {} is not contiguous", host.shape().str());
    const TensorView dst = reserve(host.shape(), host.dtype());
    cuda::copy_to_device(dst.data(), host.data(), host.nbytes(), cuda::default_stream());
    owned_.clear();  // a converted host copy is on the GPU now (copy_to_device has read it)
    return dst;
  }

  const Checkpoint& checkpoint_;
  char* base_;
  std::vector<Tensor> owned_;
  WeightLoader load_;
  size_t offset_ = 0, half_scratch_ = 0;
};

// Both passes: the same calls in the same order, so the layout matches.
GpuWeights lay_out(const Checkpoint& checkpoint, const DecoderOptions& options, ThreadPool& pool, GpuWeights w) {
  const ModelConfig& c = checkpoint.config();
  GpuLayerSource source(checkpoint, options, pool, w.memory.data_as<char>());
  const TensorView& embd = checkpoint.require("token_embd.weight");
  if (!(embd.shape() == Shape{c.vocab_size, c.d_model})) {
    fail("model", "{}: token_embd.weight is {} but the config implies {}x{}", checkpoint.path(), embd.shape().str(),
         c.vocab_size, c.d_model);
  }
  w.output_norm = source.vector("output_norm.weight", c.d_model, {});
  const bool tied = output_is_tied(c, checkpoint);
  w.output = std::make_unique<MatmulWeight>(
      source.matrix(tied ? "token_embd.weight" : "output.weight", c.vocab_size, c.d_model, options.max_logit_rows, {}));
  // Tied and of the same type: the embedding reads the output's rows (one copy, and
  // the same bits as the CPU decoder's lookup).
  w.token_embd = tied && w.output->view().dtype() == embd.dtype() ? w.output->view() : source.stored(embd);
  w.layers.clear();
  w.layers.reserve(static_cast<size_t>(c.n_layers));
  for (int64_t il = 0; il < c.n_layers; ++il) {
    w.layers.push_back(load_decoder_layer(c, il, options.max_batch_tokens, source));
  }
  w.bytes = source.bytes();
  w.half_scratch_bytes = source.half_scratch_bytes();
  return w;
}

}  // namespace

GpuWeights measure_gpu_weights(const Checkpoint& checkpoint, const DecoderOptions& options, ThreadPool& pool) {
  return lay_out(checkpoint, options, pool, GpuWeights{});
}

GpuWeights upload_gpu_weights(const Checkpoint& checkpoint, const DecoderOptions& options, ThreadPool& pool) {
  GpuWeights w;
  w.memory = cuda::DeviceBuffer(std::max<size_t>(measure_gpu_weights(checkpoint, options, pool).bytes, 1));
  w = lay_out(checkpoint, options, pool, std::move(w));
  cuda::default_stream().synchronize();  // every copy done (and any error surfaced) before the model is used
  return w;
}

}  // namespace qilin
