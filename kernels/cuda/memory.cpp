// The caching device allocator behind DeviceBuffer (kernels/cuda/memory.h).
#include "kernels/cuda/memory.h"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/check.h"

namespace qilin::cuda {
namespace {

// Makes `device` current for the scope, restoring the previous one.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    QILIN_CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) QILIN_CUDA_CHECK(cudaSetDevice(device));
    changed_ = device != previous_;
  }
  ~DeviceScope() {
    if (changed_) cudaSetDevice(previous_);  // best effort: a destructor must not throw
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

class CachingAllocator {
 public:
  explicit CachingAllocator(int device) : device_(device) {}
  ~CachingAllocator() { release_cached(); }

  void* allocate(size_t size_class) {
    {
      std::lock_guard lock(mutex_);
      auto it = free_.find(size_class);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        stats_.bytes_cached -= size_class;
        ++stats_.cache_hits;
        note_in_use(size_class);
        return p;
      }
    }
    DeviceScope scope(device_);
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, size_class);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the (non-sticky) error before retrying
      release_cached();
      err = cudaMalloc(&p, size_class);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      const AllocatorStats s = stats();
      fail("cuda",
           "out of memory on device {}: {} bytes ({:.1f} MiB) asked for, {:.1f} MiB free of {:.1f} MiB ({:.1f} MiB "
           "held by Qilin's buffers)",
           device_, size_class, mib(size_class), mib(free_bytes), mib(total_bytes), mib(s.bytes_in_use));
    }
    check_cuda(err, "cudaMalloc(&p, size_class)", __FILE__, __LINE__);  // name the call, not `err`
    std::lock_guard lock(mutex_);
    ++stats_.device_allocations;
    note_in_use(size_class);
    return p;
  }

  void release(void* p, size_t size_class) noexcept {
    std::lock_guard lock(mutex_);
    try {
      free_[size_class].push_back(p);
    } catch (...) {  // no memory for the list: give the block back to CUDA instead
      cudaFree(p);
      stats_.bytes_in_use -= size_class;
      return;
    }
    stats_.bytes_in_use -= size_class;
    stats_.bytes_cached += size_class;
  }

  // cudaFree of every cached block. Errors are ignored: at process exit the CUDA
  // runtime may already be shutting down, and the driver reclaims the memory anyway.
  void release_cached() noexcept {
    std::lock_guard lock(mutex_);
    int previous = 0;
    const bool have_previous = cudaGetDevice(&previous) == cudaSuccess;
    if (cudaSetDevice(device_) == cudaSuccess) {
      for (auto& [size_class, blocks] : free_) {
        for (void* p : blocks) cudaFree(p);
      }
    }
    if (have_previous) cudaSetDevice(previous);
    free_.clear();
    stats_.bytes_cached = 0;
  }

  AllocatorStats stats() {
    std::lock_guard lock(mutex_);
    return stats_;
  }

 private:
  static double mib(size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }
  void note_in_use(size_t size_class) {
    stats_.bytes_in_use += size_class;
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }

  int device_;
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;  // size class -> cached blocks
  AllocatorStats stats_;
};

// One allocator per device, created on first use. The registry's destructor (at
// exit) releases the cached blocks; a DeviceBuffer destroyed after it (another
// static) finds `g_registry_alive` false and calls cudaFree itself.
std::atomic<bool> g_registry_alive{false};

class Registry {
 public:
  Registry() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      cudaGetLastError();
      count = 0;
    }
    for (int d = 0; d < count; ++d) allocators_.push_back(std::make_unique<CachingAllocator>(d));
    g_registry_alive.store(true);
  }
  ~Registry() { g_registry_alive.store(false); }

  CachingAllocator& at(int device) {
    if (device < 0 || device >= static_cast<int>(allocators_.size())) {
      fail("cuda", "device {} does not exist ({} CUDA devices)", device, allocators_.size());
    }
    return *allocators_[static_cast<size_t>(device)];
  }

 private:
  std::vector<std::unique_ptr<CachingAllocator>> allocators_;
};

Registry& registry() {
  static Registry r;
  return r;
}

int resolve(int device) { return device >= 0 ? device : current_device(); }

}  // namespace

int current_device() {
  int d = 0;
  QILIN_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void set_device(int device) { QILIN_CUDA_CHECK(cudaSetDevice(device)); }

DeviceBuffer::DeviceBuffer(size_t bytes, int device) {
  device_ = resolve(device);
  capacity_ = allocation_size_class(bytes);
  ptr_ = registry().at(device_).allocate(capacity_);
  bytes_ = bytes;
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)),
      bytes_(std::exchange(o.bytes_, 0)),
      capacity_(std::exchange(o.capacity_, 0)),
      device_(o.device_) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
    device_ = o.device_;
  }
  return *this;
}

void DeviceBuffer::reset() noexcept {
  if (ptr_ == nullptr) return;
  if (g_registry_alive.load()) {
    registry().at(device_).release(ptr_, capacity_);  // cannot throw: device_ was valid at allocation
  } else {
    cudaFree(ptr_);
  }
  ptr_ = nullptr;
  bytes_ = capacity_ = 0;
}

void ensure_capacity(DeviceBuffer& buf, size_t bytes, int device) {
  const int d = resolve(device);
  if (buf && buf.device() == d && buf.capacity() >= bytes) return;
  buf.reset();  // first, so that its block can serve the new request if the class matches
  buf = DeviceBuffer(bytes, d);
}

MemoryInfo memory_info(int device) {
  DeviceScope scope(resolve(device));
  MemoryInfo info;
  QILIN_CUDA_CHECK(cudaMemGetInfo(&info.free_bytes, &info.total_bytes));
  return info;
}

AllocatorStats allocator_stats(int device) { return registry().at(resolve(device)).stats(); }

void release_cached_memory(int device) { registry().at(resolve(device)).release_cached(); }

}  // namespace qilin::cuda
