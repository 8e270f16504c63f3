// KvCache: the keys and values of every attention layer for several independent
// sequences ("slots"), preallocated once at load.
//
// Layout [layer][slot][kv_head][pos][head_dim], f32, f16 or q8_0 (each row of
// head_dim elements as head_dim / 32 blocks of an f16 scale and 32 int8: 1.0625
// bytes per element, 47% fewer than f16): one (layer, slot) pair is the
// [kv_heads, max_pos, head_dim] block the attention op reads, and a head's positions
// are contiguous so decode streams them. Each slot has its own length; the server's
// continuous batching decodes many slots in one forward pass.
//
// On Device::cuda the same layout lives in GPU memory (the views say cuda) and
// store() runs the GPU's kv_store; lengths stay on the host either way.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/allocator.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace qilin {

struct KvCacheShape {
  int64_t n_layers = 0;
  int64_t n_slots = 1;
  int64_t n_kv_heads = 0;
  int64_t max_pos = 0;  // context length of each slot
  int64_t head_dim = 0;
};

class KvCache {
 public:
  KvCache() = default;
  // dtype is f32, f16 or q8_0 (q8_0 needs head_dim a multiple of 32); the memory is
  // allocated (and zeroed) here, once, on `device`.
  KvCache(const KvCacheShape& shape, DType dtype, Device device = Device::cpu);

  // The bytes such a cache takes.
  static size_t bytes_for(const KvCacheShape& shape, DType dtype) noexcept;

  const KvCacheShape& shape() const noexcept { return shape_; }
  DType dtype() const noexcept { return dtype_; }
  Device device() const noexcept { return device_; }
  int64_t n_slots() const noexcept { return shape_.n_slots; }
  int64_t max_pos() const noexcept { return shape_.max_pos; }
  size_t bytes() const noexcept { return 2 * block_bytes_ * static_cast<size_t>(shape_.n_layers * shape_.n_slots); }

  // [kv_heads, max_pos, head_dim] of one layer and slot.
  TensorView keys(int64_t layer, int64_t slot) const noexcept { return block(0, layer, slot); }
  TensorView values(int64_t layer, int64_t slot) const noexcept { return block(1, layer, slot); }

  // Positions [0, length) of a slot hold valid entries.
  int64_t length(int64_t slot) const noexcept { return lengths_[static_cast<size_t>(slot)]; }
  // Positions left before the slot is full.
  int64_t room(int64_t slot) const noexcept { return shape_.max_pos - length(slot); }
  // Marks `n` more positions valid (after a forward pass wrote them); throws when
  // that would pass max_pos — the caller checks room() first.
  void advance(int64_t slot, int64_t n);
  // Forgets everything after `length` (keeps a shared prefix, e.g. earlier chat turns).
  void truncate(int64_t slot, int64_t length);
  void clear(int64_t slot) { truncate(slot, 0); }

  // Writes rows k_new/v_new [n, kv_heads * head_dim] (f32, contiguous) at positions
  // [pos0, pos0 + n) of (layer, slot), converting to the cache's dtype (kernels/ops.h
  // kv_store: q8_0 rows are quantized here). Allocates nothing. Checked: pos0 + n <= max_pos.
  // A GPU cache takes rows on the GPU and queues the copy on cuda::default_stream().
  void store(int64_t layer, int64_t slot, int64_t pos0, const TensorView& k_new, const TensorView& v_new,
             ThreadPool& pool);

 private:
  TensorView block(int which, int64_t layer, int64_t slot) const noexcept;
  static size_t block_bytes(const KvCacheShape& shape, DType dtype) noexcept;

  KvCacheShape shape_;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
  size_t block_bytes_ = 0;  // one [kv_heads, max_pos, head_dim] block
  AlignedBuffer memory_;    // on the CPU
  Tensor device_memory_;    // on the GPU
  std::vector<int64_t> lengths_;
};

}  // namespace qilin
