// Streams and copies (kernels/cuda/stream.h).
#include "kernels/cuda/stream.h"

#include <memory>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/memory.h"

namespace qilin::cuda {

Stream::Stream(int device) : device_(device >= 0 ? device : current_device()) {
  int previous = 0;
  QILIN_CUDA_CHECK(cudaGetDevice(&previous));
  QILIN_CUDA_CHECK(cudaSetDevice(device_));
  const cudaError_t err = cudaStreamCreateWithFlags(&handle_, cudaStreamNonBlocking);
  cudaSetDevice(previous);
  check_cuda(err, "cudaStreamCreateWithFlags(&handle_, cudaStreamNonBlocking)", __FILE__, __LINE__);
}

Stream::~Stream() {
  if (handle_ != nullptr) cudaStreamDestroy(handle_);  // queued work still completes
}

void Stream::synchronize() const { QILIN_CUDA_CHECK(cudaStreamSynchronize(handle_)); }

Stream& default_stream(int device) {
  // Never destroyed: a static destructor would run after the CUDA runtime has begun
  // to shut down; the driver releases the streams with the process.
  static std::mutex mutex;
  static auto* streams = new std::vector<Stream*>();
  const int d = device >= 0 ? device : current_device();
  std::lock_guard lock(mutex);
  if (streams->empty()) {
    int count = 0;
    QILIN_CUDA_CHECK(cudaGetDeviceCount(&count));
    streams->assign(static_cast<size_t>(count), nullptr);
  }
  if (d >= static_cast<int>(streams->size())) {
    fail("cuda", "device {} does not exist ({} CUDA devices)", d, streams->size());
  }
  Stream*& s = (*streams)[static_cast<size_t>(d)];
  if (s == nullptr) s = new Stream(d);
  return *s;
}

void copy_to_device(void* dst, const void* src, size_t bytes, const Stream& stream) {
  if (bytes == 0) return;
  QILIN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream.handle()));
}

void copy_to_host(void* dst, const void* src, size_t bytes, const Stream& stream) {
  if (bytes == 0) return;
  QILIN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream.handle()));
  stream.synchronize();
}

void copy_on_device(void* dst, const void* src, size_t bytes, const Stream& stream) {
  if (bytes == 0) return;
  QILIN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream.handle()));
}

void fill_zero(void* dst, size_t bytes, const Stream& stream) {
  if (bytes == 0) return;
  QILIN_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream.handle()));
}

}  // namespace qilin::cuda
