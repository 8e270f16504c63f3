#include "core/allocator.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace qilin {

void* aligned_alloc_bytes(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = std::aligned_alloc(kAlignment, align_up(bytes));
  if (p == nullptr) fail("alloc", "out of memory allocating {} bytes", bytes);
  return p;
}

void aligned_free(void* p) noexcept { std::free(p); }

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}  // namespace

HugePageBuffer::HugePageBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  mapped_ = align_up(bytes, kHugePage);
  // Over-map by one huge page and trim both ends, so the buffer starts on a 2 MiB
  // boundary (mmap only promises 4 KiB) and every page of it can be a huge page.
  const size_t span = mapped_ + kHugePage;
  void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) fail("alloc", "out of memory mapping {} bytes: {}", bytes, std::strerror(errno));
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) ::munmap(raw, aligned - start);
  if (const size_t tail = start + span - (aligned + mapped_); tail > 0) {
    ::munmap(reinterpret_cast<void*>(aligned + mapped_), tail);
  }
  data_ = reinterpret_cast<void*>(aligned);
  ::madvise(data_, mapped_, MADV_HUGEPAGE);  // a hint: without THP the pages stay 4 KiB, still correct
}

HugePageBuffer& HugePageBuffer::operator=(HugePageBuffer&& o) noexcept {
  if (this != &o) {
    if (data_ != nullptr) ::munmap(data_, mapped_);
    data_ = o.data_;
    size_ = o.size_;
    mapped_ = o.mapped_;
    o.data_ = nullptr;
    o.size_ = o.mapped_ = 0;
  }
  return *this;
}

HugePageBuffer::~HugePageBuffer() {
  if (data_ != nullptr) ::munmap(data_, mapped_);
}

void* HugePageArena::allocate(size_t bytes) {
  const size_t need = align_up(bytes);
  if (chunks_.empty() || used_ + need > chunks_.back().size()) {
    chunks_.emplace_back(need > chunk_bytes_ ? need : chunk_bytes_);
    used_ = 0;
  }
  void* p = static_cast<char*>(chunks_.back().data()) + used_;
  used_ += need;
  allocated_ += need;
  return p;
}

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
