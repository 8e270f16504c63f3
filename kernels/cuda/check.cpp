// Formats the errors of kernels/cuda/check.h.
#include "kernels/cuda/check.h"

#include <cublas_v2.h>

#include <string_view>

#include "core/error.h"

namespace qilin::cuda {
namespace {

// "kernels/cuda/memory.cpp" rather than the builder's absolute path.
std::string_view source_path(const char* file) {
  const std::string_view path(file);
  const size_t at = path.rfind("kernels/");
  return at == std::string_view::npos ? path : path.substr(at);
}

}  // namespace

void throw_cuda_error(const char* call, cudaError_t err, const char* file, int line) {
  fail("cuda", "{} failed: {} ({}) at {}:{}", call, cudaGetErrorString(err), cudaGetErrorName(err), source_path(file),
       line);
}

void throw_cublas_error(const char* call, int status, const char* file, int line) {
  const auto st = static_cast<cublasStatus_t>(status);
  fail("cublas", "{} failed: {} ({}) at {}:{}", call, cublasGetStatusString(st), cublasGetStatusName(st),
       source_path(file), line);
}

}  // namespace qilin::cuda
