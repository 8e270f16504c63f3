#include "core/allocator.h"

#include <cstdlib>

#include "core/error.h"

namespace qilin {

void* aligned_alloc_bytes(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = std::aligned_alloc(kAlignment, align_up(bytes));
  if (p == nullptr) fail("alloc", "out of memory allocating {} bytes", bytes);
  return p;
}

void aligned_free(void* p) noexcept { std::free(p); }

void* Arena::allocate(size_t bytes) {
  const size_t need = align_up(bytes);
  if (used_ + need > buffer_.size()) {
    fail("arena", "exhausted: {} bytes requested, {} of {} in use", bytes, used_, buffer_.size());
  }
  void* p = static_cast<char*>(buffer_.data()) + used_;
  used_ += need;
  if (used_ > high_water_) high_water_ = used_;
  return p;
}

}  // namespace qilin
