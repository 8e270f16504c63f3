#include "models/decoder.h"

#include <cstring>
#include <string>

#include "core/error.h"
#include "kernels/ops.h"
#include "models/checkpoint.h"
#include "models/cuda_decoder.h"
#include "models/decoder_layer.h"

namespace qilin {

namespace {

// The CPU decoder's weights: used in place from the file mapping (or dequantized at
// load into `owned`), float ones copied into huge pages unless mmap_weights, each
// prepared for its largest row count, and its mapped pages released once held as a
// copy.
class CpuLayerSource final : public LayerSource {
 public:
  CpuLayerSource(const Checkpoint& checkpoint, const DecoderOptions& options, WeightLoader& load,
                 HugePageArena& resident, ThreadPool& pool)
      : checkpoint_(checkpoint), options_(options), load_(load), resident_(resident), pool_(pool) {}

  MatmulWeight matrix(const std::string& tensor, int64_t n, int64_t k, int64_t max_rows, WeightPart part) override {
    MatmulWeight w(load_.matrix_part(tensor, n, k, part));
    const TensorView stored = w.view();
    const TensorView& in_file = checkpoint_.require(tensor);
    const TensorView file_rows = part.count >= 0 ? in_file.slice_rows(part.first, part.count) : in_file;
    const bool from_file = file_rows.data() == stored.data();  // else dequantized at load into owned_
    if (from_file && !options_.mmap_weights) w.make_resident(resident_, &pool_);
    w.prepare(max_rows, options_.matmul, &pool_);
    if (!from_file || w.holds_copy()) checkpoint_.release_pages(file_rows);
    return w;
  }
  TensorView vector(const std::string& tensor, int64_t n, WeightPart part) override {
    return load_.vector(tensor, n, part);
  }

 private:
  const Checkpoint& checkpoint_;
  const DecoderOptions& options_;
  WeightLoader& load_;
  HugePageArena& resident_;
  ThreadPool& pool_;
};

}  // namespace

Decoder::Decoder(const Checkpoint& checkpoint, const DecoderOptions& options, ThreadPool& pool)
    : config_(checkpoint.config()), options_(options) {
  const ModelConfig& c = config_;
  c.validate();
  QILIN_CHECK(options.dequantize_to == DType::f32 || options.dequantize_to == DType::f16 ||
                  options.dequantize_to == DType::bf16,
              "model", "dequantize_to must be f32, f16 or bf16, not {}", name_of(options.dequantize_to));
  QILIN_CHECK(options.max_batch_tokens >= 1 && options.max_logit_rows >= 1, "model",
              "max_batch_tokens ({}) and max_logit_rows ({}) must be positive", options.max_batch_tokens,
              options.max_logit_rows);

  rope_ = std::make_unique<RopeCache>(c.rope_dim, c.max_context, c.rope_theta);
  if (options.device == Device::cuda) {
    gpu_ = std::make_unique<CudaDecoder>(checkpoint, options, *rope_, pool);
    return;
  }
  QILIN_CHECK(options.device == Device::cpu, "model", "device {} is neither cpu nor cuda", name_of(options.device));

  owned_.reserve(static_cast<size_t>(c.n_layers) * 16 + 4);  // views into owned_ must stay put
  WeightLoader load(checkpoint, options.dequantize, options.dequantize_to, owned_, pool);
  CpuLayerSource source(checkpoint, options_, load, resident_, pool);
  const int64_t d = c.d_model, q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  const int64_t max_m = options.max_batch_tokens;

  token_embd_ = checkpoint.require("token_embd.weight");
  if (!(token_embd_.shape() == Shape{c.vocab_size, d})) {
    fail("model", "{}: token_embd.weight is {} but the config implies {}x{}", checkpoint.path(),
         token_embd_.shape().str(), c.vocab_size, d);
  }
  output_norm_ = load.vector("output_norm.weight", d);
  const bool tied = output_is_tied(c, checkpoint);
  output_ = std::make_unique<MatmulWeight>(
      source.matrix(tied ? "token_embd.weight" : "output.weight", c.vocab_size, d, options.max_logit_rows, {}));
  // Tied: look rows up in the output weight's copy, not in the released mapping.
  if (tied && output_->view().dtype() == token_embd_.dtype()) token_embd_ = output_->view();

  layers_.reserve(static_cast<size_t>(c.n_layers));
  for (int64_t il = 0; il < c.n_layers; ++il) layers_.push_back(load_decoder_layer(c, il, max_m, source));

  x_ = Tensor::empty({max_m, d}, DType::f32);
  h_ = Tensor::empty({max_m, d}, DType::f32);
  q_ = Tensor::empty({max_m, q_dim}, DType::f32);
  k_ = Tensor::empty({max_m, kv_dim}, DType::f32);
  v_ = Tensor::empty({max_m, kv_dim}, DType::f32);
  attn_ = Tensor::empty({max_m, q_dim}, DType::f32);
  gate_ = Tensor::empty({max_m, c.d_ff}, DType::f32);
  up_ = Tensor::empty({max_m, c.d_ff}, DType::f32);
  last_ = Tensor::empty({options.max_logit_rows, d}, DType::f32);
  logits_ = Tensor::empty({options.max_logit_rows, c.vocab_size}, DType::f32);
  ids_.resize(static_cast<size_t>(max_m));
  positions_.resize(static_cast<size_t>(max_m));
}

Decoder::~Decoder() = default;

KvCacheShape Decoder::kv_cache_shape_for(const ModelConfig& c, int64_t n_slots, int64_t context) noexcept {
  return {c.n_layers, n_slots, c.n_kv_heads, context, c.head_dim};
}

size_t Decoder::weight_bytes_per_token() const noexcept {
  if (gpu_) return gpu_->weight_bytes_per_token();
  size_t bytes = matrix_bytes(*output_) + token_embd_.row_size();
  for (const Layer& l : layers_) bytes += layer_matrix_bytes(l);
  return bytes;
}

size_t Decoder::owned_weight_bytes() const noexcept {
  if (gpu_) return gpu_->weight_bytes();
  size_t bytes = output_->packed_bytes();
  for (const Tensor& t : owned_) bytes += t.nbytes();
  for (const Layer& l : layers_) {
    for (const MatmulWeight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) bytes += w->packed_bytes();
  }
  return bytes;
}

void Decoder::check_batch(std::span<const ForwardRequest> batch, const KvCache& cache) const {
  QILIN_CHECK(!batch.empty(), "forward", "empty batch");
  QILIN_CHECK(cache.device() == options_.device, "forward", "the KV cache is on {} but the model runs on {}",
              name_of(cache.device()), name_of(options_.device));
  const KvCacheShape& s = cache.shape();
  QILIN_CHECK(s.n_layers == config_.n_layers && s.n_kv_heads == config_.n_kv_heads &&
                  s.head_dim == config_.head_dim,
              "forward", "the KV cache ({} layers, {} kv heads, head dim {}) does not fit the model ({}, {}, {})",
              s.n_layers, s.n_kv_heads, s.head_dim, config_.n_layers, config_.n_kv_heads, config_.head_dim);
  QILIN_CHECK(s.max_pos <= rope_->max_pos(), "forward", "the KV cache holds {} positions, the model at most {}",
              s.max_pos, rope_->max_pos());
  int64_t tokens = 0, logit_rows = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const ForwardRequest& r = batch[i];
    QILIN_CHECK(r.slot >= 0 && r.slot < cache.n_slots(), "forward", "slot {} out of range ({} slots)", r.slot,
                cache.n_slots());
    for (size_t j = 0; j < i; ++j) {
      QILIN_CHECK(batch[j].slot != r.slot, "forward", "slot {} appears twice in one batch", r.slot);
    }
    const auto n = static_cast<int64_t>(r.tokens.size());
    QILIN_CHECK(n >= 1, "forward", "request for slot {} has no tokens", r.slot);
    QILIN_CHECK(n <= cache.room(r.slot), "forward",
                "slot {} holds {} of {} positions: {} more tokens do not fit (context full)", r.slot,
                cache.length(r.slot), cache.max_pos(), n);
    for (const int32_t id : r.tokens) {
      QILIN_CHECK(id >= 0 && id < config_.vocab_size, "forward", "token id {} outside the vocabulary [0, {})", id,
                  config_.vocab_size);
    }
    tokens += n;
    logit_rows += r.all_logits ? n : 1;
  }
  QILIN_CHECK(tokens <= options_.max_batch_tokens, "forward", "{} tokens in one pass; the model was loaded for {}",
              tokens, options_.max_batch_tokens);
  QILIN_CHECK(logit_rows <= options_.max_logit_rows, "forward",
              "{} logit rows in one pass; the model was loaded for {}", logit_rows, options_.max_logit_rows);
}

TensorView Decoder::forward(std::span<const ForwardRequest> batch, KvCache& cache, ThreadPool& pool) {
  check_batch(batch, cache);
  if (gpu_) return gpu_->forward(batch, cache, pool);
  int64_t n = 0;
  for (const ForwardRequest& r : batch) {
    const int64_t pos0 = cache.length(r.slot);
    for (size_t i = 0; i < r.tokens.size(); ++i, ++n) {
      ids_[static_cast<size_t>(n)] = r.tokens[i];
      positions_[static_cast<size_t>(n)] = static_cast<int32_t>(pos0 + static_cast<int64_t>(i));
    }
  }
  const TensorView x = x_.view().slice_rows(0, n);
  embedding(token_embd_, std::span<const int32_t>(ids_.data(), static_cast<size_t>(n)), x, pool);

  for (int64_t il = 0; il < config_.n_layers; ++il) {
    const Layer& layer = layers_[static_cast<size_t>(il)];
    attention_block(layer, il, batch, n, cache, pool);
    // What the MLP's last matmul is followed by: the next layer's Q, K and V, or the output.
    const Layer* next = il + 1 < config_.n_layers ? &layers_[static_cast<size_t>(il + 1)] : nullptr;
    const MatmulWeight* next_qkv[3] = {next ? &next->wq : output_.get(), next ? &next->wk : nullptr,
                                       next ? &next->wv : nullptr};
    mlp_block(layer, n, std::span<const MatmulWeight* const>(next_qkv, next ? 3 : 1), pool);
  }

  // Gather the rows whose logits are wanted, then the final norm and the output projection.
  int64_t rows = 0, first = 0;
  const size_t row_bytes = static_cast<size_t>(config_.d_model) * sizeof(float);
  for (const ForwardRequest& r : batch) {
    const auto count = static_cast<int64_t>(r.tokens.size());
    const int64_t from = r.all_logits ? first : first + count - 1;
    const int64_t take = r.all_logits ? count : 1;
    std::memcpy(last_.view().row(rows), x.row(from), row_bytes * static_cast<size_t>(take));
    rows += take;
    first += count;
  }
  const TensorView last = last_.view().slice_rows(0, rows);
  rmsnorm(last, output_norm_, config_.norm_eps, last, pool);
  const TensorView logits = logits_.view().slice_rows(0, rows);
  const Layer& first_layer = layers_.front();  // the next step (decode, if this one was) starts with it
  const MatmulWeight* first_qkv[3] = {&first_layer.wq, &first_layer.wk, &first_layer.wv};
  hint_next_matmul(n, first_qkv, pool);
  matmul(last, *output_, logits, pool, options_.matmul);

  for (const ForwardRequest& r : batch) cache.advance(r.slot, static_cast<int64_t>(r.tokens.size()));
  return logits;
}

void Decoder::attention_block(const Layer& layer, int64_t il, std::span<const ForwardRequest> batch,
                              int64_t n_tokens, KvCache& cache, ThreadPool& pool) {
  const ModelConfig& c = config_;
  const TensorView x = x_.view().slice_rows(0, n_tokens);
  const TensorView h = h_.view().slice_rows(0, n_tokens);
  const TensorView q = q_.view().slice_rows(0, n_tokens);
  const TensorView k = k_.view().slice_rows(0, n_tokens);
  const TensorView v = v_.view().slice_rows(0, n_tokens);
  const TensorView out = attn_.view().slice_rows(0, n_tokens);

  rmsnorm(x, layer.attn_norm, c.norm_eps, h, pool);
  const MatmulWeight* qkv_w[3] = {&layer.wq, &layer.wk, &layer.wv};
  const TensorView qkv_y[3] = {q, k, v};
  const MatmulWeight* wo[1] = {&layer.wo};
  hint_next_matmul(n_tokens, wo, pool);
  matmul_group(h, qkv_w, qkv_y, pool, options_.matmul);
  if (c.qkv_bias) {
    add_bias(q, layer.bq, pool);
    add_bias(k, layer.bk, pool);
    add_bias(v, layer.bv, pool);
  }
  if (c.qk_norm) {  // Qwen3: RMSNorm over each head's head_dim values
    const TensorView q_heads = q.reshape({n_tokens * c.n_heads, c.head_dim});
    const TensorView k_heads = k.reshape({n_tokens * c.n_kv_heads, c.head_dim});
    rmsnorm(q_heads, layer.q_norm, c.norm_eps, q_heads, pool);
    rmsnorm(k_heads, layer.k_norm, c.norm_eps, k_heads, pool);
  }
  const std::span<const int32_t> positions(positions_.data(), static_cast<size_t>(n_tokens));
  const RopeLayout layout = c.rope_interleaved ? RopeLayout::interleaved : RopeLayout::neox;
  rope(q.reshape({n_tokens, c.n_heads, c.head_dim}), positions, layout, *rope_, pool);
  rope(k.reshape({n_tokens, c.n_kv_heads, c.head_dim}), positions, layout, *rope_, pool);

  int64_t first = 0;
  for (const ForwardRequest& r : batch) {
    const auto count = static_cast<int64_t>(r.tokens.size());
    const int64_t pos0 = cache.length(r.slot);
    cache.store(il, r.slot, pos0, k.slice_rows(first, count), v.slice_rows(first, count), pool);
    attention(q.slice_rows(first, count).reshape({count, c.n_heads, c.head_dim}), cache.keys(il, r.slot),
              cache.values(il, r.slot), pos0, out.slice_rows(first, count).reshape({count, c.n_heads, c.head_dim}),
              pool, std::nullopt, options_.matmul.allow_bf16_compute);
    first += count;
  }
  const MatmulWeight* gate_up_w[2] = {&layer.gate, &layer.up};
  hint_next_matmul(n_tokens, gate_up_w, pool);
  matmul(out, layer.wo, h, pool, options_.matmul);
  if (c.post_norms) rmsnorm(h, layer.attn_post_norm, c.norm_eps, h, pool);  // GLM-4-0414
  add_inplace(x, h, pool);
}

void Decoder::mlp_block(const Layer& layer, int64_t n_tokens, std::span<const MatmulWeight* const> then,
                        ThreadPool& pool) {
  const TensorView x = x_.view().slice_rows(0, n_tokens);
  const TensorView h = h_.view().slice_rows(0, n_tokens);
  const TensorView gate = gate_.view().slice_rows(0, n_tokens);
  const TensorView up = up_.view().slice_rows(0, n_tokens);
  rmsnorm(x, layer.ffn_norm, config_.norm_eps, h, pool);
  const MatmulWeight* gate_up_w[2] = {&layer.gate, &layer.up};
  const TensorView gate_up_y[2] = {gate, up};
  const MatmulWeight* down[1] = {&layer.down};
  hint_next_matmul(n_tokens, down, pool);
  matmul_group(h, gate_up_w, gate_up_y, pool, options_.matmul);
  hint_next_matmul(n_tokens, then, pool);
  matmul_swiglu(gate, up, layer.down, h, pool, options_.matmul);
  if (config_.post_norms) rmsnorm(h, layer.ffn_post_norm, config_.norm_eps, h, pool);  // GLM-4-0414
  add_inplace(x, h, pool);
}

}  // namespace qilin
