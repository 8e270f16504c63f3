#include "models/cuda_decoder.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/tensor.h"
#include "models/checkpoint.h"

namespace qilin {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Bytes of the activations, index buffers and RoPE table CudaDecoder allocates.
size_t activation_bytes(const ModelConfig& c, const DecoderOptions& o) {
  const auto m = static_cast<size_t>(o.max_batch_tokens), rows = static_cast<size_t>(o.max_logit_rows);
  const auto d = static_cast<size_t>(c.d_model), q = static_cast<size_t>(c.n_heads * c.head_dim),
             kv = static_cast<size_t>(c.n_kv_heads * c.head_dim), ff = static_cast<size_t>(c.d_ff);
  const size_t floats = m * (2 * d + 2 * q + 2 * kv + 2 * ff) + rows * (d + static_cast<size_t>(c.vocab_size)) +
                        static_cast<size_t>(c.max_context * c.rope_dim);
  return floats * sizeof(float) + (2 * m + rows) * sizeof(int32_t);
}

// Scratch the GPU ops take from the caching allocator, estimated from above: cuBLAS's
// two 32 MiB workspaces, x rounded to 16 bits for cuBLAS, attention's split partials
// (at most 2^17 (query, head, split) triples of head_dim + 2 floats), and the f16 copy
// of a block-format weight cuBLAS multiplies by.
size_t scratch_bytes(const ModelConfig& c, const DecoderOptions& o, size_t half_weight_bytes) {
  const auto widest = static_cast<size_t>(std::max({c.d_model, c.d_ff, c.n_heads * c.head_dim}));
  const size_t x_half = static_cast<size_t>(o.max_batch_tokens) * widest * 2;
  const size_t partials = (size_t{1} << 17) * static_cast<size_t>(c.head_dim + 2) * sizeof(float);
  return 2 * (size_t{32} << 20) + x_half + partials + half_weight_bytes;
}

}  // namespace

void CudaDecoder::check_fits(const Checkpoint& checkpoint, const DecoderOptions& options, size_t kv_cache_bytes,
                             ThreadPool& pool) {
  const ModelConfig& c = checkpoint.config();
  c.validate();
  const GpuWeights layout = measure_gpu_weights(checkpoint, options, pool);
  const size_t other = activation_bytes(c, options) + scratch_bytes(c, options, layout.half_scratch_bytes);
  const size_t needed = layout.bytes + kv_cache_bytes + other;
  const cuda::MemoryInfo memory = cuda::memory_info();
  if (needed <= memory.free_bytes) return;
  fail("load",
       "{} does not fit on GPU {}: it needs {} bytes ({:.2f} GiB: weights {:.2f}, KV cache {:.2f}, activations and "
       "scratch {:.2f}) but {} bytes ({:.2f} GiB) are free of {:.2f} GiB; a shorter context (-c), fewer slots, a "
       "q8_0 KV cache or a smaller weight type need less",
       c.name, cuda::current_device(), needed, needed / kGiB, layout.bytes / kGiB, kv_cache_bytes / kGiB, other / kGiB,
       memory.free_bytes, memory.free_bytes / kGiB, memory.total_bytes / kGiB);
}

CudaDecoder::CudaDecoder(const Checkpoint& checkpoint, const DecoderOptions& options, const RopeCache& rope,
                         ThreadPool& pool)
    : config_(checkpoint.config()),
      options_(options),
      stream_(cuda::default_stream()),
      weights_(upload_gpu_weights(checkpoint, options, pool)),
      rope_(std::make_unique<cuda::RopeTable>(rope, stream_)),
      graphs_enabled_(options.cuda_graphs) {
  const ModelConfig& c = config_;
  const int64_t m = options.max_batch_tokens, rows = options.max_logit_rows;
  const int64_t d = c.d_model, q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  x_ = cuda::empty({m, d}, DType::f32);
  h_ = cuda::empty({m, d}, DType::f32);
  q_ = cuda::empty({m, q_dim}, DType::f32);
  k_ = cuda::empty({m, kv_dim}, DType::f32);
  v_ = cuda::empty({m, kv_dim}, DType::f32);
  attn_ = cuda::empty({m, q_dim}, DType::f32);
  gate_ = cuda::empty({m, c.d_ff}, DType::f32);
  up_ = cuda::empty({m, c.d_ff}, DType::f32);
  last_ = cuda::empty({rows, d}, DType::f32);
  logits_ = cuda::empty({rows, c.vocab_size}, DType::f32);
  indices_ = cuda::empty({2 * m + rows}, DType::i32);
  host_indices_.resize(static_cast<size_t>(2 * m + rows));
  host_logits_ = Tensor::empty({rows, c.vocab_size}, DType::f32);
  stream_.synchronize();  // the RoPE table is copied
}

CudaDecoder::~CudaDecoder() = default;

size_t CudaDecoder::weight_bytes_per_token() const noexcept {
  size_t bytes = matrix_bytes(*weights_.output) + weights_.token_embd.row_size();
  for (const DecoderLayer& l : weights_.layers) bytes += layer_matrix_bytes(l);
  return bytes;
}

CudaDecoder::GraphStats CudaDecoder::graph_stats() const {
  GraphStats s{graphs_enabled_, graph_passes_, direct_passes_, 0, 0, graphs_disabled_reason_};
  for (const cuda::Graph& g : graphs_) {
    s.instantiations += g.instantiations();
    s.updates += g.updates();
  }
  return s;
}

TensorView CudaDecoder::forward(std::span<const ForwardRequest> batch, KvCache& cache, ThreadPool& pool) {
  int64_t n = 0, rows = 0;
  for (const ForwardRequest& r : batch) {
    n += static_cast<int64_t>(r.tokens.size());
    rows += r.all_logits ? static_cast<int64_t>(r.tokens.size()) : 1;
  }
  // [ids | positions | rows of x whose logits are wanted], one copy to the GPU.
  int32_t* ids = host_indices_.data();
  int32_t* positions = ids + n;
  int32_t* wanted = positions + n;
  int64_t t = 0, w = 0;
  for (const ForwardRequest& r : batch) {
    const auto count = static_cast<int64_t>(r.tokens.size());
    const int64_t pos0 = cache.length(r.slot);
    for (int64_t i = 0; i < count; ++i) {
      ids[t + i] = r.tokens[static_cast<size_t>(i)];
      positions[t + i] = static_cast<int32_t>(pos0 + i);
      if (r.all_logits) wanted[w++] = static_cast<int32_t>(t + i);
    }
    if (!r.all_logits) wanted[w++] = static_cast<int32_t>(t + count - 1);
    t += count;
  }
  cuda::copy_to_device(indices_.data(), ids, static_cast<size_t>(2 * n + rows) * sizeof(int32_t), stream_);

  if (graphs_enabled_ && n <= kGraphMaxTokens) {
    run_as_graph(batch, n, rows, cache, pool);
  } else {
    run(batch, n, rows, cache, pool);
    ++direct_passes_;
  }
  const TensorView logits = host_logits_.view().slice_rows(0, rows);
  cuda::copy_to_host(logits.data(), logits_.data(), logits.nbytes(), stream_);  // waits for the pass
  for (const ForwardRequest& r : batch) cache.advance(r.slot, static_cast<int64_t>(r.tokens.size()));
  return logits;
}

void CudaDecoder::run_as_graph(std::span<const ForwardRequest> batch, int64_t n_tokens, int64_t n_rows, KvCache& cache,
                               ThreadPool& pool) {
  // Sequences and logit rows are at least 1 and at most n_tokens (every request has a token).
  const auto sequences = static_cast<int64_t>(batch.size());
  const int64_t shape = ((n_tokens - 1) * kGraphMaxTokens + sequences - 1) * kGraphMaxTokens + n_rows - 1;
  cuda::Graph& graph = graphs_[static_cast<size_t>(shape)];
  try {
    graph.begin_capture(stream_);
    run(batch, n_tokens, n_rows, cache, pool);
    graph.end_capture(stream_);
  } catch (const Error& e) {
    // Nothing recorded has run: the pass runs again kernel by kernel (and throws
    // again if the failure was not the capture's), and so does every later pass.
    graph.abort_capture(stream_);
    graphs_enabled_ = false;
    graphs_disabled_reason_ = e.what();
    run(batch, n_tokens, n_rows, cache, pool);
    ++direct_passes_;
    return;
  } catch (...) {
    graph.abort_capture(stream_);
    throw;
  }
  graph.launch(stream_);
  ++graph_passes_;
}

void CudaDecoder::run(std::span<const ForwardRequest> batch, int64_t n_tokens, int64_t n_rows, KvCache& cache,
                      ThreadPool& pool) {
  auto* indices = indices_.data_as<int32_t>();
  const TensorView ids(indices, {n_tokens}, DType::i32, Device::cuda);
  const TensorView positions(indices + n_tokens, {n_tokens}, DType::i32, Device::cuda);
  const TensorView wanted(indices + 2 * n_tokens, {n_rows}, DType::i32, Device::cuda);
  const TensorView x = x_.view().slice_rows(0, n_tokens);
  cuda::embedding(weights_.token_embd, ids, x, stream_);
  for (int64_t il = 0; il < config_.n_layers; ++il) {
    const DecoderLayer& layer = weights_.layers[static_cast<size_t>(il)];
    attention_block(layer, il, batch, n_tokens, positions, cache, pool);
    mlp_block(layer, n_tokens, pool);
  }
  // The rows whose logits are wanted (a lookup in x by row index), the final norm
  // and the output projection.
  const TensorView last = last_.view().slice_rows(0, n_rows);
  cuda::embedding(x, wanted, last, stream_);
  cuda::rmsnorm(last, weights_.output_norm, config_.norm_eps, last, stream_);
  matmul(last, *weights_.output, logits_.view().slice_rows(0, n_rows), pool, options_.matmul);
}

void CudaDecoder::attention_block(const DecoderLayer& layer, int64_t il, std::span<const ForwardRequest> batch,
                                  int64_t n_tokens, const TensorView& positions, KvCache& cache, ThreadPool& pool) {
  const ModelConfig& c = config_;
  const TensorView x = x_.view().slice_rows(0, n_tokens);
  const TensorView h = h_.view().slice_rows(0, n_tokens);
  const TensorView q = q_.view().slice_rows(0, n_tokens);
  const TensorView k = k_.view().slice_rows(0, n_tokens);
  const TensorView v = v_.view().slice_rows(0, n_tokens);
  const TensorView out = attn_.view().slice_rows(0, n_tokens);

  cuda::rmsnorm(x, layer.attn_norm, c.norm_eps, h, stream_);
  const MatmulWeight* qkv_w[3] = {&layer.wq, &layer.wk, &layer.wv};
  const TensorView qkv_y[3] = {q, k, v};
  matmul_group(h, qkv_w, qkv_y, pool, options_.matmul);
  if (c.qkv_bias) {
    cuda::add_bias(q, layer.bq, stream_);
    cuda::add_bias(k, layer.bk, stream_);
    cuda::add_bias(v, layer.bv, stream_);
  }
  if (c.qk_norm) {  // Qwen3: RMSNorm over each head's head_dim values
    const TensorView q_heads = q.reshape({n_tokens * c.n_heads, c.head_dim});
    const TensorView k_heads = k.reshape({n_tokens * c.n_kv_heads, c.head_dim});
    cuda::rmsnorm(q_heads, layer.q_norm, c.norm_eps, q_heads, stream_);
    cuda::rmsnorm(k_heads, layer.k_norm, c.norm_eps, k_heads, stream_);
  }
  const RopeLayout layout = c.rope_interleaved ? RopeLayout::interleaved : RopeLayout::neox;
  cuda::rope(q.reshape({n_tokens, c.n_heads, c.head_dim}), positions, layout, *rope_, stream_);
  cuda::rope(k.reshape({n_tokens, c.n_kv_heads, c.head_dim}), positions, layout, *rope_, stream_);

  int64_t first = 0;
  for (const ForwardRequest& r : batch) {
    const auto count = static_cast<int64_t>(r.tokens.size());
    const int64_t pos0 = cache.length(r.slot);
    cuda::kv_store(k.slice_rows(first, count).reshape({count, c.n_kv_heads, c.head_dim}), cache.keys(il, r.slot), pos0,
                   stream_);
    cuda::kv_store(v.slice_rows(first, count).reshape({count, c.n_kv_heads, c.head_dim}), cache.values(il, r.slot),
                   pos0, stream_);
    cuda::attention(q.slice_rows(first, count).reshape({count, c.n_heads, c.head_dim}), cache.keys(il, r.slot),
                    cache.values(il, r.slot), pos0,
                    out.slice_rows(first, count).reshape({count, c.n_heads, c.head_dim}), stream_);
    first += count;
  }
  matmul(out, layer.wo, h, pool, options_.matmul);
  if (c.post_norms) cuda::rmsnorm(h, layer.attn_post_norm, c.norm_eps, h, stream_);  // GLM-4-0414
  cuda::add_inplace(x, h, stream_);
}

void CudaDecoder::mlp_block(const DecoderLayer& layer, int64_t n_tokens, ThreadPool& pool) {
  const TensorView x = x_.view().slice_rows(0, n_tokens);
  const TensorView h = h_.view().slice_rows(0, n_tokens);
  const TensorView gate = gate_.view().slice_rows(0, n_tokens);
  const TensorView up = up_.view().slice_rows(0, n_tokens);
  cuda::rmsnorm(x, layer.ffn_norm, config_.norm_eps, h, stream_);
  const MatmulWeight* gate_up_w[2] = {&layer.gate, &layer.up};
  const TensorView gate_up_y[2] = {gate, up};
  matmul_group(h, gate_up_w, gate_up_y, pool, options_.matmul);
  cuda::swiglu(gate, up, gate, stream_);
  matmul(gate, layer.down, h, pool, options_.matmul);
  if (config_.post_norms) cuda::rmsnorm(h, layer.ffn_post_norm, config_.norm_eps, h, stream_);  // GLM-4-0414
  cuda::add_inplace(x, h, stream_);
}

}  // namespace qilin
