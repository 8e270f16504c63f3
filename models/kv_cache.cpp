#include "models/kv_cache.h"

#include <cstring>

#include "core/error.h"
#include "core/half.h"

namespace qilin {

KvCache::KvCache(const KvCacheShape& shape, DType dtype) : shape_(shape), dtype_(dtype) {
  QILIN_CHECK(dtype == DType::f32 || dtype == DType::f16, "kv_cache", "type must be f32 or f16, not {}",
              name_of(dtype));
  QILIN_CHECK(shape.n_layers > 0 && shape.n_slots > 0 && shape.n_kv_heads > 0 && shape.max_pos > 0 &&
                  shape.head_dim > 0,
              "kv_cache", "every dimension must be positive (layers {}, slots {}, kv heads {}, positions {}, "
              "head dim {})", shape.n_layers, shape.n_slots, shape.n_kv_heads, shape.max_pos, shape.head_dim);
  block_bytes_ = align_up(static_cast<size_t>(shape.n_kv_heads * shape.max_pos) *
                          row_bytes(dtype, shape.head_dim));
  const size_t total = 2 * block_bytes_ * static_cast<size_t>(shape.n_layers * shape.n_slots);
  memory_ = AlignedBuffer(total);
  std::memset(memory_.data(), 0, total);  // attention never reads past a slot's length, but no garbage either
  lengths_.assign(static_cast<size_t>(shape.n_slots), 0);
}

TensorView KvCache::block(int which, int64_t layer, int64_t slot) const noexcept {
  const size_t index = (static_cast<size_t>(layer * shape_.n_slots + slot) * 2 + static_cast<size_t>(which));
  char* base = static_cast<char*>(memory_.data()) + index * block_bytes_;
  return TensorView(base, {shape_.n_kv_heads, shape_.max_pos, shape_.head_dim}, dtype_);
}

void KvCache::advance(int64_t slot, int64_t n) {
  QILIN_CHECK(slot >= 0 && slot < shape_.n_slots, "kv_cache", "slot {} out of range ({} slots)", slot,
              shape_.n_slots);
  QILIN_CHECK(n >= 0 && n <= room(slot), "kv_cache", "slot {} holds {} of {} positions; cannot add {}", slot,
              length(slot), shape_.max_pos, n);
  lengths_[static_cast<size_t>(slot)] += n;
}

void KvCache::truncate(int64_t slot, int64_t length) {
  QILIN_CHECK(slot >= 0 && slot < shape_.n_slots, "kv_cache", "slot {} out of range ({} slots)", slot,
              shape_.n_slots);
  QILIN_CHECK(length >= 0 && length <= this->length(slot), "kv_cache", "cannot truncate slot {} of length {} to {}",
              slot, this->length(slot), length);
  lengths_[static_cast<size_t>(slot)] = length;
}

void KvCache::store(int64_t layer, int64_t slot, int64_t pos0, const TensorView& k_new, const TensorView& v_new) {
  const int64_t kvh = shape_.n_kv_heads, hd = shape_.head_dim;
  QILIN_CHECK(layer >= 0 && layer < shape_.n_layers && slot >= 0 && slot < shape_.n_slots, "kv_cache",
              "layer {} / slot {} out of range", layer, slot);
  QILIN_CHECK(k_new.dtype() == DType::f32 && v_new.dtype() == DType::f32 && k_new.cols() == kvh * hd &&
                  v_new.cols() == kvh * hd && k_new.rows() == v_new.rows(),
              "kv_cache", "store expects k and v of [n, {}] f32, got k {} {} and v {} {}", kvh * hd,
              k_new.shape().str(), name_of(k_new.dtype()), v_new.shape().str(), name_of(v_new.dtype()));
  const int64_t n = k_new.rows();
  QILIN_CHECK(pos0 >= 0 && pos0 + n <= shape_.max_pos, "kv_cache",
              "writing positions [{}, {}) passes the context length {}", pos0, pos0 + n, shape_.max_pos);
  const TensorView dst[2] = {keys(layer, slot), values(layer, slot)};
  const TensorView* src[2] = {&k_new, &v_new};
  for (int which = 0; which < 2; ++which) {
    for (int64_t t = 0; t < n; ++t) {
      const float* row = src[which]->row<float>(t);
      for (int64_t h = 0; h < kvh; ++h) {
        const float* from = row + h * hd;
        const int64_t at = h * shape_.max_pos + pos0 + t;  // row index in [kv_heads * max_pos]
        if (dtype_ == DType::f32) {
          std::memcpy(dst[which].row<float>(at), from, static_cast<size_t>(hd) * sizeof(float));
        } else {
          uint16_t* to = dst[which].row<uint16_t>(at);
          for (int64_t i = 0; i < hd; ++i) to[i] = f32_to_f16(from[i]);
        }
      }
    }
  }
}

}  // namespace qilin
