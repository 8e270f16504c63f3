// GPU memory: RAII device buffers served by a caching allocator, one per device.
//
// cudaMalloc and cudaFree synchronize the device and cost tens of microseconds, so
// the decode loop must never call them. Freed buffers go back to a free list of
// their size class instead, and the next request of that class takes one from
// there: after the first token every buffer of the step is a cache hit.
//
// Size classes: requests up to 1 MiB are rounded up to a power of two (at least
// 512 bytes), larger ones to a multiple of 2 MiB, so a class wastes at most half of
// a small block and 2 MiB of a large one. A block is only reused for its own class
// (no splitting): fixed shapes, which is what a decode step allocates, always hit.
//
// Stream order: a buffer released while kernels that use it are still queued goes
// back to the cache at once, and the next allocation of its class may hand it to
// other work. That is safe because Qilin queues all work of a device on one stream
// (cuda::default_stream(), kernels/cuda/stream.h), so the new user's kernels run
// after the old ones. Code that touches a buffer on another stream must synchronize
// that stream before the buffer is released.
//
// Header free of CUDA: the CPU-only build compiles it against kernels/cuda/stub/,
// where every allocation throws "no CUDA backend".
#pragma once

#include <cstddef>
#include <cstdint>

namespace qilin::cuda {

// The device the calling thread works on (cudaGetDevice), and a way to change it.
int current_device();
void set_device(int device);

class DeviceBuffer {
 public:
  DeviceBuffer() noexcept = default;
  // At least `bytes` bytes on `device` (-1: the current device), 256-byte aligned,
  // uninitialised. Throws qilin::Error naming the bytes asked for and the device's
  // free memory when it runs out, after releasing the cache and retrying once.
  explicit DeviceBuffer(size_t bytes, int device = -1);
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const noexcept { return ptr_; }
  template <class T>
  T* data_as() const noexcept {
    return static_cast<T*>(ptr_);
  }
  size_t size() const noexcept { return bytes_; }         // bytes asked for
  size_t capacity() const noexcept { return capacity_; }  // bytes of its size class
  int device() const noexcept { return device_; }
  explicit operator bool() const noexcept { return ptr_ != nullptr; }

  // Returns the memory to the device's cache (no cudaFree) and leaves the buffer empty.
  void reset() noexcept;

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0, capacity_ = 0;
  int device_ = 0;
};

// Free and total memory of `device` (-1: the current device) as the driver reports
// them (cudaMemGetInfo): what a model about to load can still allocate.
struct MemoryInfo {
  size_t free_bytes = 0, total_bytes = 0;
};
MemoryInfo memory_info(int device = -1);

// A buffer of at least `bytes` on `device`: `buf` itself when it is big enough, else
// a new one (the old one goes back to the cache). For scratch that grows to the
// largest shape seen and then stays.
void ensure_capacity(DeviceBuffer& buf, size_t bytes, int device = -1);

struct AllocatorStats {
  size_t bytes_in_use = 0;  // capacity of the live DeviceBuffers
  size_t bytes_cached = 0;  // held in the free lists
  size_t peak_bytes_in_use = 0;
  uint64_t device_allocations = 0;  // cudaMalloc calls so far (should stop growing after warm-up)
  uint64_t cache_hits = 0;          // allocations served from a free list
};

AllocatorStats allocator_stats(int device = -1);
// cudaFree of every cached block of `device` (live buffers are untouched).
void release_cached_memory(int device = -1);

inline constexpr size_t kSmallClassLimit = size_t{1} << 20;  // 1 MiB
inline constexpr size_t kLargeClassStep = size_t{2} << 20;   // 2 MiB
// The size class a request of `bytes` is rounded up to (see above).
constexpr size_t allocation_size_class(size_t bytes) noexcept {
  if (bytes > kSmallClassLimit) return (bytes + kLargeClassStep - 1) / kLargeClassStep * kLargeClassStep;
  size_t c = 512;
  while (c < bytes) c *= 2;
  return c;
}

}  // namespace qilin::cuda
