#include "models/kv_cache.h"

#include <cstring>

#include "core/error.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/tensor.h"
#include "kernels/ops.h"

namespace qilin {

KvCache::KvCache(const KvCacheShape& shape, DType dtype, Device device)
    : shape_(shape), dtype_(dtype), device_(device) {
  QILIN_CHECK(dtype == DType::f32 || dtype == DType::f16 || dtype == DType::q8_0, "kv_cache",
              "type must be f32, f16 or q8_0, not {}", name_of(dtype));
  QILIN_CHECK(
      shape.n_layers > 0 && shape.n_slots > 0 && shape.n_kv_heads > 0 && shape.max_pos > 0 && shape.head_dim > 0,
      "kv_cache",
      "every dimension must be positive (layers {}, slots {}, kv heads {}, positions {}, "
      "head dim {})",
      shape.n_layers, shape.n_slots, shape.n_kv_heads, shape.max_pos, shape.head_dim);
  QILIN_CHECK(dtype != DType::q8_0 || shape.head_dim % 32 == 0, "kv_cache",
              "a q8_0 cache stores rows as 32-element blocks, but head_dim is {}, not a multiple of 32 "
              "(use an f16 or f32 cache)",
              shape.head_dim);
  block_bytes_ = block_bytes(shape, dtype);
  const size_t total = bytes_for(shape, dtype);
  // Attention never reads past a slot's length, but no garbage either: zeroed.
  if (device == Device::cuda) {
    device_memory_ = cuda::zeros({static_cast<int64_t>(total)}, DType::i8, cuda::default_stream());
  } else {
    memory_ = AlignedBuffer(total);
    std::memset(memory_.data(), 0, total);
  }
  lengths_.assign(static_cast<size_t>(shape.n_slots), 0);
}

size_t KvCache::block_bytes(const KvCacheShape& shape, DType dtype) noexcept {
  return align_up(static_cast<size_t>(shape.n_kv_heads * shape.max_pos) * row_bytes(dtype, shape.head_dim));
}

size_t KvCache::bytes_for(const KvCacheShape& shape, DType dtype) noexcept {
  return 2 * block_bytes(shape, dtype) * static_cast<size_t>(shape.n_layers * shape.n_slots);
}

TensorView KvCache::block(int which, int64_t layer, int64_t slot) const noexcept {
  const size_t index = (static_cast<size_t>(layer * shape_.n_slots + slot) * 2 + static_cast<size_t>(which));
  void* memory = device_ == Device::cuda ? device_memory_.data() : memory_.data();
  char* base = static_cast<char*>(memory) + index * block_bytes_;
  return TensorView(base, {shape_.n_kv_heads, shape_.max_pos, shape_.head_dim}, dtype_, device_);
}

void KvCache::advance(int64_t slot, int64_t n) {
  QILIN_CHECK(slot >= 0 && slot < shape_.n_slots, "kv_cache", "slot {} out of range ({} slots)", slot, shape_.n_slots);
  QILIN_CHECK(n >= 0 && n <= room(slot), "kv_cache", "slot {} holds {} of {} positions; cannot add {}", slot,
              length(slot), shape_.max_pos, n);
  lengths_[static_cast<size_t>(slot)] += n;
}

void KvCache::truncate(int64_t slot, int64_t length) {
  QILIN_CHECK(slot >= 0 && slot < shape_.n_slots, "kv_cache", "slot {} out of range ({} slots)", slot, shape_.n_slots);
  QILIN_CHECK(length >= 0 && length <= this->length(slot), "kv_cache", "cannot truncate slot {} of length {} to {}",
              slot, this->length(slot), length);
  lengths_[static_cast<size_t>(slot)] = length;
}

void KvCache::store(int64_t layer, int64_t slot, int64_t pos0, const TensorView& k_new, const TensorView& v_new,
                    ThreadPool& pool) {
  const int64_t kvh = shape_.n_kv_heads, hd = shape_.head_dim;
  QILIN_CHECK(layer >= 0 && layer < shape_.n_layers && slot >= 0 && slot < shape_.n_slots, "kv_cache",
              "layer {} / slot {} out of range", layer, slot);
  QILIN_CHECK(k_new.dtype() == DType::f32 && v_new.dtype() == DType::f32 && k_new.cols() == kvh * hd &&
                  v_new.cols() == kvh * hd && k_new.rows() == v_new.rows() && k_new.is_contiguous() &&
                  v_new.is_contiguous(),
              "kv_cache", "store expects contiguous k and v of [n, {}] f32, got k {} {} and v {} {}", kvh * hd,
              k_new.shape().str(), name_of(k_new.dtype()), v_new.shape().str(), name_of(v_new.dtype()));
  const int64_t n = k_new.rows();
  QILIN_CHECK(pos0 >= 0 && pos0 + n <= shape_.max_pos, "kv_cache",
              "writing positions [{}, {}) passes the context length {}", pos0, pos0 + n, shape_.max_pos);
  if (device_ == Device::cuda) {
    const cuda::Stream& stream = cuda::default_stream();
    cuda::kv_store(k_new.reshape({n, kvh, hd}), keys(layer, slot), pos0, stream);
    cuda::kv_store(v_new.reshape({n, kvh, hd}), values(layer, slot), pos0, stream);
    return;
  }
  kv_store(k_new.reshape({n, kvh, hd}), keys(layer, slot), pos0, pool);
  kv_store(v_new.reshape({n, kvh, hd}), values(layer, slot), pos0, pool);
}

}  // namespace qilin
