// CPU memory: 64-byte aligned buffers and the activation arena.
//
// The arena is sized once (at model load) and handed out by bumping a pointer,
// so the decode loop never calls malloc; reset() recycles it for the next step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace qilin {

inline constexpr size_t kAlignment = 64;  // one cache line; also the widest vector (AVX-512)

inline constexpr size_t align_up(size_t n, size_t a = kAlignment) { return (n + a - 1) / a * a; }

// Allocates `bytes` (rounded up to the alignment) aligned to 64 bytes; throws Error on failure.
void* aligned_alloc_bytes(size_t bytes);
void aligned_free(void* p) noexcept;

// An owning, 64-byte aligned, uninitialised byte buffer.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes) : data_(aligned_alloc_bytes(bytes)), size_(bytes) {}
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
    o.data_ = nullptr;
    o.size_ = 0;
  }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      aligned_free(data_);
      data_ = o.data_;
      size_ = o.size_;
      o.data_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { aligned_free(data_); }

  void* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// An owning buffer of whole 2 MiB-aligned anonymous pages, asking the kernel for
// transparent huge pages. For weights streamed once per token: a 4 KiB-paged stream
// (e.g. a file mapping) costs a TLB miss per page and stops the hardware prefetchers
// at every page boundary, which leaves the decode GEMV 10-15% further from the
// bandwidth roofline (docs/performance.md). Zero-filled; throws Error on failure.
class HugePageBuffer {
 public:
  HugePageBuffer() = default;
  explicit HugePageBuffer(size_t bytes);
  HugePageBuffer(HugePageBuffer&& o) noexcept : data_(o.data_), size_(o.size_), mapped_(o.mapped_) {
    o.data_ = nullptr;
    o.size_ = o.mapped_ = 0;
  }
  HugePageBuffer& operator=(HugePageBuffer&& o) noexcept;
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;
  ~HugePageBuffer();

  void* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;    // as asked for
  size_t mapped_ = 0;  // rounded up to whole huge pages
};

// Bump allocation over chunks of huge pages, for many long-lived buffers (a model's
// weight copies) that would each waste most of a 2 MiB page if mapped separately.
// Memory is returned only when the arena is destroyed. Not thread-safe.
class HugePageArena {
 public:
  explicit HugePageArena(size_t chunk_bytes = size_t{64} << 20) : chunk_bytes_(chunk_bytes) {}
  // `bytes` of 64-byte aligned memory, zero-filled; throws Error when out of memory.
  void* allocate(size_t bytes);
  size_t allocated() const noexcept { return allocated_; }  // bytes handed out

 private:
  size_t chunk_bytes_;
  std::vector<HugePageBuffer> chunks_;
  size_t used_ = 0;  // of chunks_.back()
  size_t allocated_ = 0;
};

// A bump allocator over one aligned buffer. Not thread-safe: one per session.
class Arena {
 public:
  Arena() = default;
  explicit Arena(size_t capacity) : buffer_(capacity) {}

  // Returns `bytes` of 64-byte aligned scratch; throws Error when the arena is exhausted
  // (the arena was sized too small at load: a bug, never silently a heap allocation).
  void* allocate(size_t bytes);
  template <class T>
  T* allocate_array(size_t count) {
    return static_cast<T*>(allocate(count * sizeof(T)));
  }

  void reset() noexcept { used_ = 0; }
  size_t used() const noexcept { return used_; }
  size_t high_water() const noexcept { return high_water_; }
  size_t capacity() const noexcept { return buffer_.size(); }

 private:
  AlignedBuffer buffer_;
  size_t used_ = 0;
  size_t high_water_ = 0;
};

}  // namespace qilin
