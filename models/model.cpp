#include "models/model.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/error.h"
#include "kernels/cuda/device.h"
#include "models/cuda_decoder.h"

namespace qilin {

Model::Model(Checkpoint checkpoint, const LoadOptions& options)
    : options_(options), checkpoint_(std::move(checkpoint)) {}

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.device == Device::cuda) {
    const std::string why = cuda::unavailable_reason();  // "" when a GPU is usable
    if (!why.empty()) fail("load", "device cuda: {}", why);
  }
  QILIN_CHECK(options.slots >= 1 && options.batch >= 1 && options.context >= 1, "load",
              "slots ({}), batch ({}) and context ({}) must be positive", options.slots, options.batch,
              options.context);
  std::unique_ptr<Model> m(new Model(Checkpoint::open(path), options));
  const ModelConfig& c = m->checkpoint_.config();
  m->options_.context = std::min(options.context, c.max_context);
  m->options_.threads = options.threads > 0 ? options.threads
                                            : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  m->tokenizer_ = m->checkpoint_.load_tokenizer();
  m->pool_ = std::make_unique<ThreadPool>(m->options_.threads);

  DecoderOptions d;
  d.max_batch_tokens = options.batch;
  d.max_logit_rows = options.max_logit_rows > 0 ? options.max_logit_rows : options.slots;
  d.dequantize = options.dequantize;
  d.dequantize_to = options.dequantize_to;
  d.matmul.allow_bf16_compute = options.bf16_prefill;
  d.mmap_weights = options.mmap;
  d.device = options.device;
  d.cuda_graphs = options.cuda_graphs;
  const KvCacheShape kv_shape = Decoder::kv_cache_shape_for(c, options.slots, m->options_.context);
  if (options.device == Device::cuda) {
    CudaDecoder::check_fits(m->checkpoint_, d, KvCache::bytes_for(kv_shape, options.kv_type), *m->pool_);
  }
  m->cache_ = KvCache(kv_shape, options.kv_type, options.device);  // first: its type checks come before the upload
  m->decoder_ = std::make_unique<Decoder>(m->checkpoint_, d, *m->pool_);
  m->load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return m;
}

const Tokenizer& Model::tokenizer() const {
  if (!tokenizer_) fail("model", "{} carries no vocabulary (tokenizer)", checkpoint_.path());
  return *tokenizer_;
}

}  // namespace qilin
