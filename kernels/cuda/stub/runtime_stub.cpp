// The CUDA runtime API (memory.h, stream.h, tensor.h) in a build without CUDA:
// every call that would touch a GPU throws, naming the missing backend.
#include <utility>

#include "core/error.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/stream.h"
#include "kernels/cuda/tensor.h"

namespace qilin::cuda {
namespace {
[[noreturn]] void no_backend(const char* what) {
  fail("cuda", "{}: this build of Qilin has no CUDA backend (configure with QILIN_CUDA=ON)", what);
}
}  // namespace

int current_device() { no_backend("current_device"); }
void set_device(int) { no_backend("set_device"); }

DeviceBuffer::DeviceBuffer(size_t, int) { no_backend("DeviceBuffer"); }
DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(o.bytes_), capacity_(o.capacity_), device_(o.device_) {}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  std::swap(ptr_, o.ptr_);
  return *this;
}
void DeviceBuffer::reset() noexcept { ptr_ = nullptr; }
void ensure_capacity(DeviceBuffer&, size_t, int) { no_backend("ensure_capacity"); }
MemoryInfo memory_info(int) { no_backend("memory_info"); }
AllocatorStats allocator_stats(int) { no_backend("allocator_stats"); }
void release_cached_memory(int) { no_backend("release_cached_memory"); }

Stream::Stream(int) { no_backend("Stream"); }
Stream::~Stream() = default;
void Stream::synchronize() const { no_backend("Stream::synchronize"); }
Stream& default_stream(int) { no_backend("default_stream"); }
void copy_to_device(void*, const void*, size_t, const Stream&) { no_backend("copy_to_device"); }
void copy_to_host(void*, const void*, size_t, const Stream&) { no_backend("copy_to_host"); }
void copy_on_device(void*, const void*, size_t, const Stream&) { no_backend("copy_on_device"); }
void fill_zero(void*, size_t, const Stream&) { no_backend("fill_zero"); }

Tensor empty(Shape, DType, int) { no_backend("empty"); }
Tensor zeros(Shape, DType, const Stream&) { no_backend("zeros"); }
Tensor to_device(const TensorView&, const Stream&) { no_backend("to_device"); }
Tensor to_host(const TensorView&, const Stream&) { no_backend("to_host"); }
void copy(const TensorView&, const TensorView&, const Stream&) { no_backend("copy"); }

}  // namespace qilin::cuda
