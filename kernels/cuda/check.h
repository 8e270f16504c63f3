// Checked CUDA and cuBLAS calls: every failure becomes a qilin::Error naming the
// call as written, the library's error string and the file:line of the call, e.g.
//   "[cuda] cudaSetDevice(device) failed: invalid device ordinal (cudaErrorInvalidDevice) at kernels/cuda/memory.cpp:170".
//
// Internal to kernels/cuda/ (it needs the CUDA headers); the public headers of the
// backend (memory.h, stream.h, tensor.h, ops.h) stay free of them. Kept free of fmt
// too, so .cu files compiled by nvcc can include it: the messages are built in check.cpp.
#pragma once

#include <cuda_runtime.h>

namespace qilin::cuda {

[[noreturn]] void throw_cuda_error(const char* call, cudaError_t err, const char* file, int line);
// `status` is a cublasStatus_t (an int here, to keep cublas_v2.h out of this header).
[[noreturn]] void throw_cublas_error(const char* call, int status, const char* file, int line);

inline void check_cuda(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda_error(call, err, file, line);
}
inline void check_cublas(int status, const char* call, const char* file, int line) {
  if (status != 0) throw_cublas_error(call, status, file, line);  // 0 is CUBLAS_STATUS_SUCCESS
}

}  // namespace qilin::cuda

#define QILIN_CUDA_CHECK(call) ::qilin::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define QILIN_CUBLAS_CHECK(call) ::qilin::cuda::check_cublas(static_cast<int>(call), #call, __FILE__, __LINE__)
// After a kernel launch: launch-configuration errors (too many threads, too much
// shared memory, no kernel image for this GPU) surface here, named after the kernel.
#define QILIN_CUDA_CHECK_LAUNCH(kernel_name) \
  ::qilin::cuda::check_cuda(cudaGetLastError(), "launch of " kernel_name, __FILE__, __LINE__)
