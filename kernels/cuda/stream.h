// CUDA streams and host <-> device copies.
//
// Qilin queues all GPU work of a device on one stream, default_stream(device):
// the ops of kernels/cuda/ops.h take it explicitly, matmul() on GPU weights uses
// the current device's. One stream keeps every kernel in program order, which
// the caching allocator relies on (kernels/cuda/memory.h), and is what a CUDA
// graph of a decode step captures.
//
// Header free of CUDA: a stream is handed out as the runtime's own handle type
// (cudaStream_t is `CUstream_st*`), so callers that include cuda_runtime.h can use
// it directly, and the CPU-only build compiles against kernels/cuda/stub/.
#pragma once

#include <cstddef>

struct CUstream_st;

namespace qilin::cuda {

using StreamHandle = CUstream_st*;

class Stream {
 public:
  // A new non-blocking stream on `device` (-1: the current device).
  explicit Stream(int device = -1);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  StreamHandle handle() const noexcept { return handle_; }
  int device() const noexcept { return device_; }
  // Waits for everything queued so far; throws when a queued kernel failed.
  void synchronize() const;

 private:
  StreamHandle handle_ = nullptr;
  int device_ = 0;
};

// Qilin's stream of `device` (-1: the current device), created on first use and
// kept for the life of the process.
Stream& default_stream(int device = -1);

// Copies of `bytes` bytes, queued on `stream`. copy_to_device returns once `src`
// has been read (pageable memory is staged first), so the caller may reuse it;
// copy_to_host waits for the stream, so `dst` holds the data on return.
void copy_to_device(void* dst, const void* src, size_t bytes, const Stream& stream);
void copy_to_host(void* dst, const void* src, size_t bytes, const Stream& stream);
void copy_on_device(void* dst, const void* src, size_t bytes, const Stream& stream);
void fill_zero(void* dst, size_t bytes, const Stream& stream);

}  // namespace qilin::cuda
